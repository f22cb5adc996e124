/**
 * The chaos suite (`npm run chaos`): faults injected while multi-stage jobs
 * run on the local cluster, with two `locus framework --ha` instances (a
 * leader and a standby) on a real ZooKeeper and a real Redis (AOF, fsync
 * always). Each scenario injects its fault `runs` times, each time once the
 * running job has made progress since the last one; a job that finishes
 * before all faults were injected is followed by another. Then every job
 * must finish, and the suite counts:
 * - jobsCompleted / jobs: jobs SUCCEEDED out of those submitted;
 * - tasksLost: tasks not SUCCEEDED, or SUCCEEDED without a committed output;
 * - duplicateOutputs: committed output directories beyond one per task,
 *   successful attempts beyond one per output generation (a task recomputed
 *   after its recorded output could not be read succeeds once more, under its
 *   next generation's ledger id: not a second commit), and outputs whose
 *   content names another attempt than the one recorded;
 * - volumesLost: a persistent volume reserved at the start that is no longer
 *   READY (or no longer in the master) at the end of a scenario;
 * - recoverySecondsMax: per fault, seconds from the fault to the first task
 *   finishing afterwards with a leader ready (the longest).
 *
 * Scenarios: kill -9 the leader (a new standby replaces it), SIGSTOP the
 * leader beyond its ZooKeeper session then SIGCONT (it must exit 3), kill -9
 * an executor, kill -9 Redis and restart it from its AOF (and its ACL file,
 * so executors reconnect with their users, as with `locus up`), drop the master's
 * event streams (every scheduler re-subscribes; the local master cannot be
 * restarted in place with in-process agents), restart the master (in an
 * environment of its own with `locus agent` processes), fill an agent's
 * disk (agent-3's work directory is a 256 MiB tmpfs, mounted before the
 * cluster starts and unmounted on every exit path; its jobs have more tasks
 * than the agents run at once, and once attempts run there it is filled to
 * ENOSPC for `fillSeconds`, longer until an attempt failed there but at most
 * twice that; the tasks write to their sandboxes after their work too, so
 * those running there fail, and must run elsewhere), cut an agent off
 * the network for `cutSeconds` (in an environment of its own on separate
 * hosts: network namespaces in 10.77.0.0/24, each agent a `locus agent`
 * process on its host; the link of the volume's host is set down on the
 * bridge and up again; where namespaces cannot be made, outside CI, its
 * process is stopped instead and the result says so), lose an agent for good
 * (last: the rest runs on two agents). restart-master fails if any attempt
 * did not succeed: a master failover must not cost running tasks.
 *
 * `node dist/bench/chaos.js` runs the full version (10 leader kills in one
 * job, 300-task jobs) and writes bench/results/chaos-<date>.json and .md,
 * then runs `npm run fuzz` if the project has one; `--quick` runs the
 * bounded one the test suite runs (test/integration/chaos.test.ts); `--no-fuzz`
 * leaves the fuzzing pass out.
 * The last line printed is one JSON object `{"scenarios": [...]}`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startLocalCluster, type LocalCluster } from '../src/local/index.js';
import { startNetnsCluster, type NetnsCluster } from '../src/local/netns-cluster.js';
import { commitKey, decodeCommittedOutput, ledgerIdOf } from '../src/executor/contract.js';
import { waitForRedisPong } from '../src/app/redis-server.js';
import { freePort } from './ports.js';

/** One scenario's figures, as the issue asks for them. */
export interface ScenarioResult {
  readonly name: string;
  readonly runs: number;
  readonly jobs: number;
  readonly jobsCompleted: number;
  readonly tasksLost: number;
  readonly duplicateOutputs: number;
  readonly volumesLost: number;
  readonly recoverySecondsMax: number;
  /** How the fault was injected, where there is more than one way (cut-agent: the link, or the process as a fallback). */
  readonly fault?: string;
  /** What went wrong, if anything (empty when all figures are as they must be). */
  readonly problems: readonly string[];
}

/** The scenarios, in the order they run. */
export const SCENARIOS = ['kill-leader', 'pause-leader', 'kill-executor', 'kill-redis', 'master-streams', 'restart-master', 'fill-disk', 'cut-agent', 'lose-agent'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** How much chaos. */
export interface ChaosOptions {
  readonly runs: Readonly<Record<ScenarioName, number>>;
  /** Tasks per stage (two stages). */
  readonly tasksPerStage: number;
  /** Seconds each task sleeps. */
  readonly taskSeconds: number;
  readonly cutSeconds: number;
  /** How long the full agent's disk stays full (fill-disk). */
  readonly fillSeconds: number;
  /** ZooKeeper session timeout of the schedulers (ms). */
  readonly sessionMs: number;
  /** Hard bound on one scenario (ms): a scenario still running then fails. */
  readonly scenarioTimeoutMs: number;
  readonly only?: readonly ScenarioName[];
  readonly log?: (line: string) => void;
  /**
   * Inject each fault only once the running job has this many tasks succeeded (default: any):
   * e.g. tasksPerStage to cut an agent while the second stage reads the first one's outputs.
   */
  readonly faultAfterSucceeded?: number;
  /** cut-agent cuts the host running most of the job's attempts instead of the volume's host. */
  readonly cutBusiest?: boolean;
  /**
   * Run the scenarios with a cluster of their own (restart-master, and cut-agent on separate
   * hosts) beside the others instead of after them: the bounded run's wall time, at the price of
   * faults measured on a busier machine. The full run keeps them one at a time.
   */
  readonly overlapSeparate?: boolean;
}

export const QUICK: ChaosOptions = {
  runs: { 'kill-leader': 2, 'pause-leader': 1, 'kill-executor': 1, 'kill-redis': 1, 'master-streams': 1, 'restart-master': 1, 'fill-disk': 1, 'cut-agent': 1, 'lose-agent': 1 },
  tasksPerStage: 30, taskSeconds: 1, cutSeconds: 12, fillSeconds: 12, sessionMs: 5_000, scenarioTimeoutMs: 150_000,
  overlapSeparate: true,
};

export const FULL: ChaosOptions = {
  runs: { 'kill-leader': 10, 'pause-leader': 2, 'kill-executor': 2, 'kill-redis': 2, 'master-streams': 2, 'restart-master': 2, 'fill-disk': 2, 'cut-agent': 1, 'lose-agent': 1 },
  tasksPerStage: 150, taskSeconds: 1, cutSeconds: 30, fillSeconds: 30, sessionMs: 5_000, scenarioTimeoutMs: 900_000,
};

const TOKEN = 'c'.repeat(64);
/** cut-agent's hosts: the only range besides loopback this suite may send traffic to. */
const CUT_SUBNET = '10.77.0';
/** Heartbeat silence after which the cut agent is lost (below cutSeconds, so the cut is a real loss and return). */
const CUT_PING_TIMEOUT_S = 8;
const ZK_JARS = ['/usr/share/java/zookeeper.jar', '/usr/share/java/slf4j-log4j12.jar', '/usr/share/java/log4j-1.2.jar'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The built CLI, from dist/bench/ (npm run chaos) or bench/ (vitest, after the suite's build). */
function cliPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, '../src/cli/main.js'), join(here, '../dist/src/cli/main.js')]) if (existsSync(p)) return resolve(p);
  throw new Error('the built CLI (dist/src/cli/main.js) is missing: npm run build');
}


