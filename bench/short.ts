/**
 * Short-task benchmark (`npm run bench:short`): the figure a data engineer
 * meets first. 100 tasks of `sleep 0.2`, each asking 0.1 cpu, on the embedded
 * local cluster (`locus local`) with one agent of 2 cpus: seconds from the
 * submit (HTTP POST /v1/jobs, as `locus submit` sends it) to the job
 * SUCCEEDED (as `locus submit` learns it: the job's event stream), on a fresh framework with no executor running (the cold path:
 * offers, executor launch and growth included), then the same job again on
 * the executors the first run left (warm). A second row runs 1,000 such
 * tasks on 3 agents, cold (`--small-only` skips it). `--isolation process`
 * runs tasks without namespaces and cgroups, to tell their cost apart;
 * `--runner isolator` runs them in the executor's own containers instead of
 * the agent's nested ones; `--held-starts on|off|auto` sets executor-held-starts (default auto). Each run's CPU per
 * task is split by process role.
 *
 * Every task is checked SUCCEEDED before a time is trusted. The ideal is the
 * work itself: waves of 0.2 s, as many tasks per wave as 0.1-cpu slots fit in
 * the agents once each executor's 0.1-cpu overhead is taken off.
 *
 * Prints one line per run and, last, one JSON object: the 100-task figures
 * at the top level ({tasks, agents, cpusPerAgent, taskCpus, seconds,
 * idealSeconds}), the load average, and the 1,000-task row under `large`.
 * Writes the same object to bench/results/short-<date>.json (a later run of the day: -2, -3...; BENCH_OUT names another file, without
 * the extension, so that a run does not overwrite another's figures).
 */
import { resultName } from './out-name.js';
import { profilingExecutorMain } from './executor-profile.js';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startManagedRedis } from '../src/app/redis-server.js';
import { resolveSettings } from '../src/app/config.js';
import { startFramework } from '../src/app/framework.js';
import { startLocalCluster } from '../src/local/index.js';
import { detectIsolation } from '../src/executor/isolation/index.js';
import { DEFAULT_OPTIONS } from '../src/scheduler/placement/index.js';
import { silentLogger } from '../src/obs/log.js';
import { asEventView, readSse } from '../src/cli/progress.js';

/** `--isolation process` separates the cost of isolated containers from the rest of the path. */
const ISOLATION = ((): 'auto' | 'linux' | 'process' => {
  const i = process.argv.indexOf('--isolation');
  const v = i >= 0 ? process.argv[i + 1] : 'auto';
  if (v !== 'auto' && v !== 'linux' && v !== 'process') throw new Error(`--isolation must be auto, linux or process, got '${v ?? ''}'`);
  return v;
})();
/** `--runner isolator` runs attempts in the executor's own containers instead of the agent's nested ones. */
const RUNNER = ((): 'auto' | 'agent' | 'isolator' => {
  const i = process.argv.indexOf('--runner');
  const v = i >= 0 ? process.argv[i + 1] : 'auto';
  if (v !== 'auto' && v !== 'agent' && v !== 'isolator') throw new Error(`--runner must be auto, agent or isolator, got '${v ?? ''}'`);
  return v;
})();
/** Where executor processes write CPU profiles (BENCH_PROFILE_DIR; unset: no profiling; the framework's side: run this with --cpu-prof). */
const PROFILE_DIR = process.env['BENCH_PROFILE_DIR'];
/** BENCH_DISPATCH_WINDOW=true|false sets the framework's `dispatch-window` (unset: its default). */
const DISPATCH_WINDOW = process.env['BENCH_DISPATCH_WINDOW'];
/** BENCH_KEPT_SANDBOXES=N sets the framework's `executor-kept-sandboxes` (unset: the executors' default). */
const KEPT_SANDBOXES = process.env['BENCH_KEPT_SANDBOXES'];
/** `--held-starts on|off|auto` sets the framework's executor-held-starts (default: the framework's own, auto). */
const HELD_STARTS = ((): 'on' | 'off' | 'auto' => {
  const i = process.argv.indexOf('--held-starts');
  const v = i >= 0 ? process.argv[i + 1] : 'auto';
  if (v !== 'on' && v !== 'off' && v !== 'auto') throw new Error(`--held-starts must be on, off or auto, got '${v ?? ''}'`);
  return v;
})();
const TASK_SECONDS = 0.2;
const TASK_CPUS = 0.1;
const CPUS_PER_AGENT = 2;

