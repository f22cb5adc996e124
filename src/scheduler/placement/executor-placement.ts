/**
 * Level 1: which offers to accept, for which executors; which to decline;
 * which idle executors to release.
 *
 * Runs after task placement, on what is still pending, so executors are
 * only grown for work the existing slots cannot take. Order of preference,
 * each a short stage:
 *   1. volumes: a task pinned to a volume can only ever run where the volume
 *      is, so an offer carrying a demanded volume gets a dedicated executor;
 *   2. data: offers from agents holding the most pending input bytes (then
 *      tasks) get executors sized by that local demand;
 *   3. rack / any: offers elsewhere get executors only for work whose
 *      locality wait has already run out, so a new executor far from the
 *      data is not started for tasks that will still wait for their hosts.
 * Tenants at their quota add no demand. Every offer not used is declined
 * with refuse_seconds in the same Plan: offers are never held.
 */
import { LocalityLevel } from '../../core/locality.js';
import { fits, howMany, subtract, type ResourceVector } from '../../core/resources.js';
import type { Pass } from './pass.js';
import type { Queue } from './pending-index.js';
import type { Decline, ExecutorLaunch, OfferView, Release } from './types.js';

/** The executor-level part of a Plan. */
export interface ExecutorDecisions {
  readonly launches: ExecutorLaunch[];
  readonly declines: Decline[];
  readonly releases: Release[];
  /** Pending tasks left without a slot or a launched slot. */
  readonly unmet: number;
}

interface OfferState {
  readonly offer: OfferView;
  remaining: ResourceVector;
  launched: number;
}

const max3 = (a: ResourceVector, b: ResourceVector): ResourceVector => ({
  cpus: Math.max(a.cpus, b.cpus), mem: Math.max(a.mem, b.mem), disk: Math.max(a.disk, b.disk),
});