function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

/** A redis-server with AOF (fsync always) that can be killed and restarted from it. */
class ChaosRedis {
  private proc: ChildProcess | undefined;
  /** `bridge`: an address on the hosts' bridge to listen on too (executors on separate hosts reach it there). */
  constructor(readonly port: number, readonly dir: string, readonly bridge?: string) {}
  get url(): string {
    return `redis://${this.bridge ?? '127.0.0.1'}:${this.port}`;
  }
  async start(): Promise<void> {
    const bind = this.bridge === undefined ? ['127.0.0.1'] : ['127.0.0.1', this.bridge, '--protected-mode', 'no'];
    // Executors' Redis users live in an ACL file, as with `locus up` (src/app/redis-server.ts):
    // without one a restart locks every executor out for good, and kill-redis would test lost
    // executors rather than executors that reconnect to the restarted Redis. Kept across restarts.
    const aclFile = join(this.dir, 'users.acl');
    if (!existsSync(aclFile)) writeFileSync(aclFile, 'user default on nopass ~* &* +@all\n');
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', ...bind, '--dir', this.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--aclfile', aclFile], { stdio: 'ignore' });
    await waitForRedisPong(this.port, { timeoutMs: 15_000 });
  }
  async kill9(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill('SIGKILL');
    await exited(this.proc);
  }
  async stop(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill('SIGTERM');
    await exited(this.proc);
  }
}

function ruok(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port });
    let data = '';
    s.setTimeout(500, () => { s.destroy(); res(false); });
    s.on('connect', () => s.write('ruok'));
    s.on('data', (d) => { data += d.toString(); });
    s.on('error', () => res(false));
    s.on('close', () => res(data === 'imok'));
  });
}

/** Debian's ZooKeeper, standalone on a free loopback port. */
async function startZk(dir: string): Promise<{ connectString: string; stop: () => Promise<void> }> {
  if (!ZK_JARS.every((j) => existsSync(j))) throw new Error('Debian package zookeeper is not installed (apt-get install zookeeper)');
  const port = await freePort();
  for (const d of ['conf', 'data', 'log']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'conf', 'zoo.cfg'), [
    'tickTime=500', 'initLimit=10', 'syncLimit=5', `dataDir=${join(dir, 'data')}`, `clientPort=${port}`, 'clientPortAddress=127.0.0.1',
    'admin.enableServer=false', '4lw.commands.whitelist=ruok', 'maxClientCnxns=0', 'minSessionTimeout=1000', 'maxSessionTimeout=20000', '',
  ].join('\n'));
  writeFileSync(join(dir, 'conf', 'log4j.properties'), `log4j.rootLogger=WARN, F\nlog4j.appender.F=org.apache.log4j.FileAppender\nlog4j.appender.F.File=${join(dir, 'log', 'zk.log')}\nlog4j.appender.F.layout=org.apache.log4j.PatternLayout\n`);
  const proc = spawn('java', ['-Xms32m', '-Xmx128m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', `-Dlog4j.configuration=file:${join(dir, 'conf', 'log4j.properties')}`,
    '-cp', [join(dir, 'conf'), ...ZK_JARS].join(':'), 'org.apache.zookeeper.server.quorum.QuorumPeerMain', join(dir, 'conf', 'zoo.cfg')], { stdio: 'ignore' });
  const deadline = Date.now() + 40_000;
  while (!(await ruok(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error('zookeeper did not start');
    }
    await sleep(100);
  }
  return { connectString: `127.0.0.1:${port}`, stop: async () => { proc.kill('SIGKILL'); await exited(proc); } };
}

/** One `locus framework --ha` process. */
interface Instance {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly httpUrl: string;
  out: string;
}

interface JobView {
  readonly id: string;
  readonly state: string;
  readonly outputDir: string;
  readonly counts: { total: number; running: number; succeeded: number; failed: number };
}

/** The environment every scenario shares. */
class Env {
  readonly instances: Instance[] = [];
  /** The agent whose work directory is a size-limited tmpfs (fill-disk), if one was mounted. */
  smallDisk: { readonly hostname: string; readonly root: string } | undefined;
  /** Stop the master and start it again on its port with its work directory (restart-master). */
  restartMaster: (() => Promise<void>) | undefined;
  /** Set a host's network link down (cut) or up again (cut-agent on separate hosts). */
  setLink: ((hostname: string, up: boolean) => Promise<void>) | undefined;
  private seq = 0;
  constructor(
    readonly dir: string,
    readonly redis: ChaosRedis,
    readonly zkUrl: string,
    public cluster: LocalCluster,
    readonly o: ChaosOptions,
  ) {}

  live(): Instance[] {
    return this.instances.filter((i) => i.proc.exitCode === null && i.proc.signalCode === null);
  }

