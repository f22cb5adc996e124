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
 * Executors are sized to the work, per slot shape (the resources the tasks
 * ask for): in one pass an offer grows executors to all the room the pending
 * work can use, several shapes sharing one offer slot by slot, so small tasks
 * pack and large ones still fit. A job too large for any offer adds demand of
 * its own shape only and never holds back the others.
 * Tenants at their quota add no demand. Every offer not used is declined
 * with refuse_seconds in the same Plan: offers are never held.
 */
import { LocalityLevel } from '../../core/locality.js';
import { fits, howMany, subtract, type ResourceVector } from '../../core/resources.js';
import { slotsLeft, type ExecState, type Pass } from './pass.js';
import type { Queue } from './pending-index.js';
import type { Decline, ExecutorLaunch, OfferView, PendingTask, Release } from './types.js';

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

/**
 * One slot shape that pending work needs. A task takes what it asks for, so
 * executors are sized per shape: every slot of an executor has the shape of
 * the queue (job) it was grown for, and a task fits any slot at least its size.
 * Slot-per-shape was chosen over a resource pool per executor because the
 * coordinator, the executor (BullMQ concurrency = slots) and the dispatch path
 * all count slots; shapes keep that contract, and the few shapes a cluster
 * runs at once (one per job, in practice) cost one executor each per agent.
 */
interface Shape {
  readonly key: string;
  readonly slot: ResourceVector;
  /** Unpinned tasks of this shape with no slot after task placement, less free slots that fit it. */
  unmet: number;
  /** The queue of this shape served first (fair-share order); orders shapes competing for one offer. */
  head: Queue;
  /**
   * Unmet tasks that wait for their data's hosts (PendingTask.awaitDataHosts): free slots elsewhere
   * cannot take them, so they keep their demand for an executor on a data host.
   */
  awaiting: number;
  /** Tasks whose wait for their data hosts is over: anywhere, and per rack. */
  ripeAny: number;
  readonly ripeRack: Map<string, number>;
}

const ZERO_V: ResourceVector = { cpus: 0, mem: 0, disk: 0 };

const max3 = (a: ResourceVector, b: ResourceVector): ResourceVector => ({
  cpus: Math.max(a.cpus, b.cpus), mem: Math.max(a.mem, b.mem), disk: Math.max(a.disk, b.disk),
});

