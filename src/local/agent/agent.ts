/**
 * One local agent: it owns its checkpointed resources (reservations and
 * persistent volumes survive restarts), runs command tasks as containers
 * through the isolation port with the built-in command-executor behaviour
 * (TASK_STARTING → TASK_RUNNING → terminal, messages as Mesos words them),
 * and serves its own HTTP endpoints (operator API for nested containers,
 * /files). The master drives it in-process; status updates flow back
 * through `onStatus`.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, isAbsolute, join } from 'node:path';
import type { Logger } from '../../obs/log.js';
import type { Container, ContainerExit, Isolator, VolumeMount } from '../../executor/isolation/types.js';
import type { ExecutorInfo, FrameworkInfo, Resource, TaskInfo, TaskState, TaskStatus } from '../../mesos/types.js';
import { readCheckpoint, writeCheckpoint } from '../checkpoint.js';
import { add, allocationRole, reservationRole, scalar, subtract } from '../resources.js';
import { listen, type Listening, type TlsFiles } from '../http.js';
import { agentCheckpoint, agentDataDir, agentRoot, nestedSandboxDir, sandboxDir, volumeDir } from './paths.js';
import { userOf } from './run-as.js';
import { handleAgentRequest } from './http-api.js';
import { newUuid } from './status.js';
import { fetchUris } from './fetcher.js';
import { CustomExecutors, isCustomExecutor, type ExecutorSettings } from './executors.js';

export { newUuid, waitStatus } from './status.js';

/** Static description of an agent. */
export interface AgentSpec {
  readonly hostname: string;
  readonly rack: string;
  readonly resources: readonly Resource[];
  readonly attributes: Readonly<Record<string, string>>;
}

/** A task the agent remembers across restarts. */
export interface CheckpointedTask {
  readonly frameworkId: string;
  readonly framework: FrameworkInfo;
  readonly task: TaskInfo;
  readonly containerId: string;
}

interface AgentCheckpoint {
  readonly id: string;
  readonly port: number;
  readonly resources: readonly Resource[];
  readonly tasks: readonly CheckpointedTask[];
}

/** A live container on this agent. */
export interface RunningContainer {
  readonly containerId: string;
  readonly parentId: string | undefined;
  readonly frameworkId: string;
  readonly executorId: string;
  readonly taskId: string | undefined;
  readonly sandbox: string;
  readonly container: Container;
  readonly exit: Promise<ContainerExit>;
  killRequested: boolean;
  /**
   * Killed at once because its process dropped, or would have dropped, the SIGTERM (see
   * dropsSigterm): its end is reported as the SIGTERM a genuine agent's command executor would
   * have ended it with.
   */
  endedAsTerminated?: boolean;
}

/** What the agent reports to the master. */
export interface AgentHooks {
  onStatus(frameworkId: string, status: TaskStatus): void;
  /** An executor's MESSAGE call, for the framework (base64 data). */
  onExecutorMessage?(frameworkId: string, executorId: string, data: string): void;
}

/**
 * Whether a SIGTERM sent to this process now would be dropped: it is the init of its own pid
 * namespace (a task under bubblewrap's --as-pid-1 is) and has no handler for SIGTERM, and the
 * kernel delivers to a namespace's init only the signals it handles. Under a genuine agent a
 * command task is never that init (its command executor starts it as a child, in the container's
 * namespace or in none), so the same SIGTERM ends it by its default action; here it would be
 * ignored until the kill policy's SIGKILL. The agent ends such a process at once instead. (A
 * handler installed between this look and the kill is not waited for; a process that installs
 * one that late was starting, and ending is what a SIGTERM does to it.)
 */
function dropsSigterm(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return false;
  }
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '';
  const nspid = field('NSpid').split(/\s+/);
  if (nspid.length < 2 || nspid[nspid.length - 1] !== '1') return false;
  // Signal masks are hexadecimal; SIGTERM (15) is bit 14, in the last four digits.
  const sigterm = (mask: string): boolean => (Number.parseInt(mask.slice(-4) || '0', 16) & 0x4000) !== 0;
  return !sigterm(field('SigCgt')) && !sigterm(field('SigIgn'));
}

