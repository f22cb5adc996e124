/**
 * Mesos resource arithmetic for the local cluster: the identity rules of
 * `src/common/resources.cpp` (name, type, reservations, disk info, shared,
 * allocation role), scalars kept at three decimals, ranges as sorted
 * disjoint intervals, and the conversions RESERVE / UNRESERVE / CREATE /
 * DESTROY apply. Resource lists are immutable arrays of wire resources.
 */
import type { Range, ReservationInfo, Resource } from '../mesos/types.js';

/** An immutable list of resources, merged by identity. */
export type Resources = readonly Resource[];

const round = (x: number): number => Math.round(x * 1000) / 1000;

/** The reservation role of a resource ('*' when unreserved). */
export function reservationRole(r: Resource): string {
  const last = r.reservations?.[r.reservations.length - 1];
  return last?.role ?? '*';
}

/** Whether the resource carries any reservation. */
export function isReserved(r: Resource): boolean {
  return (r.reservations?.length ?? 0) > 0;
}

/** Whether the last reservation is dynamic. */
export function isDynamicallyReserved(r: Resource): boolean {
  const last = r.reservations?.[r.reservations.length - 1];
  return last !== undefined && (last.type ?? 'DYNAMIC') === 'DYNAMIC';
}

/** Whether the resource is a persistent volume. */
export function isPersistentVolume(r: Resource): boolean {
  return r.disk?.persistence !== undefined;
}

/**
 * Bring a resource into the post-refinement format: a legacy `role` /
 * `reservation` pair becomes the `reservations` stack, as the master's
 * `upgradeResources` does.
 */
export function upgrade(r: Resource): Resource {
  const { role, reservation, ...rest } = r;
  if (r.reservations && r.reservations.length > 0) return rest;
  if (role === undefined || role === '*') return rest;
  const info: ReservationInfo = {
    type: reservation ? 'DYNAMIC' : 'STATIC',
    role,
    ...(reservation?.principal !== undefined ? { principal: reservation.principal } : {}),
    ...(reservation?.labels !== undefined ? { labels: reservation.labels } : {}),
  };
  return { ...rest, reservations: [info] };
}

/**
 * Back to the pre-refinement format for frameworks without
 * RESERVATION_REFINEMENT (only possible with at most one reservation).
 */
export function downgrade(r: Resource): Resource {
  const { reservations, ...rest } = r;
  const only = reservations?.[0];
  if (!only || (reservations?.length ?? 0) > 1) return { ...rest, role: '*' };
  const reservation = only.type === 'DYNAMIC'
    ? { ...(only.principal !== undefined ? { principal: only.principal } : {}), ...(only.labels !== undefined ? { labels: only.labels } : {}) }
    : undefined;
  return { ...rest, role: only.role ?? '*', ...(reservation ? { reservation } : {}) };
}

// The identity of a resource: everything but its quantity. Two resources
// with equal keys merge; JSON with sorted keys makes the key canonical.
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function identity(r: Resource): string {
  const { scalar: _s, ranges: _r, set: _set, ...rest } = upgrade(r);
  void _s; void _r; void _set;
  return canonical(rest);
}

/** Ranges as a sorted list of disjoint, non-adjacent intervals. */
export function normalizeRanges(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].filter((x) => x.end >= x.begin).sort((a, b) => a.begin - b.begin);
  const out: Range[] = [];
  for (const x of sorted) {
    const last = out[out.length - 1];
    if (last && x.begin <= last.end + 1) out[out.length - 1] = { begin: last.begin, end: Math.max(last.end, x.end) };
    else out.push({ begin: x.begin, end: x.end });
  }
  return out;
}

function rangesContain(have: readonly Range[], need: readonly Range[]): boolean {
  return need.every((n) => have.some((h) => h.begin <= n.begin && n.end <= h.end));
}

function rangesSubtract(have: readonly Range[], take: readonly Range[]): Range[] {
  let out = normalizeRanges(have);
  for (const t of take) {
    const next: Range[] = [];
    for (const h of out) {
      if (t.end < h.begin || t.begin > h.end) { next.push(h); continue; }
      if (h.begin < t.begin) next.push({ begin: h.begin, end: t.begin - 1 });
      if (t.end < h.end) next.push({ begin: t.end + 1, end: h.end });
    }
    out = next;
  }
  return out;
}

function isEmpty(r: Resource): boolean {
  if (r.type === 'SCALAR') return (r.scalar?.value ?? 0) <= 0.0005;
  if (r.type === 'RANGES') return (r.ranges?.range.length ?? 0) === 0;
  if (r.type === 'SET') return (r.set?.item.length ?? 0) === 0;
  return true;
}

function withQuantity(r: Resource, q: Pick<Resource, 'scalar' | 'ranges' | 'set'>): Resource {
  const { scalar: _a, ranges: _b, set: _c, ...rest } = r;
  void _a; void _b; void _c;
  return { ...rest, ...q };
}

