/**
 * The coordinator's handling of partitions and maintenance, driven with a
 * manual clock: a TASK_UNREACHABLE executor keeps its attempts for a bounded
 * time (PARTITION_AWARE), then they are retried without counting; inverse
 * offers drain the agent. Real Redis and the real job service; the Mesos side
 * is a recording driver (a unit-level stand-in for the master).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { ExecutorBook } from '../../src/scheduler/executors.js';
import { Coordinator, type MesosDriver } from '../../src/scheduler/coordinator.js';
import type { AttemptPayload } from '../../src/executor/contract.js';
import type { Event, Offer, Operation } from '../../src/mesos/types.js';
import { waitFor } from '../harness/wait.js';
import { bareLauncher, roleOffer, subscribed, testJobService } from './coordinator-fixture.js';

let redis: TestRedis;
let client: Redis;
const clock = new ManualClock(1_000_000);
const calls: { type: string; args: unknown[] }[] = [];
const enqueued: AttemptPayload[] = [];
let jobs: JobService;
let coordinator: Coordinator;

const driver: MesosDriver = {
  accept: async (...args) => { calls.push({ type: 'accept', args }); },
  decline: async (...args) => { calls.push({ type: 'decline', args }); },
  revive: async () => { calls.push({ type: 'revive', args: [] }); },
  suppress: async () => { calls.push({ type: 'suppress', args: [] }); },
  kill: async (...args) => { calls.push({ type: 'kill', args }); },
  acknowledge: async (...args) => { calls.push({ type: 'ack', args }); },
  acknowledgeOperationStatus: async () => undefined,
  reconcile: async (...args) => { calls.push({ type: 'reconcile', args }); },
  acceptInverseOffers: async (...args) => { calls.push({ type: 'acceptInverse', args }); },
};


const offer = (id: string, agent: string, host: string): Offer => roleOffer(id, agent, host, 4);

const update = (taskId: string, state: string, agent = 'S1'): Event => ({
  type: 'UPDATE', update: { status: { task_id: { value: taskId }, state: state as never, agent_id: { value: agent }, uuid: 'dXVpZA==' } },
});

beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
  client = redis.client();
  jobs = testJobService(client, clock, '/tmp/locus-partition-out');
  coordinator = new Coordinator({
    role: 'locus', clock, logger: silentLogger(), jobs, executors: new ExecutorBook(client), driver,
    launcher: bareLauncher,
    dispatch: { enqueueMany: async (_e, p) => { enqueued.push(...p); }, adopt: async () => undefined, cancel: async () => undefined },
    tenants: () => [{ name: 'default', weight: 1 }],
    unreachableGraceMs: 60_000,
  });
  await subscribed(coordinator);
});

afterAll(async () => {
  coordinator.close();
  client.disconnect();
  await redis.dispose();
});

describe('coordinator: partitions and maintenance', () => {
  let executorId = '';
  let jobId = '';

  it('launches an executor on an offer and hands it the task once Mesos says it runs', async () => {
    const job = await jobs.submit('default', validateJobSpec({ name: 'p', retries: 0, tasks: [{ command: ['sleep', '100'] }], task: { command: ['true'], resources: { cpus: 0.5, mem: '64MiB', disk: '16MiB' } } }));
    jobId = job.id;
    await waitFor('task pending', () => jobs.index.size === 1);
    await coordinator.handleEvent({ type: 'OFFERS', offers: { offers: [offer('o1', 'S1', 'agent-1')] } });
    const accept = await waitFor('an ACCEPT', () => calls.find((c) => c.type === 'accept'));
    const ops = accept.args[1] as Operation[];
    expect(ops[0]?.type).toBe('LAUNCH');
    executorId = ops[0]?.type === 'LAUNCH' ? ops[0].launch.task_infos[0]?.task_id.value ?? '' : '';
    expect(executorId).toMatch(/^locus-exec-/);
    await coordinator.handleEvent(update(executorId, 'TASK_RUNNING'));
    await waitFor('the attempt on the queue', () => enqueued.length === 1);
    expect(enqueued[0]?.taskId).toBe(`${jobId}.0.0`);
    expect(calls.some((c) => c.type === 'ack')).toBe(true);
  });

  it('keeps attempts of an unreachable executor for the grace period, and keeps them if it comes back', async () => {
    await coordinator.handleEvent(update(executorId, 'TASK_UNREACHABLE'));
    clock.advance(59_000);
    await new Promise((r) => setTimeout(r, 30));
    expect((await jobs.getTaskRecord(`${jobId}.0.0`))?.state).toBe('RUNNING');
    await coordinator.handleEvent(update(executorId, 'TASK_RUNNING'));
    clock.advance(120_000);
    await new Promise((r) => setTimeout(r, 30));
    expect((await jobs.getTaskRecord(`${jobId}.0.0`))?.state).toBe('RUNNING');
  });

  it('retries the attempts elsewhere, uncounted, once the grace period passes', async () => {
    await coordinator.handleEvent(update(executorId, 'TASK_UNREACHABLE'));
    clock.advance(60_001);
    const rec = await waitFor('the attempt lost', async () => {
      const r = await jobs.getTaskRecord(`${jobId}.0.0`);
      return r?.state === 'PENDING' ? r : undefined;
    });
    expect(rec.attempts[0]?.state).toBe('LOST');
    expect(rec.failures).toBe(0);
    expect(jobs.index.size).toBe(1);
  });

  it('drains an agent announced for maintenance by inverse offers', async () => {
    calls.length = 0;
    await coordinator.handleEvent({ type: 'OFFERS', offers: { offers: [offer('o2', 'S2', 'agent-2')] } });
    const accept = await waitFor('a second executor', () => calls.find((c) => c.type === 'accept'));
    const ops = accept.args[1] as Operation[];
    const second = ops[0]?.type === 'LAUNCH' ? ops[0].launch.task_infos[0]?.task_id.value ?? '' : '';
    await coordinator.handleEvent(update(second, 'TASK_RUNNING', 'S2'));
    await waitFor('the retry on the new executor', () => enqueued.length === 2);
    await coordinator.handleEvent({
      type: 'OFFERS',
      offers: { offers: [], inverse_offers: [{ id: { value: 'inv1' }, framework_id: { value: 'fw' }, agent_id: { value: 'S2' }, unavailability: { start: { nanoseconds: clock.now() * 1e6 } } }] },
    });
    const accepted = await waitFor('inverse offer accepted', () => calls.find((c) => c.type === 'acceptInverse'));
    expect(accepted.args[0]).toEqual(['inv1']);
    const ex = (await client.hget('locus:executors', second)) ?? '';
    expect(JSON.parse(ex).state).toBe('DRAINING');
  });
});
