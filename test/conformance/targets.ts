/**
 * The two clusters every conformance scenario runs against: the genuine
 * Apache Mesos 1.12 master and agents (binaries from the shared testbed,
 * never committed here) and Locus's own local cluster. A scenario is written
 * once against `ClusterTarget`; where the two disagree, the genuine one is
 * the specification.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startLocalCluster } from '../../src/local/index.js';
import { freePort } from '../harness/ports.js';
import type { Dependency } from '../harness/requires.js';

/** Which Mesos isolators the agents run with. */
export type Isolation = 'posix' | 'linux';

/** The isolator flags a genuine agent gets for each mode. */
export const GENUINE_ISOLATION: Record<Isolation, string> = {
  posix: 'posix/cpu,posix/mem',
  linux: 'cgroups/cpu,cgroups/mem,filesystem/linux,namespaces/pid',
};

/** What a scenario asks of a cluster. */
export interface TargetOptions {
  readonly agents?: number;
  readonly isolation?: Isolation;
  /** Frameworks must authenticate (HTTP basic); agents authenticate executors where they can. */
  readonly auth?: boolean;
  /** Per agent, Mesos syntax. */
  readonly resources?: string;
  /**
   * Agents demand executor tokens (`--authenticate_http_executors`); `reject-all` refuses every
   * executor call. Local only: the genuine testbed binaries are built without JWT support (their
   * agent rejects the flag as unknown).
   */
  readonly executorAuth?: boolean | 'reject-all';
  /** Where the master keeps its registry (genuine): `replicated_log` survives a master restart. */
  readonly registry?: 'in_memory' | 'replicated_log';
}

/** A running cluster. */
export interface ClusterTarget {
  readonly kind: 'genuine' | 'local';
  readonly masterUrl: string;
  readonly agents: readonly { readonly url: string; readonly hostname: string }[];
  /** A world-traversable directory for the scenario's own files. */
  readonly dir: string;
  /** With `auth`: the framework principal and a file holding its secret. */
  readonly principal?: string;
  readonly secretFile?: string;
  /** Whether agents demand executor tokens (`--authenticate_http_executors`). */
  readonly executorAuth: boolean;
  /** Stop agent i (1-based) as its process would stop, keeping its work dir, and start it again (recovery). */
  restartAgent(i: number): Promise<void>;
  /** Kill agent i and everything it runs, for good. */
  killAgent(i: number): Promise<void>;
  /** Restart the master (genuine only: the local cluster's master and agents are one process). */
  restartMaster?(): Promise<void>;
  stop(): Promise<void>;
}

const REPO = resolve(import.meta.dirname, '../..');

/** Where the genuine binaries are: LOCUS_MESOS_HOME, else the shared testbed beside the checkout. */
export function genuineHome(): string {
  return process.env['LOCUS_MESOS_HOME'] ?? resolve(REPO, '../shared/testbeds/mesos');
}

const TARBALL = 'mesos-1.12.0-debian12-amd64.tar.xz';

function genuineMissing(): string | undefined {
  const home = genuineHome();
  if (existsSync(join(home, 'bin', 'mesos-master'))) return undefined;
  if (existsSync(join(home, TARBALL))) return undefined;
  return `no genuine Mesos at ${home} (neither bin/mesos-master nor ${TARBALL})`;
}

/** The genuine Mesos 1.12 testbed. */
export const GENUINE_MESOS: Dependency = {
  name: 'genuine Apache Mesos 1.12',
  install: 'set LOCUS_MESOS_HOME to an unpacked Mesos 1.12 (bin/, lib/, libexec/) or to the folder with the testbed tarball, or check out ../shared/testbeds/mesos beside the repository',
  missing: genuineMissing(),
};

