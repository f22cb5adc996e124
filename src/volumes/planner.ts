/**
 * The volume planner: a pure function from (holdings, offers, context) to the
 * Mesos operations to send and the record changes to write first. The
 * scheduler's coordinator calls it on every offer batch, writes the changes
 * (write-ahead: a crash after the write and before the ACCEPT is repaired by
 * the offer-based confirmation below), then sends one ACCEPT per offer with
 * these operations merged with its own LAUNCHes.
 *
 * Order of work per holding (cheapest evidence first):
 *   1. what the offers show for the holding (its labelled resources) decides
 *      confirmations and adoptions — offers are the ground truth, operation
 *      feedback only speeds things up;
 *   2. then the next operation, if one is due (nothing outstanding, or the
 *      outstanding one timed out);
 *   3. then new placements, booking offer resources in an overlay so one
 *      offer is never promised twice within a cycle.
 * Orphans (our label, no live record) are collected last, after a grace
 * period, and never while in use.
 */
import type * as types from '../mesos/types.js';
import { fits, subtract, type ResourceVector } from '../core/resources.js';
import { formatMiB } from '../core/units.js';
import { holdingNeeds, type Constraint, type HoldingRecord, type OpKind, type OperationRef, type VolumeRecord } from './model.js';
import { transition, type TransitionPatch, type VolumeState } from './states.js';
import {
  allocationRole, isReserved, operationId, reservationFor, reservedScalar, tagOf, volumeResource, withoutVolume,
  type LocusResourceTag, type WireIdentity,
} from './wire.js';

/** Where and since when an orphan (our label, no live record) was seen. */
export interface OrphanSighting {
  readonly key: string;
  readonly agentId: string;
  readonly holdingId: string;
  readonly firstSeen: number;
  readonly lastSeen: number;
}

/** Tunables of the planner (all in ms). */
export interface PlannerOptions {
  /** After this long without feedback, an operation's outcome is judged from offers alone. */
  readonly operationTimeoutMs: number;
  /** An orphan must be seen this long before it is destroyed / unreserved. */
  readonly orphanGraceMs: number;
  /** How long a `near` volume waits for an offer from its preferred host before taking any agent. */
  readonly nearWaitMs: number;
  /** RESERVE/CREATE attempts before a holding is FAILED. Teardown is never given up. */
  readonly maxAttempts: number;
}

/** Defaults suitable for production masters. */
export const DEFAULT_PLANNER_OPTIONS: PlannerOptions = {
  operationTimeoutMs: 60_000,
  orphanGraceMs: 10 * 60_000,
  nearWaitMs: 30_000,
  maxAttempts: 5,
};

/** Everything the planner needs besides holdings and offers. */
export interface PlannerContext extends PlannerOptions {
  readonly now: number;
  readonly who: WireIdentity;
  /** Orphans seen in earlier cycles (the previous plan's `orphans`). */
  readonly orphans: ReadonlyMap<string, OrphanSighting>;
  /** Holding ids in use by executors; never torn down. */
  readonly inUse?: ReadonlySet<string>;
}

/** A record change to write (compare-and-set on `before.version`) before sending operations. */
export interface HoldingChange {
  readonly before: HoldingRecord;
  readonly after: HoldingRecord;
}

/** The operations for one holding in one offer; dropped as a unit if its change could not be written. */
export interface OperationGroup {
  /** The holding id, or `orphan:<key>` for garbage collection. */
  readonly owner: string;
  readonly operations: readonly types.Operation[];
}

/** What to ACCEPT on one offer. */
export interface OfferOperations {
  readonly offerId: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly groups: readonly OperationGroup[];
  /** Unreserved resources these operations take out of the offer (for the coordinator's own booking). */
  readonly consumed: ResourceVector;
}

/** The planner's answer. */
export interface VolumePlan {
  readonly changes: readonly HoldingChange[];
  readonly offers: readonly OfferOperations[];
  /** Orphan sightings to hand to the next cycle. */
  readonly orphans: ReadonlyMap<string, OrphanSighting>;
  /** Orphans whose teardown is in this plan. */
  readonly collected: readonly OrphanSighting[];
}

