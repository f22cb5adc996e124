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
import { fits, type ResourceVector } from '../../core/resources.js';
import type { Bucket, Entry, PendingIndex, Queue } from './pending-index.js';
import { DrfSorter, type Sorter } from './sorter.js';
import type {
  ExecutorView, LocalityPolicy, PendingTask, PlacementOptions, Reason, ReasonCode, Snapshot,
} from './types.js';

/** One executor as the pass sees it. */
export interface ExecState {
  readonly view: ExecutorView;
  /** Slots still free in this pass. */
  free: number;
  /** How long its free slots have waited (ms): the idle-capacity side of delay scheduling. */
  readonly idleMs: number;
  readonly volumes: readonly string[];
  /** Got a task this pass (so it is not idle). */
  used: boolean;
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
}

/** An Assignment the pass may still move (augmentation); published as is in the Plan. */
export interface MutableAssignment {
  readonly taskId: string;
  readonly jobId: string;
  readonly tenant: string;
  executorId: string;
  hostname: string;
  level: LocalityLevel;
}

/** A decided assignment (mutable while the pass may still move it). */
export interface PassAssignment {
  readonly entry: Entry;
  exec: ExecState;
  level: LocalityLevel;
  /** The record the Plan publishes, built when the decision is made (no second walk over memory). */
  readonly out: MutableAssignment;
}

/** A candidate source of tasks for an executor: a queue and one of its buckets. */
export interface Candidate {
  readonly queue: Queue;
  readonly bucket: Bucket;
}

const EMPTY: readonly string[] = [];
/** How many fitting node-local candidates the node phase compares per slot. */
const SCARCITY_WINDOW = 4;

/** The overlay and helpers of one pass. */
export class Pass {
  readonly id: number;
  readonly now: number;
  readonly execs: ExecState[] = [];
  readonly tenants = new Map<string, TenantState>();
  readonly sorter: Sorter = new DrfSorter();
  /** Hosts and racks where a task could run at all right now (executor or usable offer): Spark's "alive" set. */
  readonly hostsAlive = new Set<string>();
  readonly racksAlive = new Set<string>();
  readonly jobRunning = new Map<string, number>();
  /** Free slots per host in this pass (the overlay the node phase reads to judge scarcity). */
  readonly hostFree = new Map<string, number>();
  readonly assignments: PassAssignment[] = [];
  readonly out: MutableAssignment[] = [];
  /** Volume-pinned tasks placed in this pass, by volume. */
  readonly placedVolume = new Map<string, number>();
  nodeLocal = 0;
  rackLocal = 0;
  readonly reasons: Reason[] = [];
  private readonly reasonFor = new Set<string>();
  examined = 0;
  private rankNames: readonly string[] = [];
  private readonly rank = new Map<string, number>();

  constructor(
    readonly snapshot: Snapshot,
    readonly index: PendingIndex,
    readonly opts: PlacementOptions,
  ) {
    this.id = index.beginPass();
    this.now = snapshot.now;
    const total = { cpus: 0, mem: 0, disk: 0 };
    for (const t of snapshot.tenants) {
      this.tenants.set(t.name, { name: t.name, weight: t.weight, quota: t.quota, usage: { ...t.usage }, placed: 0 });
      this.sorter.add(t.name, t.weight);
    }
    for (const name of index.tenantNames()) this.tenant(name);
    for (const e of snapshot.executors) {
      total.cpus += e.slotResources.cpus * e.slots;
      total.mem += e.slotResources.mem * e.slots;
      total.disk += e.slotResources.disk * e.slots;
      if (e.draining) continue;
      this.hostsAlive.add(e.hostname);
      if (e.rack !== undefined) this.racksAlive.add(e.rack);
      if (e.freeSlots > 0) this.hostFree.set(e.hostname, (this.hostFree.get(e.hostname) ?? 0) + e.freeSlots);
      this.execs.push({
        view: e,
        free: e.freeSlots,
        idleMs: e.freeSlots > 0 ? this.now - (e.freeSince ?? this.now) : 0,
        volumes: e.volumes ?? EMPTY,
        used: false,
      });
    }
    for (const o of snapshot.offers) {
      total.cpus += o.free.cpus;
      total.mem += o.free.mem;
      total.disk += o.free.disk;
      if (this.offerUsable(o.unavailability)) {
        this.hostsAlive.add(o.hostname);
        if (o.rack !== undefined) this.racksAlive.add(o.rack);
      }
    }
    // Shares are measured against everything Locus holds or is offered; usage is what tenants run.
    this.sorter.setTotal(total);
    for (const t of this.tenants.values()) this.sorter.allocated(t.name, t.usage);
    if (snapshot.runningByJob) for (const [j, n] of snapshot.runningByJob) this.jobRunning.set(j, n);
  }

