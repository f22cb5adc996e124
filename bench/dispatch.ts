/**
 * Dispatch benchmark (`npm run bench:dispatch`): the whole Locus path on the
 * embedded local cluster with a real, managed redis-server (AOF everysec).
 *
 * 1. Throughput: trivial tasks submitted as jobs to the JobService and run
 *    through submit → stage resolution → placement pass → attempt start
 *    (Lua) → executor queue (BullMQ) → executor process launched by a local
 *    agent as a Mesos task (benchmark-only no-op runner, output commit
 *    included) → result read by the dispatcher → task state recorded → job
 *    SUCCEEDED. Timed from the first submit to the last job SUCCEEDED, and
 *    every task is checked SUCCEEDED before the number is trusted. In the
 *    same run, on the same Redis, the physical limit: plain BullMQ, the same
 *    number of worker processes and the same concurrency as the executors,
 *    processing the same number of trivial jobs.
 * 2. Latency: single-task jobs; submit → running, where "running" is the
 *    executor's own timestamp after it launched the attempt (from the
 *    attempt's result in its BullMQ job); the placement time and the job end
 *    are reported too. Under load (the target): probes submitted every
 *    BENCH_PROBE_EVERY_MS while a throughput round's tasks flow. Idle: one
 *    at a time onto idle, warm executors.
 *    After the rounds, one more pair with the same tasks in a stage of
 *    `outputs: none` (nothing staged, flushed or committed): what the output
 *    commit costs, reported beside the ratio, never in it (BENCH_SKIP_NO_OUTPUT=1 skips it).
 * Redis work per task: INFO commandstats before and after each round (calls
 * and server microseconds per task, by command), for Locus and for BullMQ.
 * Profiles: with BENCH_PROFILE_DIR set, every executor process writes a CPU
 * profile there (the framework side: run the bench itself with --cpu-prof).
 * Those profiles sample wall time on the main thread: on this oversubscribed host a socket write
 * that wakes Redis is charged with the time the writer waits for a CPU afterwards. For CPU time,
 * BENCH_EXECUTOR_NODE_FLAGS="--flag ..." starts each executor with those Node/V8 flags (GC settings).
 * BENCH_PERF_MAP=1 runs each executor under `node --perf-basic-prof` (a map of its JIT code in
 * /tmp/perf-<pid>.map) so that `perf record -a -g` names the JavaScript frames it samples.
 * 3. Isolated runs: a second environment with the real runner (each attempt
 *    a nested container launched through the executor's agent, linux
 *    isolation where available): tasks per second.
 *
 * Writes bench/results/dispatch-<date>.json and .md. Run with
 * `--bullmq-worker` it is the child process of the BullMQ baseline.
 */
import { resultName } from './out-name.js';
import { profilingExecutorMain } from './executor-profile.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { startManagedRedis, type ManagedRedis } from '../src/app/redis-server.js';
import { defaultExecutorMain, resolveSettings } from '../src/app/config.js';
import { startFramework, type RunningFramework } from '../src/app/framework.js';
import { startLocalCluster, type LocalCluster } from '../src/local/index.js';
import { detectIsolation } from '../src/executor/isolation/index.js';
import { diskUsageBytes } from '../src/executor/isolation/host.js';
import { CONTRACT_VERSION, EXECUTOR_KEY_PREFIX, executorBatchIndexKey, executorQueueKey } from '../src/executor/contract.js';
import { validateJobSpec, type JobSpec } from '../src/scheduler/jobs/spec.js';
import { TERMINAL_JOB_STATES } from '../src/scheduler/jobs/model.js';
import { createLogger, silentLogger, type Logger } from '../src/obs/log.js';

const num = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const TASKS = num('BENCH_TASKS', 20_000);
/** Jobs the throughput tasks are spread over (tasks per job = TASKS / JOBS). */
const JOBS = num('BENCH_JOBS', 20);
const AGENTS = num('BENCH_AGENTS', 4);
/** Slots per executor: agents get SLOTS + 1 cpus, so placement starts one executor of SLOTS slots on each. */
const SLOTS = num('BENCH_SLOTS', 16);
/** Rounds of (BullMQ, then Locus) back to back; at least three, so the ratio reported is a true median. */
const ROUNDS = num('BENCH_ROUNDS', 3);
const LATENCY_SAMPLES = num('BENCH_LATENCY_SAMPLES', 200);
const ISO_TASKS = num('BENCH_ISOLATED_TASKS', 100);
const ISO_AGENTS = num('BENCH_ISOLATED_AGENTS', 2);
const ISO_SLOTS = num('BENCH_ISOLATED_SLOTS', 4);
const SKIP_ISOLATED = process.env['BENCH_SKIP_ISOLATED'] === '1';
const SKIP_LOCUS = process.env['BENCH_SKIP_LOCUS'] === '1';
/** BENCH_SKIP_NO_OUTPUT=1: no extra pair with the tasks in a stage of `outputs: none`. */
const SKIP_NO_OUTPUT = process.env['BENCH_SKIP_NO_OUTPUT'] === '1';
/** Under-load latency: one single-task probe job submitted this often while a round's tasks flow. */
const PROBE_EVERY_MS = num('BENCH_PROBE_EVERY_MS', 100);
/**
 * With BENCH_MONITOR=1, round 1 of Locus runs under Redis MONITOR: every command by origin, per task
 * (slows that round, scripts most: each command inside a script is fed to the monitor too). With
 * BENCH_MONITOR=slowlog only SLOWLOG (threshold 0) runs over round 1: server time per call by
 * script SHA, without MONITOR's cost inside the scripts.
 */
const MONITOR = process.env['BENCH_MONITOR'] === '1' || process.env['BENCH_MONITOR'] === 'slowlog';
const MONITOR_COMMANDS = process.env['BENCH_MONITOR'] === '1';
/** Where executor processes write CPU profiles (unset: no profiling). */
const PROFILE_DIR = process.env['BENCH_PROFILE_DIR'];
/** BENCH_PERF_MAP=1: executors write perf maps of their JIT code (see the header). */
const PERF_MAP = process.env['BENCH_PERF_MAP'] === '1';
/** BENCH_EXECUTOR_NODE_FLAGS: V8/Node flags executors start with (space-separated), e.g. GC settings. */
const EXECUTOR_NODE_FLAGS = (process.env['BENCH_EXECUTOR_NODE_FLAGS'] ?? '').split(' ').filter((f) => f !== '');
const BULL_PREFIX = 'bench:q';
/** BENCH_DISPATCH_WINDOW=true|false sets the framework's `dispatch-window` (unset: its default). */
const DISPATCH_WINDOW = process.env['BENCH_DISPATCH_WINDOW'];
/** BENCH_EXECUTOR_PREFETCH=true|false sets the framework's `executor-prefetch` (unset: its default). */
const EXECUTOR_PREFETCH = process.env['BENCH_EXECUTOR_PREFETCH'];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

/** The true median: the middle value, or the mean of the two middle values for an even count. */
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The 1/5/15-minute load averages, rounded: recorded with every round, since this machine is shared. */
function loadNow(): number[] {
  return loadavg().map((x) => Number(x.toFixed(2)));
}

