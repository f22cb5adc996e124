/**
 * What the coordinator tests on a real Redis share: the job service the coordinator places from
 * (no datasets, small limits) and a launcher whose executors are bare TaskInfos that never start.
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import type { Coordinator, ExecutorLauncher, MesosDriver } from '../../src/scheduler/coordinator.js';
import type { Event, Offer, Operation } from '../../src/mesos/types.js';
import { waitFor } from '../harness/wait.js';
export { suiteRedis } from '../harness/redis.js';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';

/** A job service on `client` whose outputs go under `outputRoot`. */
export function testJobService(client: Redis, clock: Clock, outputRoot: string): JobService {
  return new JobService({
    store: new JobStore(client), clock, logger: silentLogger(), outputRoot,
    resolver: { resolve: async () => [] },
    limits: { maxPendingTasksPerTenant: 100, maxTasksPerJob: 100 },
  });
}

/** Executors as TaskInfos named after their ids, running `true`; ready at once, retired at once. */
export const bareLauncher: ExecutorLauncher = {
  taskInfo: async (l, _o, resources) => ({ name: l.executorId, task_id: { value: l.executorId }, agent_id: { value: l.agentId }, resources: [...resources], command: { value: 'true' } }),
  ready: async () => undefined,
  retire: async () => undefined,
};

/** An offer for role `locus` of `cpus` cpus, 8 GiB of memory and `diskMiB` of disk from `agent` on `host`, rack r1. */
export function roleOffer(id: string, agent: string, host: string, cpus: number, diskMiB = 8192): Offer {
  return {
    id: { value: id }, framework_id: { value: 'fw' }, agent_id: { value: agent }, hostname: host,
    resources: [
      { name: 'cpus', type: 'SCALAR', scalar: { value: cpus }, allocation_info: { role: 'locus' } },
      { name: 'mem', type: 'SCALAR', scalar: { value: 8192 }, allocation_info: { role: 'locus' } },
      { name: 'disk', type: 'SCALAR', scalar: { value: diskMiB }, allocation_info: { role: 'locus' } },
    ],
    attributes: [{ name: 'rack', type: 'TEXT', text: { value: 'r1' } }],
    allocation_info: { role: 'locus' },
  };
}

/**
 * Offer agent S1 (agent-1) with `cpus` cpus, wait for the one executor the coordinator launches
 * there (recorded in `accepts`) and report it running; returns its id.
 */
export async function launchOnOffer(coordinator: Coordinator, accepts: readonly Operation[][], offerId: string, cpus: number): Promise<string> {
  await coordinator.handleEvent({ type: 'OFFERS', offers: { offers: [roleOffer(offerId, 'S1', 'agent-1', cpus)] } });
  await waitFor('an executor launched', () => accepts.length === 1);
  const op = accepts[0]?.find((o) => o.type === 'LAUNCH');
  const info = op?.type === 'LAUNCH' ? op.launch.task_infos[0] : undefined;
  if (!info) throw new Error('no executor launched');
  const running: Event = { type: 'UPDATE', update: { status: { task_id: { value: info.task_id.value }, state: 'TASK_RUNNING', agent_id: { value: 'S1' }, uuid: 'dXVpZA==' } } };
  await coordinator.handleEvent(running);
  return info.task_id.value;
}

/** Recover the coordinator and subscribe it as framework `fw`. */
export async function subscribed(coordinator: Coordinator): Promise<void> {
  await coordinator.recover();
  await coordinator.handleEvent({ type: 'SUBSCRIBED', subscribed: { framework_id: { value: 'fw' }, heartbeat_interval_seconds: 15 } });
}

/**
 * A master that answers every call and records the operations of each ACCEPT in `accepts` (and,
 * given `declined`, each DECLINE's offers and refuse seconds).
 */
export function acceptRecordingDriver(accepts: Operation[][], declined?: { ids: readonly string[]; seconds: number }[]): MesosDriver {
  return {
    accept: async (_ids, ops) => { accepts.push([...ops]); },
    decline: async (ids, seconds) => { declined?.push({ ids, seconds }); },
    revive: async () => undefined,
    suppress: async () => undefined,
    kill: async () => undefined,
    acknowledge: async () => undefined,
    acknowledgeOperationStatus: async () => undefined,
    reconcile: async () => undefined,
    acceptInverseOffers: async () => undefined,
  };
}