/** Labelled resources of one holding in one offer. */
interface Sighting {
  readonly offer: types.Offer;
  readonly tag: LocusResourceTag;
  readonly resources: types.Resource[];
  volume: types.Resource | undefined;
}

const ZERO_V: ResourceVector = { cpus: 0, mem: 0, disk: 0 };

// --- offer indexing ---------------------------------------------------------

/** Unreserved cpus/mem/disk per role in one offer (root disk only: MOUNT/PATH disks carry `disk.source`). */
function freeByRole(offer: types.Offer): Map<string, ResourceVector> {
  const out = new Map<string, ResourceVector>();
  for (const r of offer.resources) {
    if (r.type !== 'SCALAR' || isReserved(r) || r.disk !== undefined || r.shared !== undefined) continue;
    if (r.name !== 'cpus' && r.name !== 'mem' && r.name !== 'disk') continue;
    const role = allocationRole(r, offer) ?? '*';
    const cur = out.get(role) ?? ZERO_V;
    const v = r.scalar?.value ?? 0;
    out.set(role, { ...cur, [r.name]: Math.round((cur[r.name] + v) * 1000) / 1000 });
  }
  return out;
}

function indexSightings(offers: readonly types.Offer[]): Map<string, Sighting[]> {
  const byHolding = new Map<string, Sighting[]>();
  for (const offer of offers) {
    const local = new Map<string, Sighting>();
    for (const r of offer.resources) {
      const tag = tagOf(r);
      if (!tag) continue;
      let s = local.get(tag.holdingId);
      if (!s) {
        s = { offer, tag, resources: [], volume: undefined };
        local.set(tag.holdingId, s);
      }
      s.resources.push(r);
      if (r.disk?.persistence?.id !== undefined) s.volume = r;
    }
    for (const [id, s] of local) byHolding.set(id, [...(byHolding.get(id) ?? []), s]);
  }
  return byHolding;
}

function attributeValue(offer: types.Offer, name: string): string | undefined {
  if (name === 'hostname') return offer.hostname;
  const a = offer.attributes?.find((x) => x.name === name);
  if (!a) return undefined;
  if (a.text) return a.text.value;
  if (a.scalar) return String(a.scalar.value);
  if (a.set) return a.set.item.join(',');
  return undefined;
}

/** Whether an offer's agent satisfies every constraint. */
export function satisfies(offer: types.Offer, constraints: readonly Constraint[]): boolean {
  return constraints.every((c) => {
    const v = attributeValue(offer, c.attribute);
    if (c.op === 'EQ') return v === c.value;
    if (c.op === 'NEQ') return v !== c.value;
    return v !== undefined && c.value.split(',').map((x) => x.trim()).includes(v);
  });
}

// --- the plan builder ---------------------------------------------------------

class PlanBuilder {
  readonly changes: HoldingChange[] = [];
  private readonly perOffer = new Map<string, { offer: types.Offer; groups: OperationGroup[]; consumed: ResourceVector }>();
  readonly free = new Map<string, Map<string, ResourceVector>>();

  constructor(offers: readonly types.Offer[]) {
    for (const o of offers) this.free.set(o.id.value, freeByRole(o));
  }

  change(before: HoldingRecord, after: HoldingRecord): void {
    this.changes.push({ before, after });
  }

  ops(offer: types.Offer, owner: string, operations: types.Operation[], consumed: ResourceVector = ZERO_V): void {
    const e = this.perOffer.get(offer.id.value) ?? { offer, groups: [], consumed: ZERO_V };
    e.groups.push({ owner, operations });
    e.consumed = { cpus: e.consumed.cpus + consumed.cpus, mem: e.consumed.mem + consumed.mem, disk: e.consumed.disk + consumed.disk };
    this.perOffer.set(offer.id.value, e);
  }

