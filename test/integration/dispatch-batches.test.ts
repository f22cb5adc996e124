/**
 * Batched dispatch between the dispatcher and a real `locus executor` process
 * (the built binary, its own Redis ACL user, real Redis): attempts placed
 * together go out in one queue job, of one stage or of several jobs, and each
 * is settled from its own result, as it ends; one member of a running batch is
 * killed; and a second
 * dispatcher that adopts batched attempts (a scheduler after a crash) settles
 * them from their batch's queue job without queueing any of them again; a finished queue job is
 * removed once every attempt in it was recorded, and only by the scheduler that leads.
 */
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_PREFIX, batchJobId, executorBatchIndexKey, executorQueueName, type AttemptPayload } from '../../src/executor/contract.js';
import type { ExecutorProvisioner } from '../../src/scheduler/executor-registry.js';
import type { TestRedis } from '../harness/redis.js';
import { Fence, fencedRedis } from '../../src/scheduler/fence.js';
import { RecordingDispatcher, payload, spawnExecutor, waitFor, waitRegistered, type ExecutorProc, startExecutorBed, type ExecutorBed } from './executor-harness.js';

let bed: ExecutorBed | undefined;
let redis: TestRedis;
let admin: Redis;
let prov: ExecutorProvisioner;
let rd: RecordingDispatcher;
let work: string;
const procs: ExecutorProc[] = [];
const others: RecordingDispatcher[] = [];

beforeAll(async () => {
  bed = await startExecutorBed('locus-dispatch-batches-');
  ({ redis, admin, prov, rd, work } = bed);
});

afterAll(async () => {
  for (const o of others) await o.close();
  await bed?.dispose(procs);
});

async function executor(id: string, slots: number): Promise<void> {
  const creds = await prov.create(id);
  const e = spawnExecutor({ redis, id, creds, sandbox: join(work, `sandbox-${id}`), slots });
  procs.push(e);
  await waitRegistered(admin, id).catch((err: Error) => {
    throw new Error(`${err.message}\n${e.stderr()}`);
  });
}

/** Attempts of stage 0 of one job: task ids `<job>.0.<i>`, as the job service names them. */
function stage(job: string, n: number, argv: (i: number) => readonly string[]): AttemptPayload[] {
  return Array.from({ length: n }, (_, i) => payload(`${job}.0.${i}`, 1, argv(i), { jobId: job }));
}

