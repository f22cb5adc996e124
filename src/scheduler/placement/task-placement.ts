/**
 * Level 2: which free executor slot runs which pending task.
 *
 * The pass fills slots level by level over the whole cluster — every slot
 * first takes the tasks pinned to its host (they can run nowhere else), then
 * node-local work, then a short augmenting search trades
 * placements so more slots end node-local, then rack-local work, then any —
 * the way Spark offers all executors at one locality level before relaxing
 * to the next. Doing node-local for everyone first is what keeps a slot on
 * host A from taking a task whose only free local slot was on host B.
 *
 * Between candidates for one slot, fairness decides: the tenant with the
 * least weighted dominant share, then the job's priority, then the job with
 * fewer running tasks (fair between the jobs of one tenant), then age.
 * Delay scheduling and its idle-capacity bound live in Pass.allowed.
 */
import { LocalityLevel } from '../../core/locality.js';
import type { Bucket, Entry } from './pending-index.js';
import type { ExecState, Pass } from './pass.js';

/** Run the three phases (and the node-local augmentation) of task placement. */
export function placeTasks(pass: Pass): void {
  phases(pass);
  pass.settle();
}

function phases(pass: Pass): void {
  if (pass.index.size === 0) return;
  // Each phase stops as soon as nothing is left unplaced: with ample capacity most slots stay
  // free, and walking them would cost per executor, not per task.
  if (pass.index.hasPinned()) {
    // Executors without volumes first: a volume's executor may be the only place its tasks can
    // run, and on it they compete with the pinned tasks by fairness (fillPinned).
    for (const withVolumes of [false, true]) {
      for (const x of pass.execs) {
        if (pass.unplaced() === 0) return;
        if (x.free > 0 && (x.volumes.length > 0) === withVolumes && pass.index.hasPinnedAt(x.host)) fillPinned(pass, x);
      }
    }
  }
  const ripe = ripeTenants(pass);
  // Indexed loops over the executors (see the Pass constructor: these run once a pass).
  const order = scarceFirst(pass);
  for (let i = 0; i < order.length; i++) {
    if (pass.unplaced() === 0) return;
    fillNode(pass, order[i] as ExecState, ripe);
  }
  const execs = pass.execs;
  for (let i = 0; i < execs.length; i++) {
    if (pass.unplaced() === 0) return;
    const x = execs[i] as ExecState;
    if (x.free > 0) augment(pass, x);
  }
  for (const x of pass.execs) {
    if (pass.unplaced() === 0) return;
    if (x.free > 0 && x.view.rack !== undefined) fill(pass, x, rackCandidates(pass, x.view.rack));
  }
  let anyCands: Bucket[] | undefined;
  for (const x of pass.execs) {
    if (pass.unplaced() === 0) return;
    if (x.free <= 0) continue;
    anyCands ??= allCandidates(pass);
    fill(pass, x, anyCands);
  }
}

/**
 * Tenants with work that has waited past its node-locality delay, when more
 * than one tenant is pending. While the least-served tenant is one of them,
 * it gets a free slot before others take that slot for node-local work: the
 * fairness half of delay scheduling (Zaharia et al.), which stops a tenant
 * with local data everywhere from starving one whose data hosts are busy.
 */
function ripeTenants(pass: Pass): Set<string> | undefined {
  if (pass.index.tenantCount() < 2) return undefined;
  const out = new Set<string>();
  for (const name of pass.index.tenantNames()) {
    for (const q of pass.index.queuesOfTenant(name)) {
      const b = q.all;
      const no = b.items[b.start(pass.index.marks)];
      if (no === undefined) continue;
      const e = pass.index.entryAt(no);
      const need = pass.waitNeeded(e.task, LocalityLevel.RACK_LOCAL);
      if (need !== Infinity && pass.now - e.task.pendingSince >= need) {
        out.add(name);
        break;
      }
    }
  }
  return out.size > 0 ? out : undefined;
}

/**
 * Executors with free slots, those with the fewest node-local candidates per
 * free slot first: a host with few local tasks picks before hosts with many
 * alternatives can take them (a min-degree-first greedy matching). Ties keep
 * the snapshot's order. Exported for a test only.
 */
