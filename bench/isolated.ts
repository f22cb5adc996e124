/**
 * Isolated-task benchmark (`npm run bench:isolated`, issue 16 item 2): how
 * many containers per second the linux isolator starts and ends on this
 * machine, each with its own pid, mount, ipc and uts namespaces, a cgroup
 * with cpu and memory limits and a per-task sandbox, running `true`.
 *
 * First the cost of each step of starting one container, measured one
 * container at a time by doing the isolator's steps by hand (sandbox,
 * cgroup, bubblewrap up to the namespace's init, moving it into the cgroup,
 * the workload's run to its exit, teardown), next to a bare spawn of `true`
 * from this process for scale, and the same spawn from a process grown to
 * the size of a local cluster's agent (spawn cost grows with the parent).
 * Then throughput through `LinuxIsolator.launch()` at a few concurrencies,
 * three rounds each, median reported: with the default launcher (the native
 * locus-spawn when it was built), and with bubblewrap + setpriv started from a
 * warm Node helper and from this process, for comparison; at concurrency 32
 * also without cgroup spares (every cgroup made and removed anew) and with a
 * bind per /etc entry instead of the isolator's copy, each between two rows
 * with both.
 *
 * Every container is checked to have exited 0 before its time counts.
 * Prints one line per figure and, last, one JSON object; writes it to
 * bench/results/isolated-<date>.json.
 */
import { resultName } from './out-name.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { bwrapArgs } from '../src/executor/isolation/bwrap.js';
import { cgroupDriver, destroyCgroup, killCgroup } from '../src/executor/isolation/cgroups.js';
import { detectHost } from '../src/executor/isolation/detect.js';
import { chownTree, DEFAULT_PATH, resolveUser } from '../src/executor/isolation/host.js';
import { createIsolator, LinuxIsolator } from '../src/executor/isolation/index.js';
import { hostRootEntries } from '../src/executor/isolation/linux.js';
import type { ContainerSpec, Isolator } from '../src/executor/isolation/types.js';
import { silentLogger } from '../src/obs/log.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
};
/** Containers per step measurement and per throughput round. */
const STEP_RUNS = arg('step-runs', 30);
const TASKS = arg('tasks', 300);
const ROUNDS = arg('rounds', 3);
const CONCURRENCY = [1, 4, 16, 32];
/** MiB of heap to grow the parent to for the "spawn from a big process" figure. */
const BALLAST_MIB = arg('ballast-mib', 400);

const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
const r2 = (x: number): number => Math.round(x * 100) / 100;
const say = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

function exitOf(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(127));
  });
}

/** ms to spawn `true` and see it exit, from this process. */
async function bareSpawn(): Promise<number> {
  const t0 = now();
  const code = await exitOf(spawn('/bin/true', [], { stdio: 'ignore' }));
  if (code !== 0) throw new Error(`true exited ${String(code)}`);
  return now() - t0;
}

/** ms for spawn() itself to return (the fork and exec the event loop waits for). */
function spawnCall(): { ms: number; done: Promise<number | null> } {
  const t0 = now();
  const child = spawn('/bin/true', [], { stdio: 'ignore' });
  const ms = now() - t0;
  return { ms, done: exitOf(child) };
}

function readChildPid(info: Readable): Promise<number | undefined> {
  return new Promise((resolve) => {
    let text = '';
    info.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const m = /"child-pid"\s*:\s*(\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    info.once('close', () => resolve(undefined));
  });
}

interface Steps {
  sandbox: number;
  cgroupCreate: number;
  spawnCall: number;
  bwrapToInit: number;
  cgroupAdd: number;
  runToExit: number;
  teardown: number;
  total: number;
}

/** The isolator's launch, step by step, for one container running `true`. */
async function oneByHand(root: string, i: number): Promise<Steps> {
  const host = await detectHost();
  const driver = cgroupDriver(host.layout);
  if (!driver || !host.bwrapPath || !host.setprivPath) throw new Error('linux isolation is not available here');
  const user = resolveUser('nobody');
  const spec: ContainerSpec = {
    id: `bench-${i}`, argv: ['/bin/true'], env: {}, sandboxDir: join(root, 'by-hand', `c${i}`),
    limits: { cpus: 0.5, memMiB: 64, diskMiB: 0, pids: 0 }, volumes: [], network: 'host',
  };
  const t0 = now();
  await mkdir(spec.sandboxDir, { recursive: true });
  await chownTree(spec.sandboxDir, user.uid, user.gid);
  const t1 = now();
  const cg = await driver.create(['locus-bench', `p${process.pid}`, spec.id], spec.limits);
  const t2 = now();
  const args = bwrapArgs(spec, user, { infoFd: 3, blockFd: 4, rootEntries: hostRootEntries(), setprivPath: host.setprivPath, env: { PATH: DEFAULT_PATH } });
  const child = spawn(host.bwrapPath, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], env: {} });
  const t3 = now();
  const exited = exitOf(child);
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const pid = await readChildPid(child.stdio[3] as Readable);
  if (pid === undefined) throw new Error(`bwrap did not start: ${stderr}`);
  const t4 = now();
  await cg.addProcess(pid);
  const t5 = now();
  (child.stdio[4] as Writable).end('1');
  const code = await exited;
  if (code !== 0) throw new Error(`container exited ${String(code)}: ${stderr}`);
  const t6 = now();
  await killCgroup(cg, 0);
  await cg.stats();
  await cg.remove();
  const t7 = now();
  return { sandbox: t1 - t0, cgroupCreate: t2 - t1, spawnCall: t3 - t2, bwrapToInit: t4 - t3, cgroupAdd: t5 - t4, runToExit: t6 - t5, teardown: t7 - t6, total: t7 - t0 };
}

