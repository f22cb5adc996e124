/**
 * The explicit state machines of volumes and capacity reservations. Every
 * state change goes through `transition`, which refuses anything the tables
 * below do not list, so an impossible jump is a loud bug instead of a
 * silently corrupted record.
 *
 *   volume:      REQUESTED → RESERVING → CREATING → READY ⇄ IN_USE
 *                READY → DESTROYING → UNRESERVING → DELETED
 *   reservation: REQUESTED → RESERVING → READY → UNRESERVING → DELETED
 *   both:        FAILED (gave up; only delete leaves it) and
 *                UNAVAILABLE (agent lost; resumes when the agent is back)
 */
import { LocusError } from '../core/errors.js';
import type { HoldingRecord } from './model.js';

/** Every state of a holding. */
export const VOLUME_STATES = [
  'REQUESTED', 'RESERVING', 'CREATING', 'READY', 'IN_USE', 'DESTROYING', 'UNRESERVING', 'DELETED', 'FAILED', 'UNAVAILABLE',
] as const;

/** A holding's state. */
export type VolumeState = (typeof VOLUME_STATES)[number];

/** States after which nothing changes. */
export const FINAL_STATES: ReadonlySet<VolumeState> = new Set<VolumeState>(['DELETED']);

// Why each edge exists:
// - REQUESTED → CREATING / READY: adoption, when a previous attempt's
//   reservation (or volume) shows up in an offer after a restart.
// - RESERVING → REQUESTED: the RESERVE failed or was never confirmed; retry.
// - CREATING → UNRESERVING: delete requested before the volume existed.
// - DESTROYING → DELETED: DESTROY and UNRESERVE went in one ACCEPT and the
//   resources are gone from the agent's offers.
// - UNAVAILABLE → *: the agent returned; the state follows what its offers show.
const VOLUME_TABLE: Readonly<Record<VolumeState, readonly VolumeState[]>> = {
  REQUESTED: ['RESERVING', 'CREATING', 'READY', 'DELETED', 'FAILED'],
  RESERVING: ['CREATING', 'READY', 'REQUESTED', 'DESTROYING', 'UNRESERVING', 'FAILED', 'UNAVAILABLE'],
  CREATING: ['READY', 'REQUESTED', 'DESTROYING', 'UNRESERVING', 'FAILED', 'UNAVAILABLE'],
  READY: ['IN_USE', 'DESTROYING', 'UNAVAILABLE'],
  IN_USE: ['READY', 'UNAVAILABLE'],
  DESTROYING: ['UNRESERVING', 'DELETED', 'UNAVAILABLE'],
  UNRESERVING: ['DELETED', 'UNAVAILABLE'],
  UNAVAILABLE: ['REQUESTED', 'CREATING', 'READY', 'IN_USE', 'DESTROYING', 'UNRESERVING', 'DELETED'],
  FAILED: ['DELETED', 'DESTROYING', 'UNRESERVING'],
  DELETED: [],
};

const RESERVATION_TABLE: Readonly<Record<VolumeState, readonly VolumeState[]>> = {
  REQUESTED: ['RESERVING', 'READY', 'DELETED', 'FAILED'],
  RESERVING: ['READY', 'REQUESTED', 'UNRESERVING', 'FAILED', 'UNAVAILABLE'],
  CREATING: [],
  READY: ['UNRESERVING', 'UNAVAILABLE'],
  IN_USE: [],
  DESTROYING: [],
  UNRESERVING: ['DELETED', 'UNAVAILABLE'],
  UNAVAILABLE: ['REQUESTED', 'READY', 'UNRESERVING', 'DELETED'],
  FAILED: ['DELETED', 'UNRESERVING'],
  DELETED: [],
};

/** The transition table for a kind of holding. */
export function transitionTable(kind: HoldingRecord['kind']): Readonly<Record<VolumeState, readonly VolumeState[]>> {
  return kind === 'volume' ? VOLUME_TABLE : RESERVATION_TABLE;
}

/** Whether `from → to` is allowed for this kind (staying put always is). */
export function canTransition(kind: HoldingRecord['kind'], from: VolumeState, to: VolumeState): boolean {
  return from === to || transitionTable(kind)[from].includes(to);
}

/** Fields a transition may change besides the state. */
export type TransitionPatch<T extends HoldingRecord> = Partial<Omit<T, 'state' | 'id' | 'kind' | 'version' | 'createdAt' | 'tenant'>>;

/**
 * The record after moving to `to` with `patch` applied. `reason` is cleared
 * unless the patch sets one. Throws WRONG_STATE on an edge not in the table.
 * The version is bumped by the store, not here.
 */
export function transition<T extends HoldingRecord>(rec: T, to: VolumeState, now: number, patch: TransitionPatch<T> = {}): T {
  if (!canTransition(rec.kind, rec.state, to)) {
    throw new LocusError('WRONG_STATE', `${rec.kind} ${rec.id}: ${rec.state} → ${to} is not a valid transition`, {
      details: { from: rec.state, to },
    });
  }
  const next = { ...rec, ...patch, state: to, updatedAt: now } as T;
  if (!('reason' in patch)) delete (next as { reason?: string }).reason;
  if (to !== 'UNAVAILABLE' && !('resumeState' in patch)) delete (next as { resumeState?: VolumeState }).resumeState;
  return next;
}

/** States in which the holding occupies resources on an agent (or may). */
export function holdsResources(state: VolumeState): boolean {
  return state !== 'REQUESTED' && state !== 'DELETED';
}
