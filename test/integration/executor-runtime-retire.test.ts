/**
 * An executor retired before it registered (its Mesos task ended at launch: a start failure, or
 * it was released) stops the framework's wait for its registration at once. The wait used to
 * poll Redis every 100 ms for the rest of its 60 s, for every executor that failed to start, and
 * then reject after the coordinator had long settled the executor.
 *
 * The registration timeout runs from Mesos reporting the executor's task running (ready()), not
 * from the first attempts queued for it: a launch whose fetch or image pull takes a minute is
 * waited for, and its attempts with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { createExecutorRuntime, type ExecutorRuntime } from '../../src/app/executor-runtime.js';
import { resolveSettings } from '../../src/app/config.js';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import { CONTRACT_VERSION, type AttemptPayload, type AttemptResult } from '../../src/executor/contract.js';
import { silentLogger } from '../../src/obs/log.js';

let redis: TestRedis;
let conn: Redis;
let dir: string;
let runtime: ExecutorRuntime;

beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
  conn = redis.client();
  dir = await mkdtemp(join(tmpdir(), 'locus-runtime-retire-'));
  const settings = resolveSettings({ master: 'http://127.0.0.1:9', redis: redis.url, 'state-dir': join(dir, 'state'), 'admin-token': 'a'.repeat(64) });
  runtime = await createExecutorRuntime({ settings, redis: conn, logger: silentLogger(), clock: systemClock, outputRoot: join(dir, 'outputs') });
  await runtime.start();
});

afterAll(async () => {
  await runtime?.close();
  conn?.disconnect();
  await redis?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('the wait for an executor to register', () => {
  it('ends as soon as the executor is retired, instead of polling out its timeout', async () => {
    const ready = runtime.launcher.ready('locus-exec-never-registers');
    const outcome = ready.then(() => 'registered', (err: unknown) => String(err));
    // Polled for a moment first, as while its process starts.
    await new Promise((r) => setTimeout(r, 150));
    const t0 = Date.now();
    await runtime.launcher.retire('locus-exec-never-registers');
    const said = await Promise.race([outcome, new Promise<string>((r) => setTimeout(() => r('still waiting'), 5000))]);
    expect(said).toMatch(/retired before it registered/);
    expect(Date.now() - t0).toBeLessThan(5000);
    // A later launch under another id is waited for as before (nothing left marked retired).
    const other = runtime.launcher.ready('locus-exec-other');
    const otherSaid = await Promise.race([other.then(() => 'registered', (err: unknown) => String(err)), new Promise<string>((r) => setTimeout(() => r('still waiting'), 300))]);
    expect(otherSaid).toBe('still waiting');
    await runtime.launcher.retire('locus-exec-other');
    await expect(other).rejects.toThrow(/retired before it registered/);
  });
});

describe('the registration timeout', () => {
  it('runs from the executor\'s task running, not from the attempts queued for it', async () => {
    const clock = new ManualClock(1_000_000);
    const settings = resolveSettings({ master: 'http://127.0.0.1:9', redis: redis.url, 'state-dir': join(dir, 'state-timeout'), 'admin-token': 'a'.repeat(64) });
    const slow = await createExecutorRuntime({ settings, redis: conn, logger: silentLogger(), clock, outputRoot: join(dir, 'outputs-timeout') });
    await slow.start();
    try {
      const results: AttemptResult[] = [];
      slow.onResult(async (r) => { results.push(r); });
      const payload: AttemptPayload = {
        contractVersion: CONTRACT_VERSION, jobId: 'job-slow', taskId: 'job-slow.0.0', attemptId: 'job-slow.0.0.a1', attempt: 1,
        argv: ['true'], env: {}, resources: { cpus: 1, memMiB: 64, diskMiB: 16 }, timeoutMs: 60_000, volumes: [], inputPaths: [],
      };
      await slow.dispatch.enqueueMany('locus-exec-slow-pull', [payload]);
      // The agent pulls the executor's image for over a minute: no TASK_RUNNING yet, and the attempt waits.
      clock.advance(90_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(results).toEqual([]);
      // Running now; it has the whole timeout from here to register.
      const ready = slow.launcher.ready('locus-exec-slow-pull');
      const outcome = ready.then(() => 'registered', (err: unknown) => String(err));
      clock.advance(30_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(results).toEqual([]);
      expect(await Promise.race([outcome, new Promise<string>((r) => setTimeout(() => r('still waiting'), 50))])).toBe('still waiting');
      // Never registered within it: the wait ends and the attempt comes back lost.
      clock.advance(31_000);
      expect(await outcome).not.toBe('registered');
      await new Promise((r) => setTimeout(r, 300));
      expect(results.map((r) => [r.attemptId, r.state])).toEqual([['job-slow.0.0.a1', 'LOST']]);
    } finally {
      await slow.launcher.retire('locus-exec-slow-pull');
      await slow.close();
    }
  });
});