  book(offer: types.Offer, role: string, need: ResourceVector): void {
    const m = this.free.get(offer.id.value);
    const cur = m?.get(role);
    if (m && cur) m.set(role, subtract(cur, need));
  }

  freeIn(offer: types.Offer, role: string): ResourceVector {
    return this.free.get(offer.id.value)?.get(role) ?? ZERO_V;
  }

  offers(): OfferOperations[] {
    return [...this.perOffer.values()].map((e) => ({
      offerId: e.offer.id.value,
      agentId: e.offer.agent_id.value,
      hostname: e.offer.hostname,
      groups: e.groups,
      consumed: e.consumed,
    }));
  }
}

const ref = (id: string, now: number): OperationRef => ({ id, sentAt: now });

function timedOut(r: OperationRef | undefined, ctx: PlannerContext): boolean {
  return r === undefined || ctx.now - r.sentAt >= ctx.operationTimeoutMs;
}

/** RESERVE (+ CREATE for a volume) of a new holding on `offer`. */
function placementOps(h: HoldingRecord, attempt: number, ctx: PlannerContext): { ops: types.Operation[]; refs: Partial<Record<OpKind, OperationRef>> } {
  const reserveId = operationId('reserve', h.id, attempt);
  const need = holdingNeeds(h);
  const resources = (['disk', 'cpus', 'mem'] as const).filter((n) => need[n] > 0).map((n) => reservedScalar(n, need[n], h, ctx.who));
  const ops: types.Operation[] = [{ type: 'RESERVE', id: { value: reserveId }, reserve: { resources } }];
  const refs: Partial<Record<OpKind, OperationRef>> = { reserve: ref(reserveId, ctx.now) };
  if (h.kind === 'volume') {
    const createId = operationId('create', h.id, attempt);
    ops.push({ type: 'CREATE', id: { value: createId }, create: { volumes: [volumeResource(h, ctx.who)] } });
    refs.create = ref(createId, ctx.now);
  }
  return { ops, refs };
}

/** DESTROY (if a volume is offered) then UNRESERVE of everything labelled for the holding in that offer. */
function teardownOps(id: string, s: Sighting, attempt: number, now: number): { ops: types.Operation[]; refs: Partial<Record<OpKind, OperationRef>> } {
  const ops: types.Operation[] = [];
  const refs: Partial<Record<OpKind, OperationRef>> = {};
  if (s.volume) {
    const destroyId = operationId('destroy', id, attempt);
    ops.push({ type: 'DESTROY', id: { value: destroyId }, destroy: { volumes: [s.volume] } });
    refs.destroy = ref(destroyId, now);
  }
  const unreserveId = operationId('unreserve', id, attempt);
  ops.push({ type: 'UNRESERVE', id: { value: unreserveId }, unreserve: { resources: s.resources.map(withoutVolume) } });
  refs.unreserve = ref(unreserveId, now);
  return { ops, refs };
}

function chooseOffer(h: HoldingRecord, offers: readonly types.Offer[], b: PlanBuilder, ctx: PlannerContext): { offer?: types.Offer; reason?: string } {
  const need = holdingNeeds(h);
  const p = h.placement;
  const eligible = offers.filter(
    (o) => (p.agent === undefined || o.hostname === p.agent || o.agent_id.value === p.agent) && satisfies(o, p.constraints),
  );
  const fitting = eligible.filter((o) => fits(need, b.freeIn(o, h.role)));
  let pool = fitting;
  if (p.targetHost !== undefined) {
    const preferred = fitting.filter((o) => o.hostname === p.targetHost);
    if (preferred.length > 0) pool = preferred;
    else if (ctx.now - h.createdAt < ctx.nearWaitMs) return { reason: `waiting for an offer from ${p.targetHost} (near ${p.near ?? ''})` };
  }
  if (pool.length === 0) {
    const what = h.kind === 'volume' ? `${formatMiB(need.disk)} of disk` : `cpus ${need.cpus}, mem ${formatMiB(need.mem)}, disk ${formatMiB(need.disk)}`;
    const where = p.agent !== undefined ? ` on ${p.agent}` : '';
    return { reason: `waiting for an offer with ${what} unreserved for role ${h.role}${where}` };
  }
  // Most free disk first spreads volumes; ties by hostname keep the plan reproducible.
  const sorted = [...pool].sort(
    (a, z) => b.freeIn(z, h.role).disk - b.freeIn(a, h.role).disk || a.hostname.localeCompare(z.hostname) || a.id.value.localeCompare(z.id.value),
  );
  const offer = sorted[0];
  return offer === undefined ? { reason: 'no offer' } : { offer };
}