/** Decide launches, declines and releases for the pass (after placeTasks). */
export function placeExecutors(pass: Pass): ExecutorDecisions {
  const opts = pass.opts;
  const launches: ExecutorLaunch[] = [];
  const offers: OfferState[] = [];
  const unusable: OfferView[] = [];
  for (const o of pass.snapshot.offers) {
    if (pass.offerUsable(o.unavailability)) offers.push({ offer: o, remaining: o.free, launched: 0 });
    else unusable.push(o);
  }

  // Tenants at quota add no demand for new executors.
  const blocked = new Set<string>();
  for (const name of pass.index.tenantNames()) {
    const t = pass.tenant(name);
    const q = pass.index.queuesOfTenant(name)[0];
    if (q && !pass.withinQuota(t, q.maxResources)) blocked.add(name);
  }

  // What this pass already placed on offered hosts (the overlay); only walked when there are offers.
  const offerHosts = new Set(offers.map((o) => o.offer.hostname));
  const placedHost = new Map<string, number>();
  if (offerHosts.size > 0) {
    for (const a of pass.assignments) {
      const t = a.entry.task;
      if (t.volumeId !== undefined) continue;
      for (const h of t.preferredHosts) if (offerHosts.has(h)) placedHost.set(h, (placedHost.get(h) ?? 0) + 1);
    }
  }
  // Slots still free after task placement, by host and by volume; they absorb demand first.
  const freeHost = new Map<string, number>();
  const freeVolume = new Map<string, number>();
  let freeShared = 0;
  for (const x of pass.execs) {
    if (x.free <= 0) continue;
    if (offerHosts.has(x.view.hostname)) freeHost.set(x.view.hostname, (freeHost.get(x.view.hostname) ?? 0) + x.free);
    for (const v of x.volumes) freeVolume.set(v, (freeVolume.get(v) ?? 0) + x.free);
    if (x.view.tenant === undefined) freeShared += x.free;
  }

  let budget = opts.maxLaunchSlotsPerPass;
  const launch = (s: OfferState, slots: number, slot: ResourceVector, why: ExecutorLaunch['why'], volumeId?: string, tenant?: string): number => {
    const room = subtract(s.remaining, opts.executorOverhead);
    const n = Math.min(slots, opts.maxSlotsPerExecutor, budget, fits(opts.executorOverhead, s.remaining) ? howMany(slot, room) : 0);
    if (n <= 0) return 0;
    const resources = {
      cpus: slot.cpus * n + opts.executorOverhead.cpus,
      mem: slot.mem * n + opts.executorOverhead.mem,
      disk: slot.disk * n + opts.executorOverhead.disk,
    };
    const o = s.offer;
    launches.push({
      executorId: opts.executorIdFor(o.offerId, s.launched),
      offerId: o.offerId, agentId: o.agentId, hostname: o.hostname,
      slots: n, slotResources: slot, resources, why,
      ...(volumeId === undefined ? {} : { volumeId }),
      ...(tenant === undefined ? {} : { tenant }),
    });
    s.launched++;
    s.remaining = subtract(s.remaining, resources);
    budget -= n;
    return n;
  };

  // 1. Volumes.
  for (const v of pass.index.pinnedVolumes()) {
    let demand = -(pass.placedVolume.get(v) ?? 0) - (freeVolume.get(v) ?? 0);
    let owner: Queue | undefined;
    let slot = opts.slotResources;
    for (const q of pass.index.queuesWithVolume(v)) {
      if (blocked.has(q.tenant)) continue;
      demand += q.volumes.get(v)?.live ?? 0;
      owner ??= q;
      slot = max3(slot, q.maxResources);
    }
    if (demand <= 0 || !owner) continue;
    for (const s of offers) {
      if (demand <= 0 || budget <= 0) break;
      if (!s.offer.volumes?.includes(v)) continue;
      demand -= launch(s, demand, slot, 'volume', v, owner.tenant);
    }
  }

  // 2. Data hosts, most pending input first.
  let unmet = -freeShared;
  for (const name of pass.index.tenantNames()) {
    if (blocked.has(name)) continue;
    for (const q of pass.index.queuesOfTenant(name)) {
      let pinned = 0;
      for (const b of q.volumes.values()) pinned += b.live;
      unmet += q.live - pinned;
    }
    unmet -= pass.tenant(name).placed;
  }
  const scored: { s: OfferState; tasks: number; bytes: number; slot: ResourceVector }[] = [];
  for (const s of offers) {
    const h = s.offer.hostname;
    let tasks = -(placedHost.get(h) ?? 0) - (freeHost.get(h) ?? 0);
    let bytes = 0;
    let slot = opts.slotResources;
    for (const q of pass.index.queuesAtHost(h)) {
      if (blocked.has(q.tenant)) continue;
      const b = q.hosts.get(h);
      if (!b) continue;
      tasks += b.live;
      bytes += b.bytes;
      slot = max3(slot, q.maxResources);
    }
    if (tasks > 0) scored.push({ s, tasks, bytes, slot });
  }
  scored.sort((a, b) => b.bytes - a.bytes || b.tasks - a.tasks || (a.s.offer.offerId < b.s.offer.offerId ? -1 : 1));
  for (const c of scored) {
    if (unmet <= 0 || budget <= 0) break;
    unmet -= launch(c.s, Math.min(c.tasks, unmet), c.slot, 'data');
  }

  // 3. Elsewhere, only for work whose wait for its data hosts is over.
  if (unmet > 0 && budget > 0) {
    const ripeAny = { n: 0, slot: opts.slotResources };
    const ripeRack = new Map<string, number>();
    for (const name of pass.index.tenantNames()) {
      if (blocked.has(name)) continue;
      for (const q of pass.index.queuesOfTenant(name)) {
        const level = ripeLevel(pass, q);
        if (level === LocalityLevel.ANY) {
          ripeAny.n += q.all.live;
          ripeAny.slot = max3(ripeAny.slot, q.maxResources);
        } else if (level === LocalityLevel.RACK_LOCAL) {
          for (const [r, b] of q.racks) ripeRack.set(r, (ripeRack.get(r) ?? 0) + b.live);
        }
      }
    }
    for (const s of offers) {
      if (unmet <= 0 || budget <= 0) break;
      if (s.launched > 0) continue;
      const rack = s.offer.rack === undefined ? 0 : (ripeRack.get(s.offer.rack) ?? 0);
      if (rack > 0) unmet -= launch(s, Math.min(rack, unmet), ripeAny.slot, 'rack');
      else if (ripeAny.n > 0) {
        const n = launch(s, Math.min(ripeAny.n, unmet), ripeAny.slot, 'any');
        ripeAny.n -= n;
        unmet -= n;
      }
    }
  }

  const pendingLeft = pass.index.size - pass.assignments.length;
  const refuse = pendingLeft > 0 ? opts.refuseSeconds : opts.refuseSecondsIdle;
  const declines: Decline[] = [];
  for (const s of offers) if (s.launched === 0) declines.push({ offerId: s.offer.offerId, refuseSeconds: refuse });
  for (const o of unusable) declines.push({ offerId: o.offerId, refuseSeconds: opts.refuseSecondsIdle });

  return { launches, declines, releases: releases(pass), unmet: Math.max(0, unmet) };
}

/**
 * The least local level a queue's oldest task may take by its own wait
 * (slot idleness aside): how far new executors may be from its data.
 */
function ripeLevel(pass: Pass, q: Queue): LocalityLevel {
  const b = q.all;
  const e = b.items[b.start()];
  if (!e) return LocalityLevel.NODE_LOCAL;
  const waited = pass.now - e.task.pendingSince;
  if (waited >= pass.waitNeeded(e.task, LocalityLevel.ANY)) return LocalityLevel.ANY;
  if (waited >= pass.waitNeeded(e.task, LocalityLevel.RACK_LOCAL)) return LocalityLevel.RACK_LOCAL;
  return LocalityLevel.NODE_LOCAL;
}

/** Executors with nothing to do: idle past the timeout, or drained for maintenance. */
function releases(pass: Pass): Release[] {
  const out: Release[] = [];
  for (const e of pass.snapshot.executors) {
    if (e.draining && e.freeSlots >= e.slots) out.push({ executorId: e.executorId, reason: 'drained' });
  }
  const cutoff = pass.now - pass.opts.idleTimeoutMs;
  for (const x of pass.execs) {
    const e = x.view;
    if (x.used || e.freeSlots < e.slots) continue;
    const since = e.idleSince ?? e.freeSince;
    if (since !== undefined && since <= cutoff) out.push({ executorId: e.executorId, reason: 'idle' });
  }
  return out;
}
