/**
 * Placeholders in a task's env at the job service (real redis-server and JobStore scripts;
 * attempts played by the test): the env's values take the command's placeholders, an earlier
 * stage's output directory among them, and what only the executor knows ({output}) or no one
 * does (an unknown name) reaches it as written.
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
const ROOT = '/tmp/locus-env-placeholders';

describe('placeholders in a task\'s env', () => {
  it('are filled in as in its command, an earlier stage\'s output too', async () => {
    const jobs = new JobService({
      store: new JobStore(redis.client()),
      resolver: { resolve: () => Promise.reject(new Error('no inputs in these jobs')) },
      clock: systemClock,
      logger: silentLogger(),
      outputRoot: ROOT,
      limits: { maxPendingTasksPerTenant: 1000, maxTasksPerJob: 1000 },
    });
    const job = await jobs.submit('alpha', validateJobSpec({
      name: 'env-placeholders',
      stages: [
        { name: 'map', tasks: [{ command: ['m'] }], task: { command: ['m'], env: { IDX: 'part-{task.index}', WHO: '{job.id}/{attempt}', OUT: '{output}/x', KEEP: '{not.known} {json}' } } },
        { name: 'reduce', tasks: [{ command: ['r'], env: { MAPS: '{stages.map.output}' } }], task: { command: ['r'] } },
      ],
    }));
    await waitFor('map pending', () => (pendingIds(jobs, job.id).length === 1 ? true : undefined));
    const map = await jobs.startAttempt(`${job.id}.0.0`, { id: 'ex', host: 'h1' }, LocalityLevel.ANY);
    if (!map) throw new Error('map not started');
    expect(map.env).toMatchObject({ IDX: 'part-0', WHO: `${job.id}/1`, OUT: '{output}/x', KEEP: '{not.known} {json}' });
    const now = Date.now();
    expect(await jobs.finishAttempt({ attemptId: map.attemptId, taskId: map.taskId, state: 'SUCCEEDED', exitCode: 0, reason: 'EXITED', message: '', startedAt: now, finishedAt: now, host: 'h1', outputPath: map.outputDir ?? '' })).toBe('SUCCEEDED');
    await waitFor('reduce pending', () => (pendingIds(jobs, job.id).join() === `${job.id}.1.0` ? true : undefined));
    const reduce = await jobs.startAttempt(`${job.id}.1.0`, { id: 'ex', host: 'h1' }, LocalityLevel.ANY);
    expect(reduce?.env['MAPS']).toBe(`${ROOT}/alpha/${job.id}/map`);
    // Mounted for the task, as for an argument naming it.
    expect(reduce?.inputPaths).toEqual([`${ROOT}/alpha/${job.id}/map`]);
  });
});