/** Launch `tasks` containers of `true`, at most `concurrency` at once; containers per second. */
async function throughput(iso: Isolator, root: string, tasks: number, concurrency: number, round: number): Promise<{ perSecond: number; cpuMsPerTask: number }> {
  let next = 0;
  let failed = 0;
  const cpu0 = process.cpuUsage();
  const children0 = childCpuMs();
  const helper0 = helperCpuMs(iso);
  const t0 = now();
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= tasks) return;
      const id = `r${round}-c${concurrency}-${i}`;
      const c = await iso.launch({
        id, argv: ['true'], env: {}, sandboxDir: join(root, 'tp', id),
        limits: { cpus: 0.5, memMiB: 64, diskMiB: 0, pids: 0 }, volumes: [], network: 'host',
      });
      const exit = await c.wait();
      if (exit.exitCode !== 0) failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const seconds = (now() - t0) / 1000;
  if (failed > 0) throw new Error(`${failed} of ${tasks} containers did not exit 0`);
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000 + (childCpuMs() - children0) + (helperCpuMs(iso) - helper0);
  return { perSecond: tasks / seconds, cpuMsPerTask: cpuMs / tasks };
}

/** CPU ms of this process's waited-for children (utime+stime of reaped children, /proc/self/stat). */
function childCpuMs(): number {
  // cutime and cstime are fields 16 and 17 of proc(5), in clock ticks (100 per second here).
  const stat = readSelfStat();
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

/** CPU ms of the isolator's warm launcher and its reaped children (bwrap, and through it the workloads). */
function helperCpuMs(iso: Isolator): number {
  let ms = 0;
  for (const pid of iso instanceof LinuxIsolator ? iso.launcherPids : []) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ms += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
    } catch {
      // Gone.
    }
  }
  return ms;
}

function readSelfStat(): string {
  // Synchronous on purpose: a consistent snapshot between two measurements.
  return readFileSync('/proc/self/stat', 'utf8');
}

