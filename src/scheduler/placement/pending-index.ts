/**
 * The pending-task index, maintained incrementally by the coordinator (add a
 * task when it becomes pending, remove it when an attempt starts, is
 * cancelled, or the job ends) and read by every placement pass.
 *
 * Layout, after Spark's TaskSetManager: tasks are grouped into queues (one
 * per job and priority, in submission order), and each queue keeps buckets of
 * its tasks by preferred host, by preferred rack and by pinned volume, plus
 * one bucket of all its unpinned tasks. Globally, each host, rack and volume
 * maps to the queues that have tasks there, so answering "what could run on
 * this slot" is a few map lookups, never a scan of the pending set.
 *
 * Removal is eager for counters and lazy for arrays: a removed entry is only
 * marked dead and skipped (and its slot reclaimed) the next time a lookup
 * walks past it; a bucket whose live count reaches zero is dropped at once,
 * so memory follows the pending set.
 */
import type { ResourceVector } from '../../core/resources.js';
import type { PendingTask } from './types.js';

/** One task in the index; `mark`/`assign` are scratch of the pass that last touched it. */
export class Entry {
  alive = true;
  /** Id of the pass that placed it (0 = none). Placement is final only when the coordinator removes it. */
  mark = 0;
  /** Index of its assignment in that pass. */
  assign = -1;
  constructor(
    readonly task: PendingTask,
    readonly queue: Queue,
  ) {}
}

/** A FIFO of entries with lazy deletion; `cursor`/`passId` are per-pass scratch. */
export class Bucket {
  items: Entry[] = [];
  /** Entries before `head` are all dead. */
  head = 0;
  live = 0;
  bytes = 0;
  dead = 0;
  passId = 0;
  cursor = 0;

  push(e: Entry): void {
    this.items.push(e);
    this.live++;
    this.bytes += e.task.inputBytes ?? 0;
  }

  /** Account one removal; reclaim the array when dead entries dominate. */
  drop(e: Entry): void {
    this.live--;
    this.bytes -= e.task.inputBytes ?? 0;
    this.dead++;
    if (this.dead > 32 && this.dead > 2 * this.live) this.compact();
  }

  /** Skip dead entries at the head (persistently) and return the first index worth looking at. */
  start(): number {
    const items = this.items;
    let h = this.head;
    while (h < items.length && !(items[h] as Entry).alive) {
      h++;
      this.dead--;
    }
    this.head = h;
    return h;
  }

  private compact(): void {
    const kept: Entry[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const e = this.items[i] as Entry;
      if (e.alive) kept.push(e);
    }
    this.items = kept;
    this.head = 0;
    this.dead = 0;
    this.cursor = 0;
  }
}

/** The tasks of one job at one priority, in submission order. */
export class Queue {
  readonly hosts = new Map<string, Bucket>();
  readonly racks = new Map<string, Bucket>();
  readonly volumes = new Map<string, Bucket>();
  /** Every unpinned task (no volume, no hostname constraint). */
  readonly all = new Bucket();
  live = 0;
  /** Per-dimension maximum of its tasks' resources: the slot shape it needs. */
  maxResources: ResourceVector = { cpus: 0, mem: 0, disk: 0 };

  constructor(
    readonly key: string,
    readonly jobId: string,
    readonly tenant: string,
    readonly priority: number,
    /** Creation order, the last tie-break between queues. */
    readonly seq: number,
  ) {}
}

// The pinned hostname, if the task carries a `hostname` constraint: it can run nowhere else.
function pinnedHost(t: PendingTask): string | undefined {
  const cs = t.constraints;
  if (!cs) return undefined;
  for (const c of cs) if (c.kind === 'hostname') return c.equals;
  return undefined;
}

// Per host/rack/volume the queues are a small array, not a Set: usually one or two jobs have
// tasks on a host, and a Set costs several times an array's memory on 10,000 hosts.
function link(map: Map<string, Queue[]>, key: string, q: Queue): void {
  const list = map.get(key);
  if (!list) map.set(key, [q]);
  else if (!list.includes(q)) list.push(q);
}

