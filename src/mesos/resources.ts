/**
 * Helpers over Mesos wire resources: sums into the core ResourceVector,
 * reservations (refined `reservations` stack and the legacy `role` field),
 * persistent volumes, port ranges, and builders for RESERVE / CREATE.
 */
import { ZERO, type ResourceVector } from '../core/resources.js';
import type { Label, Range, ReservationInfo, Resource } from './types.js';

/** The role of the reservation a resource is under, or undefined when unreserved. */
export function reservationRole(r: Resource): string | undefined {
  // With RESERVATION_REFINEMENT the last entry of the stack is the current reservation.
  const stack = r.reservations;
  if (stack && stack.length > 0) return stack[stack.length - 1]?.role;
  if (r.role !== undefined && r.role !== '*') return r.role;
  return undefined;
}

/** The reservation a resource is under (last of the stack), if any. */
export function currentReservation(r: Resource): ReservationInfo | undefined {
  const stack = r.reservations;
  if (stack && stack.length > 0) return stack[stack.length - 1];
  if (r.reservation) return { ...r.reservation, ...(r.role !== undefined ? { role: r.role } : {}) };
  if (r.role !== undefined && r.role !== '*') return { type: 'STATIC', role: r.role };
  return undefined;
}

/** Whether a resource is reserved (to any role). */
export function isReserved(r: Resource): boolean {
  return reservationRole(r) !== undefined;
}

/** Whether a resource is reserved to `role` (a refinement to a sub-role `role/x` counts too). */
export function isReservedTo(r: Resource, role: string): boolean {
  const rr = reservationRole(r);
  return rr !== undefined && (rr === role || rr.startsWith(`${role}/`));
}

/** Whether a resource was reserved dynamically (by a framework or operator, hence can be unreserved). */
export function isDynamicallyReserved(r: Resource): boolean {
  const res = currentReservation(r);
  return res !== undefined && (res.type === 'DYNAMIC' || (res.type === undefined && r.reservation !== undefined));
}

/** The labels of the current reservation as a plain record. */
export function reservationLabels(r: Resource): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of currentReservation(r)?.labels?.labels ?? []) out[l.key] = l.value ?? '';
  return out;
}

/** The role the offer allocated this resource to (multi-role frameworks). */
export function allocationRole(r: Resource): string | undefined {
  return r.allocation_info?.role;
}

/** Whether the resource is a persistent volume. */
export function isPersistentVolume(r: Resource): boolean {
  return r.disk?.persistence !== undefined;
}

/** The persistent volume id, if the resource is one. */
export function volumeId(r: Resource): string | undefined {
  return r.disk?.persistence?.id;
}

/** The persistent volumes among resources, keyed by their id. */
export function persistentVolumes(resources: readonly Resource[]): Map<string, Resource> {
  const out = new Map<string, Resource>();
  for (const r of resources) {
    const id = volumeId(r);
    if (id !== undefined) out.set(id, r);
  }
  return out;
}

/** The scalar value of a resource (0 when it is not a scalar). */
export function scalarValue(r: Resource): number {
  return r.type === 'SCALAR' ? r.scalar?.value ?? 0 : 0;
}

/** Sum cpus, mem and disk of the resources that pass `filter` into a ResourceVector. */
export function toVector(resources: readonly Resource[], filter: (r: Resource) => boolean = () => true): ResourceVector {
  let cpus = ZERO.cpus;
  let mem = ZERO.mem;
  let disk = ZERO.disk;
  for (const r of resources) {
    if (r.type !== 'SCALAR' || !filter(r)) continue;
    const v = scalarValue(r);
    if (r.name === 'cpus') cpus += v;
    else if (r.name === 'mem') mem += v;
    else if (r.name === 'disk') disk += v;
  }
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return { cpus: round(cpus), mem: round(mem), disk: round(disk) };
}

/**
 * What a task can use freely: unreserved resources plus those reserved to
 * `role`, excluding persistent volumes (which are claimed by id, not by size).
 */
export function usableVector(resources: readonly Resource[], role: string): ResourceVector {
  return toVector(resources, (r) => !isPersistentVolume(r) && (!isReserved(r) || isReservedTo(r, role)));
}

