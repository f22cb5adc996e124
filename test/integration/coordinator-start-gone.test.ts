/**
 * An executor declared gone while a pass was recording an attempt's start on it: the attempt is
 * given back (LOST, uncounted) and its task placed again, never left RUNNING on the dead
 * executor. The scan of the gone executor's attempts ran before the start was recorded, so it
 * missed the attempt, and nothing else ever settled it (chaos lose-agent, CI run 99).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { ExecutorBook } from '../../src/scheduler/executors.js';
import { Coordinator } from '../../src/scheduler/coordinator.js';
import type { AttemptPayload } from '../../src/executor/contract.js';
import type { Operation } from '../../src/mesos/types.js';
import { waitFor } from '../harness/wait.js';
import { acceptRecordingDriver, bareLauncher, launchOnOffer, subscribed } from './coordinator-fixture.js';

/** A store whose starts wait at a gate the test opens. */
class GatedStartStore extends JobStore {
  waiting = 0;
  private open: (() => void) | undefined;
  private readonly gate = new Promise<void>((resolve) => { this.open = resolve; });

  release(): void {
    this.open?.();
  }

  override async startAttempt(taskId: string, attempt: Parameters<JobStore['startAttempt']>[1]): Promise<boolean> {
    this.waiting++;
    await this.gate;
    return super.startAttempt(taskId, attempt);
  }
}

let redis: TestRedis;
let client: Redis;

beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
  client = redis.client();
});

afterAll(async () => {
  client.disconnect();
  await redis.dispose();
});

describe('coordinator: an executor gone while a start is recorded', () => {
  it('gives the attempt back uncounted and enqueues nothing to the gone executor', async () => {
    const clock = new ManualClock(1_000_000);
    const store = new GatedStartStore(client);
    const jobs = new JobService({
      store, clock, logger: silentLogger(), outputRoot: '/tmp/locus-start-gone-out',
      resolver: { resolve: async () => [] },
      limits: { maxPendingTasksPerTenant: 100, maxTasksPerJob: 100 },
    });
    const accepts: Operation[][] = [];
    const enqueued: { executorId: string; payloads: readonly AttemptPayload[] }[] = [];
    const coordinator = new Coordinator({
      role: 'locus', clock, logger: silentLogger(), jobs, executors: new ExecutorBook(client),
      driver: acceptRecordingDriver(accepts), launcher: bareLauncher,
      dispatch: {
        enqueueMany: async (executorId, payloads) => { enqueued.push({ executorId, payloads }); },
        adopt: async () => undefined,
        cancel: async () => undefined,
      },
      tenants: () => [{ name: 'default', weight: 1 }],
    });
    try {
      await subscribed(coordinator);
      const job = await jobs.submit('default', validateJobSpec({
        name: 'gone', retries: 0, tasks: [{}], task: { command: ['true'], resources: { cpus: 1, mem: '64MiB', disk: '16MiB' } },
      }));
      const taskId = `${job.id}.0.0`;
      await waitFor('the task pending', () => jobs.index.size === 1);
      const executorId = await launchOnOffer(coordinator, accepts, 'o1', 2.2);
      // The pass placed the task on the executor and is recording its start.
      await waitFor('the start under way', () => store.waiting >= 1);
      // The agent is lost meanwhile: its executor is gone, its known attempts lost.
      await coordinator.handleEvent({ type: 'FAILURE', failure: { agent_id: { value: 'S1' } } });
      store.release();
      const rec = await waitFor('the attempt given back', async () => {
        const r = await jobs.getTaskRecord(taskId);
        return r?.attempts[0]?.state === 'LOST' ? r : undefined;
      });
      expect(rec.attempts[0]?.reason).toBe('EXECUTOR_LOST');
      expect(rec.failures).toBe(0);
      expect(rec.state).toBe('PENDING');
      expect(jobs.attemptsOnExecutor(executorId)).toEqual([]);
      expect(enqueued).toEqual([]);
      await waitFor('the task pending again', () => jobs.index.size === 1);
    } finally {
      coordinator.close();
    }
  });
});
