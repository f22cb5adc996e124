/**
 * The Linux isolator: each container is a bubblewrap sandbox (pid, mount,
 * ipc, uts and optionally net namespaces; a root of only the system
 * directories (read-only), private /proc and /tmp, writable sandbox and
 * volumes) whose pid 1 is moved into its own
 * cgroup before it executes the workload. bwrap's monitor process stays
 * outside, in Locus's cgroup and namespaces, and only reports the exit.
 *
 * Launch handshake: bwrap writes the host pid of the namespace's init to an
 * info pipe and then blocks reading a second pipe; Locus (or its warm
 * launcher, see launcher.ts) puts that pid into the container cgroup and only
 * then lets it continue, so every process of the workload is born inside the
 * cgroup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, promises as fsp, readdirSync, readlinkSync, lstatSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { LocusError } from '../../core/errors.js';
import type { Logger } from '../../obs/log.js';
import { bwrapArgs, ETC_ENTRIES, type RootEntry } from './bwrap.js';
import { CgroupPool, SPARES_MAX } from './cgroup-pool.js';
import { EtcView, removeStaleViews, type EtcBinds } from './etc-view.js';
import { destroyCgroup, type CgroupDriver, type ContainerCgroup, killCgroup } from './cgroups.js';
import { JoinWarmer } from './join-warmer.js';
import { NativeLauncher, nativeLauncherPath, WarmLauncher, type ContainerLauncher } from './launcher.js';
import { buildExit, diskMessage, diskPaths, DiskWatch, oomMessage, OutputPump, validateSpec } from './common.js';
import { chownTree, DEFAULT_PATH, findExecutable, processStartTime, resolveUser, type HostUser } from './host.js';
import type { Container, ContainerExit, ContainerSpec, ContainerUsage, IsolationReport, Isolator, TerminationReason } from './types.js';

/** Settings of the Linux isolator. */
export interface LinuxIsolatorOptions {
  readonly defaultUser: string;
  /** Directory under each cgroup hierarchy that holds Locus's cgroups. */
  readonly cgroupRoot: string;
  readonly bwrapPath: string;
  readonly setprivPath: string;
  /** How often disk usage is measured (Mesos's disk/du polls too). */
  readonly diskPollMs: number;
  /** How often the cgroup is checked for OOM kills. */
  readonly monitorPollMs: number;
  /** Start containers from a warm helper process (default true; false spawns bwrap from this process). */
  readonly warmLauncher?: boolean;
  /**
   * The native launcher's path (see launcher.ts): when set, and warmLauncher is not false, it
   * starts the containers instead of bwrap and setpriv. Default: found by nativeLauncherPath().
   */
  readonly nativeLauncherPath?: string | null;
  /** Emptied cgroups kept for reuse (see cgroup-pool.ts; default SPARES_MAX, 0 = none). */
  readonly cgroupSpares?: number;
  /**
   * Where the isolator keeps the copy of /etc its containers bind (see etc-view.ts), as
   * `<dir>/etc-<owner>`; null binds each /etc entry on its own. Default ETC_VIEW_PARENT.
   */
  readonly etcViewParent?: string | null;
  /** Finds this process's own `cgroup.procs` (one hierarchy) for JoinWarmer's no-op moves; absent, none. */
  readonly ownProcs?: () => Promise<string | undefined>;
}

/** The default parent of the isolators' /etc copies: root's, in memory, gone at boot. */
export const ETC_VIEW_PARENT = '/run/locus';

const OWNER_RE = /^locus-(\d+)-(\d+)-[0-9a-f]+$/;

/**
 * The cgroup directory name that marks one isolator's containers: the pid and
 * start time of its process (so a dead owner is recognised even after pid
 * reuse) and a random part (so two isolators in one process stay apart).
 */
export function ownerTag(pid = process.pid): string {
  return `locus-${pid}-${processStartTime(pid) ?? 0}-${randomBytes(3).toString('hex')}`;
}

/** Whether an owner tag names a live process (same pid and start time). */
export function ownerAlive(tag: string): boolean {
  const m = OWNER_RE.exec(tag);
  if (!m) return true; // Not ours to judge.
  return processStartTime(Number(m[1])) === Number(m[2]);
}