interface Row {
  readonly tasks: number;
  readonly agents: number;
  readonly cpusPerAgent: number;
  readonly taskCpus: number;
  /** Submit → job SUCCEEDED on a fresh framework (no executor yet). */
  readonly seconds: number;
  /** The same job again, on the executors the first run left (small row only). */
  readonly warmSeconds?: number;
  readonly idealSeconds: number;
  /** Most attempts seen running at once (sampled every 50 ms). */
  readonly peakRunning: number;
  /** Where the cold run's time went (ms): see Breakdown. */
  readonly breakdownMs: Breakdown;
  /** The same for the warm run. */
  readonly warmBreakdownMs?: Breakdown;
  readonly isolation: string;
  /** Who starts the containers: auto (the agent's nested containers where it isolates them), agent or isolator. */
  readonly runner: string;
  /** executor-held-starts as set for the run (`--held-starts`). */
  readonly heldStarts: 'on' | 'off' | 'auto';
  /** dispatch-window as set for the run (BENCH_DISPATCH_WINDOW), or 'default'. */
  readonly dispatchWindow: string;
  /** executor-kept-sandboxes as set for the run (BENCH_KEPT_SANDBOXES), or 'default'. */
  readonly keptSandboxes: string;
}

/**
 * The cold run's time line, from the attempts' records: submit → first
 * attempt dispatched (job resolution, offers, executor launch), the mean
 * attempt as the scheduler saw it (dispatch → result: queue, executor,
 * container start, the 0.2 s sleep, output commit, result), and the last
 * result → job SUCCEEDED.
 */
interface Breakdown {
  /**
   * CPU time per task (ms) of this process (framework, master, agents) and
   * every process under it (Redis, executors, task containers): what 100
   * tasks cost the machine, whatever else runs on it.
   */
  readonly cpuPerTask: number;
  /** cpuPerTask by role (see treeCpu): where a task's CPU goes. */
  readonly cpuPerTaskByRole: CpuByRole;
  readonly toFirstDispatch: number;
  readonly meanAttempt: number;
  readonly maxAttempt: number;
  readonly lastResultToDone: number;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** Where a process tree's CPU went, by role (ms so far). */
type CpuByRole = Record<'locus' | 'executors' | 'launcher' | 'containers' | 'redis', number>;

/**
 * CPU ms used so far by this process, its reaped children, and every live descendant, by role:
 * this process (framework, master, agent), the executors, the warm container launcher (the native
 * locus-spawn, or the Node helper that spawns bwrap), the containers (the namespace set-up and the
 * workload, with bwrap and setpriv on that path: reaped by the launcher or an executor, so counted
 * in their children's time, or still alive) and Redis.
 */
function treeCpu(): { total: number; byRole: CpuByRole } {
  const stats = new Map<number, { ppid: number; own: number; reaped: number; cmd: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const raw = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
      // After the command: [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime.
      stats.set(Number(name), { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]), cmd });
    } catch {
      // Gone meanwhile.
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (p === process.pid) return true;
      p = stats.get(p)?.ppid ?? 0;
    }
    return false;
  };
  const byRole: CpuByRole = { locus: 0, executors: 0, launcher: 0, containers: 0, redis: 0 };
  for (const [pid, st] of stats) {
    if (!inTree(pid)) continue;
    if (pid === process.pid) {
      byRole.locus += st.own;
      byRole.containers += st.reaped;
    } else if (st.cmd.includes('redis-server')) {
      byRole.redis += st.own + st.reaped;
    } else if (st.cmd.includes(' executor ') && st.cmd.includes('--executor-id')) {
      byRole.executors += st.own;
      byRole.containers += st.reaped;
    } else if ((st.cmd.includes(' -e ') && st.cmd.includes('node')) || st.cmd.includes('locus-spawn')) {
      byRole.launcher += st.own;
      byRole.containers += st.reaped;
    } else {
      byRole.containers += st.own + st.reaped;
    }
  }
  let total = 0;
  for (const k of Object.keys(byRole) as (keyof CpuByRole)[]) {
    byRole[k] *= TICK_MS;
    total += byRole[k];
  }
  return { total, byRole };
}

/** Resolves when the job's event stream says it ended (the stream closes after its terminal state). */
async function waitForEnd(httpUrl: string, token: string, id: string): Promise<void> {
  const res = await fetch(`${httpUrl}/v1/jobs/${id}/events`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200 || !res.body) throw new Error(`the event stream of ${id} answered ${res.status}`);
  for await (const msg of readSse(res.body)) {
    if (msg.event !== 'job') continue;
    const e = asEventView(JSON.parse(msg.data) as unknown);
    if (e.state === 'SUCCEEDED' || e.state === 'FAILED' || e.state === 'CANCELLED') return;
  }
  throw new Error(`the event stream of ${id} ended before the job did`);
}

