/**
 * Held starts: an attempt that is set up while every slot is busy has its
 * container started at once, held at a start gate, and released when its slot
 * frees.
 *
 * Why: a container's start (namespaces, mounts, cgroup, the agent's and the
 * launcher's work) takes 15-40 ms when the tasks of a wave end together and
 * their successors all start at once. A held container has paid that while
 * the previous task ran; its release is one write to a pipe. On the short-task
 * benchmark (100 × `sleep 0.2` on 19 slots, warm) the gap between a
 * container's end and the next one's workload fell from 23 to 5 ms on average
 * (bench/results/short-2026-12-06-s7.notes.md). It costs CPU, though (the
 * shell, a FIFO and its mount, held containers handed back unused), which a
 * CPU-bound host pays in time: by default (`executor-held-starts: auto`) an
 * executor holds a start only while its host's CPUs idle enough (host-cpu.ts).
 *
 * The gate is a FIFO in the executor's scratch directory, mounted read-only
 * into the container at the same path. The container's first process is a
 * shell that reads one line from it and then execs the workload, so the
 * workload's process, arguments and environment are the ones a direct start
 * gives it. The executor holds the FIFO open for writing from before the
 * launch until the container ends:
 * - the shell's open never blocks, and its read waits for the line;
 * - `go` runs the workload;
 * - if the executor dies first, the read sees end of file and the shell exits
 *   with GATE_CLOSED_EXIT without running anything.
 */
import { execFile } from 'node:child_process';
import { constants, promises as fsp, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_PATH, findExecutable } from './isolation/host.js';
import type { AttemptRunner, RunHandle, RunSpec } from './runner.js';

const execFileP = promisify(execFile);

/** The shell's exit status when the gate closed without a `go`: the workload never ran. */
export const GATE_CLOSED_EXIT = 125;

/** The first process of a held container: `$0` is the gate, `$@` the workload's argv. */
const GATE_SCRIPT = `IFS= read -r g < "$0" && [ "$g" = go ] && exec "$@"; exit ${GATE_CLOSED_EXIT}`;

/** One container's start gate. */
export class StartGate {
  private opened = false;
  private closed = false;

  private constructor(
    /** The FIFO's path, on the host and inside the container alike. */
    readonly path: string,
    private readonly fd: fsp.FileHandle,
  ) {}

