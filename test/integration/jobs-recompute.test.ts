/**
 * Outputs on a lost host are recomputed, at the job service (real
 * redis-server, the real JobStore scripts and commit records; attempts are
 * played by the test, which writes commit records as executors do): a
 * two-stage job whose map outputs sit on three hosts loses one host after
 * the map stage committed. The lost host's map is reopened in generation 1
 * (its own commit record, its own output directory, avoiding the lost host),
 * the reduce waits parked rather than failing, a reduce attempt that failed
 * reading the lost host is retried without counting, a late commit of the
 * lost generation changes nothing, and once the recompute commits the
 * reduce is pending again and reads the new location. Also: a fetch failure
 * naming an output host recomputes that host's outputs; recovery after a
 * restart resumes a reopened task.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitKey, decodeCommittedOutput, ledgerIdOf, INPUT_UNREACHABLE, type AttemptPayload } from '../../src/executor/contract.js';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import type { JobRecord } from '../../src/scheduler/jobs/model.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { waitFor } from '../harness/wait.js';
import { HOST_ROOT, commitAs, pendingIds, serviceOn, startOn, succeedAs, twoStage, type OutputPath } from './jobs-harness.js';

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

const service = (): JobService => serviceOn(conn, '/tmp/locus-recompute-outputs');
const spec = twoStage(0);
/** These tests name an output by its task id, whatever its generation. */
const byTaskId: OutputPath = (p, host) => `${HOST_ROOT}/${host}/${p.taskId}`;
const commit = (p: AttemptPayload, host: string): ReturnType<typeof commitAs> => commitAs(conn, p, host, byTaskId);
const succeed = (jobs: JobService, p: AttemptPayload, host: string): Promise<string> => succeedAs(jobs, conn, p, host, byTaskId);
const start = startOn;

/** Submit, run the three maps on h1..h3, and wait for the reduce to be pending. */
async function mapsCommitted(jobs: JobService): Promise<{ job: JobRecord; maps: AttemptPayload[] }> {
  const job = await jobs.submit('default', spec);
  await waitFor('maps pending', () => (pendingIds(jobs, job.id).length === 3 ? true : undefined));
  const maps: AttemptPayload[] = [];
  for (let i = 0; i < 3; i++) maps.push(await start(jobs, `${job.id}.0.${i}`, `h${i + 1}`));
  for (let i = 0; i < 3; i++) expect(await succeed(jobs, maps[i] as AttemptPayload, `h${i + 1}`)).toBe('SUCCEEDED');
  await waitFor('reduce pending', () => (pendingIds(jobs, job.id).join() === `${job.id}.1.0` ? true : undefined));
  return { job, maps };
}