function say(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** How long the main threads of one kind of process ran and waited for a CPU (/proc/<pid>/schedstat). */
interface SchedTotals {
  /** Nanoseconds on a CPU. */
  runNs: number;
  /** Nanoseconds runnable but waiting for a CPU (on a run queue). */
  waitNs: number;
  /** Times the thread was put on a CPU: each one followed a wait, however short. */
  slices: number;
  /** Processes of this kind. */
  procs: number;
}

/** One reading of the benchmark's process tree. */
interface TreeReading {
  readonly at: number;
  /** CPU time (ms) by command name, every thread, reaped children counted by `self`. */
  readonly cpuMs: Map<string, number>;
  /** Main threads only: an event loop runs there, so its waits for a CPU are its delays. */
  readonly sched: Map<string, SchedTotals>;
}

/**
 * CPU time of this process and every live descendant, by command name, from /proc: the
 * benchmark's own processes (framework and agents in this one, redis-server, executors, BullMQ
 * workers) and nothing else on the shared machine. Also each main thread's time waiting for a
 * CPU (schedstat): whether a busy event loop was slow because it worked or because it waited.
 */
async function treeReading(): Promise<TreeReading> {
  const cpuMs = new Map<string, number>();
  const sched = new Map<string, SchedTotals>();
  const at = performance.now();
  const tick = 10; // USER_HZ is 100 on Linux
  const procs: { pid: number; ppid: number; comm: string; cpu: number; children: number; stat?: number[] }[] = [];
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return { at, cpuMs, sched };
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const raw = await readFile(`/proc/${n}/stat`, 'utf8');
      const close = raw.lastIndexOf(')');
      const comm = raw.slice(raw.indexOf('(') + 1, close);
      const f = raw.slice(close + 2).split(' ');
      // Fields after the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15).
      procs.push({ pid: Number(n), ppid: Number(f[1]), comm, cpu: (Number(f[11]) + Number(f[12])) * tick, children: (Number(f[13]) + Number(f[14])) * tick });
    } catch {
      // gone meanwhile
    }
  }
  const kids = new Map<number, typeof procs>();
  for (const p of procs) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), p]);
  const addSched = async (comm: string, pid: number): Promise<void> => {
    // The thread group leader's own figures: run ns, run-queue wait ns, time slices.
    const f = (await readFile(`/proc/${pid}/schedstat`, 'utf8').catch(() => '')).trim().split(' ').map(Number);
    if (f.length < 3 || f.some((x) => !Number.isFinite(x))) return;
    const t = sched.get(comm) ?? { runNs: 0, waitNs: 0, slices: 0, procs: 0 };
    sched.set(comm, { runNs: t.runNs + (f[0] ?? 0), waitNs: t.waitNs + (f[1] ?? 0), slices: t.slices + (f[2] ?? 0), procs: t.procs + 1 });
  };
  const walk = async (pid: number): Promise<void> => {
    for (const c of kids.get(pid) ?? []) {
      cpuMs.set(c.comm, (cpuMs.get(c.comm) ?? 0) + c.cpu);
      await addSched(c.comm, c.pid);
      await walk(c.pid);
    }
  };
  const me = procs.find((p) => p.pid === process.pid);
  if (me) {
    cpuMs.set('bench+framework', me.cpu + me.children);
    await addSched('bench+framework', me.pid);
  }
  await walk(process.pid);
  return { at, cpuMs, sched };
}

/** A main thread's waits for a CPU over a span, by process name. */
interface CpuWait {
  /** Share of the span the main threads spent runnable but not running (per process, mean). */
  waitShare: number;
  /** Mean wait for a CPU each time a main thread became runnable, ms. */
  msPerWakeup: number;
  /** Share of the span on a CPU (per process, mean). */
  runShare: number;
}

/**
 * CPU ms per task by process name between two readings, and in all; and the main threads'
 * waits for a CPU (only processes alive at both readings count, by name: a process that came or
 * went in between is left out of `waits` rather than guessed at).
 */
function cpuPerTask(before: TreeReading, after: TreeReading, tasks: number): { totalMs: number; byProcess: Record<string, number>; waits: Record<string, CpuWait> } {
  const byProcess: Record<string, number> = {};
  let total = 0;
  for (const [k, v] of after.cpuMs) {
    const d = v - (before.cpuMs.get(k) ?? 0);
    if (d <= 0) continue;
    byProcess[k] = Number((d / tasks).toFixed(3));
    total += d;
  }
  const waits: Record<string, CpuWait> = {};
  const spanNs = (after.at - before.at) * 1e6;
  for (const [k, a] of after.sched) {
    const b = before.sched.get(k);
    if (b === undefined || b.procs !== a.procs || spanNs <= 0) continue;
    const slices = a.slices - b.slices;
    if (slices <= 0) continue;
    waits[k] = {
      waitShare: Number(((a.waitNs - b.waitNs) / a.procs / spanNs).toFixed(3)),
      msPerWakeup: Number(((a.waitNs - b.waitNs) / slices / 1e6).toFixed(3)),
      runShare: Number(((a.runNs - b.runNs) / a.procs / spanNs).toFixed(3)),
    };
  }
  return { totalMs: Number((total / tasks).toFixed(3)), byProcess, waits };
}

// ---------------------------------------------------------------- environment

interface Env {
  readonly redis: ManagedRedis;
  readonly admin: Redis;
  readonly cluster: LocalCluster;
  readonly fw: RunningFramework;
  readonly isolation: string;
  /** Where committed outputs go (state-dir/outputs). */
  readonly outputs: string;
  /** Resolves when the job reaches a terminal state. */
  finished(jobId: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * An executor main that runs the real one in a child `node <flags>` (`--perf-basic-prof` and GC
 * settings take effect only at start) and forwards its signals and exit code: the agent's process
 * is this one.
 */
async function flaggedExecutorMain(work: string, flags: readonly string[]): Promise<string> {
  const file = join(work, 'flagged-executor.mjs');
  await writeFile(file, [
    "import { spawn } from 'node:child_process';",
    `const child = spawn(process.execPath, [...${JSON.stringify(flags)}, ${JSON.stringify(defaultExecutorMain())}, ...process.argv.slice(2)], { stdio: 'inherit' });`,
    "for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => child.kill(sig));",
    "child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)));",
    '',
  ].join('\n'));
  await chmod(file, 0o644);
  return file;
}

async function startEnv(work: string, o: { agents: number; slots: number; runner: 'noop' | 'auto'; isolation: 'auto' | 'linux' | 'process'; logger: Logger }): Promise<Env> {
  await mkdir(work, { recursive: true });
  // Workloads run unprivileged: every ancestor of the outputs must be reachable.
  await chmod(work, 0o755);
  const flags = [...(PERF_MAP ? ['--perf-basic-prof'] : []), ...EXECUTOR_NODE_FLAGS];
  const executorMain = PROFILE_DIR !== undefined ? await profilingExecutorMain(work, PROFILE_DIR) : flags.length > 0 ? await flaggedExecutorMain(work, flags) : undefined;
  const redis = await startManagedRedis({ dataDir: join(work, 'redis'), logger: o.logger });
  let cluster: LocalCluster | undefined;
  try {
    cluster = await startLocalCluster({
      workDir: join(work, 'local'), agents: o.agents, racks: 2, port: 0, isolation: o.isolation, logger: o.logger,
      // Room on each agent for an executor of `slots` 1-cpu slots (plus its 0.1-cpu overhead); the
      // benchmark's 0.1-cpu tasks get executors sized to them, so fewer agents may hold them all.
      resources: `cpus:${o.slots + 1};mem:${(o.slots + 1) * 1024 + 1024};disk:${(o.slots + 1) * 1024 + 1024};ports:[31000-32000]`,
    });
    const settings = resolveSettings({
      master: cluster.masterUrl, redis: redis.url, 'http-port': '0', 'grpc-port': '0',
      'state-dir': work, 'local-work-dir': join(work, 'local'), isolation: o.isolation,
      'executor-runner': o.runner, 'executor-idle-timeout': '30m',
      ...(DISPATCH_WINDOW === undefined ? {} : { 'dispatch-window': DISPATCH_WINDOW }),
      ...(EXECUTOR_PREFETCH === undefined ? {} : { 'executor-prefetch': EXECUTOR_PREFETCH }),
      ...(executorMain === undefined ? {} : { 'executor-main': executorMain }),
    });
    const c = cluster;
    // The breakdown and the probes read the rounds' queue jobs after they finished: kept 5 min
    // (their removal, one fenced script per 200 ms, then falls in a later round or after the run).
    const fw = await startFramework(settings, { logger: o.logger, agents: () => c.agents, keepRecordedQueueJobsMs: 300_000 });
    await fw.waitForSubscribed(30_000);
    const admin = new Redis(redis.url, { maxRetriesPerRequest: null });
    admin.on('error', () => undefined);
    const terminal = new Map<string, string>();
    const waiters = new Map<string, (state: string) => void>();
    fw.jobs.on('event', (e) => {
      if (e.kind !== 'job' || !TERMINAL_JOB_STATES.has(e.state as never)) return;
      terminal.set(e.jobId, e.state);
      waiters.get(e.jobId)?.(e.state);
    });
    return {
      redis, admin, cluster: c, fw, isolation: o.isolation, outputs: join(work, 'outputs'),
      finished(jobId) {
        const done = terminal.get(jobId);
        if (done !== undefined) return Promise.resolve(done);
        return new Promise((resolve) => waiters.set(jobId, resolve));
      },
      async stop() {
        admin.disconnect();
        await fw.stop().catch((err: unknown) => say(`framework stop: ${String(err)}`));
        await c.stop().catch((err: unknown) => say(`cluster stop: ${String(err)}`));
        await redis.stop();
      },
    };
  } catch (err) {
    await cluster?.stop().catch(() => undefined);
    await redis.stop();
    throw err;
  }
}

function trivialJob(name: string, tasks: number, command: readonly string[] = ['true'], outputs: 'committed' | 'none' = 'committed'): JobSpec {
  return validateJobSpec({
    name, retries: 0, timeout: '5m', outputs,
    task: { command: [...command], resources: { cpus: 0.1, mem: '32MiB', disk: '1MiB' } },
    tasks: Array.from({ length: tasks }, () => ({})),
  });
}

async function withDeadline<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, reject) => { t = setTimeout(() => reject(new Error(`timed out after ${ms / 1000}s: ${what}`)), ms); })]);
  } finally {
    clearTimeout(t);
  }
}

