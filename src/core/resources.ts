/**
 * The scalar resources Locus reasons about, with the arithmetic placement
 * needs. Mesos wire resources are converted to this at the edge.
 */

/** cpus (cores), mem and disk (MiB). */
export interface ResourceVector {
  readonly cpus: number;
  readonly mem: number;
  readonly disk: number;
}

/** The empty vector. */
export const ZERO: ResourceVector = Object.freeze({ cpus: 0, mem: 0, disk: 0 });

// Mesos keeps scalars at three decimal digits; doing the same avoids 0.30000000000000004 drift.
const round = (x: number): number => Math.round(x * 1000) / 1000;

/** a + b */
export function add(a: ResourceVector, b: ResourceVector): ResourceVector {
  return { cpus: round(a.cpus + b.cpus), mem: round(a.mem + b.mem), disk: round(a.disk + b.disk) };
}

/** a - b (may go negative; check with fits first). */
export function subtract(a: ResourceVector, b: ResourceVector): ResourceVector {
  return { cpus: round(a.cpus - b.cpus), mem: round(a.mem - b.mem), disk: round(a.disk - b.disk) };
}

/** k * a */
export function scale(a: ResourceVector, k: number): ResourceVector {
  return { cpus: round(a.cpus * k), mem: round(a.mem * k), disk: round(a.disk * k) };
}

/** Whether `need` fits into `have`. */
export function fits(need: ResourceVector, have: ResourceVector): boolean {
  return need.cpus <= have.cpus + 1e-9 && need.mem <= have.mem + 1e-9 && need.disk <= have.disk + 1e-9;
}

/** How many copies of `unit` fit into `have` (0 when unit is empty in every dimension). */
export function howMany(unit: ResourceVector, have: ResourceVector): number {
  let n = Infinity;
  if (unit.cpus > 0) n = Math.min(n, Math.floor((have.cpus + 1e-9) / unit.cpus));
  if (unit.mem > 0) n = Math.min(n, Math.floor((have.mem + 1e-9) / unit.mem));
  if (unit.disk > 0) n = Math.min(n, Math.floor((have.disk + 1e-9) / unit.disk));
  return n === Infinity ? 0 : Math.max(0, n);
}

/** The dominant share of `used` within `total` (DRF). */
export function dominantShare(used: ResourceVector, total: ResourceVector): number {
  const share = (u: number, t: number): number => (t > 0 ? u / t : 0);
  return Math.max(share(used.cpus, total.cpus), share(used.mem, total.mem), share(used.disk, total.disk));
}
