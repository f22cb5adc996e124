/**
 * The allocation decision of the local master, pure: agents with their
 * available resources, frameworks with roles, suppression, refuse filters
 * and current usage, and the time → the offers to make. Like the
 * hierarchical allocator: frameworks are visited in DRF order (lowest
 * dominant share first, re-sorted after every grant), each (framework, role)
 * gets the role's reserved resources plus what is unreserved on an agent,
 * filtered offers are skipped, and grants below the minimum allocatable
 * resources (cpus:0.01 | mem:32) are not made.
 */
import type { Resource } from '../../mesos/types.js';
import { add, allocate, contains, reservedFor, scalar, subtract, unreserved } from '../resources.js';
import type { OfferFilter } from './model.js';

/** An agent's view for one allocation pass. */
export interface AllocationAgent {
  readonly id: string;
  /** Unallocated resources not used and not offered. */
  readonly available: readonly Resource[];
}

/** A framework's view for one allocation pass. */
export interface AllocationFramework {
  readonly id: string;
  readonly roles: readonly string[];
  readonly suppressed: ReadonlySet<string>;
  readonly filters: readonly OfferFilter[];
  /** Resources used and offered now (for DRF). */
  readonly allocated: readonly Resource[];
}

/** One grant: becomes one offer. */
export interface Grant {
  readonly frameworkId: string;
  readonly agentId: string;
  readonly role: string;
  /** Allocated resources (allocation_info set). */
  readonly resources: readonly Resource[];
}

const DRF_NAMES = ['cpus', 'mem', 'disk'] as const;

/** The dominant share of `used` within `total` over cpus, mem and disk. */
export function dominantShare(used: readonly Resource[], total: readonly Resource[]): number {
  let share = 0;
  for (const n of DRF_NAMES) {
    const t = scalar(total, n);
    if (t > 0) share = Math.max(share, scalar(used, n) / t);
  }
  return share;
}

function allocatable(resources: readonly Resource[]): boolean {
  return scalar(resources, 'cpus') >= 0.01 || scalar(resources, 'mem') >= 32;
}

function filtered(filters: readonly OfferFilter[], agentId: string, role: string, offerable: readonly Resource[], now: number): boolean {
  return filters.some((f) => f.until > now && f.agentId === agentId && f.role === role && contains(f.resources, offerable));
}

/** Decide the grants of one allocation pass. `rotation` varies the agent order between passes. */
export function allocatePass(agents: readonly AllocationAgent[], frameworks: readonly AllocationFramework[], clusterTotal: readonly Resource[], now: number, rotation = 0): Grant[] {
  const grants: Grant[] = [];
  const usage = new Map(frameworks.map((f) => [f.id, [...f.allocated]]));
  const n = agents.length;
  for (let k = 0; k < n; k++) {
    const agent = agents[(k + rotation) % n];
    if (!agent) continue;
    let remaining: readonly Resource[] = agent.available;
    const order = [...frameworks].sort((a, b) => dominantShare(usage.get(a.id) ?? [], clusterTotal) - dominantShare(usage.get(b.id) ?? [], clusterTotal) || a.id.localeCompare(b.id));
    for (const fw of order) {
      for (const role of fw.roles) {
        if (fw.suppressed.has(role)) continue;
        const offerable = add(reservedFor(remaining, role), unreserved(remaining));
        if (offerable.length === 0 || !allocatable(offerable)) continue;
        if (filtered(fw.filters, agent.id, role, offerable, now)) continue;
        grants.push({ frameworkId: fw.id, agentId: agent.id, role, resources: allocate(offerable, role) });
        remaining = subtract(remaining, offerable) ?? [];
        usage.set(fw.id, add(usage.get(fw.id) ?? [], offerable));
      }
    }
  }
  return grants;
}