/** a + one resource, merging with an entry of equal identity. */
function addOne(list: Resource[], r0: Resource): void {
  const r = upgrade(r0);
  if (isEmpty(r)) return;
  const key = identity(r);
  const i = list.findIndex((x) => identity(x) === key);
  const cur = i >= 0 ? list[i] : undefined;
  // Persistent volumes are atomic (Mesos: not addable), except that the
  // same volume cannot appear twice; adding it again is a no-op merge error we ignore.
  if (!cur) { list.push(r); return; }
  if (isPersistentVolume(r)) return;
  if (r.type === 'SCALAR') list[i] = withQuantity(cur, { scalar: { value: round((cur.scalar?.value ?? 0) + (r.scalar?.value ?? 0)) } });
  else if (r.type === 'RANGES') list[i] = withQuantity(cur, { ranges: { range: normalizeRanges([...(cur.ranges?.range ?? []), ...(r.ranges?.range ?? [])]) } });
  else if (r.type === 'SET') list[i] = withQuantity(cur, { set: { item: [...new Set([...(cur.set?.item ?? []), ...(r.set?.item ?? [])])] } });
}

/** The sum of resource lists, merged by identity. */
export function add(...lists: Resources[]): Resource[] {
  const out: Resource[] = [];
  for (const l of lists) for (const r of l) addOne(out, r);
  return out;
}

function containsOne(have: Resources, r0: Resource): boolean {
  const r = upgrade(r0);
  if (isEmpty(r)) return true;
  const cur = have.find((x) => identity(x) === identity(r));
  if (!cur) return false;
  if (isPersistentVolume(r)) return Math.abs((cur.scalar?.value ?? 0) - (r.scalar?.value ?? 0)) < 0.0005;
  if (r.type === 'SCALAR') return (r.scalar?.value ?? 0) <= (cur.scalar?.value ?? 0) + 0.0005;
  if (r.type === 'RANGES') return rangesContain(cur.ranges?.range ?? [], r.ranges?.range ?? []);
  if (r.type === 'SET') return (r.set?.item ?? []).every((i) => cur.set?.item.includes(i));
  return false;
}

/** Whether `have` contains all of `need`. */
export function contains(have: Resources, need: Resources): boolean {
  const merged = add(have);
  return add(need).every((r) => containsOne(merged, r));
}

/** have - take; undefined when `have` does not contain `take`. */
export function subtract(have: Resources, take: Resources): Resource[] | undefined {
  if (!contains(have, take)) return undefined;
  const out = add(have);
  for (const r0 of add(take)) {
    const r = upgrade(r0);
    const i = out.findIndex((x) => identity(x) === identity(r));
    const cur = out[i];
    if (!cur) continue;
    let next: Resource | undefined;
    if (isPersistentVolume(r)) next = undefined;
    else if (r.type === 'SCALAR') next = withQuantity(cur, { scalar: { value: round((cur.scalar?.value ?? 0) - (r.scalar?.value ?? 0)) } });
    else if (r.type === 'RANGES') next = withQuantity(cur, { ranges: { range: rangesSubtract(cur.ranges?.range ?? [], r.ranges?.range ?? []) } });
    else if (r.type === 'SET') next = withQuantity(cur, { set: { item: (cur.set?.item ?? []).filter((x) => !r.set?.item.includes(x)) } });
    if (next === undefined || isEmpty(next)) out.splice(i, 1);
    else out[i] = next;
  }
  return out;
}

/** The resources with allocation info removed (what an agent holds). */
export function unallocate(list: Resources): Resource[] {
  return add(list.map((r) => { const { allocation_info: _a, ...rest } = r; void _a; return rest; }));
}

/** The resources allocated to `role`. */
export function allocate(list: Resources, role: string): Resource[] {
  return list.map((r) => ({ ...upgrade(r), allocation_info: { role } }));
}

/** Fill in allocation info where a framework left it out (the master's injectAllocationInfo). */
export function injectAllocation(list: Resources, role: string | undefined): Resource[] {
  if (role === undefined) return list.map(upgrade);
  return list.map((r) => (r.allocation_info?.role !== undefined ? upgrade(r) : { ...upgrade(r), allocation_info: { role } }));
}

/** Resources without reservations (unreserved, no disk info). */
export function unreserved(list: Resources): Resource[] {
  return list.filter((r) => !isReserved(r));
}

/** Resources reserved to exactly `role`. */
export function reservedFor(list: Resources, role: string): Resource[] {
  return list.filter((r) => isReserved(r) && reservationRole(r) === role);
}

/** One reservation popped off (UNRESERVE's result); disk info stays. */
export function popReservation(r: Resource): Resource {
  const u = upgrade(r);
  const reservations = (u.reservations ?? []).slice(0, -1);
  const { reservations: _x, ...rest } = u;
  void _x;
  return reservations.length > 0 ? { ...rest, reservations } : rest;
}

/** A volume without its persistence (DESTROY's result: plain reserved disk). */
export function stripVolume(r: Resource): Resource {
  const { disk: _d, ...rest } = upgrade(r);
  void _d;
  return rest;
}

