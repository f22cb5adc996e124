/**
 * Placement benchmark: drives the real placement code (src/scheduler/placement)
 * with a simulated cluster and a manual clock over a matrix of cluster sizes
 * and pending-task counts, and writes bench/results/placement-<date>.json and
 * a Markdown table beside it (BENCH_OUT names another file, without the extension).
 *
 *   npm run bench:placement          (builds, then node --expose-gc dist/bench/placement.js)
 *   node --expose-gc dist/bench/placement.js --quick    (small rows only, for a smoke run)
 *
 * The simulation: agents in racks of 40, one executor of 10 slots per agent,
 * idle for a minute when the job arrives. One job of N split tasks, each block
 * with 3 replicas placed the HDFS way (first replica on a random node, the
 * other two on two nodes of one other rack). Each tick (1 s of manual time)
 * finished tasks free their slots, one placement pass runs, and its
 * assignments start tasks lasting 8–12 s. The run ends when nothing is pending.
 *
 * Columns:
 * - placementsPerSecond: placements / wall time spent inside place().
 * - placementsPerCpuSecond: placements / CPU time (user + system) of this
 *   process spent inside place(). On this shared 2-core machine other work
 *   takes the CPU away from the benchmark; wall time then counts the waiting
 *   too, CPU time only what placement itself costs. Both are reported.
 * - steady (10,000 × 100,000 only): that row's first pass repeated on one
 *   long-lived index, as a running framework keeps it; each run above builds a
 *   fresh index, and V8 drops the code compiled for the last run's objects.
 * - nodeLocal, rackLocal: fractions of the FIRST pass's placements (all tasks
 *   pending, all slots free) — the pass optimalNodeLocal is measured against.
 * - optimalNodeLocal: the largest number of node-local placements any
 *   assignment of the same tasks to the same free slots could reach, divided
 *   by the placements possible (min(tasks, slots)). Computed independently of
 *   placement by Hopcroft–Karp (capacitated: a host takes as many tasks as it
 *   has free slots) over the task–host node-local pairs.
 * - idleSlotSeconds: slot-seconds left idle at the end of a pass while tasks
 *   were still pending (the price of waiting for locality), whole run.
 * - bytesPerPendingTask: V8 heap growth (after gc) for the pending tasks and
 *   the PendingIndex over them, per task.
 * - redisBytesPerPendingTask: what the job store (src/scheduler/jobs/store.ts)
 *   actually keeps in Redis for the row's pending tasks, per task: a job is
 *   created and the row's splits (its own cluster, its own hosts) written
 *   through JobStore.setStageSplits on a real redis-server, and every key of
 *   the job is measured with MEMORY USAGE before and after; the difference is
 *   divided by the task count. Measured for every row (nothing reused between
 *   rows: host names, and so bytes, differ with the cluster size).
 *   redisBytesPerPendingTaskCodec is the same tasks in the compact encoding of
 *   src/scheduler/placement/pending-codec.ts, which the store does NOT use
 *   today: for comparison only.
 * Extra columns: nodeLocalRun / rackLocalRun (whole run), costPerTaskUs (index
 * add + all passes + index removals, per task; costPerTaskCpuUs the same in CPU time), passes, wallSeconds (of one run),
 * placementsPerSecondRuns (each row runs three times; the median is reported,
 * because this machine is shared with other work), loadAverage (1-minute load
 * before and after the row's runs).
 *
 * The last line printed is one JSON object: the load average at start and end,
 * every row, and the targets of issue 16 item 3 with whether each is met.
 */
import { resultName } from './out-name.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import {
  PendingIndex, encodePendingSplits, place, type ExecutorView, type PendingTask, type PlacementOptions, type Snapshot,
} from '../src/scheduler/placement/index.js';
import { seededRandom } from '../src/core/random.js';
import { JobStore, type StoredSplit } from '../src/scheduler/jobs/store.js';
import { validateJobSpec } from '../src/scheduler/jobs/spec.js';
import { freePort } from './ports.js';

const RACK_SIZE = 40;
const SLOTS_PER_EXECUTOR = 10;
const REPLICAS = 3;
const TICK_MS = 1000;
const BLOCK_BYTES = 128 * 1024 * 1024;
const BLOCKS_PER_FILE = 8;

