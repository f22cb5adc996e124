/**
 * cgroups: detection of the host's layout (v1 per-controller hierarchies or a
 * unified v2 hierarchy) and the driver that creates one cgroup per container,
 * sets its limits, reads its accounting and tears it down.
 *
 * Every container's cgroup lives at `<hierarchy>/<root>/<owner>/<parent's…>/<name>`
 * where `<owner>` is `locus-<pid>-<starttime>` of the Locus process that made
 * it, and `<name>` is the container's id, or `locus-cg-<n>` where emptied
 * cgroups are kept for reuse (v1 with spares: see cgroup-pool.ts). A later Locus recognises the owner directories of dead processes and
 * removes them (with anything still running inside), so a crash never leaves
 * cgroups behind for long.
 */
import { existsSync, mkdirSync, promises as fsp, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMountinfo } from '../../core/mountinfo.js';
import type { ContainerLimits } from './types.js';

/** The cgroup controllers Locus uses. */
export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids', 'freezer'] as const;
/** Controllers a v1 host must have for Locus to claim cgroup isolation. */
const V1_REQUIRED = ['cpu', 'cpuacct', 'memory', 'pids'] as const;
/** Controllers a v2 hierarchy must offer. */
const V2_REQUIRED = ['cpu', 'memory', 'pids'] as const;

/** The host's cgroup layout. */
export type CgroupLayout =
  | { readonly version: 'v1'; readonly mounts: ReadonlyMap<string, string> }
  | { readonly version: 'v2'; readonly mount: string }
  | { readonly version: 'none'; readonly why: string };

/**
 * Decide the layout from mountinfo text and a reader of cgroup2
 * `cgroup.controllers` files. A cgroup2 mount counts only when it offers the
 * controllers Locus needs: hybrid hosts mount an empty one at
 * /sys/fs/cgroup/unified while the controllers stay bound to v1.
 */
export function decideLayout(mountinfo: string, readControllers: (mount: string) => string | undefined): CgroupLayout {
  const mounts = parseMountinfo(mountinfo);
  const v2 = mounts
    .filter((m) => m.fsType === 'cgroup2')
    .sort((a, b) => (a.mountPoint === '/sys/fs/cgroup' ? -1 : b.mountPoint === '/sys/fs/cgroup' ? 1 : 0));
  for (const m of v2) {
    const controllers = (readControllers(m.mountPoint) ?? '').trim().split(/\s+/);
    if (V2_REQUIRED.every((c) => controllers.includes(c))) return { version: 'v2', mount: m.mountPoint };
  }
  const v1 = new Map<string, string>();
  for (const m of mounts) {
    if (m.fsType !== 'cgroup') continue;
    for (const c of V1_CONTROLLERS) if (m.superOptions.includes(c) && !v1.has(c)) v1.set(c, m.mountPoint);
  }
  const missing = V1_REQUIRED.filter((c) => !v1.has(c));
  if (missing.length === 0) return { version: 'v1', mounts: v1 };
  if (v1.size === 0 && v2.length === 0) return { version: 'none', why: 'no cgroup filesystem is mounted' };
  if (v1.size === 0) return { version: 'none', why: `cgroup2 is mounted (${v2.map((m) => m.mountPoint).join(', ')}) but offers none of ${V2_REQUIRED.join(', ')}` };
  return { version: 'none', why: `cgroup v1 controllers missing: ${missing.join(', ')}` };
}

/** Detect this host's cgroup layout. */
export function detectCgroupLayout(): CgroupLayout {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch (err) {
    return { version: 'none', why: `cannot read /proc/self/mountinfo: ${(err as Error).message}` };
  }
  return decideLayout(text, (mount) => {
    try {
      return readFileSync(join(mount, 'cgroup.controllers'), 'utf8');
    } catch {
      return undefined;
    }
  });
}

/** cgroup v1 CFS period; quota = cpus × period. */
export const CFS_PERIOD_US = 100_000;