/** Sum of the scalar named `name`. */
export function scalar(list: Resources, name: string): number {
  return round(list.filter((r) => r.name === name && r.type === 'SCALAR').reduce((s, r) => s + (r.scalar?.value ?? 0), 0));
}

/** Mesos's text form of ranges, `[31000-32000, 33000-33001]`. */
export function formatRanges(ranges: readonly Range[]): string {
  return `[${normalizeRanges(ranges).map((x) => `${x.begin}-${x.end}`).join(', ')}]`;
}

/** The summary object `/state` prints for resources: scalars summed, ranges as text. */
export function summary(list: Resources): Record<string, number | string> {
  const out: Record<string, number | string> = { disk: 0, mem: 0, gpus: 0, cpus: 0 };
  const ranges = new Map<string, Range[]>();
  for (const r of list) {
    if (r.type === 'SCALAR') out[r.name] = round(Number(out[r.name] ?? 0) + (r.scalar?.value ?? 0));
    else if (r.type === 'RANGES') ranges.set(r.name, [...(ranges.get(r.name) ?? []), ...(r.ranges?.range ?? [])]);
  }
  for (const [name, rs] of ranges) out[name] = formatRanges(rs);
  return out;
}

/** Mesos's text form of one resource, e.g. `cpus(allocated: r)(reservations: [(DYNAMIC,r,p)]):0.1`. */
export function formatResource(r0: Resource): string {
  const r = upgrade(r0);
  let s = r.name;
  if (r.allocation_info?.role !== undefined) s += `(allocated: ${r.allocation_info.role})`;
  if (r.reservations && r.reservations.length > 0) {
    const parts = r.reservations.map((x) => {
      const labels = x.labels ? `,{${x.labels.labels.map((l) => `${l.key}: ${l.value ?? ''}`).join(', ')}}` : '';
      return `(${x.type ?? 'DYNAMIC'},${x.role ?? '*'}${x.principal !== undefined ? `,${x.principal}` : ''}${labels})`;
    });
    s += `(reservations: [${parts.join(',')}])`;
  }
  if (r.disk?.persistence) s += `[${r.disk.persistence.id}:${r.disk.volume?.container_path ?? ''}]`;
  if (r.shared) s += '<SHARED>';
  s += ':';
  if (r.type === 'SCALAR') s += String(r.scalar?.value ?? 0);
  else if (r.type === 'RANGES') s += formatRanges(r.ranges?.range ?? []);
  else if (r.type === 'SET') s += `{${(r.set?.item ?? []).join(', ')}}`;
  return s;
}

/** Mesos's text form of a resource list (`{}` when empty). */
export function formatResources(list: Resources): string {
  return list.length === 0 ? '{}' : list.map(formatResource).join('; ');
}

/**
 * Parse the agent `--resources` syntax: `cpus:2;mem:4096;ports:[31000-32000];
 * disks:{a,b}`, each name optionally followed by `(role)` for a static
 * reservation. Throws Error naming the bad entry.
 */
export function parseResourceString(text: string): Resource[] {
  const out: Resource[] = [];
  for (const part of text.split(';').map((p) => p.trim()).filter((p) => p !== '')) {
    const m = /^([a-zA-Z_][\w.-]*)(?:\(([^)]*)\))?\s*:\s*(.+)$/.exec(part);
    if (!m) throw new Error(`bad resource '${part}' (expected name:value)`);
    const name = m[1] ?? '';
    const role = m[2];
    const value = (m[3] ?? '').trim();
    const reservations: ReservationInfo[] | undefined = role !== undefined && role !== '*' ? [{ type: 'STATIC', role }] : undefined;
    const base = { name, ...(reservations ? { reservations } : {}) };
    if (value.startsWith('[')) {
      const inner = value.replace(/^\[|\]$/g, '');
      const range = inner.split(',').map((x) => x.trim()).filter((x) => x !== '').map((x) => {
        const rm = /^(\d+)\s*-\s*(\d+)$/.exec(x);
        if (!rm) throw new Error(`bad range '${x}' in '${part}'`);
        return { begin: Number(rm[1]), end: Number(rm[2]) };
      });
      out.push({ ...base, type: 'RANGES', ranges: { range: normalizeRanges(range) } });
    } else if (value.startsWith('{')) {
      const item = value.replace(/^\{|\}$/g, '').split(',').map((x) => x.trim()).filter((x) => x !== '');
      out.push({ ...base, type: 'SET', set: { item } });
    } else {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`bad scalar '${value}' in '${part}'`);
      out.push({ ...base, type: 'SCALAR', scalar: { value: round(n) } });
    }
  }
  return add(out);
}

/** The role a container's resources are allocated to (its MESOS_ALLOCATION_ROLE); `*` when none says. */
export function allocationRole(resources: readonly Resource[]): string {
  for (const r of resources) if (r.allocation_info?.role !== undefined) return r.allocation_info.role;
  return '*';
}