  async spawnInstance(): Promise<Instance> {
    const name = `s${++this.seq}`;
    const [http, grpc] = [await freePort(), await freePort()];
    const flags = {
      master: this.cluster.masterUrl, redis: this.redis.url, 'state-dir': join(this.dir, 'state'), 'local-work-dir': join(this.dir, 'local'),
      'http-port': String(http), 'grpc-port': String(grpc), 'admin-token': TOKEN, 'executor-idle-timeout': '60s',
      'locality-wait-node': '1s', 'locality-wait-rack': '1s', ha: this.zkUrl, 'ha-session-timeout': `${this.o.sessionMs}ms`,
    };
    const proc = spawn(process.execPath, [cliPath(), 'framework', ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v])], {
      // CHAOS_LOG_DIR: each instance's whole log also goes to <dir>/<env>-<instance>.log, at
      // CHAOS_LOG_LEVEL (default warn), to follow what the scheduler decided.
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: process.env['CHAOS_LOG_LEVEL'] ?? 'warn', LOCUS_LOG_FORMAT: 'json' },
    });
    const inst: Instance = { name, proc, httpUrl: '', out: '' };
    const logDir = process.env['CHAOS_LOG_DIR'];
    const logFile = logDir === undefined ? undefined : join(logDir, `${basename(this.dir)}-${name}.log`);
    const append = (b: Buffer): void => {
      inst.out = (inst.out + b.toString()).slice(-20_000);
      if (logFile !== undefined) appendFileSync(logFile, b);
    };
    proc.stdout?.on('data', append);
    proc.stderr?.on('data', append);
    const deadline = Date.now() + 30_000;
    while (!/http api:\s+(\S+)/.test(inst.out)) {
      if (proc.exitCode !== null) throw new Error(`${name} exited ${proc.exitCode}: ${inst.out}`);
      if (Date.now() > deadline) {
        // Not in `instances` yet, so no teardown would stop it.
        proc.kill('SIGKILL');
        throw new Error(`${name} did not start: ${inst.out}`);
      }
      await sleep(50);
    }
    const ready: Instance = { ...inst, httpUrl: /http api:\s+(\S+)/.exec(inst.out)?.[1] ?? '' };
    // Keep collecting output on the stored object.
    proc.stdout?.off('data', append);
    proc.stderr?.off('data', append);
    const keep = (b: Buffer): void => {
      ready.out = (ready.out + b.toString()).slice(-20_000);
      if (logFile !== undefined) appendFileSync(logFile, b);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.instances.push(ready);
    return ready;
  }

  async role(i: Instance): Promise<string | undefined> {
    try {
      const res = await fetch(`${i.httpUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
      const body = (await res.json()) as { role?: string };
      return res.status === 200 ? body.role : `not-ready:${body.role ?? ''}`;
    } catch {
      return undefined;
    }
  }

  async leader(timeoutMs: number): Promise<Instance> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // As a supervisor would: an instance that exited (a leader that lost the lead exits 3; on
      // a loaded machine a starting leader can miss its ZooKeeper session) is replaced.
      while (this.live().length < 2) await this.spawnInstance();
      for (const i of this.live()) if ((await this.role(i)) === 'leader') return i;
      if (Date.now() > deadline) throw new Error(`no leader within ${timeoutMs} ms; last output:\n${this.instances.slice(-3).map((i) => `--- ${i.name}\n${i.out.slice(-1_500)}`).join('\n')}`);
      await sleep(100);
    }
  }

  async api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    // Any live instance answers (standbys forward); try each until one does.
    let last: unknown;
    for (const i of this.live()) {
      try {
        const res = await fetch(`${i.httpUrl}${path}`, {
          method, headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(10_000),
        });
        const json = (await res.json()) as Record<string, unknown>;
        if (res.status === 503) {
          last = json;
          continue;
        }
        return { status: res.status, json };
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`no instance answered ${method} ${path}: ${String(last instanceof Error ? last.message : JSON.stringify(last))}`);
  }

  async job(id: string): Promise<JobView> {
    const r = await this.api('GET', `/v1/jobs/${id}`);
    if (r.status !== 200) throw new Error(`GET job ${id}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json as unknown as JobView;
  }
}

/**
 * Tasks per stage of a scenario's jobs. fill-disk's need more than the three agents hold at once
 * (4 CPUs each, attempts of 0.25 CPU: about 45 with the executors): 30 fit on two agents, and
 * placement, which packs attempts onto agents whose executors are already running, then often
 * left the small agent without any work while its disk was full (the fault had no effect).
 */
function tasksPerStageOf(name: ScenarioName, o: ChaosOptions): number {
  return name === 'fill-disk' ? Math.max(o.tasksPerStage, 60) : o.tasksPerStage;
}

function jobSpec(name: string, o: ChaosOptions, tasks: number, writesAtEnd = false): unknown {
  // Each task writes 256 KiB of scratch to its sandbox first, as real tasks write logs and
  // temporary files there: on an agent whose disk is full it fails (fill-disk). fill-disk's
  // tasks write there again after their sleep, as a task's log grows while it runs: an attempt
  // already running on the agent when its disk fills fails too, not only one placed there
  // afterwards (with containers starting in milliseconds, a stage's attempts are often all
  // placed before the fault, and the first kind alone left the fault without effect).
  const scratch = 'head -c 262144 /dev/zero > "${MESOS_SANDBOX:-.}/scratch"';
  const task = (stage: string): { command: string[] } => ({
    command: ['sh', '-c', `${scratch} && sleep ${o.taskSeconds}${writesAtEnd ? ` && ${scratch.replace('/scratch"', '/scratch-end"')}` : ''} && echo ${stage} {task.index} {attempt} > '{output}/v'`],
  });
  return {
    name, retries: 3,
    stages: [
      { name: 'a', tasks: Array.from({ length: tasks }, () => task('a')), task: { command: ['true'], resources: { cpus: 0.25, mem: '32MiB', disk: '8MiB' } } },
      { name: 'b', inputs: ['stage:a'], tasks: Array.from({ length: tasks }, () => task('b')), task: { command: ['true'], resources: { cpus: 0.25, mem: '32MiB', disk: '8MiB' } } },
    ],
  };
}

/** Tasks lost and outputs committed twice for one finished job. */
async function audit(env: Env, id: string, tasksPerStage: number): Promise<{ lost: number; duplicates: number; problems: string[]; unsuccessful: string[]; histories: string[]; recomputed: string[] }> {
  const job = await env.job(id);
  const problems: string[] = [];
  const r = await env.api('GET', `/v1/jobs/${id}/tasks?limit=100000`);
  const tasks = (r.json['tasks'] ?? []) as { id: string; stage: number; index: number; state: string; failures?: number; outputPath?: string; attempts: { attempt: number; attemptId: string; state: string; host?: string; reason?: string; message?: string; startedAt?: number; finishedAt?: number }[] }[];
  // Attempts that did not succeed, as 'host state reason: message' (what a fault did).
  const unsuccessful = tasks.flatMap((t) => t.attempts.filter((a) => a.state !== 'SUCCEEDED').map((a) => `${a.host ?? '?'} ${a.state} ${a.reason ?? ''}: ${(a.message ?? '').slice(0, 160)}`));
  // Every attempt of each task that failed or had failures counted against it, in order (which
  // failure counted, and what came before it): times in seconds since the job's first attempt.
  const t0 = Math.min(...tasks.flatMap((t) => t.attempts.map((a) => a.startedAt ?? Infinity)));
  const secs = (ms: number | undefined): string => (ms === undefined || !Number.isFinite(t0) ? '?' : ((ms - t0) / 1_000).toFixed(1));
  // A task recomputed after its committed output was lost commits again in its next generation
  // (output path ~g<n>): the output of generation n is the task's, the earlier ones were lost.
  const generationOf = (t: { outputPath?: string }): number => Number(/~g(\d+)$/.exec(t.outputPath ?? '')?.[1] ?? 0);
  const histories = tasks.filter((t) => t.state !== 'SUCCEEDED' || (t.failures ?? 0) > 0 || generationOf(t) > 0).map((t) => `task ${['a', 'b'][t.stage] ?? t.stage}.${t.index} ${t.state} failures=${t.failures ?? '?'}${generationOf(t) > 0 ? ` recomputed (generation ${generationOf(t)})` : ''}:\n${t.attempts.map((a) => `      a${a.attempt} ${secs(a.startedAt)}-${secs(a.finishedAt)} s ${a.host ?? '?'} ${a.state} ${a.reason ?? ''}: ${(a.message ?? '').slice(0, 200)}`).join('\n')}`);
  // The commit ledger: which attempt's output each task committed (exactly one may).
  const redis = new Redis(env.redis.url, { maxRetriesPerRequest: 3 });
  const ledger = new Map<string, string>();
  try {
    // A recomputed task commits in its next generation (its output path ends in ~g<n>), under that generation's ledger id.
    const ledgerId = (t: { id: string; outputPath?: string }): string => ledgerIdOf(t.id, generationOf(t));
    const raw = tasks.length > 0 ? await redis.mget(...tasks.map((t) => commitKey(ledgerId(t)))) : [];
    raw.forEach((v, i) => {
      const t = tasks[i];
      if (t && v !== null) ledger.set(t.id, decodeCommittedOutput(JSON.parse(v) as unknown).attemptId);
    });
  } finally {
    redis.disconnect();
  }
  let lost = 0;
  let duplicates = 0;
  const expected = 2 * tasksPerStage;
  if (tasks.length < expected) {
    lost += expected - tasks.length;
    problems.push(`job ${id}: ${expected - tasks.length} tasks never attempted`);
  }
  for (const [stageIndex, stage] of ['a', 'b'].entries()) {
    const mine = tasks.filter((t) => t.stage === stageIndex);
    // Where the stage's outputs are committed: the directory holding its tasks' output paths.
    const dir = mine.find((t) => t.outputPath !== undefined)?.outputPath;
    const stageDir = dir === undefined ? join(job.outputDir, stage) : dirname(dir);
    const entries = existsSync(stageDir) ? readdirSync(stageDir).filter((n) => !n.startsWith('.')) : [];
    if (entries.length > mine.length) {
      duplicates += entries.length - mine.length;
      problems.push(`job ${id}: stage ${stage} has ${entries.length} committed outputs for ${mine.length} tasks`);
    }
    for (const t of mine) {
      const ok = t.attempts.filter((a) => a.state === 'SUCCEEDED');
      if (t.state !== 'SUCCEEDED' || ok.length === 0) {
        lost++;
        problems.push(`job ${id}: task ${stage}.${t.index} ${t.state}`);
        continue;
      }
      // One success per generation: a recomputed task succeeded once for each output it lost and
      // once for the one it holds, each under its own ledger id (and an earlier generation's
      // output still in place under the stage's directory shows as one entry too many, above).
      // Any success beyond that is a second commit of one generation.
      const allowed = generationOf(t) + 1;
      if (ok.length > allowed) {
        duplicates += ok.length - allowed;
        problems.push(`job ${id}: task ${stage}.${t.index} has ${ok.length} successful attempts in ${allowed} generation(s): ${ok.map((a) => `a${a.attempt} ${a.reason ?? ''}`).join(', ')}`);
      }
      const file = join(t.outputPath ?? join(stageDir, String(t.index)), 'v');
      if (!existsSync(file)) {
        lost++;
        problems.push(`job ${id}: task ${stage}.${t.index} has no committed output`);
        continue;
      }
      // The output on disk must be the ledger winner's: a later attempt that succeeded finds the
      // winner's commit and keeps it, so the recorded attempt may be a later one, never the file.
      const [s, idx, attempt] = readFileSync(file, 'utf8').trim().split(' ');
      const winner = t.attempts.find((a) => a.attemptId === ledger.get(t.id));
      if (s !== stage || Number(idx) !== t.index || winner === undefined || Number(attempt) !== winner.attempt) {
        duplicates++;
        problems.push(`job ${id}: task ${stage}.${t.index} holds '${s} ${idx} ${attempt}', the ledger names ${winner ? `attempt ${winner.attempt}` : `no attempt of this task (${String(ledger.get(t.id))})`}`);
      }
    }
  }
  const recomputed = tasks.filter((t) => generationOf(t) > 0).map((t) => `${['a', 'b'][t.stage] ?? t.stage}.${t.index} (generation ${generationOf(t)})`);
  return { lost, duplicates, problems, unsuccessful, histories, recomputed };
}

/** Find a live executor process of this environment (its command line names our Redis). */
function executorPids(redisPort: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (cmd.includes('executor') && cmd.some((a) => a.includes(`127.0.0.1:${redisPort}`))) out.push(Number(p));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** Fill the filesystem holding `dir` with one file, to ENOSPC (bounded by the filesystem's size). */
function fillDisk(dir: string, file: string): void {
  const st = statfsSync(dir);
  const bytes = st.bavail * st.bsize;
  if (bytes > 0) spawnSync('fallocate', ['-l', String(bytes), file], { stdio: 'ignore', timeout: 30_000 });
  // Whatever fallocate left (tmpfs rounds to pages; metadata moved meanwhile): dd to ENOSPC.
  spawnSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=64k', 'oflag=append', 'conv=notrunc'], { stdio: 'ignore', timeout: 30_000 });
}

/** Mount a size-limited tmpfs at `dir` (root only); false when it cannot be mounted. */
function mountSmall(dir: string, size: string): boolean {
  mkdirSync(dir, { recursive: true });
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/** Unmount `dir` if it is a mount point (lazily: processes may still hold files there). */
function unmountSmall(dir: string): void {
  spawnSync('umount', ['-l', dir], { stdio: 'ignore', timeout: 10_000 });
}

/** Run one scenario: its faults while jobs run, then the audit. */
async function scenario(env: Env, name: ScenarioName, runs: number, volume: string): Promise<ScenarioResult> {
  const o = env.o;
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const problems: string[] = [];
  const jobs: string[] = [];
  let recoveryMax = 0;
  const submit = async (): Promise<string> => {
    const r = await env.api('POST', '/v1/jobs', jobSpec(`chaos-${name}-${jobs.length}`, o, tasksPerStageOf(name, o), name === 'fill-disk'));
    if (r.status !== 201) throw new Error(`submit: ${r.status} ${JSON.stringify(r.json)}`);
    jobs.push(String(r.json['id']));
    return String(r.json['id']);
  };
  const overdue = (): boolean => Date.now() - started > o.scenarioTimeoutMs;
  let current = await submit();

  /** Wait until the current job runs tasks (submitting another when it has finished); returns succeeded so far. */
  const running = async (): Promise<number> => {
    for (;;) {
      if (overdue()) throw new Error(`${name}: scenario bound of ${o.scenarioTimeoutMs} ms reached`);
      const j = await env.job(current).catch(() => undefined);
      if (j && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(j.state)) {
        current = await submit();
        continue;
      }
      if (j && j.counts.running > 0 && j.counts.succeeded > 0 && j.counts.succeeded >= (o.faultAfterSucceeded ?? 0)) return j.counts.succeeded;
      await sleep(200);
    }
  };
  /** Seconds from `since` until a leader is ready and a task finished after the fault. */
  const recovered = async (since: number, succeededBefore: number): Promise<number> => {
    await env.leader(o.scenarioTimeoutMs);
    for (;;) {
      if (overdue()) throw new Error(`${name}: no recovery within the scenario bound`);
      const j = await env.job(current).catch(() => undefined);
      if (j && (j.counts.succeeded > succeededBefore || j.state === 'SUCCEEDED')) return (Date.now() - since) / 1_000;
      await sleep(100);
    }
  };

  /** The current job's attempts running on each host, and whether one on `host` ended unsuccessfully. */
  const attemptsOn = async (host: string): Promise<{ running: Map<string, number>; failedThere: boolean }> => {
    const t = await env.api('GET', `/v1/jobs/${current}/tasks?limit=100000`);
    const on = new Map<string, number>();
    let failedThere = false;
    for (const task of (t.json['tasks'] ?? []) as { state: string; attempts: { host?: string; state: string }[] }[]) {
      const last = task.attempts[task.attempts.length - 1];
      if (last?.state === 'RUNNING' && last.host !== undefined) on.set(last.host, (on.get(last.host) ?? 0) + 1);
      if (task.attempts.some((a) => a.host === host && a.state !== 'RUNNING' && a.state !== 'SUCCEEDED')) failedThere = true;
    }
    return { running: on, failedThere };
  };

  for (let run = 0; run < runs; run++) {
    let before = await running();
    let at = Date.now();
    // The fault itself; what follows it (SIGCONT, a replacement standby, the agent's return)
    // runs while recovery is timed, so the time is the job's, not the script's.
    let after: () => Promise<void> = async () => undefined;
    switch (name) {
      case 'kill-leader': {
        const l = await env.leader(30_000);
        l.proc.kill('SIGKILL');
        await exited(l.proc);
        after = async () => { await env.spawnInstance(); };
        break;
      }
      case 'pause-leader': {
        const l = await env.leader(30_000);
        l.proc.kill('SIGSTOP');
        after = async () => {
          await sleep(o.sessionMs + 3_000);
          l.proc.kill('SIGCONT');
          const code = await Promise.race([exited(l.proc).then(() => l.proc.exitCode), sleep(30_000).then(() => 'running')]);
          if (code !== 3) {
            // Its own words on why it stopped, for whoever reads the failure: 'exit' can come before
            // its pipes are read to the end, so they are given a moment to close. Its stop lines
            // and errors, then its last lines (an uncaught error's stack is neither), each cut short.
            await Promise.race([new Promise((r) => l.proc.once('close', r)), sleep(2_000)]);
            const lines = l.out.split('\n').filter((line) => line.trim() !== '').map((line) => line.slice(0, 400));
            const own = lines.filter((line) => line.startsWith('locus framework:') || /"level":(50|60)/.test(line)).slice(-4);
            problems.push(`the paused leader ${l.name} did not step down with exit 3 after SIGCONT (${String(code)}); its stop and errors: ${own.join(' | ') || '(none)'}; its last lines: ${lines.slice(-6).join(' | ') || '(none)'}`);
          }
          if (code === 'running') l.proc.kill('SIGKILL');
          await env.spawnInstance();
        };
        break;
      }
      case 'kill-executor': {
        const pids = executorPids(env.redis.port);
        const pid = pids[run % Math.max(1, pids.length)];
        if (pid === undefined) problems.push('no executor process found to kill');
        else process.kill(pid, 'SIGKILL');
        break;
      }
      case 'kill-redis':
        await env.redis.kill9();
        await sleep(1_000);
        await env.redis.start();
        break;
      case 'master-streams':
        env.cluster.control.dropSubscriptions();
        break;
      case 'restart-master':
        if (!env.restartMaster) problems.push('this environment cannot restart its master');
        else await env.restartMaster();
        break;
      case 'fill-disk': {
        // Fill the small agent's filesystem to the last byte while tasks run on it; free it
        // after fillSeconds. Tasks that fail there must be retried elsewhere without the job failing.
        const small = env.smallDisk;
        if (!small) {
          problems.push('no agent has a size-limited work directory (mounting a tmpfs needs root)');
          break;
        }
        // Only once attempts of the job run there (bounded; a job that ends meanwhile is followed
        // by another): the fault must meet work on the agent, which fails when it next writes to
        // its sandbox, or it proves nothing.
        const waitUntil = Date.now() + 30_000;
        const none = { running: new Map<string, number>(), failedThere: false };
        let on = await attemptsOn(small.hostname).catch(() => none);
        log(`fill-disk: running attempts by host ${JSON.stringify(Object.fromEntries(on.running))} once the job had a task succeeded`);
        while ((on.running.get(small.hostname) ?? 0) === 0 && Date.now() < waitUntil) {
          await sleep(100);
          const j = await env.job(current).catch(() => undefined);
          if (j && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(j.state)) current = await submit();
          on = await attemptsOn(small.hostname).catch(() => none);
        }
        log(`fill-disk: running attempts by host ${JSON.stringify(Object.fromEntries(on.running))} when filling ${small.hostname} (${((Date.now() - at) / 1_000).toFixed(1)} s later)`);
        before = (await env.job(current)).counts.succeeded;
        at = Date.now();
        const filler = join(small.root, '.chaos-fill');
        fillDisk(small.root, filler);
        const free = statfsSync(small.root);
        log(`fill-disk: ${small.hostname} has ${free.bavail * free.bsize} bytes free`);
        if (free.bavail > 0) problems.push(`${small.hostname}: ${free.bavail * free.bsize} bytes still free after filling`);
        after = async () => {
          await sleep(o.fillSeconds * 1_000);
          // Full until an attempt has failed there, for at most as long again (the audit's check
          // that the fault had an effect decides whether it did).
          const keepUntil = Date.now() + o.fillSeconds * 1_000;
          while (!(await attemptsOn(small.hostname).then((x) => x.failedThere, () => false)) && Date.now() < keepUntil) await sleep(250);
          rmSync(filler, { force: true });
          log(`fill-disk: ${small.hostname}'s disk freed after ${((Date.now() - at) / 1_000).toFixed(1)} s`);
        };
        break;
      }
      case 'cut-agent':
      case 'lose-agent': {
        // Cut off the volume's agent (the volume must come back with it); lose another one
        // for good (the volume must stay, and the job finish on the agents left).
        const v = await env.api('GET', `/v1/volumes/${volume}`);
        const volumeHost = typeof v.json['hostname'] === 'string' ? v.json['hostname'] : undefined;
        let cutHost = volumeHost;
        if (name === 'cut-agent' && o.cutBusiest === true) {
          const t = await env.api('GET', `/v1/jobs/${current}/tasks?limit=100000`);
          const on = new Map<string, number>();
          for (const task of (t.json['tasks'] ?? []) as { state: string; attempts: { host?: string }[] }[]) {
            const host = task.attempts[task.attempts.length - 1]?.host;
            if (task.state === 'RUNNING' && host !== undefined) on.set(host, (on.get(host) ?? 0) + 1);
          }
          cutHost = [...on.entries()].sort((x, y) => y[1] - x[1])[0]?.[0] ?? volumeHost;
          log(`cut-agent: running attempts by host ${JSON.stringify(Object.fromEntries(on))}`);
        }
        const agent = name === 'cut-agent'
          ? env.cluster.agents.find((a) => a.hostname === cutHost) ?? env.cluster.agents[0]
          : env.cluster.agents.find((a) => a.hostname !== volumeHost);
        if (!agent) break;
        const setLink = env.setLink;
        if (name === 'cut-agent' && setLink) {
          // The host's link goes down on the bridge: the agent, its executors and their tasks
          // keep running but nothing reaches them nor leaves them, as in a network partition.
          await setLink(agent.hostname, false);
          log(`cut-agent: ${agent.hostname}'s link is down for ${o.cutSeconds} s`);
          after = async () => {
            await sleep(o.cutSeconds * 1_000);
            await setLink(agent.hostname, true);
          };
          break;
        }
        await env.cluster.control.stopAgent(agent.hostname);
        if (name === 'cut-agent') {
          after = async () => {
            await sleep(o.cutSeconds * 1_000);
            await env.cluster.control.startAgent(agent.hostname);
          };
        }
        break;
      }
    }
    const [secs] = await Promise.all([recovered(at, before), after()]);
    recoveryMax = Math.max(recoveryMax, secs);
    log(`${name} run ${run + 1}/${runs}: recovered in ${secs.toFixed(1)} s`);
  }

  // Every job to its end.
  const unsuccessful: string[] = [];
  let completed = 0;
  let lost = 0;
  let duplicates = 0;
  for (const id of jobs) {
    let j = await env.job(id);
    while (!['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(j.state)) {
      if (overdue()) break;
      await sleep(500);
      j = await env.job(id).catch(() => j);
    }
    if (j.state === 'SUCCEEDED') completed++;
    else problems.push(`job ${id} ended ${j.state} (${JSON.stringify(j.counts)})`);
    const a = await audit(env, id, tasksPerStageOf(name, o));
    unsuccessful.push(...a.unsuccessful);
    if (a.histories.length > 0) log(`${name}: job ${id} (${j.state}): tasks that failed or had failures counted:\n  ${a.histories.slice(0, 20).join('\n  ')}`);
    lost += a.lost;
    duplicates += a.duplicates;
    if (a.recomputed.length > 0) log(`${name}: job ${id}: recomputed after their recorded output could not be read: ${a.recomputed.join(', ')}`);
    problems.push(...a.problems.slice(0, 10));
  }
  if (unsuccessful.length > 0) {
    // By state and reason, each with a count and its first example: a counted failure among
    // hundreds of uncounted losses is what a failed scenario needs to show.
    const kinds = new Map<string, { n: number; example: string }>();
    for (const u of unsuccessful) {
      const kind = /^\S* ?(\S+ \S*):/.exec(u)?.[1] ?? u;
      const k = kinds.get(kind);
      if (k) k.n++;
      else kinds.set(kind, { n: 1, example: u });
    }
    log(`${name}: ${unsuccessful.length} attempts did not succeed:\n  ${[...kinds.entries()].map(([kind, k]) => `${k.n} × ${kind}, e.g. ${k.example}`).join('\n  ')}`);
  }
  if (name === 'restart-master' && unsuccessful.length > 0) {
    // Agents and executors stay up while only the master restarts: as in Mesos, its failover
    // must not cost a running attempt (they were LOST when the restarted master answered
    // reconciliation for agents that had not re-registered yet).
    problems.push(`restart-master: ${unsuccessful.length} attempts did not succeed across the master's restarts, e.g. ${unsuccessful.slice(0, 3).join('; ')}`);
  }
  if (name === 'fill-disk' && env.smallDisk && !unsuccessful.some((u) => u.startsWith(`${env.smallDisk?.hostname ?? ''} `))) {
    // The fault must have hit something, or the scenario proves nothing.
    problems.push(`fill-disk: no attempt failed on ${env.smallDisk.hostname} while its disk was full (the fault had no effect)`);
  }
  // Destroyed or given up is lost; UNAVAILABLE (its agent away) is not, and must be READY again once the agent is back.
  const v = await env.api('GET', `/v1/volumes/${volume}`);
  const volumesLost = v.status === 200 && ['READY', 'IN_USE', 'UNAVAILABLE'].includes(String(v.json['state'])) ? 0 : 1;
  if (volumesLost) problems.push(`volume ${volume}: ${v.status} ${JSON.stringify(v.json)}`);
  return { name, runs, jobs: jobs.length, jobsCompleted: completed, tasksLost: lost, duplicateOutputs: duplicates, volumesLost, recoverySecondsMax: Number(recoveryMax.toFixed(2)), problems };
}

/** Create the volume every scenario must keep and wait until it is READY. */
async function keepVolume(env: Env, volume: string): Promise<void> {
  const created = await env.api('POST', '/v1/volumes', { name: volume, size: '16MiB', containerPath: 'data' });
  if (created.status !== 201) throw new Error(`volume: ${created.status} ${JSON.stringify(created.json)}`);
  const deadline = Date.now() + 60_000;
  while ((await env.api('GET', `/v1/volumes/${volume}`)).json['state'] !== 'READY') {
    if (Date.now() > deadline) throw new Error('the volume did not become READY');
    await sleep(200);
  }
}

/**
 * restart-master, in an environment of its own: the in-process agents of the main one live
 * in the master's process and cannot outlive it, so here the master runs alone (agents: 0)
 * and three `locus agent` processes register with it; the fault stops the master and starts
 * it again on the same port with the same work directory (its checkpoint keeps its id); the
 * agents register again, the schedulers re-subscribe. Its own Redis, ZooKeeper path and
 * framework instances, so the main environment's schedulers do not see its jobs.
 */
async function restartMasterScenario(root: string, zk: string, o: ChaosOptions, runs: number): Promise<ScenarioResult> {
  const dir = join(root, 'rm');
  mkdirSync(join(dir, 'redis'), { recursive: true });
  const workDir = join(dir, 'local');
  const port = await freePort();
  const redis = new ChaosRedis(await freePort(), join(dir, 'redis'));
  const start = (): Promise<LocalCluster> => startLocalCluster({ workDir, agents: 0, port, allocationIntervalMs: 100, isolation: 'auto', agentPingIntervalSeconds: 1, agentPingTimeoutSeconds: 15 });
  let cluster: LocalCluster | undefined;
  const agents: ChildProcess[] = [];
  let env: Env | undefined;
  try {
    await redis.start();
    cluster = await start();
    for (let i = 1; i <= 3; i++) {
      agents.push(spawn(process.execPath, [cliPath(), 'agent', '--master', cluster.masterUrl, '--hostname', `rm-agent-${i}`, '--attributes', `rack:r${(i % 2) + 1}`,
        '--resources', 'cpus:4;mem:8192;disk:20480;ports:[31000-32000]', '--work-dir', workDir, '--port', '0', '--ip', '127.0.0.1', '--isolation', 'auto'],
      { stdio: 'ignore', env: { ...process.env, LOCUS_LOG_LEVEL: 'warn' } }));
    }
    const deadline = Date.now() + 30_000;
    while (cluster.agents.length < 3) {
      if (Date.now() > deadline) throw new Error(`only ${cluster.agents.length} of 3 agent processes registered`);
      await sleep(100);
    }
    const e = new Env(dir, redis, `zk://${zk}/locus-chaos-rm`, cluster, o);
    env = e;
    e.restartMaster = async () => {
      await cluster?.stop();
      cluster = undefined;
      cluster = await start();
      e.cluster = cluster;
    };
    await e.spawnInstance();
    await e.leader(60_000);
    await e.spawnInstance();
    await keepVolume(e, 'chaos-keep-rm');
    const r = await scenario(e, 'restart-master', runs, 'chaos-keep-rm');
    const registered = cluster?.agents.length ?? 0;
    return registered === 3 ? r : { ...r, problems: [...r.problems, `only ${registered} of 3 agents registered again with the restarted master`] };
  } finally {
    for (const i of env?.instances ?? []) {
      i.proc.kill('SIGKILL');
      await exited(i.proc);
    }
    for (const a of agents) {
      a.kill('SIGTERM');
      await Promise.race([exited(a), sleep(10_000)]);
      a.kill('SIGKILL');
      await exited(a);
    }
    await cluster?.stop().catch(() => undefined);
    await redis.stop().catch(() => undefined);
  }
}

/** Why separate hosts cannot be made here (root, iproute2, util-linux, namespaces), or undefined when they can. */
export function netnsMissing(): string | undefined {
  const why: string[] = [];
  if (process.getuid?.() !== 0) why.push('not root');
  for (const b of ['ip', 'tc', 'nsenter', 'unshare']) if (!['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, b)))) why.push(`${b} is not installed`);
  if (!existsSync('/proc/self/ns/net')) why.push('no network namespaces');
  return why.length === 0 ? undefined : why.join('; ');
}

/**
 * cut-agent, in an environment of its own on separate hosts: three network
 * namespaces in CUT_SUBNET joined by a bridge (src/local/netns.ts), the
 * master on the bridge address and one `locus agent` process on each host,
 * Redis listening on loopback and the bridge, two framework instances on
 * this machine. The fault sets the volume's host's link down on the bridge
 * side (`ip link set <veth> down`) for cutSeconds and up again; the agent
 * is declared lost after CUT_PING_TIMEOUT_S and must register again, and
 * the volume be READY again with it.
 */
async function cutAgentScenario(root: string, zk: string, o: ChaosOptions, runs: number): Promise<ScenarioResult> {
  const dir = join(root, 'cut');
  mkdirSync(join(dir, 'redis'), { recursive: true });
  let cluster: NetnsCluster | undefined;
  let redis: ChaosRedis | undefined;
  let env: Env | undefined;
  const cutLinks = new Set<string>();
  try {
    cluster = await startNetnsCluster({
      workDir: join(dir, 'local'), hosts: 3, racks: 2, subnet: CUT_SUBNET, port: 0, allocationIntervalMs: 100, isolation: 'auto', cli: cliPath(),
      resources: 'cpus:4;mem:8192;disk:20480;ports:[31000-32000]', agentPingIntervalSeconds: 1, agentPingTimeoutSeconds: CUT_PING_TIMEOUT_S,
    });
    const hosts = cluster.hosts;
    redis = new ChaosRedis(await freePort(), join(dir, 'redis'), hosts.gateway);
    await redis.start();
    const e = new Env(dir, redis, `zk://${zk}/locus-chaos-cut`, cluster, o);
    env = e;
    const masterUrl = cluster.masterUrl;
    const activeAgents = async (): Promise<{ id?: string; hostname?: string; active?: boolean }[]> => {
      const st = (await (await fetch(`${masterUrl}/state`, { signal: AbortSignal.timeout(5_000) })).json()) as { slaves?: { id?: string; hostname?: string; active?: boolean }[] };
      return (st.slaves ?? []).filter((x) => x.active === true);
    };
    // Whether the master declared each cut host's agent lost while its link was down (else the cut did nothing).
    const declaredLost = new Set<string>();
    let watching = false;
    e.setLink = async (hostname, up) => {
      const h = hosts.hosts.find((x) => x.name === hostname);
      if (!h) throw new Error(`no host ${hostname}`);
      const r = spawnSync('ip', ['link', 'set', h.link, up ? 'up' : 'down'], { encoding: 'utf8', timeout: 10_000 });
      if (r.status !== 0) throw new Error(`ip link set ${h.link} ${up ? 'up' : 'down'}: ${r.stderr}`);
      watching = !up;
      if (up) {
        cutLinks.delete(h.link);
        return;
      }
      cutLinks.add(h.link);
      void (async () => {
        while (watching && !declaredLost.has(hostname)) {
          if (!(await activeAgents().catch(() => [{ hostname }])).some((a) => a.hostname === hostname)) declaredLost.add(hostname);
          await sleep(250);
        }
      })();
    };
    await e.spawnInstance();
    await e.leader(60_000);
    await e.spawnInstance();
    await keepVolume(e, 'chaos-keep-cut');
    const r = await scenario(e, 'cut-agent', runs, 'chaos-keep-cut');
    // The cut agent must be back: registered (active) again, and the volume READY with it.
    const deadline = Date.now() + 60_000;
    let active = 0;
    let volumeState = '';
    for (;;) {
      active = (await activeAgents()).length;
      volumeState = String((await e.api('GET', '/v1/volumes/chaos-keep-cut')).json['state']);
      if ((active === 3 && volumeState === 'READY') || Date.now() > deadline) break;
      await sleep(500);
    }
    const problems = [...r.problems];
    if (declaredLost.size < runs) problems.push(`the master declared ${declaredLost.size} cut agent(s) lost in ${runs} cut(s): the cut had no effect`);
    if (active !== 3) problems.push(`only ${active} of 3 agents active after the link came back`);
    if (volumeState !== 'READY') problems.push(`the volume is ${volumeState} after the link came back, not READY`);
    return { ...r, fault: `link cut: ip link set <host veth> down for ${o.cutSeconds} s (hosts in ${CUT_SUBNET}.0/24, agent lost after ${CUT_PING_TIMEOUT_S} s)`, problems };
  } finally {
    for (const i of env?.instances ?? []) {
      i.proc.kill('SIGKILL');
      await exited(i.proc);
    }
    for (const l of cutLinks) spawnSync('ip', ['link', 'set', l, 'up'], { stdio: 'ignore', timeout: 10_000 });
    await cluster?.stop().catch(() => undefined);
    await redis?.stop().catch(() => undefined);
  }
}

/** Run the suite; resolves with every scenario's figures (a scenario that threw has its error in problems). */
export async function runChaos(o: ChaosOptions): Promise<{ scenarios: ScenarioResult[] }> {
  const log = o.log ?? (() => undefined);
  const dir = mkdtempSync('/tmp/locus-chaos-');
  chmodSync(dir, 0o755);
  const redis = new ChaosRedis(await freePort(), join(dir, 'redis'));
  mkdirSync(redis.dir);
  let zk: { connectString: string; stop: () => Promise<void> } | undefined;
  let cluster: LocalCluster | undefined;
  let env: Env | undefined;
  const results: ScenarioResult[] = [];
  const overlapped = new Map<ScenarioName, Promise<ScenarioResult>>();
  // fill-disk: the last agent's work directory on a 256 MiB tmpfs, unmounted in every exit path.
  const wantsFill = o.runs['fill-disk'] > 0 && (!o.only || o.only.includes('fill-disk'));
  const smallHost = 'agent-3';
  const smallRoot = join(dir, 'local', 'agents', smallHost);
  const mounted = wantsFill && mountSmall(smallRoot, '256m');
  const onExit = (): void => { if (mounted) unmountSmall(smallRoot); };
  if (mounted) process.once('exit', onExit);
  try {
    await redis.start();
    zk = await startZk(join(dir, 'zk'));
    cluster = await startLocalCluster({
      workDir: join(dir, 'local'), agents: 3, racks: 2, port: 0, allocationIntervalMs: 100, isolation: 'auto',
      resources: 'cpus:4;mem:8192;disk:20480;ports:[31000-32000]',
    });
    env = new Env(dir, redis, `zk://${zk.connectString}/locus-chaos`, cluster, o);
    if (mounted) env.smallDisk = { hostname: smallHost, root: smallRoot };
    await env.spawnInstance();
    await env.leader(60_000);
    await env.spawnInstance();
    // A volume that must outlive every fault.
    const volume = 'chaos-keep';
    const created = await env.api('POST', '/v1/volumes', { name: volume, size: '16MiB', containerPath: 'data' });
    if (created.status !== 201) throw new Error(`volume: ${created.status} ${JSON.stringify(created.json)}`);
    const vDeadline = Date.now() + 60_000;
    while ((await env.api('GET', `/v1/volumes/${volume}`)).json['state'] !== 'READY') {
      if (Date.now() > vDeadline) throw new Error('the volume did not become READY');
      await sleep(200);
    }
    if (o.overlapSeparate === true) {
      for (const name of ['restart-master', 'cut-agent'] as const) {
        const runs = o.runs[name];
        if ((o.only && !o.only.includes(name)) || runs <= 0 || (name === 'cut-agent' && netnsMissing() !== undefined)) continue;
        log(`scenario ${name}: ${runs} run(s), beside the others`);
        const began = Date.now();
        const zkHost = zk.connectString;
        overlapped.set(name, (name === 'restart-master' ? restartMasterScenario(dir, zkHost, o, runs) : cutAgentScenario(dir, zkHost, o, runs)).then(
          (r) => {
            log(`scenario ${name} (beside the others, ${((Date.now() - began) / 1_000).toFixed(0)} s): ${JSON.stringify(r)}`);
            return r;
          },
          (err: unknown): ScenarioResult => ({ name, runs, jobs: 0, jobsCompleted: 0, tasksLost: 0, duplicateOutputs: 0, volumesLost: 0, recoverySecondsMax: 0, problems: [String(err instanceof Error ? err.message : err).slice(0, 3_000)] }),
        ));
      }
    }
    for (const name of SCENARIOS) {
      if (o.only && !o.only.includes(name)) continue;
      const runs = o.runs[name];
      if (runs <= 0) continue;
      const beside = overlapped.get(name);
      if (beside !== undefined) {
        // Reported in the suite's order, whenever it finished.
        results.push(await beside);
        continue;
      }
      log(`scenario ${name}: ${runs} run(s)`);
      const began = Date.now();
      const took = (): string => `${((Date.now() - began) / 1_000).toFixed(0)} s`;
      try {
        if (name === 'restart-master') {
          results.push(await restartMasterScenario(dir, zk.connectString, o, runs));
          log(`scenario ${name} (${took()}): ${JSON.stringify(results[results.length - 1])}`);
          continue;
        }
        if (name === 'cut-agent') {
          const missing = netnsMissing();
          if (missing === undefined) {
            results.push(await cutAgentScenario(dir, zk.connectString, o, runs));
            log(`scenario ${name} (${took()}): ${JSON.stringify(results[results.length - 1])}`);
            continue;
          }
          if (process.env['CI'] === 'true') {
            // CI must cut a network link, not quietly stop a process instead.
            throw new Error(`cut-agent needs separate hosts (network namespaces) and cannot make them here: ${missing}`);
          }
          while (env.live().length < 2) await env.spawnInstance();
          const r = await scenario(env, name, runs, volume);
          results.push({ ...r, fault: `agent process stopped, not its network cut (no network namespaces here: ${missing})` });
          log(`scenario ${name} (${took()}): ${JSON.stringify(results[results.length - 1])}`);
          continue;
        }
        // Two instances before each scenario: one leads, one stands by.
        while (env.live().length < 2) await env.spawnInstance();
        results.push(await scenario(env, name, runs, volume));
      } catch (err) {
        results.push({ name, runs, jobs: 0, jobsCompleted: 0, tasksLost: 0, duplicateOutputs: 0, volumesLost: 0, recoverySecondsMax: 0, problems: [String(err instanceof Error ? err.message : err).slice(0, 3_000)] });
      }
      const last = results[results.length - 1];
      log(`scenario ${name} (${took()}): ${JSON.stringify(last)}`);
    }
  } finally {
    // Scenarios beside the others clean up after themselves; they need ZooKeeper until then.
    await Promise.allSettled(overlapped.values());
    for (const i of env?.instances ?? []) {
      i.proc.kill('SIGCONT');
      i.proc.kill('SIGKILL');
      await exited(i.proc);
    }
    await cluster?.stop().catch(() => undefined);
    await zk?.stop().catch(() => undefined);
    await redis.stop().catch(() => undefined);
    if (mounted) {
      unmountSmall(smallRoot);
      process.off('exit', onExit);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return { scenarios: results };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  // Ctrl-C or a kill: exit through 'exit' handlers (they unmount fill-disk's tmpfs).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  // --only a,b: just these scenarios (their figures go to chaos-<date>[-quick]-only.{json,md}).
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt > 0 ? (process.argv[onlyAt + 1] ?? '').split(',').filter((n) => n !== '') : undefined;
  const unknown = (only ?? []).filter((n) => !(SCENARIOS as readonly string[]).includes(n));
  if (only !== undefined && (only.length === 0 || unknown.length > 0)) throw new Error(`--only: unknown scenario(s) '${unknown.join(',')}'; known: ${SCENARIOS.join(',')}`);
  // --fault-after N: each fault once the running job has N tasks succeeded (e.g. in its second stage).
  const afterAt = process.argv.indexOf('--fault-after');
  const faultAfter = afterAt > 0 ? Number(process.argv[afterAt + 1]) : undefined;
  const o: ChaosOptions = {
    ...(quick ? QUICK : FULL), ...(only ? { only: only as ScenarioName[] } : {}), ...(faultAfter !== undefined && Number.isFinite(faultAfter) ? { faultAfterSucceeded: faultAfter } : {}),
    ...(process.argv.includes('--cut-busiest') ? { cutBusiest: true } : {}),
    log: (l) => process.stdout.write(`${l}\n`),
  };
  const load = loadavg()[0] ?? 0;
  const started = Date.now();
  const out = await runChaos(o);
  const figures = { scenarios: out.scenarios.map(({ problems: _p, jobs: _j, ...rest }) => rest) };
  const date = new Date().toISOString().slice(0, 10);
  // The repository's bench/results, from bench/ (ts) or dist/bench/ (built).
  const here = dirname(fileURLToPath(import.meta.url));
  const results = basename(dirname(here)) === 'dist' ? join(here, '..', '..', 'bench', 'results') : join(here, 'results');
  mkdirSync(results, { recursive: true });
  const file = join(results, `chaos-${date}${quick ? '-quick' : ''}${only ? '-only' : ''}`);
  const record = { date, mode: quick ? 'quick' : 'full', loadAtStart: load, seconds: Math.round((Date.now() - started) / 1_000), options: { ...o, log: undefined }, scenarios: out.scenarios };
  writeFileSync(`${file}.json`, `${JSON.stringify(record, null, 2)}\n`);
  writeFileSync(`${file}.md`, [
    `# Chaos suite, ${date} (${record.mode}, load ${load.toFixed(1)} at start, ${record.seconds} s)`, '',
    '| scenario | runs | jobs completed | tasks lost | duplicate outputs | volumes lost | recovery s (max) | problems |',
    '|---|---|---|---|---|---|---|---|',
    ...out.scenarios.map((s) => `| ${s.name} | ${s.runs} | ${s.jobsCompleted}/${s.jobs} | ${s.tasksLost} | ${s.duplicateOutputs} | ${s.volumesLost} | ${s.recoverySecondsMax} | ${s.problems.join('; ').replace(/\|/g, '\\|').slice(0, 300)} |`),
    '',
    ...out.scenarios.filter((s) => s.fault !== undefined).map((s) => `${s.name}: ${s.fault ?? ''}.`),
    '',
  ].join('\n'));
  if (!quick && !only && !process.argv.includes('--no-fuzz')) {
    // The fuzzing pass belongs to the full run; it is another engineer's script, run when it exists.
    spawnSync('npm', ['run', '--if-present', 'fuzz'], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const bad = out.scenarios.some((s) => s.problems.length > 0 || s.tasksLost > 0 || s.duplicateOutputs > 0 || s.volumesLost > 0 || s.jobsCompleted !== s.jobs);
  process.stdout.write(`${JSON.stringify(figures)}\n`);
  process.exitCode = bad ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(() => setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref(), (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