const SIGNAL_NAMES: Record<string, string> = { SIGTERM: 'Terminated', SIGKILL: 'Killed', SIGINT: 'Interrupt', SIGHUP: 'Hangup', SIGSEGV: 'Segmentation fault', SIGABRT: 'Aborted' };

/** One agent of the local cluster. */
export class LocalAgent {
  id = '';
  port = 0;
  running = false;
  total: Resource[] = [];
  private http: Listening | undefined;
  private readonly tasks = new Map<string, CheckpointedTask>();
  readonly containers = new Map<string, RunningContainer>();
  private stopping = false;
  /** Custom executors (ExecutorInfo with a command) speaking the executor HTTP API. */
  readonly executors: CustomExecutors;
  /**
   * Containers of command tasks killed before they started (the TASK_KILLED went out then): the
   * launch stops where it is, and a container that starts anyway is ended at once.
   */
  private readonly killedLaunches = new Set<string>();

  constructor(
    readonly spec: AgentSpec,
    private readonly workDir: string,
    private readonly host: string,
    readonly isolator: Isolator,
    readonly hooks: AgentHooks,
    readonly logger: Logger,
    private readonly tls: TlsFiles | undefined,
    executorSettings: Partial<ExecutorSettings> = {},
  ) {
    this.executors = new CustomExecutors(this, executorSettings);
  }

  /** The Mesos filesystem isolator this agent behaves as. */
  get filesystem(): 'posix' | 'linux' {
    return this.executors.settings.filesystem ?? (this.isolator.report.kind === 'linux' ? 'linux' : 'posix');
  }

  private readonly executorTokens = new Set<string>();

  /** Whether an operator API call may proceed (always, unless executors must authenticate). */
  authorizesExecutorCall(authorization: string | undefined): boolean {
    const mode = this.executors.settings.authenticateExecutors;
    if (mode === undefined || mode === false) return true;
    if (mode === 'reject-all') return false;
    const m = /^Bearer (.+)$/.exec(authorization ?? '');
    return m?.[1] !== undefined && this.executorTokens.has(m[1]);
  }

  /** The agent's `--isolation` flag as a genuine agent would report it (GET_FLAGS). */
  get isolationFlag(): string {
    const limits = this.isolator.report.kind === 'linux' ? 'cgroups/cpu,cgroups/mem' : 'posix/cpu,posix/mem';
    return this.filesystem === 'linux' ? `${limits},filesystem/linux,namespaces/pid` : limits;
  }

  /**
   * Why a top-level container cannot launch, as the genuine agent words it: under
   * `filesystem/posix`, ContainerInfo volumes are refused.
   */
  refusesContainer(container: { volumes?: readonly unknown[] } | undefined): string | undefined {
    if (this.filesystem === 'posix' && (container?.volumes?.length ?? 0) > 0) return 'Failed to launch container: Volumes in ContainerInfo is not supported';
    return undefined;
  }

  /** Whether the agent is shutting down (containers die without status updates). */
  get isStopping(): boolean {
    return this.stopping;
  }

  /** Loopback endpoint executors reach the agent at (MESOS_AGENT_ENDPOINT). */
  get endpoint(): string {
    return `${this.host}:${this.port}`;
  }

  /** The cluster's work directory. */
  get clusterWorkDir(): string {
    return this.workDir;
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://${this.host}:${this.port}`;
  }

  get root(): string {
    return agentRoot(this.workDir, this.spec.hostname);
  }

  /** The address the agent's HTTP endpoints listen on. */
  get ip(): string {
    return this.host;
  }

  /** Where `local://` datasets live on this agent. */
  get dataDir(): string {
    return agentDataDir(this.workDir, this.spec.hostname);
  }

  /**
   * Routes served before the agent's own (the `locus agent` process adds the
   * endpoints its master drives it through); undefined answers fall through.
   */
  extraRoutes: ((req: IncomingMessage, res: ServerResponse) => Promise<boolean>) | undefined;

  /** Ids of the framework's live custom executors. */
  executorIds(frameworkId: string): string[] {
    return this.executors.executorIds(frameworkId);
  }