interface Row {
  agents: number;
  tasks: number;
  placementsPerSecond: number;
  placementsPerCpuSecond: number;
  /**
   * At 10,000 × 100,000 only: the same first pass repeated on one long-lived index (see
   * steadyPasses), median of 5 after 3 unmeasured, wall and CPU, with every measured pass.
   */
  steady?: { placementsPerSecond: number; placementsPerCpuSecond: number; wallRuns: number[]; cpuRuns: number[] };
  nodeLocal: number;
  rackLocal: number;
  optimalNodeLocal: number;
  idleSlotSeconds: number;
  bytesPerPendingTask: number;
  redisBytesPerPendingTask: number;
  redisBytesPerPendingTaskCodec: number;
  redisStoreKeys: string[];
  nodeLocalRun: number;
  rackLocalRun: number;
  costPerTaskUs: number;
  /** The same in CPU time of this process (what other processes take from the benchmark left out). */
  costPerTaskCpuUs: number;
  placementsPerSecondRuns: number[];
  placementsPerCpuSecondRuns: number[];
  loadAverage: { start: number; end: number };
  passes: number;
  wallSeconds: number;
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

interface Cluster {
  readonly hosts: string[];
  readonly racks: string[];
  readonly rackOf: Int32Array;
}

function cluster(agents: number): Cluster {
  const hosts: string[] = [];
  const racks: string[] = [];
  const rackOf = new Int32Array(agents);
  for (let r = 0; r * RACK_SIZE < agents; r++) racks.push(`rack-${r}`);
  for (let i = 0; i < agents; i++) {
    hosts.push(`agent-${i}.dc1`);
    rackOf[i] = Math.floor(i / RACK_SIZE);
  }
  return { hosts, racks, rackOf };
}

/** HDFS default placement: replica 1 on a random node, replicas 2 and 3 on two nodes of one other rack. */
function replicaHosts(c: Cluster, n: number, rand: () => number): Int32Array {
  const agents = c.hosts.length;
  const out = new Int32Array(n * REPLICAS);
  const rackCount = c.racks.length;
  for (let t = 0; t < n; t++) {
    const first = Math.floor(rand() * agents);
    const r1 = c.rackOf[first] as number;
    let r2 = Math.floor(rand() * rackCount);
    if (rackCount > 1) while (r2 === r1) r2 = Math.floor(rand() * rackCount);
    const lo = r2 * RACK_SIZE;
    const size = Math.min(RACK_SIZE, agents - lo);
    const a = lo + Math.floor(rand() * size);
    let b = lo + Math.floor(rand() * size);
    while (b === a && size > 1) b = lo + Math.floor(rand() * size);
    out[t * 3] = first;
    out[t * 3 + 1] = a;
    out[t * 3 + 2] = b;
  }
  return out;
}

/**
 * Maximum node-local assignment: Hopcroft–Karp on tasks × hosts where host h
 * can take up to cap[h] tasks (a capacitated bipartite matching). Independent
 * of the placement code: plain typed arrays over the replica table.
 */
export function maxNodeLocal(n: number, adj: Int32Array, deg: number, cap: Int32Array): number {
  const hosts = cap.length;
  const maxCap = Math.max(1, cap.reduce((m, c) => Math.max(m, c), 0));
  const matchOf = new Int32Array(n).fill(-1);
  const load = new Int32Array(hosts);
  const row = new Int32Array(hosts * maxCap);
  const detach = (t: number): void => {
    const h = matchOf[t] as number;
    if (h < 0) return;
    const base = h * maxCap;
    const last = (load[h] as number) - 1;
    for (let s = 0; s <= last; s++) {
      if (row[base + s] === t) {
        row[base + s] = row[base + last] as number;
        break;
      }
    }
    load[h] = last;
    matchOf[t] = -1;
  };
  const attach = (t: number, h: number): void => {
    detach(t);
    row[h * maxCap + (load[h] as number)] = t;
    load[h] = (load[h] as number) + 1;
    matchOf[t] = h;
  };
  let size = 0;
  for (let t = 0; t < n; t++) {
    for (let k = 0; k < deg; k++) {
      const h = adj[t * deg + k] as number;
      if ((load[h] as number) < (cap[h] as number)) {
        attach(t, h);
        size++;
        break;
      }
    }
  }
  const INF = 0x3fffffff;
  const dist = new Int32Array(n);
  const queue = new Int32Array(n);
  const it = new Int32Array(n);
  // Move t to another of its hosts, pushing matched tasks along shorter-by-one layers; true on success.
  const dfs = (t: number): boolean => {
    const d = dist[t] as number;
    for (; (it[t] as number) < deg; it[t] = (it[t] as number) + 1) {
      const h = adj[t * deg + (it[t] as number)] as number;
      if (h === matchOf[t]) continue;
      if ((load[h] as number) < (cap[h] as number)) {
        attach(t, h);
        return true;
      }
      for (let s = 0; s < (load[h] as number); s++) {
        const t2 = row[h * maxCap + s] as number;
        if (dist[t2] === d + 1 && dfs(t2)) {
          attach(t, h);
          return true;
        }
      }
    }
    dist[t] = INF;
    return false;
  };
  for (;;) {
    let qh = 0;
    let qt = 0;
    for (let t = 0; t < n; t++) {
      if (matchOf[t] === -1) {
        dist[t] = 0;
        queue[qt++] = t;
      } else dist[t] = INF;
    }
    let found = false;
    while (qh < qt) {
      const t = queue[qh++] as number;
      const d = dist[t] as number;
      for (let k = 0; k < deg; k++) {
        const h = adj[t * deg + k] as number;
        if (h === matchOf[t]) continue;
        if ((load[h] as number) < (cap[h] as number)) {
          found = true;
          continue;
        }
        for (let s = 0; s < (load[h] as number); s++) {
          const t2 = row[h * maxCap + s] as number;
          if (dist[t2] === INF) {
            dist[t2] = d + 1;
            queue[qt++] = t2;
          }
        }
      }
    }
    if (!found) break;
    it.fill(0);
    let augmented = 0;
    for (let t = 0; t < n; t++) {
      if (matchOf[t] === -1 && dist[t] === 0 && dfs(t)) augmented++;
    }
    if (augmented === 0) break;
    size += augmented;
  }
  return size;
}

interface SimExec extends ExecutorView {
  freeSlots: number;
  freeSince: number | undefined;
  idleSince: number | undefined;
}


interface BenchRedis {
  readonly client: Redis;
  stop(): Promise<void>;
}

/** A throwaway redis-server on loopback (the test harness's startRedis pattern). */
async function startRedis(): Promise<BenchRedis | undefined> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'locus-bench-redis-'));
  const proc: ChildProcess = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no',
  ], { stdio: 'ignore' });
  let failed = false;
  proc.on('error', () => { failed = true; });
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (failed) return undefined;
    try {
      await client.connect();
      await client.ping();
      break;
    } catch {
      client.disconnect();
      if (Date.now() > deadline) return undefined;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    client,
    async stop() {
      client.disconnect();
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function memoryUsage(r: Redis, key: string): Promise<number> {
  const v = await r.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
  return typeof v === 'number' ? v : Number(v);
}

/** Bytes of every key under `prefix`, by MEMORY USAGE (SAMPLES 0: exact for lists and hashes). */
async function bytesUnder(r: Redis, prefix: string): Promise<{ bytes: number; keys: string[] }> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  let bytes = 0;
  for (const k of keys) bytes += await memoryUsage(r, k);
  return { bytes, keys: keys.sort() };
}

/** What one row's pending tasks cost in Redis. */
interface RedisCost {
  /** Bytes per task the job store keeps (its own keys, written by its own code). */
  readonly store: number;
  /** The keys the store's write touched, with the locus: prefix. */
  readonly storeKeys: string[];
  /** Bytes per task in the pending-codec encoding (not used by the store; for comparison). */
  readonly codec: number;
}

/**
 * Redis bytes per pending task for one row, measured, never reused: the job
 * store writes the splits exactly as it does for a submitted job (a job
 * created through JobStore.create, the stage's splits through
 * setStageSplits), and the growth of all the job's keys is divided by the
 * task count. The pending-codec encoding of the same splits is measured
 * beside it for comparison.
 */
async function measureRedis(redis: BenchRedis, c: Cluster, n: number, replicas: Int32Array): Promise<RedisCost> {
  const r = redis.client;
  await r.flushall();
  const hostIndex = (t: number, k: number): number => replicas[t * 3 + k] as number;
  const rackName = (h: number): string => c.racks[c.rackOf[h] as number] as string;
  const fileUri = (f: number): string => `hdfs://nn:8020/data/in/part-${String(f).padStart(6, '0')}`;

  // 1. The job store, as the coordinator uses it.
  const store = new JobStore(r);
  const jobId = 'bench';
  const spec = validateJobSpec({ name: 'bench', inputs: ['hdfs://nn:8020/data/in/'], task: { command: ['true'] } });
  await store.create({ id: jobId, tenant: 'default', name: 'bench', spec, outputDir: '/var/tmp/bench-out', createdAt: 0, stages: [{ name: 'main', taskCount: -1 }] });
  const prefix = `locus:job:${jobId}`;
  const before = await bytesUnder(r, prefix);
  const stored: StoredSplit[] = new Array<StoredSplit>(n);
  for (let t = 0; t < n; t++) {
    const hs = [hostIndex(t, 0), hostIndex(t, 1), hostIndex(t, 2)];
    stored[t] = {
      uri: fileUri(Math.floor(t / BLOCKS_PER_FILE)), offset: (t % BLOCKS_PER_FILE) * BLOCK_BYTES, length: BLOCK_BYTES,
      hosts: hs.map((h) => c.hosts[h] as string), racks: [...new Set(hs.map(rackName))],
    };
  }
  if (!(await store.openStage(jobId, 0, stored, 0)).opened) throw new Error('the job store did not write the splits');
  // Check the work was done before trusting the number: every task is there, and one reads back as written.
  const job = await store.get(jobId);
  if (job?.counts.pending !== n) throw new Error(`the job store holds ${String(job?.counts.pending)} pending tasks, expected ${n}`);
  const probe = Math.floor(n / 2);
  const [back] = await store.getSplits(jobId, 0, probe, probe + 1);
  if (JSON.stringify(back?.hosts) !== JSON.stringify(stored[probe]?.hosts)) throw new Error('the job store read back a different split');
  const after = await bytesUnder(r, prefix);
  stored.length = 0;
  await r.flushall();

  // 2. The same splits in the pending-codec encoding (host and file tables, records, state bytes).
  const splits = new Array<{ fileIndex: number; offset: number; length: number; hosts: string[] }>(n);
  for (let t = 0; t < n; t++) {
    splits[t] = {
      fileIndex: Math.floor(t / BLOCKS_PER_FILE), offset: (t % BLOCKS_PER_FILE) * BLOCK_BYTES, length: BLOCK_BYTES,
      hosts: [c.hosts[hostIndex(t, 0)] as string, c.hosts[hostIndex(t, 1)] as string, c.hosts[hostIndex(t, 2)] as string],
    };
  }
  const enc = encodePendingSplits(splits, REPLICAS);
  const files = Math.ceil(n / BLOCKS_PER_FILE);
  const fileTable = JSON.stringify(Array.from({ length: files }, (_, i) => [fileUri(i), BLOCK_BYTES * BLOCKS_PER_FILE, null]));
  const hostTable = JSON.stringify(enc.hosts.map((h) => [h, c.racks[c.rackOf[Number(h.slice(6, h.indexOf('.')))] as number] ?? null]));
  const key = 'locus:job:codec';
  const buf = Buffer.from(enc.data.buffer, enc.data.byteOffset, enc.data.byteLength);
  await r.set(`${key}:splitbin:0`, '');
  for (let p = 0; p < buf.length; p += 4 << 20) await r.append(`${key}:splitbin:0`, buf.subarray(p, p + (4 << 20)));
  await r.set(`${key}:hosts:0`, hostTable);
  await r.set(`${key}:files:0`, fileTable);
  await r.set(`${key}:state:0`, Buffer.alloc(n));
  let codec = 0;
  for (const k of ['splitbin', 'hosts', 'files', 'state']) codec += await memoryUsage(r, `${key}:${k}:0`);
  await r.flushall();
  return { store: (after.bytes - before.bytes) / n, storeKeys: after.keys, codec: codec / n };
}

/** The pending index of a row: one task per block, preferring its three replicas' hosts and racks. */
function benchIndex(c: Cluster, n: number, replicas: Int32Array): PendingIndex {
  const resources = { cpus: 1, mem: 1024, disk: 0 };
  const index = new PendingIndex();
  for (let t = 0; t < n; t++) {
    const h0 = replicas[t * 3] as number;
    const h1 = replicas[t * 3 + 1] as number;
    const h2 = replicas[t * 3 + 2] as number;
    const r0 = c.rackOf[h0] as number;
    const r1 = c.rackOf[h1] as number;
    const task: PendingTask = {
      taskId: `bench.0.${t}`, jobId: 'bench', tenant: 'default', priority: 0, resources,
      preferredHosts: [c.hosts[h0] as string, c.hosts[h1] as string, c.hosts[h2] as string],
      preferredRacks: r0 === r1 ? [c.racks[r0] as string] : [c.racks[r0] as string, c.racks[r1] as string],
      inputBytes: BLOCK_BYTES, pendingSince: 0,
    };
    index.add(task);
  }
  return index;
}

/** One executor per agent, every slot free, idle for a minute. */
function idleExecutors(c: Cluster): SimExec[] {
  return c.hosts.map((h, i) => ({
    executorId: `exec-${i}`, agentId: `agent-${i}`, hostname: h, rack: c.racks[c.rackOf[i] as number] as string,
    slotResources: { cpus: 1, mem: 1024, disk: 0 }, slots: SLOTS_PER_EXECUTOR, freeSlots: SLOTS_PER_EXECUTOR,
    freeSince: -60_000, idleSince: -60_000,
  }));
}

/**
 * The first pass again and again on one index, as a running framework does: it keeps one
 * PendingIndex for its life, so its passes run compiled code. The rows above build a fresh index
 * per run, and V8 throws away code compiled for the previous run's objects when they are
 * collected ("weak objects"), so their single pass is partly interpreted. place() leaves the
 * index as it was (tasks are removed by the caller), so every pass here places the same tasks.
 * Returns placements/s (wall and CPU) of each measured pass, after `warm` unmeasured ones.
 */
function steadyPasses(agents: number, n: number, warm: number, measured: number): { wall: number[]; cpu: number[] } {
  const c = cluster(agents);
  const replicas = replicaHosts(c, n, seededRandom(agents * 7919 + n));
  const index = benchIndex(c, n, replicas);
  const snapshot: Snapshot = { now: 0, offers: [], executors: idleExecutors(c), tenants: [{ name: 'default', weight: 1, usage: { cpus: 0, mem: 0, disk: 0 } }] };
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < warm + measured; i++) {
    gc();
    const c0 = process.cpuUsage();
    const s = performance.now();
    const plan = place(snapshot, index, {});
    const ms = performance.now() - s;
    const cu = process.cpuUsage(c0);
    if (plan.stats.placed !== Math.min(n, agents * SLOTS_PER_EXECUTOR)) throw new Error(`steady pass placed ${plan.stats.placed}`);
    if (i < warm) continue;
    wall.push(Math.round(plan.stats.placed / (ms / 1000)));
    cpu.push(Math.round(plan.stats.placed / (Math.max(cu.user + cu.system, 1) / 1e6)));
  }
  return { wall, cpu };
}

