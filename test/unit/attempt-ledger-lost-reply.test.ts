/**
 * A commit whose reply never came back (Redis applied it, then the connection dropped and the
 * client did not send it again): the attempt cannot know it won. It goes back uncounted, and
 * its staging directory stays, because the record may name it: the task's next attempt on this
 * host finds the record and finishes the rename from there, so the output is not lost.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAttempt } from '../../src/executor/attempt.js';
import type { CommitLedger } from '../../src/executor/data-plane.js';
import { committedBy } from '../../src/executor/output.js';
import { attemptContext, attemptPayload, memoryLedger } from './attempt-fixture.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-lost-reply-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const control = { delivery: 'd1', drain: new AbortController().signal, onRunning: () => undefined };

describe('a commit applied by Redis whose reply was lost', () => {
  it('keeps the staging directory, and the next attempt on the host finishes the commit from it', async () => {
    const { ledger, records } = memoryLedger();
    let drop = true;
    const lossy: CommitLedger = {
      async commit(taskId, record) {
        const decision = await ledger.commit(taskId, record);
        if (drop) {
          drop = false;
          throw new Error('Connection is closed.');
        }
        return decision;
      },
      lookup: (taskId) => ledger.lookup(taskId),
      markConflict: (taskId, record, conflict) => ledger.markConflict(taskId, record, conflict),
    };
    const ctx = attemptContext(dir, lossy);
    const first = attemptPayload(dir, 0);
    const r1 = await runAttempt(first, ctx, control);
    expect(r1).toMatchObject({ state: 'LOST', reason: 'COMMIT_LEDGER_UNAVAILABLE' });
    const record = records.get('job-1.0.0') as { attemptId: string; path: string; staged?: string } | undefined;
    expect(record?.attemptId).toBe(first.attemptId);
    expect(record?.staged).toBeDefined();
    expect(existsSync(record?.staged ?? '')).toBe(true);
    expect(existsSync(first.outputDir ?? '')).toBe(false);

    const retry = { ...first, attemptId: 'job-1.0.0.2', attempt: 2 };
    const r2 = await runAttempt(retry, ctx, { ...control, delivery: 'd2' });
    expect(r2).toMatchObject({ state: 'SUCCEEDED', reason: 'ALREADY_COMMITTED' });
    expect(await committedBy(first.outputDir ?? '')).toBe(first.attemptId);
  });
});