  /** Whether a custom executor of the framework runs here. */
  hasExecutor(frameworkId: string, executorId: string): boolean {
    return this.executors.get(frameworkId, executorId) !== undefined;
  }

  /** SHUTDOWN of a custom executor; false when it does not run here. */
  shutdownExecutor(frameworkId: string, executorId: string): boolean {
    return this.executors.shutdown(frameworkId, executorId);
  }

  /** A framework message for an executor (dropped when it is not connected). */
  messageExecutor(frameworkId: string, executorId: string, data: string): void {
    this.executors.message(frameworkId, executorId, data);
  }

  /** The tasks the agent holds live now (a re-registration reports them). */
  liveTasks(): CheckpointedTask[] {
    return [...this.tasks.values()];
  }

  /**
   * Recover from the checkpoint (or create it with `newId()`), listen, and
   * return the tasks that were live when the agent last stopped: their
   * containers are gone, so the master must learn they failed.
   */
  async start(newId: () => string, preferredPort: number): Promise<CheckpointedTask[]> {
    const cp = readCheckpoint(agentCheckpoint(this.workDir, this.spec.hostname)) as AgentCheckpoint | undefined;
    this.id = cp?.id ?? (this.id || newId());
    this.total = cp ? add(cp.resources) : add(this.total.length > 0 ? this.total : this.spec.resources);
    const orphaned = cp ? [...cp.tasks] : [...this.tasks.values()];
    this.tasks.clear();
    const port = this.port || cp?.port || preferredPort;
    mkdirSync(agentDataDir(this.workDir, this.spec.hostname), { recursive: true });
    try {
      this.http = await listen(this.host, port, (req, res) => handleAgentRequest(this, req, res), this.tls);
    } catch (err) {
      if (port === 0) throw err;
      this.http = await listen(this.host, 0, (req, res) => handleAgentRequest(this, req, res), this.tls);
    }
    this.port = this.http.port;
    this.running = true;
    this.stopping = false;
    this.checkpoint();
    return orphaned;
  }

  /** Kill every container (no status updates: the master declares the tasks) and stop listening. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.running = false;
    this.executors.stopAll();
    await Promise.all([...this.containers.values()].map((c) => c.container.kill(200).catch(() => undefined)));
    this.containers.clear();
    await this.http?.close();
    this.http = undefined;
    this.checkpoint();
  }

  /**
   * Checkpoint the agent's id, resources and live tasks. A write that fails (the agent's disk
   * full, as the chaos suite makes it) must not take the agent down with it: the old checkpoint
   * stays whole (the write is atomic), the failure is logged, and the newest state is written
   * again a second later, until it succeeds.
   */
  checkpoint(): void {
    const cp: AgentCheckpoint = { id: this.id, port: this.port, resources: this.total, tasks: [...this.tasks.values()] };
    try {
      writeCheckpoint(agentCheckpoint(this.workDir, this.spec.hostname), cp);
    } catch (err) {
      if (this.checkpointRetry !== undefined) return;
      this.logger.error({ err: String(err), agent: this.spec.hostname }, 'writing the agent checkpoint failed; trying again in 1 s');
      this.checkpointRetry = setTimeout(() => {
        this.checkpointRetry = undefined;
        this.checkpoint();
      }, 1000);
      this.checkpointRetry.unref();
    }
  }

  /** A checkpoint written again after a failed write (see checkpoint). */
  private checkpointRetry: NodeJS.Timeout | undefined;

  /** Apply a resource conversion (RESERVE/UNRESERVE/CREATE/DESTROY) and checkpoint it. */
  applyConversion(consumed: readonly Resource[], converted: readonly Resource[]): void {
    const next = subtract(this.total, consumed);
    if (!next) throw new Error('agent does not hold the consumed resources');
    for (const r of converted) {
      if (r.disk?.persistence) {
        const dir = volumeDir(this.workDir, this.spec.hostname, reservationRole(r), r.disk.persistence.id);
        mkdirSync(dir, { recursive: true });
        // Containers may run as an unprivileged user; a local volume is writable by it.
        chmodSync(dir, 0o777);
      }
    }
    const destroyed = consumed.filter((r) => r.disk?.persistence && !converted.some((c) => c.disk?.persistence?.id === r.disk?.persistence?.id));
    for (const r of destroyed) {
      if (r.disk?.persistence) rmSync(volumeDir(this.workDir, this.spec.hostname, reservationRole(r), r.disk.persistence.id), { recursive: true, force: true });
    }
    this.total = add(next, converted);
    this.checkpoint();
  }

