/**
 * Group commit of output flushes: one syncfs(2) of a local filesystem stands for the fsyncs of
 * every attempt committing on it at that moment.
 *
 * Why: an attempt's commit flushed its marker, its attempt directory and the stage directory,
 * each an fsync through libuv's thread pool and, on this kind of host, a device cache flush. On
 * bench:dispatch (20,000 no-op tasks), the same build with those fsyncs turned off ran 2,093-2,194
 * tasks/s against 1,510-1,650 with them: the flushes were about a quarter of the executors' CPU.
 *
 * Node has no syncfs, so a small native helper (native/locus-syncfs.c) holds one descriptor per
 * filesystem and flushes on request, one flush per filesystem (the helper names each watched
 * directory's device). `flushShared` answers false whenever the caller must flush its own files,
 * as before: no helper, a helper that died, a filesystem it does not share (only ext4, xfs, btrfs
 * and tmpfs, on Linux 5.8 or later), a paused or slow flush, or a failed one.
 *
 * Durability rules:
 * - Writeback errors reach syncfs only from the first watch of the filesystem on, so an attempt
 *   shares flushes only when its stage directory was watched before the attempt made anything
 *   (`watchedBefore`, asked before the attempt's directory is made), and only when the attempt's
 *   directory turned out to be on that very filesystem (`deviceOf`, checked after it is made).
 * - A flush covers a caller only if it began after the caller asked: callers join the flush
 *   queued behind the running one, never the running one (SharedRuns).
 * - A failed syncfs says something on the filesystem failed, not what: its callers, and every
 *   later one on that filesystem, flush their own files, whose fsyncs report their own errors.
 * - A syncfs writes whatever is dirty on the filesystem, other work's writes included: while a
 *   workload streams data onto it, every shared flush would wait for that stream. A flush's
 *   callers wait at most SLOW_FLUSH_MS for it before flushing their own files, and a flush slower
 *   than that pauses sharing for SLOW_FLUSH_PAUSE_MS, twice that after two slow ones in a row,
 *   and so on up to SLOW_FLUSH_PAUSE_MAX_MS; a prompt flush ends the doubling. So a one-off burst
 *   (a large directory removed) costs one short pause, and a steady stream of foreign writes soon
 *   keeps commits on their own fsyncs. On bench:dispatch, 40 of 2,126 shared flushes took over
 *   100 ms (p50 4 ms, p90 24, p99 126). (Measured, not guessed from /proc/meminfo: its Dirty
 *   counts every filesystem, and on the benchmark host it stood at 100 MB with nothing of Locus's
 *   running.)
 * - The helper holds a descriptor on each filesystem it watches, which would keep it from being
 *   unmounted: after IDLE_RETIRE_MS without a request the helper is stopped (a later attempt
 *   starts it again and watches afresh).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { SharedRuns } from '../core/shared-runs.js';
import { withTimeout } from '../storage/concurrency.js';
import { nativeHelperPath } from './isolation/native-path.js';

/** A caller waits at most this long for a shared flush; one that took longer waited for more than the commits that asked for it. */
export const SLOW_FLUSH_MS = 200;
/** After a slow shared flush callers flush their own files for this long, doubled for each slow one in a row. */
export const SLOW_FLUSH_PAUSE_MS = 1000;
/** The longest pause. */
export const SLOW_FLUSH_PAUSE_MAX_MS = 30_000;
/** The helper is stopped after this long without a request (its descriptors would keep filesystems mounted). */
export const IDLE_RETIRE_MS = 30_000;

/** Stage directories remembered as watched at most (a busy executor sees one per job). */
export const MAX_WATCHED_DIRS = 4096;

/** The helper's answer: 0 or an errno, and for a watch the filesystem's device number. */
interface Reply {
  readonly errno: number;
  readonly device?: string;
}

/** Thrown inside the flusher when the helper cannot answer (not a filesystem error): callers fall back. */
class HelperGone extends Error {}