/** Unpack (once per tarball) and return the install dir with bin/, lib/, libexec/. */
export function genuineDist(): string {
  const home = genuineHome();
  if (existsSync(join(home, 'bin', 'mesos-master'))) return home;
  const tarball = join(home, TARBALL);
  const sum = createHash('md5').update(readFileSync(tarball)).digest('hex');
  const dist = join('/tmp/locus-conformance-mesos', sum.slice(0, 12));
  if (!existsSync(join(dist, '.complete'))) {
    rmSync(dist, { recursive: true, force: true });
    mkdirSync(dist, { recursive: true });
    execFileSync('tar', ['-xJf', tarball, '-C', dist]);
    writeFileSync(join(dist, '.complete'), sum);
  }
  const missing = execFileSync('ldd', [join(dist, 'bin', 'mesos-master')], { env: { ...process.env, LD_LIBRARY_PATH: join(dist, 'lib') } }).toString().split('\n').filter((l) => l.includes('not found'));
  if (missing.length > 0) {
    throw new Error(`genuine Mesos needs libraries this machine lacks (scripts/setup.sh test installs them from ${join(home, 'runtime-packages.txt')}):\n${missing.join('\n')}`);
  }
  return dist;
}

async function waitHttp(url: string, ok: (body: string) => boolean, timeoutMs: number, procs: readonly { name: string; proc: ChildProcess; log: string }[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok && ok(await r.text())) return;
    } catch {
      // not up yet
    }
    for (const p of procs) {
      if (p.proc.exitCode !== null) throw new Error(`${p.name} exited ${p.proc.exitCode}: ${tail(p.log)}`);
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready within ${timeoutMs} ms; ${procs.map((p) => `${p.name}: ${tail(p.log)}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

function scenarioDir(prefix: string): string {
  const dir = mkdtempSync(`/tmp/${prefix}-`);
  // Workloads may run as an unprivileged user: the tree must be traversable.
  chmodSync(dir, 0o755);
  return dir;
}

/** Start a genuine master and agents on free loopback ports. */
export async function startGenuine(o: TargetOptions = {}): Promise<ClusterTarget> {
  const dist = genuineDist();
  const dir = scenarioDir('locus-conf-genuine');
  const n = o.agents ?? 1;
  const isolation = GENUINE_ISOLATION[o.isolation ?? 'posix'];
  const launcher = o.isolation === 'linux' ? 'linux' : 'posix';
  const env = { ...process.env, LD_LIBRARY_PATH: join(dist, 'lib') };
  const masterPort = await freePort();
  const procs: { name: string; proc: ChildProcess; log: string }[] = [];
  const run = (name: string, bin: string, args: string[]): void => {
    const log = join(dir, `${name}.log`);
    const proc = spawn('sh', ['-c', `exec "$0" "$@" >>${JSON.stringify(log)} 2>&1`, join(dist, 'bin', bin), ...args], { env, stdio: 'ignore' });
    procs.push({ name, proc, log });
  };
  let principal: string | undefined;
  let secretFile: string | undefined;
  const masterAuth: string[] = [];
  if (o.auth === true) {
    principal = 'locus';
    const secret = randomBytes(16).toString('hex');
    secretFile = join(dir, 'secret');
    writeFileSync(secretFile, secret, { mode: 0o600 });
    writeFileSync(join(dir, 'credentials.json'), JSON.stringify({ credentials: [{ principal, secret }] }), { mode: 0o600 });
    masterAuth.push('--authenticate_http_frameworks', '--http_framework_authenticators=basic', `--credentials=${join(dir, 'credentials.json')}`);
  }
  if (o.executorAuth !== undefined && o.executorAuth !== false) {
    throw new Error('the genuine testbed agent is built without JWT support: --authenticate_http_executors is not a flag it knows');
  }
  const registry = o.registry ?? 'in_memory';
  // Agent loss is noticed after 3 missed pings of 2 s (the default, 5 × 15 s, is too slow for tests).
  const masterArgs = [
    '--ip=127.0.0.1', `--port=${masterPort}`, '--hostname=127.0.0.1', `--work_dir=${join(dir, 'master')}`, `--registry=${registry}`,
    ...(registry === 'replicated_log' ? ['--quorum=1'] : []),
    '--max_completed_frameworks=100', '--agent_ping_timeout=2secs', '--max_agent_ping_timeouts=3', ...masterAuth,
  ];
  run('master', 'mesos-master', masterArgs);
  const masterUrl = `http://127.0.0.1:${masterPort}`;
  // Each agent's containers live under `<hierarchy>/<cgroupsRoot>-<i>`, removed again by stop().
  const cgroupsRoot = `locus-conf-${randomBytes(3).toString('hex')}`;
  const stop = async (): Promise<void> => {
    for (const p of [...procs].reverse()) p.proc.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.proc.exitCode !== null || p.proc.signalCode !== null ? Promise.resolve() : Promise.race([new Promise((r) => p.proc.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]))));
    for (const p of procs) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
    // Executors and tasks outlive a killed agent: end whatever still runs in this cluster's sandboxes.
    for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        if (readlinkSync(`/proc/${pid}/cwd`).startsWith(`${dir}/`)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone or not ours
      }
    }
    // The linux launcher bind-mounts work dirs; undo before removing them.
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(`${dir}/`)).sort().reverse();
    for (const m of mounts) {
      try {
        execFileSync('umount', ['-l', m]);
      } catch {
        // already gone
      }
    }
    // The agents' cgroup roots, emptied by the kills above (each CI run left a few in every hierarchy).
    await removeCgroupRoots(cgroupsRoot);
    // LOCUS_CONFORMANCE_KEEP=1 keeps logs and sandboxes for a post-mortem.
    if (!process.env['LOCUS_CONFORMANCE_KEEP']) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitHttp(`${masterUrl}/health`, () => true, 30_000, procs);
    const agents: { url: string; hostname: string }[] = [];
    const agentArgs: string[][] = [];
    for (let i = 1; i <= n; i++) {
      const port = await freePort();
      const hostname = `agent-${i}`;
      agentArgs.push([
        `--master=127.0.0.1:${masterPort}`, '--ip=127.0.0.1', `--port=${port}`, `--hostname=${hostname}`, `--attributes=rack:r${((i - 1) % 2) + 1}`,
        `--work_dir=${join(dir, hostname, 'work')}`, `--runtime_dir=${join(dir, hostname, 'run')}`,
        `--resources=${o.resources ?? 'cpus:2;mem:2048;disk:4096;ports:[31000-32000]'}`,
        `--isolation=${isolation}`, `--launcher=${launcher}`, `--launcher_dir=${join(dist, 'libexec', 'mesos')}`,
        `--cgroups_root=${cgroupsRoot}-${i}`, '--systemd_enable_support=false', '--executor_registration_timeout=2mins',
        '--recover=reconnect',
      ]);
      run(hostname, 'mesos-agent', agentArgs[i - 1] ?? []);
      agents.push({ url: `http://127.0.0.1:${port}`, hostname });
    }
    const activeAgents = async (want: number): Promise<void> => {
      await waitHttp(`${masterUrl}/state`, (b) => (JSON.parse(b) as { activated_slaves?: number }).activated_slaves === want, 90_000, procs.filter((p) => p.proc.exitCode === null && p.proc.signalCode === null));
    };
    await activeAgents(n);
    const procOf = (name: string): { name: string; proc: ChildProcess; log: string } | undefined => [...procs].reverse().find((p) => p.name === name);
    const exitOf = (p: { proc: ChildProcess }): Promise<void> => (p.proc.exitCode !== null || p.proc.signalCode !== null ? Promise.resolve() : new Promise((r) => p.proc.once('exit', () => r())));
    let alive = n;
    return {
      kind: 'genuine', masterUrl, agents, dir, ...(principal ? { principal } : {}), ...(secretFile ? { secretFile } : {}), executorAuth: false, stop,
      async restartAgent(i) {
        const p = procOf(`agent-${i}`);
        if (!p) throw new Error(`no agent-${i}`);
        // SIGTERM ends the agent process only; its executors live on and are recovered on restart.
        p.proc.kill('SIGTERM');
        await exitOf(p);
        run(`agent-${i}`, 'mesos-agent', agentArgs[i - 1] ?? []);
        await activeAgents(alive);
      },
      async killAgent(i) {
        const p = procOf(`agent-${i}`);
        if (!p) throw new Error(`no agent-${i}`);
        p.proc.kill('SIGKILL');
        await exitOf(p);
        const work = join(dir, `agent-${i}`);
        for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
          try {
            if (readlinkSync(`/proc/${pid}/cwd`).startsWith(`${work}/`)) process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone
          }
        }
        alive--;
      },
      async restartMaster() {
        const p = procOf('master');
        if (!p) throw new Error('no master');
        p.proc.kill('SIGKILL');
        await exitOf(p);
        run('master', 'mesos-master', masterArgs);
        await waitHttp(`${masterUrl}/health`, () => true, 30_000, []);
        await activeAgents(alive);
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Start Locus's local cluster (master and agents over real HTTP) behaving as the same isolators. */
export async function startLocal(o: TargetOptions = {}): Promise<ClusterTarget> {
  const dir = scenarioDir('locus-conf-local');
  let principal: string | undefined;
  let secretFile: string | undefined;
  let credentials: { principal: string; secret: string }[] | undefined;
  if (o.auth === true) {
    principal = 'locus';
    const secret = randomBytes(16).toString('hex');
    secretFile = join(dir, 'secret');
    writeFileSync(secretFile, secret, { mode: 0o600 });
    credentials = [{ principal, secret }];
  }
  const cluster = await startLocalCluster({
    workDir: join(dir, 'cluster'), agents: o.agents ?? 1, racks: 2, port: 0, allocationIntervalMs: 100, isolation: 'auto',
    resources: o.resources ?? 'cpus:2;mem:2048;disk:4096;ports:[31000-32000]', filesystemIsolation: o.isolation ?? 'posix',
    ...(credentials ? { credentials } : {}),
    ...(o.executorAuth !== undefined ? { authenticateExecutors: o.executorAuth } : {}),
  });
  return {
    kind: 'local',
    masterUrl: cluster.masterUrl,
    agents: cluster.agents.map((a) => ({ url: a.url, hostname: a.hostname })),
    dir,
    ...(principal ? { principal } : {}),
    ...(secretFile ? { secretFile } : {}),
    executorAuth: o.executorAuth !== undefined && o.executorAuth !== false,
    async restartAgent(i) {
      const a = cluster.agents[i - 1];
      if (!a) throw new Error(`no agent-${i}`);
      await cluster.control.stopAgent(a.hostname);
      await cluster.control.startAgent(a.hostname);
    },
    async killAgent(i) {
      const a = cluster.agents[i - 1];
      if (!a) throw new Error(`no agent-${i}`);
      await cluster.control.stopAgent(a.hostname);
    },
    async stop() {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Both targets, each with what it needs from the machine. */
export const TARGETS: readonly { readonly name: 'genuine' | 'local'; readonly deps: readonly Dependency[]; start(o?: TargetOptions): Promise<ClusterTarget> }[] = [
  { name: 'local', deps: [], start: startLocal },
  { name: 'genuine', deps: [GENUINE_MESOS], start: startGenuine },
];

/**
 * Remove the cgroup trees named `<root>-*` under each v1 hierarchy (or the cgroup2 mount),
 * children first; a cgroup whose last killed process is still exiting is busy for a moment,
 * so each is tried for up to 2 s. Whatever cannot be removed is left, never an error.
 */
async function removeCgroupRoots(root: string): Promise<void> {
  const base = '/sys/fs/cgroup';
  let hierarchies: string[];
  try {
    hierarchies = [base, ...readdirSync(base).map((h) => join(base, h))];
  } catch {
    return;
  }
  const deepestFirst = (d: string): string[] => {
    let subs: string[] = [];
    try {
      subs = readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(d, e.name));
    } catch {
      return [];
    }
    return [...subs.flatMap(deepestFirst), d];
  };
  for (const h of hierarchies) {
    let names: string[];
    try {
      names = readdirSync(h).filter((n) => n.startsWith(`${root}-`));
    } catch {
      continue;
    }
    for (const d of names.flatMap((n) => deepestFirst(join(h, n)))) {
      for (let tries = 0; tries < 40; tries++) {
        try {
          rmdirSync(d);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EBUSY') break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
  }
}