  /** Whether an offer's agent may get a new executor (no maintenance soon). */
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
      t = { name, weight: 1, quota: undefined, usage: { cpus: 0, mem: 0, disk: 0 }, placed: 0 };
      this.tenants.set(name, t);
      this.sorter.add(name, 1);
    }
    return t;
  }

  /** The tenant's place in fair-share order (0 = least served). */
  rankOf(tenant: string): number {
    const names = this.sorter.sort();
    if (names !== this.rankNames) {
      this.rankNames = names;
      this.rank.clear();
      names.forEach((n, i) => this.rank.set(n, i));
    }
    return this.rank.get(tenant) ?? names.length;
  }

  /** Pending tasks not placed in this pass yet. */
  unplaced(): number {
    return this.index.size - this.assignments.length;
  }

  /** The least-served tenant that has pending work. */
  headTenant(): string | undefined {
    const names = this.sorter.sort();
    for (let i = 0; i < names.length; i++) if (this.index.hasTenant(names[i] as string)) return names[i];
    return undefined;
  }

  /** Whether queue a should be served before queue b: tenant share, then priority, then the job with fewer running tasks, then age. */
  before(a: Queue, b: Queue): boolean {
    if (a.tenant !== b.tenant) {
      const ra = this.rankOf(a.tenant);
      const rb = this.rankOf(b.tenant);
      if (ra !== rb) return ra < rb;
    }
    if (a.priority !== b.priority) return a.priority > b.priority;
    if (a.jobId !== b.jobId) {
      const na = this.jobRunning.get(a.jobId) ?? 0;
      const nb = this.jobRunning.get(b.jobId) ?? 0;
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
   */
  waitNeeded(t: PendingTask, level: LocalityLevel): number {
    if (level === LocalityLevel.NODE_LOCAL) return 0;
    if (t.preferredHosts.length === 0 && t.preferredRacks.length === 0) return 0;
    const p = this.policy(t);
    if (p.mode === 'node-only') return Infinity;
    // A task pinned to one hostname can run nowhere else: waiting for its data hosts is pointless.
    if (t.constraints?.some((c) => c.kind === 'hostname')) return 0;
    let need = 0;
    if (this.someHostUsable(t)) need += p.nodeWaitMs;
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
      if (t.avoidHosts?.includes(h)) continue;
      if (t.constraints?.some((c) => c.kind === 'hostname-not' && c.values.includes(h))) continue;
      return true;
    }
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

  /** Hard constraints: never relaxed, whatever the wait. */
  hardFits(t: PendingTask, x: ExecState): boolean {
    const v = x.view;
    if (v.tenant !== undefined && v.tenant !== t.tenant) return false;
    if (t.volumeId !== undefined && !x.volumes.includes(t.volumeId)) return false;
    if (!fits(t.resources, v.slotResources)) return false;
    // A task pinned to a volume can run on the volume's agent only: avoiding that host (after a
    // failure there) would leave it pending for ever while executors are launched for it and
    // given back; its retries still bound how often it fails there.
    if (t.avoidHosts !== undefined && t.volumeId === undefined && t.avoidHosts.includes(v.hostname)) return false;
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
   * Delay scheduling, bounded by idle capacity (Spark SPARK-18886): a task
   * may take a less local slot once that slot has been idle longer than the
   * task's wait for the level — capacity never sits idle for long waiting for
   * locality. The least-served tenant (`head`) may also go less local once the
   * task itself has waited that long, so a tenant whose data hosts are busy
   * still gets its share (Zaharia's delay scheduling for fairness).
   */
  allowed(t: PendingTask, level: LocalityLevel, x: ExecState, head: boolean): boolean {
    if (level === LocalityLevel.NODE_LOCAL) return true;
    const need = this.waitNeeded(t, level);
    if (need === 0) return true;
    if (x.idleMs >= need) return true;
    return head && this.now - t.pendingSince >= need;
  }

  /**
   * The first entry of `b` that may run on `x` now (hard constraints, quota,
   * delay rule), or undefined; with `scarce` (node phase) the one with the
   * fewest other free data hosts among the first few that may. Walks at most
   * scanLimit live candidates so a queue full of tasks that cannot run here
   * costs a bounded amount; a per-pass cursor skips entries already placed.
   */
  take(b: Bucket, x: ExecState, head: boolean, scarce = false): Entry | undefined {
    const items = b.items;
    let i: number;
    if (b.passId !== this.id) {
      b.passId = this.id;
      i = b.start();
    } else {
      i = b.cursor;
    }
    const id = this.id;
    while (i < items.length) {
      const e = items[i] as Entry;
      if (e.alive && e.mark !== id) break;
      i++;
    }
    b.cursor = i;
    let scanned = 0;
    const limit = this.opts.scanLimit;
    let pick: Entry | undefined;
    let pickAlt = Infinity;
    let valid = 0;
    for (; i < items.length && scanned < limit; i++) {
      const e = items[i] as Entry;
      if (!e.alive || e.mark === id) continue;
      scanned++;
      const t = e.task;
      if (!this.hardFits(t, x)) continue;
      const ts = this.tenant(t.tenant);
      if (!this.withinQuota(ts, t.resources)) {
        this.note(t, 'OVER_QUOTA', `tenant ${t.tenant} is at its quota`);
        continue;
      }
      const level = this.levelOf(t, x);
      if (!this.allowed(t, level, x, head)) {
        this.noteWaiting(t, level, x);
        continue;
      }
      if (!scarce) {
        this.examined += scanned;
        return e;
      }
      // Node phase: among the first few that fit, take the one with the fewest other free
      // data hosts left, so tasks that could still go elsewhere leave this slot to ones that cannot.
      const alt = this.alternatives(t, x.view.hostname);
      if (alt < pickAlt) {
        pick = e;
        pickAlt = alt;
        if (alt === 0) break;
      }
      if (++valid >= SCARCITY_WINDOW) break;
    }
    this.examined += scanned;
    return pick;
  }

  /** How many of t's other preferred hosts still have a free slot in this pass. */
  private alternatives(t: PendingTask, here: string): number {
    const hs = t.preferredHosts;
    let n = 0;
    for (let i = 0; i < hs.length; i++) {
      const h = hs[i] as string;
      if (h !== here && (this.hostFree.get(h) ?? 0) > 0) n++;
    }
    return n;
  }

  /** Book a slot of `x` for entry `e`. */
  assign(e: Entry, x: ExecState, level: LocalityLevel): void {
    const t = e.task;
    e.mark = this.id;
    e.assign = this.assignments.length;
    const out: MutableAssignment = {
      taskId: t.taskId, jobId: t.jobId, tenant: t.tenant, executorId: x.view.executorId, hostname: x.view.hostname, level,
    };
    this.assignments.push({ entry: e, exec: x, level, out });
    this.out.push(out);
    if (level === LocalityLevel.NODE_LOCAL) this.nodeLocal++;
    else if (level === LocalityLevel.RACK_LOCAL) this.rackLocal++;
    this.took(x);
    const ts = this.tenant(t.tenant);
    if (t.volumeId === undefined) ts.placed++;
    else this.placedVolume.set(t.volumeId, (this.placedVolume.get(t.volumeId) ?? 0) + 1);
    ts.usage.cpus += t.resources.cpus;
    ts.usage.mem += t.resources.mem;
    ts.usage.disk += t.resources.disk;
    this.sorter.allocated(t.tenant, t.resources);
    this.jobRunning.set(t.jobId, (this.jobRunning.get(t.jobId) ?? 0) + 1);
  }

  /** Book one slot of x (the overlay of free slots per executor and per host). */
  took(x: ExecState): void {
    x.free--;
    x.used = true;
    const h = x.view.hostname;
    this.hostFree.set(h, (this.hostFree.get(h) ?? 1) - 1);
  }

  /** Move a decided assignment to another executor (same level: augmentation keeps node-local). */
  move(a: PassAssignment, x: ExecState): void {
    this.gave(a.exec);
    this.took(x);
    a.exec = x;
    a.out.executorId = x.view.executorId;
    a.out.hostname = x.view.hostname;
  }

  /** Give one slot of x back (a placement moved away within the pass). */
  gave(x: ExecState): void {
    x.free++;
    const h = x.view.hostname;
    this.hostFree.set(h, (this.hostFree.get(h) ?? 0) + 1);
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
    const until = this.now + need - x.idleMs;
    this.note(t, 'WAITING_FOR_LOCALITY', `waiting for a slot on its data hosts until ${until}`, until);
  }
}
