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
 * filesystem and flushes on request. Where the helper is missing, fails or dies, and for any
 * filesystem not known to be local (a network or FUSE filesystem may not implement syncfs at all),
 * callers flush file by file as before: `flushShared` answers false and they fall back.
 * The flush is one per filesystem (the helper names each watched directory's device).
 *
 * Durability rules:
 * - A filesystem's writeback errors reach syncfs only from the moment its descriptor was opened
 *   (the watch), so an attempt shares flushes only when its stage directory was watched before
 *   the attempt made anything in it (`watchedBefore`, asked before the attempt's directory is made).
 * - A flush covers a caller only if it began after the caller asked: callers join the flush
 *   queued behind the running one, never the running one (SharedRuns).
 * - After one failed syncfs the helper refuses that filesystem, so no later flush can claim what
 *   the failed one did not; callers then get the error, as they would have from their own fsync.
 * - A syncfs writes whatever is dirty on the filesystem, other work's writes included: while a
 *   workload streams data onto it, every shared flush would wait for that stream. A shared flush
 *   slower than SLOW_FLUSH_MS sends callers back to their own fsyncs for SLOW_FLUSH_PAUSE_MS,
 *   twice that after two slow ones in a row, and so on up to SLOW_FLUSH_PAUSE_MAX_MS; a prompt
 *   flush ends the doubling. So a one-off burst (a large directory removed) costs one short
 *   pause, and a steady stream of foreign writes soon keeps commits on their own fsyncs. On
 *   bench:dispatch, 40 of 2,126 shared flushes took over 100 ms (p50 4 ms, p90 24, p99 126).
 *   (Measured, not guessed from /proc/meminfo: its Dirty counts every filesystem, and on the
 *   benchmark host it stood at 100 MB with nothing of Locus's running.)
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { constants as os } from 'node:os';
import { createInterface } from 'node:readline';
import { nativeHelperPath } from './isolation/native-path.js';

/** Runs of one operation per key, shared: a caller joins the run queued behind the running one. */
export class SharedRuns {
  private readonly runs = new Map<string, { current?: Promise<void>; next?: Promise<void> }>();

  /**
   * Run `op(key)` for this caller, or join a run that has not begun yet. At most two runs per key
   * are outstanding however many callers ask; each caller is covered by a run that began after
   * it asked.
   */
  run(key: string, op: (key: string) => Promise<void>): Promise<void> {
    let s = this.runs.get(key);
    if (s === undefined) {
      s = {};
      this.runs.set(key, s);
    }
    if (s.next !== undefined) return s.next;
    const st = s;
    const start = (): Promise<void> => {
      const p: Promise<void> = op(key).finally(() => {
        if (st.current !== p) return;
        st.current = undefined;
        if (st.next === undefined) this.runs.delete(key);
      });
      st.current = p;
      return p;
    };
    if (st.current === undefined) return start();
    st.next = st.current.catch(() => undefined).then(() => {
      st.next = undefined;
      return start();
    });
    return st.next;
  }
}

/** A shared flush that took longer than this waited for more than the commits that asked for it. */
export const SLOW_FLUSH_MS = 200;
/** After a slow shared flush callers flush their own files for this long, doubled for each slow one in a row. */
export const SLOW_FLUSH_PAUSE_MS = 1000;
/** The longest pause. */
export const SLOW_FLUSH_PAUSE_MAX_MS = 30_000;

/** A failed flush, with the errno the helper reported (as an fsync's error would carry). */
function flushError(errno: number, path: string): NodeJS.ErrnoException {
  const code = Object.entries(os.errno).find(([, n]) => n === errno)?.[0] ?? `ERRNO_${errno}`;
  return Object.assign(new Error(`${code}: syncfs failed, '${path}'`), { errno, code, syscall: 'syncfs', path });
}

/** The helper's answer: 0 or an errno, and for a watch the filesystem's device number. */
interface Reply {
  readonly errno: number;
  readonly device?: string;
}

/** Thrown inside the flusher when the helper cannot answer (not a filesystem error): callers fall back. */
class HelperGone extends Error {}

export class FilesystemFlusher {
  private helper: ChildProcessWithoutNullStreams | undefined;
  private broken = false;
  private seq = 0;
  private readonly waiting = new Map<number, (reply: Reply | HelperGone) => void>();
  /** Stage directories whose filesystem the helper watches (acknowledged): their filesystem's device. */
  private readonly watched = new Map<string, string>();
  private readonly watching = new Map<string, Promise<boolean>>();
  private readonly runs = new SharedRuns();
  /** Until when callers flush their own files (after a slow shared flush). */
  private pausedUntil = -Infinity;
  /** Slow shared flushes in a row. */
  private slowInARow = 0;

  constructor(private readonly helperPath: string | undefined, private readonly now: () => number = () => performance.now()) {}

  /** Whether `dir` was watched (acknowledged) before now: an attempt preparing in it now may share flushes. */
  watchedBefore(dir: string): boolean {
    return !this.broken && this.watched.has(dir);
  }

  /** Watch `dir`'s filesystem (once per directory); resolves whether it is watched. Never rejects. */
  watch(dir: string): Promise<boolean> {
    if (this.helperPath === undefined || this.broken || dir.includes('\n')) return Promise.resolve(false);
    if (this.watched.has(dir)) return Promise.resolve(true);
    let w = this.watching.get(dir);
    if (w === undefined) {
      w = this.request('W', dir).then((r) => {
        this.watching.delete(dir);
        if (r.errno !== 0 || r.device === undefined) return false;
        // A long-lived executor sees many stage directories: forget them all now and then (each
        // is watched again by its next attempt; its filesystem's descriptor stays in the helper).
        if (this.watched.size >= 4096) this.watched.clear();
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
   * Flush `dir`'s filesystem, shared with every caller asking meanwhile. True once flushed;
   * false when the caller must flush its own files (no helper, not watched, too much dirty);
   * rejects with the filesystem's error when the flush failed.
   */
  async flushShared(dir: string): Promise<boolean> {
    const device = this.broken ? undefined : this.watched.get(dir);
    if (device === undefined || this.now() < this.pausedUntil) return false;
    try {
      // One flush per filesystem, whichever of its directories asked: a stage's commits and every
      // other stage's on the same filesystem share it.
      await this.runs.run(device, async () => {
        const began = this.now();
        const { errno } = await this.request('S', dir);
        if (errno !== 0) throw flushError(errno, dir);
        const took = this.now() - began;
        if (took <= SLOW_FLUSH_MS) {
          this.slowInARow = 0;
          return;
        }
        this.slowInARow++;
        this.pausedUntil = this.now() + Math.min(SLOW_FLUSH_PAUSE_MS * 2 ** (this.slowInARow - 1), SLOW_FLUSH_PAUSE_MAX_MS);
      });
      return true;
    } catch (err) {
      if (err instanceof HelperGone) return false;
      throw err;
    }
  }

  close(): void {
    this.broken = true;
    const h = this.helper;
    this.helper = undefined;
    if (h !== undefined && h.exitCode === null) h.kill('SIGKILL');
    this.failAll();
  }

  private request(op: 'W' | 'S', path: string): Promise<Reply> {
    const h = this.started();
    if (h === undefined) return Promise.reject(new HelperGone('no flush helper'));
    const id = ++this.seq;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, (r) => (r instanceof HelperGone ? reject(r) : resolve(r)));
      h.stdin.write(`${op} ${id} ${path}\n`);
    });
  }

  private started(): ChildProcessWithoutNullStreams | undefined {
    if (this.broken || this.helperPath === undefined) return undefined;
    if (this.helper !== undefined) return this.helper;
    const h = spawn(this.helperPath, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.helper = h;
    h.on('error', () => this.fail());
    h.on('exit', () => this.fail());
    h.stdin.on('error', () => this.fail());
    h.stderr.resume();
    // The helper serves the executor only: neither it nor its pipes keep an idle executor alive.
    h.unref();
    for (const s of [h.stdin, h.stdout, h.stderr]) (s as unknown as { unref?: () => void }).unref?.();
    createInterface({ input: h.stdout }).on('line', (line) => {
      const m = /^(\d+) (\d+)(?: (\d+))?$/.exec(line);
      const done = m === null ? undefined : this.waiting.get(Number(m[1]));
      if (m === null || done === undefined) {
        this.fail();
        return;
      }
      this.waiting.delete(Number(m[1]));
      done({ errno: Number(m[2]), ...(m[3] === undefined ? {} : { device: m[3] }) });
    });
    return h;
  }

  /** The helper is gone or spoke nonsense: every waiting caller falls back, and so does every later one. */
  private fail(): void {
    this.broken = true;
    this.watched.clear();
    const h = this.helper;
    this.helper = undefined;
    if (h !== undefined && h.exitCode === null) h.kill('SIGKILL');
    this.failAll();
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
