/**
 * The fallback isolator: plain child processes with rlimits, for hosts
 * without root or cgroups (a developer laptop). It has no namespaces — the
 * workload sees the host's processes and every path file modes let it — and
 * says so loudly when it is created. Run by root, it runs each workload as
 * the (unprivileged) user its spec names, so file modes keep tenants apart;
 * run by anyone else, as itself, and it says that too. Limits are best
 * effort: memory as RLIMIT_DATA, processes as RLIMIT_NPROC (per user,
 * ignored for root), disk by polling; CPU is not limited. Kill reaches the
 * workload's process group.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { LocusError } from '../../core/errors.js';
import type { Logger } from '../../obs/log.js';
import { dirname, isAbsolute } from 'node:path';
import { buildExit, diskMessage, diskPaths, DiskWatch, OutputPump, validateSpec, volumeTarget } from './common.js';
import { chownTree, DEFAULT_PATH, findExecutable, resolveUser, sleep } from './host.js';
import { ProcessGroupSampler } from './process-groups.js';
import type { Container, ContainerExit, ContainerSpec, ContainerUsage, IsolationReport, Isolator, TerminationReason } from './types.js';

/** Settings of the process isolator. */
export interface ProcessIsolatorOptions {
  readonly defaultUser: string;
  readonly diskPollMs: number;
  readonly monitorPollMs: number;
  readonly prlimitPath: string | undefined;
}

const PAGE_SIZE = 4096;
const TICKS_PER_SECOND = 100;

/** Runs containers as plain processes (no isolation). */
export class ProcessIsolator implements Isolator {
  private readonly containers = new Map<string, ProcessContainer>();
  private closing: Promise<void> | undefined;
  /** Users a spec named that this (unprivileged) isolator could not switch to, each said once. */
  private readonly unswitched = new Set<string>();
  /** One pass over /proc per monitor interval for all containers. */
  private readonly groups: ProcessGroupSampler;

  constructor(
    readonly report: IsolationReport,
    private readonly logger: Logger,
    private readonly options: ProcessIsolatorOptions,
  ) {
    this.groups = new ProcessGroupSampler(options.monitorPollMs);
    logger.warn({ notes: report.notes }, 'NOT isolated: containers run as plain processes with rlimits (no namespaces, no cgroups)');
  }

  async launch(spec: ContainerSpec): Promise<Container> {
    if (this.closing) throw new LocusError('WRONG_STATE', 'the isolator is closed');
    validateSpec(spec);
    if (this.containers.has(spec.id)) throw new LocusError('ALREADY_EXISTS', `container '${spec.id}' is already running`);
    await fsp.mkdir(spec.sandboxDir, { recursive: true });
    // No mount namespace: a volume with a relative container path appears as a symlink in the
    // sandbox, as Mesos filesystem/posix shows persistent volumes (absolute paths are the host's own).
    for (const v of spec.volumes) {
      if (isAbsolute(v.containerPath)) continue;
      const link = volumeTarget(spec.sandboxDir, v.containerPath);
      await fsp.mkdir(dirname(link), { recursive: true });
      if (!(await fsp.lstat(link).then(() => true, () => false))) await fsp.symlink(v.hostPath, link);
    }
    // Only root can switch users; anyone else runs the workload as themselves.
    const isRoot = process.getuid?.() === 0;
    const user = isRoot ? resolveUser(spec.user ?? this.options.defaultUser) : undefined;
    if (!isRoot && spec.user !== undefined) this.sayCannotSwitch(spec.user);
    if (user) {
      await chownTree(spec.sandboxDir, user.uid, user.gid);
      // Without a mount namespace every task sees the host's paths: the mode keeps other users out.
      await fsp.chmod(spec.sandboxDir, 0o700);
    }
    const env: Record<string, string> = { PATH: DEFAULT_PATH, HOME: spec.sandboxDir, ...spec.env, LOCUS_SANDBOX: spec.sandboxDir };
    const c = new ProcessContainer(spec, this.logger.child({ container: spec.id }), this.groups, () => this.containers.delete(spec.id));
    this.containers.set(spec.id, c);
    if (findExecutable(spec.argv[0] ?? '', env['PATH'] ?? DEFAULT_PATH) === undefined) {
      c.failLaunch(`executable not found: ${spec.argv[0] ?? ''}`);
      return c;
    }
    c.start(this.options, env, user);
    return c;
  }

