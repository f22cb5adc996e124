/**
 * Reading offers the way placement needs them, and carving the resources of
 * a launch out of an offer. Pure: no I/O.
 */
import type { Attribute, Offer, Resource } from '../mesos/types.js';
import type { ResourceVector } from '../core/resources.js';

/** What placement needs to know about one offer. */
export interface OfferSummary {
  readonly offerId: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly rack: string | undefined;
  readonly attributes: Readonly<Record<string, string>>;
  /** Scalars usable for launches (unreserved + reserved to the role), persistent volumes excluded. */
  readonly free: ResourceVector;
  /** Persistent volume ids offered (the volumes themselves, not free disk). */
  readonly volumeIds: readonly string[];
  /** Agent base URL (for logs via /files/read), when the master tells it. */
  readonly agentUrl: string | undefined;
  /** Start of a maintenance window (ms since epoch), when the agent is scheduled for one. */
  readonly unavailableAt: number | undefined;
}

const SCALARS = ['cpus', 'mem', 'disk'] as const;
type ScalarName = (typeof SCALARS)[number];

function roleOf(r: Resource): string {
  return r.allocation_info?.role ?? r.role ?? '*';
}

/** Text value of an agent attribute (text, scalar or set), for constraint matching. */
export function attributeValue(a: Attribute): string {
  if (a.text) return a.text.value;
  if (a.scalar) return String(a.scalar.value);
  if (a.set) return a.set.item.join(',');
  if (a.ranges) return a.ranges.range.map((r) => `[${r.begin}-${r.end}]`).join(',');
  return '';
}

/** Summarise an offer for placement. */
export function summarizeOffer(offer: Offer, role: string): OfferSummary {
  const free = { cpus: 0, mem: 0, disk: 0 };
  const volumeIds: string[] = [];
  for (const r of offer.resources) {
    if (roleOf(r) !== role && roleOf(r) !== '*') continue;
    if (r.disk?.persistence) {
      volumeIds.push(r.disk.persistence.id);
      continue;
    }
    if ((SCALARS as readonly string[]).includes(r.name) && r.scalar) free[r.name as ScalarName] += r.scalar.value;
  }
  const attributes: Record<string, string> = {};
  for (const a of offer.attributes ?? []) attributes[a.name] = attributeValue(a);
  const url = offer.url;
  const agentUrl = url ? `${url.scheme}://${url.address.hostname ?? url.address.ip ?? offer.hostname}:${url.address.port}` : undefined;
  const start = offer.unavailability?.start.nanoseconds;
  return {
    offerId: offer.id.value,
    agentId: offer.agent_id.value,
    hostname: offer.hostname,
    rack: attributes['rack'],
    attributes,
    free: { cpus: round(free.cpus), mem: round(free.mem), disk: round(free.disk) },
    volumeIds,
    agentUrl,
    unavailableAt: start === undefined ? undefined : Math.floor(start / 1e6),
  };
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * Take `want` out of an offer's resources for a launch. Resources reserved to
 * the role are used before unreserved ones (reservations exist to be used),
 * allocation_info and reservations are kept as offered (the master requires
 * them on MULTI_ROLE frameworks). Returns undefined when the offer is short.
 */
export function takeResources(resources: readonly Resource[], want: ResourceVector, role: string, volumeId?: string): Resource[] | undefined {
  const out: Resource[] = [];
  const need: Record<ScalarName, number> = { cpus: want.cpus, mem: want.mem, disk: want.disk };
  const usable = resources.filter((r) => (roleOf(r) === role || roleOf(r) === '*') && !r.disk?.persistence);
  const ordered = [...usable.filter((r) => (r.reservations?.length ?? 0) > 0), ...usable.filter((r) => (r.reservations?.length ?? 0) === 0)];
  for (const r of ordered) {
    if (!(SCALARS as readonly string[]).includes(r.name) || !r.scalar) continue;
    const name = r.name as ScalarName;
    const take = round(Math.min(need[name], r.scalar.value));
    if (take <= 0) continue;
    out.push({ ...r, scalar: { value: take } });
    need[name] = round(need[name] - take);
  }
  if (SCALARS.some((n) => need[n] > 1e-9)) return undefined;
  if (volumeId !== undefined) {
    const vol = resources.find((r) => r.disk?.persistence?.id === volumeId);
    if (!vol) return undefined;
    out.push(vol);
  }
  return out;
}

/** The role an offer is allocated to (MULTI_ROLE offers carry exactly one). */
export function offerRole(offer: Offer, fallback: string): string {
  return offer.allocation_info?.role ?? offer.resources.find((r) => r.allocation_info?.role)?.allocation_info?.role ?? fallback;
}

/** Remove taken resources from an offer's remaining list (by name, role and reservation). */
export function subtractTaken(remaining: readonly Resource[], taken: readonly Resource[]): Resource[] {
  const out = remaining.map((r) => ({ ...r }));
  for (const t of taken) {
    if (t.disk?.persistence) {
      const i = out.findIndex((r) => r.disk?.persistence?.id === t.disk?.persistence?.id);
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    const r = out.find((x) => x.name === t.name && x.scalar && sameReservation(x, t) && !x.disk?.persistence);
    if (r?.scalar && t.scalar) (r as { scalar: { value: number } }).scalar = { value: Math.round((r.scalar.value - t.scalar.value) * 1000) / 1000 };
  }
  return out.filter((r) => !r.scalar || r.scalar.value > 0);
}

function sameReservation(a: Resource, b: Resource): boolean {
  return JSON.stringify(a.reservations ?? []) === JSON.stringify(b.reservations ?? []) && (a.allocation_info?.role ?? '') === (b.allocation_info?.role ?? '');
}