function runRow(agents: number, n: number, opts: Partial<PlacementOptions>): Omit<Row, 'redisBytesPerPendingTask' | 'redisBytesPerPendingTaskCodec' | 'redisStoreKeys' | 'placementsPerSecondRuns' | 'placementsPerCpuSecondRuns' | 'loadAverage'> & { replicas: Int32Array; cluster: Cluster } {
  const wall0 = performance.now();
  const c = cluster(agents);
  const rand = seededRandom(agents * 7919 + n);
  const replicas = replicaHosts(c, n, rand);
  const durations = new Float64Array(n);
  for (let t = 0; t < n; t++) durations[t] = 8000 + Math.floor(rand() * 4000);

  // Heap per pending task: the task objects as the coordinator would hold them, plus the index.
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const index = benchIndex(c, n, replicas);
  let maintainMs = performance.now() - t0;
  const addCpu = process.cpuUsage(cpu0);
  let maintainCpuUs = addCpu.user + addCpu.system;
  gc();
  const bytesPerPendingTask = (process.memoryUsage().heapUsed - heap0) / n;

  const execs = idleExecutors(c);
  const execNo = new Map(execs.map((e, i) => [e.executorId, i]));
  const completions = new Map<number, number[]>();
  const tenants = [{ name: 'default', weight: 1, usage: { cpus: 0, mem: 0, disk: 0 } }];

  gc();
  let placeMs = 0;
  let placeCpuUs = 0;
  let placed = 0;
  let nodeRun = 0;
  let rackRun = 0;
  let idleSlotMs = 0;
  let first: { placed: number; node: number; rack: number } | undefined;
  let passes = 0;
  let now = 0;
  for (let tick = 0; ; tick++, now += TICK_MS) {
    for (const i of completions.get(tick) ?? []) {
      const e = execs[i] as SimExec;
      if (e.freeSlots === 0) e.freeSince = now;
      e.freeSlots++;
      if (e.freeSlots === e.slots) e.idleSince = now;
    }
    completions.delete(tick);
    const snapshot: Snapshot = { now, offers: [], executors: execs, tenants };
    const c0 = process.cpuUsage();
    const s = performance.now();
    const plan = place(snapshot, index, opts);
    placeMs += performance.now() - s;
    const c = process.cpuUsage(c0);
    placeCpuUs += c.user + c.system;
    passes++;
    const m0 = performance.now();
    const mc0 = process.cpuUsage();
    // The plan's columns, as the coordinator reads them (Plan.assignments would build an object each).
    const assigned = plan.assigned;
    for (let k = 0; k < assigned.length; k++) index.remove(assigned.taskId(k));
    maintainMs += performance.now() - m0;
    const mc = process.cpuUsage(mc0);
    maintainCpuUs += mc.user + mc.system;
    for (let k = 0; k < assigned.length; k++) {
      const i = execNo.get(assigned.executorId(k)) as number;
      const e = execs[i] as SimExec;
      e.freeSlots--;
      e.idleSince = undefined;
      if (e.freeSlots === 0) e.freeSince = undefined;
      const taskId = assigned.taskId(k);
      const no = Number(taskId.slice(taskId.lastIndexOf('.') + 1));
      const end = Math.ceil((now + (durations[no] as number)) / TICK_MS);
      let list = completions.get(end);
      if (!list) completions.set(end, (list = []));
      list.push(i);
    }
    placed += plan.stats.placed;
    nodeRun += plan.stats.nodeLocal;
    rackRun += plan.stats.rackLocal;
    first ??= { placed: plan.stats.placed, node: plan.stats.nodeLocal, rack: plan.stats.rackLocal };
    if (index.size === 0) break;
    idleSlotMs += plan.stats.freeSlotsLeft * TICK_MS;
    if (tick > 100_000) throw new Error('simulation did not finish');
  }
  if (placed !== n) throw new Error(`placed ${placed} of ${n}`);
  const f = first as { placed: number; node: number; rack: number };

  // Optimal node-local for the first pass: same tasks, same free slots.
  const cap = new Int32Array(agents).fill(SLOTS_PER_EXECUTOR);
  const optimal = maxNodeLocal(n, replicas, REPLICAS, cap);
  const possible = Math.min(n, agents * SLOTS_PER_EXECUTOR);
  return {
    agents, tasks: n,
    placementsPerSecond: Math.round(placed / (placeMs / 1000)),
    // cpuUsage has microsecond resolution; a pass shorter than that counts as 1 µs at least.
    placementsPerCpuSecond: Math.round(placed / (Math.max(placeCpuUs, 1) / 1e6)),
    nodeLocal: round4(f.node / f.placed),
    rackLocal: round4(f.rack / f.placed),
    optimalNodeLocal: round4(optimal / possible),
    idleSlotSeconds: Math.round(idleSlotMs / 1000),
    bytesPerPendingTask: Math.round(bytesPerPendingTask),
    nodeLocalRun: round4(nodeRun / placed),
    rackLocalRun: round4(rackRun / placed),
    costPerTaskUs: round4(((placeMs + maintainMs) * 1000) / n),
    costPerTaskCpuUs: round4((placeCpuUs + maintainCpuUs) / n),
    passes,
    wallSeconds: Math.round((performance.now() - wall0) / 100) / 10,
    replicas,
    cluster: c,
  };
}

