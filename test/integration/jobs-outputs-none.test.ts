/**
 * A stage of `outputs: none` at the job service (real redis-server and JobStore scripts;
 * attempts played by the test): its attempts carry no output directory and name their tenant,
 * except on an executor registered with a contract older than 2.2, which reads the tenant
 * from the output path alone and so still gets one (its attempt commits an empty output rather
 * than run as a uid every tenant shares). The stage succeeds on its tasks' exits alone, the
 * next stage starts without reading it, and a payload rebuilt after a restart is the same.
 */
import { describe, expect, it } from 'vitest';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { systemClock } from '../../src/core/clock.js';
import { LocalityLevel } from '../../src/core/locality.js';
import { silentLogger } from '../../src/obs/log.js';
import { suiteRedis } from '../harness/redis.js';
import { waitFor } from '../harness/wait.js';
import { pendingIds } from './jobs-harness.js';

const redis = suiteRedis();

/** Executors by contract: `ex-old` registered 2.1, `ex-new` 2.2, anything else not known yet. */
const CONTRACTS: Record<string, string> = { 'ex-old': '2.1', 'ex-new': '2.2' };

function service(): JobService {
  return new JobService({
    store: new JobStore(redis.client()),
    resolver: { resolve: () => Promise.reject(new Error('no inputs in these jobs')) },
    clock: systemClock,
    logger: silentLogger(),
    outputRoot: '/tmp/locus-outputs-none',
    limits: { maxPendingTasksPerTenant: 1000, maxTasksPerJob: 1000 },
    executorContract: (id) => CONTRACTS[id],
  });
}

const spec = validateJobSpec({
  name: 'load-then-report',
  stages: [
    { name: 'load', outputs: 'none', tasks: [{ command: ['load', '{task.index}'] }, { command: ['load', '{task.index}'] }, { command: ['load', '{task.index}'] }], task: { command: ['true'] } },
    { name: 'report', tasks: [{ command: ['report', '{output}'] }], task: { command: ['true'] } },
  ],
});

describe('a stage of outputs: none at the job service', () => {
  it('sends no output directory and names the tenant, but keeps the directory for an executor older than 2.2', async () => {
    const jobs = service();
    const job = await jobs.submit('alpha', spec);
    await waitFor('loads pending', () => (pendingIds(jobs, job.id).length === 3 ? true : undefined));
    const onNew = await jobs.startAttempt(`${job.id}.0.0`, { id: 'ex-new', host: 'h1' }, LocalityLevel.ANY);
    const onLaunching = await jobs.startAttempt(`${job.id}.0.1`, { id: 'ex-launching', host: 'h1' }, LocalityLevel.ANY);
    const onOld = await jobs.startAttempt(`${job.id}.0.2`, { id: 'ex-old', host: 'h2' }, LocalityLevel.ANY);
    for (const p of [onNew, onLaunching]) {
      expect(p).toBeDefined();
      expect(p).not.toHaveProperty('outputDir');
      expect(p?.tenant).toBe('alpha');
      expect(p?.argv[1]).toMatch(/^[0-9]$/);
    }
    // The old executor would run an attempt without an output path as its default user.
    expect(onOld?.outputDir).toBe(`/tmp/locus-outputs-none/alpha/${job.id}/load/00002`);
    // A restarted scheduler rebuilds the payload it dispatched, for the same executor.
    const rec = await jobs.getTaskRecord(`${job.id}.0.0`);
    if (!rec) throw new Error('no task record');
    expect(await jobs.payloadFor(rec)).toEqual(onNew);

    // Exits alone finish the stage: no output path in the results.
    for (const p of [onNew, onLaunching, onOld]) {
      if (!p) throw new Error('not started');
      const now = Date.now();
      expect(await jobs.finishAttempt({ attemptId: p.attemptId, taskId: p.taskId, state: 'SUCCEEDED', exitCode: 0, reason: 'EXITED', message: '', startedAt: now, finishedAt: now, host: 'h1' })).toBe('SUCCEEDED');
    }
    await waitFor('report pending', () => (pendingIds(jobs, job.id).join() === `${job.id}.1.0` ? true : undefined));
    const report = await jobs.startAttempt(`${job.id}.1.0`, { id: 'ex-new', host: 'h1' }, LocalityLevel.ANY);
    // The next stage commits as usual, and mounts nothing of the stage without output.
    expect(report?.outputDir).toBe(`/tmp/locus-outputs-none/alpha/${job.id}/report/00000`);
    expect(report?.inputPaths).toEqual([]);
    expect(report?.argv).toEqual(['report', '{output}']);
  });
});
