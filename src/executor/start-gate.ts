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
 * (bench/results/short-2026-12-06-s7.notes.md). It costs CPU, though (a mkfifo
 * per attempt, the shell, held containers handed back unused): about 6 ms a task,
 * which a CPU-bound cluster pays in time, so the framework turns it on only when
 * asked (`executor-held-starts`).
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
import { constants, promises as fsp } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_PATH } from './isolation/host.js';

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
    await execFileP('mkfifo', ['-m', '0600', path]);
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

  /** Release the workload. */
  async open(): Promise<void> {
    if (this.opened || this.closed) return;
    this.opened = true;
    await this.fd.write('go\n');
  }

  /** The container ended (or never will start): drop the FIFO. Without an open first, the workload never runs. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fd.close().catch(() => undefined);
    await fsp.rm(this.path, { force: true }).catch(() => undefined);
  }
}

/**
 * Whether `argv[0]` is an executable file on this host, searched along the container's PATH as
 * the isolators do. A held start runs the workload from a shell, where a missing command is
 * exit 127; started directly, the agent reports it as a failed launch. So a command that
 * cannot be found is started directly, and keeps that report.
 */
export async function findable(argv0: string | undefined, pathVar: string | undefined): Promise<boolean> {
  if (argv0 === undefined || argv0 === '') return false;
  const candidates = argv0.includes('/')
    ? (isAbsolute(argv0) ? [argv0] : [])
    : (pathVar ?? DEFAULT_PATH).split(':').filter((d) => isAbsolute(d)).map((d) => join(d, argv0));
  for (const c of candidates) {
    try {
      const st = await fsp.stat(c);
      if (st.isFile() && (st.mode & 0o111) !== 0) return true;
    } catch {
      // Not there: the next directory.
    }
  }
  return false;
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
