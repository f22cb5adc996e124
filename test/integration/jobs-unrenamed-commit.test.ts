/**
 * A commit the ledger recorded but whose rename never happened (chaos cut-agent, CI runs 14 and
 * 17: the map's winner on the cut host wrote its record, its link went down before the reply
 * reached it, so its staging directory was never renamed onto the shared output path; a retry
 * elsewhere found the record and reported ALREADY_COMMITTED). Readers then fail to fetch that
 * output from its host (INPUT_UNREACHABLE), again and again: the output under the shared root was
 * not taken as lost with its host, nothing was recomputed, and past the uncounted cap the reduce's
 * failures counted until the job FAILED ("198 × FAILED INPUT_UNREACHABLE: output 00020 of stage
 * 'a' on lf77x0-1"). At the job service on a real redis-server with the real store scripts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitKey, INPUT_UNREACHABLE, type AttemptPayload } from '../../src/executor/contract.js';
import { UNCOUNTED_INPUT_FAILURES, type JobService } from '../../src/scheduler/jobs/service.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { waitFor } from '../harness/wait.js';
import { pendingIds, serviceOn, startOn, twoStage } from './jobs-harness.js';

let redis: TestRedis;
let conn: Redis;
let root: string;

beforeAll(async () => {
  redis = await startRedis();
  conn = redis.client();
  root = mkdtempSync(join(tmpdir(), 'locus-unrenamed-'));
});
afterAll(async () => {
  conn?.disconnect();
  await redis?.dispose();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Record a map's commit at its shared path on `host`; `renamed`: the output is in place there (its marker written). */
async function commitShared(jobs: JobService, p: AttemptPayload, host: string, renamed: boolean): Promise<void> {
  const path = p.outputDir ?? '';
  await conn.set(commitKey(p.taskId), JSON.stringify({
    attemptId: p.attemptId, host, blockServer: `${host}:7000`, path, size: 2, files: [{ name: 'x', size: 2 }], committedAt: Date.now(), staged: `${path}.staging/${p.attemptId}`,
  }));
  if (renamed) {
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, 'x'), 'ok');
    writeFileSync(join(path, '_SUCCESS'), p.attemptId);
  }
  const now = Date.now();
  expect(await jobs.finishAttempt({
    attemptId: p.attemptId, taskId: p.taskId, state: 'SUCCEEDED', exitCode: 0, reason: renamed ? 'COMMITTED' : 'ALREADY_COMMITTED',
    message: '', outputPath: path, startedAt: now, finishedAt: now, host,
  })).toBe('SUCCEEDED');
}

describe('a shared-root output recorded but never renamed into place', () => {
  it('a fetch failure naming its host recomputes it (and only it); the reduce never fails', async () => {
    const jobs = serviceOn(conn, root);
    const job = await jobs.submit('default', twoStage(3));
    await waitFor('maps pending', () => (pendingIds(jobs, job.id).length === 3 ? true : undefined));
    // Maps 0 and 1 on h1 (map 1's winner was cut off before its rename), map 2 on h2.
    const maps = [await startOn(jobs, `${job.id}.0.0`, 'h1'), await startOn(jobs, `${job.id}.0.1`, 'h1'), await startOn(jobs, `${job.id}.0.2`, 'h2')];
    await commitShared(jobs, maps[0] as AttemptPayload, 'h1', true);
    await commitShared(jobs, maps[1] as AttemptPayload, 'h1', false);
    await commitShared(jobs, maps[2] as AttemptPayload, 'h2', true);
    const reduceId = `${job.id}.1.0`;
    await waitFor('reduce pending', () => (pendingIds(jobs, job.id).join() === reduceId ? true : undefined));

    // The reduce cannot fetch map 1 from h1, attempt after attempt (more than the uncounted cap
    // and the retries together): each time either it is pending again, uncounted, or it waits.
    for (let i = 0; i < UNCOUNTED_INPUT_FAILURES + 4; i++) {
      if (!pendingIds(jobs, job.id).includes(reduceId)) break;
      const r = await startOn(jobs, reduceId, 'h2');
      const now = Date.now();
      const state = await jobs.finishAttempt({
        attemptId: r.attemptId, taskId: reduceId, state: 'FAILED', exitCode: null, reason: INPUT_UNREACHABLE,
        message: `output 00001 of stage 'map' on h1: cannot read it from any block server: ECONNREFUSED`, inputHost: 'h1', startedAt: now, finishedAt: now, host: 'h2',
      });
      expect(state).toBe('PENDING');
      await waitFor('reduce pending again or parked', () => (pendingIds(jobs, job.id).includes(`${job.id}.0.1`) || pendingIds(jobs, job.id).includes(reduceId) ? true : undefined));
    }
    expect((await jobs.getTaskRecord(reduceId))?.failures).toBe(0);
    // Map 1 is recomputed in its next generation; map 0, in place under the shared root, is not.
    expect(pendingIds(jobs, job.id)).toEqual([`${job.id}.0.1`]);
    expect((await jobs.getTaskRecord(`${job.id}.0.1`))?.generation).toBe(1);
    expect((await jobs.getTaskRecord(`${job.id}.0.0`))?.state).toBe('SUCCEEDED');
    const again = await startOn(jobs, `${job.id}.0.1`, 'h2');
    expect(again.generation).toBe(1);
    await conn.set(commitKey(`${again.taskId}~g1`), JSON.stringify({
      attemptId: again.attemptId, host: 'h2', blockServer: 'h2:7000', path: again.outputDir, size: 2, files: [{ name: 'x', size: 2 }], committedAt: Date.now(),
    }));
    const now = Date.now();
    expect(await jobs.finishAttempt({
      attemptId: again.attemptId, taskId: again.taskId, state: 'SUCCEEDED', exitCode: 0, reason: 'COMMITTED', message: '', outputPath: again.outputDir ?? '', startedAt: now, finishedAt: now, host: 'h2',
    })).toBe('SUCCEEDED');
    await waitFor('reduce released', () => (pendingIds(jobs, job.id).join() === reduceId ? true : undefined));
    const r = await startOn(jobs, reduceId, 'h2');
    expect(r.stageInputs?.[0]?.parts.map((p) => p.path)).toEqual([maps[0]?.outputDir, again.outputDir, maps[2]?.outputDir]);
    expect((await jobs.get(job.id)).state).toBe('RUNNING');
    await jobs.cancel(job.id);
  });
});
