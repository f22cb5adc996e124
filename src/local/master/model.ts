/**
 * The local master's in-memory model: frameworks, their tasks, offers and
 * operations, and the agents it knows. Plain records; the Master class
 * owns every mutation.
 */
import type { ServerResponse } from 'node:http';
import type { FrameworkInfo, Offer, OperationStatus, Resource, TaskInfo, TaskState, TaskStatus } from '../../mesos/types.js';
import type { LocalAgent } from '../agent/agent.js';

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

/** An agent as the master sees it. */
export interface AgentRecord {
  readonly runtime: LocalAgent;
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