/** The limit files of a v1 container cgroup, per controller, in write order. */
export function v1LimitFiles(limits: ContainerLimits): Record<'cpu' | 'memory' | 'pids', Array<[string, string]>> {
  const cpu: Array<[string, string]> = [];
  if (limits.cpus > 0) {
    cpu.push(['cpu.shares', String(Math.max(2, Math.round(limits.cpus * 1024)))]);
    cpu.push(['cpu.cfs_period_us', String(CFS_PERIOD_US)]);
    cpu.push(['cpu.cfs_quota_us', String(Math.max(1000, Math.round(limits.cpus * CFS_PERIOD_US)))]);
  }
  const memory: Array<[string, string]> = [];
  if (limits.memMiB > 0) {
    const bytes = String(Math.round(limits.memMiB * 1024 * 1024));
    memory.push(['memory.limit_in_bytes', bytes]);
    // memsw must be >= the plain limit, so it is written second; it exists only with swap accounting.
    memory.push(['memory.memsw.limit_in_bytes', bytes]);
  }
  const pids: Array<[string, string]> = limits.pids > 0 ? [['pids.max', String(limits.pids)]] : [];
  return { cpu, memory, pids };
}

/** The limit files of a v2 container cgroup, in write order. */
export function v2LimitFiles(limits: ContainerLimits): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (limits.cpus > 0) {
    // cpu.weight spans 1..10000 with 100 as the default; one core ≈ 100, like shares/1024.
    out.push(['cpu.weight', String(Math.min(10_000, Math.max(1, Math.round(limits.cpus * 100))))]);
    out.push(['cpu.max', `${Math.max(1000, Math.round(limits.cpus * CFS_PERIOD_US))} ${CFS_PERIOD_US}`]);
  }
  if (limits.memMiB > 0) {
    const bytes = String(Math.round(limits.memMiB * 1024 * 1024));
    out.push(['memory.max', bytes]);
    out.push(['memory.swap.max', '0']);
  }
  if (limits.pids > 0) out.push(['pids.max', String(limits.pids)]);
  return out;
}

/** Accounting of one container cgroup. */
export interface CgroupStats {
  readonly cpuNs: number;
  readonly memPeakBytes: number;
  readonly memCurrentBytes: number;
  /** How many processes the kernel OOM-killed in this cgroup. */
  readonly oomKills: number;
  readonly pidsCurrent: number;
}

/** One container's cgroup (one directory per v1 hierarchy, or one v2 directory). */
export interface ContainerCgroup {
  /** The directories that hold the container (tests and diagnostics read them). */
  readonly dirs: readonly string[];
  /** Move a process (and so its future children) into the container. */
  addProcess(pid: number): Promise<void>;
  /** The files addProcess writes the pid to (a launcher in another process writes them itself). */
  procsFiles(): string[];
  /** Every pid in the container and its nested containers. */
  pids(): Promise<number[]>;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Kill everything at once if the kernel can (v2 cgroup.kill); false when not supported. */
  killAll(): Promise<boolean>;
  stats(): Promise<CgroupStats>;
  /**
   * What a running container is watched for, read cheaply: its OOM kills and, where the kernel
   * keeps no peak of its own, the memory in use (undefined where it does: the peak is read at the
   * end). One or two files, where stats() reads five.
   */
  watch(): Promise<{ oomKills: number; memCurrentBytes: number | undefined }>;
  /** Remove the directories (nested ones first); the cgroup must be empty. */
  remove(): Promise<void>;
}

/** Creates container cgroups in one layout. */
export interface CgroupDriver {
  readonly version: 'v1' | 'v2';
  /** The hierarchy directories under which `rel` paths are created. */
  readonly bases: readonly string[];
  create(rel: readonly string[], limits: ContainerLimits): Promise<ContainerCgroup>;
  /** Open an existing path (stale cleanup, nested lookups). */
  open(rel: readonly string[]): ContainerCgroup;
  /**
   * Take an empty cgroup at `rel` for another container, its limits as they are: restart what it
   * counts (CPU time, memory peak; the OOM kills counted before stay out of its figures). Absent
   * where the layout cannot restart its counters (cgroup2).
   */
  readonly reuse?: (rel: readonly string[]) => ContainerCgroup;
}

/*
 * cgroup files are tiny and answered by the kernel without blocking, so they are read and
 * written synchronously: one syscall each, where fs.promises costs four thread-pool round
 * trips per readFile (open, fstat, read, close) and was most of Locus's own CPU per container
 * (bench/results/isolated-2026-12-05.md).
 */