export function scarceFirst(pass: Pass): ExecState[] {
  const execs = pass.execs;
  const len = execs.length;
  const order = new Int32Array(len);
  const score = new Float64Array(len);
  const count = new Float64Array(len);
  let k = 0;
  let sameFree = -1;
  let most = 0;
  for (let i = 0; i < len; i++) {
    const x = execs[i] as ExecState;
    if (x.free <= 0) continue;
    const n = candidatesOn(pass, x);
    score[i] = n / x.free;
    count[i] = n;
    if (n > most) most = n;
    sameFree = k === 0 || sameFree === x.free ? x.free : 0;
    order[k++] = i;
  }
  const out = new Array<ExecState>(k);
  if (sameFree > 0 && most <= 4 * k + 1024) {
    // Every such executor has as many free slots (a fresh cluster, or a busy one where the free
    // ones are all idle): n / free orders as n does, so a counting sort by n, stable in snapshot
    // order, gives exactly the (n, i) order. Counts are small integers (tasks per host), so this
    // is two passes over the executors and one over the counts: no sort at all.
    const start = new Int32Array(most + 2);
    for (let j = 0; j < k; j++) {
      const c = (count[order[j] as number] as number) + 1;
      start[c] = (start[c] as number) + 1;
    }
    for (let c = 1; c <= most + 1; c++) start[c] = (start[c] as number) + (start[c - 1] as number);
    for (let j = 0; j < k; j++) {
      const i = order[j] as number;
      const c = count[i] as number;
      const at = start[c] as number;
      start[c] = at + 1;
      out[at] = execs[i] as ExecState;
    }
    return out;
  }
  if (sameFree > 0 && most * len < 2 ** 52) {
    // Every such executor has as many free slots (a fresh cluster, or a busy one where the free
    // ones are all idle): n / free orders as n does, and n·len + i, an integer far below 2^53,
    // orders by (n, i) exactly (below 2^52 distinct counts also give distinct quotients). A numeric sort of plain keys is several times faster than
    // sorting with a comparator (10,000 executors: a few percent of a pass).
    const keys = new Float64Array(k);
    for (let j = 0; j < k; j++) {
      const i = order[j] as number;
      keys[j] = (count[i] as number) * len + i;
    }
    keys.sort();
    for (let j = 0; j < k; j++) out[j] = execs[(keys[j] as number) % len] as ExecState;
    return out;
  }
  const sorted = order.subarray(0, k).sort((a, b) => (score[a] as number) - (score[b] as number) || a - b);
  for (let i = 0; i < k; i++) out[i] = execs[sorted[i] as number] as ExecState;
  return out;
}

/**
 * How many pending tasks x could take node-local (or volume): a function of its own so that it is
 * compiled once, within the first pass, and not on-stack in every pass's ordering loop anew.
 */
function candidatesOn(pass: Pass, x: ExecState): number {
  let n = 0;
  const bs = pass.index.bucketsAtHost(x.host);
  for (let j = 0; j < bs.length; j++) n += (bs[j] as Bucket).live;
  if (x.volumes.length > 0) for (const v of x.volumes) for (const q of pass.index.queuesWithVolume(v)) n += q.volumes.get(v)?.live ?? 0;
  return n;
}

/** The buckets x could take node-local (or volume) work from: its volumes' first, then its host's. */
function nodeCandidates(pass: Pass, x: ExecState): readonly Bucket[] {
  const hostBuckets = pass.index.bucketsAtHost(x.host);
  if (x.volumes.length === 0) return hostBuckets;
  const out = volumeCandidates(pass, x);
  out.push(...hostBuckets);
  return out;
}

/** The buckets of tasks of x's volumes (they can run on x alone). */
function volumeCandidates(pass: Pass, x: ExecState): Bucket[] {
  const out: Bucket[] = [];
  for (const v of x.volumes) {
    for (const q of pass.index.queuesWithVolume(v)) {
      const b = q.volumes.get(v);
      if (b) out.push(b);
    }
  }
  return out;
}