/** Piped stdio of a child, which can be referenced or not like any socket. */
type Refable = { ref?: () => void; unref?: () => void };

export class FilesystemFlusher {
  private helper: ChildProcessWithoutNullStreams | undefined;
  /** The helper died or spoke nonsense: no sharing for this process's life. */
  private broken = false;
  private seq = 0;
  private readonly waiting = new Map<number, (reply: Reply | HelperGone) => void>();
  /** Stage directories whose filesystem the current helper watches (acknowledged): their filesystem's device. */
  private readonly watched = new Map<string, string>();
  private readonly watching = new Map<string, Promise<boolean>>();
  /** Devices whose shared flush failed once: never shared again. */
  private readonly failedDevices = new Set<string>();
  private readonly runs = new SharedRuns();
  /** Until when callers flush their own files (after a slow shared flush). */
  private pausedUntil = -Infinity;
  /** Slow shared flushes in a row. */
  private slowInARow = 0;
  private lastRequestAt = 0;
  private retireTimer: NodeJS.Timeout | undefined;

  private readonly now: () => number;
  private readonly idleRetireMs: number;
  private readonly maxWatchedDirs: number;

  constructor(private readonly helperPath: string | undefined, o: { readonly now?: () => number; readonly idleRetireMs?: number; readonly maxWatchedDirs?: number } = {}) {
    this.now = o.now ?? (() => performance.now());
    this.idleRetireMs = o.idleRetireMs ?? IDLE_RETIRE_MS;
    this.maxWatchedDirs = o.maxWatchedDirs ?? MAX_WATCHED_DIRS;
  }

  /** Whether `dir` was watched (acknowledged) before now: an attempt preparing in it now may share flushes. */
  watchedBefore(dir: string): boolean {
    return this.deviceOf(dir) !== undefined;
  }

  /** The device number of `dir`'s watched filesystem (as `fs.Stats.dev` gives it, in decimal), undefined when not shared. */
  deviceOf(dir: string): string | undefined {
    const device = this.broken ? undefined : this.watched.get(dir);
    return device === undefined || this.failedDevices.has(device) ? undefined : device;
  }

  /** Watch `dir`'s filesystem (once per directory); resolves whether it is watched. Never rejects. */
  watch(dir: string): Promise<boolean> {
    if (this.helperPath === undefined || this.broken || dir.includes('\n')) return Promise.resolve(false);
    if (this.watched.has(dir)) return Promise.resolve(true);
    let w = this.watching.get(dir);
    if (w === undefined) {
      // A helper retired meanwhile fails its waiting requests, so an answer is the live helper's.
      w = this.request('W', dir).then((r) => {
        this.watching.delete(dir);
        if (r.errno !== 0 || r.device === undefined) return false;
        // A long-lived executor sees a stage directory per job: forget them all now and then (each
        // is watched again by its next attempt, whose commit meanwhile flushes its own files).
        if (this.watched.size >= this.maxWatchedDirs) this.watched.clear();
        this.watched.set(dir, r.device);
        return true;
      }, () => {
        this.watching.delete(dir);
        return false;
      });
      this.watching.set(dir, w);
    }
    return w;
  }