function patchIfReason(b: PlanBuilder, h: HoldingRecord, reason: string, now: number): void {
  if (h.reason !== reason) b.change(h, { ...h, reason, updatedAt: now });
}

/** Move `h` to `to` with `patch`, recording the change; returns the new record. */
function move<T extends HoldingRecord>(b: PlanBuilder, h: T, to: VolumeState, ctx: PlannerContext, patch: TransitionPatch<T> = {}): T {
  const next = transition(h, to, ctx.now, patch);
  b.change(h, next);
  return next;
}

/** Plan one holding given what the offers show for it. Returns the sighting it claimed, if any. */
function planHolding(h: HoldingRecord, sightings: readonly Sighting[], offers: readonly types.Offer[], agentsOffered: ReadonlySet<string>, b: PlanBuilder, ctx: PlannerContext): Sighting | undefined {
  const s = h.agentId !== undefined ? sightings.find((x) => x.offer.agent_id.value === h.agentId) : sightings[0];
  const agentOffered = h.agentId !== undefined && agentsOffered.has(h.agentId);
  const at = (x: Sighting): { agentId: string; hostname: string } => ({ agentId: x.offer.agent_id.value, hostname: x.offer.hostname });
  const isVolume = h.kind === 'volume';
  const tear = (x: Sighting, to: VolumeState): void => {
    const attempt = h.attempt + 1;
    const t = teardownOps(h.id, x, attempt, ctx.now);
    move(b, h, to, ctx, { attempt, ops: t.refs, ...at(x) });
    b.ops(x.offer, h.id, t.ops);
  };
  // A holding shown with its volume (or, for a reservation, its resources) is established.
  const established = s !== undefined && (!isVolume || s.volume !== undefined);

  switch (h.state) {
    case 'REQUESTED': {
      if (s) {
        // Adoption: a previous attempt's reservation exists (e.g. after a crash during RESERVING).
        if (h.deleteRequested) tear(s, isVolume ? (s.volume ? 'DESTROYING' : 'UNRESERVING') : 'UNRESERVING');
        else move(b, h, established ? 'READY' : 'CREATING', ctx, { ops: {}, ...at(s) });
        return s;
      }
      if (h.deleteRequested) {
        move(b, h, 'DELETED', ctx, { ops: {} });
        return undefined;
      }
      if (h.attempt >= ctx.maxAttempts) {
        move(b, h, 'FAILED', ctx, { reason: `gave up after ${h.attempt} attempts: ${h.reason ?? 'not confirmed'}` });
        return undefined;
      }
      if (offers.length === 0) return undefined;
      const choice = chooseOffer(h, offers, b, ctx);
      if (!choice.offer) {
        patchIfReason(b, h, choice.reason ?? 'waiting for offers', ctx.now);
        return undefined;
      }
      const attempt = h.attempt + 1;
      const p = placementOps(h, attempt, ctx);
      const need = holdingNeeds(h);
      move(b, h, 'RESERVING', ctx, { attempt, ops: p.refs, agentId: choice.offer.agent_id.value, hostname: choice.offer.hostname });
      b.book(choice.offer, h.role, need);
      b.ops(choice.offer, h.id, p.ops, need);
      return undefined;
    }
    case 'RESERVING':
    case 'CREATING': {
      if (s) {
        if (h.deleteRequested) {
          tear(s, s.volume ? 'DESTROYING' : 'UNRESERVING');
        } else if (established) {
          move(b, h, 'READY', ctx, { ops: {} });
        } else if (isVolume && (h.state === 'RESERVING' || timedOut(h.ops.create, ctx))) {
          // Reserved but no volume yet: (re)issue CREATE unless one is still in flight.
          if (h.state === 'RESERVING' && !timedOut(h.ops.create, ctx)) {
            move(b, h, 'CREATING', ctx, { ops: { ...(h.ops.create ? { create: h.ops.create } : {}) } });
          } else if (h.attempt >= ctx.maxAttempts) {
            move(b, h, 'FAILED', ctx, { reason: `CREATE not confirmed after ${h.attempt} attempts` });
          } else {
            const attempt = h.attempt + 1;
            const createId = operationId('create', h.id, attempt);
            move(b, h, 'CREATING', ctx, { attempt, ops: { create: ref(createId, ctx.now) } });
            b.ops(s.offer, h.id, [{ type: 'CREATE', id: { value: createId }, create: { volumes: [volumeResource(h as VolumeRecord, ctx.who)] } }]);
          }
        }
        return s;
      }
      const last = h.state === 'RESERVING' ? h.ops.reserve : (h.ops.create ?? h.ops.reserve);
      if (agentOffered && timedOut(last, ctx)) {
        // The agent offers again and shows nothing of ours: the RESERVE never happened.
        move(b, h, 'REQUESTED', ctx, { ops: {}, reason: 'reservation not confirmed by the agent\'s offers; retrying' });
      }
      return undefined;
    }
    case 'READY':
    case 'IN_USE': {
      if (s && h.state === 'READY' && h.deleteRequested && !ctx.inUse?.has(h.id)) tear(s, isVolume ? 'DESTROYING' : 'UNRESERVING');
      return s;
    }
    case 'DESTROYING':
    case 'UNRESERVING': {
      if (s) {
        const pending = s.volume ? h.ops.destroy : h.ops.unreserve;
        if (!s.volume && h.state === 'DESTROYING') {
          // DESTROY done (the volume is gone), the reservation remains.
          if (timedOut(h.ops.unreserve, ctx)) tear(s, 'UNRESERVING');
          else move(b, h, 'UNRESERVING', ctx, { ops: { ...(h.ops.unreserve ? { unreserve: h.ops.unreserve } : {}) } });
        } else if (timedOut(pending, ctx)) {
          tear(s, h.state);
        }
        return s;
      }
      const last = h.ops.unreserve ?? h.ops.destroy;
      if (agentOffered && last !== undefined && ctx.now > last.sentAt) {
        // The agent offers again without any of our labelled resources: torn down.
        move(b, h, 'DELETED', ctx, { ops: {} });
      }
      return undefined;
    }
    case 'UNAVAILABLE': {
      if (s) {
        const resume = h.resumeState;
        if (h.deleteRequested || resume === 'DESTROYING' || resume === 'UNRESERVING') tear(s, isVolume && s.volume ? 'DESTROYING' : 'UNRESERVING');
        else move(b, h, established ? 'READY' : isVolume ? 'CREATING' : 'READY', ctx, { ops: {} });
        return s;
      }
      if (agentOffered && h.resumeState === 'RESERVING' && timedOut(h.ops.reserve, ctx)) {
        move(b, h, 'REQUESTED', ctx, { ops: {}, reason: 'agent returned without the reservation; retrying' });
      }
      return undefined;
    }
    case 'FAILED': {
      if (s && h.deleteRequested) tear(s, isVolume && s.volume ? 'DESTROYING' : 'UNRESERVING');
      else if (!s && h.deleteRequested && (agentOffered || h.agentId === undefined)) move(b, h, 'DELETED', ctx, { ops: {} });
      return s;
    }
    case 'DELETED':
      return undefined;
  }
}