const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

/** The issue's targets, checked against the rows (a row missing from a partial run is skipped). */
function targets(rows: readonly Row[]): string[] {
  const at = (a: number, t: number): Row | undefined => rows.find((r) => r.agents === a && r.tasks === t);
  const out: string[] = [];
  const ample = at(10_000, 100_000);
  if (ample) {
    out.push(`- placements/s at 10,000 × 100,000 ≥ 1,000,000 (wall time): ${ample.placementsPerSecond} (runs ${ample.placementsPerSecondRuns.join(', ')}; load ${ample.loadAverage.start} → ${ample.loadAverage.end}) → ${ample.placementsPerSecond >= 1_000_000 ? 'met' : 'NOT met'}`);
    out.push(`- the same per CPU second of placement (what the code costs, whatever else runs): ${ample.placementsPerCpuSecond} (runs ${ample.placementsPerCpuSecondRuns.join(', ')}) → ${ample.placementsPerCpuSecond >= 1_000_000 ? 'met' : 'NOT met'}`);
    if (ample.steady) {
      out.push(`- the same on one long-lived index, as a running framework keeps it (its passes run compiled code; median of 5 passes after 3): ${ample.steady.placementsPerSecond} wall (passes ${ample.steady.wallRuns.join(', ')}), ${ample.steady.placementsPerCpuSecond} per CPU-s → ${ample.steady.placementsPerSecond >= 1_000_000 ? 'met' : 'NOT met'}`);
    }
    const gap = ample.optimalNodeLocal - ample.nodeLocal;
    out.push(`- nodeLocal within 0.02 of optimal at 10,000 × 100,000: ${ample.nodeLocal} vs ${ample.optimalNodeLocal} (gap ${round4(gap)}) → ${gap <= 0.02 ? 'met' : 'NOT met'}`);
  }
  for (const a of [1000, 10_000]) {
    const small = at(a, 10_000);
    const big = at(a, 1_000_000);
    if (small && big) {
      const ratio = big.costPerTaskUs / small.costPerTaskUs;
      out.push(`- per-task cost at ${a} agents, 1,000,000 vs 10,000 tasks ≤ 2× (wall): ${big.costPerTaskUs} / ${small.costPerTaskUs} µs = ${ratio.toFixed(2)}× (load ${small.loadAverage.start} vs ${big.loadAverage.start}) → ${ratio <= 2 ? 'met' : 'NOT met'}`);
      const cpuRatio = big.costPerTaskCpuUs / small.costPerTaskCpuUs;
      out.push(`- the same in CPU time: ${big.costPerTaskCpuUs} / ${small.costPerTaskCpuUs} µs = ${cpuRatio.toFixed(2)}× → ${cpuRatio <= 2 ? 'met' : 'NOT met'}`);
    }
  }
  const heap = Math.max(...rows.map((r) => r.bytesPerPendingTask));
  out.push(`- heap ≤ 1 KiB per pending task: worst row ${heap} B → ${heap <= 1024 ? 'met' : 'NOT met'}`);
  return out;
}

