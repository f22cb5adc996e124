/**
 * "Why is my task pending?" for one task, computed from the same snapshot
 * and the same checks a pass uses, in the order a pass applies them: quota,
 * volume, hard constraints, capacity, locality. It looks at every executor
 * and offer once (explain is asked for one task at a time, so a scan is
 * fine here, unlike in a pass).
 */
import { LocalityLevel } from '../../core/locality.js';
import { formatMiB } from '../../core/units.js';
import { resolveOptions } from './options.js';
import { awaitingDataMessage, offerCouldRun, Pass } from './pass.js';
import type { PendingIndex } from './pending-index.js';
import type { PendingTask, PlacementOptions, Reason, ReasonCode, Snapshot } from './types.js';

function reason(taskId: string, code: ReasonCode, message: string, until?: number): Reason {
  return until === undefined ? { taskId, code, message } : { taskId, code, message, until };
}

/** Explain why a pending task is not running (NOT_PENDING if it is not in the index). */
export function explain(taskId: string, snapshot: Snapshot, index: PendingIndex, options?: Partial<PlacementOptions>): Reason {
  const t = index.get(taskId);
  if (!t) return reason(taskId, 'NOT_PENDING', 'the task is not pending');
  const opts = resolveOptions(options);
  const pass = new Pass(snapshot, index, opts);
  const why = explainWith(pass, t, opts);
  // A pass uses avoided hosts when no other live host could run the task: whatever holds it
  // back now, the user is told it will run on a host it avoids.
  if (why.code === 'OVER_QUOTA' || !pass.avoidanceWaived(t)) return why;
  return { ...why, message: `${why.message}; every live host that could run it is one it avoids (${(t.avoidHosts ?? []).join(', ')}), so it runs on one of them` };
}