/** Submit jobs, wait for all of them, check every task SUCCEEDED; seconds from first submit to last end. */
async function runJobs(env: Env, specs: readonly JobSpec[], timeoutMs: number, ids: string[] = []): Promise<{ seconds: number; tasks: number; jobIds: string[] }> {
  const t0 = performance.now();
  for (const s of specs) ids.push((await env.fw.jobs.submit('default', s)).id);
  const states = await withDeadline(`${ids.length} job(s)`, Promise.all(ids.map((id) => env.finished(id))), timeoutMs);
  const seconds = (performance.now() - t0) / 1000;
  let tasks = 0;
  for (const [i, id] of ids.entries()) {
    const job = await env.fw.jobs.get(id);
    const expected = specs[i]?.stages[0]?.tasks?.length ?? -1;
    if (states[i] !== 'SUCCEEDED' || job.counts.succeeded !== expected || job.counts.total !== expected) {
      const failed = (await env.fw.jobs.tasks(id)).find((t) => t.state !== 'SUCCEEDED');
      const last = failed?.attempts[failed.attempts.length - 1];
      if (last) say(`first unfinished task ${failed?.id ?? ''}: ${failed?.state ?? ''} ${last.reason ?? ''} ${last.message ?? ''}`);
      throw new Error(`job ${id} ended ${states[i] ?? '?'} with ${job.counts.succeeded}/${job.counts.total} succeeded (expected ${expected}): ${job.message ?? ''}`);
    }
    tasks += job.counts.succeeded;
  }
  return { seconds, tasks, jobIds: ids };
}

interface ExecutorInfo {
  readonly executorId: string;
  readonly slots: number;
  readonly runner: string;
}

async function runningExecutors(admin: Redis): Promise<ExecutorInfo[]> {
  const keys = await admin.keys(`${EXECUTOR_KEY_PREFIX}*`);
  const out: ExecutorInfo[] = [];
  for (const k of keys) {
    const h = await admin.hgetall(k);
    if (h['state'] === 'running') out.push({ executorId: k.slice(EXECUTOR_KEY_PREFIX.length), slots: Number(h['slots'] ?? 0), runner: h['runner'] ?? '' });
  }
  return out.sort((a, b) => (a.executorId < b.executorId ? -1 : 1));
}

/** Run a warm-up job big enough to start every executor at full size. */
async function warmUp(env: Env, agents: number, slots: number, label: string): Promise<ExecutorInfo[]> {
  const want = agents * slots;
  for (let i = 0; i < 4; i++) {
    await runJobs(env, [trivialJob(`${label}-warm-${i}`, want)], 120_000);
    const ex = await runningExecutors(env.admin);
    // Executors are sized to the work: the warm-up's 0.1-cpu tasks may all fit one executor of
    // `want` slots on one agent, which is as good as one per agent for this benchmark.
    if (ex.reduce((a, e) => a + e.slots, 0) >= want) return ex;
    await sleep(1000);
  }
  const ex = await runningExecutors(env.admin);
  say(`warning: after warm-up ${ex.length} executors with ${ex.reduce((a, e) => a + e.slots, 0)} slots in all (wanted ${want})`);
  return ex;
}

// ---------------------------------------------------------------- BullMQ baseline

/** The child process of the baseline: one plain BullMQ Worker with a no-op processor. */
async function bullmqWorkerChild(): Promise<void> {
  const url = process.env['BENCH_URL'] ?? '';
  const queue = process.env['BENCH_QUEUE'] ?? '';
  const concurrency = Number(process.env['BENCH_CONCURRENCY'] ?? 1);
  const expect = Number(process.env['BENCH_EXPECT'] ?? 0);
  const conn = new Redis(url, { maxRetriesPerRequest: null });
  let done = 0;
  const worker = new Worker(queue, async () => ({ ok: true }), {
    connection: conn, prefix: BULL_PREFIX, concurrency, removeOnComplete: { age: 24 * 3600 }, removeOnFail: { age: 24 * 3600 },
  });
  worker.on('completed', () => {
    done++;
    if (done === expect) process.send?.({ done });
  });
  await worker.waitUntilReady();
  process.send?.({ ready: true });
  process.on('message', (m: unknown) => {
    if (m !== 'close') return;
    void worker.close().finally(() => {
      conn.disconnect();
      process.exit(0);
    });
  });
}

/** Plain BullMQ: `queues` worker processes x `concurrency`, `total` trivial jobs added in bulk. */
async function bullmqThroughput(url: string, round: number, queues: number, concurrency: number, total: number): Promise<{ throughput: number; seconds: number }> {
  const me = fileURLToPath(import.meta.url);
  const children: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  const done: Promise<void>[] = [];
  const names = Array.from({ length: queues }, (_, i) => `plain-r${round}-${i}`);
  const per = names.map((_, i) => Math.floor(total / queues) + (i < total % queues ? 1 : 0));
  for (const [i, name] of names.entries()) {
    const child = spawn(process.execPath, [me, '--bullmq-worker'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, BENCH_URL: url, BENCH_QUEUE: name, BENCH_CONCURRENCY: String(concurrency), BENCH_EXPECT: String(per[i] ?? 0) },
    });
    children.push(child);
    ready.push(new Promise((resolve, reject) => {
      child.on('message', (m: unknown) => { if (typeof m === 'object' && m !== null && 'ready' in m) resolve(); });
      child.once('exit', (code) => reject(new Error(`bullmq worker exited with ${String(code)}`)));
    }));
    done.push(new Promise((resolve) => child.on('message', (m: unknown) => { if (typeof m === 'object' && m !== null && 'done' in m) resolve(); })));
  }
  const conn = new Redis(url, { maxRetriesPerRequest: null });
  const qs = names.map((n) => new Queue(n, { connection: conn, prefix: BULL_PREFIX }));
  try {
    await Promise.all(ready);
    const payload = (i: number): Record<string, unknown> => ({
      contractVersion: CONTRACT_VERSION, jobId: `plain-r${round}`, taskId: `plain-r${round}.0.${i}`, attemptId: `plain-r${round}.0.${i}.1`, attempt: 1,
      argv: ['true'], env: { LOCUS_JOB_ID: `plain-r${round}`, LOCUS_TASK_INDEX: String(i) }, resources: { cpus: 0.1, memMiB: 32, diskMiB: 1 },
      timeoutMs: 300_000, outputDir: `/var/tmp/out/plain-r${round}/main/${String(i).padStart(5, '0')}`, volumes: [], inputPaths: [],
    });
    const t0 = performance.now();
    let next = 0;
    for (const [q, queue] of qs.entries()) {
      const jobs = Array.from({ length: per[q] ?? 0 }, () => {
        const i = next++;
        return { name: 'attempt', data: payload(i), opts: { jobId: `plain-r${round}-${i}`, attempts: 1, removeOnComplete: { age: 24 * 3600 }, removeOnFail: { age: 24 * 3600 } } };
      });
      for (let i = 0; i < jobs.length; i += 1000) await queue.addBulk(jobs.slice(i, i + 1000));
    }
    await withDeadline('BullMQ completions', Promise.all(done), 300_000);
    const seconds = (performance.now() - t0) / 1000;
    return { throughput: total / seconds, seconds };
  } finally {
    for (const c of children) c.send('close');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(undefined) : c.once('exit', r)))));
    await Promise.all(qs.map((q) => q.close()));
    conn.disconnect();
  }
}

