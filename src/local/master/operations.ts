/**
 * ACCEPT as the genuine master processes it (`Master::accept`/`_accept`):
 * offer validation (invalid offers → TASK_DROPPED / TASK_LOST and
 * OPERATION_ERROR), then each operation in order against the remaining
 * offered resources: RESERVE / UNRESERVE / CREATE / DESTROY as resource
 * conversions the agent checkpoints (with UPDATE_OPERATION_STATUS for
 * operations with an id), LAUNCH / LAUNCH_GROUP with the resource check
 * that turns over-committed tasks into TASK_ERROR.
 */
import type { Filters, Offer, Operation, Resource, TaskInfo, TaskStatus } from '../../mesos/types.js';
import {
  add, contains, formatResources, injectAllocation, isDynamicallyReserved, isPersistentVolume, isReserved, popReservation,
  reservationRole, stripVolume, subtract, unallocate,
} from '../resources.js';
import type { Master } from './master.js';
import { isCustomExecutor } from '../agent/executors.js';
import { hasCapability, type FrameworkRecord } from './model.js';

/** The ACCEPT call body. */
export interface AcceptCall {
  readonly offer_ids: readonly { readonly value: string }[];
  readonly operations: readonly Operation[];
  readonly filters?: Filters;
}

const DEFAULT_REFUSE_SECONDS = 5;

function tasksOf(op: Operation): readonly TaskInfo[] {
  if (op.type === 'LAUNCH') return op.launch.task_infos;
  if (op.type === 'LAUNCH_GROUP') return op.launch_group.task_group.tasks;
  return [];
}

function validateOffers(m: Master, fw: FrameworkRecord, ids: readonly string[]): string | undefined {
  if (ids.length === 0) return 'No offers specified';
  const seen = new Set<string>();
  let agent: string | undefined;
  let role: string | undefined;
  let firstId: string | undefined;
  for (const id of ids) {
    if (seen.has(id)) return `Duplicate offer ${id} in offer list`;
    seen.add(id);
    const o = fw.offers.get(id);
    if (!o) return `Offer ${id} is no longer valid`;
    const r = o.allocation_info?.role;
    if (firstId === undefined) { firstId = id; agent = o.agent_id.value; role = r; continue; }
    if (r !== role) return `Aggregated offers must be allocated to the same role. Offer ${id} uses role ${r ?? ''} but another is allocated to role ${role ?? ''}`;
    if (o.agent_id.value !== agent) return `Aggregated offers must belong to one single agent. Offer ${id} uses agent ${o.agent_id.value} and offer ${firstId} uses agent ${agent ?? ''}`;
  }
  void m;
  return undefined;
}

/** Handle an ACCEPT call (the 202 was already answered). */
export function accept(m: Master, fw: FrameworkRecord, call: AcceptCall): void {
  const ids = call.offer_ids.map((o) => o.value);
  const error = validateOffers(m, fw, ids);
  if (error !== undefined) {
    for (const id of ids) if (fw.offers.has(id)) m.removeOffer(id);
    const lostState = hasCapability(fw, 'PARTITION_AWARE') ? 'TASK_DROPPED' : 'TASK_LOST';
    for (const op of call.operations) {
      if (op.type !== 'LAUNCH' && op.type !== 'LAUNCH_GROUP') {
        m.operationUpdate(fw, op.id?.value, 'OPERATION_ERROR', undefined, `Operation attempted with invalid offers: ${error}`);
        continue;
      }
      for (const t of tasksOf(op)) {
        m.masterUpdate(fw, { task_id: t.task_id, state: lostState, source: 'SOURCE_MASTER', reason: 'REASON_INVALID_OFFERS', message: `Task launched with invalid offers: ${error}`, agent_id: t.agent_id, timestamp: Date.now() / 1000 });
      }
    }
    return;
  }
  const offers = ids.map((id) => m.removeOffer(id)).filter((o): o is Offer => o !== undefined);
  const first = offers[0];
  if (!first) return;
  const agentId = first.agent_id.value;
  const role = first.allocation_info?.role;
  const offered = add(...offers.map((o) => o.resources));
  const refuse = call.filters?.refuse_seconds ?? DEFAULT_REFUSE_SECONDS;
  const run = (): void => {
    const remaining = applyOperations(m, fw, agentId, role, offered, call.operations);
    if (refuse > 0 && remaining.length > 0) {
      fw.filters.push({ agentId, role: role ?? '*', resources: unallocate(remaining), until: Date.now() + refuse * 1000 });
    }
  };
  if (m.operationDelayMs > 0) {
    const held = unallocate(offered);
    m.pending.set(agentId, add(m.pending.get(agentId) ?? [], held));
    setTimeout(() => {
      m.pending.set(agentId, subtract(m.pending.get(agentId) ?? [], held) ?? []);
      run();
    }, m.operationDelayMs).unref();
  } else {
    run();
  }
}

