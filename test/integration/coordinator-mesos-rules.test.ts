/**
 * Rules a genuine Mesos master holds the coordinator to, checked against a
 * recording driver (a stand-in for the master) with real Redis and the real
 * job service, and a manual clock:
 *   - every status update with a uuid is acknowledged, also for a task the
 *     coordinator does not track (a genuine agent resends an unacknowledged
 *     update for ever and holds back that task's later updates);
 *   - explicit reconciliation is repeated, with backoff, for the executors
 *     the master has not answered for, and stops once each has an answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { ExecutorBook } from '../../src/scheduler/executors.js';
import { Coordinator, type MesosDriver } from '../../src/scheduler/coordinator.js';

let redis: TestRedis;
let client: Redis;
const clock = new ManualClock(5_000_000);
const acks: { agentId: string; taskId: string; uuid: string }[] = [];
const reconciles: { taskId: string }[][] = [];
let coordinator: Coordinator;

const driver: MesosDriver = {
  accept: async () => undefined,
  decline: async () => undefined,
  revive: async () => undefined,
  suppress: async () => undefined,
  kill: async () => undefined,
  acknowledge: async (agentId, taskId, uuid) => { acks.push({ agentId, taskId, uuid }); },
  acknowledgeOperationStatus: async () => undefined,
  reconcile: async (tasks) => { reconciles.push(tasks.map((t) => ({ taskId: t.taskId })).sort((a, b) => (a.taskId < b.taskId ? -1 : 1))); },
};

const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
  client = redis.client();
  const book = new ExecutorBook(client);
  // Two executors from before a restart: the master is asked about both.
  for (const id of ['locus-exec-aaa-0', 'locus-exec-bbb-0']) {
    await book.put({
      executorId: id, taskId: id, agentId: 'S1', hostname: 'agent-1', rack: undefined, attributes: {}, agentUrl: undefined,
      slots: 1, slotResources: { cpus: 1, mem: 64, disk: 0 }, volumes: [], tenant: undefined, state: 'RUNNING', launchedAt: 0, idleSince: 0,
    });
  }
  const jobs = new JobService({
    store: new JobStore(client), clock, logger: silentLogger(), outputRoot: '/tmp/locus-mesos-rules-out',
    resolver: { resolve: async () => [] },
    limits: { maxPendingTasksPerTenant: 100, maxTasksPerJob: 100 },
  });
  coordinator = new Coordinator({
    role: 'locus', clock, logger: silentLogger(), jobs, executors: new ExecutorBook(client), driver,
    launcher: { taskInfo: async () => { throw new Error('no launches here'); }, ready: async () => undefined, retire: async () => undefined },
    dispatch: { enqueueMany: async () => undefined, adopt: async () => undefined, cancel: async () => undefined },
    tenants: () => [{ name: 'default', weight: 1 }],
    tickMs: 3_600_000,
  });
  await coordinator.recover();
});

afterAll(async () => {
  coordinator?.close();
  client?.disconnect();
  await redis?.dispose();
});

describe('coordinator and the rules of a genuine master', () => {
  it('retries explicit reconciliation with backoff for executors the master has not answered for', async () => {
    await coordinator.handleEvent({ type: 'SUBSCRIBED', subscribed: { framework_id: { value: 'fw' }, heartbeat_interval_seconds: 15 } });
    await settle();
    // Explicit (both executors), then implicit (empty).
    expect(reconciles.slice(0, 2)).toEqual([[{ taskId: 'locus-exec-aaa-0' }, { taskId: 'locus-exec-bbb-0' }], []]);
    reconciles.length = 0;
    // The master answers for one of them only.
    await coordinator.handleEvent({ type: 'UPDATE', update: { status: { task_id: { value: 'locus-exec-aaa-0' }, state: 'TASK_RUNNING', agent_id: { value: 'S1' }, uuid: 'dXVpZC1h' } } });
    clock.advance(999);
    await settle();
    expect(reconciles).toEqual([]);
    clock.advance(1);
    await settle();
    expect(reconciles).toEqual([[{ taskId: 'locus-exec-bbb-0' }]]);
    // Backoff: the next round comes 2 s later, not 1 s.
    clock.advance(1000);
    await settle();
    expect(reconciles).toHaveLength(1);
    clock.advance(1000);
    await settle();
    expect(reconciles).toHaveLength(2);
    // Once answered (here: the agent is gone and the master says so), no more rounds.
    await coordinator.handleEvent({ type: 'UPDATE', update: { status: { task_id: { value: 'locus-exec-bbb-0' }, state: 'TASK_LOST', agent_id: { value: 'S1' }, uuid: 'dXVpZC1i' } } });
    clock.advance(120_000);
    await settle();
    expect(reconciles).toHaveLength(2);
  });

  it('acknowledges an update with a uuid for a task it does not track', async () => {
    acks.length = 0;
    await coordinator.handleEvent({ type: 'UPDATE', update: { status: { task_id: { value: 'locus-exec-gone-0' }, state: 'TASK_KILLED', agent_id: { value: 'S9' }, uuid: 'dXVpZC1j' } } });
    await coordinator.handleEvent({ type: 'UPDATE', update: { status: { task_id: { value: 'someone-elses-task' }, state: 'TASK_FINISHED', agent_id: { value: 'S9' }, uuid: 'dXVpZC1k' } } });
    // An update without a uuid (from the master's reconciliation) is never acknowledged.
    await coordinator.handleEvent({ type: 'UPDATE', update: { status: { task_id: { value: 'locus-exec-gone-1' }, state: 'TASK_LOST', agent_id: { value: 'S9' } } } });
    expect(acks).toEqual([
      { agentId: 'S9', taskId: 'locus-exec-gone-0', uuid: 'dXVpZC1j' },
      { agentId: 'S9', taskId: 'someone-elses-task', uuid: 'dXVpZC1k' },
    ]);
  });
});
