/**
 * Locality as a job sees it, on real Redis with the real job service and
 * store: the framework's locality waits apply to a job that says nothing (a
 * job that names one level inherits the other), every locality counter is
 * read under the name it is written with — `locality.any` counts — and a
 * cancelled job shows no pending task.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { JobService, type InputResolver } from '../../src/scheduler/jobs/service.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { systemClock } from '../../src/core/clock.js';
import { LocalityLevel } from '../../src/core/locality.js';
import { silentLogger } from '../../src/obs/log.js';
import { place } from '../../src/scheduler/placement/index.js';
import type { LocalityPolicy } from '../../src/scheduler/placement/types.js';
import { jobView } from '../../src/api/http/jobs-views.js';
import { countsMessage } from '../../src/api/grpc/server.js';
import { exec, snap, tenant } from '../unit/placement-builders.js';

let redis: TestRedis;
let client: Redis;
let jobs: JobService;
let store: JobStore;

/** The framework's policy in these tests: long waits, so a wait that applies is visible. */
const FRAMEWORK: LocalityPolicy = { mode: 'wait', nodeWaitMs: 60_000, rackWaitMs: 60_000 };

// Every input is one one-split file whose only replica is on r1-h1 (rack r1).
const resolver: InputResolver = {
  resolve: async (uri) => [{ uri: `${uri}f0`, size: 1, splits: [{ offset: 0, length: 1, hosts: ['r1-h1'], racks: ['r1'] }] }],
};

beforeAll(async () => {
  redis = await startRedis();
  client = redis.client();
  store = new JobStore(client);
  jobs = new JobService({
    store, resolver, clock: systemClock, logger: silentLogger(), outputRoot: '/tmp/locus-locality-out',
    limits: { maxPendingTasksPerTenant: 100, maxTasksPerJob: 100 }, defaultLocality: FRAMEWORK,
  });
});
afterAll(async () => {
  client.disconnect();
  await redis.dispose();
});

/** Submit and wait until the job's one task is pending; returns its index entry's pendingSince. */
async function pendingTask(spec: Record<string, unknown>): Promise<{ taskId: string; since: number }> {
  const job = await jobs.submit('t1', validateJobSpec({ inputs: ['local://d/'], task: { command: ['true'], resources: { cpus: 0.5, mem: '64MiB', disk: '1MiB' } }, ...spec }));
  const taskId = `${job.id}.0.0`;
  for (let i = 0; i < 200; i++) {
    const e = jobs.index.get(taskId);
    if (e) return { taskId, since: e.pendingSince };
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`task ${taskId} never became pending`);
}

/**
 * Executors: the data host r1-h1 alive but busy (so waiting for it can pay off), and a free slot
 * on each `free` host, idle since the task became pending (delay scheduling measures both).
 */
function executors(since: number, free: readonly string[]) {
  const slot = { slotResources: { cpus: 1, mem: 1024, disk: 1024 }, freeSince: since };
  return [exec('r1-h1', { ...slot, freeSlots: 0 }), ...free.map((h) => exec(h, slot))];
}

/** Where placement puts a task `afterMs` after it became pending (default: free slots in and off its rack). */
function placedAt(taskId: string, since: number, afterMs: number, free: readonly string[] = ['r1-h2', 'r2-h1']): string | undefined {
  const plan = place(snap(since + afterMs, { executors: executors(since, free), tenants: [tenant('t1')] }), jobs.index, { defaultLocality: FRAMEWORK });
  return plan.assignments.find((a) => a.taskId === taskId)?.hostname;
}