function markdown(rows: readonly Row[], date: string, load: { start: number[]; end: number[] }): string {
  const head = '| agents | tasks | placements/s | placements/CPU-s | load (1 min) | nodeLocal | rackLocal | optimalNodeLocal | idleSlotSeconds | heap B/task | Redis B/task (job store) | Redis B/task (pending-codec, unused) | nodeLocal (run) | cost µs/task | cost CPU µs/task | passes |';
  const sep = '|' + '---|'.repeat(16);
  const lines = rows.map((r) => `| ${r.agents} | ${r.tasks} | ${r.placementsPerSecond} | ${r.placementsPerCpuSecond} | ${r.loadAverage.start} → ${r.loadAverage.end} | ${r.nodeLocal} | ${r.rackLocal} | ${r.optimalNodeLocal} | ${r.idleSlotSeconds} | ${r.bytesPerPendingTask} | ${r.redisBytesPerPendingTask.toFixed(1)} | ${r.redisBytesPerPendingTaskCodec.toFixed(1)} | ${r.nodeLocalRun} | ${r.costPerTaskUs} | ${r.costPerTaskCpuUs} | ${r.passes} |`);
  const keys = [...new Set(rows.flatMap((r) => r.redisStoreKeys))];
  return [
    `# Placement benchmark, ${date}`, '',
    `Node ${process.version}; racks of ${RACK_SIZE}; one executor of ${SLOTS_PER_EXECUTOR} slots per agent; ${REPLICAS} replicas per block (HDFS policy); tick ${TICK_MS} ms of manual time; tasks last 8–12 s; one job submitted at t = 0 on executors idle for a minute.`,
    'nodeLocal / rackLocal / optimalNodeLocal describe the first pass (all tasks pending, all slots free: the same tasks and slots the Hopcroft–Karp optimum is computed for); the "(run)" column covers the whole run.',
    'placements/s is the median of three runs of the row (wall time inside place(); the machine is shared with other work, so single runs vary by up to 3×); placements/CPU-s is the median of the same three runs measured in this process\'s CPU time inside place(), which leaves out the time other processes held the CPU. The load column is the 1-minute load average before and after the row.',
    'idleSlotSeconds counts free slots left at the end of a pass while tasks were pending. It is 0 here because every task has been pending since t = 0: once its node and rack waits have run out (6 s), a freed slot may take it at any level, so no slot waits for locality after the first seconds.',
    `Redis B/task (job store) is what src/scheduler/jobs/store.ts keeps for a pending task: each row's splits (its own cluster and host names) written through JobStore.setStageSplits on a real redis-server, all of the job's keys (${keys.join(', ')}) measured with MEMORY USAGE before and after, the growth divided by the task count. Measured for every row; nothing is reused between rows.`,
    'Redis B/task (pending-codec, unused) is the same splits in the compact encoding of src/scheduler/placement/pending-codec.ts (records of 26 bytes + 1 state byte + per-job host and file tables). The job store does not use that encoding today; the column shows what it would save.',
    `Load average (1/5/15 min) at the start: ${load.start.join(' / ')}; at the end: ${load.end.join(' / ')} (2 CPUs, shared: speeds measured under load are lower than on an idle machine).`,
    '', head, sep, ...lines, '', '## Targets', '', ...targets(rows), '',
  ].join('\n');
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const only = process.argv.indexOf('--only');
  const matrix: [number, number][] = only > 0
    ? [(process.argv[only + 1] ?? '1000,10000').split(',').map(Number) as [number, number]]
    : quick
      ? [[1000, 10_000], [10_000, 100_000]]
      : [[1000, 10_000], [1000, 100_000], [1000, 1_000_000], [10_000, 10_000], [10_000, 100_000], [10_000, 1_000_000]];
  // The Redis columns are part of the result: without a redis-server there is no honest figure to write.
  const redis = await startRedis();
  if (!redis) throw new Error('redis-server did not start (apt-get install redis-server)');
  const rows: Row[] = [];
  const start = performance.now();
  const loadNow = (): number[] => loadavg().map((x) => Math.round(x * 100) / 100);
  const loadStart = loadNow();
  try {
    for (const [agents, n] of matrix) {
      // Three runs of the same seeded row; report the median run's speed (the machine is shared).
      const rowLoad = loadNow()[0] as number;
      const runs = [runRow(agents, n, {}), runRow(agents, n, {}), runRow(agents, n, {})];
      const cpuRuns = runs.map((x) => x.placementsPerCpuSecond).sort((a, b) => a - b);
      runs.sort((a, b) => a.placementsPerSecond - b.placementsPerSecond);
      const r = {
        ...(runs[1] as (typeof runs)[number]), placementsPerSecondRuns: runs.map((x) => x.placementsPerSecond),
        placementsPerCpuSecond: cpuRuns[1] as number, placementsPerCpuSecondRuns: cpuRuns,
        loadAverage: { start: rowLoad, end: loadNow()[0] as number },
      };
      // Measured for this row, with this row's cluster: never taken from another row.
      const cost = await measureRedis(redis, r.cluster, n, r.replicas);
      const { replicas: _r, cluster: _c, ...rest } = r;
      void _r;
      void _c;
      const steady = agents === 10_000 && n === 100_000 ? steadyPasses(agents, n, 3, 5) : undefined;
      const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
      const row: Row = {
        ...rest, redisBytesPerPendingTask: round4(cost.store), redisBytesPerPendingTaskCodec: round4(cost.codec),
        redisStoreKeys: cost.storeKeys,
        ...(steady ? { steady: { placementsPerSecond: median(steady.wall), placementsPerCpuSecond: median(steady.cpu), wallRuns: steady.wall, cpuRuns: steady.cpu } } : {}),
      };
      rows.push(row);
      console.log(JSON.stringify(row));
      gc();
    }
  } finally {
    await redis.stop();
  }
  const date = new Date().toISOString().slice(0, 10);
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/bench/placement.js → <repo>/bench/results
  const outDir = join(here, '..', '..', 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  // BENCH_OUT names the files (without extension), as the other benchmarks take it: a run must not
  // overwrite another's figures.
  const name = resultName(outDir, quick || only > 0 ? `placement-${date}-partial` : `placement-${date}`);
  const load = { start: loadStart, end: loadNow() };
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify({ loadAverage: load, results: rows }, null, 2) + '\n');
  writeFileSync(join(outDir, `${name}.md`), markdown(rows, date, load));
  console.log(`wrote ${join(outDir, `${name}.json`)} in ${Math.round((performance.now() - start) / 1000)} s`);
  // The figures, as one JSON object on the last line.
  console.log(JSON.stringify({ loadAverage: load, results: rows, targets: targets(rows) }));
}

// Run only when executed (a test imports maxNodeLocal to check it against brute force).
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error('locus: bench failed:', err);
    process.exit(1);
  });
}
