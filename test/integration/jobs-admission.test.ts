/**
 * Admission control in the job service, on real Redis: per-tenant caps on
 * pending tasks and per-stage caps on job size answer with clear errors and
 * create nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { JobService, type InputResolver } from '../../src/scheduler/jobs/service.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { LocusError } from '../../src/core/errors.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';

let redis: TestRedis;
let client: Redis;
let jobs: JobService;

// A storage port answering every URI with `n` one-split files (a unit-level stand-in).
const files = (n: number): InputResolver => ({
  resolve: async (uri) => Array.from({ length: n }, (_, i) => ({ uri: `${uri}f${i}`, size: 1, splits: [{ offset: 0, length: 1, hosts: ['agent-1'], racks: ['r1'] }] })),
});

beforeAll(async () => {
  redis = await startRedis();
  client = redis.client();
  jobs = new JobService({
    store: new JobStore(client), resolver: files(5), clock: systemClock, logger: silentLogger(), outputRoot: '/tmp/out',
    limits: { maxPendingTasksPerTenant: 8, maxTasksPerJob: 4 },
  });
});
afterAll(async () => {
  client.disconnect();
  await redis.dispose();
});

async function settle(id: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const j = await jobs.get(id);
    if (j.state !== 'PENDING' && j.state !== 'RESOLVING') return j.state;
    await new Promise((r) => setTimeout(r, 20));
  }
  return 'TIMEOUT';
}

describe('admission', () => {
  it('refuses an explicit task list over the per-stage limit at submission, naming the field', async () => {
    const before = (await jobs.list()).length;
    const spec = validateJobSpec({ name: 'big', tasks: Array.from({ length: 5 }, () => ({ command: ['true'] })), task: { command: ['true'] } });
    const err = await jobs.submit('t1', spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocusError);
    expect((err as LocusError).code).toBe('QUOTA_EXCEEDED');
    expect((err as LocusError).field).toBe('tasks');
    expect((err as LocusError).spec.httpStatus).toBe(429);
    expect((await jobs.list()).length).toBe(before);
  });

  it('fails a job whose inputs resolve to more tasks than the limit, saying why', async () => {
    const job = await jobs.submit('t1', validateJobSpec({ name: 'wide', inputs: ['local://d/'], task: { command: ['true'] } }));
    expect(await settle(job.id)).toBe('FAILED');
    expect((await jobs.get(job.id)).message).toMatch(/5 tasks \(limit 4\)/);
    expect(jobs.index.size).toBe(0);
  });

  it('refuses new jobs from a tenant over its pending-task cap, but not from others', async () => {
    const four = (): ReturnType<typeof validateJobSpec> => validateJobSpec({ name: 'four', tasks: Array.from({ length: 4 }, () => ({ command: ['true'] })), task: { command: ['true'] } });
    const a = await jobs.submit('t2', four());
    const b = await jobs.submit('t2', four());
    expect(await settle(a.id)).toBe('RUNNING');
    expect(await settle(b.id)).toBe('RUNNING');
    const err = await jobs.submit('t2', four()).catch((e: unknown) => e);
    expect((err as LocusError).code).toBe('QUOTA_EXCEEDED');
    expect((err as LocusError).message).toMatch(/tenant 't2' already has 8 pending tasks/);
    const c = await jobs.submit('t3', four());
    expect(c.tenant).toBe('t3');
    expect(await settle(c.id)).toBe('RUNNING');
  });

  it('refuses a stage whose task alone asks more than its tenant\'s whole quota, naming the field; others pass', async () => {
    const quotas = new JobService({
      store: new JobStore(client), resolver: files(1), clock: systemClock, logger: silentLogger(), outputRoot: '/tmp/out',
      limits: { maxPendingTasksPerTenant: 100, maxTasksPerJob: 100 },
      quotaOf: (t) => (t === 'small' ? { cpus: 1, mem: 1024 } : undefined),
    });
    const before = (await quotas.list()).length;
    const spec = (cpus: number, mem: string): ReturnType<typeof validateJobSpec> => validateJobSpec({
      name: 'q', stages: [
        { name: 'a', tasks: [{ command: ['true'] }], task: { command: ['true'], resources: { cpus: 0.5, mem: '64MiB' } } },
        { name: 'b', tasks: [{ command: ['true'] }], task: { command: ['true'], resources: { cpus, mem } } },
      ],
    });
    const cpu = await quotas.submit('small', spec(1.5, '64MiB')).catch((e: unknown) => e);
    expect(cpu).toBeInstanceOf(LocusError);
    expect((cpu as LocusError).code).toBe('UNSATISFIABLE');
    expect((cpu as LocusError).spec.httpStatus).toBe(422);
    expect((cpu as LocusError).field).toBe('stages[1].task.resources.cpus');
    expect((cpu as LocusError).message).toMatch(/each task asks 1\.5 cpus, more than tenant small's whole quota of 1 cpus/);
    const mem = await quotas.submit('small', spec(1, '2GiB')).catch((e: unknown) => e);
    expect((mem as LocusError).field).toBe('stages[1].task.resources.mem');
    expect((mem as LocusError).message).toMatch(/2GiB of memory, more than tenant small's whole quota of 1GiB of memory/);
    expect((await quotas.list()).length).toBe(before);
    // Exactly the quota fits; a tenant without a quota is not limited.
    expect((await quotas.submit('small', spec(1, '1GiB'))).tenant).toBe('small');
    expect((await quotas.submit('other', spec(64, '64GiB'))).tenant).toBe('other');
  });

  it('keeps outputs and file:// inputs inside the tenant\'s own output directory', async () => {
    const base = { name: 'o', tasks: [{ command: ['true'] }], task: { command: ['true'] } };
    const outside = await jobs.submit('t4', validateJobSpec({ ...base, output: '/etc/locus' })).catch((e: unknown) => e);
    expect((outside as LocusError).field).toBe('output');
    const escape = await jobs.submit('t4', validateJobSpec({ ...base, output: '../t5/steal' })).catch((e: unknown) => e);
    expect((escape as LocusError).field).toBe('output');
    const peek = await jobs.submit('t4', validateJobSpec({ name: 'peek', inputs: ['file:///tmp/out/t5/'], task: { command: ['true'] } })).catch((e: unknown) => e);
    expect((peek as LocusError).code).toBe('FORBIDDEN');
    expect((peek as LocusError).field).toBe('inputs[0]');
    const ok = await jobs.submit('t4', validateJobSpec({ ...base, output: 'reports/daily' }));
    expect(ok.outputDir).toBe('/tmp/out/t4/reports/daily');
    const byDefault = await jobs.submit('t4', validateJobSpec(base));
    expect(byDefault.outputDir).toBe(`/tmp/out/t4/${byDefault.id}`);
    await settle(ok.id);
    await settle(byDefault.id);
  });

  it('avoids a host for the whole job once tasks of that job failed there twice', async () => {
    const spec = validateJobSpec({ name: 'flaky-host', retries: 5, tasks: [0, 1, 2].map(() => ({ command: ['false'] })), task: { command: ['true'] } });
    const job = await jobs.submit('t6', spec);
    expect(await settle(job.id)).toBe('RUNNING');
    const fail = async (index: number, attempt: number): Promise<void> => {
      const taskId = `${job.id}.0.${index}`;
      const payload = await jobs.startAttempt(taskId, { id: 'e1', host: 'agent-bad' }, 2);
      expect(payload?.attempt).toBe(attempt);
      const now = Date.now();
      expect(await jobs.finishAttempt({
        attemptId: payload?.attemptId ?? '', taskId, state: 'FAILED', exitCode: 1, reason: 'EXIT_NONZERO', message: 'exit 1',
        startedAt: now, finishedAt: now, host: 'agent-bad',
      })).toBe('PENDING');
    };
    await fail(0, 1);
    // One failure: only that task avoids the host.
    expect(jobs.index.get(`${job.id}.0.0`)?.avoidHosts).toEqual(['agent-bad']);
    expect(jobs.index.get(`${job.id}.0.2`)?.avoidHosts ?? []).toEqual([]);
    await fail(1, 1);
    // Twice in this job: every task of the job avoids it, the untouched one included.
    for (const i of [0, 1, 2]) expect(jobs.index.get(`${job.id}.0.${i}`)?.avoidHosts).toContain('agent-bad');
    // Other jobs are not affected.
    const other = await jobs.submit('t6', validateJobSpec({ name: 'other', tasks: [{ command: ['true'] }], task: { command: ['true'] } }));
    expect(await settle(other.id)).toBe('RUNNING');
    expect(jobs.index.get(`${other.id}.0.0`)?.avoidHosts ?? []).toEqual([]);
  });

  it('fails jobs of a burst that would take the tenant past its pending-task cap', async () => {
    const three = (): ReturnType<typeof validateJobSpec> => validateJobSpec({ name: 'three', tasks: [0, 1, 2].map(() => ({ command: ['true'] })), task: { command: ['true'] } });
    // Submitted at once: each passes the submission check before any has resolved.
    const burst = await Promise.all([0, 1, 2, 3].map(() => jobs.submit('t7', three())));
    const states = await Promise.all(burst.map((j) => settle(j.id)));
    expect(states.filter((s) => s === 'RUNNING')).toHaveLength(2);
    expect(states.filter((s) => s === 'FAILED')).toHaveLength(2);
    const failed = await jobs.get(burst[states.indexOf('FAILED')]?.id ?? '');
    expect(failed.message).toMatch(/would have \d+ pending tasks \(limit 8\)/);
    expect(jobs.pendingByTenant().get('t7')).toBe(6);
  });
});