const plus = (a: ResourceVector, b: ResourceVector): ResourceVector => ({ cpus: a.cpus + b.cpus, mem: a.mem + b.mem, disk: a.disk + b.disk });

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

  // A queue whose tasks would take its tenant over its quota adds no demand for new executors.
  // Judged per queue, not by the tenant's first: a job whose tasks can never fit the quota (or
  // not with what the tenant runs now) blocked every other job of the tenant behind it, though
  // their smaller tasks fit, and with no executor of the tenant left those waited for ever.
  const blockedQueues = new Map<Queue, boolean>();
  const blocked = (q: Queue): boolean => {
    let b = blockedQueues.get(q);
    if (b === undefined) {
      b = !pass.withinQuota(pass.tenant(q.tenant), q.maxResources);
      blockedQueues.set(q, b);
    }
    return b;
  };

  // Demand by slot shape. Only built when there is an offer to grow on or an idle executor that
  // might make room; the benchmark's hot path (no offers, busy executors) never pays for it.
  const needShapes = offers.length > 0 || pass.execs.some((x) => !x.used && slotsLeft(x) >= x.view.slots && x.view.slots > 0);
  const shapes = needShapes ? shapeDemand(pass, blocked) : { list: [] as Shape[], of: new Map<Queue, Shape>() };

  // What this pass already placed on offered hosts, per shape (the overlay); only walked when there are offers.
  const offerHosts = new Set(offers.map((o) => o.offer.hostname));
  const placedHost = new Map<string, Map<Shape, number>>();
  if (offerHosts.size > 0) {
    for (let k = 0; k < pass.placed; k++) {
      const e = pass.entryAt(k);
      const t = e.task;
      if (t.volumeId !== undefined) continue;
      const sh = shapes.of.get(e.queue);
      if (!sh) continue;
      for (const h of t.preferredHosts) if (offerHosts.has(h)) bump(placedHost, h, sh, 1);
    }
  }
  // Slots still free after task placement, by host and by volume; they absorb demand first.
  // A free slot counts against every shape it fits: conservative (it may under-launch by the
  // few slots that sit free while their tasks wait for locality), never over-launching.
  // Slots the dispatch window holds back count as free: they take the work as soon as the
  // executor starts what it queues, so they are no reason for another executor.
  const freeHost = new Map<string, Map<Shape, number>>();
  const freeVolume = new Map<string, number>();
  for (const x of pass.execs) {
    const free = slotsLeft(x);
    if (free <= 0) continue;
    for (const v of x.volumes) freeVolume.set(v, (freeVolume.get(v) ?? 0) + free);
    for (const sh of shapes.list) {
      if (!fits(sh.slot, x.view.slotResources)) continue;
      if (offerHosts.has(x.view.hostname)) bump(freeHost, x.view.hostname, sh, free);
      if (x.view.tenant === undefined) sh.unmet = Math.max(sh.unmet - free, Math.min(sh.unmet, sh.awaiting));
    }
  }

  let budget = opts.maxLaunchSlotsPerPass;
  const emit = (s: OfferState, slots: number, slot: ResourceVector, why: ExecutorLaunch['why'], volumeId?: string, tenant?: string): void => {
    const resources = {
      cpus: slot.cpus * slots + opts.executorOverhead.cpus,
      mem: slot.mem * slots + opts.executorOverhead.mem,
      disk: slot.disk * slots + opts.executorOverhead.disk,
    };
    const o = s.offer;
    launches.push({
      executorId: opts.executorIdFor(o.offerId, s.launched),
      offerId: o.offerId, agentId: o.agentId, hostname: o.hostname,
      slots, slotResources: slot, resources, why,
      ...(volumeId === undefined ? {} : { volumeId }),
      ...(tenant === undefined ? {} : { tenant }),
    });
    s.launched++;
    s.remaining = subtract(s.remaining, resources);
    budget -= slots;
  };
  // One executor of `want` slots (or as many as fit) of one shape on one offer.
  const launchOne = (s: OfferState, want: number, slot: ResourceVector, why: ExecutorLaunch['why'], volumeId?: string, tenant?: string): number => {
    const room = subtract(s.remaining, opts.executorOverhead);
    const n = Math.min(want, opts.maxSlotsPerExecutor, budget, fits(opts.executorOverhead, s.remaining) ? howMany(slot, room) : 0);
    if (n <= 0) return 0;
    emit(s, n, slot, why, volumeId, tenant);
    return n;
  };

  // 1. Volumes.
  for (const v of pass.index.pinnedVolumes()) {
    // Being deleted: no executor may take it again (the volume service refuses it too).
    if (pass.volumeGone(v)) continue;
    let demand = -(pass.placedVolume.get(v) ?? 0) - (freeVolume.get(v) ?? 0);
    let owner: Queue | undefined;
    let slot = opts.slotResources;
    for (const q of pass.index.queuesWithVolume(v)) {
      if (blocked(q)) continue;
      demand += q.volumes.get(v)?.live ?? 0;
      owner ??= q;
      slot = max3(slot, q.maxResources);
    }
    if (demand <= 0 || !owner) continue;
    for (const s of offers) {
      if (demand <= 0 || budget <= 0) break;
      if (!s.offer.volumes?.includes(v)) continue;
      demand -= launchOne(s, demand, slot, 'volume', v, owner.tenant);
    }
  }

  // 2. Data hosts, most pending input first; on each offer every shape with local work gets
  // its own executor, the offer shared between shapes (see shareOffer).
  const scored: { s: OfferState; want: Map<Shape, number>; bytes: number; tasks: number }[] = [];
  if (shapes.list.length > 0) {
    for (const s of offers) {
      const h = s.offer.hostname;
      const want = new Map<Shape, number>();
      let bytes = 0;
      let tasks = 0;
      // Its host buckets: tasks preferring it and tasks pinned to it, of every queue.
      for (const b of pass.index.bucketsAtHost(pass.index.hostId(h))) {
        const sh = shapes.of.get(b.queue);
        if (!sh) continue;
        want.set(sh, (want.get(sh) ?? 0) + b.live);
        bytes += b.bytes;
      }
      for (const [sh, n] of want) {
        const left = n - (placedHost.get(h)?.get(sh) ?? 0) - (freeHost.get(h)?.get(sh) ?? 0);
        if (left > 0) {
          want.set(sh, left);
          tasks += left;
        } else {
          want.delete(sh);
        }
      }
      if (tasks > 0) scored.push({ s, want, bytes, tasks });
    }
  }
  scored.sort((a, b) => b.bytes - a.bytes || b.tasks - a.tasks || (a.s.offer.offerId < b.s.offer.offerId ? -1 : 1));
  for (const c of scored) {
    if (budget <= 0) break;
    shareOffer(pass, c.s, c.want, 'data', launchOne, emit, () => budget);
  }

  // 3. Elsewhere, only for work whose wait for its data hosts is over. Tasks that wait for their
  // data's hosts (awaiting) are no reason for an executor anywhere else: their floor of the
  // demand is set aside here and counted again after (it still asks for offers).
  const setAside = new Map<Shape, number>();
  for (const sh of shapes.list) {
    const floor = Math.min(Math.max(0, sh.unmet), sh.awaiting);
    if (floor <= 0) continue;
    setAside.set(sh, floor);
    sh.unmet -= floor;
  }
  if (budget > 0 && shapes.list.some((sh) => sh.unmet > 0 && (sh.ripeAny > 0 || sh.ripeRack.size > 0))) {
    for (const s of offers) {
      if (budget <= 0) break;
      const want = new Map<Shape, number>();
      let rackWork = false;
      for (const sh of shapes.list) {
        const rack = s.offer.rack === undefined ? 0 : (sh.ripeRack.get(s.offer.rack) ?? 0);
        const n = rack + sh.ripeAny;
        if (n > 0 && sh.unmet > 0) want.set(sh, n);
        if (rack > 0) rackWork = true;
      }
      if (want.size === 0) continue;
      const got = shareOffer(pass, s, want, rackWork ? 'rack' : 'any', launchOne, emit, () => budget);
      // Spend the launched slots from the ripe counts, rack first (those tasks can go nowhere else).
      for (const [sh, n] of got) {
        const r = s.offer.rack === undefined ? 0 : (sh.ripeRack.get(s.offer.rack) ?? 0);
        const fromRack = Math.min(r, n);
        if (s.offer.rack !== undefined && r > 0) sh.ripeRack.set(s.offer.rack, r - fromRack);
        sh.ripeAny = Math.max(0, sh.ripeAny - (n - fromRack));
      }
    }
  }

  for (const [sh, floor] of setAside) sh.unmet += floor;
  let unmet = 0;
  for (const sh of shapes.list) unmet += Math.max(0, sh.unmet);
  const pendingLeft = pass.index.size - pass.placed;
  const refuse = pendingLeft > 0 || pass.snapshot.otherWork === true ? opts.refuseSeconds : opts.refuseSecondsIdle;
  const declines: Decline[] = [];
  for (const s of offers) if (s.launched === 0) declines.push({ offerId: s.offer.offerId, refuseSeconds: refuse });
  for (const o of unusable) declines.push({ offerId: o.offerId, refuseSeconds: opts.refuseSecondsIdle });

  return { launches, declines, releases: releases(pass, shapes.list, offers), unmet };
}

