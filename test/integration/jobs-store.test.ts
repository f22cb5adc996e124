import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { scriptCalls, startRedis, type TestRedis } from '../harness/redis.js';
import { JobStore, type StoredSplit } from '../../src/scheduler/jobs/store.js';
import { defineStoreScripts } from '../../src/scheduler/jobs/store-scripts.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { taskIdOf, type AttemptRecord } from '../../src/scheduler/jobs/model.js';
import { commitKey } from '../../src/executor/contract.js';
import { Fence, fencedRedis } from '../../src/scheduler/fence.js';

let redis: TestRedis;
let client: Redis;
let store: JobStore;

beforeAll(async () => {
  redis = await startRedis();
  client = redis.client();
  store = new JobStore(client);
});
afterAll(async () => {
  client.disconnect();
  await redis.dispose();
});

const spec = validateJobSpec({ name: 'j', inputs: ['local://d/'], task: { command: ['true'] }, retries: 1 });

async function newJob(id: string, splits = 3): Promise<void> {
  await store.create({ id, tenant: 't', name: 'j', spec, outputDir: '/tmp/o', createdAt: 1, stages: [{ name: 'main', taskCount: -1 }] });
  const opened = await store.openStage(id, 0, Array.from({ length: splits }, (_, i) => ({
    uri: `local://d/f${i}`, offset: 0, length: 10, hosts: ['agent-1'], racks: ['r1'],
  })), 2);
  expect(opened).toMatchObject({ opened: true, state: 'RUNNING' });
}

/** A store on a fenced connection of its own (the fence defines its scripts on the connection it wraps). */
async function fencedStore(): Promise<{ conn: Redis; fenced: JobStore }> {
  const conn = redis.client();
  const fence = new Fence();
  await fence.acquire(conn);
  return { conn, fenced: new JobStore(fencedRedis(conn, fence)) };
}

const attempt = (n: number, host = 'agent-1'): AttemptRecord => ({
  attempt: n, attemptId: `a${n}`, executorId: 'e1', host, locality: 0, startedAt: 5, state: 'RUNNING',
});

