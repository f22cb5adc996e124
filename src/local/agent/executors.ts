/**
 * Custom executors on a local agent, run the way the Mesos agent runs them:
 * one container per (framework, executor id), started with the first task
 * for it, that SUBSCRIBEs to `POST /api/v1/executor` and receives its tasks
 * as LAUNCH / LAUNCH_GROUP events (queued until it subscribes). Its UPDATE
 * calls go to the master; the agent answers ACKNOWLEDGED once it has
 * recorded an update, as the genuine agent does once its status update
 * manager has checkpointed it (the framework's acknowledgement only releases
 * the next update). KILL, SHUTDOWN and MESSAGE events go the other way.
 * When the executor's container ends, its live tasks fail as
 * `Slave::executorTerminated` reports them.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { ContainerExit } from '../../executor/isolation/types.js';
import type { ExecutorInfo, FrameworkInfo, Resource, TaskInfo, TaskState, TaskStatus } from '../../mesos/types.js';
import { TERMINAL_TASK_STATES } from '../../mesos/types.js';
import { recordio } from '../http.js';
import { allocationRole, scalar } from '../resources.js';
import type { LocalAgent, RunningContainer } from './agent.js';
import { sandboxDir } from './paths.js';
import { userOf } from './run-as.js';
import { newUuid } from './status.js';

/** Timings of the executor lifecycle (agent flags in Mesos). */
export interface ExecutorSettings {
  /** `--executor_registration_timeout` (Mesos default 1mins). */
  readonly registrationTimeoutMs: number;
  /** `--executor_shutdown_grace_period` (Mesos default 5secs), unless ExecutorInfo.shutdown_grace_period says otherwise. */
  readonly shutdownGraceMs: number;
  /**
   * Which Mesos filesystem isolator the agent behaves as. `posix` (a genuine agent's default):
   * a top-level container whose ContainerInfo has volumes fails to launch, and nested containers'
   * volumes are ignored (they see the host's filesystem). `linux` (`filesystem/linux`): volumes
   * are mounted. Undefined: `linux` when the isolator has mount namespaces, else `posix`.
   */
  readonly filesystem?: 'posix' | 'linux';
  /**
   * `--authenticate_http_executors`: executors get MESOS_EXECUTOR_AUTHENTICATION_TOKEN and the
   * operator API wants it as a Bearer token. `reject-all` refuses even issued tokens (a test knob
   * for "an agent that will not let this executor launch nested containers").
   */
  readonly authenticateExecutors?: boolean | 'reject-all';
}

const DEFAULTS: ExecutorSettings = { registrationTimeoutMs: 60_000, shutdownGraceMs: 5_000 };

/** A task as the agent tracks it on an executor. */
interface ExecutorTask {
  readonly info: TaskInfo;
  delivered: boolean;
  state: TaskState | undefined;
}

/** How an executor's remaining tasks end when it goes (`pendingTermination` in Mesos). */
interface Termination {
  readonly state: TaskState;
  readonly reason: string;
  readonly message: string;
}

/** One executor run (one container). */
export interface ExecutorRun {
  readonly frameworkId: string;
  readonly executorId: string;
  framework: FrameworkInfo;
  readonly info: ExecutorInfo;
  readonly containerId: string;
  readonly sandbox: string;
  /** REGISTERING until the first SUBSCRIBE; TERMINATING after SHUTDOWN or a kill. */
  state: 'REGISTERING' | 'RUNNING' | 'TERMINATING' | 'TERMINATED';
  stream: ServerResponse | undefined;
  readonly queued: { tasks: TaskInfo[]; group: boolean }[];
  readonly tasks: Map<string, ExecutorTask>;
  /** Update uuids already forwarded (an executor resends unacknowledged ones on re-subscribe). */
  readonly forwarded: Set<string>;
  container: RunningContainer | undefined;
  destroyRequested: number | undefined;
  pendingTermination: Termination | undefined;
  /** No status updates when it ends (framework removed, agent stopping). */
  silent: boolean;
  timers: NodeJS.Timeout[];
}

/**
 * Whether an ExecutorInfo names a custom executor: type CUSTOM, or no type
 * with a command (frameworks predating `type`). Without a command it is the
 * default executor, which the agent provides built in.
 */