describe('locality waits', () => {
  it('a job that says nothing waits as long as the framework says (not a built-in 3 s)', async () => {
    const { taskId, since } = await pendingTask({ name: 'silent' });
    // Its data host r1-h1 has no slot. With 3 s per level it would have gone elsewhere long ago.
    expect(placedAt(taskId, since, 10_000)).toBeUndefined();
    expect(placedAt(taskId, since, 59_000)).toBeUndefined();
    // Past the framework's node wait, the rack-local slot is taken.
    expect(placedAt(taskId, since, 61_000)).toBe('r1-h2');
    jobs.index.remove(taskId);
  });

  it('a job that sets the node wait only inherits the framework rack wait', async () => {
    const { taskId, since } = await pendingTask({ name: 'node-wait', locality: { wait: { node: '1s' } } });
    // Its own 1 s node wait: rack-local after a second.
    expect(placedAt(taskId, since, 2000)).toBe('r1-h2');
    // Any level needs node 1 s + the framework's rack 60 s (a built-in 3 s would pass at 4 s).
    expect(placedAt(taskId, since, 30_000, ['r2-h1'])).toBeUndefined();
    expect(placedAt(taskId, since, 62_000, ['r2-h1'])).toBe('r2-h1');
    jobs.index.remove(taskId);
  });
});

describe('locality counters', () => {
  it('count every level under the name they are read with, and every surface shows the same share', async () => {
    const job = await jobs.submit('t1', validateJobSpec({
      name: 'levels', tasks: [{ command: ['a'] }, { command: ['b'] }, { command: ['c'] }, { command: ['d'] }], task: { command: ['true'] },
    }));
    for (let i = 0; i < 200 && jobs.index.get(`${job.id}.0.3`) === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    const levels = [LocalityLevel.NODE_LOCAL, LocalityLevel.NODE_LOCAL, LocalityLevel.RACK_LOCAL, LocalityLevel.ANY];
    for (const [i, level] of levels.entries()) {
      const taskId = `${job.id}.0.${i}`;
      const payload = await jobs.startAttempt(taskId, { id: 'e1', host: 'r1-h1' }, level);
      expect(payload).toBeDefined();
      const now = Date.now();
      expect(await jobs.finishAttempt({ attemptId: payload?.attemptId ?? '', taskId, state: 'SUCCEEDED', exitCode: 0, reason: 'EXITED', message: '', startedAt: now, finishedAt: now, host: 'r1-h1' })).toBe('SUCCEEDED');
    }
    const full = await jobs.get(job.id);
    expect(full.counts).toMatchObject({ succeeded: 4, nodeLocal: 2, rackLocal: 1, anyLocal: 1 });
    // The cheap read used after every result agrees with the full one.
    expect((await store.getDynamic(job.id))?.counts).toEqual(full.counts);
    // One share everywhere: the HTTP view and the gRPC message say 2 of 4.
    expect(jobView(full).counts.locality).toEqual({ nodeLocal: 2, rackLocal: 1, any: 1, nodeLocalShare: 0.5 });
    expect(countsMessage(full.counts)).toMatchObject({ node_local: 2, rack_local: 1, any_local: 1, node_local_share: 0.5 });
  });

  it('drop to no pending task when the job is cancelled (its pending tasks are dropped with it)', async () => {
    const job = await jobs.submit('t1', validateJobSpec({ name: 'dropped', tasks: [{ command: ['a'] }, { command: ['b'] }, { command: ['c'] }], task: { command: ['true'] } }));
    for (let i = 0; i < 200 && jobs.index.get(`${job.id}.0.2`) === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await jobs.get(job.id)).counts.pending).toBe(3);
    const { job: after } = await jobs.cancel(job.id);
    expect(after.state).toBe('CANCELLED');
    expect(after.counts).toMatchObject({ pending: 0, running: 0 });
    expect((await store.getDynamic(job.id))?.counts.pending).toBe(0);
  });

  it('still count jobs recorded under the old name of the any counter', async () => {
    const job = await jobs.submit('t1', validateJobSpec({ name: 'legacy', tasks: [{ command: ['a'] }], task: { command: ['true'] } }));
    for (let i = 0; i < 200 && jobs.index.get(`${job.id}.0.0`) === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    await client.hset(`locus:job:${job.id}`, 'n:anywhere', '3');
    expect((await jobs.get(job.id)).counts.anyLocal).toBe(3);
    expect((await store.getDynamic(job.id))?.counts.anyLocal).toBe(3);
  });
});