  /** Remember a task as live (checkpointed) on a container. */
  rememberTask(frameworkId: string, framework: FrameworkInfo, task: TaskInfo, containerId: string): void {
    this.tasks.set(`${frameworkId}/${task.task_id.value}`, { frameworkId, framework, task, containerId });
    this.checkpoint();
  }

  /** Forget a task that reached a terminal state. */
  forgetTask(frameworkId: string, taskId: string): void {
    if (this.tasks.delete(`${frameworkId}/${taskId}`)) this.checkpoint();
  }

  private status(frameworkId: string, taskId: string, state: TaskState, extra: Partial<TaskStatus> & { containerId?: string; pid?: number | undefined }): void {
    const { containerId, pid, ...rest } = extra;
    const status: TaskStatus = {
      task_id: { value: taskId },
      state,
      source: 'SOURCE_EXECUTOR',
      agent_id: { value: this.id },
      executor_id: { value: taskId },
      timestamp: Date.now() / 1000,
      uuid: newUuid(),
      ...(containerId !== undefined
        ? { container_status: { container_id: { value: containerId }, network_infos: [{ ip_addresses: [{ protocol: 'IPv4', ip_address: this.host }] }], ...(pid !== undefined ? { executor_pid: pid } : {}) } }
        : {}),
      ...rest,
    };
    this.hooks.onStatus(frameworkId, status);
  }

  /** Host mounts for a task's persistent volumes and host-path volumes. */
  mounts(resources: readonly Resource[], volumes: readonly { container_path: string; host_path?: string; mode: string }[] | undefined): VolumeMount[] {
    const out: VolumeMount[] = [];
    for (const r of resources) {
      const p = r.disk?.persistence;
      const v = r.disk?.volume;
      if (p && v) out.push({ hostPath: volumeDir(this.workDir, this.spec.hostname, reservationRole(r), p.id), containerPath: v.container_path, readOnly: v.mode === 'RO' });
    }
    for (const v of volumes ?? []) {
      // Host directories are shared, not the container's disk (Mesos disk/du counts sandbox and persistent volumes).
      if (v.host_path !== undefined) out.push({ hostPath: v.host_path, containerPath: v.container_path, readOnly: v.mode === 'RO', countsAsDisk: false });
    }
    return out;
  }

  /**
   * Without mount namespaces (process isolation) a volume with a relative
   * container path is made visible as a symlink in the sandbox.
   */
  linkVolumes(sandbox: string, mounts: readonly VolumeMount[]): void {
    if (this.isolator.report.kind !== 'process') return;
    for (const m of mounts) {
      if (isAbsolute(m.containerPath)) continue;
      const link = join(sandbox, m.containerPath);
      mkdirSync(dirname(link), { recursive: true });
      try { lstatSync(link); continue; } catch { /* not there yet */ }
      symlinkSync(m.hostPath, link);
    }
  }

