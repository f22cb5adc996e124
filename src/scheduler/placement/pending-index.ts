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
 *
 * Hostnames are interned: each host some pending task names gets a small
 * integer id, reference-counted by the tasks that name it and recycled when
 * the last one goes. A pass then keeps its per-host state (free slots, alive)
 * in typed arrays indexed by id and compares ids instead of looking strings
 * up in maps — the difference between a few and a few dozen nanoseconds per
 * placement, which is most of a pass at a hundred thousand placements.
 *
 * Entries are numbered, and buckets hold entry numbers, not entries. What a
 * pass reads for every entry it walks past (placed or removed, plain, first
 * three host ids) sits in index-wide typed arrays indexed by number: walking a
 * bucket then reads one byte of a small dense array per entry (its mark)
 * instead of a scattered object, which a profile showed was a cache miss per
 * entry and a quarter of a pass (each task sits in three host buckets, so a
 * pass walks three entries per placement). A removed entry's number is recycled only after a sweep
 * has compacted every bucket, so no bucket can hold a number that names a
 * newer task.
 */
import type { ResourceVector } from '../../core/resources.js';
import type { JobState, TenantState } from './pass.js';
import type { PendingTask } from './types.js';

const NO_IDS: readonly number[] = [];

/** An entry number's mark once its task was removed (pass tags are 1..MAX_TAG; 0 = not placed). */
export const DEAD = 255;
// Pass tags cycle through 1..MAX_TAG; when they wrap, every stale tag is cleared (see beginPass).
const MAX_TAG = 254;
/** Entry flag: a plain task (Entry.plain). */
export const PLAIN = 1;
/** Entry flag: more than three preferred hosts (the rest are in Entry.more). */
export const MORE_HOSTS = 2;

/**
 * One task in the index. Its pass scratch (mark, assignment) and the fields a
 * pass reads for every entry it walks past are in the index's columns, by `no`.
 */
export class Entry {
  /**
   * Interned ids of its preferred hosts past the third. The first three are in
   * the index's `cols` only (PendingIndex.hostOf): a copy here cost 12 bytes a
   * pending task, and every reader has the index at hand.
   */
  readonly more: readonly number[];
  /** How many distinct preferred hosts it has. */
  readonly hostCount: number;
  /** task.taskId and task.resources, copied so a pass placing a plain task never reads the task object. */
  readonly taskId: string;
  readonly resources: ResourceVector;

  constructor(
    /** Its number: its place in the index's columns, and what buckets hold. */
    readonly no: number,
    readonly task: PendingTask,
    readonly queue: Queue,
    hosts: readonly number[],
    /** Interned id of the host a `hostname` constraint pins it to, or -1. */
    readonly pin: number,
    /**
     * No volume, no constraints, no avoided hosts, and its queue's tenant:
     * only its size, that tenant's quota and locality decide where it may
     * run. Most tasks are plain, and a pass checks them with ids alone.
     */
    readonly plain: boolean,
  ) {
    this.more = hosts.length > 3 ? hosts.slice(3) : NO_IDS;
    this.hostCount = hosts.length;
    this.taskId = task.taskId;
    this.resources = task.resources;
  }
}

/** A FIFO of entry numbers with lazy deletion; `cursor`/`passId` are per-pass scratch. */
export class Bucket {
  /** Entry numbers, in submission order (small integers: V8 keeps them unboxed, 8 bytes each). */
  items: number[] = [];
  /** Entries before `head` are all dead. */
  head = 0;
  live = 0;
  bytes = 0;
  dead = 0;
  passId = 0;
  cursor = 0;

  constructor(
    /** The queue whose tasks it holds. */
    readonly queue: Queue,
    /** The interned host id for a host bucket, -1 for rack, volume and `all` buckets. */
    readonly host = -1,
    /** A host bucket of tasks pinned to that host (a `hostname` constraint), not preferring it. */
    readonly pinned = false,
  ) {}