function rackCandidates(pass: Pass, rack: string): Bucket[] {
  const out: Bucket[] = [];
  for (const q of pass.index.queuesAtRack(rack)) {
    const b = q.racks.get(rack);
    if (b) out.push(b);
  }
  return out;
}

function allCandidates(pass: Pass): Bucket[] {
  const out: Bucket[] = [];
  for (const tenant of pass.index.tenantNames()) {
    for (const q of pass.index.queuesOfTenant(tenant)) out.push(q.all);
  }
  return out;
}

/** Index of the best candidate not yet exhausted for this executor, or -1. */
function best(pass: Pass, x: ExecState, cands: readonly Bucket[], exhausted: Uint8Array): number {
  let bi = -1;
  let bq: Bucket['queue'] | undefined;
  const dedicated = x.view.tenant;
  for (let i = 0; i < cands.length; i++) {
    if (exhausted[i] === 1) continue;
    const c = cands[i] as Bucket;
    if (dedicated !== undefined && c.queue.tenant !== dedicated) {
      exhausted[i] = 1;
      continue;
    }
    if (c.live === 0) {
      exhausted[i] = 1;
      continue;
    }
    if (bq === undefined || pass.before(c.queue, bq)) {
      bi = i;
      bq = c.queue;
    }
  }
  return bi;
}

/** Give each free slot of x node-local (or volume) work while there is some. */
function fillNode(pass: Pass, x: ExecState, ripe: Set<string> | undefined): void {
  const cands = nodeCandidates(pass, x);
  if (cands.length === 0) return;
  if (cands.length === 1 && ripe === undefined) {
    // One job with work here (the common case): no choice between candidates to make per slot.
    const b = cands[0] as Bucket;
    if (x.view.tenant !== undefined && b.queue.tenant !== x.view.tenant) return;
    pass.fillFrom(b, x);
    return;
  }
  const exhausted = pass.scratchFlags(cands.length);
  let headTried: string | undefined;
  while (x.free > 0) {
    const i = best(pass, x, cands, exhausted);
    if (i < 0) return;
    const c = cands[i] as Bucket;
    if (ripe !== undefined) {
      const head = pass.headTenant();
      if (head !== undefined && head !== c.queue.tenant && head !== headTried && ripe.has(head)
        && (x.view.tenant === undefined || x.view.tenant === head)) {
        const e = takeForTenant(pass, x, head);
        if (e) {
          pass.assign(e, x, pass.takenLevel);
          continue;
        }
        headTried = head;
      }
    }
    const e = pass.take(c, x, false, true);
    if (!e) {
      exhausted[i] = 1;
      continue;
    }
    pass.assign(e, x, pass.takenLevel);
  }
}

/**
 * Give x's free slots to the tasks pinned to its host (a `hostname` constraint) and to its
 * volumes' tasks, fairness deciding between their jobs, before any other work may take them. In the node phase a host's pinned and
 * preferring tasks were one bucket in submission order, so tasks that could run elsewhere took
 * the last slots of the only host a pinned task may use, and it waited for a later pass (for
 * good, while such tasks kept coming).
 */
function fillPinned(pass: Pass, x: ExecState): void {
  // The tasks of x's volumes are as bound to it as pinned ones are to its host (listed first, as
  // in the node phase: within one job they go before its pinned tasks).
  const cands = volumeCandidates(pass, x);
  const volumeCands = cands.length;
  for (const b of pass.index.bucketsAtHost(x.host)) if (b.pinned) cands.push(b);
  if (cands.length === volumeCands) return;
  // fill takes in submission order, not by the node phase's scarcity window: that ranks tasks by
  // the free slots left on their data hosts, which a pinned task can never use, and kept passing
  // over the oldest pinned task while newer ones came. Both kinds are node-local on x, so no
  // locality wait (fill's head-tenant rule) applies to them.
  fill(pass, x, cands);
}