function bump(m: Map<string, Map<Shape, number>>, host: string, sh: Shape, n: number): void {
  let inner = m.get(host);
  if (!inner) m.set(host, (inner = new Map()));
  inner.set(sh, (inner.get(sh) ?? 0) + n);
}

/** Unpinned demand of unblocked tenants, grouped by slot shape, with what this pass placed taken off. */
function shapeDemand(pass: Pass, blocked: (q: Queue) => boolean): { list: Shape[]; of: Map<Queue, Shape> } {
  const byKey = new Map<string, Shape>();
  const of = new Map<Queue, Shape>();
  /** Queues whose waiting tasks were counted in their shape's `awaiting`. */
  const awaitingCounted = new Set<Queue>();
  const floor = pass.opts.slotResources;
  for (const name of pass.index.tenantNames()) {
    for (const q of pass.index.queuesOfTenant(name)) {
      if (blocked(q)) continue;
      let pinned = 0;
      for (const b of q.volumes.values()) pinned += b.live;
      const live = q.live - pinned;
      if (live <= 0) continue;
      const slot = max3(floor, q.maxResources);
      const key = `${slot.cpus}/${slot.mem}/${slot.disk}`;
      let sh = byKey.get(key);
      if (!sh) {
        sh = { key, slot, unmet: 0, awaiting: 0, head: q, ripeAny: 0, ripeRack: new Map() };
        byKey.set(key, sh);
      } else if (pass.before(q, sh.head)) {
        sh.head = q;
      }
      of.set(q, sh);
      sh.unmet += live;
      const level = ripeLevel(pass, q);
      // A queue whose head has waited out its wait keeps no floor: its waiting tasks' waits are
      // bounded too, and an executor elsewhere must be able to start for them (the data hosts
      // may never offer again).
      if (level !== LocalityLevel.ANY && q.awaiting > 0) {
        sh.awaiting += q.awaiting;
        awaitingCounted.add(q);
      }
      if (level === LocalityLevel.ANY) sh.ripeAny += q.all.live;
      else if (level === LocalityLevel.RACK_LOCAL) for (const [r, b] of q.racks) sh.ripeRack.set(r, (sh.ripeRack.get(r) ?? 0) + b.live);
    }
  }
  for (let k = 0; k < pass.placed; k++) {
    const e = pass.entryAt(k);
    if (e.task.volumeId !== undefined) continue;
    const sh = of.get(e.queue);
    if (!sh) continue;
    sh.unmet--;
    // Only where it was counted: a queue past its wait added none.
    if (e.task.awaitDataHosts === true && awaitingCounted.has(e.queue)) sh.awaiting--;
  }
  return { list: [...byKey.values()], of };
}