  push(e: Entry): void {
    // A bucket's first entry gets an array of exactly one slot: V8 grows an empty array to 16
    // slots on its first push, and on a large cluster most host and rack buckets hold one task
    // (10,000 agents, 10,000 tasks: some 60 bytes a bucket, 300 a task, for nothing).
    if (this.items.length === 0) this.items = [e.no];
    else this.items.push(e.no);
    this.live++;
    this.bytes += e.task.inputBytes ?? 0;
  }

  /** Account one removal (its mark already DEAD in `marks`); reclaim the array when dead entries dominate. */
  drop(e: Entry, marks: Uint8Array): void {
    this.live--;
    this.bytes -= e.task.inputBytes ?? 0;
    this.dead++;
    if (this.dead > 32 && this.dead > 2 * this.live) this.compact(marks);
  }

  /** Skip dead entries at the head (persistently) and return the first index worth looking at. */
  start(marks: Uint8Array): number {
    const items = this.items;
    let h = this.head;
    while (h < items.length && marks[items[h] as number] === DEAD) {
      h++;
      this.dead--;
    }
    this.head = h;
    return h;
  }

  /** Keep the live entries only (PendingIndex.sweep relies on this leaving no dead number behind). */
  compact(marks: Uint8Array): void {
    this.items = liveItems(this.items, this.head, marks);
    this.head = 0;
    this.dead = 0;
    this.cursor = 0;
  }
}

/**
 * The entries of `items` from `head` on that are not DEAD. A function of its own, not a loop in
 * Bucket.compact: V8 compiled that loop on-stack (OSR) during its first long call, before the
 * stores after it had ever run, and every later call entered the same code and deoptimized at
 * those stores ("insufficient type feedback"): 210 deoptimizations in each 10,000 x 100,000 run
 * of bench:placement.
 */
function liveItems(items: readonly number[], head: number, marks: Uint8Array): number[] {
  const kept: number[] = [];
  for (let i = head; i < items.length; i++) {
    const no = items[i] as number;
    if (marks[no] !== DEAD) kept.push(no);
  }
  return kept;
}

