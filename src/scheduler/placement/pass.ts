/**
 * The state of one placement pass and its small single-purpose checks.
 *
 * A pass never mutates the snapshot. What it has decided so far lives in an
 * overlay (free slots per executor, usage per tenant, running tasks per job,
 * marks on index entries), so a slot or an offer is never booked twice
 * within one pass — the same idea as Nomad's EvalContext.ProposedAllocs.
 *
 * Checks run cheapest and hardest first: hard constraints (dedication,
 * volume, resources, attributes, hostnames, avoided hosts), then quota, then
 * locality (the delay rule); fairness decides between candidates that pass.
 */
import { LocalityLevel } from '../../core/locality.js';
import { add, fits, type ResourceVector } from '../../core/resources.js';
import { DEAD, MORE_HOSTS, PLAIN, type Bucket, type Entry, type PendingIndex, type Queue } from './pending-index.js';
import { DrfSorter, type Sorter } from './sorter.js';
import type {
  AssignmentColumns, ExecutorView, LocalityPolicy, OfferView, PendingTask, PlacementOptions, Reason, ReasonCode, Snapshot,
} from './types.js';

/** One executor as the pass sees it. */
export interface ExecState {
  readonly view: ExecutorView;
  /**
   * Places task placement may still fill in this pass: the dispatch window's share of the free
   * slots, or the free slots and the executor's prefetch room (`ahead`), filled slots first.
   */
  free: number;
  /** Free slots the dispatch window holds back: free for executor growth and release, not for tasks. */
  readonly held: number;
  /** Of `free` at the start of the pass, the places beyond the free slots (prefetch): never room for more executors' work. */
  readonly ahead: number;
  /** How long its free slots have waited (ms): the idle-capacity side of delay scheduling. */
  readonly idleMs: number;
  readonly volumes: readonly string[];
  /** Got a task this pass (so it is not idle). */
  used: boolean;
  /** Its host's interned id in the pending index, -1 when no pending task names that host. */
  readonly host: number;
  /** Its index in Pass.execs. */
  readonly no: number;
}

/**
 * Free slots an executor has left after this pass's tasks (held ones included): what executor
 * growth and release go by. Tasks fill the free slots before the prefetch room, so the room
 * left beyond `ahead` is real slots.
 */
export function slotsLeft(x: ExecState): number {
  return Math.max(0, x.free - x.ahead) + x.held;
}

/** One tenant as the pass sees it (usage includes this pass's assignments). */
export interface TenantState {
  readonly name: string;
  readonly weight: number;
  readonly quota: Partial<ResourceVector> | undefined;
  /** Updated in place on every placement (no allocation per placement). */
  readonly usage: { cpus: number; mem: number; disk: number };
  /** Tasks without a volume placed for it in this pass. */
  placed: number;
  /** Charged in this pass and not yet told to the sorter (see Pass.settle). */
  readonly owed: { cpus: number; mem: number; disk: number };
}

/** One job as the pass sees it. */
export interface JobState {
  /** Its running tasks, this pass's assignments included (fairness between one tenant's jobs). */
  running: number;
}

/**
 * A pass's assignments as the Plan publishes them: the columns the pass
 * wrote (entry, executor, level), each field derived on read. It holds the
 * entries, not their tasks' ids, so nothing is copied per placement, and it
 * stays valid after the coordinator removes the placed tasks from the index.
 */
class PlacedColumns implements AssignmentColumns {
  // Private (#) so that comparing two Plans (deep equality in tests and tools) compares their
  // `assignments`, not these buffers, whose spare capacity and entries' pass marks differ.
  readonly #entries: readonly Entry[];
  readonly #exec: Int32Array;
  readonly #levels: Uint8Array;
  readonly #execs: readonly ExecState[];

  constructor(entries: readonly Entry[], exec: Int32Array, levels: Uint8Array, execs: readonly ExecState[], readonly length: number) {
    this.#entries = entries;
    this.#exec = exec;
    this.#levels = levels;
    this.#execs = execs;
  }

  taskId(k: number): string {
    return this.#entryAt(k).taskId;
  }

  jobId(k: number): string {
    return this.#entryAt(k).task.jobId;
  }

  tenant(k: number): string {
    return this.#entryAt(k).task.tenant;
  }

  executorId(k: number): string {
    return this.#execAt(k).view.executorId;
  }

  hostname(k: number): string {
    return this.#execAt(k).view.hostname;
  }

  level(k: number): LocalityLevel {
    this.#check(k);
    return this.#levels[k] as LocalityLevel;
  }

  #entryAt(k: number): Entry {
    this.#check(k);
    return this.#entries[k] as Entry;
  }

  #execAt(k: number): ExecState {
    this.#check(k);
    return this.#execs[this.#exec[k] as number] as ExecState;
  }

  // The columns are sized before the pass and may be longer than `length`: reading past it is a bug.
  #check(k: number): void {
    if (!(k >= 0 && k < this.length)) throw new RangeError(`assignment ${k} of ${this.length}`);
  }
}

/**
 * Whether an offer's agent could get an executor that runs the task: the task's constraints
 * allow the agent and the offer holds the task plus an executor's overhead. Avoided hosts are
 * left to the caller.
 */
export function offerCouldRun(t: PendingTask, o: OfferView, opts: PlacementOptions): boolean {
  for (const c of t.constraints ?? []) {
    if (c.kind === 'hostname' && o.hostname !== c.equals) return false;
    if (c.kind === 'hostname-not' && c.values.includes(o.hostname)) return false;
    if (c.kind === 'attribute' && o.attributes?.[c.attribute] !== c.equals) return false;
  }
  return fits(add(t.resources, opts.executorOverhead), o.free);
}