  /** Environment of a container, as the Mesos agent sets it. */
  containerEnv(base: Record<string, string>, ids: { frameworkId: string; executorId: string; containerId: string; taskId?: string; sandbox: string; nested?: boolean; checkpoint?: boolean; role?: string; shutdownGrace?: string }): Record<string, string> {
    const env: Record<string, string> = {};
    for (const k of ['PATH', 'LANG', 'HOME', 'TMPDIR']) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    // A genuine 1.12 agent gives a nested container only its sandbox.
    if (ids.nested === true) return { ...env, ...base, MESOS_SANDBOX: ids.sandbox };
    const auth = this.executors.settings.authenticateExecutors;
    let token: Record<string, string> = {};
    if (auth !== undefined && auth !== false) {
      const t = randomUUID();
      this.executorTokens.add(t);
      token = { MESOS_EXECUTOR_AUTHENTICATION_TOKEN: t };
    }
    // Exactly what a genuine 1.12 agent sets for an executor (the command executor included):
    // no MESOS_CONTAINER_ID, MESOS_AGENT_ID or MESOS_TASK_ID. A program that needs its container
    // id asks the agent (GET_CONTAINERS) or reads it from the executor API's SUBSCRIBED.
    return {
      ...env,
      ...base,
      MESOS_SANDBOX: ids.sandbox,
      MESOS_DIRECTORY: ids.sandbox,
      MESOS_AGENT_ENDPOINT: `${this.host}:${this.port}`,
      MESOS_SLAVE_ID: this.id,
      MESOS_SLAVE_PID: `slave(1)@${this.host}:${this.port}`,
      MESOS_FRAMEWORK_ID: ids.frameworkId,
      MESOS_EXECUTOR_ID: ids.executorId,
      MESOS_ALLOCATION_ROLE: ids.role ?? '*',
      MESOS_CHECKPOINT: ids.checkpoint === true ? '1' : '0',
      MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD: ids.shutdownGrace ?? '5secs',
      MESOS_HTTP_COMMAND_EXECUTOR: '0',
      ...token,
    };
  }

  /** Launch a task: on its custom executor, or as a command task (the command executor's behaviour, built in). */
  launchTask(frameworkId: string, framework: FrameworkInfo, task: TaskInfo): void {
    if (task.executor && isCustomExecutor(task.executor)) {
      this.executors.launch(frameworkId, framework, task.executor, [task], false);
      return;
    }
    const taskId = task.task_id.value;
    const refused = this.refusesContainer(task.container);
    if (refused !== undefined) {
      this.status(frameworkId, taskId, 'TASK_FAILED', { source: 'SOURCE_AGENT', reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: refused });
      return;
    }
    // Its container's cgroup join waits least when the kernel's wait starts now, not at the join.
    this.isolator.expectLaunch?.();
    const containerId = randomUUID();
    const sandbox = sandboxDir(this.workDir, this.spec.hostname, this.id, frameworkId, taskId, containerId);
    this.tasks.set(`${frameworkId}/${taskId}`, { frameworkId, framework, task, containerId });
    this.checkpoint();
    const cmd = task.command ?? task.executor?.command;
    // shell=false is execlp(value, arguments[0], arguments[1], ...): arguments[0] is argv[0].
    const argv = cmd === undefined || cmd.value === undefined
      ? ['true']
      : cmd.shell === false ? [cmd.value, ...(cmd.arguments ?? []).slice(1)] : ['sh', '-c', cmd.value];
    const base: Record<string, string> = {};
    for (const v of cmd?.environment?.variables ?? []) if (v.value !== undefined) base[v.name] = v.value;
    const env = this.containerEnv(base, { frameworkId, executorId: taskId, containerId, taskId, sandbox, checkpoint: framework.checkpoint === true, role: allocationRole(task.resources) });
    const res = [...task.resources, ...(task.executor?.resources ?? [])];
    const mounts = this.mounts(res, task.container?.volumes);
    mkdirSync(sandbox, { recursive: true });
    this.linkVolumes(sandbox, mounts);
    // The fetcher runs before the container starts, as the genuine agent's does. A kill meanwhile
    // (killTask) has reported the task killed already: nothing more is launched or reported.
    const killed = (): boolean => this.killedLaunches.has(containerId);
    void fetchUris(sandbox, containerId, cmd?.uris ?? []).then(() => (killed() ? undefined : this.isolator.launch({
      id: containerId,
      argv,
      env,
      sandboxDir: sandbox,
      limits: { cpus: scalar(res, 'cpus') || 0.1, memMiB: scalar(res, 'mem') || 32, diskMiB: scalar(res, 'disk'), pids: 0 },
      volumes: mounts,
      network: 'host',
      hostFilesystem: true,
      // As a genuine agent (--switch_user, its default): CommandInfo.user, else FrameworkInfo.user.
      ...userOf(cmd, framework),
      ...(task.container?.hostname !== undefined ? { hostname: task.container.hostname } : {}),
    }))).then(
      (container) => {
        if (container === undefined || killed()) {
          this.killedLaunches.delete(containerId);
          if (container !== undefined) this.endKilledLaunch(frameworkId, taskId, containerId, sandbox, container);
          return;
        }
        const rc: RunningContainer = { containerId, parentId: undefined, frameworkId, executorId: taskId, taskId, sandbox, container, exit: container.wait(), killRequested: false };
        this.containers.set(containerId, rc);
        this.status(frameworkId, taskId, 'TASK_STARTING', { containerId, pid: container.pid });
        this.status(frameworkId, taskId, 'TASK_RUNNING', { containerId, pid: container.pid });
        void rc.exit.then((exit) => this.taskExited(rc, exit));
      },
      (err: unknown) => {
        if (this.killedLaunches.delete(containerId)) return;
        this.tasks.delete(`${frameworkId}/${taskId}`);
        this.checkpoint();
        this.status(frameworkId, taskId, 'TASK_FAILED', { source: 'SOURCE_AGENT', reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: `Failed to launch container: ${err instanceof Error ? err.message : String(err)}`, containerId });
      },
    );
  }

