/**
 * A warm launcher: one small helper process, started once per isolator, that
 * spawns the containers' bubblewrap processes on Locus's behalf.
 *
 * Why: Node spawns a child by fork()ing itself, and fork copies the parent's
 * page tables, so its cost grows with the parent. The local cluster's agent
 * lives in one large process with the master and the framework, where one
 * spawn of bwrap cost about 70 ms (bench/results/short-2026-12-05.md); from a
 * helper of a few tens of MiB it costs a few ms (bench/results/isolated-*).
 * The helper also does the launch handshake itself (read the namespace init's
 * pid, write it into the container's cgroup, release it), so a busy event loop
 * in the large process no longer holds a container at its start.
 *
 * The helper writes the workload's stdout and stderr straight into the
 * sandbox files (no pipe through Locus), so it serves containers without an
 * output callback or log rotation; the others keep the in-process path.
 *
 * Its code is a string run with `node -e`, so the same file works from the
 * TypeScript sources (tests) and from the build. Messages are JSON over the
 * IPC channel of child_process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { LocusError } from '../../core/errors.js';
import { signalName } from './host.js';
import { nativeHelperPath } from './native-path.js';

/** One container start asked of the launcher. */
export interface LaunchRequest {
  readonly file: string;
  readonly args: readonly string[];
  readonly stdoutPath: string;
  readonly stderrPath: string;
  /** Owner of the log files (the workload's user). */
  readonly uid: number;
  readonly gid: number;
  /** The `cgroup.procs` files the init's pid is written to before it may run. */
  readonly cgroupProcs: readonly string[];
}

/** How a launched container reports back. */
export interface LaunchHandlers {
  /** The init runs inside its cgroup (host pid). */
  started(pid: number): void;
  /** bwrap ended (after started, or instead of it with `failure` set). */
  exited(code: number | null, signal: NodeJS.Signals | null, failure: string | undefined): void;
}

/** The helper's program: plain JavaScript, CommonJS, no dependencies. */
const HELPER = String.raw`
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const running = new Map();
// Set once the executor is gone: a container whose pid is learnt from now on is killed, not started.
let dying = false;
const send = (m) => { try { process.send(m); } catch {} };
// Killing bwrap alone is not enough while the container is still being set up: its inner
// process (the namespace's pid 1, known from the info fd) can outlive it, blocked for good
// in bwrap's start-up handshake. Both are killed, and pid 1 takes the namespace with it.
const killAll = (r) => {
  // bwrap's own children (the inner process) first, read from /proc while bwrap still lives.
  try {
    const kids = fs.readFileSync('/proc/' + r.child.pid + '/task/' + r.child.pid + '/children', 'utf8').trim().split(/\s+/).filter(Boolean);
    for (const k of kids) { try { process.kill(Number(k), 'SIGKILL'); } catch {} }
  } catch {}
  try { r.child.kill('SIGKILL'); } catch {}
  if (r.pid !== undefined) { try { process.kill(r.pid, 'SIGKILL'); } catch {} }
};
process.on('message', (m) => {
  if (m.t === 'kill') { const r = running.get(m.id); if (r) killAll(r); return; }
  if (m.t !== 'launch') return;
  let out, err;
  try {
    out = fs.openSync(m.stdoutPath, 'a'); err = fs.openSync(m.stderrPath, 'a');
    try { fs.fchownSync(out, m.uid, m.gid); fs.fchownSync(err, m.uid, m.gid); } catch {}
  } catch (e) {
    if (out !== undefined) fs.closeSync(out);
    send({ t: 'exit', id: m.id, code: 127, signal: null, failure: 'cannot open the log files: ' + e.message });
    return;
  }
  const child = spawn(m.file, m.args, { stdio: ['ignore', out, err, 'pipe', 'pipe'], env: {} });
  fs.closeSync(out); fs.closeSync(err);
  const entry = { child, pid: undefined };
  running.set(m.id, entry);
  let failure;
  let text = '';
  let released = false;
  const info = child.stdio[3];
  const block = child.stdio[4];
  info.on('error', () => {}); block.on('error', () => {});
  info.on('data', (chunk) => {
    if (released || failure) return;
    text += chunk.toString('utf8');
    const r = /"child-pid"\s*:\s*(\d+)/.exec(text);
    if (!r) return;
    const pid = Number(r[1]);
    entry.pid = pid;
    if (dying) { try { process.kill(pid, 'SIGKILL'); } catch {} return; }
    try {
      for (const p of m.cgroupProcs) fs.writeFileSync(p, String(pid));
    } catch (e) {
      failure = 'cannot move the container into its cgroup: ' + e.message;
      try { process.kill(pid, 'SIGKILL'); } catch {}
      block.destroy();
      return;
    }
    released = true;
    block.end('1');
    send({ t: 'started', id: m.id, pid });
  });
  child.once('error', (e) => { failure = failure || 'cannot start bwrap: ' + e.message; });
  child.once('exit', (code, signal) => {
    running.delete(m.id);
    if (!released && !failure) failure = 'bwrap did not start the container';
    send({ t: 'exit', id: m.id, code, signal, failure });
  });
});
// The executor is gone. bwrap's info (the container's pid) may still be on its way: killed
// before it is read, the inner process would be left behind, so the info pipes are drained
// (for at most two seconds) and every pid they name is killed before the helper exits.
process.on('disconnect', () => {
  dying = true;
  const open = [];
  for (const r of running.values()) {
    killAll(r);
    const info = r.child.stdio[3];
    if (info && !info.destroyed && !info.readableEnded) open.push(new Promise((res) => { info.once('close', res); info.once('end', res); }));
  }
  Promise.race([Promise.all(open), new Promise((res) => setTimeout(res, 2000))]).then(() => process.exit(0));
});
`;