const EMPTY: readonly string[] = [];

/**
 * One executor's state at the start of a pass. A function of its own, not code in the Pass
 * constructor's loop: called for every executor, it is compiled within the first pass and that
 * code serves every later one, where the loop of a constructor called once a pass was compiled
 * on the fly (on-stack) in each pass anew, and ran interpreted until then.
 */
function execState(e: ExecutorView, free: number, host: number, no: number, now: number): ExecState {
  return {
    view: e,
    free,
    held: Math.max(0, e.freeSlots - free),
    ahead: Math.max(0, free - e.freeSlots),
    idleMs: e.freeSlots > 0 ? now - (e.freeSince ?? now) : 0,
    volumes: e.volumes ?? EMPTY,
    used: false,
    host,
    no,
  };
}
/** How many fitting node-local candidates the node phase compares per slot. */
const SCARCITY_WINDOW = 4;

/** The overlay and helpers of one pass. */
export class Pass {
  readonly id: number;
  readonly now: number;
  readonly execs: ExecState[] = [];
  readonly tenants = new Map<string, TenantState>();
  readonly sorter: Sorter = new DrfSorter();
  /** Racks where a task could run at all right now (executor or usable offer): Spark's "alive" set. */
  readonly racksAlive = new Set<string>();
  private aliveHosts: Set<string> | undefined;
  /** hostsAlive by interned host id (1 = alive), for the checks made per task. */
  private readonly hostAliveById: Uint8Array;
  /** Free slots per interned host id in this pass (the overlay the node phase reads to judge scarcity). */
  private readonly hostFree: Int32Array;
  /**
   * Each executor's interned host id, by its index in execs: the augmenting search checks where
   * a placed task went without loading that executor's objects (a cache miss each, for
   * placements it mostly passes over).
   */
  private readonly execHost: Int32Array;
  /** Executors (by index in execs) found to have no unplaced task left on their host's buckets. */
  private readonly drained: Uint8Array;
  private readonly jobs = new Map<string, JobState>();
  // The assignments in decision order, as columns (PendingIndex.assigns maps an entry number to
  // its k): the entry number placed, its executor (index in execs) and level. Sized once, before
  // placing, to the most a pass can place (free slots, pending tasks), so a placement writes
  // three slots, allocates nothing and reads no entry object.
  private asgNo: Int32Array;
  private asgExec: Int32Array;
  private asgLevel: Uint8Array;
  private count = 0;
  /** Volume-pinned tasks placed in this pass, by volume. */
  readonly placedVolume = new Map<string, number>();
  nodeLocal = 0;
  rackLocal = 0;
  readonly reasons: Reason[] = [];
  private readonly reasonFor = new Set<string>();
  examined = 0;
  /** The locality level of the entry the last take() returned. */
  takenLevel: LocalityLevel = LocalityLevel.ANY;
  private rankNames: readonly string[] = [];
  private readonly rank = new Map<string, number>();
  /**
   * With one tenant pending, fair-share order cannot change a decision (it
   * only ranks queues of different tenants), so charges are summed per
   * tenant and given to the sorter once (settle) instead of on every
   * placement. With several, every placement re-ranks at once, as before.
   */
  private readonly deferShares: boolean;
  private owing = false;
  private flags = new Uint8Array(16);
  /** avoidanceWaived's verdicts in this pass, per task. */
  private readonly waived = new Map<PendingTask, boolean>();
  // fillFrom's cached verdicts (see there), grown on demand and reused for every executor.
  private cPos = new Int32Array(64);
  private cAlt = new Int32Array(64);
  private cLevel = new Uint8Array(64);
  private cTaken = new Uint8Array(64);
  // The index's entry columns (see PendingIndex): nothing adds to the index during a pass, so
  // they cannot be replaced under it.
  private readonly cols: Int32Array;
  private readonly marks: Uint8Array;
  /** What `marks` holds for an entry this pass placed (PendingIndex.passTag). */
  private readonly tag: number;
  private readonly assigns: Int32Array;
  private readonly entryFlags: Uint8Array;