  /**
   * Flush `dir`'s filesystem, shared with every caller asking meanwhile. True once flushed; false
   * when the caller must flush its own files (see the header). Never rejects.
   */
  async flushShared(dir: string): Promise<boolean> {
    const device = this.deviceOf(dir);
    if (device === undefined || this.now() < this.pausedUntil) return false;
    try {
      // One flush per filesystem, whichever of its directories asked: a stage's commits and every
      // other stage's on the same filesystem share it.
      await this.runs.run(device, async () => {
        const began = this.now();
        const answer = this.request('S', device);
        let errno: number;
        try {
          ({ errno } = await withTimeout('syncfs', SLOW_FLUSH_MS, answer));
        } catch (err) {
          // Not answered in time: its callers flush their own files, and so do callers for a while.
          answer.catch(() => undefined);
          if (!(err instanceof HelperGone)) this.pauseFor(++this.slowInARow);
          throw err;
        }
        if (errno !== 0) {
          this.failedDevices.add(device);
          throw new HelperGone(`syncfs failed (errno ${errno})`);
        }
        if (this.now() - began <= SLOW_FLUSH_MS) this.slowInARow = 0;
        else this.pauseFor(++this.slowInARow);
      });
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.broken = true;
    this.retire();
  }

  private pauseFor(slowInARow: number): void {
    const until = this.now() + Math.min(SLOW_FLUSH_PAUSE_MS * 2 ** (slowInARow - 1), SLOW_FLUSH_PAUSE_MAX_MS);
    if (until > this.pausedUntil) this.pausedUntil = until;
  }

  private request(op: 'W' | 'S', arg: string): Promise<Reply> {
    const h = this.started();
    if (h === undefined) return Promise.reject(new HelperGone('no flush helper'));
    const id = ++this.seq;
    this.lastRequestAt = Date.now();
    // While an answer is awaited the pipe keeps the process alive; idle, it does not.
    if (this.waiting.size === 0) (h.stdout as unknown as Refable).ref?.();
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, (r) => (r instanceof HelperGone ? reject(r) : resolve(r)));
      h.stdin.write(`${op} ${id} ${arg}\n`);
    });
  }

  private started(): ChildProcessWithoutNullStreams | undefined {
    if (this.broken || this.helperPath === undefined) return undefined;
    if (this.helper !== undefined) return this.helper;
    const h = spawn(this.helperPath, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.helper = h;
    h.on('error', () => this.fail(h));
    h.on('exit', () => this.fail(h));
    h.stdin.on('error', () => this.fail(h));
    h.stderr.resume();
    // The helper serves the executor only: neither it nor its pipes keep an idle executor alive.
    h.unref();
    for (const s of [h.stdin, h.stdout, h.stderr]) (s as unknown as Refable).unref?.();
    createInterface({ input: h.stdout }).on('line', (line) => {
      const m = /^(\d+) (\d+)(?: (\d+))?$/.exec(line);
      const done = m === null ? undefined : this.waiting.get(Number(m[1]));
      if (m === null || done === undefined) {
        this.fail(h);
        return;
      }
      this.waiting.delete(Number(m[1]));
      if (this.waiting.size === 0) (h.stdout as unknown as Refable).unref?.();
      done({ errno: Number(m[2]), ...(m[3] === undefined ? {} : { device: m[3] }) });
    });
    this.retireTimer = setInterval(() => {
      if (this.waiting.size === 0 && Date.now() - this.lastRequestAt >= this.idleRetireMs) this.retire();
    }, this.idleRetireMs / 3);
    this.retireTimer.unref();
    return h;
  }

  /** Stop the helper and forget its watches; a later request starts a new one (unless broken). */
  private retire(): void {
    if (this.retireTimer !== undefined) clearInterval(this.retireTimer);
    this.retireTimer = undefined;
    this.watched.clear();
    const h = this.helper;
    this.helper = undefined;
    if (h !== undefined && h.exitCode === null) h.kill('SIGKILL');
    this.failAll();
  }

  /** The helper `h` is gone or spoke nonsense: every waiting caller falls back, and so does every later one. */
  private fail(h: ChildProcessWithoutNullStreams): void {
    // A retired helper's exit is expected.
    if (h !== this.helper) return;
    this.broken = true;
    this.retire();
  }

  private failAll(): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const done of all) done(new HelperGone('the flush helper is gone'));
  }
}

/** Where the flush helper is: LOCUS_SYNCFS_PATH when set (empty turns it off), else dist/native/locus-syncfs. */
export function syncfsHelperPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return nativeHelperPath('locus-syncfs', 'LOCUS_SYNCFS_PATH', env);
}