export function isCustomExecutor(e: ExecutorInfo): boolean {
  return e.type === 'CUSTOM' || (e.type !== 'DEFAULT' && e.command !== undefined);
}

/** `stringify(Duration)` as Mesos prints it in executor environment variables. */
export function mesosDuration(ms: number): string {
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}mins`;
  if (ms % 1000 === 0) return `${ms / 1000}secs`;
  return `${ms}ms`;
}

function graceOf(info: ExecutorInfo, fallbackMs: number): number {
  const g = (info as { shutdown_grace_period?: { nanoseconds?: number } }).shutdown_grace_period?.nanoseconds;
  return typeof g === 'number' && g >= 0 ? Math.round(g / 1e6) : fallbackMs;
}

/** The custom executors of one agent. */
export class CustomExecutors {
  private readonly runs = new Map<string, ExecutorRun>();
  readonly settings: ExecutorSettings;

  constructor(private readonly agent: LocalAgent, settings: Partial<ExecutorSettings>) {
    this.settings = { ...DEFAULTS, ...settings };
  }

  /** The run of an executor, if it is live. */
  get(frameworkId: string, executorId: string): ExecutorRun | undefined {
    return this.runs.get(`${frameworkId}/${executorId}`);
  }

  /** Whether the agent runs anything for this framework (the executor API's framework lookup). */
  knowsFramework(frameworkId: string): boolean {
    return [...this.runs.values()].some((r) => r.frameworkId === frameworkId);
  }

  /** Ids of the framework's live executors (offers list them in `executor_ids`). */
  executorIds(frameworkId: string): string[] {
    return [...this.runs.values()].filter((r) => r.frameworkId === frameworkId && r.state !== 'TERMINATED').map((r) => r.executorId);
  }

  /** Give tasks (or one task group) to an executor, starting it when it is not running. */
  launch(frameworkId: string, framework: FrameworkInfo, executor: ExecutorInfo, tasks: readonly TaskInfo[], group: boolean): void {
    let run = this.get(frameworkId, executor.executor_id.value);
    if (run && run.state === 'TERMINATING') {
      const partitionAware = (framework.capabilities ?? []).some((c) => c.type === 'PARTITION_AWARE');
      for (const t of tasks) {
        this.report(run, t.task_id.value, { state: partitionAware ? 'TASK_DROPPED' : 'TASK_LOST', reason: 'REASON_EXECUTOR_TERMINATED', message: 'Executor terminating' });
      }
      return;
    }
    run ??= this.start(frameworkId, framework, executor, tasks);
    run.framework = framework;
    for (const t of tasks) {
      run.tasks.set(t.task_id.value, { info: t, delivered: false, state: undefined });
      this.agent.rememberTask(frameworkId, framework, { ...t, executor: run.info }, run.containerId);
    }
    // Without mount namespaces a later task's volumes appear as sandbox symlinks (no-op otherwise).
    this.agent.linkVolumes(run.sandbox, this.agent.mounts(tasks.flatMap((t) => t.resources), undefined));
    if (run.stream) this.deliver(run, [...tasks], group);
    else run.queued.push({ tasks: [...tasks], group });
  }

  private start(frameworkId: string, framework: FrameworkInfo, executor: ExecutorInfo, tasks: readonly TaskInfo[]): ExecutorRun {
    // Its container's cgroup join waits least when the kernel's wait starts now, not at the join.
    this.agent.isolator.expectLaunch?.();
    const executorId = executor.executor_id.value;
    const containerId = randomUUID();
    const sandbox = sandboxDir(this.agent.clusterWorkDir, this.agent.spec.hostname, this.agent.id, frameworkId, executorId, containerId);
    const info: ExecutorInfo = { ...executor, framework_id: { value: frameworkId } };
    const run: ExecutorRun = {
      frameworkId, executorId, framework, info, containerId, sandbox, state: 'REGISTERING', stream: undefined, queued: [], tasks: new Map(),
      forwarded: new Set(), container: undefined, destroyRequested: undefined, pendingTermination: undefined, silent: false, timers: [],
    };
    this.runs.set(`${frameworkId}/${executorId}`, run);
    const timeout = this.settings.registrationTimeoutMs;
    const registration = setTimeout(() => {
      if (run.state !== 'REGISTERING') return;
      run.pendingTermination = { state: 'TASK_FAILED', reason: 'REASON_EXECUTOR_REGISTRATION_TIMEOUT', message: `Executor did not register within ${mesosDuration(timeout)}` };
      this.destroy(run, 0);
    }, timeout);
    registration.unref();
    run.timers.push(registration);

    const cmd = executor.command;
    // shell=false is execlp(value, arguments[0], arguments[1], ...): arguments[0] is argv[0].
    const argv = cmd?.value === undefined ? ['true'] : cmd.shell === false ? [cmd.value, ...(cmd.arguments ?? []).slice(1)] : ['sh', '-c', cmd.value];
    const base: Record<string, string> = {};
    for (const v of cmd?.environment?.variables ?? []) if (v.value !== undefined) base[v.name] = v.value;
    const checkpoint = framework.checkpoint === true;
    const env: Record<string, string> = {
      ...this.agent.containerEnv(base, { frameworkId, executorId, containerId, sandbox, checkpoint, role: allocationRole(executor.resources ?? []), shutdownGrace: mesosDuration(graceOf(info, this.settings.shutdownGraceMs)) }),
      ...(checkpoint ? { MESOS_RECOVERY_TIMEOUT: '15mins', MESOS_SUBSCRIPTION_BACKOFF_MAX: '2secs' } : {}),
    };
    const resources: Resource[] = [...(executor.resources ?? []), ...tasks.flatMap((t) => t.resources)];
    const mounts = this.agent.mounts(resources, executor.container?.volumes);
    mkdirSync(sandbox, { recursive: true });
    this.agent.linkVolumes(sandbox, mounts);
    void this.agent.isolator.launch({
      id: containerId,
      argv,
      env,
      sandboxDir: sandbox,
      limits: { cpus: scalar(resources, 'cpus') || 0.1, memMiB: scalar(resources, 'mem') || 32, diskMiB: scalar(resources, 'disk'), pids: 0 },
      volumes: mounts,
      network: 'host',
      hostFilesystem: true,
      // As a genuine agent (--switch_user, its default): CommandInfo.user, else FrameworkInfo.user.
      // An executor running as the framework's user (root for Locus run as root) can run its
      // attempts as their tenants' users; as `nobody` every tenant's attempts shared its uid.
      ...userOf(cmd, framework),
    }).then(
      (container) => {
        const rc: RunningContainer = { containerId, parentId: undefined, frameworkId, executorId, taskId: undefined, sandbox, container, exit: container.wait(), killRequested: false };
        run.container = rc;
        this.agent.containers.set(containerId, rc);
        void rc.exit.then((exit) => this.terminated(run, exit));
        if (run.destroyRequested !== undefined || run.state === 'TERMINATED') void container.kill(run.destroyRequested ?? 0);
      },
      (err: unknown) => {
        this.terminated(run, { exitCode: null, signal: null, reason: 'LAUNCH_FAILED', message: `Failed to launch container: ${err instanceof Error ? err.message : String(err)}`, usage: { cpuTimeSeconds: 0, memPeakBytes: 0, memCurrentBytes: 0, diskUsedBytes: 0 } });
      },
    );
    this.agent.logger.info({ framework: frameworkId, executor: executorId, container: containerId }, 'launching custom executor');
    return run;
  }

  /** Write one event on the executor's stream (dropped when it is not connected, as the agent does). */
  send(run: ExecutorRun, event: Record<string, unknown>): boolean {
    const s = run.stream;
    if (!s || s.writableEnded || s.destroyed) return false;
    s.write(recordio(event));
    return true;
  }

  private deliver(run: ExecutorRun, tasks: TaskInfo[], group: boolean): void {
    for (const t of tasks) {
      const et = run.tasks.get(t.task_id.value);
      if (et) et.delivered = true;
    }
    if (group) this.send(run, { type: 'LAUNCH_GROUP', launch_group: { task_group: { tasks } } });
    else for (const task of tasks) this.send(run, { type: 'LAUNCH', launch: { task } });
  }

  /** SUBSCRIBE: the stream is open; SUBSCRIBED, resent updates, then the queued tasks. */
  subscribe(run: ExecutorRun, res: ServerResponse, unacknowledgedUpdates: readonly TaskStatus[]): void {
    if (run.stream && run.stream !== res) run.stream.end();
    run.stream = res;
    res.on('close', () => {
      if (run.stream === res) run.stream = undefined;
    });
    if (run.state === 'TERMINATING' || run.state === 'TERMINATED') {
      this.send(run, { type: 'SHUTDOWN' });
      return;
    }
    run.state = 'RUNNING';
    const a = this.agent;
    this.send(run, {
      type: 'SUBSCRIBED',
      subscribed: {
        executor_info: run.info,
        framework_info: { ...run.framework, id: { value: run.frameworkId } },
        agent_info: {
          hostname: a.spec.hostname, port: a.port, id: { value: a.id }, resources: a.total,
          attributes: [{ name: 'rack', type: 'TEXT', text: { value: a.spec.rack } }, ...Object.entries(a.spec.attributes).map(([name, value]) => ({ name, type: 'TEXT', text: { value } }))],
        },
        container_id: { value: run.containerId },
      },
    });
    for (const s of unacknowledgedUpdates) this.update(run, s);
    for (const q of run.queued.splice(0)) this.deliver(run, q.tasks, q.group);
  }

  /** A validated UPDATE call: record, forward to the master, acknowledge to the executor. */
  update(run: ExecutorRun, status: TaskStatus): void {
    const uuid = status.uuid ?? '';
    const taskId = status.task_id.value;
    const ackLater = (): void => {
      setImmediate(() => this.send(run, { type: 'ACKNOWLEDGED', acknowledged: { task_id: status.task_id, uuid } }));
    };
    if (run.forwarded.has(uuid)) return ackLater();
    run.forwarded.add(uuid);
    const et = run.tasks.get(taskId);
    if (et) {
      et.state = status.state;
      if (TERMINAL_TASK_STATES.has(status.state)) {
        run.tasks.delete(taskId);
        this.agent.forgetTask(run.frameworkId, taskId);
      }
    }
    const pid = run.container?.container.pid;
    this.agent.hooks.onStatus(run.frameworkId, {
      ...status,
      source: 'SOURCE_EXECUTOR',
      agent_id: { value: this.agent.id },
      executor_id: status.executor_id ?? { value: run.executorId },
      timestamp: status.timestamp ?? Date.now() / 1000,
      container_status: {
        container_id: { value: run.containerId },
        network_infos: [{ ip_addresses: [{ protocol: 'IPv4', ip_address: '127.0.0.1' }] }],
        ...(pid !== undefined ? { executor_pid: pid } : {}),
        ...(status.container_status ?? {}),
      },
    });
    ackLater();
  }

  /** KILL of a task on a custom executor; false when no executor has it. */
  kill(frameworkId: string, taskId: string): boolean {
    const run = [...this.runs.values()].find((r) => r.frameworkId === frameworkId && r.tasks.has(taskId));
    const et = run?.tasks.get(taskId);
    if (!run || !et) return false;
    if (et.delivered) {
      this.send(run, { type: 'KILL', kill: { task_id: { value: taskId } } });
      return true;
    }
    // Not delivered yet: it (and the rest of its group, which is atomic) never reaches the executor.
    const qi = run.queued.findIndex((q) => q.tasks.some((t) => t.task_id.value === taskId));
    const victims = qi >= 0 ? (run.queued.splice(qi, 1)[0]?.tasks ?? []) : [et.info];
    for (const t of victims) {
      run.tasks.delete(t.task_id.value);
      this.agent.forgetTask(frameworkId, t.task_id.value);
      this.report(run, t.task_id.value, { state: 'TASK_KILLED', reason: 'REASON_TASK_KILLED_DURING_LAUNCH', message: 'Killed before delivery to the executor' });
    }
    // An executor whose initial tasks were all killed is shut down.
    if (run.tasks.size === 0 && run.state === 'REGISTERING') this.destroy(run, 0);
    return true;
  }

  /** SHUTDOWN of an executor (scheduler call); false when it is not running here. */
  shutdown(frameworkId: string, executorId: string): boolean {
    const run = this.get(frameworkId, executorId);
    if (!run) return false;
    if (run.state === 'TERMINATING' || run.state === 'TERMINATED') return true;
    const delivered = this.send(run, { type: 'SHUTDOWN' });
    const grace = graceOf(run.info, this.settings.shutdownGraceMs);
    run.state = 'TERMINATING';
    if (!delivered) {
      this.destroy(run, 0);
      return true;
    }
    const t = setTimeout(() => this.destroy(run, 0), grace);
    t.unref();
    run.timers.push(t);
    return true;
  }

  /** A framework message for an executor (MESSAGE event); false when it is not connected. */
  message(frameworkId: string, executorId: string, data: string): boolean {
    const run = this.get(frameworkId, executorId);
    return run !== undefined && this.send(run, { type: 'MESSAGE', message: { data } });
  }

  /** The framework is gone: its executors die without status updates. */
  forgetFramework(frameworkId: string): void {
    for (const run of [...this.runs.values()]) {
      if (run.frameworkId !== frameworkId) continue;
      run.silent = true;
      for (const id of run.tasks.keys()) this.agent.forgetTask(frameworkId, id);
      run.tasks.clear();
      this.destroy(run, 500);
    }
  }

  /** The agent stops: streams close, timers stop; the agent kills the containers. */
  stopAll(): void {
    for (const run of this.runs.values()) {
      run.silent = true;
      run.state = 'TERMINATED';
      for (const t of run.timers) clearTimeout(t);
      run.stream?.end();
      run.stream = undefined;
    }
    this.runs.clear();
  }

  private destroy(run: ExecutorRun, graceMs: number): void {
    if (run.state !== 'TERMINATED') run.state = 'TERMINATING';
    if (run.container) {
      run.container.killRequested = true;
      void run.container.container.kill(graceMs);
    } else {
      run.destroyRequested = graceMs;
    }
  }

  /** The executor's container ended: its live tasks end as the agent reports them. */
  private terminated(run: ExecutorRun, exit: ContainerExit): void {
    if (run.container) this.agent.containerGone(run.container);
    const key = `${run.frameworkId}/${run.executorId}`;
    if (this.runs.get(key) === run) this.runs.delete(key);
    const wasTerminated = run.state === 'TERMINATED';
    run.state = 'TERMINATED';
    for (const t of run.timers) clearTimeout(t);
    run.stream?.end();
    run.stream = undefined;
    this.agent.logger.info({ framework: run.frameworkId, executor: run.executorId, exit: exit.message }, 'custom executor terminated');
    if (wasTerminated || run.silent || this.agent.isStopping) return;
    let end: Termination;
    if (exit.reason === 'OOM') end = { state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LIMITATION_MEMORY', message: exit.message };
    else if (exit.reason === 'DISK_LIMIT') end = { state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LIMITATION_DISK', message: exit.message };
    else if (exit.reason === 'LAUNCH_FAILED') end = { state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: exit.message };
    else end = run.pendingTermination ?? { state: 'TASK_FAILED', reason: 'REASON_EXECUTOR_TERMINATED', message: 'Executor terminated' };
    for (const [taskId, t] of [...run.tasks]) {
      if (t.state !== undefined && TERMINAL_TASK_STATES.has(t.state)) continue;
      run.tasks.delete(taskId);
      this.agent.forgetTask(run.frameworkId, taskId);
      this.report(run, taskId, end);
    }
  }

  /** A status update the agent itself produces for a task of the executor. */
  private report(run: ExecutorRun, taskId: string, s: Termination): void {
    const pid = run.container?.container.pid;
    this.agent.hooks.onStatus(run.frameworkId, {
      task_id: { value: taskId }, state: s.state, source: 'SOURCE_AGENT', reason: s.reason, message: s.message,
      agent_id: { value: this.agent.id }, executor_id: { value: run.executorId }, timestamp: Date.now() / 1000, uuid: newUuid(),
      ...(run.container ? { container_status: { container_id: { value: run.containerId }, ...(pid !== undefined ? { executor_pid: pid } : {}) } } : {}),
    });
  }
}