  constructor(
    readonly snapshot: Snapshot,
    readonly index: PendingIndex,
    readonly opts: PlacementOptions,
  ) {
    this.id = index.beginPass();
    this.tag = index.passTag;
    this.now = snapshot.now;
    this.cols = index.cols;
    this.marks = index.marks;
    this.assigns = index.assigns;
    this.entryFlags = index.flags;
    this.deferShares = index.tenantCount() < 2;
    const hostIds = index.hostIdLimit();
    this.hostAliveById = new Uint8Array(hostIds);
    this.hostFree = new Int32Array(hostIds);
    const total = { cpus: 0, mem: 0, disk: 0 };
    for (const t of snapshot.tenants) {
      this.tenants.set(t.name, { name: t.name, weight: t.weight, quota: t.quota, usage: { ...t.usage }, placed: 0, owed: { cpus: 0, mem: 0, disk: 0 } });
      this.sorter.add(t.name, t.weight);
    }
    // Every queue gets this pass's tenant and job state now, once, not on first use in the hot
    // paths: there the first use of a queue in a pass was a branch the previous pass had run only
    // once, and V8 compiled it without feedback and threw the compiled node phase away at the start
    // of every later pass (a deoptimization per pass, then the phase interpreted until recompiled).
    for (const name of index.tenantNames()) {
      const ts = this.tenant(name);
      for (const q of index.queuesOfTenant(name)) {
        q.passTenant = ts;
        q.passJob = this.job(q.jobId);
      }
    }
    // Indexed loops and no call that can be skipped, here and in the other loops a pass makes once
    // over all executors or placements: each runs once a pass, so in a fresh process (or on new
    // code) it runs in the interpreter until V8 compiles it on the fly, where an iterator step or
    // a call costs several times the work of the loop's body (10,000 executors, 100,000 placements).
    const gone = snapshot.goneVolumes !== undefined && snapshot.goneVolumes.size > 0;
    const views = snapshot.executors;
    let lastRack: string | undefined;
    for (let i = 0; i < views.length; i++) {
      const e = views[i] as ExecutorView;
      total.cpus += e.slotResources.cpus * e.slots;
      total.mem += e.slotResources.mem * e.slots;
      total.disk += e.slotResources.disk * e.slots;
      // An executor holding a volume being deleted takes nothing new, whatever the task: it is
      // released once idle (executor placement), and only then can the volume be torn down.
      if (e.draining === true || (gone && this.holdsGone(e))) continue;
      const host = index.hostId(e.hostname);
      const free = Math.max(0, e.dispatchSlots ?? e.freeSlots);
      if (host >= 0) {
        this.hostAliveById[host] = 1;
        if (free > 0) this.hostFree[host] = (this.hostFree[host] as number) + free;
      }
      // Executors come rack by rack as a rule: the set is asked only when the rack changes.
      if (e.rack !== undefined && e.rack !== lastRack) {
        this.racksAlive.add(e.rack);
        lastRack = e.rack;
      }
      this.execs.push(execState(e, free, host, this.execs.length, this.now));
    }
    this.execHost = new Int32Array(this.execs.length);
    this.drained = new Uint8Array(this.execs.length);
    let slots = 0;
    for (let i = 0; i < this.execs.length; i++) {
      const x = this.execs[i] as ExecState;
      this.execHost[i] = x.host;
      slots += Math.max(0, x.free);
    }
    const cap = Math.min(slots, index.size);
    this.asgNo = new Int32Array(cap);
    this.asgExec = new Int32Array(cap);
    this.asgLevel = new Uint8Array(cap);
    for (const o of snapshot.offers) {
      total.cpus += o.free.cpus;
      total.mem += o.free.mem;
      total.disk += o.free.disk;
      if (this.offerUsable(o.unavailability)) {
        const host = index.hostId(o.hostname);
        if (host >= 0) this.hostAliveById[host] = 1;
        if (o.rack !== undefined) this.racksAlive.add(o.rack);
      }
    }
    // Shares are measured against everything Locus holds or is offered; usage is what tenants run.
    this.sorter.setTotal(total);
    for (const t of this.tenants.values()) this.sorter.allocated(t.name, t.usage);
  }

  /**
   * Hosts where a task could run at all right now (executor or usable offer),
   * by name. Built on first use: only tasks that are not plain ask by name
   * (plain ones use hostAliveById), and a set of 10,000 names cost every
   * pass some 5% whether anything read it or not.
   */
  get hostsAlive(): ReadonlySet<string> {
    let s = this.aliveHosts;
    if (s === undefined) {
      s = new Set<string>();
      for (const e of this.snapshot.executors) if (!e.draining) s.add(e.hostname);
      for (const o of this.snapshot.offers) if (this.offerUsable(o.unavailability)) s.add(o.hostname);
      this.aliveHosts = s;
    }
    return s;
  }

  /** Whether an offer's agent may get a new executor (no maintenance soon). */
  /** Whether a volume's delete was asked for (or done): nothing new starts for it. */
  volumeGone(volumeId: string): boolean {
    return this.snapshot.goneVolumes?.has(volumeId) === true;
  }

  /** Whether an executor holds a volume being deleted. */
  holdsGone(e: ExecutorView): boolean {
    const gone = this.snapshot.goneVolumes;
    return gone !== undefined && gone.size > 0 && (e.volumes?.some((v) => gone.has(v)) ?? false);
  }

  offerUsable(u: { readonly start: number; readonly durationMs?: number } | undefined): boolean {
    if (!u) return true;
    const end = u.durationMs === undefined ? Infinity : u.start + u.durationMs;
    if (end <= this.now) return true;
    return u.start - this.now > this.opts.maintenanceHorizonMs;
  }

  /** The tenant's state, created with weight 1 and no quota when the snapshot does not name it. */
  tenant(name: string): TenantState {
    let t = this.tenants.get(name);
    if (!t) {
      t = { name, weight: 1, quota: undefined, usage: { cpus: 0, mem: 0, disk: 0 }, placed: 0, owed: { cpus: 0, mem: 0, disk: 0 } };
      this.tenants.set(name, t);
      this.sorter.add(name, 1);
    }
    return t;
  }

  /** A job's state in this pass. */
  job(jobId: string): JobState {
    let j = this.jobs.get(jobId);
    if (!j) {
      j = { running: this.snapshot.runningByJob?.get(jobId) ?? 0 };
      this.jobs.set(jobId, j);
    }
    return j;
  }

  /** Give the sorter what single-tenant placements charged (before anything reads the order). */
  settle(): void {
    if (!this.owing) return;
    this.owing = false;
    for (const t of this.tenants.values()) {
      const o = t.owed;
      if (o.cpus === 0 && o.mem === 0 && o.disk === 0) continue;
      this.sorter.allocated(t.name, o);
      o.cpus = 0;
      o.mem = 0;
      o.disk = 0;
    }
  }