/** Resources reserved to `role`, optionally only those whose reservation carries `labels`. */
export function reservedTo(resources: readonly Resource[], role: string, labels?: Readonly<Record<string, string>>): Resource[] {
  return resources.filter((r) => {
    if (!isReservedTo(r, role)) return false;
    if (!labels) return true;
    const have = reservationLabels(r);
    return Object.entries(labels).every(([k, v]) => have[k] === v);
  });
}

/** Unreserved resources. */
export function unreserved(resources: readonly Resource[]): Resource[] {
  return resources.filter((r) => !isReserved(r));
}

/** All port ranges offered (merged and sorted). */
export function portRanges(resources: readonly Resource[]): Range[] {
  const ranges = resources.filter((r) => r.name === 'ports' && r.type === 'RANGES').flatMap((r) => r.ranges?.range ?? []);
  return mergeRanges(ranges);
}

/** Merge overlapping or adjacent ranges; sorted by begin. */
export function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a.begin - b.begin);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.begin <= last.end + 1) out[out.length - 1] = { begin: last.begin, end: Math.max(last.end, r.end) };
    else out.push({ begin: r.begin, end: r.end });
  }
  return out;
}

/** How many ports the ranges hold. */
export function countPorts(ranges: readonly Range[]): number {
  return ranges.reduce((n, r) => n + (r.end - r.begin + 1), 0);
}

/** The first `n` ports from `ranges` as single-port ranges, or undefined if there are not enough. */
export function takePorts(ranges: readonly Range[], n: number): number[] | undefined {
  const out: number[] = [];
  for (const r of mergeRanges(ranges)) {
    for (let p = r.begin; p <= r.end && out.length < n; p++) out.push(p);
    if (out.length >= n) break;
  }
  return out.length >= n ? out : undefined;
}

/** Format ranges as `31000-32000,33000`. */
export function formatRanges(ranges: readonly Range[]): string {
  return ranges.map((r) => (r.begin === r.end ? String(r.begin) : `${r.begin}-${r.end}`)).join(',');
}

/** A scalar resource (unreserved unless refined with `reserve`). */
export function scalar(name: 'cpus' | 'mem' | 'disk' | string, value: number, role?: string): Resource {
  return {
    name, type: 'SCALAR', scalar: { value: Math.round(value * 1000) / 1000 },
    ...(role === undefined ? {} : { allocation_info: { role } }),
  };
}

/** A ports resource holding the given ports (each as its own range, merged). */
export function portsResource(ports: readonly number[], role?: string): Resource {
  return {
    name: 'ports', type: 'RANGES', ranges: { range: mergeRanges(ports.map((p) => ({ begin: p, end: p }))) },
    ...(role === undefined ? {} : { allocation_info: { role } }),
  };
}

/** Who reserves and how the reservation is labelled (so a framework recognises its own after a restart). */
export interface ReservationSpec {
  readonly role: string;
  readonly principal?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/** Push a DYNAMIC reservation onto a resource's stack (RESERVATION_REFINEMENT format), for RESERVE. */
export function withReservation(r: Resource, spec: ReservationSpec): Resource {
  const labels: Label[] | undefined = spec.labels
    ? Object.keys(spec.labels).sort().map((key) => ({ key, value: spec.labels?.[key] ?? '' }))
    : undefined;
  const reservation: ReservationInfo = {
    type: 'DYNAMIC',
    role: spec.role,
    ...(spec.principal === undefined ? {} : { principal: spec.principal }),
    ...(labels ? { labels: { labels } } : {}),
  };
  return { ...r, reservations: [...(r.reservations ?? []), reservation] };
}

/** A persistent volume on reserved disk, for CREATE (and, as offered back, for LAUNCH / DESTROY). */
export function withVolume(reservedDisk: Resource, volume: { id: string; containerPath: string; principal?: string; mode?: 'RW' | 'RO' }): Resource {
  return {
    ...reservedDisk,
    disk: {
      ...(reservedDisk.disk ?? {}),
      persistence: { id: volume.id, ...(volume.principal === undefined ? {} : { principal: volume.principal }) },
      volume: { container_path: volume.containerPath, mode: volume.mode ?? 'RW' },
    },
  };
}

/** A resource without its offer-only fields, e.g. to UNRESERVE or DESTROY exactly what was offered. */
export function stripAllocation(r: Resource): Resource {
  const { allocation_info: _drop, ...rest } = r;
  return rest;
}
