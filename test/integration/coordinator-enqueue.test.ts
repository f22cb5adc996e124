/**
 * A placement pass fills the queues of its executors side by side, not one after the other: each
 * executor's attempts still go out in one enqueue after their starts were recorded, and an
 * executor whose enqueue fails gets its attempts back as pending without holding up the others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { ExecutorBook } from '../../src/scheduler/executors.js';
import { Coordinator } from '../../src/scheduler/coordinator.js';
import type { AttemptPayload } from '../../src/executor/contract.js';
import type { Event, Offer, Operation } from '../../src/mesos/types.js';
import { waitFor } from '../harness/wait.js';
import { acceptRecordingDriver, bareLauncher, roleOffer, subscribed, testJobService } from './coordinator-fixture.js';

let redis: TestRedis;
let client: Redis;
const clock = new ManualClock(1_000_000);
const accepts: Operation[][] = [];
/** Enqueue calls by executor, each released (or failed) by the test. */
const pendingEnqueues: { executorId: string; payloads: readonly AttemptPayload[]; release: (err?: Error) => void }[] = [];
const enqueued = new Map<string, AttemptPayload[]>();
let jobs: JobService;
let coordinator: Coordinator;

const driver = acceptRecordingDriver(accepts);

const offer = (id: string, agent: string, host: string): Offer => roleOffer(id, agent, host, 3.2);

const running = (taskId: string, agent: string): Event => ({
  type: 'UPDATE', update: { status: { task_id: { value: taskId }, state: 'TASK_RUNNING', agent_id: { value: agent }, uuid: 'dXVpZA==' } },
});

beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
  client = redis.client();
  jobs = testJobService(client, clock, '/tmp/locus-enqueue-out');
  coordinator = new Coordinator({
    role: 'locus', clock, logger: silentLogger(), jobs, executors: new ExecutorBook(client), driver,
    launcher: bareLauncher,
    dispatch: {
      enqueueMany: (executorId, payloads) => new Promise<void>((resolve, reject) => {
        pendingEnqueues.push({
          executorId, payloads,
          release: (err) => {
            if (err) return reject(err);
            enqueued.set(executorId, [...(enqueued.get(executorId) ?? []), ...payloads]);
            resolve();
          },
        });
      }),
      adopt: async () => undefined,
      cancel: async () => undefined,
    },
    tenants: () => [{ name: 'default', weight: 1 }],
  });
  await subscribed(coordinator);
});

afterAll(async () => {
  coordinator.close();
  client.disconnect();
  await redis.dispose();
});

describe('coordinator: enqueue of a pass', () => {
  it('fills every executor\'s queue at once; a failed one gets its attempts back as pending', async () => {
    // Six 1-cpu tasks, two agents with room for an executor of three slots each.
    const job = await jobs.submit('default', validateJobSpec({
      name: 'e', retries: 0, tasks: Array.from({ length: 6 }, () => ({})),
      task: { command: ['true'], resources: { cpus: 1, mem: '64MiB', disk: '16MiB' } },
    }));
    await waitFor('tasks pending', () => jobs.index.size === 6);
    await coordinator.handleEvent({ type: 'OFFERS', offers: { offers: [offer('o1', 'S1', 'agent-1'), offer('o2', 'S2', 'agent-2')] } });
    await waitFor('two executors launched', () => accepts.length === 2);
    const launched = accepts.map((ops) => {
      const op = ops.find((o) => o.type === 'LAUNCH');
      return op?.type === 'LAUNCH' ? { id: op.launch.task_infos[0]?.task_id.value ?? '', agent: op.launch.task_infos[0]?.agent_id.value ?? '' } : { id: '', agent: '' };
    });
    for (const l of launched) await coordinator.handleEvent(running(l.id, l.agent));
    // Both executors' enqueues are under way together, neither has finished yet.
    const both = await waitFor('an enqueue per executor, side by side', () => (new Set(pendingEnqueues.map((e) => e.executorId)).size === 2 ? pendingEnqueues.slice() : undefined));
    expect(both.map((e) => e.payloads.length).sort()).toEqual([3, 3]);
    // Every attempt was recorded as started before its enqueue began.
    for (const e of both) {
      for (const p of e.payloads) expect((await jobs.getTaskRecord(p.taskId))?.state).toBe('RUNNING');
    }
    const [ok, failed] = both as [typeof both[number], typeof both[number]];
    failed.release(new Error('queue unreachable'));
    ok.release();
    expect(enqueued.get(ok.executorId)?.length).toBe(3);
    // The failed executor's attempts end uncounted and their tasks are pending again (or
    // already placed again by the next pass, as a second attempt).
    for (const p of failed.payloads) {
      const rec = await waitFor(`${p.taskId}'s attempt given back`, async () => {
        const r = await jobs.getTaskRecord(p.taskId);
        return r?.attempts[0]?.state === 'LOST' ? r : undefined;
      });
      expect(rec.attempts[0]?.reason).toBe('ENQUEUE_FAILED');
      expect(rec.failures).toBe(0);
      expect(['PENDING', 'RUNNING']).toContain(rec.state);
    }
    // The other executor's attempts stay as they were.
    for (const p of ok.payloads) expect((await jobs.getTaskRecord(p.taskId))?.attempts.length).toBe(1);
    for (const e of pendingEnqueues) if (e !== ok && e !== failed) e.release();
    expect(job.id).toBeTruthy();
  });
});
