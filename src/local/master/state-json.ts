/**
 * `/state` (`/master/state`) and `/slaves` shaped like the genuine master's
 * (`src/master/http.cpp`, `src/master/readonly_handler.cpp`): resources as
 * summaries (scalars summed, ranges as text), reserved resources per role,
 * and `/slaves` with `reserved_resources_full` listing volumes in full.
 */
import type { Resource } from '../../mesos/types.js';
import { TERMINAL_TASK_STATES } from '../../mesos/types.js';
import { add, isReserved, reservationRole, summary, unallocate, unreserved } from '../resources.js';
import type { Master } from './master.js';
import type { AgentRecord, FrameworkRecord, TaskRecord } from './model.js';

const AGENT_CAPABILITIES = ['MULTI_ROLE', 'HIERARCHICAL_ROLE', 'RESERVATION_REFINEMENT', 'RESOURCE_PROVIDER', 'RESIZE_VOLUME', 'AGENT_OPERATION_FEEDBACK', 'AGENT_DRAINING', 'TASK_RESOURCE_LIMITS'];

function byRole(list: readonly Resource[]): Map<string, Resource[]> {
  const out = new Map<string, Resource[]>();
  for (const r of list) if (isReserved(r)) out.set(reservationRole(r), [...(out.get(reservationRole(r)) ?? []), r]);
  return out;
}

function used(m: Master, agentId: string): Resource[] {
  return m.usedOn(agentId);
}

function offered(m: Master, agentId: string): Resource[] {
  const out: Resource[][] = [];
  for (const fw of m.frameworks.values()) for (const o of fw.offers.values()) if (o.agent_id.value === agentId) out.push(unallocate(o.resources));
  return add(...out);
}

function agentJson(m: Master, id: string, a: AgentRecord, full: boolean): Record<string, unknown> {
  const rt = a.runtime;
  const reserved = byRole(rt.total);
  return {
    id,
    hostname: rt.spec.hostname,
    port: rt.port,
    attributes: { rack: rt.spec.rack, ...rt.spec.attributes },
    pid: `slave(1)@${rt.ip}:${rt.port}`,
    registered_time: a.registeredTime,
    ...(a.reregisteredTime !== undefined ? { reregistered_time: a.reregisteredTime } : {}),
    resources: summary(rt.total),
    used_resources: summary(used(m, id)),
    offered_resources: summary(offered(m, id)),
    reserved_resources: Object.fromEntries([...reserved].map(([role, rs]) => [role, summary(rs)])),
    unreserved_resources: summary(unreserved(rt.total)),
    ...(full ? {
      reserved_resources_full: Object.fromEntries([...reserved].map(([role, rs]) => [role, rs])),
      unreserved_resources_full: unreserved(rt.total),
      used_resources_full: used(m, id),
      offered_resources_full: offered(m, id),
    } : {}),
    active: a.connected,
    deactivated: false,
    version: '1.12.0',
    capabilities: AGENT_CAPABILITIES,
  };
}

function taskJson(t: TaskRecord): Record<string, unknown> {
  return {
    id: t.info.task_id.value,
    name: t.info.name,
    framework_id: t.frameworkId,
    executor_id: t.info.executor?.executor_id.value ?? '',
    slave_id: t.agentId,
    state: t.state,
    resources: summary(unallocate(t.resources)),
    role: t.role,
    statuses: t.statuses.map((s) => ({ state: s.state, timestamp: s.timestamp, ...(s.container_status ? { container_status: s.container_status } : {}) })),
    ...(t.info.labels ? { labels: t.info.labels.labels } : {}),
    ...(t.info.container ? { container: t.info.container } : {}),
  };
}