/** Containers run with namespaces and cgroups. */
export class LinuxIsolator implements Isolator {
  private readonly containers = new Map<string, LinuxContainer>();
  private readonly owner = ownerTag();
  private closing: Promise<void> | undefined;
  /** Starts containers from a small helper process (see launcher.ts), unless turned off. */
  private readonly launcher: ContainerLauncher | undefined;
  /** Where containers' cgroups come from and go back to. */
  readonly cgroups: CgroupPool;
  /** Starts the kernel's wait for a cgroup join when a launch follows a quiet spell. */
  readonly joins: JoinWarmer;
  /** The /etc containers bind, unless turned off or it could not be written. */
  private etcView: EtcView | undefined;

  private constructor(
    readonly report: IsolationReport,
    private readonly driver: CgroupDriver,
    private readonly logger: Logger,
    private readonly options: LinuxIsolatorOptions,
  ) {
    const native = options.nativeLauncherPath === undefined ? nativeLauncherPath() : (options.nativeLauncherPath ?? undefined);
    this.launcher = options.warmLauncher === false ? undefined : native !== undefined ? new NativeLauncher(native) : new WarmLauncher();
    this.cgroups = new CgroupPool(driver, [options.cgroupRoot, this.owner], options.cgroupSpares ?? SPARES_MAX);
    this.joins = new JoinWarmer(options.ownProcs);
    const etcParent = options.etcViewParent === undefined ? ETC_VIEW_PARENT : options.etcViewParent;
    if (etcParent !== null) this.etcView = new EtcView(join(etcParent, `etc-${this.owner}`), ETC_ENTRIES);
  }

  /** The directory bound at /etc in containers (undefined: each entry is bound on its own). */
  get etcDir(): string | undefined {
    return this.etcView?.dir;
  }

  private etcBinds(): EtcBinds | undefined {
    if (!this.etcView) return undefined;
    try {
      return this.etcView.current();
    } catch (err) {
      // A full or read-only /run: containers still get /etc, one bind per entry as before.
      this.logger.warn({ dir: this.etcView.dir, err: (err as Error).message }, 'cannot keep the /etc copy for containers; binding each entry instead');
      this.etcView = undefined;
      return undefined;
    }
  }

  /** What starts the containers: `native` (locus-spawn), `bwrap` (through the warm helper) or `bwrap-direct`. */
  get launcherKind(): 'native' | 'bwrap' | 'bwrap-direct' {
    return this.launcher?.kind ?? 'bwrap-direct';
  }

  /** Create the isolator, first removing cgroups left by Locus processes that died. */
  static async create(report: IsolationReport, driver: CgroupDriver, logger: Logger, options: LinuxIsolatorOptions): Promise<LinuxIsolator> {
    const iso = new LinuxIsolator(report, driver, logger, options);
    await iso.cleanupStale();
    iso.launcher?.prestart?.();
    // The /etc copy is made now, not by the first container: its two dozen copies were 4 ms of
    // the first job's first start (later checks are a stat per entry).
    iso.etcBinds();
    logger.info({ launcher: iso.launcherKind }, iso.launcherKind === 'native' ? 'containers start from the native launcher (locus-spawn)' : 'containers start with bubblewrap and setpriv');
    return iso;
  }

  /** The warm launcher's pid, while it runs. */
  get launcherPid(): number | undefined {
    return this.launcher?.pid;
  }

  /** The pids of every launcher process running (the native launcher may run several). */
  get launcherPids(): number[] {
    const l = this.launcher;
    if (l instanceof NativeLauncher) return l.pids;
    return l?.pid !== undefined ? [l.pid] : [];
  }

  /** The directories (one per hierarchy) that hold this isolator's containers. */
  get cgroupBase(): string[] {
    return this.driver.bases.map((b) => join(b, this.options.cgroupRoot, this.owner));
  }

  private async cleanupStale(): Promise<void> {
    // Copies of dead owners sit beside this isolator's own.
    const etcParent = this.etcView === undefined ? undefined : dirname(this.etcView.dir);
    if (etcParent !== undefined) {
      for (const n of removeStaleViews(etcParent, 'etc-', ownerAlive)) this.logger.warn({ dir: join(etcParent, n) }, 'removed the /etc copy of a Locus process that died');
    }
    const names = new Set<string>();
    for (const base of this.driver.bases) {
      try {
        for (const n of await fsp.readdir(join(base, this.options.cgroupRoot))) if (OWNER_RE.test(n)) names.add(n);
      } catch {
        // No root yet.
      }
    }
    for (const n of names) {
      if (ownerAlive(n)) continue;
      const cg = this.driver.open([this.options.cgroupRoot, n]);
      try {
        await destroyCgroup(cg, 0);
        this.logger.warn({ cgroup: n }, 'removed cgroups left behind by a Locus process that died');
      } catch (err) {
        this.logger.error({ cgroup: n, err: (err as Error).message }, 'could not remove stale cgroups');
      }
    }
  }