  /**
   * A command task's container that started after its task was killed: ended at once, with no
   * update (TASK_KILLED went out at the kill), as a genuine agent shuts down a command executor
   * that registers with no task left to run (Slave::registerExecutor). Kept among the containers
   * until it has ended, so that an agent stopping meanwhile waits for it too.
   */
  private endKilledLaunch(frameworkId: string, taskId: string, containerId: string, sandbox: string, container: Container): void {
    const rc: RunningContainer = { containerId, parentId: undefined, frameworkId, executorId: taskId, taskId: undefined, sandbox, container, exit: container.wait(), killRequested: true };
    this.containers.set(containerId, rc);
    void rc.exit.then(() => this.containerGone(rc));
    void container.kill(0).catch((err: unknown) => this.logger.warn({ err: String(err), container: containerId }, 'ending the container of a task killed while it launched failed'));
  }

  /** Launch a task group on a custom executor (LAUNCH_GROUP event). */
  launchGroup(frameworkId: string, framework: FrameworkInfo, executor: ExecutorInfo, tasks: readonly TaskInfo[]): void {
    this.executors.launch(frameworkId, framework, executor, tasks, true);
  }

  /** A top-level container ended: forget it; its nested containers die with it. */
  containerGone(rc: RunningContainer): void {
    this.containers.delete(rc.containerId);
    for (const child of [...this.containers.values()]) if (child.parentId === rc.containerId) void child.container.kill(100);
  }

  private taskExited(rc: RunningContainer, exit: ContainerExit): void {
    this.containerGone(rc);
    if (this.stopping || rc.taskId === undefined) return;
    this.tasks.delete(`${rc.frameworkId}/${rc.taskId}`);
    this.checkpoint();
    let state: TaskState;
    let reason: string | undefined;
    let message: string;
    if (exit.reason === 'OOM') { state = 'TASK_FAILED'; reason = 'REASON_CONTAINER_LIMITATION_MEMORY'; message = exit.message; }
    else if (exit.reason === 'DISK_LIMIT') { state = 'TASK_FAILED'; reason = 'REASON_CONTAINER_LIMITATION_DISK'; message = exit.message; }
    else if (exit.reason === 'LAUNCH_FAILED') { state = 'TASK_FAILED'; reason = 'REASON_CONTAINER_LAUNCH_FAILED'; message = exit.message; }
    else {
      const signal = rc.endedAsTerminated === true ? 'SIGTERM' : exit.signal;
      message = signal !== null ? `Command terminated with signal ${SIGNAL_NAMES[signal] ?? signal}` : `Command exited with status ${exit.exitCode ?? 0}`;
      state = rc.killRequested ? 'TASK_KILLED' : exit.exitCode === 0 ? 'TASK_FINISHED' : 'TASK_FAILED';
    }
    this.status(rc.frameworkId, rc.taskId, state, { message, ...(reason !== undefined ? { reason } : {}), containerId: rc.containerId, pid: rc.container.pid });
  }

