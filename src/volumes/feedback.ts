/**
 * Pure record transitions driven by events other than offers: operation
 * status updates, lost agents, executors taking and releasing a volume, and
 * delete requests. Each returns the new record, or undefined when the event
 * changes nothing (a replayed or stale update), which is what makes replays
 * idempotent: nothing is written twice.
 */
import { LocusError } from '../core/errors.js';
import type * as types from '../mesos/types.js';
import type { HoldingRecord, OpKind, VolumeRecord } from './model.js';
import { transition } from './states.js';
import { parseOperationId } from './wire.js';

/** Operation states that mean "did not happen; may be retried". */
// OPERATION_ERROR is what a genuine master sends for every operation of an ACCEPT whose offer was
// no longer valid (rescinded, already used): nothing happened, and the next offer can succeed.
const FAILED_STATES: ReadonlySet<types.OperationState> = new Set<types.OperationState>(['OPERATION_FAILED', 'OPERATION_DROPPED', 'OPERATION_ERROR']);

/** Operation states that mean "can never succeed as sent". */
const ERROR_STATES: ReadonlySet<types.OperationState> = new Set<types.OperationState>(['OPERATION_UNSUPPORTED']);

function withoutOp(h: HoldingRecord, op: OpKind): HoldingRecord['ops'] {
  const { [op]: _dropped, ...rest } = h.ops;
  return rest;
}

/**
 * Apply an UPDATE_OPERATION_STATUS to the holding its operation id names.
 * Statuses for an operation the record no longer waits for are stale: ignored.
 */
export function applyOperationStatus(h: HoldingRecord, status: types.OperationStatus, now: number, maxAttempts = 5): HoldingRecord | undefined {
  const id = status.operation_id?.value;
  if (id === undefined) return undefined;
  const parsed = parseOperationId(id);
  if (!parsed || parsed.holdingId !== h.id) return undefined;
  if (h.ops[parsed.op]?.id !== id) return undefined;
  const op = parsed.op;
  const msg = status.message ? `: ${status.message}` : '';

  if (status.state === 'OPERATION_FINISHED') {
    switch (op) {
      case 'reserve':
        if (h.state !== 'RESERVING') return { ...h, ops: withoutOp(h, op), updatedAt: now };
        return transition(h, h.kind === 'volume' ? 'CREATING' : 'READY', now, { ops: withoutOp(h, op) });
      case 'create':
        if (h.state !== 'RESERVING' && h.state !== 'CREATING') return { ...h, ops: withoutOp(h, op), updatedAt: now };
        return transition(h, 'READY', now, { ops: {} });
      case 'destroy':
        if (h.state !== 'DESTROYING') return { ...h, ops: withoutOp(h, op), updatedAt: now };
        return transition(h, 'UNRESERVING', now, { ops: withoutOp(h, op) });
      case 'unreserve':
        if (h.state !== 'DESTROYING' && h.state !== 'UNRESERVING') return { ...h, ops: withoutOp(h, op), updatedAt: now };
        return transition(h, 'DELETED', now, { ops: {} });
    }
  }

  if (FAILED_STATES.has(status.state) || ERROR_STATES.has(status.state)) {
    const permanent = ERROR_STATES.has(status.state);
    const reason = `${op.toUpperCase()} ${status.state}${msg}`;
    switch (op) {
      case 'reserve':
        // The CREATE in the same ACCEPT cannot have succeeded either.
        if (h.state !== 'RESERVING') return { ...h, ops: withoutOp(h, op), updatedAt: now };
        if (permanent || h.attempt >= maxAttempts) return transition(h, 'FAILED', now, { ops: {}, reason });
        return transition(h, 'REQUESTED', now, { ops: {}, reason, ...(h.placement.agent === undefined ? { agentId: undefined, hostname: undefined } : {}) });
      case 'create':
        if (h.state !== 'RESERVING' && h.state !== 'CREATING') return { ...h, ops: withoutOp(h, op), updatedAt: now };
        if (permanent || h.attempt >= maxAttempts) return transition(h, 'FAILED', now, { ops: {}, reason });
        // The reservation stands; the planner re-issues CREATE on the next offer that shows it.
        return transition(h, 'CREATING', now, { ops: {}, reason });
      case 'destroy':
      case 'unreserve':
        // Teardown is never abandoned: clear the slot so the planner retries when the offer shows the resources.
        return { ...h, ops: withoutOp(h, op), reason, updatedAt: now };
    }
  }

  if (status.state === 'OPERATION_GONE_BY_OPERATOR') {
    if (h.state === 'UNAVAILABLE' || h.state === 'DELETED' || h.state === 'FAILED' || h.state === 'REQUESTED') return undefined;
    return transition(h, 'UNAVAILABLE', now, { resumeState: h.state, reason: `agent gone (${op} ${status.state})${msg}` });
  }
  // PENDING, RECOVERING, UNREACHABLE, UNKNOWN: no decision yet; offers will tell.
  return undefined;
}