  /** The tenant's place in fair-share order (0 = least served). */
  rankOf(tenant: string): number {
    this.settle();
    const names = this.sorter.sort();
    if (names !== this.rankNames) {
      this.rankNames = names;
      this.rank.clear();
      names.forEach((n, i) => this.rank.set(n, i));
    }
    return this.rank.get(tenant) ?? names.length;
  }

  /** How many assignments this pass has made. */
  get placed(): number {
    return this.count;
  }

  /** Pending tasks not placed in this pass yet. */
  unplaced(): number {
    return this.index.size - this.count;
  }

  /** The entry of assignment k (k < placed). */
  entryAt(k: number): Entry {
    return this.index.entryAt(this.asgNo[k] as number);
  }

  /** The index of entry no's assignment in this pass, -1 if this pass has not placed it. */
  placedAt(no: number): number {
    return this.marks[no] === this.tag ? (this.assigns[no] as number) : -1;
  }

  /** The executor assignment k went to. */
  execOf(k: number): ExecState | undefined {
    return k >= 0 && k < this.count ? this.execs[this.asgExec[k] as number] : undefined;
  }

  /** The index in execs of the executor assignment k (k < placed) went to. */
  execNoAt(k: number): number {
    return this.asgExec[k] as number;
  }

  /** The interned host id of execs[i] (-1 when no pending task names its host). */
  hostOfExec(i: number): number {
    return this.execHost[i] as number;
  }

  /** Whether execs[i] was marked drained (see markDrained). */
  isDrained(i: number): boolean {
    return this.drained[i] === 1;
  }

  /**
   * Mark execs[i] as having no unplaced task left in its host's buckets: take() scanned none
   * there. Tasks are never unplaced within a pass, so it stays so: a caller may skip the
   * buckets from then on (skipping them changes nothing, `examined` included).
   */
  markDrained(i: number): void {
    this.drained[i] = 1;
  }

  /** The level of assignment k. */
  levelAt(k: number): LocalityLevel | undefined {
    return k >= 0 && k < this.count ? (this.asgLevel[k] as LocalityLevel) : undefined;
  }

  /**
   * The assignments as the Plan publishes them. Entry numbers become entries
   * here, in one loop after the pass: a number may name another task once the
   * coordinator has removed this one, and the loads of this loop, independent
   * of each other, overlap where the same loads inside the placement logic
   * would each stall it.
   */
  columns(): AssignmentColumns {
    const n = this.count;
    const entries = new Array<Entry>(n);
    const nos = this.asgNo;
    const byNo = this.index.byNo;
    for (let k = 0; k < n; k++) entries[k] = byNo[nos[k] as number] as Entry;
    return new PlacedColumns(entries, this.asgExec, this.asgLevel, this.execs, n);
  }

  /** The least-served tenant that has pending work. */
  headTenant(): string | undefined {
    this.settle();
    const names = this.sorter.sort();
    for (let i = 0; i < names.length; i++) if (this.index.hasTenant(names[i] as string)) return names[i];
    return undefined;
  }

  /** Whether queue a should be served before queue b: tenant share, then priority, then the job with fewer running tasks, then age. */
  before(a: Queue, b: Queue): boolean {
    if (a === b) return false;
    if (a.tenant !== b.tenant) {
      const ra = this.rankOf(a.tenant);
      const rb = this.rankOf(b.tenant);
      if (ra !== rb) return ra < rb;
    }
    if (a.priority !== b.priority) return a.priority > b.priority;
    if (a.jobId !== b.jobId) {
      const na = (a.passJob as JobState).running;
      const nb = (b.passJob as JobState).running;
      if (na !== nb) return na < nb;
    }
    return a.seq < b.seq;
  }

  /** Whether a tenant may run a task of size r without passing its quota. */
  withinQuota(t: TenantState, r: ResourceVector): boolean {
    const q = t.quota;
    if (!q) return true;
    const u = t.usage;
    if (q.cpus !== undefined && u.cpus + r.cpus > q.cpus + 1e-9) return false;
    if (q.mem !== undefined && u.mem + r.mem > q.mem + 1e-9) return false;
    if (q.disk !== undefined && u.disk + r.disk > q.disk + 1e-9) return false;
    return true;
  }

  /** The locality policy that applies to a task. */
  policy(t: PendingTask): LocalityPolicy {
    return t.locality ?? this.opts.defaultLocality;
  }

  /**
   * How long a task must have waited before it may run at `level`, or
   * Infinity if never. Levels with nothing alive in them are skipped (Spark
   * SPARK-4939): if no preferred host has an executor or an offer, waiting
   * for node locality could never pay off, so that wait counts zero.
   * `e`, the task's index entry when the caller has it, lets a plain task's
   * hosts be checked by id.
   */
  waitNeeded(t: PendingTask, level: LocalityLevel, e?: Entry): number {
    if (level === LocalityLevel.NODE_LOCAL) return 0;
    if (t.preferredHosts.length === 0 && t.preferredRacks.length === 0) return 0;
    // A task pinned to one hostname can run nowhere else: waiting for its data hosts is pointless,
    // and `node-only` cannot keep it from the one host it may use (asked first: node-only would
    // otherwise leave a task pinned away from its data pending for ever).
    if (t.constraints?.some((c) => c.kind === 'hostname')) return 0;
    const p = this.policy(t);
    if (p.mode === 'node-only') return Infinity;
    let need = 0;
    if (t.awaitDataHosts === true || (e !== undefined && e.plain ? this.someHostAlive(e) : this.someHostUsable(t))) need += p.nodeWaitMs;
    if (level === LocalityLevel.ANY) {
      const rs = t.preferredRacks;
      for (let i = 0; i < rs.length; i++) {
        if (this.racksAlive.has(rs[i] as string)) {
          need += p.rackWaitMs;
          break;
        }
      }
    }
    return need;
  }