  /**
   * Say once per named user that this isolator, not root, runs the workload as itself instead:
   * a tenant's uid asked for here is not given, so every tenant's tasks on this host share this
   * process's uid — they can signal it and read what it can. Not refused: a single tenant (a
   * developer's own machine) loses nothing by it, and the framework refuses several tenants on
   * plain processes unless the operator allowed it.
   */
  private sayCannotSwitch(name: string): void {
    const own = process.getuid?.();
    let wanted: number;
    try {
      wanted = resolveUser(name).uid;
    } catch {
      wanted = Number.NaN; // an unknown name is as far from this process's uid as another uid
    }
    if (wanted === own || this.unswitched.has(name)) return;
    this.unswitched.add(name);
    this.logger.warn(
      { user: name, runsAsUid: own },
      `cannot run workloads as '${name}' (this process is not root): they run as uid ${String(own)}, shared by every tenant's tasks here; use a root executor or linux isolation to keep tenants apart`,
    );
  }

  get(id: string): Container | undefined {
    return this.containers.get(id);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of [...this.containers.values()]) await c.kill(0).catch(() => undefined);
    })();
    return this.closing;
  }
}

/** The rlimit prefix for a spec: prlimit when present, else a shell with ulimit. */
export function rlimitArgv(spec: ContainerSpec, prlimitPath: string | undefined): string[] {
  const memBytes = Math.round(spec.limits.memMiB * 1024 * 1024);
  if (prlimitPath !== undefined) {
    const a = [prlimitPath];
    if (memBytes > 0) a.push(`--data=${memBytes}`);
    if (spec.limits.pids > 0) a.push(`--nproc=${spec.limits.pids}`);
    return [...a, '--', ...spec.argv];
  }
  const lines: string[] = [];
  if (memBytes > 0) lines.push(`ulimit -d ${Math.ceil(memBytes / 1024)}`);
  if (spec.limits.pids > 0) lines.push(`ulimit -u ${spec.limits.pids}`);
  return ['/bin/sh', '-c', [...lines, 'exec "$@"'].join('; '), 'sh', ...spec.argv];
}

/** One workload run as a plain process group. */
class ProcessContainer implements Container {
  pid: number | undefined;
  private reason: TerminationReason | undefined;
  private reasonMessage: string | undefined;
  private disk: DiskWatch | undefined;
  private monitor: NodeJS.Timeout | undefined;
  private cpuTicks = 0;
  private memPeak = 0;
  private memCurrent = 0;
  /** When its process was spawned (Date.now()): a /proc pass begun before cannot have seen it. */
  private spawnedAt = 0;
  private finalUsage: ContainerUsage | undefined;
  private resolveExit!: (exit: ContainerExit) => void;
  private readonly exited: Promise<ContainerExit>;

  constructor(
    private readonly spec: ContainerSpec,
    private readonly logger: Logger,
    private readonly groups: ProcessGroupSampler,
    private readonly forget: () => void,
  ) {
    this.exited = new Promise((r) => (this.resolveExit = r));
  }

  get id(): string {
    return this.spec.id;
  }

  failLaunch(message: string): void {
    this.finish({ exitCode: 127, signal: null, reason: 'LAUNCH_FAILED', message, usage: this.currentUsage() });
  }

  private finish(exit: ContainerExit): void {
    this.finalUsage = exit.usage;
    this.forget();
    this.logger.info({ exit }, 'process container ended');
    this.resolveExit(exit);
  }

