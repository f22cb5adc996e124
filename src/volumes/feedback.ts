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
 * What uses a volume besides the executors that hold it, as the job service knows it: attempts of
 * tasks that mount it and are running (or queued in an executor), and jobs whose pending tasks
 * are pinned to it. Given to requestDelete by the scheduler that runs those jobs.
 */
export interface VolumeUse {
  /** Task ids of running attempts that mount the volume. */
  readonly running: readonly string[];
  /** Jobs with tasks pinned to the volume that wait to run, and how many. */
  readonly waiting: readonly { readonly jobId: string; readonly tasks: number }[];
}

/** A few ids and how many more, for a message. */
function someOf(ids: readonly string[], max = 3): string {
  const shown = ids.slice(0, max).join(', ');
  return ids.length > max ? `${shown} and ${ids.length - max} more` : shown;
}

/**
 * Refuse deleting a volume a job still needs (409 IN_USE, even with force: force only forgets
 * what cannot be reached). Undefined when nothing uses it.
 */
function refuseIfUsed(v: VolumeRecord, use: VolumeUse): LocusError | undefined {
  if (use.running.length > 0) {
    return new LocusError('IN_USE', `volume ${v.name} is in use: task ${someOf(use.running)} mounts it and is running${v.usedBy.length > 0 ? ` in executor ${v.usedBy.join(', ')}` : ''}; delete it once that job has ended (or cancel the job)`);
  }
  if (use.waiting.length > 0) {
    // Accepting would leave these jobs waiting for a volume that is going away; the operator
    // decides whether they go (cancel) or the volume stays.
    const jobs = someOf(use.waiting.map((w) => `${w.jobId} (${w.tasks} task${w.tasks === 1 ? '' : 's'})`));
    return new LocusError('IN_USE', `volume ${v.name} is in use: job ${jobs} waits to run tasks that mount it; cancel the job, or delete the volume once it has ended`);
  }
  return undefined;
}

/**
 * An explicit delete. Holdings that never reached an agent go straight to
 * DELETED; others are marked and the planner tears them down through offers.
 * UNAVAILABLE needs force (its agent may never return; if it does, the
 * leftovers are collected as orphans).
 *
 * A volume a task that mounts it runs on, or jobs wait for, is refused (IN_USE,
 * 409, even with force) when `use` tells so. An IN_USE volume nothing uses (its
 * executor idles after the job that mounted it, and keeps it until
 * executor-idle-timeout) is accepted: the scheduler releases that executor at
 * once (placement's 'volume-delete' release) and the planner tears the volume
 * down when it is back to READY, so "delete after the job ended" just works.
 * Without `use` (a caller with no view of the jobs) an IN_USE volume is refused
 * as it always was: its executor might be running a task that mounts it.
 */
export function requestDelete(h: HoldingRecord, force: boolean, now: number, use?: VolumeUse): HoldingRecord | undefined {
  const what = h.kind === 'volume' ? `volume ${h.name}` : `reservation ${h.id}`;
  switch (h.state) {
    case 'DELETED':
    case 'DESTROYING':
    case 'UNRESERVING':
      return undefined;
    case 'IN_USE': {
      if (h.kind !== 'volume' || use === undefined) {
        // With no view of the jobs, whether a task mounting it still runs is unknown: the old answer,
        // which says when the executor gives the volume back by itself.
        throw new LocusError('IN_USE', `${what} is in use by ${h.kind === 'volume' ? `executor ${h.usedBy.join(', ')}` : 'an executor'}: a task that mounts it runs there, or ran there last and the executor keeps the volume until it has been idle for executor-idle-timeout (60 s unless set; with 0, until the executor stops); delete it once no job using it runs and that time has passed`);
      }
      const refused = refuseIfUsed(h, use);
      if (refused) throw refused;
      if (h.deleteRequested) return undefined;
      // The state stays IN_USE until the executor has gone (Mesos keeps the volume in its container
      // until then); the reason is what `locus volumes rm` shows while it waits.
      return { ...h, deleteRequested: true, reason: `delete requested: releasing executor ${h.usedBy.join(', ')}, which holds it and runs no task that mounts it`, updatedAt: now };
    }
    case 'REQUESTED':
      return transition(h, 'DELETED', now, { ops: {}, deleteRequested: true });
    case 'UNAVAILABLE':
      if (!force) throw new LocusError('CONFLICT', `${what} is UNAVAILABLE (${h.reason ?? 'agent lost'}); delete with force=true to forget it`, { field: 'force' });
      return transition(h, 'DELETED', now, { ops: {}, deleteRequested: true, reason: 'deleted by force while unavailable' });
    case 'FAILED':
      if (h.agentId === undefined || force) return transition(h, 'DELETED', now, { ops: {}, deleteRequested: true });
      return h.deleteRequested ? undefined : { ...h, deleteRequested: true, updatedAt: now };
    case 'READY': {
      // Jobs wait for a READY volume too (their executor is still to be launched on its agent).
      const refused = h.kind === 'volume' && use !== undefined ? refuseIfUsed(h, use) : undefined;
      if (refused) throw refused;
      return h.deleteRequested ? undefined : { ...h, deleteRequested: true, updatedAt: now };
    }
    case 'RESERVING':
    case 'CREATING':
      return h.deleteRequested ? undefined : { ...h, deleteRequested: true, updatedAt: now };
  }
}
