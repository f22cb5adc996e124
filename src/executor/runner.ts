/**
 * Runners: how one attempt's process is started and observed. The executor
 * prefers a nested container launched by its own agent (so the agent
 * accounts for and isolates it); where the agent cannot do that it runs the
 * workload itself through the isolation port, and says so.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join, isAbsolute } from 'node:path';
import { LocusError } from '../core/errors.js';
import { AgentClient, decodeWaitStatus } from '../mesos/agent.js';
import type { Logger } from '../obs/log.js';
import type { Container, ContainerExit, Isolator, TerminationReason } from './isolation/types.js';
import { resolveUser } from './isolation/host.js';
import { SandboxRetention } from './sandbox-retention.js';

/** What a runner launches. */
export interface RunSpec {
  /** Container id: filesystem-safe, no `.` or `/` (Mesos reserves them). */
  readonly containerId: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly resources: { readonly cpus: number; readonly memMiB: number; readonly diskMiB: number };
  readonly volumes: readonly { readonly hostPath: string; readonly containerPath: string; readonly readOnly: boolean }[];
  /** The user (name or numeric uid) to run as, e.g. the attempt's tenant's uid; undefined = the launcher's default. */
  readonly user?: string;
}

/** How a run ended. */
export interface RunExit {
  readonly exitCode: number | null;
  readonly signal: string | number | null;
  readonly reason: TerminationReason;
  readonly message: string;
  readonly usage?: { readonly cpuTimeSeconds: number; readonly memPeakBytes: number };
}

/** A running attempt process. */
export interface RunHandle {
  readonly sandboxDir: string;
  wait(): Promise<RunExit>;
  /** Stop the whole tree: SIGTERM, then SIGKILL after graceMs. */
  kill(graceMs: number): Promise<void>;
  /**
   * The attempt is done with this container and its sandbox (its result is built, or it was a
   * held start stopped unused): the runner may remove the sandbox once newer ones are done
   * (sandbox-retention.ts). Idempotent.
   */
  release?(): void;
}

/** Starts attempt processes. */
export interface AttemptRunner {
  /** `agent`, `isolator:<linux|process>`, or `noop` (benchmarks). */
  readonly kind: string;
  /**
   * Its containers can start held at a start gate (start-gate.ts): a host path it is given as a
   * read-only volume is the same file inside the container, and `/bin/sh` is there.
   */
  readonly heldStarts?: boolean;
  launch(spec: RunSpec): Promise<RunHandle>;
  close(): Promise<void>;
}

/** A container id for an attempt delivery: readable, unique, without `.` or `/`. */
export function containerIdFor(attemptId: string, delivery: string): string {
  const readable = attemptId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  const digest = createHash('sha1').update(`${attemptId}\0${delivery}`).digest('hex').slice(0, 10);
  return `${readable}-${digest}`;
}

function fromContainerExit(e: ContainerExit): RunExit {
  return { exitCode: e.exitCode, signal: e.signal, reason: e.reason, message: e.message, usage: { cpuTimeSeconds: e.usage.cpuTimeSeconds, memPeakBytes: e.usage.memPeakBytes } };
}

/** Runs attempts through the isolation port, in sandboxes under `sandboxRoot`. */
export class IsolatorRunner implements AttemptRunner {
  readonly kind: string;
  // Its isolators mount volumes at the paths given (linux), or run on the host's filesystem (process).
  readonly heldStarts = true;

  /** Done attempts' sandboxes beyond the kept ones are removed (sandbox-retention.ts; keep 0: all kept). */
  private readonly retention: SandboxRetention;

  constructor(private readonly isolator: Isolator, private readonly sandboxRoot: string, private readonly parentId?: string, keptSandboxes = 0, log?: Pick<Logger, 'warn'>) {
    this.kind = `isolator:${isolator.report.kind}`;
    this.retention = new SandboxRetention(keptSandboxes, (_id, dir) => rm(dir, { recursive: true, force: true }), log);
  }

  async launch(spec: RunSpec): Promise<RunHandle> {
    const sandboxDir = join(this.sandboxRoot, 'containers', spec.containerId);
    return await this.retention.launching(spec.containerId, sandboxDir, () => this.launchIn(spec, sandboxDir));
  }