  start(options: ProcessIsolatorOptions, env: Record<string, string>, user: { uid: number; gid: number } | undefined): void {
    const argv = rlimitArgv(this.spec, options.prlimitPath);
    const child = spawn(argv[0] ?? '/bin/sh', argv.slice(1), {
      cwd: this.spec.sandboxDir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so kill reaches its children
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    this.pid = child.pid;
    this.spawnedAt = Date.now();
    const pump = new OutputPump(child, this.spec, user);
    this.disk = new DiskWatch(diskPaths(this.spec), this.spec.limits.diskMiB, options.diskPollMs, (used) => {
      if (this.reason === undefined) {
        this.reason = 'DISK_LIMIT';
        this.reasonMessage = diskMessage(used, this.spec.limits.diskMiB);
      }
      void this.kill(0);
    });
    if (this.spec.limits.diskMiB > 0) this.disk.start();
    this.monitor = setInterval(() => this.sample(), options.monitorPollMs);
    this.monitor.unref();
    child.once('error', (err) => {
      // A spawn that failed never emits 'exit'; a running child's later errors are about its pipes.
      if (child.pid !== undefined || this.finalUsage) return;
      if (this.monitor) clearInterval(this.monitor);
      this.disk?.stop();
      void pump.finish(0).then(() => this.finish({ exitCode: 127, signal: null, reason: 'LAUNCH_FAILED', message: `cannot start: ${err.message}`, usage: this.currentUsage() }));
    });
    // 'exit', not 'close': a daemonised child holding the pipes must not delay the end.
    child.once('exit', (code, signal) => {
      void (async () => {
        if (this.monitor) clearInterval(this.monitor);
        this.disk?.stop();
        // Children that outlived the leader still share its process group.
        this.signalGroup('SIGKILL');
        await pump.finish(2000);
        const diskUsed = this.disk ? await this.disk.measure() : 0;
        this.memCurrent = 0;
        const usage = { ...this.currentUsage(), diskUsedBytes: diskUsed };
        this.finish(buildExit(code, signal, this.reason ?? 'EXITED', this.reasonMessage, usage));
      })();
    });
  }

  /**
   * CPU ticks and resident memory of the process group (best effort, sampled; process-groups.ts).
   * `asked`: for usage(), whose answer must not come from a pass older than the container (the
   * monitor's ticks take the shared pass as it is: a forced one per container launched would
   * undo the sharing).
   */
  private sample(asked = false): void {
    if (this.pid === undefined) return;
    const u = this.groups.usageOf(this.pid, asked ? this.spawnedAt : undefined);
    const ticks = u?.ticks ?? 0;
    const rss = (u?.rssPages ?? 0) * PAGE_SIZE;
    this.cpuTicks = Math.max(this.cpuTicks, ticks);
    this.memCurrent = rss;
    this.memPeak = Math.max(this.memPeak, rss);
  }

  private currentUsage(): ContainerUsage {
    return { cpuTimeSeconds: this.cpuTicks / TICKS_PER_SECOND, memPeakBytes: this.memPeak, memCurrentBytes: this.memCurrent, diskUsedBytes: this.disk?.lastBytes ?? 0 };
  }

  private signalGroup(signal: NodeJS.Signals): boolean {
    if (this.pid === undefined) return false;
    try {
      process.kill(-this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  async wait(): Promise<ContainerExit> {
    return this.exited;
  }

  async kill(graceMs = 0): Promise<void> {
    if (this.finalUsage) return;
    if (this.reason === undefined) {
      this.reason = 'KILLED';
      this.reasonMessage = 'killed on request';
    }
    if (graceMs > 0 && this.signalGroup('SIGTERM')) {
      const deadline = Date.now() + graceMs;
      while (!this.finalUsage && Date.now() < deadline) await sleep(20);
    }
    this.signalGroup('SIGKILL');
    await this.exited;
  }

  async usage(): Promise<ContainerUsage> {
    if (this.finalUsage) return this.finalUsage;
    this.sample(true);
    if (this.disk) await this.disk.measure();
    return this.currentUsage();
  }
}
