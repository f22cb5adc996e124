/**
 * A volume-pinned task on a cluster of one agent (cpus:2;mem:2048;disk:4096),
 * after an attempt failed there: its volume's agent is also a host it avoids.
 * Placement used to launch a volume executor for it, never give it the task
 * (the avoided host), give the executor back and launch another, for ever.
 */
import { describe, expect, it } from 'vitest';
import { place } from '../../src/scheduler/placement/index.js';
import type { ExecutorLaunch, ExecutorView, PlacementOptions } from '../../src/scheduler/placement/index.js';
import { exec, indexOf, offer, snap, task, tenant } from './placement-builders.js';

const agent = { cpus: 2, mem: 2048, disk: 4096 };
const size = { cpus: 0.2, mem: 64, disk: 16 };
const opts: Partial<PlacementOptions> = { idleTimeoutMs: 2000, defaultLocality: { mode: 'wait', nodeWaitMs: 0, rackWaitMs: 0 } };

/** The executor the coordinator records for a launch, as its next snapshot shows it (launching, idle since the launch). */
function launched(l: ExecutorLaunch, at: number, over: Partial<ExecutorView> = {}): ExecutorView {
  return exec(l.hostname, {
    executorId: l.executorId, agentId: l.agentId, slotResources: l.slotResources, slots: l.slots, freeSlots: l.slots,
    volumes: l.volumeId === undefined ? [] : [l.volumeId], ...(l.tenant === undefined ? {} : { tenant: l.tenant }),
    freeSince: at, idleSince: at, launching: true, ...over,
  });
}

describe('a volume task on one agent: no executor churn', () => {
  it('the volume executor launched for a task that failed on the volume\'s agent takes it, and is not given back', () => {
    const retry = () => task({ taskId: 'w', tenant: 'default', jobId: 'write', volumeId: 'vol-1', resources: size, avoidHosts: ['r1-h1'], pendingSince: 5_000 });
    const first = place(snap(10_000, { offers: [offer('r1-h1', { free: agent, volumes: ['vol-1'] })] }), indexOf([retry()]), opts);
    expect(first.launches).toHaveLength(1);
    const l = first.launches[0] as ExecutorLaunch;
    expect(l).toMatchObject({ why: 'volume', volumeId: 'vol-1', slots: 1, slotResources: size });

    // 1.5 s later, not registered yet: the task goes to it (it waits in the runtime until the executor registers).
    const second = place(snap(11_500, { executors: [launched(l, 10_000)] }), indexOf([retry()]), opts);
    expect(second.assignments.map((a) => [a.taskId, a.executorId])).toEqual([['w', l.executorId]]);
    expect(second.releases).toEqual([]);
    expect(second.launches).toEqual([]);
  });

  it('a launching executor that waiting work can use is kept past the idle timeout until it has registered', () => {
    // The tenant is at its quota, so the volume task cannot start this pass; it can once a slot frees.
    const atQuota = [tenant('a', 1, { quota: { cpus: 1 }, usage: { cpus: 1, mem: 0, disk: 0 } })];
    const t = task({ taskId: 'v', volumeId: 'vol-1', resources: size });
    const l = place(snap(0, { offers: [offer('r1-h1', { free: agent, volumes: ['vol-1'] })] }), indexOf([t]), opts).launches[0] as ExecutorLaunch;
    expect(l).toBeDefined();
    const x = launched(l, 0);
    const plan = place(snap(3_000, { executors: [x], tenants: atQuota }), indexOf([t]), opts);
    expect(plan.assignments).toEqual([]);
    expect(plan.releases).toEqual([]);
    // Once registered, the idle timeout applies as to any executor.
    const registered = place(snap(3_000, { executors: [{ ...x, launching: false }], tenants: atQuota }), indexOf([t]), opts);
    expect(registered.releases).toEqual([{ executorId: l.executorId, reason: 'idle' }]);
  });

  it('a launching executor no waiting work can use still goes at the idle timeout', () => {
    const x = exec('r1-h1', { executorId: 'lonely', volumes: ['vol-1'], tenant: 'a', freeSince: 0, idleSince: 0, launching: true });
    expect(place(snap(3_000, { executors: [x] }), indexOf([]), opts).releases).toEqual([{ executorId: 'lonely', reason: 'idle' }]);
  });
});