/** The best task of one tenant for x at whatever level its waits allow (rack first, then any). */
function takeForTenant(pass: Pass, x: ExecState, tenant: string): Entry | undefined {
  const rack = x.view.rack;
  for (const q of pass.index.queuesOfTenant(tenant)) {
    const rb = rack === undefined ? undefined : q.racks.get(rack);
    const e = (rb && pass.take(rb, x, true)) ?? pass.take(q.all, x, true);
    if (e) return e;
  }
  return undefined;
}

/** Fill the free slots of x from the given candidates (rack and any phases). */
function fill(pass: Pass, x: ExecState, cands: readonly Bucket[]): void {
  if (cands.length === 0) return;
  const exhausted = pass.scratchFlags(cands.length);
  while (x.free > 0) {
    const i = best(pass, x, cands, exhausted);
    if (i < 0) return;
    const c = cands[i] as Bucket;
    const e = pass.take(c, x, c.queue.tenant === pass.headTenant());
    if (!e) {
      exhausted[i] = 1;
      continue;
    }
    pass.assign(e, x, pass.takenLevel);
  }
}

/**
 * A bounded augmenting search for node locality. x still has a free slot
 * after the node phase, so no unplaced task prefers x's host. But a task t
 * placed this pass on another host A may also prefer x's host: move t here,
 * and give A's slot to an unplaced task that is node-local on A. One more
 * node-local placement, none lost. Only paths of this length are tried (a
 * maximum matching would search deeper); the scan is bounded per bucket.
 */
function augment(pass: Pass, x: ExecState): void {
  const bs = pass.index.bucketsAtHost(x.host);
  for (let j = 0; j < bs.length; j++) {
    if (x.free <= 0) return;
    augmentFrom(pass, x, bs[j] as Bucket);
  }
}

function augmentFrom(pass: Pass, x: ExecState, b: Bucket): void {
  const items = b.items;
  const limit = pass.opts.scanLimit;
  let scanned = 0;
  for (let i = b.head; i < items.length && scanned < limit && x.free > 0; i++) {
    const no = items[i] as number;
    const k = pass.placedAt(no);
    if (k < 0) continue;
    scanned++;
    // Where it went, by numbers only: x's host has an id (its buckets are being walked), so the
    // same id means the same hostname, and the executor's objects are loaded only for a candidate.
    const fromNo = pass.execNoAt(k);
    if (fromNo === x.no || pass.levelAt(k) !== LocalityLevel.NODE_LOCAL || pass.hostOfExec(fromNo) === x.host) continue;
    // A drained host has no replacement (replacementOn's first answer): asked before the task's
    // fit here, which is pure, so that most of the entries walked cost a byte read.
    if (pass.isDrained(fromNo)) continue;
    if (!pass.hardFitsNo(no, b.queue, x)) continue;
    const r = replacementOn(pass, fromNo);
    if (!r) continue;
    const from = pass.execs[fromNo] as ExecState;
    // Move the placed entry to x, then give its old slot on `from` to r.
    pass.move(k, x);
    pass.assign(r, from, pass.levelOf(r.task, from));
  }
  pass.examined += scanned;
}

/**
 * An unplaced task that is node-local on execs[fromNo] and may run there. After the node phase
 * most executors' hosts have nothing unplaced left, and the search asks about the same ones
 * again and again (each placed task of x's bucket names one): once take() has scanned nothing
 * on an executor's buckets, the executor is marked drained and never walked again in the pass,
 * which saves the loads of its objects and buckets (cache misses, most of the search's cost).
 */
function replacementOn(pass: Pass, fromNo: number): Entry | undefined {
  if (pass.isDrained(fromNo)) return undefined;
  const from = pass.execs[fromNo] as ExecState;
  const examined = pass.examined;
  const bs = pass.index.bucketsAtHost(from.host);
  for (let j = 0; j < bs.length; j++) {
    const b = bs[j] as Bucket;
    if (from.view.tenant !== undefined && b.queue.tenant !== from.view.tenant) continue;
    const e = pass.take(b, from, false);
    if (e) return e;
  }
  // take() adds what it scanned to `examined`: unchanged, no bucket had a live unplaced entry.
  if (examined === pass.examined) pass.markDrained(fromNo);
  return undefined;
}