// ---------------------------------------------------------------- Locus phases

/** Where an attempt's time goes (ms, median / p90 over a sample of one round's attempts). */
type Breakdown = Record<string, { p50: number; p90: number }>;

/** Redis's own counters by command (INFO commandstats): calls and server time in microseconds. */
type CommandStats = Map<string, { calls: number; usec: number }>;

async function commandStats(admin: Redis): Promise<CommandStats> {
  const out: CommandStats = new Map();
  for (const line of (await admin.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m?.[1] !== undefined) out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

/**
 * Redis's memory in use (INFO memory). Its growth over a round, per task, is what each finished
 * task leaves in Redis: its record, and its queue job, which is kept finished for a day.
 */
async function usedMemory(admin: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))?.[1] ?? NaN);
}

/** BENCH_MEMORY_BREAKDOWN=1: after round 1, Redis's memory by key shape (SCAN and MEMORY USAGE of every key). */
const MEMORY_BREAKDOWN = process.env['BENCH_MEMORY_BREAKDOWN'] === '1';

/** Every key's MEMORY USAGE, summed by its shape (ids and numbers folded). */
async function memoryByShape(admin: Redis, tasks: number): Promise<{ shape: string; keys: number; bytesPerTask: number }[]> {
  const by = new Map<string, { keys: number; bytes: number }>();
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'COUNT', 1000);
    cursor = next;
    const pipe = admin.pipeline();
    for (const k of keys) pipe.memory('USAGE', k);
    const sizes = (await pipe.exec()) ?? [];
    keys.forEach((k, i) => {
      const shape = k.replace(/[0-9a-f]{8,}|\d+/g, '#').replace(/job-[^:.]+/g, 'job-*');
      const e = by.get(shape) ?? { keys: 0, bytes: 0 };
      e.keys++;
      e.bytes += Number(sizes[i]?.[1] ?? 0);
      by.set(shape, e);
    });
  } while (cursor !== '0');
  return [...by].map(([shape, e]) => ({ shape, keys: e.keys, bytesPerTask: Math.round(e.bytes / tasks) })).sort((a, b) => b.bytesPerTask - a.bytesPerTask).slice(0, 15);
}

/** Redis work per task between two snapshots: what one task costs the shared Redis. */
interface RedisCost {
  readonly callsPerTask: number;
  /** Server-side microseconds (commands and Lua scripts, not the network) per task. */
  readonly usecPerTask: number;
  readonly byCommand: { command: string; callsPerTask: number; usecPerTask: number }[];
}

/** `exclude`: calls the benchmark itself made in between (its samplers), taken out by command. */
function redisCost(before: CommandStats, after: CommandStats, tasks: number, exclude: Readonly<Record<string, number>> = {}): RedisCost {
  const rows: { command: string; calls: number; usec: number }[] = [];
  for (const [command, a] of after) {
    const b = before.get(command) ?? { calls: 0, usec: 0 };
    const calls = a.calls - b.calls - (exclude[command] ?? 0);
    if (calls <= 0 || command === 'info') continue;
    rows.push({ command, calls, usec: a.usec - b.usec });
  }
  rows.sort((x, y) => y.usec - x.usec);
  const r3 = (x: number): number => Number((x / tasks).toFixed(3));
  return {
    callsPerTask: r3(rows.reduce((t, x) => t + x.calls, 0)),
    usecPerTask: r3(rows.reduce((t, x) => t + x.usec, 0)),
    byCommand: rows.slice(0, 12).map((x) => ({ command: x.command, callsPerTask: r3(x.calls), usecPerTask: r3(x.usec) })),
  };
}

/**
 * Redis MONITOR over a span: each command a client sent (a round trip, unless pipelined) and
 * each command a Lua script ran, grouped by command and the shape of its first key (ids folded),
 * scripts by their SHA's first 8 characters and first key; and from SLOWLOG (threshold 0 for
 * the span) the server time of each command sent, scripts by SHA. Both slow Redis down: the
 * round they cover is a diagnosis, not a throughput figure.
 */
