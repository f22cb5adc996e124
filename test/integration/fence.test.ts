/**
 * Fencing by leadership epoch against a real redis-server: two schedulers'
 * stores on one Redis; once the second takes an epoch, every write of the
 * first (scripts, plain writes, transactions) is refused with NOT_LEADER and
 * changes nothing, while its reads still work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { HoldingStore } from '../../src/volumes/store.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { taskIdOf, type AttemptRecord } from '../../src/scheduler/jobs/model.js';
import { Fence, fencedRedis, isFencedError, LEADER_EPOCH_KEY } from '../../src/scheduler/fence.js';
import { LocusError } from '../../src/core/errors.js';

let redis: TestRedis;
let rawA: Redis;
let rawB: Redis;

beforeAll(async () => {
  redis = await startRedis();
  rawA = redis.client();
  rawB = redis.client();
});
afterAll(async () => {
  rawA.disconnect();
  rawB.disconnect();
  await redis.dispose();
});

const spec = validateJobSpec({ name: 'j', inputs: ['local://d/'], task: { command: ['true'] }, retries: 1 });
const attempt = (n: number): AttemptRecord => ({
  attempt: n, attemptId: `a${n}`, executorId: 'e1', host: 'agent-1', locality: 0, startedAt: 5, state: 'RUNNING',
});

async function refused(p: Promise<unknown>): Promise<LocusError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(LocusError);
  expect((err as LocusError).code).toBe('NOT_LEADER');
  expect(isFencedError(err)).toBe(true);
  return err as LocusError;
}

describe('fencing by leadership epoch', () => {
  it('lets the current leader write, refuses a stale one everything it would write, and tells it once', async () => {
    const fenceA = new Fence();
    const epochA = await fenceA.acquire(rawA);
    const a = fencedRedis(rawA, fenceA);
    const storeA = new JobStore(a);
    const told: string[] = [];
    fenceA.onFenced((m) => told.push(m));

    // The leader's writes go through: a script, a transaction larger than Lua's unpack limit, plain writes.
    await storeA.create({ id: 'job-1', tenant: 't', name: 'j', spec, outputDir: '/tmp/o', createdAt: 1, stages: [{ name: 'main', taskCount: -1 }] });
    const splits = Array.from({ length: 12_345 }, (_, i) => ({ uri: `local://d/f${i}`, offset: 0, length: 10, hosts: ['agent-1'], racks: ['r1'] }));
    expect((await storeA.openStage('job-1', 0, splits, 5)).opened).toBe(true);
    expect(await rawA.llen('locus:job:job-1:splits:0')).toBe(12_345);
    expect((await storeA.get('job-1'))?.counts.pending).toBe(12_345);
    expect((await storeA.get('job-1'))?.state).toBe('RUNNING');
    expect(await storeA.startAttempt(taskIdOf('job-1', 0, 0), attempt(1))).toBe(true);
    await storeA.setFrameworkId('fw-1');
    expect(await a.hset('locus:x', { f: 'v', g: 2 })).toBe(2);
    const tx = await a.multi().hset('locus:x', 'h', '3').hget('locus:x', 'nope').hget('locus:x', 'g').exec();
    expect(tx).toEqual([[null, 1], [null, null], [null, '2']]);

    // A standby takes over: a new epoch.
    const fenceB = new Fence();
    const epochB = await fenceB.acquire(rawB);
    expect(Number(epochB)).toBe(Number(epochA) + 1);
    expect(await fenceA.current(rawA)).toBe(false);
    const before = await rawA.hgetall('locus:job:job-1');
    const tasksBefore = await rawA.hgetall('locus:job:job-1:tasks');

    // The old leader is refused every kind of write, and nothing changes.
    await refused(storeA.finishAttempt(taskIdOf('job-1', 0, 0), 'a1', { state: 'SUCCEEDED', finishedAt: 9 }, 'counted', 1));
    await refused(storeA.startAttempt(taskIdOf('job-1', 0, 1), attempt(1)));
    await refused(storeA.setState('job-1', 'CANCELLED', ['RUNNING'], 6));
    await refused(storeA.setFrameworkId('fw-stale'));
    await refused(a.hset('locus:x', 'f', 'stale'));
    await refused(a.multi().del('locus:x').exec());
    await refused(a.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, 'locus:y', 'stale'));
    // Opening a stage, inline or staged in a list first: refused, and nothing of it is left.
    await rawA.hset('locus:job:job-2', 'record', '{}', 'state', 'RUNNING', 'stages', '[{"name":"a","taskCount":-1}]');
    const two = await rawA.hgetall('locus:job:job-2');
    await refused(storeA.openStage('job-2', 0, splits.slice(0, 5), 6));
    await refused(storeA.openStage('job-2', 0, splits, 6));
    expect(await rawA.hgetall('locus:job:job-2')).toEqual(two);
    expect(await rawA.keys('locus:job:job-2:*')).toEqual([]);
    expect(await rawA.hgetall('locus:job:job-1')).toEqual(before);
    expect(await rawA.hgetall('locus:job:job-1:tasks')).toEqual(tasksBefore);
    expect(await rawA.get('locus:framework-id')).toBe('fw-1');
    expect(await rawA.hget('locus:x', 'f')).toBe('v');
    expect(await rawA.exists('locus:y')).toBe(0);
    expect(await rawA.get(LEADER_EPOCH_KEY)).toBe(epochB);

    // Reads still work for the old leader, and it was told exactly once.
    expect((await storeA.get('job-1'))?.state).toBe('RUNNING');
    expect(fenceA.fenced).toBe(true);
    expect(told).toHaveLength(1);
    expect(told[0]).toMatch(/^LOCUSFENCED leadership epoch \d+ is stale/);

    // The new leader writes as usual, with the same scripts.
    const storeB = new JobStore(fencedRedis(rawB, fenceB));
    expect(await storeB.finishAttempt(taskIdOf('job-1', 0, 0), 'a1', { state: 'SUCCEEDED', finishedAt: 9 }, 'counted', 1)).toBe('SUCCEEDED');
    expect((await storeB.get('job-1'))?.counts.succeeded).toBe(1);
  });

  it('fences the volume store too, and a scheduler that never took an epoch cannot write', async () => {
    const fenceA = new Fence();
    await fenceA.acquire(rawA);
    const volumesA = new HoldingStore(fencedRedis(rawA, fenceA));
    await new Fence().acquire(rawB);
    const list = await volumesA.list({ includeDeleted: true });
    expect(Array.isArray(list)).toBe(true);
    await refused(volumesA.purgeDeleted(Number.MAX_SAFE_INTEGER).then(async () => {
      // Nothing to purge makes no write: write one through the same fenced connection.
      await fencedRedis(rawA, fenceA).set('locus:z', '1');
    }));
    await refused(fencedRedis(rawA, new Fence()).set('locus:z', '1'));
    expect(await rawA.exists('locus:z')).toBe(0);
  });

  it('runs a write of more arguments than a script can unpack (10,000 keys), and still refuses it once fenced', async () => {
    const conn = redis.client();
    try {
      const fence = new Fence();
      await fence.acquire(conn);
      const fenced = fencedRedis(conn, fence);
      const keys = Array.from({ length: 10_000 }, (_, i) => `big:${i}`);
      for (let i = 0; i < keys.length; i += 2_000) await rawA.mset(...keys.slice(i, i + 2_000).flatMap((k) => [k, '1']));
      expect(await fenced.unlink(...keys)).toBe(10_000);
      expect(await rawA.exists(...keys.slice(0, 5_000))).toBe(0);
      expect(await fenced.sadd('big:set', ...keys)).toBe(10_000);
      expect(await rawA.scard('big:set')).toBe(10_000);
      // Another scheduler takes the lead: the long write is refused as any other.
      await new Fence().acquire(rawB);
      await refused(fenced.unlink(...keys));
    } finally {
      conn.disconnect();
    }
  });
});