async function main(): Promise<void> {
  const loadAtStart = loadavg().map(r2);
  const host = await detectHost();
  if (host.report.kind !== 'linux') throw new Error(`linux isolation is not available here: ${host.report.notes.join('; ')}`);
  say(`isolated-task benchmark: ${cpus().length} cpus, cgroups ${host.report.cgroups}, load ${loadAtStart.join(' / ')}`);
  const root = mkdtempSync('/var/tmp/locus-bench-isolated-');
  const iso = await createIsolator('linux', silentLogger());
  try {
    // Warm the page cache and the isolator's lazy paths before timing anything.
    for (let i = 0; i < 3; i++) await oneByHand(root, 1000 + i);

    const bare: number[] = [];
    const calls: number[] = [];
    for (let i = 0; i < STEP_RUNS; i++) {
      bare.push(await bareSpawn());
      const c = spawnCall();
      calls.push(c.ms);
      await c.done;
    }
    // A parent the size of the local cluster's agent process: fork copies its page tables.
    const ballast: Buffer[] = [];
    for (let i = 0; i < BALLAST_MIB; i++) ballast.push(Buffer.alloc(1024 * 1024, 1));
    const bigCalls: number[] = [];
    for (let i = 0; i < STEP_RUNS; i++) {
      const c = spawnCall();
      bigCalls.push(c.ms);
      await c.done;
    }
    const rssBigMiB = Math.round(process.memoryUsage().rss / 1024 / 1024);
    ballast.length = 0;

    const steps: Steps[] = [];
    for (let i = 0; i < STEP_RUNS; i++) steps.push(await oneByHand(root, i));
    const stepMedian = (k: keyof Steps): number => r2(median(steps.map((s) => s[k])));
    const stepsMs = {
      sandbox: stepMedian('sandbox'),
      cgroupCreate: stepMedian('cgroupCreate'),
      spawnCall: stepMedian('spawnCall'),
      bwrapToInit: stepMedian('bwrapToInit'),
      cgroupAdd: stepMedian('cgroupAdd'),
      runToExit: stepMedian('runToExit'),
      teardown: stepMedian('teardown'),
      total: stepMedian('total'),
    };
    say(`one container by hand (median of ${STEP_RUNS}, ms): ${JSON.stringify(stepsMs)}`);
    say(`spawn of true from this process: ${r2(median(bare))} ms to exit, spawn() call ${r2(median(calls))} ms; from a ${rssBigMiB} MiB process: spawn() call ${r2(median(bigCalls))} ms`);

    // Start the warm launcher before timing it.
    await (await iso.launch({ id: 'warmup', argv: ['true'], env: {}, sandboxDir: join(root, 'warmup'), limits: { cpus: 0.5, memMiB: 64, diskMiB: 0, pids: 0 }, volumes: [], network: 'host' })).wait();
    type Row = { launcher: string; parentRssMiB: number; concurrency: number; perSecond: number; perSecondRounds: number[]; cpuMsPerTask: number; loadAverageAfter: number[] };
    const rows: Row[] = [];
    const measure = async (on: Isolator, launcher: string, c: number): Promise<void> => {
      const per: number[] = [];
      const cpu: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const t = await throughput(on, root, TASKS, c, rows.length * 100 + r);
        per.push(t.perSecond);
        cpu.push(t.cpuMsPerTask);
      }
      const row: Row = { launcher, parentRssMiB: Math.round(process.memoryUsage().rss / 1024 / 1024), concurrency: c, perSecond: r2(median(per)), perSecondRounds: per.map(r2), cpuMsPerTask: r2(median(cpu)), loadAverageAfter: loadavg().map(r2) };
      rows.push(row);
      say(`LinuxIsolator (launcher ${launcher}, parent ${row.parentRssMiB} MiB), ${TASKS} containers of true, concurrency ${c}: ${row.perSecond} containers/s (rounds ${row.perSecondRounds.join(', ')}), ${row.cpuMsPerTask} ms CPU per container (this process and its children), load ${row.loadAverageAfter.join(' / ')}`);
    };
    // The default launcher (locus-spawn when it was built), the Node helper spawning bwrap and
    // setpriv, and bwrap spawned from this process: the three ways a container can start.
    const main = iso instanceof LinuxIsolator ? iso.launcherKind : 'unknown';
    const bwrapWarm = await createIsolator('linux', silentLogger(), { nativeLauncher: false });
    const inProcess = await createIsolator('linux', silentLogger(), { warmLauncher: false });
    // The same launcher with every container's cgroup made and removed anew (no spares kept).
    const noSpares = await createIsolator('linux', silentLogger(), { cgroupSpares: 0 });
    // And with each /etc entry bound on its own, as before the isolator kept a copy of them.
    const perEntryEtc = await createIsolator('linux', silentLogger(), { etcViewParent: null });
    await (await bwrapWarm.launch({ id: 'warmup-bwrap', argv: ['true'], env: {}, sandboxDir: join(root, 'warmup-bwrap'), limits: { cpus: 0.5, memMiB: 64, diskMiB: 0, pids: 0 }, volumes: [], network: 'host' })).wait();
    try {
      for (const c of CONCURRENCY) await measure(iso, main, c);
      await measure(noSpares, `${main} without cgroup spares`, 32);
      await measure(iso, main, 32);
      await measure(perEntryEtc, `${main} binding each /etc entry`, 32);
      await measure(iso, main, 32);
      await measure(bwrapWarm, 'bwrap (warm helper)', 4);
      await measure(inProcess, 'bwrap (in-process)', 4);
      // The local cluster's agent shares its process with the master and the framework: grow this
      // one to that size and compare the launchers there.
      for (let i = 0; i < BALLAST_MIB; i++) ballast.push(Buffer.alloc(1024 * 1024, 1));
      await measure(inProcess, 'bwrap (in-process)', 4);
      await measure(iso, main, 4);
      ballast.length = 0;
    } finally {
      await inProcess.close();
      await bwrapWarm.close();
      await noSpares.close();
      await perEntryEtc.close();
    }
    const best = Math.max(...rows.map((r) => r.perSecond));
    const result = {
      benchmark: 'isolated',
      date: new Date().toISOString(),
      cpus: cpus().length,
      cgroups: host.report.cgroups,
      node: process.version,
      target: 300,
      perSecond: best,
      met: best >= 300,
      stepsMs,
      spawnTrueMs: { toExit: r2(median(bare)), call: r2(median(calls)), callFromBigProcess: r2(median(bigCalls)), bigProcessRssMiB: rssBigMiB },
      throughput: rows,
      loadAverageBefore: loadAtStart,
      loadAverageAfter: loadavg().map(r2),
    };
    const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, `${resultName(outDir, `isolated-${result.date.slice(0, 10)}`)}.json`), JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await iso.close();
    const driver = cgroupDriver(host.layout);
    if (driver) await destroyCgroup(driver.open(['locus-bench']), 0).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