function unlink(map: Map<string, Queue[]>, key: string, q: Queue): void {
  const list = map.get(key);
  if (!list) return;
  const i = list.indexOf(q);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) map.delete(key);
}

const EMPTY_QUEUES: readonly Queue[] = [];

/** The incrementally maintained index of pending tasks. */
export class PendingIndex {
  private readonly entries = new Map<string, Entry>();
  private readonly queues = new Map<string, Queue>();
  private readonly byHost = new Map<string, Queue[]>();
  private readonly byRack = new Map<string, Queue[]>();
  private readonly byVolume = new Map<string, Queue[]>();
  private readonly byTenant = new Map<string, Queue[]>();
  private queueSeq = 0;
  private passSeq = 0;

  /** How many tasks are pending. */
  get size(): number {
    return this.entries.size;
  }

  /** Whether the task is pending. */
  has(taskId: string): boolean {
    return this.entries.has(taskId);
  }

  /** The pending task, if any. */
  get(taskId: string): PendingTask | undefined {
    return this.entries.get(taskId)?.task;
  }

  /** Add a pending task; a task already present is replaced (same as update). */
  add(task: PendingTask): void {
    if (this.entries.has(task.taskId)) this.remove(task.taskId);
    const q = this.queueFor(task);
    const e = new Entry(task, q);
    this.entries.set(task.taskId, e);
    q.live++;
    const r = task.resources;
    const m = q.maxResources;
    if (r.cpus > m.cpus || r.mem > m.mem || r.disk > m.disk) {
      q.maxResources = { cpus: Math.max(m.cpus, r.cpus), mem: Math.max(m.mem, r.mem), disk: Math.max(m.disk, r.disk) };
    }
    if (task.volumeId !== undefined) {
      this.bucket(q.volumes, this.byVolume, task.volumeId, q).push(e);
      return;
    }
    const pin = pinnedHost(task);
    if (pin !== undefined) {
      this.bucket(q.hosts, this.byHost, pin, q).push(e);
      return;
    }
    // Duplicates in a preference list would count a task twice in one bucket.
    const hs = task.preferredHosts;
    for (let i = 0; i < hs.length; i++) {
      const h = hs[i] as string;
      if (hs.indexOf(h) === i) this.bucket(q.hosts, this.byHost, h, q).push(e);
    }
    const rs = task.preferredRacks;
    for (let i = 0; i < rs.length; i++) {
      const r2 = rs[i] as string;
      if (rs.indexOf(r2) === i) this.bucket(q.racks, this.byRack, r2, q).push(e);
    }
    q.all.push(e);
  }

  /** Replace a pending task's description (priority, preferences, avoid hosts...). */
  update(task: PendingTask): void {
    this.add(task);
  }

  /** Remove a task (started, cancelled, job gone). Returns it, or undefined if it was not pending. */
  remove(taskId: string): PendingTask | undefined {
    const e = this.entries.get(taskId);
    if (!e) return undefined;
    this.entries.delete(taskId);
    e.alive = false;
    const q = e.queue;
    const task = e.task;
    if (task.volumeId !== undefined) {
      this.release(q.volumes, this.byVolume, task.volumeId, q, e);
    } else {
      const pin = pinnedHost(task);
      if (pin !== undefined) {
        this.release(q.hosts, this.byHost, pin, q, e);
      } else {
        const hs = task.preferredHosts;
        for (let i = 0; i < hs.length; i++) if (hs.indexOf(hs[i] as string) === i) this.release(q.hosts, this.byHost, hs[i] as string, q, e);
        const rs = task.preferredRacks;
        for (let i = 0; i < rs.length; i++) if (rs.indexOf(rs[i] as string) === i) this.release(q.racks, this.byRack, rs[i] as string, q, e);
        q.all.drop(e);
      }
    }
    q.live--;
    if (q.live === 0) this.dropQueue(q);
    return task;
  }