/** The tasks of one job at one priority, in submission order. */
export class Queue {
  /** Its unpinned tasks preferring each host. */
  readonly hosts = new Map<string, Bucket>();
  /** Its tasks pinned to each host by a `hostname` constraint: they can run nowhere else. */
  readonly pins = new Map<string, Bucket>();
  readonly racks = new Map<string, Bucket>();
  readonly volumes = new Map<string, Bucket>();
  /** Every unpinned task (no volume, no hostname constraint). */
  readonly all: Bucket = new Bucket(this);
  live = 0;
  /** Its unpinned tasks that wait for their data's hosts (PendingTask.awaitDataHosts). */
  awaiting = 0;
  /**
   * The resources object all its tasks share (the job spec gives them one),
   * undefined once two differ: a pass then books a placement without reading
   * the task's entry.
   */
  sameResources: ResourceVector | undefined = undefined;
  /** Per-dimension maximum of its tasks' resources: the slot shape it needs. */
  maxResources: ResourceVector = { cpus: 0, mem: 0, disk: 0 };
  /**
   * @internal Its tenant's state in the current pass (saves a map lookup per placement). Set for
   * every queue when a pass begins (Pass's constructor): nothing adds to the index during a pass.
   */
  passTenant: TenantState | undefined = undefined;
  /** @internal Its job's state in the current pass (set with passTenant). */
  passJob: JobState | undefined = undefined;

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
const EMPTY_BUCKETS: readonly Bucket[] = [];
// The bucket list of a host with none yet; never pushed to (hostBucket replaces it).
const NO_BUCKETS: Bucket[] = [];

/** The incrementally maintained index of pending tasks. */
export class PendingIndex {
  private readonly entries = new Map<string, Entry>();
  private readonly queues = new Map<string, Queue>();
  private readonly byRack = new Map<string, Queue[]>();
  private readonly byVolume = new Map<string, Queue[]>();
  private readonly byTenant = new Map<string, Queue[]>();
  // Interned hosts: name → id, id → name, how many live tasks name it, ids free for reuse.
  private readonly hostIds = new Map<string, number>();
  private readonly hostNames: string[] = [];
  private readonly hostRefs: number[] = [];
  private readonly freeHostIds: number[] = [];
  /** Per host id, the host buckets (of every queue) of tasks preferring or pinned to it. */
  private readonly hostBuckets: Bucket[][] = [];
  /** Per host id, how many pending tasks are pinned to it (0 or absent: none). */
  private readonly pinnedAt: number[] = [];
  /** How many pending tasks are pinned to a host. */
  private pinnedTotal = 0;
  private queueSeq = 0;
  private passSeq = 0;
  /** @internal The current pass's tag: what `marks` holds for an entry that pass placed. */
  passTag = 0;
  // The queue of the last add: a job's tasks arrive together, so this saves building a key per task.
  private lastQueue: Queue | undefined;
  // Entry numbers: the next never used, those free for reuse, and those removed since the last
  // sweep (still possibly named by a bucket, so not reusable yet).
  private nextNo = 0;
  private readonly freeNos: number[] = [];
  private readonly removedNos: number[] = [];
  /** @internal The entry of each number (undefined when the number is not in use). */
  readonly byNo: (Entry | undefined)[] = [];
  /**
   * @internal Per entry number, one byte: its mark. The tag of the pass that
   * placed it (a placement is final only when the coordinator removes the
   * task), 0 = not placed, DEAD once removed. A pass reads the mark of every
   * entry it walks past (each task sits in three host buckets, so some three
   * hundred thousand reads per hundred thousand placements, in random order):
   * one byte an entry keeps the array small enough (100 kB at 100,000 tasks) to
   * stay in the core's cache. Kept among the host ids (16 bytes an entry,
   * 1.6 MB), these reads were the top lines of a pass's profile; the host ids
   * are now read only for the entries a pass judges.
   * A pass tag is one byte too: tags cycle, and beginPass clears the stale ones
   * when they wrap, so a tag found in `marks` was always written by the
   * current pass.
   */
  marks = new Uint8Array(256);
  /**
   * @internal Per entry number, three slots at 3·no: its first three host ids
   * (-1 when fewer), read when a pass judges an entry.
   */
  cols = new Int32Array(3 * 256);
  /** @internal Per entry number: its assignment's index in the pass that placed it. */
  assigns = new Int32Array(256);
  /** @internal Per entry number: PLAIN and MORE_HOSTS. */
  flags = new Uint8Array(256);

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
    // Duplicates in a preference list would count a task twice in one bucket.
    const hs = task.preferredHosts;
    let ids = NO_IDS;
    if (hs.length > 0) {
      const own: number[] = [];
      for (let i = 0; i < hs.length; i++) {
        const h = hs[i] as string;
        if (hs.indexOf(h) === i) own.push(this.intern(h));
      }
      ids = own;
    }
    const pinName = pinnedHost(task);
    const pin = pinName === undefined ? -1 : this.intern(pinName);
    const plain = task.volumeId === undefined && (task.constraints?.length ?? 0) === 0 && (task.avoidHosts?.length ?? 0) === 0
      && task.tenant === q.tenant;
    const no = this.number();
    const e = new Entry(no, task, q, ids, pin, plain);
    this.byNo[no] = e;
    this.assigns[no] = -1;
    this.flags[no] = (plain ? PLAIN : 0) | (ids.length > 3 ? MORE_HOSTS : 0);
    this.marks[no] = 0;
    const cols = this.cols;
    cols[3 * no] = ids[0] ?? -1;
    cols[3 * no + 1] = ids[1] ?? -1;
    cols[3 * no + 2] = ids[2] ?? -1;
    this.entries.set(task.taskId, e);
    const r = task.resources;
    // A queue's first task sets it (a queue is dropped when its last task goes, never refilled).
    if (q.live === 0) q.sameResources = r;
    else if (q.sameResources !== r) q.sameResources = undefined;
    q.live++;
    const m = q.maxResources;
    if (r.cpus > m.cpus || r.mem > m.mem || r.disk > m.disk) {
      q.maxResources = { cpus: Math.max(m.cpus, r.cpus), mem: Math.max(m.mem, r.mem), disk: Math.max(m.disk, r.disk) };
    }
    if (task.volumeId !== undefined) {
      this.bucket(q.volumes, this.byVolume, task.volumeId, q).push(e);
      return;
    }
    if (pin >= 0) {
      this.hostBucket(q, pin, true).push(e);
      this.pinnedAt[pin] = (this.pinnedAt[pin] ?? 0) + 1;
      this.pinnedTotal++;
      return;
    }
    if (task.awaitDataHosts === true && ids.length > 0) q.awaiting++;
    for (let i = 0; i < ids.length; i++) this.hostBucket(q, ids[i] as number).push(e);
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
    this.marks[e.no] = DEAD;
    this.byNo[e.no] = undefined;
    const q = e.queue;
    const task = e.task;
    if (task.volumeId !== undefined) {
      this.release(q.volumes, this.byVolume, task.volumeId, q, e);
    } else if (e.pin >= 0) {
      this.releaseHost(q, e.pin, e, true);
      this.pinnedAt[e.pin] = (this.pinnedAt[e.pin] ?? 1) - 1;
      this.pinnedTotal--;
    } else {
      if (task.awaitDataHosts === true && e.hostCount > 0) q.awaiting--;
      for (let k = 0; k < e.hostCount; k++) this.releaseHost(q, this.hostOf(e, k), e);
      const rs = task.preferredRacks;
      for (let i = 0; i < rs.length; i++) if (rs.indexOf(rs[i] as string) === i) this.release(q.racks, this.byRack, rs[i] as string, q, e);
      q.all.drop(e, this.marks);
    }
    // Names last: the buckets above are found by name.
    for (let k = 0; k < e.hostCount; k++) this.unintern(this.hostOf(e, k));
    if (e.pin >= 0) this.unintern(e.pin);
    q.live--;
    if (q.live === 0) this.dropQueue(q);
    this.removedNos.push(e.no);
    // Amortised: a sweep walks every bucket once per (at least) as many removals as tasks pending.
    if (this.removedNos.length > 1024 && this.removedNos.length > this.entries.size) this.sweep();
    return task;
  }