  /** Whether some preferred host is alive and not ruled out for this task (avoided or excluded). */
  someHostUsable(t: PendingTask): boolean {
    const hs = t.preferredHosts;
    for (let i = 0; i < hs.length; i++) {
      const h = hs[i] as string;
      if (!this.hostsAlive.has(h)) continue;
      if (t.avoidHosts?.includes(h) && !this.avoidanceWaived(t)) continue;
      if (t.constraints?.some((c) => c.kind === 'hostname-not' && c.values.includes(h))) continue;
      return true;
    }
    return false;
  }

  // someHostUsable for a plain entry (nothing avoided or excluded), by id.
  private someHostAlive(e: Entry): boolean {
    const alive = this.hostAliveById;
    for (let k = 0; k < e.hostCount; k++) if (alive[this.index.hostOf(e, k)] === 1) return true;
    return false;
  }

  /** The locality a task gets on an executor. */
  levelOf(t: PendingTask, x: ExecState): LocalityLevel {
    if (t.volumeId !== undefined) return LocalityLevel.NODE_LOCAL;
    const v = x.view;
    if (t.preferredHosts.includes(v.hostname)) return LocalityLevel.NODE_LOCAL;
    if (v.rack !== undefined && t.preferredRacks.includes(v.rack)) return LocalityLevel.RACK_LOCAL;
    return LocalityLevel.ANY;
  }

  // levelOf for an index entry: its interned hosts against the executor's host id.
  private levelOfEntry(e: Entry, x: ExecState): LocalityLevel {
    const t = e.task;
    if (t.volumeId !== undefined) return LocalityLevel.NODE_LOCAL;
    if (this.index.prefers(e, x.host)) return LocalityLevel.NODE_LOCAL;
    const rack = x.view.rack;
    if (rack !== undefined && t.preferredRacks.includes(rack)) return LocalityLevel.RACK_LOCAL;
    return LocalityLevel.ANY;
  }

  /**
   * Hard constraints: never relaxed, whatever the wait. Avoided hosts are the one exception,
   * and only when nothing else could run the task (see avoidanceWaived).
   */
  hardFits(t: PendingTask, x: ExecState): boolean {
    if (!this.fitsBesidesAvoidance(t, x)) return false;
    // A task pinned to a volume can run on the volume's agent only: avoiding that host (after a
    // failure there) would leave it pending for ever while executors are launched for it and
    // given back; its retries still bound how often it fails there.
    const avoid = t.avoidHosts;
    if (avoid !== undefined && t.volumeId === undefined && avoid.includes(x.view.hostname) && !this.avoidanceWaived(t)) return false;
    return true;
  }

  /**
   * Whether a task's avoided hosts are usable after all in this pass: no live host it does not
   * avoid could run it (no executor there passes its other hard checks, no usable offer there
   * could hold an executor for it). Avoidance steers a task away from hosts that failed it or
   * lost its outputs; it must never leave a task pending for ever. Failed hosts pile up (a
   * reader's failures, a job's twice-failed hosts, lost output hosts), and with few live hosts
   * a task could come to avoid every one of them: it then runs on one it avoids, its retries
   * still bounding how often it fails (Spark excludes executors and nodes, but never lets the
   * exclusion strand a task set while it can get new executors). Computed once per task and
   * pass: the snapshot does not change within a pass.
   */
  avoidanceWaived(t: PendingTask): boolean {
    const avoid = t.avoidHosts;
    if (avoid === undefined || avoid.length === 0 || t.volumeId !== undefined) return false;
    let waived = this.waived.get(t);
    if (waived === undefined) {
      waived = !this.execs.some((x) => !avoid.includes(x.view.hostname) && this.fitsBesidesAvoidance(t, x))
        && !this.snapshot.offers.some((o) => !avoid.includes(o.hostname) && this.offerUsable(o.unavailability) && offerCouldRun(t, o, this.opts));
      this.waived.set(t, waived);
    }
    return waived;
  }

  // hardFits without the avoided-hosts check: tenant, volume, slot size, constraints.
  private fitsBesidesAvoidance(t: PendingTask, x: ExecState): boolean {
    const v = x.view;
    if (v.tenant !== undefined && v.tenant !== t.tenant) return false;
    if (t.volumeId !== undefined && !x.volumes.includes(t.volumeId)) return false;
    if (!fits(t.resources, v.slotResources)) return false;
    return this.constraintsAllow(t, x);
  }

  /** Whether a task's constraints (hostname, attributes) allow x's host, whatever its slots. */
  constraintsAllow(t: PendingTask, x: ExecState): boolean {
    const v = x.view;
    const cs = t.constraints;
    if (cs !== undefined) {
      for (const c of cs) {
        if (c.kind === 'hostname') {
          if (v.hostname !== c.equals) return false;
        } else if (c.kind === 'hostname-not') {
          if (c.values.includes(v.hostname)) return false;
        } else if (v.attributes?.[c.attribute] !== c.equals) {
          return false;
        }
      }
    }
    return true;
  }