describe('batched dispatch', () => {
  it('sends the attempts of one stage in one queue job and settles each from its own result', async () => {
    const id = 'EB1';
    await executor(id, 4);
    const attempts = stage('job-b1', 4, () => ['true']);
    await rd.dispatcher.dispatchMany(attempts.map((p) => ({ executorId: id, payload: p })));
    for (const p of attempts) expect(await rd.result(p.attemptId)).toMatchObject({ attemptId: p.attemptId, taskId: p.taskId, state: 'SUCCEEDED' });

    // One queue job held all four (the index names it for each), and each was reported running.
    const batch = batchJobId(attempts[0]?.attemptId ?? '');
    expect(await admin.hgetall(executorBatchIndexKey(id))).toEqual(Object.fromEntries(attempts.map((p) => [p.attemptId, batch])));
    const q = new Queue(executorQueueName(id), { connection: admin, prefix: QUEUE_PREFIX });
    try {
      expect(await q.getJobCounts('completed')).toEqual({ completed: 1 });
      const job = await q.getJob(batch);
      expect((job?.data as { batch: AttemptPayload[] }).batch.map((p) => p.attemptId)).toEqual(attempts.map((p) => p.attemptId));
    } finally {
      await q.close();
    }
    for (const p of attempts) expect(rd.events.some((e) => e.type === 'running' && e.taskId === p.taskId)).toBe(true);
  }, 60_000);

  it('sends attempts of different jobs placed together in one queue job, each settled as its own', async () => {
    const id = 'EB4';
    await executor(id, 4);
    // A pass interleaves jobs (fair share): these are one executor's share of one pass.
    const a = stage('job-b4a', 2, () => ['true']);
    const b = stage('job-b4b', 2, (i) => (i === 0 ? ['sh', '-c', 'exit 3'] : ['true']));
    const attempts = [a[0], b[0], a[1], b[1]] as AttemptPayload[];
    await rd.dispatcher.dispatchMany(attempts.map((p) => ({ executorId: id, payload: p })));
    for (const p of [a[0], a[1], b[1]] as AttemptPayload[]) expect(await rd.result(p.attemptId)).toMatchObject({ attemptId: p.attemptId, taskId: p.taskId, state: 'SUCCEEDED' });
    // The failing member fails alone.
    expect(await rd.result(b[0]?.attemptId ?? '')).toMatchObject({ taskId: b[0]?.taskId, state: 'FAILED', reason: 'EXIT_NONZERO', exitCode: 3 });
    const batch = batchJobId(attempts[0]?.attemptId ?? '');
    expect(await admin.hgetall(executorBatchIndexKey(id))).toEqual(Object.fromEntries(attempts.map((p) => [p.attemptId, batch])));
    const q = new Queue(executorQueueName(id), { connection: admin, prefix: QUEUE_PREFIX });
    try {
      expect(await q.getJobCounts('completed')).toEqual({ completed: 1 });
    } finally {
      await q.close();
    }
  }, 60_000);

  it('reports each member as it ends, and kills one member of a running batch', async () => {
    const id = 'EB2';
    await executor(id, 3);
    const attempts = stage('job-b2', 3, (i) => ['sleep', i === 1 ? '60' : '1']);
    await rd.dispatcher.dispatchMany(attempts.map((p) => ({ executorId: id, payload: p })));
    const victim = attempts[1] as AttemptPayload;
    // The short members are settled while the long one still runs: a batch does not hold its
    // members' slots until its slowest member ends.
    for (const p of [attempts[0], attempts[2]] as AttemptPayload[]) expect(await rd.result(p.attemptId)).toMatchObject({ state: 'SUCCEEDED' });
    expect(rd.results(victim.attemptId, true)).toEqual([]);
    expect(rd.dispatcher.inFlightCount).toBe(1);
    // A member cannot be taken off the queue alone: the executor kills it and says why.
    expect(await rd.dispatcher.kill(id, victim.attemptId)).toBe('signalled');
    expect(await rd.result(victim.attemptId, 15_000)).toMatchObject({ state: 'KILLED', reason: 'CANCELLED' });
    expect(rd.dispatcher.inFlightCount).toBe(0);
    // Each attempt was settled once, though the batch's result names all three again.
    await new Promise((r) => setTimeout(r, 500));
    for (const p of attempts) expect(rd.results(p.attemptId, true)).toHaveLength(1);
  }, 60_000);

  it('settles batched attempts adopted by another dispatcher from their batch, queueing none again', async () => {
    const id = 'EB3';
    await executor(id, 2);
    const attempts = stage('job-b3', 2, () => ['sleep', '1']);
    // The first dispatcher queues the batch and goes away before any result (a crashed scheduler).
    const first = new RecordingDispatcher(redis);
    others.push(first);
    await first.dispatcher.dispatchMany(attempts.map((p) => ({ executorId: id, payload: p })));
    await first.close();
    const key = `${QUEUE_PREFIX}:${executorQueueName(id)}:${batchJobId(attempts[0]?.attemptId ?? '')}`;
    await waitFor('the batch to finish with nobody listening', async () => (await admin.hget(key, 'finishedOn')) !== null, 20_000);

    // The next one knows only the attempts (their ids and executor), as a recovered scheduler does.
    const next = new RecordingDispatcher(redis, { reconcileIntervalMs: 300 });
    others.push(next);
    await next.dispatcher.start();
    for (const p of attempts) await next.dispatcher.adopt(id, p);
    for (const p of attempts) expect(await next.result(p.attemptId, 10_000)).toMatchObject({ attemptId: p.attemptId, state: 'SUCCEEDED' });
    // No attempt went out again as a job of its own.
    for (const p of attempts) expect(await admin.exists(`${QUEUE_PREFIX}:${executorQueueName(id)}:${p.attemptId}`)).toBe(0);
  }, 60_000);

  it('reads the results of an executor it starts watching while its read is blocked on another executor', async () => {
    // Blocking 5 s on the event streams it reads (the other dispatchers here block 200 ms).
    // Its reconcile (which would find the result too) waits a minute.
    const slow = new RecordingDispatcher(redis, { blockMs: 5000, reconcileIntervalMs: 60_000 });
    others.push(slow);
    await slow.dispatcher.start();
    await executor('EW1', 1);
    await executor('EW2', 1);
    // EW1, idle, is the only one watched: the read blocks on its stream.
    await slow.dispatcher.watchExecutor('EW1');
    await new Promise((r) => setTimeout(r, 300));
    const [p] = stage('job-w1', 1, () => ['true']) as [AttemptPayload];
    const t0 = Date.now();
    // Dispatching to EW2 watches it; its result must not wait for the blocked read to time out.
    await slow.dispatcher.dispatchMany([{ executorId: 'EW2', payload: p }]);
    expect(await slow.result(p.attemptId, 10_000)).toMatchObject({ attemptId: p.attemptId, state: 'SUCCEEDED' });
    expect(Date.now() - t0).toBeLessThan(2500);
  }, 60_000);

  it('removes a finished queue job once every attempt in it was recorded, through the fenced connection only', async () => {
    const fence = new Fence();
    await fence.acquire(admin);
    const fenced = fencedRedis(admin, fence);
    const acking = new RecordingDispatcher(redis, { fenced });
    others.push(acking);
    await acking.dispatcher.start();
    const id = 'EA1';
    await executor(id, 4);
    const queue = `${QUEUE_PREFIX}:${executorQueueName(id)}`;
    const attempts = stage('job-a1', 3, () => ['true']);
    await acking.dispatcher.dispatchMany(attempts.map((p) => ({ executorId: id, payload: p })));
    for (const p of attempts) expect(await acking.result(p.attemptId)).toMatchObject({ state: 'SUCCEEDED' });
    const batch = batchJobId(attempts[0]?.attemptId ?? '');
    await waitFor('the batch job to finish', async () => (await admin.zscore(`${queue}:completed`, batch)) !== null, 10_000);
    // Finished, but not every result recorded yet: it stays (the reconcile may still need it).
    acking.dispatcher.acknowledge(attempts[0]?.attemptId ?? '');
    acking.dispatcher.acknowledge(attempts[1]?.attemptId ?? '');
    await new Promise((r) => setTimeout(r, 600));
    expect(await admin.exists(`${queue}:${batch}`)).toBe(1);
    // The last one recorded: the job, its place in the completed set and its batch index entries go.
    acking.dispatcher.acknowledge(attempts[2]?.attemptId ?? '');
    await waitFor('the finished job removed', async () => (await admin.exists(`${queue}:${batch}`)) === 0, 5_000);
    expect(await admin.zscore(`${queue}:completed`, batch)).toBeNull();
    expect(await admin.hmget(executorBatchIndexKey(id), ...attempts.map((p) => p.attemptId))).toEqual([null, null, null]);

    // A scheduler that no longer leads (another took a newer epoch) removes nothing.
    await new Fence().acquire(admin);
    const more = stage('job-a2', 2, () => ['true']);
    await acking.dispatcher.dispatchMany(more.map((p) => ({ executorId: id, payload: p })));
    for (const p of more) expect(await acking.result(p.attemptId)).toMatchObject({ state: 'SUCCEEDED' });
    const batch2 = batchJobId(more[0]?.attemptId ?? '');
    await waitFor('the second batch job to finish', async () => (await admin.zscore(`${queue}:completed`, batch2)) !== null, 10_000);
    for (const p of more) acking.dispatcher.acknowledge(p.attemptId);
    await new Promise((r) => setTimeout(r, 600));
    expect(await admin.exists(`${queue}:${batch2}`)).toBe(1);
  }, 60_000);
});