function readTextSync(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function readText(path: string): Promise<string | undefined> {
  return readTextSync(path);
}

async function readNumber(path: string): Promise<number> {
  const t = await readText(path);
  const n = t === undefined ? NaN : Number(t.trim());
  return Number.isFinite(n) ? n : 0;
}

/** The value of `key N` in a flat-keyed cgroup file (memory.events, cpu.stat, oom_control). */
export function keyedValue(text: string | undefined, key: string): number {
  if (text === undefined) return 0;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key) return Number(v) || 0;
  }
  return 0;
}

/** Directories under dir, deepest first (for removal). */
async function subdirsDeepFirst(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const sub = join(dir, e.name);
    out.push(...(await subdirsDeepFirst(sub)), sub);
  }
  return out;
}

async function procsUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const d of [dir, ...(await subdirsDeepFirst(dir))]) {
    const t = await readText(join(d, 'cgroup.procs'));
    if (t === undefined) continue;
    for (const s of t.split('\n')) if (s.trim() !== '') pids.push(Number(s));
  }
  return pids;
}

async function rmdirTree(dir: string): Promise<void> {
  // Most containers have no nested cgroups: one rmdir, without listing the directory (a cgroup
  // directory lists all its control files; five listings per container were most of the teardown).
  try {
    rmdirSync(dir);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
  }
  for (const d of [...(await subdirsDeepFirst(dir)), dir]) {
    // A just-emptied cgroup can be briefly busy while the last task exits; retry a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        rmdirSync(d);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

async function writeFileStrict(path: string, value: string): Promise<void> {
  writeFileSync(path, value);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

class V1Cgroup implements ContainerCgroup {
  constructor(
    private readonly byController: ReadonlyMap<string, string>,
    /** OOM kills the kernel counted here before this container (a reused cgroup's counter cannot be reset). */
    private readonly oomBase = 0,
  ) {}

  get dirs(): string[] {
    return [...new Set(this.byController.values())];
  }

  private dir(controller: string): string | undefined {
    return this.byController.get(controller);
  }

  async addProcess(pid: number): Promise<void> {
    for (const f of this.procsFiles()) await writeFileStrict(f, String(pid));
  }

  procsFiles(): string[] {
    return this.dirs.map((d) => join(d, 'cgroup.procs'));
  }

  async pids(): Promise<number[]> {
    // The pids hierarchy always exists (required); freezer/memory would do as well.
    const d = this.dir('pids') ?? this.dirs[0];
    return d === undefined ? [] : procsUnder(d);
  }

  async freeze(): Promise<void> {
    const d = this.dir('freezer');
    if (d === undefined) return;
    await writeFileStrict(join(d, 'freezer.state'), 'FROZEN');
    await waitFor(async () => (await readText(join(d, 'freezer.state')))?.trim() !== 'FREEZING', 2000);
  }

  async thaw(): Promise<void> {
    const d = this.dir('freezer');
    if (d === undefined) return;
    await fsp.writeFile(join(d, 'freezer.state'), 'THAWED').catch(() => undefined);
  }

  async killAll(): Promise<boolean> {
    return false;
  }

  async watch(): Promise<{ oomKills: number; memCurrentBytes: number | undefined }> {
    // memory.max_usage_in_bytes is the kernel's own peak: only the OOM counter needs polling.
    const mem = this.dir('memory');
    return { oomKills: mem === undefined ? 0 : keyedValue(await readText(join(mem, 'memory.oom_control')), 'oom_kill') - this.oomBase, memCurrentBytes: undefined };
  }

  async stats(): Promise<CgroupStats> {
    const mem = this.dir('memory');
    const cpuacct = this.dir('cpuacct');
    const pids = this.dir('pids');
    return {
      cpuNs: cpuacct === undefined ? 0 : await readNumber(join(cpuacct, 'cpuacct.usage')),
      memPeakBytes: mem === undefined ? 0 : await readNumber(join(mem, 'memory.max_usage_in_bytes')),
      memCurrentBytes: mem === undefined ? 0 : await readNumber(join(mem, 'memory.usage_in_bytes')),
      oomKills: mem === undefined ? 0 : keyedValue(await readText(join(mem, 'memory.oom_control')), 'oom_kill') - this.oomBase,
      pidsCurrent: pids === undefined ? 0 : await readNumber(join(pids, 'pids.current')),
    };
  }

  async remove(): Promise<void> {
    for (const d of this.dirs) await rmdirTree(d);
  }
}

class V1Driver implements CgroupDriver {
  readonly version = 'v1' as const;
  constructor(private readonly mounts: ReadonlyMap<string, string>) {}

  get bases(): string[] {
    return [...new Set(this.mounts.values())];
  }

  open(rel: readonly string[], oomBase = 0): V1Cgroup {
    const by = new Map<string, string>();
    for (const [c, mount] of this.mounts) by.set(c, join(mount, ...rel));
    return new V1Cgroup(by, oomBase);
  }

  /**
   * The counters that can be restarted are (cpuacct.usage and memory.max_usage_in_bytes take a
   * write of 0); the OOM kill counter cannot, so its value now is the cgroup's base from here.
   */
  readonly reuse = (rel: readonly string[]): V1Cgroup => {
    const cpuacct = this.mounts.get('cpuacct');
    if (cpuacct !== undefined) writeFileSync(join(cpuacct, ...rel, 'cpuacct.usage'), '0');
    const mem = this.mounts.get('memory');
    if (mem === undefined) return this.open(rel);
    writeFileSync(join(mem, ...rel, 'memory.max_usage_in_bytes'), '0');
    return this.open(rel, keyedValue(readTextSync(join(mem, ...rel, 'memory.oom_control')), 'oom_kill'));
  };

  async create(rel: readonly string[], limits: ContainerLimits): Promise<ContainerCgroup> {
    const cg = this.open(rel);
    try {
      for (const d of cg.dirs) mkdirSync(d, { recursive: true });
      const files = v1LimitFiles(limits);
      for (const ctl of ['cpu', 'memory', 'pids'] as const) {
        const dir = this.mounts.get(ctl);
        if (dir === undefined) continue;
        for (const [file, value] of files[ctl]) {
          const path = join(dir, ...rel, file);
          try {
            await writeFileStrict(path, value);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            // memsw exists only with swap accounting; a nested quota above its parent's is refused: keep the parent's.
            if (file === 'memory.memsw.limit_in_bytes' && code === 'ENOENT') continue;
            if (file === 'cpu.cfs_quota_us' && code === 'EINVAL') continue;
            throw err;
          }
        }
      }
    } catch (err) {
      await cg.remove().catch(() => undefined);
      throw err;
    }
    return cg;
  }
}

/**
 * v2 forbids processes in a cgroup that delegates controllers to children, so
 * the workload sits in a `payload` leaf below the container's directory; the
 * limits sit on the container's directory and so cover nested containers too.
 */
export const V2_PAYLOAD = 'payload';

class V2Cgroup implements ContainerCgroup {
  constructor(private readonly dir: string) {}

  get dirs(): string[] {
    return [this.dir];
  }

  async addProcess(pid: number): Promise<void> {
    await writeFileStrict(join(this.dir, V2_PAYLOAD, 'cgroup.procs'), String(pid));
  }

  procsFiles(): string[] {
    return [join(this.dir, V2_PAYLOAD, 'cgroup.procs')];
  }

  async pids(): Promise<number[]> {
    return procsUnder(this.dir);
  }

  async freeze(): Promise<void> {
    await writeFileStrict(join(this.dir, 'cgroup.freeze'), '1');
    await waitFor(async () => keyedValue(await readText(join(this.dir, 'cgroup.events')), 'frozen') === 1, 2000);
  }

  async thaw(): Promise<void> {
    await fsp.writeFile(join(this.dir, 'cgroup.freeze'), '0').catch(() => undefined);
  }

  async killAll(): Promise<boolean> {
    try {
      await fsp.writeFile(join(this.dir, 'cgroup.kill'), '1');
      return true;
    } catch {
      return false;
    }
  }

  /** Whether memory.peak is there (Linux 5.19+), learnt at the first watch. */
  private hasPeak: boolean | undefined;

  async watch(): Promise<{ oomKills: number; memCurrentBytes: number | undefined }> {
    const oomKills = keyedValue(await readText(join(this.dir, V2_PAYLOAD, 'memory.events')), 'oom_kill');
    this.hasPeak ??= existsSync(join(this.dir, 'memory.peak'));
    // Without memory.peak the sampled current value is the best there is for the peak.
    return { oomKills, memCurrentBytes: this.hasPeak ? undefined : await readNumber(join(this.dir, 'memory.current')) };
  }

  async stats(): Promise<CgroupStats> {
    const cpuStat = await readText(join(this.dir, 'cpu.stat'));
    const current = await readNumber(join(this.dir, 'memory.current'));
    const peakText = await readText(join(this.dir, 'memory.peak'));
    return {
      cpuNs: keyedValue(cpuStat, 'usage_usec') * 1000,
      // memory.peak needs Linux 5.19; before that the sampled current value is the best there is.
      memPeakBytes: peakText === undefined ? current : Number(peakText.trim()) || current,
      memCurrentBytes: current,
      // v2 counts OOM kills up the tree; the payload leaf counts only this container's own processes,
      // so a nested task's OOM is not mistaken for its executor's.
      oomKills: keyedValue(await readText(join(this.dir, V2_PAYLOAD, 'memory.events')), 'oom_kill'),
      pidsCurrent: await readNumber(join(this.dir, 'pids.current')),
    };
  }

  async remove(): Promise<void> {
    await rmdirTree(this.dir);
  }
}

class V2Driver implements CgroupDriver {
  readonly version = 'v2' as const;
  constructor(private readonly mount: string) {}

  get bases(): string[] {
    return [this.mount];
  }

  open(rel: readonly string[]): V2Cgroup {
    return new V2Cgroup(join(this.mount, ...rel));
  }

  async create(rel: readonly string[], limits: ContainerLimits): Promise<ContainerCgroup> {
    // Each ancestor must delegate cpu, memory and pids to its children.
    let dir = this.mount;
    for (const seg of rel) {
      await enableControllers(dir);
      dir = join(dir, seg);
      mkdirSync(dir, { recursive: true });
    }
    const cg = new V2Cgroup(dir);
    try {
      for (const [file, value] of v2LimitFiles(limits)) {
        try {
          await writeFileStrict(join(dir, file), value);
        } catch (err) {
          // memory.swap.max is absent without swap accounting.
          if (file === 'memory.swap.max' && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
      }
      await enableControllers(dir);
      mkdirSync(join(dir, V2_PAYLOAD));
    } catch (err) {
      await cg.remove().catch(() => undefined);
      throw err;
    }
    return cg;
  }
}

async function enableControllers(dir: string): Promise<void> {
  const have = ((await readText(join(dir, 'cgroup.subtree_control'))) ?? '').split(/\s+/);
  const want = V2_REQUIRED.filter((c) => !have.includes(c));
  if (want.length === 0) return;
  await writeFileStrict(join(dir, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '));
}

/** The driver for a detected layout, or undefined when there are no usable cgroups. */
export function cgroupDriver(layout: CgroupLayout): CgroupDriver | undefined {
  if (layout.version === 'v1') return new V1Driver(layout.mounts);
  if (layout.version === 'v2') return new V2Driver(layout.mount);
  return undefined;
}

/**
 * Empty a cgroup: SIGTERM everything, wait up to graceMs, then freeze,
 * SIGKILL whatever is left, thaw so the signals are delivered, and wait until
 * the cgroup is empty. Killing by cgroup, not by pid, reaches every process
 * however it was forked or re-parented.
 */
export async function killCgroup(cg: ContainerCgroup, graceMs: number): Promise<void> {
  const empty = async (): Promise<boolean> => (await cg.pids()).length === 0;
  if (graceMs > 0 && !(await empty())) {
    signalAll(await cg.pids(), 'SIGTERM');
    await waitFor(empty, graceMs);
  }
  for (let round = 0; !(await empty()); round++) {
    if (!(await cg.killAll())) {
      await cg.freeze().catch(() => undefined);
      signalAll(await cg.pids(), 'SIGKILL');
      await cg.thaw();
    }
    if (await waitFor(empty, 2000)) break;
    if (round >= 5) throw new Error(`cgroup ${cg.dirs.join(', ')} still has processes after SIGKILL`);
  }
}

/** Empty a cgroup (see killCgroup) and remove it with everything nested. */
export async function destroyCgroup(cg: ContainerCgroup, graceMs: number): Promise<void> {
  await killCgroup(cg, graceMs);
  await cg.remove();
}

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}