  /**
   * hardFits for entry number `no` of queue `q`: a plain task of a queue whose
   * largest task fits x's slot, on an executor serving its tenant, passes
   * without its entry or task being read (nothing else can rule it out).
   */
  hardFitsNo(no: number, q: Queue, x: ExecState): boolean {
    const v = x.view;
    if (((this.entryFlags[no] as number) & PLAIN) !== 0 && (v.tenant === undefined || v.tenant === q.tenant)
      && fits(q.maxResources, v.slotResources)) return true;
    return this.hardFits(this.index.entryAt(no).task, x);
  }

  /**
   * Delay scheduling, bounded by idle capacity (Spark SPARK-18886): a task
   * may take a less local slot once that slot has been idle longer than the
   * task's wait for the level — capacity never sits idle for long waiting for
   * locality. The least-served tenant (`head`) may also go less local once the
   * task itself has waited that long, so a tenant whose data hosts are busy
   * still gets its share (Zaharia's delay scheduling for fairness).
   */
  allowed(t: PendingTask, level: LocalityLevel, x: ExecState, head: boolean, e?: Entry): boolean {
    if (level === LocalityLevel.NODE_LOCAL) return true;
    const need = this.waitNeeded(t, level, e);
    if (need === 0) return true;
    // A task whose last attempt could not read its input from another host waits for its data's
    // hosts for its own wait, whatever idles elsewhere: an idle slot elsewhere is no capacity for
    // it (it would fail there again), and its own wait bounds the delay (a data host may never
    // come back), whichever tenant is served first.
    if (t.awaitDataHosts === true) return this.now - t.pendingSince >= need;
    if (x.idleMs >= need) return true;
    return head && this.now - t.pendingSince >= need;
  }

  /**
   * The first entry of `b` that may run on `x` now (hard constraints, quota,
   * delay rule), or undefined; with `scarce` (node phase) the one with the
   * fewest other free data hosts among the first few that may. Walks at most
   * scanLimit live candidates so a queue full of tasks that cannot run here
   * costs a bounded amount; a per-pass cursor skips entries already placed.
   * The level the returned entry gets on x is left in `takenLevel`.
   */
  take(b: Bucket, x: ExecState, head: boolean, scarce = false): Entry | undefined {
    const items = b.items;
    const marks = this.marks;
    const flags = this.entryFlags;
    let i: number;
    if (b.passId !== this.id) {
      b.passId = this.id;
      i = b.start(marks);
    } else {
      i = b.cursor;
    }
    const tag = this.tag;
    // Entries placed in this pass or removed are skipped by their number alone (see PendingIndex).
    while (i < items.length) {
      const m = marks[items[i] as number];
      if (m !== tag && m !== DEAD) break;
      i++;
    }
    b.cursor = i;
    const q = b.queue;
    const v = x.view;
    // What holds for every plain task of the bucket is checked once, not per task: the executor
    // serves their tenant, the tenant has no quota, the queue's largest task fits the slot. A plain
    // task then passes every hard check, and in a bucket of x's own host it is node-local.
    const easy = (q.passTenant as TenantState).quota === undefined && (v.tenant === undefined || v.tenant === q.tenant)
      && fits(q.maxResources, v.slotResources);
    const local = easy && b.host >= 0 && b.host === x.host;
    let scanned = 0;
    const limit = this.opts.scanLimit;
    let pick = -1;
    let pickAlt = Infinity;
    let pickLevel: LocalityLevel = LocalityLevel.ANY;
    let valid = 0;
    for (; i < items.length && scanned < limit; i++) {
      const no = items[i] as number;
      const m = marks[no];
      if (m === tag || m === DEAD) continue;
      scanned++;
      let level: LocalityLevel;
      const plain = ((flags[no] as number) & PLAIN) !== 0;
      if (local && plain) {
        level = LocalityLevel.NODE_LOCAL;
      } else {
        const e = this.index.entryAt(no);
        const t = e.task;
        if (!easy || !plain) {
          if (!this.hardFits(t, x)) continue;
          if (!this.withinQuota(this.tenant(t.tenant), t.resources)) {
            this.note(t, 'OVER_QUOTA', `tenant ${t.tenant} is at its quota`);
            continue;
          }
        }
        level = this.levelOfEntry(e, x);
        if (!this.allowed(t, level, x, head, e)) {
          this.noteWaiting(t, level, x);
          continue;
        }
      }
      if (!scarce) {
        this.examined += scanned;
        this.takenLevel = level;
        return this.index.entryAt(no);
      }
      // Node phase: among the first few that fit, take the one with the fewest other free
      // data hosts left, so tasks that could still go elsewhere leave this slot to ones that cannot.
      const alt = this.alternatives(no, x.host);
      if (alt < pickAlt) {
        pick = no;
        pickAlt = alt;
        pickLevel = level;
        if (alt === 0) break;
      }
      if (++valid >= SCARCITY_WINDOW) break;
    }
    this.examined += scanned;
    this.takenLevel = pickLevel;
    return pick < 0 ? undefined : this.index.entryAt(pick);
  }