  /** Kill a task: TASK_KILLING first when the framework understands it, then SIGTERM with grace. */
  killTask(frameworkId: string, taskId: string, killingState: boolean, graceMs: number): boolean {
    if (this.executors.kill(frameworkId, taskId)) return true;
    const rc = [...this.containers.values()].find((c) => c.frameworkId === frameworkId && c.taskId === taskId);
    if (!rc) {
      const key = `${frameworkId}/${taskId}`;
      const launching = this.tasks.get(key);
      if (!launching) return false;
      // Still launching (its URIs fetched, its container started): a genuine agent kills such a
      // task at once, TASK_KILLED before its command executor has registered (Slave::kill,
      // REGISTERING), and that executor, once it registers, is shut down without running the
      // command. A kill deferred to the container's start would send its SIGTERM in the very
      // moment the process cannot handle it yet (see dropsSigterm): it would be lost, and the task
      // (a Locus executor released before it registered) would run on for its whole grace.
      this.tasks.delete(key);
      this.checkpoint();
      this.killedLaunches.add(launching.containerId);
      this.status(frameworkId, taskId, 'TASK_KILLED', { source: 'SOURCE_AGENT', reason: 'REASON_TASK_KILLED_DURING_LAUNCH', message: 'Killed before delivery to the executor' });
      return true;
    }
    if (rc.killRequested) return true;
    rc.killRequested = true;
    if (killingState) this.status(frameworkId, taskId, 'TASK_KILLING', { containerId: rc.containerId, pid: rc.container.pid });
    const pid = rc.container.pid;
    if (dropsSigterm(pid)) {
      rc.endedAsTerminated = true;
      void rc.container.kill(0);
      return true;
    }
    void rc.container.kill(graceMs);
    if (pid !== undefined && graceMs > 0) this.watchDroppedSigterm(rc, pid);
    return true;
  }