/**
 * Grow executors on one offer for the shapes that want it, in one go: the
 * offer's room is dealt out one slot at a time, round robin over the shapes in
 * fair-share order (of each shape's first queue), so small tasks pack while a
 * large shape still gets its slots; each shape's slots become one executor.
 * One shape alone takes all it can use at once (the common case, no loop).
 * Returns the slots launched per shape, already taken off each shape's unmet.
 */
function shareOffer(
  pass: Pass, s: OfferState, want: Map<Shape, number>, why: ExecutorLaunch['why'],
  launchOne: (s: OfferState, want: number, slot: ResourceVector, why: ExecutorLaunch['why']) => number,
  emit: (s: OfferState, slots: number, slot: ResourceVector, why: ExecutorLaunch['why']) => void,
  budget: () => number,
): Map<Shape, number> {
  const opts = pass.opts;
  const got = new Map<Shape, number>();
  const order = [...want.keys()].filter((sh) => sh.unmet > 0).sort((a, b) => (pass.before(a.head, b.head) ? -1 : pass.before(b.head, a.head) ? 1 : 0));
  if (order.length === 0) return got;
  if (order.length === 1) {
    const sh = order[0] as Shape;
    const n = launchOne(s, Math.min(want.get(sh) ?? 0, sh.unmet), sh.slot, why);
    sh.unmet -= n;
    if (n > 0) got.set(sh, n);
    return got;
  }
  const count = new Map<Shape, number>();
  let used = ZERO_V;
  let left = budget();
  for (let progress = true; progress && left > 0;) {
    progress = false;
    for (const sh of order) {
      const n = count.get(sh) ?? 0;
      if (n >= Math.min(want.get(sh) ?? 0, sh.unmet, opts.maxSlotsPerExecutor) || left <= 0) continue;
      // A shape's first slot also brings its executor's overhead.
      const add = n === 0 ? plus(sh.slot, opts.executorOverhead) : sh.slot;
      const next = plus(used, add);
      if (!fits(next, s.remaining)) continue;
      used = next;
      count.set(sh, n + 1);
      left--;
      progress = true;
    }
  }
  for (const sh of order) {
    const n = count.get(sh) ?? 0;
    if (n <= 0) continue;
    emit(s, n, sh.slot, why);
    sh.unmet -= n;
    got.set(sh, n);
  }
  return got;
}