  /** Remove every pending task of a job (cancel). Returns how many were removed. */
  removeJob(jobId: string): number {
    let n = 0;
    for (const q of [...this.queues.values()]) {
      if (q.jobId !== jobId) continue;
      const ids: string[] = [];
      const collect = (b: Bucket): void => {
        for (let i = b.head; i < b.items.length; i++) {
          const e = b.items[i] as Entry;
          if (e.alive) ids.push(e.task.taskId);
        }
      };
      collect(q.all);
      for (const b of q.hosts.values()) collect(b);
      for (const b of q.volumes.values()) collect(b);
      for (const id of new Set(ids)) if (this.remove(id)) n++;
    }
    return n;
  }

  /** Every pending task (for explain and tests; O(n)). */
  *tasks(): IterableIterator<PendingTask> {
    for (const e of this.entries.values()) yield e.task;
  }

  // ---- read access for the pass (same package) ----

  /** @internal A fresh pass id: scratch marks of earlier passes become stale at once. */
  beginPass(): number {
    return ++this.passSeq;
  }

  /** @internal The entry of a task. */
  entry(taskId: string): Entry | undefined {
    return this.entries.get(taskId);
  }

  /** @internal Queues with tasks preferring (or pinned to) a host. */
  queuesAtHost(host: string): readonly Queue[] {
    return this.byHost.get(host) ?? EMPTY_QUEUES;
  }

  /** @internal Queues with tasks preferring a rack. */
  queuesAtRack(rack: string): readonly Queue[] {
    return this.byRack.get(rack) ?? EMPTY_QUEUES;
  }

  /** @internal Queues with tasks pinned to a volume. */
  queuesWithVolume(volumeId: string): readonly Queue[] {
    return this.byVolume.get(volumeId) ?? EMPTY_QUEUES;
  }

  /** @internal Volumes some pending task is pinned to. */
  pinnedVolumes(): IterableIterator<string> {
    return this.byVolume.keys();
  }

  /** @internal A tenant's queues, highest priority first, then oldest. */
  queuesOfTenant(tenant: string): readonly Queue[] {
    return this.byTenant.get(tenant) ?? [];
  }

  /** @internal Whether a tenant has pending tasks. */
  hasTenant(tenant: string): boolean {
    return this.byTenant.has(tenant);
  }

  /** @internal How many tenants have pending tasks. */
  tenantCount(): number {
    return this.byTenant.size;
  }

  /** @internal Tenants with pending tasks. */
  tenantNames(): IterableIterator<string> {
    return this.byTenant.keys();
  }

  private queueFor(task: PendingTask): Queue {
    const key = `${task.jobId}\u0000${task.priority}`;
    let q = this.queues.get(key);
    if (q) return q;
    q = new Queue(key, task.jobId, task.tenant, task.priority, ++this.queueSeq);
    this.queues.set(key, q);
    let list = this.byTenant.get(task.tenant);
    if (!list) {
      list = [];
      this.byTenant.set(task.tenant, list);
    }
    // Keep the tenant's queues ordered: priority first, then age.
    let i = list.length;
    while (i > 0 && (list[i - 1] as Queue).priority < q.priority) i--;
    list.splice(i, 0, q);
    return q;
  }

  private bucket(map: Map<string, Bucket>, global: Map<string, Queue[]>, key: string, q: Queue): Bucket {
    let b = map.get(key);
    if (!b) {
      b = new Bucket();
      map.set(key, b);
      link(global, key, q);
    }
    return b;
  }

  private release(map: Map<string, Bucket>, global: Map<string, Queue[]>, key: string, q: Queue, e: Entry): void {
    const b = map.get(key);
    if (!b) return;
    b.drop(e);
    if (b.live === 0) {
      map.delete(key);
      unlink(global, key, q);
    }
  }

  private dropQueue(q: Queue): void {
    this.queues.delete(q.key);
    const list = this.byTenant.get(q.tenant);
    if (list) {
      const i = list.indexOf(q);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byTenant.delete(q.tenant);
    }
  }
}
