/**
 * Between the jobs of one tenant, a freed slot goes to the job running the fewest tasks (placement's
 * fair share between jobs, Pass.before). The coordinator must tell placement how many tasks each
 * job runs: without that every job ran "none", ties went to the older job, and a small job
 * submitted behind a large one waited for the large one's backlog (issue 16 item 4 measured that
 * wait under load: a probe job's task sat ~110 ms in the pending index while passes ran every few
 * milliseconds, placing the older jobs' tasks).
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { ExecutorBook } from '../../src/scheduler/executors.js';
import { Coordinator } from '../../src/scheduler/coordinator.js';
import type { AttemptPayload, AttemptResult } from '../../src/executor/contract.js';
import type { Operation } from '../../src/mesos/types.js';
import { waitFor } from '../harness/wait.js';
import { acceptRecordingDriver, bareLauncher, launchOnOffer, subscribed, suiteRedis, testJobService } from './coordinator-fixture.js';

const redis = suiteRedis();

const spec = (name: string, tasks: number): ReturnType<typeof validateJobSpec> => validateJobSpec({
  name, retries: 0, tasks: Array.from({ length: tasks }, () => ({})),
  task: { command: ['true'], resources: { cpus: 1, mem: '64MiB', disk: '16MiB' } },
});

describe('coordinator: fair share between the jobs of one tenant', () => {
  it('gives a freed slot to a newer job with nothing running before an older job with a backlog', async () => {
    const clock = new ManualClock(1_000_000);
    const accepts: Operation[][] = [];
    /** Attempts handed to the executor, in the order they were enqueued. */
    const sent: AttemptPayload[] = [];
    const jobs = testJobService(redis.client(), clock, '/tmp/locus-job-fairness');
    const coordinator = new Coordinator({
      role: 'locus', clock, logger: silentLogger(), jobs, executors: new ExecutorBook(redis.client()), driver: acceptRecordingDriver(accepts),
      launcher: bareLauncher,
      dispatch: {
        enqueueMany: async (_executorId, payloads) => {
          sent.push(...payloads);
        },
        adopt: async () => undefined,
        cancel: async () => undefined,
      },
      tenants: () => [{ name: 'default', weight: 1 }],
    });
    try {
      await subscribed(coordinator);
      // The large job first: ten tasks for an executor of two 1-cpu slots.
      const large = await jobs.submit('default', spec('large', 10));
      await waitFor('the large job pending', () => jobs.index.size === 10);
      const executorId = await launchOnOffer(coordinator, accepts, 'o1', 2.1);
      await waitFor('both slots taken by the large job', () => sent.length === 2);
      expect(sent.every((p) => p.taskId.startsWith(`${large.id}.`))).toBe(true);

      // A small job arrives while the large one runs two tasks and has eight pending.
      const small = await jobs.submit('default', spec('small', 1));
      await waitFor('the small job pending', () => jobs.index.size === 9);
      // No slot is free: nothing more goes out.
      await new Promise((r) => setTimeout(r, 50));
      expect(sent).toHaveLength(2);

      // One of the large job's tasks ends: its slot goes to the small job (none running) before
      // the large job's next task (one still running).
      const done = sent[0] as AttemptPayload;
      const now = clock.now();
      const result: AttemptResult = { attemptId: done.attemptId, taskId: done.taskId, state: 'SUCCEEDED', exitCode: 0, reason: 'EXITED', message: 'done', startedAt: now - 100, finishedAt: now, host: 'agent-1' };
      await coordinator.onAttemptResult(result, executorId);
      const next = await waitFor('the freed slot refilled', () => sent[2]);
      expect(next.taskId.startsWith(`${small.id}.`)).toBe(true);
      // Only the one slot was free.
      await new Promise((r) => setTimeout(r, 50));
      expect(sent).toHaveLength(3);
    } finally {
      coordinator.close();
    }
  });
});