/**
 * Plan volume and reservation operations for one offer batch.
 * `holdings` is the current store snapshot (any states; DELETED ones are used
 * to recognise orphans). Pure: the same input gives the same plan.
 */
export function planVolumeOperations(holdings: readonly HoldingRecord[], offers: readonly types.Offer[], ctx: PlannerContext): VolumePlan {
  const b = new PlanBuilder(offers);
  const sightings = indexSightings(offers);
  const agentsOffered = new Set(offers.map((o) => o.agent_id.value));
  const claimed = new Set<Sighting>();

  // Oldest first, so earlier requests get the offers.
  const ordered = [...holdings].sort((a, z) => a.createdAt - z.createdAt || a.id.localeCompare(z.id));
  for (const h of ordered) {
    if (h.state === 'DELETED') continue;
    const got = planHolding(h, sightings.get(h.id) ?? [], offers, agentsOffered, b, ctx);
    if (got) claimed.add(got);
  }

  // Orphans: our framework's label, and no live record claims them here.
  const orphans = new Map<string, OrphanSighting>();
  const collected: OrphanSighting[] = [];
  const seenNow = new Set<string>();
  for (const [holdingId, list] of sightings) {
    for (const s of list) {
      if (claimed.has(s)) continue;
      if (s.tag.framework !== ctx.who.framework) continue;
      const agentId = s.offer.agent_id.value;
      const key = `${agentId}/${holdingId}`;
      seenNow.add(key);
      const prev = ctx.orphans.get(key);
      const sighting: OrphanSighting = { key, agentId, holdingId, firstSeen: prev?.firstSeen ?? ctx.now, lastSeen: ctx.now };
      const inUse = ctx.inUse?.has(holdingId) === true;
      if (!inUse && ctx.now - sighting.firstSeen >= ctx.orphanGraceMs) {
        const t = teardownOps(holdingId, s, 0, ctx.now);
        b.ops(s.offer, `orphan:${key}`, t.ops);
        collected.push(sighting);
      } else {
        orphans.set(key, sighting);
      }
    }
  }
  // Keep sightings of agents not offered this time, but forget stale ones.
  const keepFor = Math.max(4 * ctx.orphanGraceMs, 3_600_000);
  for (const [key, o] of ctx.orphans) {
    if (seenNow.has(key) || orphans.has(key)) continue;
    if (agentsOffered.has(o.agentId)) continue; // its agent offered without it: gone
    if (ctx.now - o.lastSeen < keepFor) orphans.set(key, o);
  }
  return { changes: b.changes, offers: b.offers(), orphans, collected };
}

