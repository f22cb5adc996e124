/**
 * How holdings look on the Mesos wire: the labelled reservations Locus makes,
 * the persistent-volume disk resource, operation ids, and the recognition of
 * Locus's own resources in offers (the shapes of the Mesos 1.12 fixtures:
 * `reservations` with one DYNAMIC entry carrying labels; a volume as disk
 * with `disk.persistence.id` and `disk.volume`).
 */
import type * as types from '../mesos/types.js';
import type { HoldingRecord, OpKind, VolumeRecord } from './model.js';

/** Label naming the volume id a reservation belongs to. */
export const LABEL_VOLUME = 'locus.volume';
/** Label naming the capacity-reservation id a reservation belongs to. */
export const LABEL_RESERVATION = 'locus.reservation';
/** Label naming the Locus framework instance that made the reservation. */
export const LABEL_FRAMEWORK = 'locus.framework';
/** Label naming the tenant. */
export const LABEL_TENANT = 'locus.tenant';

/** Who Locus is on the wire: the framework label value and the principal. */
export interface WireIdentity {
  /** Value of the `locus.framework` label (a stable framework name, not the id: ids change on re-registration). */
  readonly framework: string;
  readonly principal?: string;
}

/** The reservation entry Locus pushes for a holding (RESERVATION_REFINEMENT format). */
export function reservationFor(h: HoldingRecord, who: WireIdentity): types.ReservationInfo {
  const labels: types.Label[] = [
    { key: h.kind === 'volume' ? LABEL_VOLUME : LABEL_RESERVATION, value: h.id },
    { key: LABEL_FRAMEWORK, value: who.framework },
    { key: LABEL_TENANT, value: h.tenant },
  ];
  return {
    type: 'DYNAMIC',
    role: h.role,
    ...(who.principal === undefined ? {} : { principal: who.principal }),
    labels: { labels },
  };
}

/** A scalar resource reserved for a holding, allocated to its role. */
export function reservedScalar(name: 'cpus' | 'mem' | 'disk', value: number, h: HoldingRecord, who: WireIdentity): types.Resource {
  return {
    name,
    type: 'SCALAR',
    scalar: { value },
    allocation_info: { role: h.role },
    reservations: [reservationFor(h, who)],
  };
}

/** The persistent-volume resource of a volume (what CREATE takes and offers show). */
export function volumeResource(v: VolumeRecord, who: WireIdentity): types.Resource {
  return {
    ...reservedScalar('disk', v.sizeMiB, v, who),
    disk: {
      persistence: { id: v.id, ...(who.principal === undefined ? {} : { principal: who.principal }) },
      volume: { container_path: v.containerPath, mode: v.mode },
    },
  };
}

/** What a resource in an offer says about Locus ownership. */
export interface LocusResourceTag {
  readonly kind: HoldingRecord['kind'];
  readonly holdingId: string;
  /** The `locus.framework` label, when present. */
  readonly framework?: string;
  readonly tenant?: string;
  /** The persistence id when the resource is a persistent volume. */
  readonly persistenceId?: string;
}

/** The labels of the innermost (last) reservation of a resource. */
function lastReservationLabels(r: types.Resource): readonly types.Label[] {
  const list = r.reservations;
  const last = list && list.length > 0 ? list[list.length - 1] : r.reservation;
  return last?.labels?.labels ?? [];
}

/** Whether a resource is reserved at all (refined list, legacy role, or legacy reservation). */
export function isReserved(r: types.Resource): boolean {
  if (r.reservations && r.reservations.length > 0) return true;
  if (r.reservation !== undefined) return true;
  return r.role !== undefined && r.role !== '*';
}

/** Recognise a Locus-labelled resource; undefined for anything else. */
export function tagOf(r: types.Resource): LocusResourceTag | undefined {
  const labels = lastReservationLabels(r);
  if (labels.length === 0) return undefined;
  const get = (k: string): string | undefined => labels.find((l) => l.key === k)?.value;
  const vol = get(LABEL_VOLUME);
  const res = get(LABEL_RESERVATION);
  const holdingId = vol ?? res;
  if (holdingId === undefined || holdingId === '') return undefined;
  const framework = get(LABEL_FRAMEWORK);
  const tenant = get(LABEL_TENANT);
  const persistenceId = r.disk?.persistence?.id;
  return {
    kind: vol !== undefined ? 'volume' : 'reservation',
    holdingId,
    ...(framework === undefined ? {} : { framework }),
    ...(tenant === undefined ? {} : { tenant }),
    ...(persistenceId === undefined ? {} : { persistenceId }),
  };
}

/** The role a resource is allocated to in an offer. */
export function allocationRole(r: types.Resource, offer: types.Offer): string | undefined {
  return r.allocation_info?.role ?? offer.allocation_info?.role;
}

/** A resource as UNRESERVE takes it: the same reserved resource without its volume. */
export function withoutVolume(r: types.Resource): types.Resource {
  const { disk, ...rest } = r;
  if (disk?.source !== undefined) return { ...rest, disk: { source: disk.source } };
  return rest;
}

/**
 * Operation ids encode what they are for: `locus.<op>.<holdingId>.<attempt>`,
 * so an UPDATE_OPERATION_STATUS finds its holding without an index and a
 * status for an older attempt is recognisably stale.
 */
export function operationId(op: OpKind, holdingId: string, attempt: number): string {
  return `locus.${op}.${holdingId}.${attempt}`;
}

/** The parts of a Locus operation id, or undefined for ids Locus did not make. */
export function parseOperationId(id: string): { op: OpKind; holdingId: string; attempt: number } | undefined {
  const m = /^locus\.(reserve|create|destroy|unreserve)\.(.+)\.(\d+)$/.exec(id);
  if (!m || m[1] === undefined || m[2] === undefined || m[3] === undefined) return undefined;
  return { op: m[1] as OpKind, holdingId: m[2], attempt: Number(m[3]) };
}