function agentLabel(m: Master, agentId: string): string {
  const a = m.agents.get(agentId)?.runtime;
  return `${agentId} at slave(1)@${a?.ip ?? m.settings.host}:${a?.port ?? 0} (${a?.spec.hostname ?? ''})`;
}

/** A RESERVE / UNRESERVE / CREATE / DESTROY as consumed → converted, or a validation error. */
function conversion(m: Master, fw: FrameworkRecord, agentId: string, op: Operation, role: string | undefined): { consumed: Resource[]; converted: Resource[] } | { error: string } {
  const inject = (rs: readonly Resource[]): Resource[] => injectAllocation(rs, role);
  const onAgent = (msg: string): { error: string } => ({ error: `${msg}; on agent ${agentLabel(m, agentId)}` });
  switch (op.type) {
    case 'RESERVE': {
      if ((op.reserve.source ?? []).length > 0) return { error: 'Reservation updates are not yet implemented for the scheduler API.' };
      const rs = inject(op.reserve.resources ?? []);
      for (const r of rs) {
        if (!isDynamicallyReserved(r)) return onAgent(`Resource ${formatResources([r])} is not dynamically reserved`);
        if (r.allocation_info?.role !== reservationRole(r)) return onAgent(`A reserve operation was attempted for a resource with role '${reservationRole(r)}', but the resource was allocated to role '${r.allocation_info?.role ?? ''}'`);
        if (!fw.roles.includes(reservationRole(r))) return onAgent(`A reserve operation was attempted for a resource with role '${reservationRole(r)}', but the framework can only reserve resources with roles '{ ${fw.roles.join(', ')} }'`);
        const last = r.reservations?.[r.reservations.length - 1];
        if (fw.info.principal !== undefined && last?.principal !== undefined && last.principal !== fw.info.principal) {
          return onAgent(`A reserve operation was attempted by authenticated principal '${fw.info.principal}', which does not match a reserved resource in the request with principal '${last.principal}'`);
        }
      }
      return { consumed: rs.map(popReservation), converted: rs };
    }
    case 'UNRESERVE': {
      const rs = inject(op.unreserve.resources);
      for (const r of rs) {
        if (!isDynamicallyReserved(r)) return onAgent(`Resource ${formatResources([r])} is not dynamically reserved`);
        if (isPersistentVolume(r)) return onAgent(`A dynamically reserved persistent volume ${formatResources([r])} cannot be unreserved directly. Please destroy the persistent volume first then unreserve the resource`);
      }
      return { consumed: rs, converted: rs.map(popReservation) };
    }
    case 'CREATE': {
      const vs = inject(op.create.volumes);
      for (const v of vs) {
        if (!v.disk) return onAgent(`Not a persistent volume: Resource ${formatResources([v])} does not have DiskInfo`);
        if (!v.disk.persistence) return onAgent("Not a persistent volume: 'persistence' is not set in DiskInfo");
        if (!v.disk.volume) return onAgent('Not a persistent volume: Expecting \'volume\' to be set for persistent volume');
        if (v.disk.volume.mode === 'RO') return onAgent('Not a persistent volume: Read-only persistent volume not supported');
        if (!isReserved(v)) return onAgent('Invalid resources: Persistent volumes cannot be created from unreserved resources');
        if (!/^[\w.-]+$/.test(v.disk.persistence.id)) return onAgent(`Invalid resources: Invalid persistence ID for persistent volume: '${v.disk.persistence.id}' contains invalid characters`);
      }
      const existing = (m.agents.get(agentId)?.runtime.total ?? []).filter(isPersistentVolume);
      const seen = new Set(existing.map((r) => `${reservationRole(r)}/${r.disk?.persistence?.id ?? ''}`));
      for (const v of vs) {
        const key = `${reservationRole(v)}/${v.disk?.persistence?.id ?? ''}`;
        if (seen.has(key)) return onAgent(`Persistence ID '${v.disk?.persistence?.id ?? ''}' is not unique`);
        seen.add(key);
      }
      return { consumed: vs.map(stripVolume), converted: vs };
    }
    case 'DESTROY': {
      const vs = inject(op.destroy.volumes);
      for (const v of vs) if (!isPersistentVolume(v) || !v.disk?.volume) return onAgent("Not a persistent volume: 'persistence' is not set in DiskInfo");
      const total = m.agents.get(agentId)?.runtime.total ?? [];
      if (!contains(total, unallocate(vs))) return onAgent('Persistent volumes not found');
      const used = m.usedOn(agentId);
      if (unallocate(vs).some((v) => contains(used, [v]))) return onAgent('Persistent volumes in use');
      return { consumed: vs, converted: vs.map(stripVolume) };
    }
    default:
      return { error: `Unsupported operation ${op.type}` };
  }
}