  /**
   * The node phase for one executor and one bucket: exactly what
   * `while (x.free > 0) { e = take(b, x, false, true); if (!e) break; assign(e, x, takenLevel) }`
   * does, without judging the same entries again for every slot. While x's
   * slots are filled, nothing a judgement reads changes: hard constraints,
   * locality and delay depend on x alone, other hosts' free slots only move
   * when another executor takes work, and without a quota no placement can
   * make a fitting task unfit. So each entry is judged once, its verdict
   * cached in scratch arrays, and every slot replays take()'s scan (the same
   * scan limit, the same window, the same tie-breaks, the same `examined`)
   * over the cached verdicts. A quota anywhere in reach falls back to take().
   */
  fillFrom(b: Bucket, x: ExecState): void {
    const q = b.queue;
    const v = x.view;
    const easy = (q.passTenant as TenantState).quota === undefined && (v.tenant === undefined || v.tenant === q.tenant)
      && fits(q.maxResources, v.slotResources);
    if (!easy) {
      this.fillBySlot(b, x);
      return;
    }
    const local = b.host >= 0 && b.host === x.host;
    const items = b.items;
    const marks = this.marks;
    const flags = this.entryFlags;
    const id = this.id;
    const tag = this.tag;
    let next: number;
    if (b.passId !== id) {
      b.passId = id;
      next = b.start(marks);
    } else {
      next = b.cursor;
    }
    while (next < items.length) {
      const m = marks[items[next] as number];
      if (m !== tag && m !== DEAD) break;
      next++;
    }
    b.cursor = next;
    const limit = this.opts.scanLimit;
    // Cached verdicts, in scan order: item position, alternatives (-1: may not run here), level, taken.
    let m = 0;
    while (x.free > 0) {
      let scanned = 0;
      let valid = 0;
      let pick = -1;
      let pickAlt = Infinity;
      for (let k = 0; scanned < limit; k++) {
        if (k === m) {
          while (next < items.length) {
            const mk = marks[items[next] as number];
            if (mk !== tag && mk !== DEAD) break;
            next++;
          }
          if (next >= items.length) break;
          const no = items[next] as number;
          if (((flags[no] as number) & PLAIN) === 0 && this.tenant(this.index.entryAt(no).task.tenant).quota !== undefined) {
            // A task of another tenant with a quota: its verdict can change as this fill places work.
            this.fillBySlot(b, x);
            return;
          }
          this.grow(m + 1);
          this.cPos[m] = next++;
          this.cAlt[m] = this.judge(no, x, local);
          this.cLevel[m] = this.takenLevel;
          this.cTaken[m] = 0;
          m++;
        } else if (this.cTaken[k] === 1) {
          continue;
        }
        scanned++;
        const alt = this.cAlt[k] as number;
        if (alt < 0) continue;
        if (alt < pickAlt) {
          pick = k;
          pickAlt = alt;
          if (alt === 0) break;
        }
        if (++valid >= SCARCITY_WINDOW) break;
      }
      this.examined += scanned;
      if (pick < 0) break;
      this.cTaken[pick] = 1;
      this.assignNo(items[this.cPos[pick] as number] as number, q, x, this.cLevel[pick] as LocalityLevel);
    }
    // Leave the cursor at the first entry this fill did not place (one it judged and left, or the
    // first it never reached): everything before it is placed, which take() would otherwise walk
    // past again, mark by mark, each time the augmenting search asks this host for a replacement
    // (some 9,000 walks of a bucket each at 10,000 x 100,000).
    let cursor = next;
    for (let k = 0; k < m; k++) {
      if (this.cTaken[k] === 0) {
        cursor = this.cPos[k] as number;
        break;
      }
    }
    b.cursor = cursor;
  }

  // The per-slot node phase (take() for every slot).
  private fillBySlot(b: Bucket, x: ExecState): void {
    while (x.free > 0) {
      const e = this.take(b, x, false, true);
      if (!e) return;
      this.assign(e, x, this.takenLevel);
    }
  }

  // take()'s verdict on one entry for x in the node phase, on an `easy` bucket: its alternatives
  // if it may run on x now (level left in takenLevel), else -1 (its reason noted as take() does).
  private judge(no: number, x: ExecState, local: boolean): number {
    const plain = ((this.entryFlags[no] as number) & PLAIN) !== 0;
    if (local && plain) {
      this.takenLevel = LocalityLevel.NODE_LOCAL;
      return this.alternatives(no, x.host);
    }
    const e = this.index.entryAt(no);
    const t = e.task;
    if (!plain) {
      if (!this.hardFits(t, x)) return -1;
      if (!this.withinQuota(this.tenant(t.tenant), t.resources)) {
        this.note(t, 'OVER_QUOTA', `tenant ${t.tenant} is at its quota`);
        return -1;
      }
    }
    const level = this.levelOfEntry(e, x);
    if (!this.allowed(t, level, x, false, e)) {
      this.noteWaiting(t, level, x);
      return -1;
    }
    this.takenLevel = level;
    return this.alternatives(no, x.host);
  }

  private grow(n: number): void {
    if (this.cPos.length >= n) return;
    const size = Math.max(n, 2 * this.cPos.length);
    const pos = new Int32Array(size);
    pos.set(this.cPos);
    this.cPos = pos;
    const alt = new Int32Array(size);
    alt.set(this.cAlt);
    this.cAlt = alt;
    const level = new Uint8Array(size);
    level.set(this.cLevel);
    this.cLevel = level;
    const taken = new Uint8Array(size);
    taken.set(this.cTaken);
    this.cTaken = taken;
  }

  /** How many of entry no's other preferred hosts still have a free slot in this pass. */
  private alternatives(no: number, here: number): number {
    const free = this.hostFree;
    const cols = this.cols;
    let n = 0;
    const h0 = cols[3 * no] as number;
    if (h0 >= 0 && h0 !== here && (free[h0] as number) > 0) n++;
    const h1 = cols[3 * no + 1] as number;
    if (h1 >= 0 && h1 !== here && (free[h1] as number) > 0) n++;
    const h2 = cols[3 * no + 2] as number;
    if (h2 >= 0 && h2 !== here && (free[h2] as number) > 0) n++;
    if (((this.entryFlags[no] as number) & MORE_HOSTS) !== 0) {
      const more = this.index.entryAt(no).more;
      for (let i = 0; i < more.length; i++) {
        const h = more[i] as number;
        if (h !== here && (free[h] as number) > 0) n++;
      }
    }
    return n;
  }