  async launch(spec: ContainerSpec): Promise<Container> {
    if (this.closing) throw new LocusError('WRONG_STATE', 'the isolator is closed');
    validateSpec(spec);
    if (this.containers.has(spec.id)) throw new LocusError('ALREADY_EXISTS', `container '${spec.id}' is already running`);
    this.joins.launching();
    let cgroupParent: readonly string[] = [this.options.cgroupRoot, this.owner];
    if (spec.parentId !== undefined) {
      const parent = this.containers.get(spec.parentId);
      if (!parent) throw new LocusError('NOT_FOUND', `parent container '${spec.parentId}' is not running here`, { field: 'parentId' });
      // A parent still being started has no cgroup yet: nothing can be nested in it.
      if (parent.cgroupRel.length === 0) throw new LocusError('WRONG_STATE', `parent container '${spec.parentId}' is still starting`, { field: 'parentId' });
      cgroupParent = parent.cgroupRel;
      parent.markNested();
    }
    const user = resolveUser(spec.user ?? this.options.defaultUser);
    // A sandbox made just now is empty: its owner is set on it alone, without walking it. These
    // few calls are synchronous: each asynchronous one is two thread switches, which on a small VM
    // cost more than the call.
    if (mkdirSync(spec.sandboxDir, { recursive: true }) !== undefined) chownSync(spec.sandboxDir, user.uid, user.gid);
    else await chownTree(spec.sandboxDir, user.uid, user.gid);
    // The sandbox is its user's alone: where another tenant's task runs on the host's filesystem
    // (the process fallback, a path that leaks), the mode still refuses it.
    if (spec.hostFilesystem !== true) chmodSync(spec.sandboxDir, 0o700);
    for (const v of spec.volumes) {
      if (v.readOnly || v.ownByWorkload !== true) continue;
      const st = await fsp.stat(v.hostPath).catch(() => undefined);
      if (st && st.isDirectory() && st.uid !== user.uid) await fsp.chown(v.hostPath, user.uid, user.gid);
    }

    const container = new LinuxContainer(spec, this.logger.child({ container: spec.id }), this.options, () => this.containers.delete(spec.id), this.cgroups);
    this.containers.set(spec.id, container);
    const env: Record<string, string> = { PATH: DEFAULT_PATH, HOME: spec.sandboxDir, ...spec.env, LOCUS_SANDBOX: spec.sandboxDir };
    const exe = findExecutable(spec.argv[0] ?? '', env['PATH'] ?? DEFAULT_PATH);
    if (exe === undefined) {
      container.failLaunch(`executable not found: ${spec.argv[0] ?? ''}`, 127);
      return container;
    }
    let cg: ContainerCgroup;
    try {
      const made = await this.cgroups.create(cgroupParent, spec.id, spec.limits);
      cg = made.cg;
      container.cgroupRel = made.rel;
    } catch (err) {
      this.containers.delete(spec.id);
      throw new LocusError('INTERNAL', `cannot create cgroup for '${spec.id}': ${(err as Error).message}`, { cause: err });
    }
    try {
      await container.start(cg, user, this.options, env, this.launcher, this.etcBinds());
    } catch (err) {
      this.containers.delete(spec.id);
      await destroyCgroup(cg, 0).catch(() => undefined);
      throw new LocusError('INTERNAL', `cannot start container '${spec.id}': ${(err as Error).message}`, { cause: err });
    }
    return container;
  }

  expectLaunch(): void {
    this.joins.launching();
  }

  get(id: string): Container | undefined {
    return this.containers.get(id);
  }