/** Whether any holding needs offers (so the coordinator revives / does not suppress). */
export function hasPendingWork(holdings: readonly HoldingRecord[], orphans: ReadonlyMap<string, OrphanSighting> = new Map()): boolean {
  if (orphans.size > 0) return true;
  return holdings.some((h) => {
    switch (h.state) {
      case 'REQUESTED':
      case 'RESERVING':
      case 'CREATING':
      case 'DESTROYING':
      case 'UNRESERVING':
      case 'UNAVAILABLE':
        return true;
      case 'READY':
      case 'FAILED':
        return h.deleteRequested;
      case 'IN_USE':
      case 'DELETED':
        return false;
    }
  });
}

/** The outstanding operations to list in RECONCILE_OPERATIONS after a (re)subscription. */
export function operationsToReconcile(holdings: readonly HoldingRecord[]): { operation_id: types.OperationID; agent_id?: types.AgentID }[] {
  const out: { operation_id: types.OperationID; agent_id?: types.AgentID }[] = [];
  for (const h of holdings) {
    if (h.state === 'DELETED') continue;
    for (const r of Object.values(h.ops) as (OperationRef | undefined)[]) {
      if (r) out.push({ operation_id: { value: r.id }, ...(h.agentId === undefined ? {} : { agent_id: { value: h.agentId } }) });
    }
  }
  return out;
}

/** The reservation entry for a holding, re-exported for the coordinator's LAUNCH resources. */
export { reservationFor };
