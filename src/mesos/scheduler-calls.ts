/**
 * The scheduler calls a framework sends its master, by name (ACCEPT, DECLINE, REVIVE, KILL, ...),
 * each built by `calls` and sent through one `call`. The subscription and the way a call travels
 * (its stream id, retries, a redirect to a new leader) are the client's (client.ts); this is the
 * vocabulary on top of it.
 */
import { calls, type CallResult } from './calls.js';
import { TypedEmitter, type EventMap } from './emitter.js';
import type { AgentID, CallBody, ExecutorID, Filters, OfferID, Operation, OperationID, OperationStatus, TaskID, TaskInfo, TaskStatus } from './types.js';

/** The named calls over an abstract `call`. */
export abstract class SchedulerCalls<M extends EventMap> extends TypedEmitter<M> {
  /** Send one call on the current subscription. */
  abstract call(body: CallBody): Promise<CallResult>;

  /** ACCEPT offers with operations (LAUNCH, LAUNCH_GROUP, RESERVE, UNRESERVE, CREATE, DESTROY). */
  accept(offerIds: readonly (string | OfferID)[], operations: readonly Operation[], filters?: Filters): Promise<CallResult> {
    return this.call(calls.accept(offerIds, operations, filters));
  }

  /** Shorthand: ACCEPT with one LAUNCH of the given tasks. */
  launch(offerIds: readonly (string | OfferID)[], tasks: readonly TaskInfo[], filters?: Filters): Promise<CallResult> {
    return this.call(calls.accept(offerIds, [{ type: 'LAUNCH', launch: { task_infos: tasks } }], filters));
  }

  /** DECLINE offers; `filters.refuse_seconds` keeps them away for a while. */
  decline(offerIds: readonly (string | OfferID)[], filters?: Filters): Promise<CallResult> {
    return this.call(calls.decline(offerIds, filters));
  }

  /** REVIVE offers for the given roles (all roles when empty). */
  revive(roles?: readonly string[]): Promise<CallResult> {
    return this.call(calls.revive(roles));
  }

  /** SUPPRESS offers for the given roles (all roles when empty). */
  suppress(roles?: readonly string[]): Promise<CallResult> {
    return this.call(calls.suppress(roles));
  }

  /** KILL a task. */
  kill(taskId: TaskID | string, agentId?: AgentID | string): Promise<CallResult> {
    return this.call(calls.kill(toId(taskId), agentId === undefined ? undefined : toId(agentId)));
  }

  /** SHUTDOWN an executor. */
  shutdown(executorId: ExecutorID | string, agentId: AgentID | string): Promise<CallResult> {
    return this.call(calls.shutdown(toId(executorId), toId(agentId)));
  }

  /** ACKNOWLEDGE one status update. */
  acknowledge(agentId: AgentID | string, taskId: TaskID | string, uuid: string): Promise<CallResult> {
    return this.call(calls.acknowledge(toId(agentId), toId(taskId), uuid));
  }

  /** ACKNOWLEDGE a status if it needs it (has a uuid and an agent); resolves false otherwise. */
  async acknowledgeUpdate(status: TaskStatus): Promise<boolean> {
    if (status.uuid === undefined || status.agent_id === undefined) return false;
    await this.acknowledge(status.agent_id, status.task_id, status.uuid);
    return true;
  }

  /** ACKNOWLEDGE_OPERATION_STATUS for an operation status that carries a uuid; resolves false otherwise. */
  async acknowledgeOperationStatus(status: OperationStatus): Promise<boolean> {
    if (status.uuid === undefined || status.operation_id === undefined) return false;
    await this.call(calls.acknowledgeOperationStatus(status.operation_id, status.uuid.value, status.agent_id));
    return true;
  }

  /** RECONCILE the given tasks; an empty list asks for every task (implicit reconciliation). */
  reconcile(tasks: readonly { task_id: TaskID; agent_id?: AgentID }[] = []): Promise<CallResult> {
    return this.call(calls.reconcile(tasks));
  }

  /** RECONCILE_OPERATIONS for the given operations (empty: all). */
  reconcileOperations(operations: readonly { operation_id: OperationID; agent_id?: AgentID }[] = []): Promise<CallResult> {
    return this.call(calls.reconcileOperations(operations));
  }

  /** Send a MESSAGE to an executor (data is base64-encoded for the wire). */
  message(agentId: AgentID | string, executorId: ExecutorID | string, data: Uint8Array | string): Promise<CallResult> {
    return this.call(calls.message(toId(agentId), toId(executorId), data));
  }
}

const toId = (v: { value: string } | string): { value: string } => (typeof v === 'string' ? { value: v } : v);