function explainWith(pass: Pass, t: PendingTask, opts: PlacementOptions): Reason {
  const { snapshot } = pass;
  const taskId = t.taskId;
  const tenant = pass.tenant(t.tenant);
  if (!pass.withinQuota(tenant, t.resources)) {
    // A task larger than the whole quota waits for nothing that will come (a job accepted before
    // its tenant's quota was lowered; submission refuses new ones): saying the tenant's running
    // tasks must finish first sent people waiting on a tenant that held nothing.
    const q = tenant.quota ?? {};
    const over = (['cpus', 'mem', 'disk'] as const).find((k) => { const limit = q[k]; return limit !== undefined && t.resources[k] > limit + 1e-9; });
    if (over !== undefined) {
      return reason(taskId, 'OVER_QUOTA', `it asks ${sizeOf(t.resources)}, more ${over} than tenant ${t.tenant}'s whole quota of ${over === 'cpus' ? String(q[over]) : formatMiB(q[over] ?? 0)}: it can never start; cancel the job and submit it with smaller resources, or raise the quota`);
    }
    return reason(taskId, 'OVER_QUOTA', `tenant ${t.tenant} holds its whole quota (${sizeOf(tenant.usage)} in use); the task starts when its running tasks finish`);
  }

  const usableOffers = snapshot.offers.filter((o) => pass.offerUsable(o.unavailability));

  if (t.volumeId !== undefined && pass.volumeGone(t.volumeId)) {
    return reason(taskId, 'VOLUME_DELETED', `volume ${t.volumeId}, which the task mounts, is being deleted (or was): the task can never run, and its job fails`);
  }
  if (t.volumeId !== undefined) {
    const v = t.volumeId;
    const loc = snapshot.volumes?.get(v);
    const execs = pass.execs.filter((x) => x.volumes.includes(v));
    const offers = usableOffers.filter((o) => o.volumes?.includes(v));
    const drained = snapshot.executors.some((e) => e.draining && e.volumes?.includes(v))
      || snapshot.offers.some((o) => o.volumes?.includes(v) && !pass.offerUsable(o.unavailability))
      || (loc?.unavailability !== undefined && !pass.offerUsable(loc.unavailability));
    if (execs.length === 0 && offers.length === 0) {
      if (drained) {
        return reason(taskId, 'VOLUME_AGENT_UNAVAILABLE', `the agent holding volume ${v}${loc ? ` (${loc.hostname})` : ''} is under maintenance`);
      }
      return reason(taskId, 'NO_OFFER_FROM_VOLUME_AGENT', `no offer from the agent holding volume ${v}${loc ? ` (${loc.hostname})` : ''}`);
    }
  }

  const feasible = pass.execs.filter((x) => pass.hardFits(t, x));
  // A volume-pinned task ignores avoided hosts (Pass.hardFits): its volume's agent is its only host.
  // Any task does when only hosts it avoids could run it (Pass.avoidanceWaived).
  const ignoreAvoid = t.volumeId !== undefined || pass.avoidanceWaived(t);
  const feasibleOffers = usableOffers.filter((o) => (ignoreAvoid || !(t.avoidHosts?.includes(o.hostname) ?? false))
    && offerCouldRun(t, o, opts) && (t.volumeId === undefined || (o.volumes?.includes(t.volumeId) ?? false)));
  if (feasible.length === 0 && feasibleOffers.length === 0) {
    // Relax one hard rule at a time (only to name the rule that blocks; a pass never does).
    // Avoided hosts need no relaxing: with nothing else able to run the task they are used.
    const somewhere = (u: PendingTask): boolean => pass.execs.some((x) => pass.hardFits(u, x))
      || usableOffers.some((o) => offerCouldRun(u, o, opts));
    if ((t.constraints?.length ?? 0) > 0 && somewhere({ ...t, constraints: [], avoidHosts: [] })) {
      return reason(taskId, 'CONSTRAINT_UNMET', 'no executor or offer satisfies its constraints');
    }
    if (t.preferredHosts.length > 0 && !pass.someHostUsable(t)) {
      return reason(taskId, 'NO_OFFER_FROM_DATA_HOSTS', `no executor or offer on its data hosts (${t.preferredHosts.join(', ')})`);
    }
    return reason(taskId, 'NO_CAPACITY', `no executor slot or offer is large enough for it: it asks ${sizeOf(t.resources)} (an offer must also hold a new executor's ${sizeOf(opts.executorOverhead)}); ${largestOf(pass, usableOffers)}`);
  }

  const free = feasible.filter((x) => x.free > 0);
  const head = pass.headTenant() === t.tenant;
  let until = Infinity;
  let nodeOnly = false;
  for (const x of free) {
    const level = pass.levelOf(t, x);
    if (pass.allowed(t, level, x, head)) {
      return reason(taskId, 'PLACEABLE', `a free slot on ${x.view.hostname} can run it; the next pass places it unless tasks ahead of it take the slot`);
    }
    const need = pass.waitNeeded(t, level);
    if (need === Infinity) nodeOnly = true;
    // A task waiting for its data hosts waits its own wait, whatever idles (Pass.allowed).
    else if (t.awaitDataHosts === true) until = Math.min(until, t.pendingSince + need);
    else until = Math.min(until, pass.now + need - x.idleMs, head ? t.pendingSince + need : Infinity);
  }
  if (until !== Infinity && t.awaitDataHosts === true) {
    return reason(taskId, 'WAITING_FOR_LOCALITY', awaitingDataMessage(t, until), until);
  }
  if (until !== Infinity) {
    return reason(taskId, 'WAITING_FOR_LOCALITY', `waiting for a slot on its data hosts until ${until}, then a less local slot`, until);
  }
  if (nodeOnly) return reason(taskId, 'NODE_ONLY', 'the job runs node-local only and no slot on its data hosts is free');
  if (t.preferredHosts.length > 0 && !pass.someHostUsable(t)) {
    return reason(taskId, 'NO_OFFER_FROM_DATA_HOSTS', `no executor or offer on its data hosts (${t.preferredHosts.join(', ')})`);
  }
  if (!head && feasible.some((x) => pass.levelOf(t, x) === LocalityLevel.NODE_LOCAL)) {
    return reason(taskId, 'FAIR_SHARE', 'its executors are busy with tenants that hold less than their share');
  }
  // Free slots only the dispatch window holds back: they open as the executors' queued attempts start.
  if (feasible.some((x) => x.held > 0)) {
    return reason(taskId, 'DISPATCH_WINDOW', 'the executors that can run it have free slots, held back by the dispatch window while their queued attempts wait to start');
  }
  return reason(taskId, 'NO_CAPACITY', 'every slot that can run it is busy');
}

/** A task's resources as an answer names them. */
function sizeOf(r: { readonly cpus: number; readonly mem: number; readonly disk: number }): string {
  return `${r.cpus} cpus, ${formatMiB(r.mem)} of memory, ${formatMiB(r.disk)} of disk`;
}

/**
 * The largest slot and offer there are now, so a task that can never fit says by how much (a
 * task asking 1000 cpus of 2-cpu agents waited with no number to go on).
 */
function largestOf(pass: Pass, offers: readonly { readonly free: { readonly cpus: number; readonly mem: number; readonly disk: number } }[]): string {
  const most = (xs: readonly { readonly cpus: number; readonly mem: number; readonly disk: number }[]): string | undefined => (xs.length === 0 ? undefined
    : `${Math.max(...xs.map((x) => x.cpus))} cpus, ${formatMiB(Math.max(...xs.map((x) => x.mem)))}, ${formatMiB(Math.max(...xs.map((x) => x.disk)))}`);
  const slot = most(pass.execs.map((x) => x.view.slotResources));
  const offer = most(offers.map((o) => o.free));
  // Each resource's most, maybe from different slots or offers.
  const parts = [...(slot ? [`executor slots hold at most ${slot}`] : []), ...(offer ? [`offers at most ${offer}`] : [])];
  return parts.length > 0 ? parts.join(', ') : 'no executor or offer is there now';
}
