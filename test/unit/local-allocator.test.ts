/** The local master's allocation pass: DRF order, roles, reservations, filters, suppression. */
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../src/mesos/types.js';
import { allocatePass, dominantShare, type AllocationFramework } from '../../src/local/master/allocator.js';
import { parseResourceString } from '../../src/local/resources.js';

const agentRes = parseResourceString('cpus:2;mem:4096;disk:1000');
const agents = [1, 2, 3, 4].map((i) => ({ id: `a${i}`, available: agentRes }));
const total = agents.flatMap((a) => a.available);
const fw = (id: string, extra: Partial<AllocationFramework> = {}): AllocationFramework => ({ id, roles: ['r'], suppressed: new Set(), filters: [], allocated: [], ...extra });

describe('local allocator', () => {
  it('alternates agents between equal frameworks (DRF) and favours the one with the lower share', () => {
    const grants = allocatePass(agents, [fw('f1'), fw('f2')], total, 0);
    expect(grants.map((g) => g.frameworkId)).toEqual(['f1', 'f2', 'f1', 'f2']);
    const busy = parseResourceString('cpus:4;mem:100');
    const skewed = allocatePass(agents, [fw('f1', { allocated: busy }), fw('f2')], total, 0);
    expect(skewed.filter((g) => g.frameworkId === 'f2').length).toBe(3);
    expect(dominantShare(busy, total)).toBeCloseTo(0.5);
  });

  it('honours suppression, refuse filters and minimum allocatable resources', () => {
    expect(allocatePass(agents, [fw('f1', { suppressed: new Set(['r']) })], total, 0)).toEqual([]);
    const filters = [{ agentId: 'a1', role: 'r', resources: agentRes, until: 1000 }];
    expect(allocatePass(agents, [fw('f1', { filters })], total, 500).map((g) => g.agentId)).toEqual(['a2', 'a3', 'a4']);
    expect(allocatePass(agents, [fw('f1', { filters })], total, 1500)).toHaveLength(4);
    expect(allocatePass([{ id: 'x', available: parseResourceString('disk:100') }], [fw('f1')], total, 0)).toEqual([]);
  });

  it('offers reserved resources only to their role, with allocation info', () => {
    const reserved: Resource = { name: 'cpus', type: 'SCALAR', scalar: { value: 1 }, reservations: [{ type: 'DYNAMIC', role: 'r2' }] };
    const one = [{ id: 'a1', available: [...agentRes, reserved] }];
    const grants = allocatePass(one, [fw('f1'), fw('f2', { roles: ['r2'] })], total, 0);
    const g2 = grants.find((g) => g.frameworkId === 'f2');
    expect(g2?.resources.some((r) => r.reservations?.[0]?.role === 'r2' && r.allocation_info?.role === 'r2')).toBe(true);
    const g1 = grants.find((g) => g.frameworkId === 'f1');
    expect(g1?.resources.some((r) => r.reservations !== undefined)).toBe(false);
  });
});
