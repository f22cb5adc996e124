/**
 * Small builders for placement table tests: hosts are named `r<rack>-h<n>`
 * so the rack is visible in every test row.
 */
import type { ExecutorView, OfferView, PendingTask, Snapshot, TenantView } from '../../src/scheduler/placement/index.js';
import { PendingIndex } from '../../src/scheduler/placement/index.js';

export const rackOf = (host: string): string => host.split('-')[0] ?? host;

let seq = 0;

/** A pending task; preferred racks follow from preferred hosts unless given. */
export function task(over: Partial<PendingTask> & { readonly preferredHosts?: readonly string[] } = {}): PendingTask {
  const hosts = over.preferredHosts ?? [];
  return {
    taskId: over.taskId ?? `t${++seq}`,
    jobId: 'job1',
    tenant: 'a',
    priority: 0,
    resources: { cpus: 1, mem: 512, disk: 0 },
    preferredRacks: [...new Set(hosts.map(rackOf))],
    pendingSince: 0,
    ...over,
    preferredHosts: hosts,
  };
}

/** An executor with free slots, free since `freeSince` (default: long ago). */
export function exec(host: string, over: Partial<ExecutorView> = {}): ExecutorView {
  return {
    executorId: `e-${host}`,
    agentId: `ag-${host}`,
    hostname: host,
    rack: rackOf(host),
    slotResources: { cpus: 1, mem: 1024, disk: 0 },
    slots: 1,
    freeSlots: 1,
    freeSince: -1_000_000,
    ...over,
  };
}

/** An offer from a host. */
export function offer(host: string, over: Partial<OfferView> = {}): OfferView {
  return {
    offerId: `o-${host}`,
    agentId: `ag-${host}`,
    hostname: host,
    rack: rackOf(host),
    free: { cpus: 8, mem: 16384, disk: 10000 },
    ...over,
  };
}

/** A tenant with no usage. */
export function tenant(name: string, weight = 1, over: Partial<TenantView> = {}): TenantView {
  return { name, weight, usage: { cpus: 0, mem: 0, disk: 0 }, ...over };
}

/** A snapshot at `now`. */
export function snap(now: number, parts: Partial<Omit<Snapshot, 'now'>> = {}): Snapshot {
  return { now, offers: [], executors: [], tenants: [], ...parts };
}

/** An index holding these tasks. */
export function indexOf(tasks: readonly PendingTask[]): PendingIndex {
  const ix = new PendingIndex();
  for (const t of tasks) ix.add(t);
  return ix;
}
