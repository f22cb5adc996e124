/**
 * Liveness of a job whose tasks avoid hosts (issue #14: after a host was lost, tasks stayed
 * PENDING with nothing running). At the job service with a real redis-server and the real
 * JobStore scripts, placed by the real placement pass over a snapshot of live executors;
 * attempts are played by the test, which writes commit records as executors do.
 *
 * - A read failure of an output held on another host is not charged to the reading host: not
 *   in the task's failed hosts, not toward the job's avoided hosts.
 * - A job whose tasks came to avoid every live host (hosts that failed them twice, hosts whose
 *   outputs were declared lost) still completes: placement uses an avoided host when no other
 *   live host could run the task, and explain says so.
 * - A start refused because the service's pending view of a task was older than its record
 *   (the task ran again meanwhile) puts the task back, not drops it.
 * - A result this process finds stale for the attempt it holds as running (another scheduler
 *   process finished it) does not leave the task held as running for ever.
 * - A start Redis did not answer (its reply lost, or Redis down) leaves neither a task RUNNING
 *   in Redis with no executor nor a pending task forgotten here.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INPUT_UNREACHABLE, type AttemptPayload, type AttemptResult } from '../../src/executor/contract.js';
import { LocalityLevel } from '../../src/core/locality.js';
import { HOST_FAILURES_TO_AVOID, JobService, UNCOUNTED_INPUT_FAILURES, hostAtFault } from '../../src/scheduler/jobs/service.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { validateJobSpec, type JobSpec } from '../../src/scheduler/jobs/spec.js';
import type { JobRecord } from '../../src/scheduler/jobs/model.js';
import { explain, place, type ExecutorView, type Snapshot } from '../../src/scheduler/placement/index.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { waitFor } from '../harness/wait.js';
import { pendingIds, serviceOn, startOn, succeedAs, twoStage } from './jobs-harness.js';

let redis: TestRedis;
let conn: Redis;

beforeAll(async () => {
  redis = await startRedis();
  conn = redis.client();
});
afterAll(async () => {
  conn?.disconnect();
  await redis?.dispose();
});

const service = (store?: JobStore): JobService => serviceOn(conn, '/tmp/locus-liveness-outputs', store);
const start = startOn;
const succeed = (jobs: JobService, p: AttemptPayload, host: string): Promise<string> => succeedAs(jobs, conn, p, host);

function failed(p: AttemptPayload, host: string, over: Partial<AttemptResult> = {}): AttemptResult {
  const now = Date.now();
  return {
    attemptId: p.attemptId, taskId: p.taskId, state: 'FAILED', exitCode: 1, reason: 'EXIT_NONZERO', message: 'exit 1',
    startedAt: now, finishedAt: now, host, ...over,
  };
}

/** Live executors, one free slot each, as the coordinator's snapshot names them. */
function snapshotOf(hosts: readonly string[]): Snapshot {
  const executors: ExecutorView[] = hosts.map((h) => ({
    executorId: `ex-${h}`, agentId: `ag-${h}`, hostname: h, slotResources: { cpus: 1, mem: 1024, disk: 1024 }, slots: 1, freeSlots: 1, freeSince: 0,
  }));
  return { now: Date.now(), offers: [], executors, tenants: [] };
}

/**
 * Run the job to its end as the coordinator would: a placement pass over the live executors,
 * every assignment started and succeeded, again until the job is done. Fails when a pass places
 * nothing while the job has pending tasks (nothing else could ever start them).
 */
