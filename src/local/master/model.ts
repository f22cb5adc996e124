/**
 * The local master's in-memory model: frameworks, their tasks, offers and
 * operations, and the agents it knows. Plain records; the Master class
 * owns every mutation.
 */
import type { ServerResponse } from 'node:http';
import type { ExecutorInfo, FrameworkInfo, Offer, OperationStatus, Resource, TaskInfo, TaskState, TaskStatus } from '../../mesos/types.js';

/** One open SUBSCRIBE stream. */
export interface Stream {
  readonly id: string;
  readonly res: ServerResponse;
  heartbeat: NodeJS.Timeout | undefined;
}

/** A refuse filter left by DECLINE (or ACCEPT) with refuse_seconds. */
export interface OfferFilter {
  readonly agentId: string;
  readonly role: string;
  readonly resources: readonly Resource[];
  readonly until: number;
}

/** A task as the master tracks it. */
export interface TaskRecord {
  readonly info: TaskInfo;
  readonly frameworkId: string;
  readonly agentId: string;
  readonly role: string;
  /** Resources as allocated (with allocation_info), what the task holds. */
  readonly resources: readonly Resource[];
  state: TaskState;
  statuses: TaskStatus[];
  /** Latest status carrying container_status, echoed by reconciliation. */
  lastStatus: TaskStatus | undefined;
  /** Unacknowledged reliable updates, oldest first; only the head is sent. */
  pending: TaskStatus[];
  resendTimer: NodeJS.Timeout | undefined;
  unreachable: boolean;
}

/** A framework (subscribed, disconnected within failover, or recovered from agents). */
export interface FrameworkRecord {
  readonly id: string;
  info: FrameworkInfo;
  roles: string[];
  capabilities: Set<string>;
  stream: Stream | undefined;
  /** Known only from tasks on agents, not yet subscribed to this master. */
  recovered: boolean;
  suppressed: Set<string>;
  filters: OfferFilter[];
  readonly offers: Map<string, Offer>;
  readonly tasks: Map<string, TaskRecord>;
  readonly completedTasks: TaskRecord[];
  registeredTime: number;
  reregisteredTime: number | undefined;
  unregisteredTime: number;
  failoverTimer: NodeJS.Timeout | undefined;
  /** Operation statuses awaiting acknowledgement, by uuid. */
  readonly pendingOperationUpdates: Map<string, OperationStatus>;
  readonly operations: Map<string, OperationStatus>;
}

/**
 * What the master needs of an agent: an in-process `LocalAgent`, or a
 * `RemoteAgent` standing for a `locus agent` process behind HTTP. The master
 * only ever calls these, so an agent can live in another process or on
 * another machine without the master knowing agent internals.
 */
export interface AgentRuntime {
  readonly id: string;
  readonly spec: { readonly hostname: string; readonly rack: string; readonly attributes: Readonly<Record<string, string>> };
  /** Address the agent's HTTP endpoints listen on (offers' url, state's pid). */
  readonly ip: string;
  readonly port: number;
  /** Base URL of the agent's HTTP endpoints. */
  readonly url: string;
  /** The directory `local://` datasets live in, as the agent's own host sees it. */
  readonly dataDir: string;
  readonly running: boolean;
  /** Total resources, with reservations and volumes (the agent checkpoints them). */
  readonly total: readonly Resource[];
  /** Ids of the framework's live custom executors (offers list them in `executor_ids`). */
  executorIds(frameworkId: string): string[];
  /** Whether a custom executor of the framework runs there (its resources are not charged again). */
  hasExecutor(frameworkId: string, executorId: string): boolean;
  launchTask(frameworkId: string, framework: FrameworkInfo, task: TaskInfo): void;
  launchGroup(frameworkId: string, framework: FrameworkInfo, executor: ExecutorInfo, tasks: readonly TaskInfo[]): void;
  killTask(frameworkId: string, taskId: string, killingState: boolean, graceMs: number): void;
  /** SHUTDOWN of a custom executor; false when it does not run there. */
  shutdownExecutor(frameworkId: string, executorId: string): boolean;
  /** A framework message for an executor (dropped when it is not there, as in Mesos). */
  messageExecutor(frameworkId: string, executorId: string, data: string): void;
  /** Apply a RESERVE/UNRESERVE/CREATE/DESTROY the master has validated. */
  applyConversion(consumed: readonly Resource[], converted: readonly Resource[]): void;
  /** The framework is gone: its tasks die without status updates. */
  killFrameworkTasks(frameworkId: string): Promise<void>;
}

/** An agent as the master sees it. */
export interface AgentRecord {
  readonly runtime: AgentRuntime;
  connected: boolean;
  registeredTime: number;
  reregisteredTime: number | undefined;
  unreachableTime: number | undefined;
}

/** Whether a framework declared a capability. */
export function hasCapability(fw: FrameworkRecord, cap: string): boolean {
  return fw.capabilities.has(cap);
}

/** The roles of a framework: `roles` with MULTI_ROLE, else the legacy `role` (default '*'). */
export function frameworkRoles(info: FrameworkInfo): string[] {
  const multi = (info.capabilities ?? []).some((c) => c.type === 'MULTI_ROLE');
  if (multi) return [...(info.roles ?? [])];
  return [info.role ?? '*'];
}