export type FromHelper =
  | { t: 'started'; id: number; pid: number }
  | { t: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null; failure?: string };

function decode(m: unknown): FromHelper | undefined {
  if (typeof m !== 'object' || m === null) return undefined;
  const o = m as Record<string, unknown>;
  if (typeof o['id'] !== 'number') return undefined;
  if (o['t'] === 'started' && typeof o['pid'] === 'number') return { t: 'started', id: o['id'], pid: o['pid'] };
  if (o['t'] === 'exit') {
    const code = typeof o['code'] === 'number' ? o['code'] : null;
    const signal = typeof o['signal'] === 'string' ? (o['signal'] as NodeJS.Signals) : null;
    return { t: 'exit', id: o['id'], code, signal, ...(typeof o['failure'] === 'string' ? { failure: o['failure'] } : {}) };
  }
  return undefined;
}

/** What starts containers for the Linux isolator: the native launcher or the Node helper. */
export interface ContainerLauncher {
  /** `native` (locus-spawn, one exec per container) or `bwrap` (the Node helper spawning bubblewrap and setpriv). */
  readonly kind: 'native' | 'bwrap';
  launch(req: LaunchRequest, handlers: LaunchHandlers): { killLauncherChild(): void };
  /**
   * Start the launcher's processes now rather than at the first container: the first container
   * is often a new executor on the path of a job that found none warm, and spawning a launcher
   * then cost that job a few milliseconds of its agent's event loop.
   */
  prestart?(): void;
  readonly pid: number | undefined;
  close(): void;
}

/** The helper process and the containers it is starting or running. */
export class WarmLauncher implements ContainerLauncher {
  readonly kind = 'bwrap';
  private helper: ChildProcess | undefined;
  private seq = 0;
  private readonly pending = new Map<number, LaunchHandlers>();
  private closed = false;

  private ensure(): ChildProcess {
    if (this.helper && this.helper.connected) return this.helper;
    // --max-old-space-size keeps the helper small, so its own forks stay cheap.
    const h = spawn(process.execPath, ['--max-old-space-size=32', '-e', HELPER], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: {} });
    h.on('message', (raw: unknown) => {
      const m = decode(raw);
      if (!m) return;
      const hd = this.pending.get(m.id);
      if (!hd) return;
      if (m.t === 'started') hd.started(m.pid);
      else {
        this.pending.delete(m.id);
        hd.exited(m.code, m.signal, m.failure);
      }
    });
    h.once('exit', () => {
      if (this.helper === h) this.helper = undefined;
      // bwrap processes die with the helper (--die-with-parent): their containers have ended.
      const lost = [...this.pending.values()];
      this.pending.clear();
      for (const hd of lost) hd.exited(null, 'SIGKILL', this.closed ? undefined : 'the container launcher exited');
    });
    h.on('error', () => undefined);
    this.helper = h;
    return h;
  }

  /** Start one container; returns a handle to SIGKILL its bwrap (before it started). */
  launch(req: LaunchRequest, handlers: LaunchHandlers): { killLauncherChild(): void } {
    if (this.closed) throw new LocusError('WRONG_STATE', 'the launcher is closed');
    const h = this.ensure();
    const id = ++this.seq;
    this.pending.set(id, handlers);
    h.send({ t: 'launch', id, ...req });
    return { killLauncherChild: () => void (h.connected && h.send({ t: 'kill', id })) };
  }

  /** The helper's pid while it runs (benchmarks add its CPU time to the cost of containers). */
  get pid(): number | undefined {
    return this.helper?.pid;
  }

  /** Stop the helper (its bwrap processes die with it). */
  close(): void {
    this.closed = true;
    const h = this.helper;
    this.helper = undefined;
    if (h && h.exitCode === null) h.kill('SIGKILL');
  }
}

/**
 * Where the native launcher (locus-spawn, built from native/locus-spawn.c by
 * scripts/build-native.sh) is: LOCUS_SPAWN_PATH when set (empty turns it
 * off), else `dist/native/locus-spawn` under the project root. Undefined when
 * it was not built (no C compiler): Locus then starts containers with bwrap.
 */
export function nativeLauncherPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return nativeHelperPath('locus-spawn', 'LOCUS_SPAWN_PATH', env);
}