  private async launchIn(spec: RunSpec, sandboxDir: string): Promise<RunHandle> {
    await mkdir(sandboxDir, { recursive: true });
    // Tasks pass through to their own sandbox; the others' names (their attempts) are not theirs
    // to list. A directory someone else made (EPERM) is theirs to keep as it is.
    await chmod(join(this.sandboxRoot, 'containers'), 0o711).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPERM') throw err;
    });
    const c: Container = await this.isolator.launch({
      id: spec.containerId,
      ...(this.parentId !== undefined ? { parentId: this.parentId } : {}),
      argv: spec.argv,
      env: spec.env,
      sandboxDir,
      limits: { cpus: spec.resources.cpus, memMiB: spec.resources.memMiB, diskMiB: spec.resources.diskMiB, pids: 0 },
      // Relative host paths are directories of this executor's sandbox (its persistent volumes).
      // (Relative host paths are persistent volumes: written by the attempt's user, who may not be
      // the executor's, e.g. root on a genuine agent.)
      volumes: spec.volumes.map((v) => (isAbsolute(v.hostPath) ? v : { ...v, hostPath: join(this.sandboxRoot, v.hostPath), ownByWorkload: !v.readOnly })),
      network: 'host',
      ...(spec.user !== undefined ? { user: spec.user } : {}),
      stdoutPath: join(sandboxDir, 'stdout'),
      stderrPath: join(sandboxDir, 'stderr'),
    });
    let released = false;
    return {
      sandboxDir,
      wait: async () => fromContainerExit(await c.wait()),
      kill: (graceMs) => c.kill(graceMs),
      // Its directory is removed by this process: only once its process tree has ended.
      release: () => {
        if (released || this.retention.keep === 0) return;
        released = true;
        const note = (): void => this.retention.noteDone(spec.containerId, sandboxDir);
        void c.wait().then(note, note);
      },
    };
  }

  close(): Promise<void> {
    return this.isolator.close();
  }
}

const SIGNAL_NAMES: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 15: 'SIGTERM' };

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs attempts as nested containers of the executor's own container, through its agent. */
export class AgentRunner implements AttemptRunner {
  readonly kind = 'agent';

  /**
   * `anyUser`: the agent runs containers as a bare numeric uid (the local agent does). A genuine
   * agent looks the user up in its /etc/passwd and fails the launch without an entry, so there a
   * user is named only when it has one (operators create the tenant uids' entries).
   */
  constructor(
    private readonly agent: AgentClient,
    private readonly parentId: string,
    private readonly parentSandbox: string,
    private readonly anyUser = false,
    /**
     * Held starts (start-gate.ts) go through this agent: Locus's own local agent, which mounts a
     * nested container's host path volumes where it is told, files as well as directories. A
     * genuine agent's nested volumes depend on its isolators, so there they are not used.
     */
    readonly heldStarts = false,
    /** Ended attempts' nested containers beyond this many are removed through the agent (REMOVE_CONTAINER); 0 keeps all. */
    keptSandboxes = 0,
    log?: Pick<Logger, 'warn'>,
  ) {
    this.retention = new SandboxRetention(keptSandboxes, (id) => this.agent.removeNested(id, this.parentId), log);
  }

  private readonly retention: SandboxRetention;

  private userFor(user: string | undefined): string | undefined {
    if (user === undefined || this.anyUser) return user;
    try {
      return resolveUser(user).name !== undefined ? user : undefined;
    } catch {
      return undefined;
    }
  }

  async launch(spec: RunSpec): Promise<RunHandle> {
    // Mesos puts a nested container's sandbox at `containers/<id>` of its parent's. A launch the
    // agent refused may still have made it (REMOVE_CONTAINER of an unknown container answers 200).
    const sandboxDir = join(this.parentSandbox, 'containers', spec.containerId);
    await this.retention.launching(spec.containerId, sandboxDir, () => this.agent.launchNested({
      containerId: spec.containerId,
      parentId: this.parentId,
      argv: spec.argv,
      env: spec.env,
      resources: spec.resources,
      ...(this.userFor(spec.user) !== undefined ? { user: this.userFor(spec.user) } : {}),
      // A relative host path is a directory of the executor's sandbox (a persistent volume mounted
      // there): only the agent knows where that is on the host, so it is named as a parent sandbox path.
      volumes: spec.volumes.map((v) => (isAbsolute(v.hostPath)
        ? { host_path: v.hostPath, container_path: v.containerPath, mode: v.readOnly ? 'RO' as const : 'RW' as const }
        : { container_path: v.containerPath, mode: v.readOnly ? 'RO' as const : 'RW' as const, source: { type: 'SANDBOX_PATH' as const, sandbox_path: { type: 'PARENT' as const, path: v.hostPath } } })),
    }));
    let waited: Promise<RunExit> | undefined;
    const wait = (): Promise<RunExit> => {
      waited ??= this.agent.waitNested(spec.containerId, this.parentId).then((w) => {
        const limited = w.reason === 'REASON_CONTAINER_LIMITATION_MEMORY' ? 'OOM' : w.reason === 'REASON_CONTAINER_LIMITATION_DISK' ? 'DISK_LIMIT' : w.reason === 'REASON_CONTAINER_LAUNCH_FAILED' ? 'LAUNCH_FAILED' : undefined;
        const decoded = w.exitStatus === undefined ? { exitCode: null, signal: null } : decodeWaitStatus(w.exitStatus);
        const signal = decoded.signal === null ? null : (SIGNAL_NAMES[decoded.signal] ?? decoded.signal);
        return {
          exitCode: decoded.exitCode,
          signal,
          reason: limited ?? (signal !== null ? 'KILLED' : 'EXITED'),
          message: w.message ?? (decoded.exitCode !== null ? `exited with status ${decoded.exitCode}` : `killed by ${String(signal)}`),
        };
      });
      return waited;
    };
    return {
      sandboxDir,
      wait,
      kill: async (graceMs) => {
        const ended = wait().then(() => true, () => true);
        if (graceMs > 0) {
          await this.agent.killNested(spec.containerId, this.parentId, 15).catch(() => false);
          const done = await Promise.race([ended, sleep(graceMs).then(() => false)]);
          if (done) return;
        }
        await this.agent.killNested(spec.containerId, this.parentId, 9).catch(() => false);
        await ended;
      },
      // The agent refuses to remove a container that still runs: noted at once.
      release: () => this.retention.noteDone(spec.containerId, sandboxDir),
    };
  }