  /** The implementation object (tests read its cgroup directories). */
  getLinux(id: string): LinuxContainer | undefined {
    return this.containers.get(id);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // Nested containers first, so a parent's teardown finds its children gone.
      const all = [...this.containers.values()].sort((a, b) => b.cgroupRel.length - a.cgroupRel.length);
      for (const c of all) {
        try {
          await c.kill(0);
        } catch (err) {
          this.logger.error({ container: c.id, err: (err as Error).message }, 'kill on close failed');
        }
      }
      this.cgroups.close();
      this.etcView?.remove();
      await destroyCgroup(this.driver.open([this.options.cgroupRoot, this.owner]), 0).catch((err: unknown) => {
        this.logger.error({ err: (err as Error).message }, 'could not remove the cgroup directory of this process');
      });
      this.launcher?.close();
      // The shared root goes too when no other Locus process uses it (rmdir fails otherwise, harmlessly).
      for (const b of this.driver.bases) await fsp.rmdir(join(b, this.options.cgroupRoot)).catch(() => undefined);
    })();
    return this.closing;
  }
}

/** How long a reading of the host's root entries is reused (they change only when the host is reconfigured). */
const ROOT_ENTRIES_TTL_MS = 5000;
let rootEntriesCache: { at: number; entries: RootEntry[] } | undefined;

/**
 * The top-level entries of the host's root filesystem, read at most every few seconds: reading
 * them (readdir, an lstat each, readlink) for every container was most of Locus's own per-launch
 * file-system work.
 */
export function cachedHostRootEntries(now = Date.now()): RootEntry[] {
  if (rootEntriesCache === undefined || now - rootEntriesCache.at > ROOT_ENTRIES_TTL_MS) rootEntriesCache = { at: now, entries: hostRootEntries() };
  return rootEntriesCache.entries;
}

/** The top-level entries of the host's root filesystem. */
export function hostRootEntries(): RootEntry[] {
  const out: RootEntry[] = [];
  for (const name of readdirSync('/')) {
    const p = `/${name}`;
    try {
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.push({ name, kind: 'symlink', target: readlinkSync(p) });
      else if (st.isDirectory()) out.push({ name, kind: 'dir' });
      else if (st.isFile()) out.push({ name, kind: 'file' });
    } catch {
      // Vanished or unreadable: leave it out.
    }
  }
  return out;
}

/** One container run by the Linux isolator. */
export class LinuxContainer implements Container {
  pid: number | undefined;
  private child: ChildProcess | undefined;
  private cg: ContainerCgroup | undefined;
  private pump: OutputPump | undefined;
  private disk: DiskWatch | undefined;
  private monitor: NodeJS.Timeout | undefined;
  private reason: TerminationReason | undefined;
  private reasonMessage: string | undefined;
  private killing: Promise<void> | undefined;
  private finalUsage: ContainerUsage | undefined;
  private peakSeen = 0;
  /** Whether a nested container was ever started inside (its cgroup is then never reused). */
  private nested = false;
  /** The stderr file the warm launcher's container writes (read for launch-failure messages). */
  private stderrPath: string | undefined;
  private resolveExit!: (exit: ContainerExit) => void;
  private readonly exited: Promise<ContainerExit>;

  /** The container's cgroup: its path segments below each hierarchy (set when it is made). */
  cgroupRel: readonly string[] = [];

  constructor(
    private readonly spec: ContainerSpec,
    private readonly logger: Logger,
    private readonly options: LinuxIsolatorOptions,
    private readonly forget: () => void,
    /** Takes the emptied cgroup back at the end (keeps it as a spare or removes it). */
    private readonly cgroups?: CgroupPool,
  ) {
    this.exited = new Promise((r) => (this.resolveExit = r));
  }

  get id(): string {
    return this.spec.id;
  }

  /** The cgroup directories (empty before start and after the end). */
  get cgroupDirs(): readonly string[] {
    return this.cg && !this.finalUsage ? this.cg.dirs : [];
  }

  markNested(): void {
    this.nested = true;
  }

  /** End without ever running (bad executable). */
  failLaunch(message: string, exitCode: number): void {
    this.finish({ exitCode, signal: null, reason: 'LAUNCH_FAILED', message, usage: zeroUsage() });
  }

  private finish(exit: ContainerExit): void {
    this.finalUsage = exit.usage;
    this.forget();
    this.logger.info({ exit }, 'container ended');
    this.resolveExit(exit);
  }