function frameworkJson(m: Master, fw: FrameworkRecord): Record<string, unknown> {
  const active = [...fw.tasks.values()].filter((t) => !t.unreachable);
  const usedRes = add(...active.filter((t) => !TERMINAL_TASK_STATES.has(t.state)).map((t) => unallocate(t.resources)));
  const offeredRes = add(...[...fw.offers.values()].map((o) => unallocate(o.resources)));
  return {
    id: fw.id,
    name: fw.info.name,
    used_resources: summary(usedRes),
    offered_resources: summary(offeredRes),
    capabilities: (fw.info.capabilities ?? []).map((c) => c.type),
    hostname: fw.info.hostname ?? '',
    webui_url: fw.info.webui_url ?? '',
    active: fw.stream !== undefined,
    connected: fw.stream !== undefined,
    recovered: fw.recovered,
    user: fw.info.user,
    failover_timeout: fw.info.failover_timeout ?? 0,
    checkpoint: fw.info.checkpoint ?? false,
    registered_time: fw.registeredTime,
    unregistered_time: fw.unregisteredTime,
    ...(fw.reregisteredTime !== undefined ? { reregistered_time: fw.reregisteredTime } : {}),
    ...(fw.info.principal !== undefined ? { principal: fw.info.principal } : {}),
    resources: summary(add(usedRes, offeredRes)),
    roles: fw.roles,
    ...(fw.info.role !== undefined ? { role: fw.info.role } : {}),
    tasks: active.map(taskJson),
    unreachable_tasks: [...fw.tasks.values()].filter((t) => t.unreachable).map(taskJson),
    completed_tasks: fw.completedTasks.map(taskJson),
    offers: [...fw.offers.values()].map((o) => ({ id: o.id.value, framework_id: fw.id, slave_id: o.agent_id.value, resources: summary(unallocate(o.resources)) })),
    executors: [],
    offer_constraints: {},
    ...(fw.info.labels ? { labels: fw.info.labels.labels } : {}),
  };
}

/** The body of `/state` and `/master/state`. */
export function stateJson(m: Master): Record<string, unknown> {
  const agents = [...m.agents.entries()];
  return {
    version: '1.12.0',
    git_sha: 'locus-local',
    build_date: '',
    build_time: 0,
    build_user: '',
    start_time: m.startTime,
    elected_time: m.startTime,
    id: m.id,
    pid: `master@${m.settings.host}:${m.port}`,
    hostname: m.settings.host,
    capabilities: ['AGENT_UPDATE', 'AGENT_DRAINING', 'QUOTA_V2'],
    activated_slaves: agents.filter(([, a]) => a.connected).length,
    deactivated_slaves: 0,
    unreachable_slaves: agents.filter(([, a]) => !a.connected).length,
    leader: `master@${m.settings.host}:${m.port}`,
    leader_info: { id: m.id, pid: `master@${m.settings.host}:${m.port}`, port: m.port, hostname: m.settings.host },
    flags: {
      allocation_interval: `${m.settings.allocationIntervalMs}ms`,
      framework_sorter: 'drf',
      role_sorter: 'drf',
      hostname: m.settings.host,
      port: String(m.port),
      work_dir: m.settings.workDir,
      min_allocatable_resources: 'cpus:0.01|mem:32',
      registry: 'local_checkpoint',
    },
    slaves: agents.filter(([, a]) => a.connected).map(([id, a]) => agentJson(m, id, a, false)),
    recovered_slaves: [],
    frameworks: [...m.frameworks.values()].filter((f) => !f.recovered).map((f) => frameworkJson(m, f)),
    completed_frameworks: [],
    orphan_tasks: [...m.frameworks.values()].filter((f) => f.recovered).flatMap((f) => [...f.tasks.values()].map(taskJson)),
    unregistered_frameworks: [...m.frameworks.values()].filter((f) => f.recovered).map((f) => f.id),
  };
}

/** The body of `/slaves`. */
export function slavesJson(m: Master): Record<string, unknown> {
  return {
    slaves: [...m.agents.entries()].filter(([, a]) => a.connected).map(([id, a]) => agentJson(m, id, a, true)),
    recovered_slaves: [],
  };
}