  /** Book a slot of `x` for entry `e`. */
  assign(e: Entry, x: ExecState, level: LocalityLevel): void {
    this.assignNo(e.no, e.queue, x, level);
  }

  /**
   * Book a slot of `x` for entry number `no` of queue `q`. A plain task of a
   * queue whose tasks share one resources object is booked from the columns
   * and the queue alone: its entry object, a cache miss per placement, is
   * not read.
   */
  assignNo(no: number, q: Queue, x: ExecState, level: LocalityLevel): void {
    const k = this.count;
    if (k === this.asgExec.length) this.growColumns();
    this.marks[no] = this.tag;
    this.assigns[no] = k;
    this.asgNo[k] = no;
    this.asgExec[k] = x.no;
    this.asgLevel[k] = level;
    this.count = k + 1;
    if (level === LocalityLevel.NODE_LOCAL) this.nodeLocal++;
    else if (level === LocalityLevel.RACK_LOCAL) this.rackLocal++;
    this.took(x);
    let r: ResourceVector;
    let ts: TenantState;
    if (((this.entryFlags[no] as number) & PLAIN) !== 0) {
      // A plain task has its queue's job and tenant and no volume.
      r = q.sameResources ?? this.index.entryAt(no).resources;
      ts = q.passTenant as TenantState;
      ts.placed++;
    } else {
      const e = this.index.entryAt(no);
      r = e.resources;
      const t = e.task;
      ts = t.tenant === q.tenant ? (q.passTenant as TenantState) : this.tenant(t.tenant);
      if (t.volumeId === undefined) ts.placed++;
      else this.placedVolume.set(t.volumeId, (this.placedVolume.get(t.volumeId) ?? 0) + 1);
    }
    ts.usage.cpus += r.cpus;
    ts.usage.mem += r.mem;
    ts.usage.disk += r.disk;
    if (this.deferShares) {
      const o = ts.owed;
      o.cpus += r.cpus;
      o.mem += r.mem;
      o.disk += r.disk;
      this.owing = true;
    } else {
      this.sorter.allocated(ts.name, r);
    }
    (q.passJob as JobState).running++;
  }

  // Placements never outnumber the free slots the columns were sized to; a guard, not a path.
  private growColumns(): void {
    const size = Math.max(16, 2 * this.asgExec.length);
    const exec = new Int32Array(size);
    exec.set(this.asgExec);
    this.asgExec = exec;
    const level = new Uint8Array(size);
    level.set(this.asgLevel);
    this.asgLevel = level;
    const nos = new Int32Array(size);
    nos.set(this.asgNo);
    this.asgNo = nos;
  }

  /** Book one slot of x (the overlay of free slots per executor and per host). */
  took(x: ExecState): void {
    x.free--;
    x.used = true;
    if (x.host >= 0) this.hostFree[x.host] = (this.hostFree[x.host] as number) - 1;
  }

  /** Move decided assignment k to another executor (same level: augmentation keeps node-local). */
  move(k: number, x: ExecState): void {
    this.gave(this.execs[this.asgExec[k] as number] as ExecState);
    this.took(x);
    this.asgExec[k] = x.no;
  }

  /** Give one slot of x back (a placement moved away within the pass). */
  gave(x: ExecState): void {
    x.free++;
    if (x.host >= 0) this.hostFree[x.host] = (this.hostFree[x.host] as number) + 1;
  }

  /** A zeroed scratch array of at least n flags (reused between calls; one user at a time). */
  scratchFlags(n: number): Uint8Array {
    if (this.flags.length < n) this.flags = new Uint8Array(Math.max(n, 2 * this.flags.length));
    else this.flags.fill(0, 0, n);
    return this.flags;
  }

  /** Keep a coded reason for a task left pending (first reason per task, bounded). */
  note(t: PendingTask, code: ReasonCode, message: string, until?: number): void {
    if (this.reasons.length >= this.opts.explainLimit || this.reasonFor.has(t.taskId)) return;
    this.reasonFor.add(t.taskId);
    this.reasons.push(until === undefined ? { taskId: t.taskId, code, message } : { taskId: t.taskId, code, message, until });
  }

  private noteWaiting(t: PendingTask, level: LocalityLevel, x: ExecState): void {
    if (this.reasons.length >= this.opts.explainLimit || this.reasonFor.has(t.taskId)) return;
    const need = this.waitNeeded(t, level);
    if (need === Infinity) {
      this.note(t, 'NODE_ONLY', 'the job runs node-local only and no slot on its data hosts is free');
      return;
    }
    if (t.awaitDataHosts === true) {
      // It waits its own wait, whatever idles (allowed).
      const until = t.pendingSince + need;
      this.note(t, 'WAITING_FOR_LOCALITY', awaitingDataMessage(t, until), until);
      return;
    }
    const until = this.now + need - x.idleMs;
    this.note(t, 'WAITING_FOR_LOCALITY', `waiting for a slot on its data hosts until ${until}`, until);
  }
}

/** Why a task whose last attempt could not read its input elsewhere waits (passes and explain say the same). */
export function awaitingDataMessage(t: PendingTask, until: number): string {
  return `its last attempt could not read its input from the host it ran on: waiting for a slot on its data hosts (${t.preferredHosts.join(', ')}) until ${until}, then a less local slot`;
}