/** An agent was lost: its holdings become UNAVAILABLE (never destroyed). */
export function markAgentLost(h: HoldingRecord, agentId: string, reason: string, now: number): HoldingRecord | undefined {
  if (h.agentId !== agentId) return undefined;
  if (h.state === 'UNAVAILABLE' || h.state === 'DELETED' || h.state === 'REQUESTED' || h.state === 'FAILED') return undefined;
  const next = transition(h, 'UNAVAILABLE', now, { resumeState: h.state, reason });
  return next.kind === 'volume' ? { ...next, usedBy: [] } : next;
}

/** An executor mounts the volume. Non-shared volumes serve one executor at a time. */
export function markInUse(v: VolumeRecord, executorId: string, now: number): VolumeRecord | undefined {
  if (v.usedBy.includes(executorId)) return undefined;
  if (v.usedBy.length > 0) throw new LocusError('IN_USE', `volume ${v.name} is in use by ${v.usedBy.join(', ')}`, { field: 'name' });
  if (v.state !== 'READY') throw new LocusError('WRONG_STATE', `volume ${v.name} is ${v.state}, not READY`, { field: 'name' });
  if (v.deleteRequested) throw new LocusError('WRONG_STATE', `volume ${v.name} is being deleted`, { field: 'name' });
  return transition(v, 'IN_USE', now, { usedBy: [executorId] });
}

/** An executor released the volume (ended or was lost). */
export function markReleased(v: VolumeRecord, executorId: string, now: number): VolumeRecord | undefined {
  if (!v.usedBy.includes(executorId)) return undefined;
  const usedBy = v.usedBy.filter((e) => e !== executorId);
  if (v.state === 'IN_USE' && usedBy.length === 0) return transition(v, 'READY', now, { usedBy });
  return { ...v, usedBy, updatedAt: now };
}

/**
 * An explicit delete. Holdings that never reached an agent go straight to
 * DELETED; others are marked and the planner tears them down through offers.
 * In use → IN_USE (409), even with force. UNAVAILABLE needs force (its agent
 * may never return; if it does, the leftovers are collected as orphans).
 */
export function requestDelete(h: HoldingRecord, force: boolean, now: number): HoldingRecord | undefined {
  const what = h.kind === 'volume' ? `volume ${h.name}` : `reservation ${h.id}`;
  switch (h.state) {
    case 'DELETED':
    case 'DESTROYING':
    case 'UNRESERVING':
      return undefined;
    case 'IN_USE':
      // An executor keeps its volume until it has idled for executor-idle-timeout after its last
      // task, so "stop the job" alone was no answer: the volume stayed in use after every job had ended.
      throw new LocusError('IN_USE', `${what} is in use by ${h.kind === 'volume' ? `executor ${h.usedBy.join(', ')}` : 'an executor'}: a task that mounts it runs there, or ran there last and the executor keeps the volume until it has been idle for executor-idle-timeout (60 s unless set; with 0, until the executor stops); delete it once no job using it runs and that time has passed`);
    case 'REQUESTED':
      return transition(h, 'DELETED', now, { ops: {}, deleteRequested: true });
    case 'UNAVAILABLE':
      if (!force) throw new LocusError('CONFLICT', `${what} is UNAVAILABLE (${h.reason ?? 'agent lost'}); delete with force=true to forget it`, { field: 'force' });
      return transition(h, 'DELETED', now, { ops: {}, deleteRequested: true, reason: 'deleted by force while unavailable' });
    case 'FAILED':
      if (h.agentId === undefined || force) return transition(h, 'DELETED', now, { ops: {}, deleteRequested: true });
      return h.deleteRequested ? undefined : { ...h, deleteRequested: true, updatedAt: now };
    case 'RESERVING':
    case 'CREATING':
    case 'READY':
      return h.deleteRequested ? undefined : { ...h, deleteRequested: true, updatedAt: now };
  }
}