  // A number for a new entry: a recycled one, else the next, growing the columns (doubling).
  private number(): number {
    const free = this.freeNos.pop();
    if (free !== undefined) return free;
    const no = this.nextNo++;
    if (no >= this.assigns.length) {
      const size = 2 * this.assigns.length;
      const cols = new Int32Array(3 * size);
      cols.set(this.cols);
      this.cols = cols;
      const marks = new Uint8Array(size);
      marks.set(this.marks);
      this.marks = marks;
      const assigns = new Int32Array(size);
      assigns.set(this.assigns);
      this.assigns = assigns;
      const flags = new Uint8Array(size);
      flags.set(this.flags);
      this.flags = flags;
    }
    return no;
  }

  /**
   * Compact every bucket, so none holds a removed entry's number any more,
   * then make those numbers reusable. Until then a removed number stays DEAD:
   * a bucket walking past it must never find a newer task under it.
   */
  private sweep(): void {
    const marks = this.marks;
    for (const q of this.queues.values()) {
      q.all.compact(marks);
      for (const b of q.hosts.values()) b.compact(marks);
      for (const b of q.pins.values()) b.compact(marks);
      for (const b of q.racks.values()) b.compact(marks);
      for (const b of q.volumes.values()) b.compact(marks);
    }
    for (let i = 0; i < this.removedNos.length; i++) this.freeNos.push(this.removedNos[i] as number);
    this.removedNos.length = 0;
  }