  /** Spawn bwrap, move its init into the cgroup, release it, and start watching. */
  async start(cg: ContainerCgroup, user: HostUser, options: LinuxIsolatorOptions, env: Record<string, string>, launcher?: ContainerLauncher, etc?: EtcBinds): Promise<void> {
    this.cg = cg;
    const args = bwrapArgs(this.spec, user, { infoFd: 3, blockFd: 4, rootEntries: cachedHostRootEntries(), setprivPath: options.setprivPath, env, ...(etc !== undefined ? { etc } : {}) });
    // Without an output callback or rotation the workload writes its log files directly, so the
    // warm launcher can start it (see launcher.ts); otherwise Locus pumps the pipes itself.
    if (launcher !== undefined && this.spec.onOutput === undefined && !((this.spec.logRotateBytes ?? 0) > 0)) {
      await this.startWarm(launcher, cg, user, options, args);
      return;
    }
    const child = spawn(options.bwrapPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'], env: {} });
    this.child = child;
    this.pump = new OutputPump(child, this.spec, { uid: user.uid, gid: user.gid });
    const exitOnce = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: 127, signal: null }));
    });
    const info = child.stdio[3] as Readable | null;
    const block = child.stdio[4] as Writable | null;
    // These are socketpairs; bwrap closing its ends can surface as ECONNRESET, which is no fault.
    info?.on('error', () => undefined);
    block?.on('error', () => undefined);
    const pid = info ? await Promise.race([readChildPid(info), exitOnce.then(() => undefined)]) : undefined;
    let launchError: string | undefined;
    if (pid === undefined) {
      launchError = 'bwrap did not start the container';
    } else {
      try {
        await cg.addProcess(pid);
        this.pid = pid;
      } catch (err) {
        launchError = `cannot move the container into its cgroup: ${(err as Error).message}`;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    }
    if (launchError === undefined) {
      block?.end('1');
      // A kill that arrived while the init was not yet in the cgroup found nothing to kill; repeat it.
      if (this.killing) void killCgroup(cg, 0).catch(() => undefined);
    } else {
      block?.destroy();
      this.reason = 'LAUNCH_FAILED';
    }
    void exitOnce.then(({ code, signal }) => this.onExit(code, signal, launchError));
    if (launchError !== undefined || pid === undefined) return;
    this.watch(cg, options, pid);
  }

  private startWarm(launcher: ContainerLauncher, cg: ContainerCgroup, user: HostUser, options: LinuxIsolatorOptions, args: string[]): Promise<void> {
    const stderrPath = this.spec.stderrPath ?? join(this.spec.sandboxDir, 'stderr');
    this.stderrPath = stderrPath;
    return new Promise<void>((resolve) => {
      launcher.launch(
        { file: options.bwrapPath, args, stdoutPath: this.spec.stdoutPath ?? join(this.spec.sandboxDir, 'stdout'), stderrPath, uid: user.uid, gid: user.gid, cgroupProcs: cg.procsFiles() },
        {
          started: (pid) => {
            this.pid = pid;
            // A kill that arrived while the init was not yet in the cgroup found nothing to kill; repeat it.
            if (this.killing) void killCgroup(cg, 0).catch(() => undefined);
            this.watch(cg, options, pid);
            resolve();
          },
          exited: (code, signal, failure) => {
            if (failure !== undefined) this.reason = 'LAUNCH_FAILED';
            void this.onExit(code, signal, failure);
            resolve();
          },
        },
      );
    });
  }

  /** Watch a started container: disk usage when limited, OOM kills and memory by polling its cgroup. */
  private watch(cg: ContainerCgroup, options: LinuxIsolatorOptions, pid: number): void {
    this.disk = new DiskWatch(diskPaths(this.spec), this.spec.limits.diskMiB, options.diskPollMs, (used) => {
      this.terminate('DISK_LIMIT', diskMessage(used, this.spec.limits.diskMiB));
    });
    if (this.spec.limits.diskMiB > 0) this.disk.start();
    this.monitor = setInterval(() => void this.checkCgroup(), options.monitorPollMs);
    this.monitor.unref();
    this.logger.info({ pid, cgroup: cg.dirs }, 'container started');
  }

  private async checkCgroup(): Promise<void> {
    if (!this.cg || this.finalUsage) return;
    const s = await this.cg.watch();
    if (s.memCurrentBytes !== undefined) this.peakSeen = Math.max(this.peakSeen, s.memCurrentBytes);
    // Like the Mesos memory isolator: an OOM kill inside is a limitation of the whole container.
    if (s.oomKills > 0) this.terminate('OOM', oomMessage(this.spec.limits.memMiB));
  }

  private terminate(reason: TerminationReason, message: string): void {
    if (this.reason === undefined) {
      this.reason = reason;
      this.reasonMessage = message;
    }
    void this.kill(0).catch((err: unknown) => this.logger.error({ err: (err as Error).message }, 'kill failed'));
  }

  private async onExit(code: number | null, signal: NodeJS.Signals | null, launchError: string | undefined): Promise<void> {
    if (this.monitor) clearInterval(this.monitor);
    this.disk?.stop();
    // pid 1 is gone, so the kernel kills the rest of its namespace; anything left is killed by cgroup.
    let emptied = true;
    if (this.cg) {
      await killCgroup(this.cg, 0).catch((err: unknown) => {
        emptied = false;
        this.logger.error({ err: (err as Error).message }, 'kill failed');
      });
    }
    await this.pump?.finish(2000);
    let usage = zeroUsage();
    let oomKills = 0;
    if (this.cg) {
      const s = await this.cg.stats();
      oomKills = s.oomKills;
      usage = {
        cpuTimeSeconds: s.cpuNs / 1e9,
        memPeakBytes: Math.max(s.memPeakBytes, this.peakSeen),
        memCurrentBytes: 0,
        diskUsedBytes: this.disk ? await this.disk.measure() : 0,
      };
      const cg = this.cg;
      const end = this.cgroups ? this.cgroups.release(cg, this.cgroupRel, this.spec.limits, s.memCurrentBytes, this.nested || !emptied) : cg.remove();
      await end.catch((err: unknown) => this.logger.error({ err: (err as Error).message, cgroup: cg.dirs }, 'could not remove cgroup'));
    }
    if (launchError !== undefined) {
      const head = this.pump?.stderrHead ?? (this.stderrPath !== undefined ? await readHead(this.stderrPath) : '');
      this.finish({ exitCode: code, signal, reason: 'LAUNCH_FAILED', message: `${launchError}${head ? `: ${head.trim()}` : ''}`, usage });
      return;
    }
    if (this.reason === undefined && oomKills > 0) {
      this.reason = 'OOM';
      this.reasonMessage = oomMessage(this.spec.limits.memMiB);
    }
    this.finish(buildExit(code, signal, this.reason ?? 'EXITED', this.reasonMessage, usage));
  }

  wait(): Promise<ContainerExit> {
    return this.exited;
  }

  kill(graceMs = 0): Promise<void> {
    if (this.finalUsage) return Promise.resolve();
    if (this.reason === undefined) {
      this.reason = 'KILLED';
      this.reasonMessage = 'killed on request';
    }
    this.killing ??= (async () => {
      if (this.cg) await killCgroup(this.cg, graceMs);
      else this.child?.kill('SIGKILL');
    })();
    return this.killing.then(() => this.exited).then(() => undefined);
  }

  async usage(): Promise<ContainerUsage> {
    if (this.finalUsage) return this.finalUsage;
    if (!this.cg) return zeroUsage();
    const s = await this.cg.stats();
    this.peakSeen = Math.max(this.peakSeen, s.memCurrentBytes);
    return {
      cpuTimeSeconds: s.cpuNs / 1e9,
      memPeakBytes: Math.max(s.memPeakBytes, this.peakSeen),
      memCurrentBytes: s.memCurrentBytes,
      diskUsedBytes: this.disk ? await this.disk.measure() : 0,
    };
  }
}

/** The first 2 KiB of a file ('' when it cannot be read). */
async function readHead(path: string): Promise<string> {
  try {
    const fh = await fsp.open(path, 'r');
    try {
      const buf = Buffer.alloc(2048);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

function zeroUsage(): ContainerUsage {
  return { cpuTimeSeconds: 0, memPeakBytes: 0, memCurrentBytes: 0, diskUsedBytes: 0 };
}

/** Read bwrap's info JSON until it names the child pid; undefined if the pipe ends first. */
function readChildPid(info: Readable): Promise<number | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const m = /"child-pid"\s*:\s*(\d+)/.exec(text);
      if (m) {
        info.off('data', onData);
        info.resume();
        resolve(Number(m[1]));
      }
    };
    info.on('data', onData);
    info.once('close', () => resolve(undefined));
    info.once('error', () => resolve(undefined));
  });
}