describe('JobStore', () => {
  it('stores splits compactly and counts pending tasks', async () => {
    await newJob('job-1');
    // A replay changes nothing.
    expect(await store.openStage('job-1', 0, [], 3)).toMatchObject({ opened: false, state: 'RUNNING', stages: [{ name: 'main', taskCount: 3 }], counts: { total: 3, pending: 3 } });
    const job = await store.get('job-1');
    expect(job?.state).toBe('RUNNING');
    expect(job?.updatedAt).toBe(2);
    expect(job?.counts.total).toBe(3);
    expect(job?.counts.pending).toBe(3);
    expect(job?.stages[0]?.taskCount).toBe(3);
    expect((await store.getSplits('job-1', 0, 1, 2))[0]?.uri).toBe('local://d/f1');
    expect(await client.exists('locus:job:job-1:tasks')).toBe(0);
  });

  it('returns a new job\'s record as a read of it would', async () => {
    const created = await store.create({ id: 'job-c', tenant: 't', name: 'j', spec, outputDir: '/tmp/o', createdAt: 7, stages: [{ name: 'main', taskCount: -1 }] });
    expect(created.created).toBe(true);
    if (!created.created) return;
    expect(created.job).toEqual(await store.get('job-c'));
    expect(created.job).toMatchObject({ state: 'PENDING', stage: 0, updatedAt: 7, counts: { total: 0, pending: 0 } });
  });

  it('opens a stage in one script: its tasks pending and the job RUNNING; later stages keep the earlier counts', async () => {
    // The store keeps the stage records it is given (the spec is the service's business).
    await store.create({ id: 'job-s', tenant: 't', name: 'j2', spec, outputDir: '/tmp/o', createdAt: 1, stages: [{ name: 'a', taskCount: -1 }, { name: 'b', taskCount: -1 }] });
    const split = (i: number): StoredSplit => ({ uri: `local://d/g${i}`, offset: 0, length: 1, hosts: [], racks: [] });
    expect(await store.openStage('job-s', 0, [split(0), split(1)], 3)).toMatchObject({
      opened: true, state: 'RUNNING', stages: [{ name: 'a', taskCount: 2 }, { name: 'b', taskCount: -1 }], counts: { total: 2, pending: 2 },
    });
    const second = await store.openStage('job-s', 1, [split(2)], 4);
    expect(second).toMatchObject({ opened: true, state: 'RUNNING', stages: [{ name: 'a', taskCount: 2 }, { name: 'b', taskCount: 1 }] });
    const job = await store.get('job-s');
    // What the script answers is what a read gives.
    expect(second.counts).toEqual(job?.counts);
    expect(job).toMatchObject({ stage: 1, updatedAt: 4, counts: { total: 3, pending: 3 } });
    expect(job?.stages).toEqual([{ name: 'a', taskCount: 2 }, { name: 'b', taskCount: 1 }]);
    await expect(store.openStage('job-none', 0, [split(0)], 5)).rejects.toThrow(/not found/);
  });

  it('gives a job that ended meanwhile no tasks (cancelled while its inputs were resolved)', async () => {
    await store.create({ id: 'job-x', tenant: 't', name: 'j', spec, outputDir: '/tmp/o', createdAt: 1, stages: [{ name: 'main', taskCount: -1 }] });
    expect(await store.setState('job-x', 'CANCELLED', ['PENDING', 'RESOLVING', 'RUNNING'], 2)).toBe(true);
    const many = Array.from({ length: 12_000 }, (_, i) => ({ uri: `local://d/x${i}`, offset: 0, length: 1, hosts: [], racks: [] }));
    expect(await store.openStage('job-x', 0, many, 3)).toMatchObject({ opened: false, state: 'CANCELLED', stages: [{ name: 'main', taskCount: -1 }], counts: { total: 0, pending: 0 } });
    const job = await store.get('job-x');
    expect(job?.counts).toMatchObject({ total: 0, pending: 0 });
    expect(job?.state).toBe('CANCELLED');
    // Nothing is left of the list the large stage was staged in.
    expect(await client.keys('locus:job:job-x:splits*')).toEqual([]);
  });

  it('opens a stage larger than one script\'s arguments through a staged list, with no expiry left on it', async () => {
    await newJob('job-huge', 25_001);
    expect(await client.llen('locus:job:job-huge:splits:0')).toBe(25_001);
    expect(await client.pttl('locus:job:job-huge:splits:0')).toBe(-1);
    expect(await client.exists('locus:job:job-huge:splits:0:staging')).toBe(0);
    expect((await store.getSplits('job-huge', 0, 25_000, 25_001))[0]?.uri).toBe('local://d/f25000');
    expect((await store.get('job-huge'))?.counts).toMatchObject({ total: 25_001, pending: 25_001 });
    // A staging list a writer left (stopped part-way) expires, and goes with the job's purge.
    await client.rpush('locus:job:job-huge:splits:0:staging', 'left');
    await store.setState('job-huge', 'SUCCEEDED', ['RUNNING'], 3);
    await store.purge('job-huge');
    expect(await client.keys('locus:job:job-huge*')).toEqual([]);
  });

  it('opens a stage of 1,001-10,000 tasks inline across the script\'s pieces, and maps every counter to its own name', async () => {
    await store.create({ id: 'job-mid', tenant: 't', name: 'j', spec, outputDir: '/tmp/o', createdAt: 1, stages: [{ name: 'main', taskCount: -1 }] });
    // Distinct counter values, so a counter read under another's name shows.
    await client.hset('locus:job:job-mid', 'n:running', '3', 'n:succeeded', '5', 'n:failed', '7', 'n:node', '11', 'n:rack', '13', 'n:any', '17', 'n:anywhere', '19');
    const many = Array.from({ length: 2_501 }, (_, i) => ({ uri: `local://d/m${i}`, offset: i, length: 1, hosts: [`h${i % 3}`], racks: [] }));
    const opened = await store.openStage('job-mid', 0, many, 2);
    expect(opened.counts).toEqual({ total: 2_501, pending: 2_501, running: 3, succeeded: 5, failed: 7, nodeLocal: 11, rackLocal: 13, anyLocal: 17 + 19 });
    expect(opened.counts).toEqual((await store.get('job-mid'))?.counts);
    expect(await client.llen('locus:job:job-mid:splits:0')).toBe(2_501);
    for (const i of [0, 999, 1_000, 1_999, 2_000, 2_500]) {
      expect((await store.getSplits('job-mid', 0, i, i + 1))[0]).toMatchObject({ uri: `local://d/m${i}`, offset: i, hosts: [`h${i % 3}`] });
    }
  });

  it('refuses a staged list of the wrong length whole (a chunk sent twice, or expired), and answers a replay of its own call "opened"', async () => {
    await store.create({ id: 'job-st', tenant: 't', name: 'j', spec, outputDir: '/tmp/o', createdAt: 1, stages: [{ name: 'main', taskCount: -1 }] });
    const scripted = defineStoreScripts(client);
    const open = (staged: string, nonce: string): ReturnType<typeof scripted.locusOpenStage> =>
      scripted.locusOpenStage('locus:job:job-st', 'locus:job:job-st:splits:0', staged, '0', '3', '9', nonce);
    await client.rpush('locus:job:job-st:splits:0:staging', 'a', 'b', 'a', 'b');
    expect((await open('locus:job:job-st:splits:0:staging', 'n1'))[0]).toBe(-2);
    expect(await client.exists('locus:job:job-st:splits:0:staging', 'locus:job:job-st:splits:0')).toBe(0);
    expect((await open('locus:job:job-st:splits:0:staging', 'n1'))[0]).toBe(-2); // missing: length 0
    expect((await store.get('job-st'))?.counts).toMatchObject({ total: 0, pending: 0 });
    expect((await store.get('job-st'))?.state).toBe('PENDING');
    await client.rpush('locus:job:job-st:splits:0:staging', 'a', 'b', 'c');
    expect((await open('locus:job:job-st:splits:0:staging', 'n2'))[0]).toBe(1);
    // The same call again (its reply lost, sent again): "opened", and nothing is added twice.
    expect((await open('locus:job:job-st:splits:0:staging', 'n2'))[0]).toBe(1);
    // Another start of the stage: not opened by it.
    expect((await open('', 'n3'))[0]).toBe(0);
    expect((await store.get('job-st'))?.counts).toMatchObject({ total: 3, pending: 3 });
    expect(await client.lrange('locus:job:job-st:splits:0', 0, -1)).toEqual(['a', 'b', 'c']);
  });

  it('keeps an empty stage list a list', async () => {
    await store.create({ id: 'job-e', tenant: 't', name: 'j', spec, outputDir: '/tmp/o', createdAt: 1, stages: [] });
    expect((await store.openStage('job-e', 0, [], 2)).stages).toEqual([]);
    expect((await store.get('job-e'))?.stages).toEqual([]);
  });

  it('starts attempts only for a RUNNING job, once, ignoring a replayed start', async () => {
    const t = taskIdOf('job-1', 0, 0);
    expect(await store.setState('job-1', 'PENDING', ['RUNNING'], 4)).toBe(true);
    expect(await store.startAttempt(t, attempt(1))).toBe(false);
    expect(await store.setState('job-1', 'RUNNING', ['PENDING'], 5)).toBe(true);
    expect(await store.startAttempt(t, attempt(1))).toBe(true);
    expect(await store.startAttempt(t, attempt(1))).toBe(false);
    const job = await store.get('job-1');
    expect(job?.counts.running).toBe(1);
    expect(job?.counts.pending).toBe(2);
  });

  it('finishes an attempt once; a replayed or stale result is STALE', async () => {
    const t = taskIdOf('job-1', 0, 0);
    expect(await store.finishAttempt(t, 'a1', { state: 'SUCCEEDED', finishedAt: 9 }, 'counted', 1, '/out/0')).toBe('SUCCEEDED');
    expect(await store.finishAttempt(t, 'a1', { state: 'SUCCEEDED', finishedAt: 9 }, 'counted', 1)).toBe('STALE');
    expect(await store.finishAttempt(t, 'a0', { state: 'FAILED' }, 'counted', 1)).toBe('STALE');
    const job = await store.get('job-1');
    expect(job?.counts).toMatchObject({ succeeded: 1, running: 0, pending: 2, nodeLocal: 1 });
    expect((await store.getTask(t))?.outputPath).toBe('/out/0');
  });

  it('classifies failures: not-counted retries freely, counted up to retries, fatal at once', async () => {
    const t = taskIdOf('job-1', 0, 1);
    await store.startAttempt(t, attempt(1));
    expect(await store.finishAttempt(t, 'a1', { state: 'LOST' }, 'not-counted', 1)).toBe('PENDING');
    await store.startAttempt(t, attempt(2));
    expect(await store.finishAttempt(t, 'a2', { state: 'FAILED', host: 'agent-2' }, 'counted', 1)).toBe('PENDING');
    await store.startAttempt(t, attempt(3));
    expect(await store.finishAttempt(t, 'a3', { state: 'FAILED', host: 'agent-3' }, 'counted', 1)).toBe('FAILED');
    const task = await store.getTask(t);
    expect(task?.failures).toBe(2);
    expect(task?.failedHosts).toEqual(['agent-2', 'agent-3']);
    expect(task?.attempts.map((a) => a.state)).toEqual(['LOST', 'FAILED', 'FAILED']);
    const t2 = taskIdOf('job-1', 0, 2);
    await store.startAttempt(t2, attempt(1));
    expect(await store.finishAttempt(t2, 'a1', { state: 'FAILED' }, 'fatal', 5)).toBe('FAILED');
    expect((await store.get('job-1'))?.counts).toMatchObject({ failed: 2, pending: 0, running: 0 });
  });

  it('starts only the task\'s next attempt: a start counted from an older record is refused and changes nothing', async () => {
    await newJob('job-next', 1);
    const t = taskIdOf('job-next', 0, 0);
    expect(await store.startAttempt(t, attempt(2))).toBe(false);
    expect(await store.startAttempt(t, attempt(1))).toBe(true);
    expect(await store.finishAttempt(t, 'a1', { state: 'LOST' }, 'not-counted', 1)).toBe('PENDING');
    // Attempt 1 again (its number read before attempt 1 ran) would repeat attempt id a1.
    expect(await store.startAttempt(t, attempt(1))).toBe(false);
    expect((await store.getTask(t))?.attempts.map((a) => a.attemptId)).toEqual(['a1']);
    expect((await store.get('job-next'))?.counts).toMatchObject({ pending: 1, running: 0 });
    expect(await store.startAttempt(t, attempt(2))).toBe(true);
  });

  it('sends the starts and finishes made together as one script call each, through the fence, each with its own answer or error', async () => {
    const { conn, fenced } = await fencedStore();
    await newJob('job-batch', 300);
    // A record that does not decode: its transition fails alone.
    await client.hset('locus:job:job-batch:tasks', '0.7', '{not json');
    const calls = (): Promise<number> => scriptCalls(client);
    const before = await calls();
    const ids = Array.from({ length: 300 }, (_, i) => taskIdOf('job-batch', 0, i));
    const starts = await Promise.allSettled(ids.map((t) => fenced.startAttempt(t, attempt(1))));
    // 300 starts: two calls (a batch holds 256); the fence's own reads are not scripts.
    expect(await calls() - before).toBe(2);
    expect(starts.filter((s) => s.status === 'fulfilled' && s.value === true)).toHaveLength(299);
    const bad = starts[7];
    expect(bad?.status).toBe('rejected');
    expect(bad?.status === 'rejected' ? String(bad.reason) : '').toMatch(/decode|json|Expected/i);
    const mid = await calls();
    const finishes = await Promise.allSettled(ids.map((t, i) => fenced.finishAttempt(t, 'a1', { state: i % 2 === 0 ? 'SUCCEEDED' : 'LOST' }, i % 2 === 0 ? 'counted' : 'not-counted', 1)));
    expect(await calls() - mid).toBe(2);
    expect(finishes.filter((f) => f.status === 'fulfilled' && f.value === 'SUCCEEDED')).toHaveLength(150);
    expect(finishes.filter((f) => f.status === 'fulfilled' && f.value === 'PENDING')).toHaveLength(149);
    expect(finishes[7]?.status).toBe('rejected');
    expect((await fenced.get('job-batch'))?.counts).toMatchObject({ succeeded: 150, running: 0, pending: 150 });
    // Items of one batch run in order, as one call after the other would: of two starts of the
    // same attempt, the first starts it and the second is refused.
    expect(await Promise.all([fenced.startAttempt(ids[1] ?? '', attempt(2)), fenced.startAttempt(ids[1] ?? '', attempt(2))])).toEqual([true, false]);
    // A stale leader's batch is refused whole, and writes nothing.
    await client.incr('locus:leader:epoch');
    const refused = await Promise.allSettled([fenced.startAttempt(ids[3] ?? '', attempt(2)), fenced.startAttempt(ids[5] ?? '', attempt(2))]);
    expect(refused.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((await store.getTask(ids[3] ?? ''))?.state).toBe('PENDING');
    conn.disconnect();
  });

  it('changes job state only from allowed states', async () => {
    expect(await store.setState('job-1', 'RUNNING', ['PENDING'], 11)).toBe(false);
    expect(await store.setState('job-1', 'FAILED', ['RUNNING'], 12, 'boom')).toBe(true);
    const job = await store.get('job-1');
    expect(job?.state).toBe('FAILED');
    expect(job?.finishedAt).toBe(12);
    expect(job?.message).toBe('boom');
  });

  it('returns the first job for a repeated idempotency key', async () => {
    const a = await store.create({ id: 'job-a', tenant: 't', name: 'j', spec, outputDir: '/o', createdAt: 2, stages: [] }, 'key-1');
    const b = await store.create({ id: 'job-b', tenant: 't', name: 'j', spec, outputDir: '/o', createdAt: 3, stages: [] }, 'key-1');
    expect(a).toMatchObject({ id: 'job-a', created: true });
    expect(b).toEqual({ id: 'job-a', created: false });
    expect(await store.get('job-b')).toBeUndefined();
  });

  it('keeps commit records while the job exists and deletes them with a purged job', async () => {
    await newJob('job-p', 4);
    await newJob('job-keep', 2);
    const commits = (id: string, n: number): string[] => Array.from({ length: n }, (_, i) => commitKey(taskIdOf(id, 0, i)));
    for (const k of [...commits('job-p', 4), ...commits('job-keep', 2)]) await client.set(k, '{"attemptId":"x"}');
    await store.startAttempt(taskIdOf('job-p', 0, 0), attempt(1));
    // Not finished: refused, and nothing is gone.
    await expect(store.purge('job-p')).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await client.exists(...commits('job-p', 4))).toBe(4);
    await expect(store.purge('no-such-job')).rejects.toMatchObject({ code: 'NOT_FOUND' });

    expect(await store.setState('job-p', 'CANCELLED', ['PENDING', 'RUNNING'], 20)).toBe(true);
    expect(await store.purge('job-p')).toBe(4);
    expect(await client.exists(...commits('job-p', 4))).toBe(0);
    expect(await client.exists('locus:job:job-p', 'locus:job:job-p:tasks', 'locus:job:job-p:splits:0')).toBe(0);
    expect(await client.zscore('locus:jobs', 'job-p')).toBeNull();
    expect(await client.hlen('locus:purging')).toBe(0);
    expect(await store.get('job-p')).toBeUndefined();
    // Another job's records are untouched.
    expect(await client.exists(...commits('job-keep', 2))).toBe(2);
    expect(await store.get('job-keep')).toBeDefined();
  });

  it('finishes a purge that stopped between the record and the commit records', async () => {
    // As a crash right after the purge script leaves it: the job gone, its task counts noted.
    const ids = [0, 1, 2].map((i) => commitKey(taskIdOf('job-crashed', i < 2 ? 0 : 1, i < 2 ? i : 0)));
    for (const k of ids) await client.set(k, '{}');
    await client.hset('locus:purging', 'job-crashed', JSON.stringify([{ name: 'a', taskCount: 2 }, { name: 'b', taskCount: 1 }]));
    expect(await store.finishPurges()).toBe(3);
    expect(await client.exists(...ids)).toBe(0);
    expect(await client.hlen('locus:purging')).toBe(0);
  });

  it('purges a job with a stage of 10,000 tasks through the fence (whose plain commands run as a script, with arguments that stop near 8,000)', async () => {
    const { conn, fenced } = await fencedStore();
    await newJob('job-big', 10_000);
    const keys = Array.from({ length: 10_000 }, (_, i) => commitKey(taskIdOf('job-big', 0, i)));
    for (let i = 0; i < keys.length; i += 2_000) await client.mset(...keys.slice(i, i + 2_000).flatMap((k) => [k, '{}']));
    expect(await fenced.setState('job-big', 'CANCELLED', ['PENDING', 'RESOLVING', 'RUNNING'], 20)).toBe(true);
    expect(await fenced.purge('job-big')).toBe(10_000);
    expect(await client.exists(...keys.slice(0, 5_000))).toBe(0);
    expect(await client.hlen('locus:purging')).toBe(0);
    conn.disconnect();
  });

  it('pages the jobs finished by a cutoff: by when they finished (not when created), with nothing running, from an offset', async () => {
    for (const id of ['job-r-old', 'job-r-late', 'job-r-busy', 'job-r-running']) {
      await newJob(id, 1);
    }
    // All created at 1; finished at 10 and 50; cancelled at 10 with an attempt still running; running.
    await store.setState('job-r-old', 'SUCCEEDED', ['PENDING', 'RUNNING'], 10);
    await store.setState('job-r-late', 'FAILED', ['PENDING', 'RUNNING'], 50);
    expect(await store.startAttempt(taskIdOf('job-r-busy', 0, 0), attempt(1))).toBe(true);
    await store.setState('job-r-busy', 'CANCELLED', ['PENDING', 'RUNNING'], 10);
    expect(await store.startAttempt(taskIdOf('job-r-running', 0, 0), attempt(1))).toBe(true);
    const all = await store.finishedBefore(30, 0, 10_000);
    expect(all.ids).toContain('job-r-old');
    for (const id of ['job-r-late', 'job-r-busy', 'job-r-running']) expect(all.ids).not.toContain(id);
    // Paging: every job created by the cutoff is read once, page by page.
    const total = all.scanned;
    let read = 0;
    const seen: string[] = [];
    for (let offset = 0; ; offset += 2) {
      const page = await store.finishedBefore(30, offset, 2);
      read += page.scanned;
      seen.push(...page.ids);
      if (page.scanned < 2) break;
    }
    expect(read).toBe(total);
    expect(seen.sort()).toEqual([...all.ids].sort());
  });

  it('an idempotency key naming a purged job is taken by the new job', async () => {
    const job = (id: string): Parameters<JobStore['create']>[0] => ({ id, tenant: 't', name: 'j', spec, outputDir: '/tmp/o', createdAt: 1, stages: [{ name: 'main', taskCount: 0 }] });
    expect(await store.create(job('job-i1'), 'key-after-purge')).toMatchObject({ id: 'job-i1', created: true });
    expect(await store.create(job('job-i2'), 'key-after-purge')).toEqual({ id: 'job-i1', created: false });
    expect(await store.setState('job-i1', 'SUCCEEDED', ['PENDING'], 5)).toBe(true);
    await store.purge('job-i1');
    expect(await store.create(job('job-i3'), 'key-after-purge')).toMatchObject({ id: 'job-i3', created: true });
    expect(await store.create(job('job-i4'), 'key-after-purge')).toEqual({ id: 'job-i3', created: false });
  });
});