/**
 * The least local level a queue's oldest task may take by its own wait
 * (slot idleness aside): how far new executors may be from its data.
 */
function ripeLevel(pass: Pass, q: Queue): LocalityLevel {
  const b = q.all;
  const no = b.items[b.start(pass.index.marks)];
  if (no === undefined) return LocalityLevel.NODE_LOCAL;
  const e = pass.index.entryAt(no);
  const waited = pass.now - e.task.pendingSince;
  if (waited >= pass.waitNeeded(e.task, LocalityLevel.ANY)) return LocalityLevel.ANY;
  if (waited >= pass.waitNeeded(e.task, LocalityLevel.RACK_LOCAL)) return LocalityLevel.RACK_LOCAL;
  return LocalityLevel.NODE_LOCAL;
}

/**
 * Executors with nothing to do: idle past the timeout, drained for
 * maintenance, holding a volume whose delete was asked for, or idle and
 * unable to run any pending task while work that could use their room finds
 * no offer (a slot shape too small for what waits): those go at once so their
 * resources come back in an offer.
 */
function releases(pass: Pass, shapes: readonly Shape[], offers: readonly OfferState[]): Release[] {
  const out: Release[] = [];
  for (const e of pass.snapshot.executors) {
    if (e.draining && e.freeSlots >= e.slots) out.push({ executorId: e.executorId, reason: 'drained' });
    // Mesos keeps a persistent volume in its executor's container until the executor ends: waiting
    // out the idle timeout made every delete after a job wait a minute. Not while any attempt runs
    // there (the delete was refused if one mounts the volume; others finish first). One still
    // starting goes too: its Mesos task is killed like any other's, TASK_KILLED at once while the
    // agent still launches it, and the SIGTERM of a kill once it runs ends a process that has not
    // registered yet (it drains nothing).
    else if (!e.draining && e.freeSlots >= e.slots && pass.holdsGone(e)) out.push({ executorId: e.executorId, reason: 'volume-delete' });
  }
  const cutoff = pass.now - pass.opts.idleTimeoutMs;
  // Idle for a moment at least, so an executor launched a pass ago is never taken back.
  const settled = pass.now - Math.min(pass.opts.idleTimeoutMs, 1000);
  const waiting = shapes.filter((sh) => sh.unmet > 0);
  const spare = new Map<string, ExecState[]>();
  for (const x of pass.execs) {
    const e = x.view;
    if (x.used || e.freeSlots < e.slots) continue;
    // Still launching while waiting work could run on it: it takes that work once it has registered
    // (given back now, the next pass would launch the same executor again, and again).
    if (e.launching === true && usableByWaiting(pass, x, shapes)) continue;
    const since = e.idleSince ?? e.freeSince;
    if (since !== undefined && since <= cutoff) {
      out.push({ executorId: e.executorId, reason: 'idle' });
      continue;
    }
    if (since === undefined || since > settled) continue;
    // A dedicated volume executor whose volume's tasks wait because they do not fit its slots:
    // only a new executor of their size can run them, and only once this one gives the volume
    // back. (Tasks that wait for another reason, an avoided host, a quota, keep it.)
    if (x.volumes.some((v) => pass.index.queuesWithVolume(v).some((q) => !fits(q.maxResources, e.slotResources)))) {
      out.push({ executorId: e.executorId, reason: 'idle' });
      continue;
    }
    // An idle executor that could run some waiting shape is waiting for locality: keep it.
    if (waiting.length === 0 || waiting.some((sh) => fits(sh.slot, e.slotResources))) continue;
    const list = spare.get(e.hostname) ?? [];
    list.push(x);
    spare.set(e.hostname, list);
  }
  // Release a host's useless idle executors only if, with the offer from that host, their room
  // would hold an executor of a waiting shape: never churn for work too big for the agent.
  for (const [host, list] of spare) {
    let room = ZERO_V;
    for (const s of offers) if (s.offer.hostname === host) room = plus(room, s.remaining);
    for (const x of list) {
      const e = x.view;
      room = plus(room, { cpus: e.slotResources.cpus * e.slots + pass.opts.executorOverhead.cpus, mem: e.slotResources.mem * e.slots + pass.opts.executorOverhead.mem, disk: e.slotResources.disk * e.slots + pass.opts.executorOverhead.disk });
    }
    if (!waiting.some((sh) => fits(plus(sh.slot, pass.opts.executorOverhead), room))) continue;
    // Room made where none of the waiting work may run (it is pinned to other hosts) serves
    // nothing, and the executors given back may be serving that work's input (their block server).
    if (!pendingMayUseRoom(pass, list[0] as ExecState, room)) continue;
    for (const x of list) out.push({ executorId: x.view.executorId, reason: 'idle' });
  }
  return keepOutputServers(pass, out);
}

