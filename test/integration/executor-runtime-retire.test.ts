/**
 * An executor retired before it registered (its Mesos task ended at launch: a start failure, or
 * it was released) stops the framework's wait for its registration at once. The wait used to
 * poll Redis every 100 ms for the rest of its 60 s, for every executor that failed to start, and
 * then reject after the coordinator had long settled the executor.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { createExecutorRuntime, type ExecutorRuntime } from '../../src/app/executor-runtime.js';
import { resolveSettings } from '../../src/app/config.js';
import { systemClock } from '../../src/core/clock.js';
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