function applyOperations(m: Master, fw: FrameworkRecord, agentId: string, role: string | undefined, offered: Resource[], operations: readonly Operation[]): Resource[] {
  let remaining = offered;
  const agent = m.agents.get(agentId);
  const startedExecutors = new Set<string>();
  const taskError = (t: TaskInfo, reason: string, message: string): void => {
    const status: TaskStatus = { task_id: t.task_id, state: 'TASK_ERROR', source: 'SOURCE_MASTER', reason, message, agent_id: t.agent_id, timestamp: Date.now() / 1000 };
    m.masterUpdate(fw, status);
  };
  for (const op of operations) {
    if (op.type === 'LAUNCH' || op.type === 'LAUNCH_GROUP') {
      const group = op.type === 'LAUNCH_GROUP';
      const reason = group ? 'REASON_TASK_GROUP_INVALID' : 'REASON_TASK_INVALID';
      if (op.id !== undefined) {
        for (const t of tasksOf(op)) taskError(t, reason, `The \`id\` field cannot be set on ${op.type} operations`);
        continue;
      }
      const executor = group ? op.launch_group.executor : undefined;
      const launchable: { task: TaskInfo; resources: Resource[]; own: Resource[] }[] = [];
      let groupError: string | undefined;
      let available = remaining;
      // An executor already running on the agent (or started earlier in this ACCEPT) is not charged again.
      const charged = (eid: string): boolean => agent?.runtime.hasExecutor(fw.id, eid) === true || startedExecutors.has(eid);
      if (executor?.type === 'CUSTOM' && executor.command === undefined) groupError = "'ExecutorInfo.command' must be set for 'CUSTOM' executor";
      else if (executor?.type === 'DEFAULT' && executor.command !== undefined) groupError = "'ExecutorInfo.command' must not be set for 'DEFAULT' executor";
      if (executor && groupError === undefined && !charged(executor.executor_id.value)) {
        startedExecutors.add(executor.executor_id.value);
        const er = injectAllocation(executor.resources ?? [], role);
        const after = subtract(available, er);
        if (!after) groupError = `Total resources ${formatResources(er)} required by task group and its executor are more than available ${formatResources(available)}`;
        else available = after;
      }
      for (const t of tasksOf(op)) {
        if (groupError !== undefined) break;
        const own = injectAllocation(t.resources, role);
        const exec = !group && t.executor && !charged(t.executor.executor_id.value) ? injectAllocation(t.executor.resources ?? [], role) : [];
        const rs = [...own, ...exec];
        let err: string | undefined;
        if (fw.tasks.has(t.task_id.value) || launchable.some((l) => l.task.task_id.value === t.task_id.value)) err = `Task has duplicate ID: ${t.task_id.value}`;
        else if (t.agent_id.value !== agentId) err = `Task uses agent ${t.agent_id.value} but the offers are on agent ${agentId}`;
        else if (t.resources.length === 0) err = 'Task uses no resources';
        else if (!group && (t.command === undefined) === (t.executor === undefined)) err = 'Task should have at least one (but not both) of CommandInfo or ExecutorInfo present';
        else if (group && t.command === undefined) err = "Task group's task should have 'command' set";
        else if (!group && t.executor && t.executor.command === undefined) err = "'ExecutorInfo.command' must be set for 'CUSTOM' executor";
        else {
          const after = subtract(available, rs);
          if (!after) err = `Total resources ${formatResources(rs)} required by task and its executor is more than available ${formatResources(available)}`;
          else available = after;
        }
        if (err !== undefined) {
          if (group) { groupError = err; break; }
          taskError(t, reason, err);
          continue;
        }
        if (!group && t.executor) startedExecutors.add(t.executor.executor_id.value);
        launchable.push({ task: t, resources: rs, own });
      }
      if (groupError !== undefined) {
        for (const t of tasksOf(op)) taskError(t, reason, groupError);
        continue;
      }
      remaining = available;
      const customGroup = executor !== undefined && isCustomExecutor(executor);
      const groupTasks: TaskInfo[] = [];
      for (const l of launchable) {
        const rec = m.addTask(fw, agentId, role ?? '*', l.task, l.resources);
        if (!agent || !agent.connected || !agent.runtime.running) {
          const partitionAware = hasCapability(fw, 'PARTITION_AWARE');
          m.masterUpdate(fw, { task_id: l.task.task_id, state: partitionAware ? 'TASK_DROPPED' : 'TASK_LOST', source: 'SOURCE_MASTER', reason: 'REASON_SLAVE_DISCONNECTED', message: 'Agent disconnected', agent_id: { value: agentId }, timestamp: Date.now() / 1000 }, rec);
          fw.tasks.delete(l.task.task_id.value);
          continue;
        }
        if (customGroup) {
          groupTasks.push({ ...l.task, resources: l.own });
          continue;
        }
        const taskInfo: TaskInfo = { ...l.task, resources: l.own, ...(executor ? { executor } : {}) };
        agent.runtime.launchTask(fw.id, fw.info, taskInfo);
      }
      if (customGroup && groupTasks.length > 0 && agent) agent.runtime.launchGroup(fw.id, fw.info, executor, groupTasks);
      continue;
    }
    const conv = conversion(m, fw, agentId, op, role);
    if ('error' in conv) {
      m.logger.warn({ framework: fw.id, op: op.type, error: conv.error }, 'dropping operation');
      m.operationUpdate(fw, op.id?.value, 'OPERATION_ERROR', undefined, conv.error);
      continue;
    }
    const next = subtract(remaining, conv.consumed);
    if (!next) {
      const message = `${formatResources(remaining)} does not contain ${formatResources(conv.consumed)}`;
      m.logger.warn({ framework: fw.id, op: op.type, error: message }, 'dropping operation');
      m.operationUpdate(fw, op.id?.value, 'OPERATION_ERROR', undefined, message);
      continue;
    }
    if (op.type === 'DESTROY') {
      // Other offers holding the volume are no longer valid.
      for (const [offerId, idx] of [...m.offerIndex]) {
        const o = m.frameworks.get(idx.frameworkId)?.offers.get(offerId);
        if (o && idx.agentId === agentId && unallocate(conv.consumed).some((v) => contains(unallocate(o.resources), [v]))) m.rescindOffer(offerId);
      }
    }
    remaining = add(next, conv.converted);
    agent?.runtime.applyConversion(unallocate(conv.consumed), unallocate(conv.converted));
    m.operationUpdate(fw, op.id?.value, 'OPERATION_FINISHED', agentId);
  }
  return remaining;
}