  async close(): Promise<void> {
    // Nested containers belong to the agent; the executor's end ends them.
  }
}

/**
 * Prefers the agent; the first answer that says the agent cannot launch
 * nested containers (no endpoint, UNSUPPORTED) switches to the fallback for
 * good and logs it once.
 */
export class PreferAgentRunner implements AttemptRunner {
  private useFallback = false;

  constructor(private readonly primary: AgentRunner, private readonly fallback: () => Promise<AttemptRunner>, private readonly logger: Logger) {}

  private fallbackRunner: Promise<AttemptRunner> | undefined;

  get kind(): string {
    return this.useFallback ? 'agent-unsupported' : this.primary.kind;
  }

  /** The fallback (an IsolatorRunner) holds starts too. */
  get heldStarts(): boolean {
    return this.useFallback || this.primary.heldStarts;
  }

  async launch(spec: RunSpec): Promise<RunHandle> {
    if (!this.useFallback) {
      try {
        return await this.primary.launch(spec);
      } catch (err) {
        // An agent without nested containers, or one that refuses this executor's credentials
        // (401/403 from `--authenticate_http_executors`), is a property of the agent: the attempt
        // must not fail for it, it runs in the executor's own container instead.
        if (!(err instanceof LocusError) || (err.code !== 'UNSUPPORTED' && err.code !== 'UNAUTHENTICATED' && err.code !== 'FORBIDDEN')) throw err;
        this.useFallback = true;
        this.logger.warn({ err: err.message }, 'the agent will not launch nested containers for this executor: running attempts as isolated children of the executor instead');
      }
    }
    this.fallbackRunner ??= this.fallback();
    return (await this.fallbackRunner).launch(spec);
  }

  async close(): Promise<void> {
    if (this.fallbackRunner) await (await this.fallbackRunner).close();
  }
}

/** A runner that does nothing and succeeds at once: benchmarks of the dispatch path only. */
export class NoopRunner implements AttemptRunner {
  readonly kind = 'noop';

  constructor(private readonly sandboxRoot: string) {}

  async launch(spec: RunSpec): Promise<RunHandle> {
    const sandboxDir = join(this.sandboxRoot, 'containers', spec.containerId);
    return {
      sandboxDir,
      wait: () => Promise.resolve({ exitCode: 0, signal: null, reason: 'EXITED', message: 'no-op' }),
      kill: () => Promise.resolve(),
    };
  }

  async close(): Promise<void> {}
}

/**
 * Reports attempt sandboxes as the agent's host paths. Inside a container image the executor's
 * sandbox is `/mnt/mesos/sandbox` (MESOS_SANDBOX) while the agent serves it, through
 * `/files/read`, under its host path (MESOS_DIRECTORY): a path reported as seen inside would 404.
 */
export class HostPathRunner implements AttemptRunner {
  constructor(private readonly inner: AttemptRunner, private readonly inside: string, private readonly onHost: string) {}

  get kind(): string {
    return this.inner.kind;
  }

  /** The host path of a path inside the executor's container (unchanged outside its sandbox). */
  hostPath(p: string): string {
    const base = this.inside.replace(/\/+$/, '');
    if (p !== base && !p.startsWith(`${base}/`)) return p;
    return `${this.onHost.replace(/\/+$/, '')}${p.slice(base.length)}`;
  }

  async launch(spec: RunSpec): Promise<RunHandle> {
    const h = await this.inner.launch(spec);
    return { sandboxDir: this.hostPath(h.sandboxDir), wait: () => h.wait(), kill: (graceMs) => h.kill(graceMs), release: () => h.release?.() };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
