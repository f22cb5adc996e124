/**
 * Adapts the Mesos scheduler client to the coordinator's MesosDriver port.
 * The coordinator speaks in plain ids; the client in wire messages.
 */
import type { SchedulerClient } from '../mesos/client.js';
import type { MesosDriver } from '../scheduler/coordinator.js';

/** A MesosDriver over a SchedulerClient. `roles` scopes REVIVE/SUPPRESS. */
export function clientDriver(client: SchedulerClient, roles: readonly string[]): MesosDriver {
  return {
    async accept(offerIds, operations, refuseSeconds) {
      await client.accept(offerIds, operations, refuseSeconds === undefined ? undefined : { refuse_seconds: refuseSeconds });
    },
    async decline(offerIds, refuseSeconds) {
      await client.decline(offerIds, { refuse_seconds: refuseSeconds });
    },
    async revive() {
      await client.revive(roles);
    },
    async suppress() {
      await client.suppress(roles);
    },
    async kill(taskId, agentId) {
      await client.kill(taskId, agentId);
    },
    async acknowledge(agentId, taskId, uuid) {
      await client.acknowledge(agentId, taskId, uuid);
    },
    async acknowledgeOperationStatus(agentId, operationId, uuid) {
      await client.call({
        type: 'ACKNOWLEDGE_OPERATION_STATUS',
        acknowledge_operation_status: { ...(agentId ? { agent_id: { value: agentId } } : {}), uuid, operation_id: { value: operationId } },
      });
    },
    async reconcile(tasks) {
      await client.reconcile(tasks.map((t) => ({ task_id: { value: t.taskId }, ...(t.agentId ? { agent_id: { value: t.agentId } } : {}) })));
    },
    async reconcileOperations(operations) {
      await client.reconcileOperations(operations.map((o) => ({ operation_id: { value: o.operationId }, ...(o.agentId ? { agent_id: { value: o.agentId } } : {}) })));
    },
    async acceptInverseOffers(ids) {
      await client.call({ type: 'ACCEPT_INVERSE_OFFERS', accept_inverse_offers: { inverse_offer_ids: ids.map((value) => ({ value })) } });
    },
  };
}
