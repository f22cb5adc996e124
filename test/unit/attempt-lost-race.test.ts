/**
 * A losing duplicate whose container could not even start, because the winner swept the
 * task's staging directory between its preparation and its launch, reports the task as
 * already committed rather than failing it (LAUNCH_FAILED would spend one of the task's
 * retries on a task that is done). The "winner" is simulated by the runner itself: it
 * records another attempt's commit in the ledger, then reports the launch failure.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAttempt, type AttemptContext } from '../../src/executor/attempt.js';
import { type AttemptPayload } from '../../src/executor/contract.js';
import type { AttemptRunner, RunHandle, RunSpec } from '../../src/executor/runner.js';
import { attemptContext, attemptPayload, memoryLedger } from './attempt-fixture.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-race-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup(winnerFirst: boolean): { ctx: AttemptContext; payload: AttemptPayload } {
  const { ledger, records } = memoryLedger();
  const runner: AttemptRunner = {
    kind: 'launch-fails',
    async launch(spec: RunSpec): Promise<RunHandle> {
      if (winnerFirst) {
        records.set('job-1.0.0', { attemptId: 'job-1.0.0.9', host: 'other', path: join(dir, 'final'), size: 1, files: [], committedAt: Date.now() });
      }
      return {
        sandboxDir: join(dir, 'sandbox', spec.containerId),
        wait: async () => ({ exitCode: null, signal: null, reason: 'LAUNCH_FAILED', message: 'cannot bind the staging directory: No such file or directory' }),
        kill: async () => undefined,
      };
    },
    close: async () => undefined,
  };
  const ctx = attemptContext(dir, ledger, runner);
  const payload = attemptPayload(dir, 0);
  return { ctx, payload };
}

const control = { delivery: 'd1', drain: new AbortController().signal, onRunning: () => undefined };

describe('a launch that fails after another attempt committed', () => {
  it('reports ALREADY_COMMITTED with the winner', async () => {
    const { ctx, payload } = setup(true);
    const r = await runAttempt(payload, ctx, control);
    expect(r).toMatchObject({ state: 'SUCCEEDED', reason: 'ALREADY_COMMITTED' });
    expect(r.message).toContain('job-1.0.0.9');
  });

  it('with nothing committed, stays a LAUNCH_FAILED failure', async () => {
    const { ctx, payload } = setup(false);
    const r = await runAttempt(payload, ctx, control);
    expect(r).toMatchObject({ state: 'FAILED', reason: 'LAUNCH_FAILED' });
  });
});