/** One event line of locus-spawn: `S id pid` or `E id code signal failure` ("-" for none). */
export function parseSpawnLine(line: string): FromHelper | undefined {
  const m = /^([SE]) (\d+) (\S+)(?: (\S+) (.*))?$/.exec(line);
  if (!m) return undefined;
  const id = Number(m[2]);
  if (m[1] === 'S') {
    const pid = Number(m[3]);
    return Number.isInteger(pid) && pid > 0 ? { t: 'started', id, pid } : undefined;
  }
  if (m[4] === undefined || m[5] === undefined) return undefined;
  const code = m[3] === '-' ? null : Number(m[3]);
  const signal = m[4] === '-' ? null : ((signalName(Number(m[4])) as NodeJS.Signals | undefined) ?? 'SIGKILL');
  return { t: 'exit', id, code, signal, ...(m[5] !== '-' ? { failure: m[5] } : {}) };
}

/** One request frame: a 4-byte little-endian length, then NUL-terminated strings. */
export function spawnFrame(fields: readonly string[]): Buffer {
  const body = Buffer.from(fields.map((f) => `${f}\0`).join(''), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length, 0);
  return Buffer.concat([head, body]);
}

/**
 * The native launcher: one locus-spawn process that clones each container
 * straight into its namespaces, builds its root, drops privileges and execs
 * the workload (see native/locus-spawn.c). It reads the same arguments
 * bwrapArgs() builds, so the container is described once for both paths.
 */
export class NativeLauncher implements ContainerLauncher {
  readonly kind = 'native';
  /** The launcher processes: each clones one container at a time, so two keep both cores busy. */
  private readonly procs: (SpawnProcess | undefined)[];
  private seq = 0;
  private closed = false;

  constructor(
    private readonly path: string,
    processes = Math.min(2, Math.max(1, availableParallelism())),
  ) {
    this.procs = new Array<SpawnProcess | undefined>(processes).fill(undefined);
  }

  launch(req: LaunchRequest, handlers: LaunchHandlers): { killLauncherChild(): void } {
    if (this.closed) throw new LocusError('WRONG_STATE', 'the launcher is closed');
    const id = ++this.seq;
    return this.proc(id % this.procs.length).launch(id, req, handlers);
  }

  prestart(): void {
    if (this.closed) return;
    for (let i = 0; i < this.procs.length; i++) this.proc(i);
  }

  /** The launcher process of a slot, started (again) when it is not running. */
  private proc(slot: number): SpawnProcess {
    let p = this.procs[slot];
    if (p === undefined || !p.usable) {
      p = new SpawnProcess(this.path, () => this.closed);
      this.procs[slot] = p;
    }
    return p;
  }

  /** The first launcher process's pid (see pids for all). */
  get pid(): number | undefined {
    return this.pids[0];
  }

  /** The launcher processes' pids (benchmarks add their CPU time to the cost of containers). */
  get pids(): number[] {
    return this.procs.flatMap((p) => (p?.pid !== undefined ? [p.pid] : []));
  }

  close(): void {
    this.closed = true;
    for (const p of this.procs) p?.kill();
    this.procs.fill(undefined);
  }
}

/** One locus-spawn process and the containers it started that have not ended. */
class SpawnProcess {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, LaunchHandlers>();

  constructor(path: string, closing: () => boolean) {
    const h = spawn(path, [], { stdio: ['pipe', 'pipe', 'inherit'], env: {} });
    this.child = h;
    let rest = '';
    h.stdout?.setEncoding('utf8');
    h.stdout?.on('data', (chunk: string) => {
      rest += chunk;
      let nl = rest.indexOf('\n');
      while (nl >= 0) {
        const m = parseSpawnLine(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
        nl = rest.indexOf('\n');
        const hd = m && this.pending.get(m.id);
        if (!m || !hd) continue;
        if (m.t === 'started') hd.started(m.pid);
        else {
          this.pending.delete(m.id);
          hd.exited(m.code, m.signal, m.failure);
        }
      }
    });
    h.stdin?.on('error', () => undefined);
    h.once('exit', () => {
      // Containers die with the launcher (their parent-death signal): they have ended.
      const lost = [...this.pending.values()];
      this.pending.clear();
      for (const hd of lost) hd.exited(null, 'SIGKILL', closing() ? undefined : 'the container launcher exited');
    });
    h.on('error', () => undefined);
  }

  get usable(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && this.child.stdin?.writable === true;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  launch(id: number, req: LaunchRequest, handlers: LaunchHandlers): { killLauncherChild(): void } {
    const h = this.child;
    this.pending.set(id, handlers);
    h.stdin?.write(spawnFrame(['L', String(id), req.stdoutPath, req.stderrPath, String(req.uid), String(req.gid), String(req.cgroupProcs.length), ...req.cgroupProcs, ...req.args]));
    return { killLauncherChild: () => void (h.stdin?.writable === true && h.stdin.write(spawnFrame(['K', String(id)]))) };
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