async function monitorStart(url: string): Promise<{ stop(tasks: number): Promise<{ sent: number; inScripts: number; rows: { what: string; perTask: number }[]; serverTime: { what: string; perTask: number; usPerCall: number; usPerTask: number }[] }> }> {
  const conn = new Redis(url, { maxRetriesPerRequest: null });
  // Server time by script as well: SLOWLOG with a threshold of 0 keeps every command's duration.
  const ctl = new Redis(url, { maxRetriesPerRequest: null });
  const oldThreshold = (await ctl.config('GET', 'slowlog-log-slower-than')) as string[];
  const oldLen = (await ctl.config('GET', 'slowlog-max-len')) as string[];
  await ctl.config('SET', 'slowlog-max-len', '1000000');
  await ctl.slowlog('RESET');
  await ctl.config('SET', 'slowlog-log-slower-than', '0');
  const mon = MONITOR_COMMANDS ? await conn.monitor() : undefined;
  const counts = new Map<string, number>();
  let sent = 0;
  let inScripts = 0;
  mon?.on('monitor', (_time: string, args: unknown[], source: string) => {
    const str = args.map((a) => String(a));
    const cmd = (str[0] ?? '').toLowerCase();
    if (cmd === 'monitor' || cmd === 'info') return;
    const lua = source.includes('lua');
    if (lua) inScripts++;
    else sent++;
    const fold = (k: string | undefined): string => (k ?? '').replace(/[0-9a-f]{8,}/g, '<h>').replace(/\d+/g, '#').slice(0, 60);
    const what = cmd === 'evalsha' ? `evalsha ${str[1]?.slice(0, 8) ?? ''} ${fold(str[3])}` : cmd === 'eval' ? `eval ${fold(str[3])} (${(str[1] ?? '').length} chars)` : `${cmd} ${fold(str[1])}`;
    const key = `${lua ? 'lua  ' : 'sent '}${what}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  });
  return {
    async stop(tasks) {
      mon?.disconnect();
      conn.disconnect();
      await ctl.config('SET', 'slowlog-log-slower-than', oldThreshold[1] ?? '10000');
      const log = (await ctl.slowlog('GET', -1)) as unknown[];
      await ctl.config('SET', 'slowlog-max-len', oldLen[1] ?? '128');
      await ctl.slowlog('RESET');
      ctl.disconnect();
      const time = new Map<string, { n: number; us: number }>();
      for (const e of log) {
        if (!Array.isArray(e) || !Array.isArray(e[3])) continue;
        const a = (e[3] as unknown[]).map(String);
        const cmd = (a[0] ?? '').toLowerCase();
        const what = cmd === 'evalsha' ? `evalsha ${a[1]?.slice(0, 8) ?? ''}` : cmd === 'eval' ? `eval (${(a[1] ?? '').length} chars)` : cmd;
        const t = time.get(what) ?? { n: 0, us: 0 };
        t.n++;
        t.us += Number(e[2]);
        time.set(what, t);
      }
      const byTime = [...time].sort((x, y) => y[1].us - x[1].us).map(([what, t]) => ({ what, perTask: Number((t.n / tasks).toFixed(3)), usPerCall: Math.round(t.us / t.n), usPerTask: Number((t.us / tasks).toFixed(1)) }));
      const rows = [...counts].sort((a, b) => b[1] - a[1]).map(([what, n]) => ({ what, perTask: Number((n / tasks).toFixed(3)) }));
      return { sent: Number((sent / tasks).toFixed(3)), inScripts: Number((inScripts / tasks).toFixed(3)), rows, serverTime: byTime };
    },
  };
}

type MonitorResult = Awaited<ReturnType<Awaited<ReturnType<typeof monitorStart>>['stop']>>;

type CpuCost = ReturnType<typeof cpuPerTask>;

interface LocusRound {
  /** CPU time per task of the benchmark's process tree over the round (probes included in the count). */
  cpu: CpuCost;
  throughput: number;
  seconds: number;
  breakdown: Breakdown;
  /** Submit → running of single-task probes submitted while the round's tasks flowed. */
  probes: LatencySample[];
  redis: RedisCost;
  monitor?: MonitorResult;
  /** Executors registered as running after the round, and their slots in all. */
  executors?: { count: number; slots: number };
}

/** `outputs`: the round's tasks commit an (empty) output each, or are a stage of `outputs: none`. */
async function locusThroughput(env: Env, round: number, outputs: 'committed' | 'none' = 'committed'): Promise<LocusRound> {
  const perJob = Math.floor(TASKS / JOBS);
  const specs = Array.from({ length: JOBS }, (_, j) => trivialJob(`thr-r${round}-${j}`, perJob + (j < TASKS % JOBS ? 1 : 0), ['true'], outputs));
  // How many attempts are in flight (the job counters), sampled every 50 ms: how full the slots are kept.
  const inFlight: number[] = [];
  let sampling = true;
  const samplerCalls = { hget: 0 };
  // The round's own jobs (probe jobs are submitted beside them), filled in as they are submitted.
  const ids: string[] = [];
  const sampler = (async () => {
    while (sampling) {
      await sleep(50);
      const pipe = env.admin.pipeline();
      for (const id of ids) pipe.hget(`locus:job:${id}`, 'n:running');
      const res = (await pipe.exec()) ?? [];
      samplerCalls.hget += ids.length;
      inFlight.push(res.reduce((a, [, v]) => a + Number(v ?? 0), 0));
    }
  })();
  // Item 4 of issue 16: submit-to-running while the round's tasks flow. Probes are submitted
  // only while the round runs (and after its first jobs are in), each measured to its own end.
  const probeRuns: Promise<LatencySample | undefined>[] = [];
  let flowing = true;
  const prober = (async () => {
    while (flowing && ids.length < specs.length) await sleep(10);
    for (let i = 0; flowing; i++) {
      probeRuns.push(probe(env, `probe-r${round}-${i}`).catch((err: unknown) => {
        say(`probe ${i} failed: ${String(err)}`);
        return undefined;
      }));
      await sleep(PROBE_EVERY_MS);
    }
  })();
  const statsBefore = await commandStats(env.admin);
  const memoryBefore = await usedMemory(env.admin);
  const cpuBefore = await treeReading();
  const mon = MONITOR && round === 0 ? await monitorStart(env.redis.url) : undefined;
  const r = await runJobs(env, specs, 480_000, ids).finally(() => { sampling = false; flowing = false; });
  await sampler;
  await prober;
  const probes = (await Promise.all(probeRuns)).filter((x): x is LatencySample => x !== undefined);
  const statsAfter = await commandStats(env.admin);
  const cpu = cpuPerTask(cpuBefore, await treeReading(), TASKS + probes.length);
  const monitor = await mon?.stop(TASKS + probes.length);
  if (monitor) {
    say(`MONITOR round 1, per task: ${monitor.sent} sent, ${monitor.inScripts} inside scripts\n${monitor.rows.slice(0, 60).map((x) => `  ${x.perTask.toFixed(3)}  ${x.what}`).join('\n')}`);
    say(`SLOWLOG round 1, server time by command sent (calls per task, us per call, us per task):\n${monitor.serverTime.slice(0, 25).map((x) => `  ${x.perTask.toFixed(3)}  ${String(x.usPerCall).padStart(6)}  ${x.usPerTask.toFixed(1).padStart(8)}  ${x.what}`).join('\n')}`);
  }
  if (r.tasks !== TASKS) throw new Error(`only ${r.tasks}/${TASKS} tasks succeeded`);
  // The probes ran the same path: their tasks count as tasks (a few per cent of the round).
  const redis = { ...redisCost(statsBefore, statsAfter, TASKS + probes.length, samplerCalls), keptBytesPerTask: Math.round((await usedMemory(env.admin) - memoryBefore) / (TASKS + probes.length)) };
  if (MEMORY_BREAKDOWN && round === 0) say(`Redis memory by key shape after round 1 (bytes per task, keys):\n${(await memoryByShape(env.admin, TASKS + probes.length)).map((x) => `  ${String(x.bytesPerTask).padStart(6)}  ${String(x.keys).padStart(7)}  ${x.shape}`).join('\n')}`);
  const bd = await breakdown(env, r.jobIds);
  // Each executor's container has the outputs root as a read-write volume, and the local agent's
  // disk accounting walks it every second: leftovers of earlier rounds would slow later ones.
  const w0 = performance.now();
  await diskUsageBytes(env.outputs);
  const walkMs = Math.round(performance.now() - w0);
  bd['outputsDiskWalk'] = { p50: walkMs, p90: walkMs };
  for (const id of r.jobIds) await rm(join(env.outputs, 'default', id), { recursive: true, force: true });
  const sorted = inFlight.slice(2, -2).sort((a, b) => a - b);
  bd['attemptsInFlight'] = { p50: percentile(sorted, 50), p90: percentile(sorted, 90) };
  return { cpu, throughput: TASKS / r.seconds, seconds: r.seconds, breakdown: bd, probes, redis, ...(monitor ? { monitor } : {}) };
}

/**
 * From the task records (placement time) and the attempts' BullMQ jobs
 * (added, taken, finished; the executor's own start and end): the stages of
 * the path, measured after the timed run so the sampling costs it nothing.
 */
/** An attempt's result in a queue job's return value: the value itself, or its member in a batch's. */
function memberResult(v: unknown, attemptId: string): { startedAt?: number; finishedAt?: number } {
  const list: unknown[] = typeof v === 'object' && v !== null && Array.isArray((v as { batch?: unknown }).batch) ? (v as { batch: unknown[] }).batch : [v];
  const hit = list.find((r) => typeof r === 'object' && r !== null && (r as { attemptId?: unknown }).attemptId === attemptId);
  return (hit ?? {}) as { startedAt?: number; finishedAt?: number };
}

async function breakdown(env: Env, jobIds: readonly string[]): Promise<Breakdown> {
  const cols: Record<string, number[]> = { placedToQueued: [], queuedToTaken: [], takenToFinished: [], executorAttempt: [], placedToFinished: [] };
  for (const jobId of jobIds) {
    const tasks = await env.fw.jobs.tasks(jobId);
    const step = Math.max(1, Math.floor(tasks.length / Math.max(1, Math.floor(2000 / jobIds.length))));
    const picked: { executorId: string; attemptId: string; startedAt: number }[] = [];
    for (let i = 0; i < tasks.length; i += step) {
      const a = tasks[i]?.attempts[0];
      if (a) picked.push(a);
    }
    // Attempts sent in a batch live in their batch's queue job (the batch index names it).
    const ix = env.admin.pipeline();
    for (const a of picked) ix.hget(executorBatchIndexKey(a.executorId), a.attemptId);
    const held = ((await ix.exec()) ?? []).map(([, v], i) => (typeof v === 'string' ? v : picked[i]?.attemptId ?? ''));
    const pipe = env.admin.pipeline();
    picked.forEach((a, i) => pipe.hmget(executorQueueKey(a.executorId, held[i] ?? a.attemptId), 'timestamp', 'processedOn', 'finishedOn', 'returnvalue'));
    const res = (await pipe.exec()) ?? [];
    picked.forEach((a, i) => {
      const row = res[i]?.[1];
      if (!Array.isArray(row)) return;
      const [ts, on, fin, rv] = row.map((x) => (typeof x === 'string' ? x : ''));
      const result = rv ? memberResult(JSON.parse(rv) as unknown, a.attemptId) : {};
      cols['placedToQueued']?.push(Number(ts) - a.startedAt);
      cols['queuedToTaken']?.push(Number(on) - Number(ts));
      cols['takenToFinished']?.push(Number(fin) - Number(on));
      cols['executorAttempt']?.push((result.finishedAt ?? NaN) - (result.startedAt ?? NaN));
      cols['placedToFinished']?.push(Number(fin) - a.startedAt);
    });
  }
  const out: Breakdown = {};
  for (const [k, xs] of Object.entries(cols)) {
    const sorted = xs.filter(Number.isFinite).sort((a, b) => a - b);
    out[k] = { p50: percentile(sorted, 50), p90: percentile(sorted, 90) };
  }
  return out;
}

interface LatencySample {
  /** Submit → the executor launched the attempt (its own clock, same host). */
  readonly runningMs: number;
  /** Submit → the scheduler started the attempt (placement + Lua, before the queue write). */
  readonly placedMs: number;
  /** Submit → its queue job was added (BullMQ's timestamp). */
  readonly queuedMs: number;
  /** Submit → the executor's worker took its queue job (BullMQ's processedOn). */
  readonly takenMs: number;
  /** Submit → job SUCCEEDED event. */
  readonly doneMs: number;
}

/** One single-task job, submit to end: when it was placed, ran (executor's clock) and ended. */
async function probe(env: Env, name: string): Promise<LatencySample> {
  const spec = trivialJob(name, 1);
  const t0 = Date.now();
  const job = await env.fw.jobs.submit('default', spec);
  const state = await withDeadline(`latency job ${job.id}`, env.finished(job.id), 300_000);
  const doneMs = Date.now() - t0;
  if (state !== 'SUCCEEDED') throw new Error(`latency job ${job.id} ended ${state}`);
  const [task] = await env.fw.jobs.tasks(job.id);
  const attempt = task?.attempts[task.attempts.length - 1];
  if (!attempt) throw new Error(`latency job ${job.id} has no attempt`);
  const held = (await env.admin.hget(executorBatchIndexKey(attempt.executorId), attempt.attemptId)) ?? attempt.attemptId;
  // A batch's queue job completes with its last member: the probe's own result (streamed as it
  // ended) can end the job before the batch it went out in has, so wait for the batch's record.
  const key = executorQueueKey(attempt.executorId, held);
  let [rv, ts, on] = await env.admin.hmget(key, 'returnvalue', 'timestamp', 'processedOn');
  for (let waited = 0; !rv && waited < 30_000; waited += 20) {
    await sleep(20);
    [rv, ts, on] = await env.admin.hmget(key, 'returnvalue', 'timestamp', 'processedOn');
  }
  const startedAt = rv ? Number(memberResult(JSON.parse(rv) as unknown, attempt.attemptId).startedAt) : NaN;
  if (!Number.isFinite(startedAt)) throw new Error(`no executor start time for ${attempt.attemptId}`);
  return { runningMs: startedAt - t0, placedMs: attempt.startedAt - t0, queuedMs: Number(ts) - t0, takenMs: Number(on) - t0, doneMs };
}

async function latency(env: Env): Promise<LatencySample[]> {
  const out: LatencySample[] = [];
  for (let i = 0; i < LATENCY_SAMPLES + 10; i++) {
    await sleep(20); // executors idle again, placement quiet
    const s = await probe(env, `lat-${i}`);
    // The first few are warm-up (scripts loaded, JIT).
    if (i >= 10) out.push(s);
  }
  return out;
}

function summary(xs: readonly number[]): { p50Ms: number; p99Ms: number; maxMs: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { p50Ms: percentile(s, 50), p99Ms: percentile(s, 99), maxMs: s[s.length - 1] ?? NaN };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const started = Date.now();
  const logger = process.env['BENCH_LOG'] ? createLogger('bench', { level: process.env['BENCH_LOG'] }) : silentLogger();
  const work = await mkdtemp(join('/var/tmp', 'locus-bench-dispatch-'));
  // mkdtemp makes it 0700; executors and workloads run unprivileged and must traverse it.
  await chmod(work, 0o755);
  const detected = (await detectIsolation()).kind;
  // Under BENCH_PERF_MAP executors share the host's pid space: a map file is named by the pid
  // inside the process's pid namespace, which perf (reading host pids) would never match.
  const isolation = detected === 'linux' && !PERF_MAP ? 'linux' : 'process';
  // With two rounds the "median" would be one of them picked by rule, not a median; refuse fewer than three.
  if (!(ROUNDS >= 3)) throw new Error(`BENCH_ROUNDS=${ROUNDS}: the ratio is a median of rounds and needs at least 3`);
  const loadAtStart = loadNow();
  say(`${TASKS} tasks in ${JOBS} job(s); ${AGENTS} agents x ${SLOTS} slots; ${ROUNDS} rounds; isolation ${isolation}; ${cpus().length} cpus; load ${loadAtStart.join(' / ')}`);
  let env: Env | undefined;
  try {
    env = await startEnv(join(work, 'noop'), { agents: AGENTS, slots: SLOTS, runner: 'noop', isolation, logger });
    say(`local cluster ${env.cluster.masterUrl}, framework subscribed (${((Date.now() - started) / 1000).toFixed(1)}s)`);
    const executors = await warmUp(env, AGENTS, SLOTS, 'noop');
    const slotsTotal = executors.reduce((a, e) => a + e.slots, 0);
    say(`warm: ${executors.length} executors, ${slotsTotal} slots, runner ${[...new Set(executors.map((e) => e.runner))].join(',')} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
    if (executors.some((e) => e.runner !== 'noop')) throw new Error('executors do not use the no-op runner');
    const concurrency = Math.max(1, Math.round(slotsTotal / Math.max(1, executors.length)));

    const runs = { bullmq: [] as { throughput: number; seconds: number; redis: RedisCost; cpu: CpuCost }[], locus: [] as LocusRound[] };
    /** Per round: the load average when it began and when it ended, so a slow round can be told from a busy machine. */
    const roundLoad: { before: number[]; after: number[] }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const before = loadNow();
      const bStats = await commandStats(env.admin);
      const bCpu = await treeReading();
      const b0 = await bullmqThroughput(env.redis.url, round, executors.length, concurrency, TASKS);
      const b = { ...b0, redis: redisCost(bStats, await commandStats(env.admin), TASKS), cpu: cpuPerTask(bCpu, await treeReading(), TASKS) };
      runs.bullmq.push(b);
      say(`round ${round + 1}: plain BullMQ ${b.throughput.toFixed(0)} jobs/s (${b.seconds.toFixed(2)}s); CPU ${b.cpu.totalMs} ms/task ${JSON.stringify(b.cpu.byProcess)}; load ${before.join(' / ')}`);
      if (SKIP_LOCUS) {
        roundLoad.push({ before, after: loadNow() });
        continue;
      }
      const l = await locusThroughput(env, round);
      // Executors are sized to the work and grow while it flows: what actually ran the round.
      const ran = await runningExecutors(env.admin);
      l.executors = { count: ran.length, slots: ran.reduce((a, e) => a + e.slots, 0) };
      runs.locus.push(l);
      roundLoad.push({ before, after: loadNow() });
      say(`round ${round + 1}: Locus CPU ${l.cpu.totalMs} ms/task ${JSON.stringify(l.cpu.byProcess)}; ${l.executors.count} executors, ${l.executors.slots} slots; CPU waits (share / ms per wake-up / run share) ${JSON.stringify(l.cpu.waits)}`);
      const lp = summary(l.probes.map((x) => x.runningMs));
      say(`round ${round + 1}: Locus ${l.throughput.toFixed(0)} tasks/s (${l.seconds.toFixed(2)}s); ms p50/p90: ${Object.entries(l.breakdown).map(([k, v]) => `${k} ${v.p50}/${v.p90}`).join(', ')}; load after ${roundLoad[round]?.after.join(' / ') ?? ''}`);
      say(`round ${round + 1}: under load submit->running p50 ${lp.p50Ms} ms, p99 ${lp.p99Ms} ms (${l.probes.length} probes); Redis per task: Locus ${l.redis.callsPerTask} calls ${l.redis.usecPerTask} us, BullMQ ${b.redis.callsPerTask} calls ${b.redis.usecPerTask} us`);
    }

    // The same no-op tasks in a stage of `outputs: none` (nothing staged, flushed or committed):
    // one more pair, BullMQ then Locus back to back, measured here like the rounds above.
    let noOutput: { bullmq: number; locus: number; ratio: number; cpu: CpuCost; probes: ReturnType<typeof summary>; loadAverageBefore: number[]; loadAverageAfter: number[] } | undefined;
    if (!SKIP_LOCUS && !SKIP_NO_OUTPUT) {
      const before = loadNow();
      const b = await bullmqThroughput(env.redis.url, ROUNDS, executors.length, concurrency, TASKS);
      const l = await locusThroughput(env, ROUNDS, 'none');
      noOutput = { bullmq: b.throughput, locus: l.throughput, ratio: l.throughput / b.throughput, cpu: l.cpu, probes: summary(l.probes.map((x) => x.runningMs)), loadAverageBefore: before, loadAverageAfter: loadNow() };
      say(`outputs: none: plain BullMQ ${b.throughput.toFixed(0)} jobs/s, Locus ${l.throughput.toFixed(0)} tasks/s (ratio ${noOutput.ratio.toFixed(3)}); CPU ${l.cpu.totalMs} ms/task ${JSON.stringify(l.cpu.byProcess)}; probes p50 ${noOutput.probes.p50Ms} ms, p99 ${noOutput.probes.p99Ms} ms`);
    }

    const latLoadBefore = loadNow();
    const lat = await latency(env);
    const latLoadAfter = loadNow();
    const running = summary(lat.map((s) => s.runningMs));
    const loaded = runs.locus.flatMap((l) => l.probes);
    const loadedRunning = summary(loaded.map((s) => s.runningMs));
    const loadedPlaced = summary(loaded.map((s) => s.placedMs));
    const loadedQueued = summary(loaded.map((s) => s.queuedMs).filter(Number.isFinite));
    const loadedTaken = summary(loaded.map((s) => s.takenMs).filter(Number.isFinite));
    const loadedDone = summary(loaded.map((s) => s.doneMs));
    const placed = summary(lat.map((s) => s.placedMs));
    const done = summary(lat.map((s) => s.doneMs));
    say(`latency submit->running p50 ${running.p50Ms} ms, p99 ${running.p99Ms} ms (placed p50 ${placed.p50Ms}, done p50 ${done.p50Ms})`);
    await env.stop();
    env = undefined;

    let iso = { throughput: NaN, tasks: 0, seconds: NaN, executors: 0, slots: 0, runner: 'skipped', isolation: 'skipped' };
    const isoLoad: { before: number[]; after: number[] } = { before: [], after: [] };
    if (!SKIP_ISOLATED) {
      env = await startEnv(join(work, 'iso'), { agents: ISO_AGENTS, slots: ISO_SLOTS, runner: 'auto', isolation, logger });
      const ex = await warmUp(env, ISO_AGENTS, ISO_SLOTS, 'iso');
      isoLoad.before = loadNow();
      const r = await runJobs(env, [trivialJob('isolated', ISO_TASKS)], 300_000);
      isoLoad.after = loadNow();
      iso = { throughput: r.tasks / r.seconds, tasks: r.tasks, seconds: r.seconds, executors: ex.length, slots: ex.reduce((a, e) => a + e.slots, 0), runner: [...new Set(ex.map((e) => e.runner))].join(','), isolation };
      say(`isolated: ${iso.throughput.toFixed(1)} tasks/s (${r.tasks} tasks, ${iso.executors} executors, ${iso.slots} slots, runner ${iso.runner})`);
      await env.stop();
      env = undefined;
    }

    // Each round's ratio compares two runs made back to back under the same load; the reported
    // ratio is the median of those (three or more) ratios, not the best nor the larger of two.
    const ratios = runs.locus.map((l, i) => l.throughput / (runs.bullmq[i]?.throughput ?? NaN));
    const ratio = median(ratios);
    const best = <T extends { throughput: number }>(xs: T[]): T | undefined => xs.reduce<T | undefined>((a, b) => (a === undefined || b.throughput > a.throughput ? b : a), undefined);
    const locus = best(runs.locus);
    const bullmq = best(runs.bullmq);
    const r2 = (x: number): number => Number(x.toFixed(2));
    const date = new Date().toISOString().slice(0, 10);
    const result = {
      locus: { throughput: Math.round(locus?.throughput ?? NaN), medianThroughput: Math.round(median(runs.locus.map((x) => x.throughput))), seconds: r2(locus?.seconds ?? NaN), rounds: runs.locus.map((x) => Math.round(x.throughput)), executorsAfterRound: runs.locus.map((x) => x.executors), breakdownMs: locus?.breakdown ?? {}, redisPerTask: runs.locus.map((x) => x.redis), cpuPerTask: runs.locus.map((x) => x.cpu) },
      bullmq: { throughput: Math.round(bullmq?.throughput ?? NaN), medianThroughput: Math.round(median(runs.bullmq.map((x) => x.throughput))), seconds: r2(bullmq?.seconds ?? NaN), rounds: runs.bullmq.map((x) => Math.round(x.throughput)), redisPerTask: runs.bullmq.map((x) => x.redis), cpuPerTask: runs.bullmq.map((x) => x.cpu) },
      ratio: Number(ratio.toFixed(3)),
      ratioDetail: {
        definition: `median of ${ratios.length} per-round Locus/BullMQ throughput ratios (each round: BullMQ then Locus, back to back)`,
        perRound: ratios.map((x) => Number(x.toFixed(3))),
      },
      rounds: roundLoad.map((l, i) => ({
        round: i + 1, bullmq: Math.round(runs.bullmq[i]?.throughput ?? NaN), locus: Math.round(runs.locus[i]?.throughput ?? NaN),
        ratio: Number((ratios[i] ?? NaN).toFixed(3)), loadAverageBefore: l.before, loadAverageAfter: l.after,
      })),
      latency: {
        measured: 'submit (JobService.submit called) -> the executor launched the attempt (its startedAt, read from the attempt result in its BullMQ job)',
        underLoad: {
          p50Ms: loadedRunning.p50Ms, p99Ms: loadedRunning.p99Ms, maxMs: loadedRunning.maxMs, samples: loaded.length,
          how: `single-task probe jobs submitted every ${PROBE_EVERY_MS} ms while each throughput round's ${TASKS} tasks flowed (all rounds pooled)`,
          perRound: runs.locus.map((l) => ({ ...summary(l.probes.map((x) => x.runningMs)), samples: l.probes.length })),
          placed: loadedPlaced, queued: loadedQueued, taken: loadedTaken, done: loadedDone,
        },
        idle: {
          p50Ms: running.p50Ms, p99Ms: running.p99Ms, maxMs: running.maxMs, samples: lat.length,
          placed: placed, done: done, loadAverageBefore: latLoadBefore, loadAverageAfter: latLoadAfter,
        },
      },
      noOutput: noOutput === undefined ? null : {
        what: 'the rounds\' no-op tasks in a stage of `outputs: none`: nothing staged, flushed or committed (one pair, after the rounds; not part of the ratio above)',
        bullmq: Math.round(noOutput.bullmq), locus: Math.round(noOutput.locus), ratio: Number(noOutput.ratio.toFixed(3)), cpuPerTask: noOutput.cpu,
        underLoad: noOutput.probes, loadAverageBefore: noOutput.loadAverageBefore, loadAverageAfter: noOutput.loadAverageAfter,
      },
      isolated: { throughput: r2(iso.throughput), tasks: iso.tasks, seconds: r2(iso.seconds), executors: iso.executors, slots: iso.slots, runner: iso.runner, isolation: iso.isolation, loadAverageBefore: isoLoad.before, loadAverageAfter: isoLoad.after },
      setup: {
        tasks: TASKS, jobs: JOBS, rounds: ROUNDS, agents: AGENTS, executors: executors.length, slotsPerExecutor: concurrency,
        redis: 'managed redis-server, appendonly yes, appendfsync everysec',
        dispatchWindow: DISPATCH_WINDOW ?? 'default',
        executorPrefetch: EXECUTOR_PREFETCH ?? 'default',
        path: 'JobService.submit -> stage resolution -> Coordinator placement pass -> JobService.startAttempt (Lua) -> executor BullMQ queue -> executor process (Mesos task on a local agent, no-op runner, output commit) -> Dispatcher event stream -> JobService.finishAttempt (Lua) -> job SUCCEEDED',
        baseline: `plain BullMQ: ${executors.length} worker processes x concurrency ${concurrency}, no-op processor, jobs added with addBulk (1000 per call), same Redis`,
        node: process.version, cpus: cpus().length, loadAverageAtStart: loadAtStart, loadAverage: loadNow(), wallSeconds: Math.round((Date.now() - started) / 1000),
      },
      targets: {
        ratio: 0.8, p50Ms: 20, p99Ms: 50, ratioMet: ratio >= 0.8,
        // Under load, as issue 16 item 4 asks; the idle figures are kept for comparison with earlier runs.
        p50Met: loadedRunning.p50Ms < 20, p99Met: loadedRunning.p99Ms < 50,
      },
    };
    const here = dirname(fileURLToPath(import.meta.url));
    const outDir = join(here, '..', '..', 'bench', 'results');
    await mkdir(outDir, { recursive: true });
    const outName = resultName(outDir, `dispatch-${date}`);
    await writeFile(join(outDir, `${outName}.json`), JSON.stringify(result, null, 2) + '\n');
    const md = [
      `# Dispatch benchmark, ${date}`,
      '',
      `${TASKS} trivial tasks (${JOBS} job${JOBS === 1 ? '' : 's'}) on the embedded local cluster: ${AGENTS} agents, warmed up to ${executors.length} executors x ${concurrency} slots (the framework then sizes them to each round's work: see "Executors running after each Locus round"; the BullMQ baseline keeps the warmed-up count), managed redis-server (AOF everysec), dispatch window ${DISPATCH_WINDOW ?? 'default'}, executor prefetch ${EXECUTOR_PREFETCH ?? 'default'}${EXECUTOR_NODE_FLAGS.length > 0 ? `, executors started with \`${EXECUTOR_NODE_FLAGS.join(' ')}\`` : ''}, Node ${process.version}, ${cpus().length} CPUs.`,
      '',
      'Measured path: submit -> placement -> attempt start -> executor queue -> executor process (no-op runner, output commit) -> result recorded -> job SUCCEEDED.',
      '',
      '| measure | value | target |',
      '|---|---|---|',
      `| Locus throughput (median of ${ROUNDS}: ${result.locus.rounds.join(', ')}; best ${result.locus.throughput}) | ${result.locus.medianThroughput} tasks/s | |`,
      `| plain BullMQ throughput (median of ${ROUNDS}: ${result.bullmq.rounds.join(', ')}; best ${result.bullmq.throughput}) | ${result.bullmq.medianThroughput} jobs/s | |`,
      `| ratio (median of ${ratios.length} per-round ratios ${result.ratioDetail.perRound.join(', ')}) | ${result.ratio} | >= 0.80 ${result.targets.ratioMet ? '(met)' : '(NOT met)'} |`,
      `| submit-to-running under load p50 (${loaded.length} probes while the rounds' tasks flowed) | ${loadedRunning.p50Ms} ms | < 20 ms ${result.targets.p50Met ? '(met)' : '(NOT met)'} |`,
      `| submit-to-running under load p99 | ${loadedRunning.p99Ms} ms | < 50 ms ${result.targets.p99Met ? '(met)' : '(NOT met)'} |`,
      `| submit-to-running idle p50 / p99 (${lat.length} samples, one at a time) | ${running.p50Ms} / ${running.p99Ms} ms | |`,
      ...(noOutput === undefined ? [] : [`| the same tasks in a stage of \`outputs: none\` (one more pair after the rounds: BullMQ ${Math.round(noOutput.bullmq)} jobs/s, Locus ${Math.round(noOutput.locus)} tasks/s; CPU ${noOutput.cpu.totalMs} ms per task; probes' submit-to-running p50 / p99 ${noOutput.probes.p50Ms} / ${noOutput.probes.p99Ms} ms) | ratio ${noOutput.ratio.toFixed(3)} | reported |`]),
      `| isolated runs (${iso.runner}, ${iso.isolation}, ${iso.executors} executors x ${iso.executors > 0 ? iso.slots / iso.executors : 0} slots, ${iso.tasks} tasks) | ${result.isolated.throughput} tasks/s | reported |`,
      '',
      `Latency breakdown under load (p50 / p99 ms): submit -> attempt placed ${loadedPlaced.p50Ms} / ${loadedPlaced.p99Ms}; submit -> on the executor's queue ${loadedQueued.p50Ms} / ${loadedQueued.p99Ms}; submit -> taken by the executor's worker ${loadedTaken.p50Ms} / ${loadedTaken.p99Ms}; submit -> executor running ${loadedRunning.p50Ms} / ${loadedRunning.p99Ms}; submit -> job SUCCEEDED ${loadedDone.p50Ms} / ${loadedDone.p99Ms}. Per round (running p50 / p99): ${result.latency.underLoad.perRound.map((x) => `${x.p50Ms} / ${x.p99Ms} (${x.samples})`).join('; ')}.`,
      `Latency breakdown idle (p50 / p99 ms): submit -> attempt placed ${placed.p50Ms} / ${placed.p99Ms}; submit -> executor running ${running.p50Ms} / ${running.p99Ms}; submit -> job SUCCEEDED ${done.p50Ms} / ${done.p99Ms}.`,
      `Redis work per task (INFO commandstats, server time; per round): Locus ${result.locus.redisPerTask.map((x) => `${x.callsPerTask} calls / ${x.usecPerTask} us`).join('; ')}; plain BullMQ ${result.bullmq.redisPerTask.map((x) => `${x.callsPerTask} calls / ${x.usecPerTask} us`).join('; ')}.`,
      `Redis memory kept per finished task (INFO memory, growth over the round; it includes the round's finished queue jobs, about 1.6 KB per task, which the benchmark keeps 5 min to read its breakdown from them, where a framework removes them once recorded): ${result.locus.redisPerTask.map((x) => ('keptBytesPerTask' in x ? `${String(x.keptBytesPerTask)} bytes` : '?')).join('; ')}.`,
      `CPU time per task of the benchmark's process tree (ms; framework and local agents run in the benchmark's process): Locus ${result.locus.cpuPerTask.map((x) => `${x.totalMs} (${Object.entries(x.byProcess).map(([k, v]) => `${k} ${v}`).join(', ')})`).join('; ')}; plain BullMQ ${result.bullmq.cpuPerTask.map((x) => `${x.totalMs} (${Object.entries(x.byProcess).map(([k, v]) => `${k} ${v}`).join(', ')})`).join('; ')}.`,
      `Main threads' waits for a CPU (schedstat; per round, by process: share of the round runnable but not running / mean wait each time it became runnable, ms / share on a CPU; a process's event loop is delayed by the first): Locus ${result.locus.cpuPerTask.map((x) => Object.entries(x.waits).map(([k, v]) => `${k} ${v.waitShare} / ${v.msPerWakeup} / ${v.runShare}`).join(', ')).join('; ')}.`,
      `Locus by command in round 1 (calls / us per task): ${(result.locus.redisPerTask[0]?.byCommand ?? []).map((x) => `${x.command} ${x.callsPerTask} / ${x.usecPerTask}`).join(', ')}.`,
      `BullMQ by command in round 1 (calls / us per task): ${(result.bullmq.redisPerTask[0]?.byCommand ?? []).map((x) => `${x.command} ${x.callsPerTask} / ${x.usecPerTask}`).join(', ')}.`,
      `Where an attempt's time goes in the best Locus round (p50 / p90 ms): ${Object.entries(result.locus.breakdownMs).map(([k, v]) => `${k} ${v.p50} / ${v.p90}`).join('; ')} (attemptsInFlight: a count, not ms; outputsDiskWalk: one du-style walk of the outputs root after the round).`,
      `Executors running after each Locus round (count / slots in all): ${runs.locus.map((x) => `${x.executors?.count ?? '?'} / ${x.executors?.slots ?? '?'}`).join('; ')}.`,
      `Baseline: ${result.setup.baseline}.`,
      `Load average (1 / 5 / 15 min) at the start: ${loadAtStart.join(' / ')}; at the end: ${result.setup.loadAverage.join(' / ')}; wall time ${result.setup.wallSeconds}s. The machine has ${cpus().length} CPUs and is shared with other work; a load above ${cpus().length} means more runnable processes than CPUs (this benchmark's own Redis, executors and workers included), so every figure here was taken under contention.`,
      '',
      '| round | plain BullMQ jobs/s | Locus tasks/s | ratio | load before | load after |',
      '|---|---|---|---|---|---|',
      ...result.rounds.map((r) => `| ${r.round} | ${r.bullmq} | ${r.locus} | ${r.ratio} | ${r.loadAverageBefore.join(' / ')} | ${r.loadAverageAfter.join(' / ')} |`),
      `| latency samples | | | | ${latLoadBefore.join(' / ')} | ${latLoadAfter.join(' / ')} |`,
      `| isolated runs | | ${result.isolated.throughput} | | ${isoLoad.before.join(' / ')} | ${isoLoad.after.join(' / ')} |`,
      '',
    ].join('\n');
    await writeFile(join(outDir, `${outName}.md`), md);
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    if (env) await env.stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
}

if (process.argv.includes('--bullmq-worker')) {
  bullmqWorkerChild().catch((err: unknown) => {
    process.stderr.write(`bench worker: ${String(err)}\n`);
    process.exit(1);
  });
} else {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