async function runToEnd(jobs: JobService, jobId: string, hosts: readonly string[]): Promise<JobRecord> {
  const deadline = Date.now() + 10_000;
  for (let pass = 0; ; pass++) {
    const job = await jobs.get(jobId);
    if (job.state !== 'RUNNING') return job;
    if (Date.now() > deadline) throw new Error(`job still ${job.state}: ${JSON.stringify(job.counts)}`);
    const waiting = pendingIds(jobs, jobId);
    if (waiting.length === 0) {
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    const plan = place(snapshotOf(hosts), jobs.index);
    const mine = plan.assignments.filter((a) => a.jobId === jobId);
    expect(mine.length, `pass ${pass}: pending ${waiting.join(', ')} avoiding ${JSON.stringify([...jobs.pendingTasks()].map((t) => t.avoidHosts))}, none placed`).toBeGreaterThan(0);
    for (const a of mine) {
      const p = await jobs.startAttempt(a.taskId, { id: a.executorId, host: a.hostname }, a.level);
      if (p) expect(await succeed(jobs, p, a.hostname)).toBe("SUCCEEDED");
    }
  }
}

/** Submit, run the three maps on h1..h3, and wait for the reduce to be pending. */
async function mapsCommitted(jobs: JobService, spec: JobSpec): Promise<JobRecord> {
  const job = await jobs.submit('default', spec);
  await waitFor('maps pending', () => (pendingIds(jobs, job.id).length === 3 ? true : undefined));
  const maps: AttemptPayload[] = [];
  for (let i = 0; i < 3; i++) maps.push(await start(jobs, `${job.id}.0.${i}`, `h${i + 1}`));
  for (let i = 0; i < 3; i++) expect(await succeed(jobs, maps[i] as AttemptPayload, `h${i + 1}`)).toBe('SUCCEEDED');
  await waitFor('reduce pending', () => (pendingIds(jobs, job.id).join() === `${job.id}.1.0` ? true : undefined));
  return job;
}

describe('a failure to read another host\'s output is not the reading host\'s', () => {
  it('names the host at fault', () => {
    expect(hostAtFault({ reason: INPUT_UNREACHABLE, inputHost: 'h3', host: 'h1' })).toBe(false);
    // Its own output, or an input with no host named (storage unreachable from there): the host's.
    expect(hostAtFault({ reason: INPUT_UNREACHABLE, inputHost: 'h1', host: 'h1' })).toBe(true);
    expect(hostAtFault({ reason: INPUT_UNREACHABLE, host: 'h1' })).toBe(true);
    expect(hostAtFault({ reason: 'EXIT_NONZERO', host: 'h1' })).toBe(true);
  });

  it('a reduce failing to read a lost host past the uncounted cap counts, but its own host is neither failed nor avoided', async () => {
    const jobs = service();
    const job = await mapsCommitted(jobs, twoStage(HOST_FAILURES_TO_AVOID + 1));
    const reduceId = `${job.id}.1.0`;
    expect(await jobs.hostLost('h3', 'agent removed')).toBe(1);
    const m2 = await start(jobs, `${job.id}.0.2`, 'h2');
    expect(await succeed(jobs, m2, 'h2')).toBe('SUCCEEDED');
    await waitFor('reduce released', () => (pendingIds(jobs, job.id).join() === reduceId ? true : undefined));
    // The reduce keeps failing to read h3 (a stale location, say) from h1: uncounted up to the cap,
    // then counted, HOST_FAILURES_TO_AVOID times and more.
    for (let i = 0; i < UNCOUNTED_INPUT_FAILURES + HOST_FAILURES_TO_AVOID; i++) {
      const r = await start(jobs, reduceId, 'h1');
      expect(await jobs.finishAttempt(failed(r, 'h1', { reason: INPUT_UNREACHABLE, inputHost: 'h3', exitCode: null, message: 'output 00002 on h3: no route' }))).toBe('PENDING');
      await waitFor('reduce pending again', () => (pendingIds(jobs, job.id).includes(reduceId) ? true : undefined));
    }
    const rec = await jobs.getTaskRecord(reduceId);
    expect(rec?.failures).toBe(HOST_FAILURES_TO_AVOID);
    expect(rec?.failedHosts).toEqual([]);
    expect(jobs.index.get(reduceId)?.avoidHosts ?? []).toEqual([]);
    await jobs.cancel(job.id);
  });
});

describe('a task whose input its host cannot reach is retried after a growing pause', () => {
  it('waits the pause before it is pending again, doubling per failure, and counts nothing up to the cap', async () => {
    const pauseMs = 150;
    const jobs = serviceOn(conn, '/tmp/locus-liveness-outputs', undefined, pauseMs);
    const job = await jobs.submit('default', validateJobSpec({ name: 'unreachable-input', retries: 0, tasks: [{ command: ['run'] }], task: { command: ['true'] } }));
    const id = `${job.id}.0.0`;
    await waitFor('task pending', () => (pendingIds(jobs, job.id).length === 1 ? true : undefined));
    const waited: number[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await start(jobs, id, 'h1');
      const t0 = Date.now();
      // A split held only on h2, whose block server h1 cannot reach yet.
      expect(await jobs.finishAttempt(failed(p, 'h1', { reason: INPUT_UNREACHABLE, exitCode: null, message: 'held only by other hosts, and no block server is known there yet' }))).toBe('PENDING');
      // Not offered again at once: the same source would most likely be unreachable again.
      expect(pendingIds(jobs, job.id)).toEqual([]);
      await waitFor('pending again', () => (pendingIds(jobs, job.id).length === 1 ? true : undefined), 10_000, 5);
      waited.push(Date.now() - t0);
    }
    expect(waited[0]).toBeGreaterThanOrEqual(pauseMs - 5);
    expect(waited[1]).toBeGreaterThanOrEqual(2 * pauseMs - 5);
    expect(waited[2]).toBeGreaterThanOrEqual(4 * pauseMs - 5);
    const rec = await jobs.getTaskRecord(id);
    expect(rec?.failures).toBe(0);
    expect(rec?.attempts.map((a) => a.reason)).toEqual([INPUT_UNREACHABLE, INPUT_UNREACHABLE, INPUT_UNREACHABLE]);
    // A cancel during a pause: the task is not put back.
    const p = await start(jobs, id, 'h1');
    await jobs.finishAttempt(failed(p, 'h1', { reason: INPUT_UNREACHABLE, exitCode: null, message: 'unreachable' }));
    await jobs.cancel(job.id);
    await new Promise((r) => setTimeout(r, 8 * pauseMs + 100));
    expect(pendingIds(jobs, job.id)).toEqual([]);
    expect((await jobs.get(job.id)).state).toBe('CANCELLED');
  });
});

describe('purging a cancelled job', () => {
  it('waits for its attempts being stopped: their results still end them and give their slots back', async () => {
    const jobs = service();
    const job = await jobs.submit('default', validateJobSpec({ name: 'purge-after-cancel', tasks: [{ command: ['sleep', '30'] }], task: { command: ['true'] } }));
    const id = `${job.id}.0.0`;
    await waitFor('task pending', () => (pendingIds(jobs, job.id).length === 1 ? true : undefined));
    const p = await start(jobs, id, 'h1');
    // Running: refused for that reason, not as an attempt being stopped.
    await expect(jobs.purge(job.id)).rejects.toThrow(/has not finished: cancel it/);
    const { kill } = await jobs.cancel(job.id);
    expect(kill.map((k) => k.attemptId)).toEqual([p.attemptId]);
    // Its attempt is still being killed: purge is refused, and the job stays known.
    await expect(jobs.purge(job.id)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(jobs.attemptsOnExecutor('ex-h1')).toEqual([{ taskId: id, attemptId: p.attemptId }]);
    // The killed attempt's result is not stale: the attempt ends, and nothing holds a slot for it.
    const now = Date.now();
    expect(await jobs.finishAttempt({ attemptId: p.attemptId, taskId: id, state: 'KILLED', exitCode: null, reason: 'CANCELLED', message: 'killed', startedAt: now, finishedAt: now, host: 'h1' })).not.toBe('STALE');
    expect(jobs.attemptsOnExecutor('ex-h1')).toEqual([]);
    expect(jobs.runningByTenant().get('default') ?? 0).toBe(0);
    expect((await jobs.purge(job.id)).jobId).toBe(job.id);
  });
});

describe('a job whose tasks avoid every live host still completes', () => {
  it('tasks that failed twice on each of the two live hosts are placed on them anyway', async () => {
    const jobs = service();
    const spec = validateJobSpec({ name: 'flaky-hosts', retries: 5, tasks: [0, 1, 2, 3, 4, 5].map(() => ({ command: ['run'] })), task: { command: ['true'] } });
    const job = await jobs.submit('default', spec);
    await waitFor('tasks pending', () => (pendingIds(jobs, job.id).length === 6 ? true : undefined));
    // Tasks 0-1 fail on h1, 2-3 on h2: each host failed this job twice, so every task avoids both.
    for (const [i, host] of [[0, 'h1'], [1, 'h1'], [2, 'h2'], [3, 'h2']] as const) {
      const p = await start(jobs, `${job.id}.0.${i}`, host);
      expect(await jobs.finishAttempt(failed(p, host))).toBe('PENDING');
    }
    await waitFor('failed tasks pending again', () => (pendingIds(jobs, job.id).length === 6 ? true : undefined));
    for (const t of jobs.pendingTasks()) if (t.jobId === job.id) expect([...t.avoidHosts].sort()).toEqual(['h1', 'h2']);
    // Explain says why it still runs: every live host is one it avoids.
    const why = explain(`${job.id}.0.5`, snapshotOf(['h1', 'h2']), jobs.index);
    expect(why.code).toBe('PLACEABLE');
    expect(why.message).toMatch(/every live host that could run it is one it avoids \(h1, h2\)/);
    const done = await runToEnd(jobs, job.id, ['h1', 'h2']);
    expect(done.state, done.message).toBe('SUCCEEDED');
    expect(done.counts.succeeded).toBe(6);
  });

  it('recomputes avoiding every host declared lost are placed on the live ones, and the job completes', async () => {
    const jobs = service();
    const job = await mapsCommitted(jobs, twoStage(0));
    // A cascade: h1 stops answering, its map is recomputed on h2; h2 stops answering, its map is
    // recomputed on h3; h3 is gone for good, and with it the attempt there. h1 and h2 are back
    // (with executors) when the recomputes are pending again: each avoids all three hosts.
    const lose = async (p: AttemptPayload): Promise<void> => {
      const now = Date.now();
      expect(await jobs.finishAttempt({ attemptId: p.attemptId, taskId: p.taskId, state: 'LOST', exitCode: null, reason: 'EXECUTOR_LOST', message: 'executor lost', startedAt: now, finishedAt: now, host: '' })).toBe('PENDING');
    };
    expect(await jobs.hostLost('h1', 'agent unreachable')).toBe(1);
    const m0 = await start(jobs, `${job.id}.0.0`, 'h2');
    expect(await jobs.hostLost('h2', 'agent unreachable')).toBe(1);
    const m1 = await start(jobs, `${job.id}.0.1`, 'h3');
    expect(await jobs.hostLost('h3', 'agent removed')).toBe(1);
    await lose(m0);
    await lose(m1);
    expect(pendingIds(jobs, job.id)).toEqual([0, 1, 2].map((i) => `${job.id}.0.${i}`));
    for (const t of jobs.pendingTasks()) if (t.jobId === job.id) expect([...t.avoidHosts].sort()).toEqual(['h1', 'h2', 'h3']);
    const done = await runToEnd(jobs, job.id, ['h1', 'h2']);
    expect(done.state, done.message).toBe('SUCCEEDED');
    expect(done.counts.succeeded).toBe(done.counts.total);
    const tasks = await jobs.tasks(job.id);
    expect(tasks.filter((t) => t.stage === 0).map((t) => t.generation)).toEqual([1, 1, 1]);
  });
});

/** The real store, whose next getDynamic calls (the job's state and counters) wait until released. */
class HeldStore extends JobStore {
  private readonly holds: Promise<void>[] = [];
  /** Hold the next getDynamic not held yet; returns what releases it. */
  holdNext(): () => void {
    let release = (): void => undefined;
    this.holds.push(new Promise((r) => { release = r; }));
    return () => release();
  }

  override async getDynamic(jobId: string): ReturnType<JobStore['getDynamic']> {
    const held = this.holds.shift();
    if (held !== undefined) await held;
    return await super.getDynamic(jobId);
  }
}

/** A lost attempt's result for `p`. */
function lost(p: AttemptPayload): AttemptResult {
  return { ...failed(p, ''), state: 'LOST', exitCode: null, reason: 'EXECUTOR_LOST', message: 'executor lost' };
}

describe('a task made pending by two paths at once', () => {
  it('a retry read before the task ran again does not replace its fresher pending view (no attempt number given twice)', async () => {
    const store = new HeldStore(conn);
    const jobs = service(store);
    const job = await mapsCommitted(jobs, twoStage(0));
    const m0 = `${job.id}.0.0`;
    expect(await jobs.hostLost('h1', 'agent removed')).toBe(1);
    const a2 = await start(jobs, m0, 'h2');
    expect(a2.attempt).toBe(2);
    // Attempt 2 is lost; its retry reads the task's record, then waits (held) for the job's state.
    const release = store.holdNext();
    const retry = jobs.finishAttempt(lost(a2));
    await waitFor('attempt 2 recorded as lost', async () => ((await jobs.getTaskRecord(m0))?.attempts[1]?.state === 'LOST' ? true : undefined));
    await new Promise((r) => setTimeout(r, 50));
    // Meanwhile a second loss makes the recompute pending (it is neither pending nor running
    // here), and it runs again (attempt 3) and is lost again, its own retry pending at once.
    expect(await jobs.hostLost('h2', 'agent removed')).toBe(1);
    const a3 = await start(jobs, m0, 'h3');
    expect(a3.attempt).toBe(3);
    expect(await jobs.finishAttempt(lost(a3))).toBe('PENDING');
    expect([...jobs.pendingTasks()].find((t) => t.taskId === m0)?.attempts).toBe(3);
    // The first retry goes on with the record it read before attempt 3: it must not put the
    // task back as it was then.
    release();
    expect(await retry).toBe('PENDING');
    expect([...jobs.pendingTasks()].find((t) => t.taskId === m0)?.attempts).toBe(3);
    const a4 = await start(jobs, m0, 'h3');
    expect(a4.attempt).toBe(4);
    const ids = (await jobs.getTaskRecord(m0))?.attempts.map((a) => a.attemptId) ?? [];
    expect(new Set(ids).size).toBe(ids.length);
    await jobs.cancel(job.id);
  });

  it('a start refused because the pending view is older than the task\'s record puts the task back from its record', async () => {
    const store = new HeldStore(conn);
    const jobs = service(store);
    const job = await mapsCommitted(jobs, twoStage(0));
    const m0 = `${job.id}.0.0`;
    expect(await jobs.hostLost('h1', 'agent removed')).toBe(1);
    const a2 = await start(jobs, m0, 'h2');
    // Attempt 2's retry reads the record (2 attempts), then waits.
    const releaseFirst = store.holdNext();
    const first = jobs.finishAttempt(lost(a2));
    await waitFor('attempt 2 recorded as lost', async () => ((await jobs.getTaskRecord(m0))?.attempts[1]?.state === 'LOST' ? true : undefined));
    await new Promise((r) => setTimeout(r, 50));
    // A second loss makes the task pending, attempt 3 runs and is lost; its retry waits too,
    // after recording the loss (3 attempts) and before making the task pending.
    expect(await jobs.hostLost('h2', 'agent removed')).toBe(1);
    const a3 = await start(jobs, m0, 'h3');
    const releaseSecond = store.holdNext();
    const second = jobs.finishAttempt(lost(a3));
    await waitFor('attempt 3 recorded as lost', async () => ((await jobs.getTaskRecord(m0))?.attempts[2]?.state === 'LOST' ? true : undefined));
    await new Promise((r) => setTimeout(r, 50));
    // The first retry goes on first: the task is neither pending nor running here, so it is made
    // pending from the record it read, of 2 attempts; the second retry finds it pending.
    releaseFirst();
    expect(await first).toBe('PENDING');
    releaseSecond();
    expect(await second).toBe('PENDING');
    expect([...jobs.pendingTasks()].find((t) => t.taskId === m0)?.attempts).toBe(2);
    // Its start (attempt 3 again) is refused by the store, and the task is pending again, as
    // its record says: 3 attempts, so the next start is attempt 4.
    expect(await jobs.startAttempt(m0, { id: 'ex-h3', host: 'h3' }, LocalityLevel.ANY)).toBeUndefined();
    await waitFor('pending again from its record', () => ([...jobs.pendingTasks()].find((t) => t.taskId === m0)?.attempts === 3 ? true : undefined));
    const a4 = await start(jobs, m0, 'h3');
    expect(a4.attempt).toBe(4);
    await jobs.cancel(job.id);
  });
});

/** The real store, whose next startAttempt (and reads, while `down`) fail as a Redis that went away. */
class FlakyStore extends JobStore {
  /** The next start: 'reply-lost' runs the script and then throws; 'down' throws without running it. */
  nextStart: 'reply-lost' | 'down' | undefined;
  /** Reads of a task throw while this is above 0, counting down. */
  readsDown = 0;

  override async startAttempt(taskId: string, attempt: Parameters<JobStore['startAttempt']>[1]): Promise<boolean> {
    const mode = this.nextStart;
    this.nextStart = undefined;
    if (mode === 'down') throw new Error('Connection is closed.');
    const started = await super.startAttempt(taskId, attempt);
    if (mode === 'reply-lost') throw new Error('Command timed out');
    return started;
  }

  override async getTask(taskId: string): ReturnType<JobStore['getTask']> {
    if (this.readsDown > 0) {
      this.readsDown--;
      throw new Error('Connection is closed.');
    }
    return await super.getTask(taskId);
  }
}

describe('a start Redis did not answer', () => {
  it('recorded but unanswered (reply lost): the attempt no executor got is ended LOST, uncounted, and the task runs again', async () => {
    const store = new FlakyStore(conn);
    const jobs = service(store);
    const job = await jobs.submit('default', twoStage(0));
    const m0 = `${job.id}.0.0`;
    await waitFor('maps pending', () => (pendingIds(jobs, job.id).length === 3 ? true : undefined));
    store.nextStart = 'reply-lost';
    await expect(jobs.startAttempt(m0, { id: 'ex-h1', host: 'h1' }, LocalityLevel.ANY)).rejects.toThrow('Command timed out');
    jobs.requeue(m0); // as the coordinator does when a start throws
    // Without the settlement the task stays RUNNING in Redis, with nothing to run or place it.
    await waitFor('pending again', () => (pendingIds(jobs, job.id).includes(m0) ? true : undefined));
    const rec = await jobs.getTaskRecord(m0);
    expect(rec?.state).toBe('PENDING');
    expect(rec?.attempts.map((a) => [a.attempt, a.state, a.reason])).toEqual([[1, 'LOST', 'START_UNCONFIRMED']]);
    // retries: 0, and the job still runs to its end: the lost start was not counted.
    const done = await runToEnd(jobs, job.id, ['h1', 'h2', 'h3']);
    expect(done.state).toBe('SUCCEEDED');
  });

  it('not recorded, Redis down for a while: the task is put back once Redis answers again', async () => {
    const store = new FlakyStore(conn);
    const jobs = service(store);
    const job = await jobs.submit('default', twoStage(0));
    const m0 = `${job.id}.0.0`;
    await waitFor('maps pending', () => (pendingIds(jobs, job.id).length === 3 ? true : undefined));
    store.nextStart = 'down';
    store.readsDown = 2;
    await expect(jobs.startAttempt(m0, { id: 'ex-h1', host: 'h1' }, LocalityLevel.ANY)).rejects.toThrow('Connection is closed.');
    jobs.requeue(m0); // as the coordinator does when a start throws
    expect(pendingIds(jobs, job.id)).not.toContain(m0);
    // Reads fail twice (the first tries to put it back), then it is pending again as it was.
    await waitFor('pending again', () => (pendingIds(jobs, job.id).includes(m0) ? true : undefined), 5_000);
    expect(store.readsDown).toBe(0);
    expect((await jobs.getTaskRecord(m0))?.attempts ?? []).toEqual([]);
    const done = await runToEnd(jobs, job.id, ['h1', 'h2', 'h3']);
    expect(done.state).toBe('SUCCEEDED');
  });
});