  /**
   * The SIGTERM of a kill may also be dropped after its handler ran: Node's own handler, there
   * until a program adds its first listener, restores the default action and raises the signal
   * again, which the kernel drops for a namespace's init as it drops an unhandled one (a Locus
   * executor that is still loading is such a process). Where a genuine agent would have ended
   * the task, it is ended now: a process still alive right after the SIGTERM with no handler for
   * it any more is killed. Only briefly after the signal: that handler runs as it is delivered,
   * while a program that handles SIGTERM itself takes its time before it removes its handler.
   */
  private watchDroppedSigterm(rc: RunningContainer, pid: number): void {
    const until = Date.now() + 200;
    const look = (): void => {
      if (this.containers.get(rc.containerId) !== rc) return;
      if (dropsSigterm(pid)) {
        rc.endedAsTerminated = true;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // It ended meanwhile.
        }
        return;
      }
      if (Date.now() < until) setTimeout(look, 20).unref();
    };
    setTimeout(look, 20).unref();
  }

  /** Whether the agent has a live container for the task. */
  hasTask(frameworkId: string, taskId: string): boolean {
    return this.tasks.has(`${frameworkId}/${taskId}`);
  }

  /** Forget tasks without updates (framework removed: the master already knows). */
  async killFrameworkTasks(frameworkId: string): Promise<void> {
    this.executors.forgetFramework(frameworkId);
    const victims = [...this.containers.values()].filter((c) => c.frameworkId === frameworkId && c.parentId === undefined);
    for (const v of victims) {
      v.killRequested = true;
      if (v.taskId !== undefined) this.tasks.delete(`${frameworkId}/${v.taskId}`);
    }
    this.checkpoint();
    await Promise.all(victims.map((v) => v.container.kill(500)));
  }

  /** Launch a nested container under a running container (operator API LAUNCH_CONTAINER). */
  async launchNested(o: { containerId: string; parentId: string; argv: string[]; env: Record<string, string>; resources: readonly Resource[]; volumes: readonly { container_path: string; host_path?: string; mode: string; source?: { type?: string; sandbox_path?: { type?: string; path?: string } } }[]; user?: string }): Promise<'launched' | 'exists' | 'no-parent'> {
    if (this.containers.has(o.containerId)) return 'exists';
    const parent = this.containers.get(o.parentId);
    if (!parent) return 'no-parent';
    const sandbox = nestedSandboxDir(parent.sandbox, o.containerId);
    // Under filesystem/posix a genuine agent ignores a nested container's volumes: it sees the
    // host's filesystem, as its parent does.
    const posix = this.filesystem === 'posix';
    const mounts = posix ? [] : this.mounts([], o.volumes.filter((v) => v.host_path !== undefined));
    const parentTask = parent.taskId !== undefined ? this.tasks.get(`${parent.frameworkId}/${parent.taskId}`) : undefined;
    const parentMounts = parentTask ? this.mounts(parentTask.task.resources, undefined) : [];
    for (const v of posix ? [] : o.volumes) {
      // A PARENT sandbox path volume shares a directory of the parent's sandbox. When that
      // directory is one of the parent's persistent volumes, the volume's own directory is
      // what the genuine agent's bind mount shows there, so share that.
      if (v.source?.type === 'SANDBOX_PATH' && v.source.sandbox_path?.path !== undefined) {
        const rel = v.source.sandbox_path.path.replace(/^\/+|\/+$/g, '');
        const pm = parentMounts.find((m) => !m.containerPath.startsWith('/') && (rel === m.containerPath || rel.startsWith(`${m.containerPath}/`)));
        const hostPath = pm ? `${pm.hostPath}${rel.slice(pm.containerPath.length)}` : `${parent.sandbox}/${rel}`;
        mounts.push({ hostPath, containerPath: v.container_path, readOnly: v.mode === 'RO' });
      }
    }
    // Only the volumes the launch names, in the modes it names: the parent's other persistent
    // volumes are not mounted too. They were (read-write, at the paths they were reserved with),
    // so a task that asked for a volume read-only could write it through the executor's own
    // mount, and a task that named no volume could write a volume its executor held.
    const env = this.containerEnv(o.env, { frameworkId: parent.frameworkId, executorId: parent.executorId, containerId: o.containerId, sandbox, nested: true });
    // The isolator makes the sandbox (every isolator does): one it made itself is known to be
    // empty, so it sets its owner without walking it, where a sandbox made here first would be
    // walked (lchown, lstat, readdir: three thread-pool round trips per container).
    this.linkVolumes(sandbox, mounts);
    const container = await this.isolator.launch({
      id: o.containerId,
      parentId: o.parentId,
      argv: o.argv,
      env,
      sandboxDir: sandbox,
      limits: { cpus: scalar(o.resources, 'cpus') || 0.1, memMiB: scalar(o.resources, 'mem') || 32, diskMiB: scalar(o.resources, 'disk'), pids: 0 },
      volumes: mounts,
      network: 'host',
      // CommandInfo.user, as a genuine agent runs a nested container as the user it names.
      ...(o.user !== undefined ? { user: o.user } : {}),
      ...(posix ? { hostFilesystem: true } : {}),
    });
    const rc: RunningContainer = { containerId: o.containerId, parentId: o.parentId, frameworkId: parent.frameworkId, executorId: parent.executorId, taskId: undefined, sandbox, container, exit: container.wait(), killRequested: false };
    this.containers.set(o.containerId, rc);
    this.finished.delete(o.containerId);
    void rc.exit.then((exit) => {
      this.containers.delete(o.containerId);
      this.finished.set(o.containerId, exit);
    });
    return 'launched';
  }

  /**
   * REMOVE_CONTAINER of a nested container, as a genuine agent answers it: one that has not ended
   * is refused ('running'); otherwise its sandbox goes (and its end, so a later WAIT_CONTAINER
   * finds nothing), and a container or parent the agent does not know is removed already.
   */
  async removeNested(containerId: string, parentId: string): Promise<'removed' | 'running'> {
    if (this.containers.has(containerId)) return 'running';
    this.finished.delete(containerId);
    const parent = this.containers.get(parentId);
    if (parent !== undefined) await rm(nestedSandboxDir(parent.sandbox, containerId), { recursive: true, force: true });
    return 'removed';
  }

  /** Ends of nested containers, for WAIT_CONTAINER after the fact (until REMOVE_CONTAINER). */
  readonly finished = new Map<string, ContainerExit>();
}