  /** Remove every pending task of a job (cancel). Returns how many were removed. */
  removeJob(jobId: string): number {
    let n = 0;
    for (const q of [...this.queues.values()]) {
      if (q.jobId !== jobId) continue;
      const ids: string[] = [];
      const collect = (b: Bucket): void => {
        for (let i = b.head; i < b.items.length; i++) {
          const e = this.byNo[b.items[i] as number];
          if (e !== undefined) ids.push(e.task.taskId);
        }
      };
      collect(q.all);
      for (const b of q.hosts.values()) collect(b);
      for (const b of q.pins.values()) collect(b);
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
    const id = ++this.passSeq;
    const tag = ((id - 1) % MAX_TAG) + 1;
    if (tag === 1 && id > 1) {
      // The tags wrapped: forget every earlier pass's (once per MAX_TAG passes, so amortised).
      const marks = this.marks;
      for (let no = 0; no < this.nextNo; no++) if (marks[no] !== DEAD) marks[no] = 0;
    }
    this.passTag = tag;
    return id;
  }

  /** @internal The entry of a task. */
  entry(taskId: string): Entry | undefined {
    return this.entries.get(taskId);
  }

  /** @internal Whether entry number no names a pending task (false once removed). */
  alive(no: number): boolean {
    return this.marks[no] !== DEAD;
  }

  /** @internal The k-th distinct preferred host id of a live entry (k < e.hostCount). */
  hostOf(e: Entry, k: number): number {
    return k < 3 ? (this.cols[3 * e.no + k] as number) : (e.more[k - 3] as number);
  }

  /** @internal Whether host id h is one of a live entry's preferred hosts. */
  prefers(e: Entry, h: number): boolean {
    if (h < 0) return false;
    const cols = this.cols;
    const at = 3 * e.no;
    return h === cols[at] || h === cols[at + 1] || h === cols[at + 2] || (e.more.length > 0 && e.more.includes(h));
  }

  /** @internal The entry of a live entry number (one a bucket holds and `marks` does not call DEAD). */
  entryAt(no: number): Entry {
    return this.byNo[no] as Entry;
  }

  /** @internal The interned id of a host some pending task names, or -1 (no pending task names it). */
  hostId(host: string): number {
    return this.hostIds.get(host) ?? -1;
  }

  /** @internal One more than the largest host id in use: the length of a pass's per-host arrays. */
  hostIdLimit(): number {
    return this.hostNames.length;
  }

  /** @internal The host buckets of every queue for one interned host id. */
  bucketsAtHost(id: number): readonly Bucket[] {
    return id < 0 ? EMPTY_BUCKETS : (this.hostBuckets[id] ?? EMPTY_BUCKETS);
  }

  /** @internal Whether some pending task is pinned to a host (by a `hostname` constraint). */
  hasPinned(): boolean {
    return this.pinnedTotal > 0;
  }

  /** @internal Whether some pending task is pinned to the host with this interned id. */
  hasPinnedAt(id: number): boolean {
    return id >= 0 && (this.pinnedAt[id] ?? 0) > 0;
  }

  /** @internal Queues with tasks preferring (or pinned to) a host, each once. */
  queuesAtHost(host: string): readonly Queue[] {
    const bs = this.bucketsAtHost(this.hostId(host));
    return bs.length === 0 ? EMPTY_QUEUES : [...new Set(bs.map((b) => b.queue))];
  }

  /** @internal Queues with tasks preferring a rack. */
  queuesAtRack(rack: string): readonly Queue[] {
    return this.byRack.get(rack) ?? EMPTY_QUEUES;
  }

  /** @internal Queues with tasks pinned to a volume. */
  queuesWithVolume(volumeId: string): readonly Queue[] {
    return this.byVolume.get(volumeId) ?? EMPTY_QUEUES;
  }

  /** Jobs with tasks pinned to a volume waiting here, with how many (what a delete of the volume would strand). */
  jobsPinnedTo(volumeId: string): { jobId: string; tasks: number }[] {
    const byJob = new Map<string, number>();
    for (const q of this.queuesWithVolume(volumeId)) {
      const n = q.volumes.get(volumeId)?.live ?? 0;
      if (n > 0) byJob.set(q.jobId, (byJob.get(q.jobId) ?? 0) + n);
    }
    return [...byJob].map(([jobId, tasks]) => ({ jobId, tasks }));
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

  private intern(host: string): number {
    let id = this.hostIds.get(host);
    if (id === undefined) {
      id = this.freeHostIds.pop() ?? this.hostNames.length;
      this.hostIds.set(host, id);
      this.hostNames[id] = host;
      this.hostRefs[id] = 0;
      this.hostBuckets[id] = NO_BUCKETS;
    }
    this.hostRefs[id] = (this.hostRefs[id] as number) + 1;
    return id;
  }

  // The last task naming a host is gone: its id may be reused (no bucket refers to it any more,
  // and dead entries that still carry it are never read past their DEAD mark).
  private unintern(id: number): void {
    const n = (this.hostRefs[id] as number) - 1;
    this.hostRefs[id] = n;
    if (n > 0) return;
    this.hostIds.delete(this.hostNames[id] as string);
    this.hostNames[id] = '';
    this.freeHostIds.push(id);
  }

  private queueFor(task: PendingTask): Queue {
    const last = this.lastQueue;
    if (last !== undefined && last.live > 0 && last.jobId === task.jobId && last.priority === task.priority) return last;
    const key = `${task.jobId}\u0000${task.priority}`;
    let q = this.queues.get(key);
    if (q) return (this.lastQueue = q);
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
    return (this.lastQueue = q);
  }

  private hostBucket(q: Queue, id: number, pinned = false): Bucket {
    const name = this.hostNames[id] as string;
    const map = pinned ? q.pins : q.hosts;
    let b = map.get(name);
    if (!b) {
      b = new Bucket(q, id, pinned);
      map.set(name, b);
      // One job per host is the common case: an array of one slot, not the 16 a first push allocates.
      const list = this.hostBuckets[id] as Bucket[];
      if (list.length === 0) this.hostBuckets[id] = [b];
      else list.push(b);
    }
    return b;
  }

  private releaseHost(q: Queue, id: number, e: Entry, pinned = false): void {
    const name = this.hostNames[id] as string;
    const map = pinned ? q.pins : q.hosts;
    const b = map.get(name);
    if (!b) return;
    b.drop(e, this.marks);
    if (b.live === 0) {
      map.delete(name);
      const list = this.hostBuckets[id] as Bucket[];
      const i = list.indexOf(b);
      if (i >= 0) list.splice(i, 1);
    }
  }

  private bucket(map: Map<string, Bucket>, global: Map<string, Queue[]>, key: string, q: Queue): Bucket {
    let b = map.get(key);
    if (!b) {
      b = new Bucket(q);
      map.set(key, b);
      link(global, key, q);
    }
    return b;
  }

  private release(map: Map<string, Bucket>, global: Map<string, Queue[]>, key: string, q: Queue, e: Entry): void {
    const b = map.get(key);
    if (!b) return;
    b.drop(e, this.marks);
    if (b.live === 0) {
      map.delete(key);
      unlink(global, key, q);
    }
  }

  private dropQueue(q: Queue): void {
    this.queues.delete(q.key);
    if (this.lastQueue === q) this.lastQueue = undefined;
    const list = this.byTenant.get(q.tenant);
    if (list) {
      const i = list.indexOf(q);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byTenant.delete(q.tenant);
    }
  }
}