  /**
   * Make the FIFO at `path` and hold it open. `owner`: the workload's uid when this process may
   * give files away (root); the FIFO is then its alone (0400), else readable by all (0444: the
   * workload may run as another user, and it is mounted into its container only).
   */
  static async create(path: string, owner: number | undefined): Promise<StartGate> {
    await fifoStockFor(dirname(path)).take(path);
    let fd: fsp.FileHandle | undefined;
    try {
      // Read and write: an open of a FIFO for writing alone would wait for a reader.
      fd = await fsp.open(path, constants.O_RDWR);
      if (owner !== undefined) await fd.chown(owner, -1);
      await fd.chmod(owner !== undefined ? 0o400 : 0o444);
      return new StartGate(path, fd);
    } catch (err) {
      await fd?.close().catch(() => undefined);
      await fsp.rm(path, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** The container's argv: the gate's shell, then the workload's own. */
  wrap(argv: readonly string[]): string[] {
    return ['/bin/sh', '-c', GATE_SCRIPT, this.path, ...argv];
  }

  /** The mount that shows the gate inside the container. */
  get volume(): { readonly hostPath: string; readonly containerPath: string; readonly readOnly: true } {
    return { hostPath: this.path, containerPath: this.path, readOnly: true };
  }

  /**
   * Release the workload. The write is synchronous: a FIFO held open for reading and writing takes
   * three bytes at once, where a write through libuv's thread pool queued behind the fsyncs of
   * the commits that end a wave, and the released slot stood idle meanwhile.
   */
  async open(): Promise<void> {
    if (this.opened || this.closed) return;
    this.opened = true;
    writeSync(this.fd.fd, 'go\n');
  }

  /** The container ended (or never will start): drop the FIFO. Without an open first, the workload never runs. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fd.close().catch(() => undefined);
    await fsp.rm(this.path, { force: true }).catch(() => undefined);
  }
}

/** How many FIFOs one `mkfifo` makes for the stock. */
export const FIFO_BATCH = 32;

/**
 * FIFOs made ahead, a batch at a time, in a private directory beside the gates (`.gate-stock`,
 * 0700, this process's, checked): Node cannot make a FIFO, and a `mkfifo` run per attempt was a
 * fork of the executor and an exec, about 1.3 ms of CPU an attempt on a 2-core VM. A gate takes
 * one by a hard link and an unlink (same directory tree, so same filesystem); the stock is filled
 * again in the background when it runs half empty. Where the stock cannot work (no hard links,
 * a directory that is not this process's alone) it stops, and each gate gets its own `mkfifo`.
 */
export class FifoStock {
  private readonly ready: string[] = [];
  private filling: Promise<void> | undefined;
  /** Set when the stock cannot work here, or was cleared: each gate gets its own mkfifo. */
  private off = false;
  /** mkfifo runs for the stock so far (tests). */
  fills = 0;

  constructor(private readonly dir: string, private readonly batch = FIFO_BATCH) {}

  /** Whether gates are still taken from the stock (tests). */
  get working(): boolean {
    return !this.off;
  }

  /** Put a FIFO (mode 0600) at `path`: one from the stock, or one made there when the stock cannot give one. */
  async take(path: string): Promise<void> {
    if (!this.off && this.ready.length === 0) await this.fill();
    const from = this.off ? undefined : this.ready.pop();
    if (!this.off && this.ready.length <= this.batch / 2) void this.fill();
    if (from !== undefined) {
      try {
        // A link, not a rename: a path that is taken is refused (EEXIST), as mkfifo refuses it.
        await fsp.link(from, path);
        await fsp.unlink(from).catch(() => undefined);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          this.ready.push(from);
          throw err;
        }
        // No hard links here, or the stock removed under us: make each gate directly from now on.
        await fsp.unlink(from).catch(() => undefined);
        this.off = true;
      }
    }
    await execFileP('mkfifo', ['-m', '0600', path]);
  }

  /** Remove the FIFOs not taken and stop (the executor ends): a later take makes its own FIFO. */
  async clear(): Promise<void> {
    this.off = true;
    await this.filling;
    this.ready.length = 0;
    await fsp.rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  private fill(): Promise<void> {
    this.filling ??= (async () => {
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
      // Its own, private directory, or no stock: FIFOs another user could swap would be gates
      // that user controls.
      const st = await fsp.lstat(this.dir);
      if (!st.isDirectory() || st.uid !== process.geteuid?.() || (st.mode & 0o777) !== 0o700) throw new Error(`${this.dir} is not this process's private directory`);
      const names = Array.from({ length: this.batch }, () => join(this.dir, randomBytes(12).toString('hex')));
      this.fills++;
      await execFileP('mkfifo', ['-m', '0600', ...names]);
      if (this.off) return;
      this.ready.push(...names);
    })().catch(() => {
      this.off = true;
    }).finally(() => (this.filling = undefined));
    return this.filling;
  }
}

const stocks = new Map<string, FifoStock>();

/** The FIFO stock of a gate directory. */
export function fifoStockFor(gateDir: string): FifoStock {
  let s = stocks.get(gateDir);
  if (s === undefined) {
    s = new FifoStock(join(gateDir, '.gate-stock'));
    stocks.set(gateDir, s);
  }
  return s;
}

/**
 * Orders an executor's container starts: starts for attempts with a slot go first, and held
 * starts wait until none of those is under way. A wave of attempts taken together (an idle
 * executor's first batch, a batch as wide as the slots and the prefetch) would otherwise have
 * the held starts compete with the ones that run at once, and the wave start later.
 */
export class StartOrder {
  private direct = 0;
  private idle: (() => void)[] = [];

  /** Run a start that has its slot. */
  async now<T>(start: () => Promise<T>): Promise<T> {
    this.direct++;
    try {
      return await start();
    } finally {
      this.direct--;
      if (this.direct === 0) for (const wake of this.idle.splice(0)) wake();
    }
  }

  /** Resolves when no start that has its slot is under way. */
  whenIdle(): Promise<void> {
    if (this.direct === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }
}

/** A container started held (startHeld). */
export interface HeldContainer {
  readonly handle: RunHandle;
  /** It ended before its release (a late launch failure, its shell killed): not the workload's doing. */
  readonly ended: boolean;
  /** Run its workload (on failure it is stopped, and the error thrown). */
  release(): Promise<void>;
  /** Kill it unrun, wait for its end, and drop its gate. */
  stop(): Promise<void>;
  /** Drop its gate, once it has ended. */
  close(): Promise<void>;
}

/**
 * Start an attempt's container held while it waits for its slot. Undefined, and the container
 * starts when its slot comes, as without held starts:
 * - when the wait for the slot (`slot`) is over first: there is nothing left to save;
 * - when its command cannot be found on the container's PATH (as the isolators look): held, a
 *   shell would report it as exit 127, where a direct start reports a failed launch;
 * - when the held start fails (`warn` is told): held starts are a saving, never a reason to fail.
 * `gateDir` is made ready by `prepare` (the executor's scratch root); `owner` is the workload's
 * uid when this process may give the gate to it.
 */
export async function startHeld(o: {
  readonly runner: AttemptRunner;
  readonly order: StartOrder;
  readonly spec: RunSpec;
  readonly slot: Promise<unknown>;
  readonly gateDir: string;
  readonly prepare: () => Promise<void>;
  readonly owner: number | undefined;
  readonly warn: (err: Error) => void;
}): Promise<HeldContainer | undefined> {
  if (findExecutable(o.spec.argv[0] ?? '', o.spec.env['PATH'] ?? DEFAULT_PATH) === undefined) return undefined;
  let waited = false;
  void o.slot.then(() => (waited = true));
  // Starts that have their slot go first (StartOrder).
  await Promise.race([o.order.whenIdle(), o.slot]);
  if (waited) return undefined;
  let gate: StartGate | undefined;
  try {
    await o.prepare();
    gate = await StartGate.create(join(o.gateDir, `${o.spec.containerId}.start`), o.owner);
    const handle = await o.runner.launch({ ...o.spec, argv: gate.wrap(o.spec.argv), volumes: [...o.spec.volumes, gate.volume] });
    return heldContainer(handle, gate);
  } catch (err) {
    o.warn(err as Error);
    await gate?.close();
    return undefined;
  }
}

function heldContainer(handle: RunHandle, gate: StartGate): HeldContainer {
  let ended = false;
  void handle.wait().then(() => (ended = true), () => (ended = true));
  const stop = async (): Promise<void> => {
    await handle.kill(0).catch(() => undefined);
    await handle.wait().catch(() => undefined);
    await gate.close();
    // Stopped unused: no attempt reads its sandbox any more.
    handle.release?.();
  };
  return {
    handle,
    get ended() {
      return ended;
    },
    async release() {
      try {
        await gate.open();
      } catch (err) {
        await stop();
        throw err;
      }
    },
    stop,
    close: () => gate.close(),
  };
}