/** CPU per task since `before`, in all and by role. */
function cpuSince(before: { total: number; byRole: CpuByRole }, tasks: number): { cpuPerTask: number; cpuPerTaskByRole: CpuByRole } {
  const now = treeCpu();
  const byRole = { ...now.byRole };
  for (const k of Object.keys(byRole) as (keyof CpuByRole)[]) byRole[k] = Math.round(((now.byRole[k] - before.byRole[k]) / tasks) * 10) / 10;
  return { cpuPerTask: Math.round((now.total - before.total) / tasks), cpuPerTaskByRole: byRole };
}

function say(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

const r2 = (x: number): number => Number(x.toFixed(2));

/** Waves of TASK_SECONDS, each as wide as the slots the agents hold. */
function ideal(tasks: number, agents: number): number {
  const perAgent = Math.floor((CPUS_PER_AGENT - DEFAULT_OPTIONS.executorOverhead.cpus) / TASK_CPUS + 1e-9);
  return Math.ceil(tasks / (perAgent * agents)) * TASK_SECONDS;
}

async function runRow(tasks: number, agents: number, isolation: string, warmRun = true): Promise<Row> {
  const work = await mkdtemp(join(tmpdir(), 'locus-bench-short-'));
  // Workloads run unprivileged: every ancestor of the outputs must be reachable.
  await chmod(work, 0o755);
  const logger = silentLogger();
  const redis = await startManagedRedis({ dataDir: join(work, 'redis'), logger });
  const cluster = await startLocalCluster({
    workDir: join(work, 'local'), agents, racks: 1, port: 0, isolation: ISOLATION, logger,
    resources: `cpus:${CPUS_PER_AGENT};mem:4096;disk:20480;ports:[31000-32000]`,
  });
  const executorMain = PROFILE_DIR === undefined ? undefined : await profilingExecutorMain(work, PROFILE_DIR);
  const settings = resolveSettings({
    master: cluster.masterUrl, redis: redis.url, 'http-port': '0', 'grpc-port': '0',
    'state-dir': work, 'local-work-dir': join(work, 'local'), isolation: ISOLATION, 'executor-runner': RUNNER, 'executor-idle-timeout': '5m',
    ...(executorMain === undefined ? {} : { 'executor-main': executorMain }),
    'executor-held-starts': HELD_STARTS === 'on' ? 'true' : HELD_STARTS === 'off' ? 'false' : 'auto',
    ...(DISPATCH_WINDOW === undefined ? {} : { 'dispatch-window': DISPATCH_WINDOW }),
    ...(KEPT_SANDBOXES === undefined ? {} : { 'executor-kept-sandboxes': KEPT_SANDBOXES }),
  });
  const fw = await startFramework(settings, { logger, agents: () => cluster.agents });
  try {
    await fw.waitForSubscribed(30_000);
    const run = async (name: string): Promise<{ seconds: number; peak: number; breakdown: Breakdown }> => {
      const spec = {
        name, retries: 0, timeout: '5m',
        task: { command: ['sleep', String(TASK_SECONDS)], resources: { cpus: TASK_CPUS, mem: '32MiB', disk: '1MiB' } },
        tasks: Array.from({ length: tasks }, () => ({})),
      };
      // The client's own start is not Locus's: Node loads its fetch implementation (undici, and
      // compiles its HTTP parser) on the first call, ~30 ms of this process's CPU, which the
      // first (cold) run used to pay inside its figure. A `locus submit` pays it in a process of
      // its own. One readiness probe before the clock starts loads it.
      await (await fetch(`${fw.httpUrl}/readyz`)).arrayBuffer();
      const cpu0 = treeCpu();
      const t0 = performance.now();
      const wall0 = Date.now();
      const res = await fetch(`${fw.httpUrl}/v1/jobs`, {
        method: 'POST', headers: { authorization: `Bearer ${fw.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(spec),
      });
      const body = (await res.json()) as { id?: string };
      if (res.status !== 201 || body.id === undefined) throw new Error(`submit answered ${res.status}: ${JSON.stringify(body)}`);
      const id = body.id;
      // The job's end as `locus submit` sees it: its event stream (GET /v1/jobs/:id/events) ends
      // with the job's terminal state. Polling every 50 ms, as this benchmark did before, added
      // 25 ms to the figure on average (up to 50).
      const ended = waitForEnd(fw.httpUrl, fw.adminToken, id).then(() => performance.now());
      let peak = 0;
      let seconds: number | undefined;
      void ended.then((t) => (seconds = (t - t0) / 1000), () => undefined);
      const deadline = t0 + 300_000;
      for (;;) {
        const job = await fw.jobs.get(id);
        peak = Math.max(peak, job.counts.running);
        if (job.state === 'SUCCEEDED' || job.state === 'FAILED' || job.state === 'CANCELLED') {
          seconds ??= ((await ended) - t0) / 1000;
          if (job.state !== 'SUCCEEDED' || job.counts.succeeded !== tasks) {
            throw new Error(`job ${id} ended ${job.state} with ${job.counts.succeeded}/${tasks} succeeded: ${job.message ?? ''}`);
          }
          const done = wall0 + seconds * 1000;
          const attempts = (await fw.jobs.tasks(id)).flatMap((t) => t.attempts);
          const starts = attempts.map((a) => a.startedAt);
          const spans = attempts.filter((a) => a.finishedAt !== undefined).map((a) => (a.finishedAt ?? 0) - a.startedAt);
          const breakdown: Breakdown = {
            ...cpuSince(cpu0, tasks),
            toFirstDispatch: Math.min(...starts) - wall0,
            meanAttempt: Math.round(spans.reduce((x, y) => x + y, 0) / Math.max(1, spans.length)),
            maxAttempt: Math.max(0, ...spans),
            lastResultToDone: Math.round(done - Math.max(...attempts.map((a) => a.finishedAt ?? 0))),
          };
          return { seconds, peak, breakdown };
        }
        if (performance.now() > deadline) throw new Error(`job ${id} still ${job.state} after 300 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const cold = await run(`short-${tasks}-cold`);
    say(`${tasks} tasks on ${agents} agent(s): ${cold.seconds.toFixed(2)} s cold (peak ${cold.peak} running; ms ${JSON.stringify(cold.breakdown)})`);
    // The large row runs cold only: its warm figure adds minutes and tells nothing the small row does not.
    const warm = warmRun ? await run(`short-${tasks}-warm`) : undefined;
    if (warm) say(`${tasks} tasks on ${agents} agent(s): ${warm.seconds.toFixed(2)} s warm (peak ${warm.peak} running; ms ${JSON.stringify(warm.breakdown)})`);
    return {
      tasks, agents, cpusPerAgent: CPUS_PER_AGENT, taskCpus: TASK_CPUS, heldStarts: HELD_STARTS, dispatchWindow: DISPATCH_WINDOW ?? 'default', keptSandboxes: KEPT_SANDBOXES ?? 'default',
      seconds: r2(cold.seconds), ...(warm ? { warmSeconds: r2(warm.seconds) } : {}), idealSeconds: r2(ideal(tasks, agents)),
      peakRunning: Math.max(cold.peak, warm?.peak ?? 0), breakdownMs: cold.breakdown, ...(warm ? { warmBreakdownMs: warm.breakdown } : {}), isolation, runner: RUNNER,
    };
  } finally {
    await fw.stop().catch((err: unknown) => say(`framework stop: ${String(err)}`));
    await cluster.stop().catch((err: unknown) => say(`cluster stop: ${String(err)}`));
    await redis.stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** What `auto` isolation gives on this host (linux: namespaces + cgroups; process: rlimits only). */
async function isolationKind(): Promise<string> {
  return ISOLATION === 'auto' ? (await detectIsolation()).kind : ISOLATION;
}

async function main(): Promise<void> {
  const smallOnly = process.argv.includes('--small-only');
  const started = Date.now();
  const loadBefore = loadavg().map(r2);
  const isolation = await isolationKind();
  const small = await runRow(100, 1, isolation);
  const large = smallOnly ? undefined : await runRow(1000, 3, isolation, false);
  const date = new Date().toISOString().slice(0, 10);
  const result = {
    ...small,
    loadAverage: loadavg().map(r2),
    loadAverageBefore: loadBefore,
    ...(large ? { large } : {}),
    target: { seconds: 1.5, met: small.seconds <= 1.5 },
    environment: { node: process.version, cpus: cpus().length, wallSeconds: Math.round((Date.now() - started) / 1000) },
  };
  const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, `${resultName(outDir, `short-${date}`)}.json`), JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`bench: failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