/**
 * The distinct (resources, constraints) pairs of a pass's pending tasks not pinned to a volume,
 * one task standing for each. The job service gives all tasks of a stage the same two objects,
 * so there are about as many as stages; found once per pass, on first need.
 */
const roomShapes = new WeakMap<Pass, PendingTask[]>();

function pendingShapes(pass: Pass): PendingTask[] {
  let shapes = roomShapes.get(pass);
  if (shapes) return shapes;
  shapes = [];
  const seen = new Map<ResourceVector, Set<PendingTask['constraints']>>();
  for (const t of pass.index.tasks()) {
    if (t.volumeId !== undefined) continue;
    let cs = seen.get(t.resources);
    if (!cs) seen.set(t.resources, (cs = new Set()));
    if (cs.has(t.constraints)) continue;
    cs.add(t.constraints);
    shapes.push(t);
  }
  roomShapes.set(pass, shapes);
  return shapes;
}

/**
 * Whether some pending task (not pinned to a volume) would fit an executor in `room` and may run
 * on x's host by its constraints. Asked only when a host's idle executors are about to be given
 * back for room, of one task per distinct shape (pendingShapes), not of every pending task per host.
 */
function pendingMayUseRoom(pass: Pass, x: ExecState, room: ResourceVector): boolean {
  for (const t of pendingShapes(pass)) {
    if (!fits(plus(t.resources, pass.opts.executorOverhead), room)) continue;
    if (pass.constraintsAllow(t, x)) return true;
  }
  return false;
}

/**
 * Take back the idle release of the last executor on a host whose committed outputs a running
 * job still reads: its block server is what serves them, and without it they would have to be
 * recomputed. One executor per such host is kept (the one with the most slots, then the
 * smallest id, so every pass keeps the same one); a draining one goes as asked.
 */
function keepOutputServers(pass: Pass, releases: Release[]): Release[] {
  const hosts = pass.snapshot.outputHosts;
  if (hosts === undefined || hosts.size === 0 || releases.length === 0) return releases;
  const released = new Set(releases.map((r) => r.executorId));
  const keep = new Set<string>();
  for (const host of hosts) {
    const live = pass.snapshot.executors.filter((e) => e.hostname === host && !e.draining);
    if (live.length === 0 || live.some((e) => !released.has(e.executorId))) continue;
    const chosen = [...live].sort((a, b) => b.slots - a.slots || (a.executorId < b.executorId ? -1 : 1))[0];
    if (chosen !== undefined) keep.add(chosen.executorId);
  }
  return keep.size === 0 ? releases : releases.filter((r) => !(r.reason === 'idle' && keep.has(r.executorId)));
}

/** Whether pending work of a size its slots hold may run on x: its volume's tasks, else any unpinned shape. */
function usableByWaiting(pass: Pass, x: ExecState, shapes: readonly Shape[]): boolean {
  const e = x.view;
  if (x.volumes.length > 0) {
    return x.volumes.some((v) => pass.index.queuesWithVolume(v).some((q) => (q.volumes.get(v)?.live ?? 0) > 0
      && (e.tenant === undefined || q.tenant === e.tenant) && fits(q.maxResources, e.slotResources)));
  }
  return shapes.some((sh) => fits(sh.slot, e.slotResources));
}