describe('outputs on a lost host are recomputed', () => {
  it('reopens the lost map in a new generation, parks the reduce, and releases it to the new location', async () => {
    const jobs = service();
    const { job, maps } = await mapsCommitted(jobs);
    const reduceId = `${job.id}.1.0`;
    // The reduce starts and reads; then h3 is lost (Mesos: agent removed).
    const r1 = await start(jobs, reduceId, 'h1');
    expect(r1.stageInputs?.[0]?.parts.map((p) => p.host)).toEqual(['h1', 'h2', 'h3']);
    expect(await jobs.hostLost('h3', 'agent removed')).toBe(1);
    // A second report of the same loss changes nothing.
    expect(await jobs.hostLost('h3', 'agent unreachable')).toBe(0);
    expect(jobs.metrics.recomputed).toBe(1);
    const map2 = `${job.id}.0.2`;
    expect(pendingIds(jobs, job.id)).toEqual([map2]);
    const rec = await jobs.getTaskRecord(map2);
    expect(rec?.state).toBe('PENDING');
    expect(rec?.generation).toBe(1);
    // The recompute avoids the lost host.
    expect([...jobs.pendingTasks()].find((t) => t.taskId === map2)?.avoidHosts).toContain('h3');
    let j = await jobs.get(job.id);
    expect(j.counts.succeeded).toBe(2);
    expect(j.counts.anyLocal).toBe(2);

    // The running reduce fails reading h3: not counted, and it waits (parked, not pending).
    const now = Date.now();
    expect(await jobs.finishAttempt({
      attemptId: r1.attemptId, taskId: reduceId, state: 'FAILED', exitCode: null, reason: INPUT_UNREACHABLE,
      message: "output 00002 of stage 'map' on h3: connect EHOSTUNREACH", inputHost: 'h3', startedAt: now, finishedAt: now, host: 'h1',
    })).toBe('PENDING');
    expect((await jobs.getTaskRecord(reduceId))?.failures).toBe(0);
    expect(pendingIds(jobs, job.id)).toEqual([map2]);

    // The recompute runs in generation 1, beside the old directory; a late commit of generation 0
    // (an attempt of the lost host finishing late) is stale and changes nothing.
    const m2 = await start(jobs, map2, 'h1');
    expect(m2.generation).toBe(1);
    expect(m2.outputDir).toBe(`${maps[2]?.outputDir ?? ''}~g1`);
    const late = await commit({ ...(maps[2] as AttemptPayload) }, 'h3');
    expect(late.won).toBe(false);
    expect(late.record.host).toBe('h3');
    expect(await jobs.finishAttempt({
      attemptId: maps[2]?.attemptId ?? '', taskId: map2, state: 'SUCCEEDED', exitCode: 0, reason: 'ALREADY_COMMITTED', message: '',
      output: late.record, startedAt: now, finishedAt: now, host: 'h3',
    })).toBe('STALE');
    expect(await succeed(jobs, m2, 'h1')).toBe('SUCCEEDED');
    // Exactly one record per generation: generation 0 still names h3, generation 1 names h1.
    expect(decodeCommittedOutput(JSON.parse((await conn.get(commitKey(map2))) ?? 'null') as unknown).host).toBe('h3');
    expect(decodeCommittedOutput(JSON.parse((await conn.get(commitKey(ledgerIdOf(map2, 1)))) ?? 'null') as unknown).host).toBe('h1');

    // The reduce is pending again and reads part 00002 from h1 now.
    await waitFor('reduce released', () => (pendingIds(jobs, job.id).join() === reduceId ? true : undefined));
    const r2 = await start(jobs, reduceId, 'h2');
    expect(r2.attempt).toBe(2);
    const parts = r2.stageInputs?.[0]?.parts ?? [];
    expect(parts.map((p) => [p.name, p.host, p.path])).toEqual([
      ['00000', 'h1', `${HOST_ROOT}/h1/${job.id}.0.0`],
      ['00001', 'h2', `${HOST_ROOT}/h2/${job.id}.0.1`],
      ['00002', 'h1', `${HOST_ROOT}/h1/${map2}`],
    ]);
    expect(parts[2]?.sources).toEqual(['h1:7000']);
    expect(await succeed(jobs, r2, 'h2')).toBe('SUCCEEDED');
    j = await waitFor('job done', async () => { const x = await jobs.get(job.id); return x.state === 'SUCCEEDED' ? x : undefined; });
    expect(j.counts.succeeded).toBe(j.counts.total);
    expect(j.counts.total).toBe(4);
    expect(j.counts.nodeLocal + j.counts.rackLocal + j.counts.anyLocal).toBe(4);
    // Map 2 ran twice (once per generation), the others once.
    const tasks = await jobs.tasks(job.id);
    expect(tasks.filter((t) => t.stage === 0).map((t) => t.attempts.length)).toEqual([1, 1, 2]);
  });

  it('a fetch failure naming an output host recomputes that host\'s outputs; a second one counts', async () => {
    const jobs = service();
    const { job } = await mapsCommitted(jobs);
    const reduceId = `${job.id}.1.0`;
    const r1 = await start(jobs, reduceId, 'h1');
    const now = Date.now();
    const fail = (p: AttemptPayload): Promise<string> => jobs.finishAttempt({
      attemptId: p.attemptId, taskId: reduceId, state: 'FAILED', exitCode: null, reason: INPUT_UNREACHABLE,
      message: "output 00001 of stage 'map' on h2: no answer", inputHost: 'h2', startedAt: now, finishedAt: now, host: 'h1',
    });
    expect(await fail(r1)).toBe('PENDING');
    expect((await jobs.getTaskRecord(reduceId))?.failures).toBe(0);
    expect(pendingIds(jobs, job.id)).toEqual([`${job.id}.0.1`]);
    expect((await jobs.getTaskRecord(`${job.id}.0.1`))?.generation).toBe(1);
    const m1 = await start(jobs, `${job.id}.0.1`, 'h3');
    expect(await succeed(jobs, m1, 'h3')).toBe('SUCCEEDED');
    await waitFor('reduce released', () => (pendingIds(jobs, job.id).join() === reduceId ? true : undefined));
    const r2 = await start(jobs, reduceId, 'h1');
    expect(r2.stageInputs?.[0]?.parts.map((p) => p.host)).toEqual(['h1', 'h3', 'h3']);
    await jobs.cancel(job.id);
  });

  it('a restart resumes a reopened task, and the reduce waits for it', async () => {
    const first = service();
    const { job } = await mapsCommitted(first);
    expect(await first.hostLost('h1', 'agent removed')).toBe(1);
    // A new process on the same Redis (the framework restarted).
    const second = service();
    const recovered = await second.recover();
    expect(recovered.jobs).toBeGreaterThanOrEqual(1);
    // The hosts still serving map outputs keep an executor after the restart too.
    expect([...second.outputHosts()].sort()).toEqual(expect.arrayContaining(['h2', 'h3']));
    expect(second.outputHosts().has('h1')).toBe(false);
    expect(pendingIds(second, job.id)).toEqual([`${job.id}.0.0`]);
    const m0 = await start(second, `${job.id}.0.0`, 'h2');
    expect(m0.generation).toBe(1);
    expect(await succeed(second, m0, 'h2')).toBe('SUCCEEDED');
    await waitFor('reduce released', () => (pendingIds(second, job.id).join() === `${job.id}.1.0` ? true : undefined));
    const r = await start(second, `${job.id}.1.0`, 'h2');
    expect(r.stageInputs?.[0]?.parts.map((p) => p.host)).toEqual(['h2', 'h2', 'h3']);
    await second.cancel(job.id);
    await first.cancel(job.id);
  });

  it('outputs under the shared output root are not lost with a host, nor are final outputs', async () => {
    const jobs = service();
    const job = await jobs.submit('default', spec);
    await waitFor('maps pending', () => (pendingIds(jobs, job.id).length === 3 ? true : undefined));
    for (let i = 0; i < 3; i++) {
      const p = await start(jobs, `${job.id}.0.${i}`, 'h1');
      // Committed at the payload's own path: the shared root every host sees.
      await conn.set(commitKey(p.taskId), JSON.stringify({ attemptId: p.attemptId, host: 'h1', path: p.outputDir, size: 1, files: [{ name: 'x', size: 1 }], committedAt: 1 }));
      const now = Date.now();
      await jobs.finishAttempt({ attemptId: p.attemptId, taskId: p.taskId, state: 'SUCCEEDED', exitCode: 0, reason: 'COMMITTED', message: '', outputPath: p.outputDir ?? '', startedAt: now, finishedAt: now, host: 'h1' });
    }
    await waitFor('reduce pending', () => (pendingIds(jobs, job.id).join() === `${job.id}.1.0` ? true : undefined));
    expect(await jobs.hostLost('h1', 'agent removed')).toBe(0);
    expect(jobs.outputHosts().size).toBe(0);
    expect(pendingIds(jobs, job.id)).toEqual([`${job.id}.1.0`]);
    await jobs.cancel(job.id);
  });
});
