/**
 * Executors sized to the work: a task takes the resources it asks for, an
 * offer grows executors to all the room pending work can use in one pass,
 * small tasks pack, large ones still fit, and work of one kind (a job too big
 * for any agent, volume operations) never holds back another.
 */
import { describe, expect, it } from 'vitest';
import { place } from '../../src/scheduler/placement/index.js';
import { exec, indexOf, offer, snap, task } from './placement-builders.js';

const small = { cpus: 0.1, mem: 64, disk: 0 };
const agent2 = { cpus: 2, mem: 4096, disk: 20480 };

describe('executors sized to the tasks', () => {
  it('grows one executor to as many 0.1-cpu slots as a 2-cpu offer holds, in one pass', () => {
    const tasks = Array.from({ length: 100 }, (_, i) => task({ taskId: `t${i}`, resources: small }));
    const plan = place(snap(0, { offers: [offer('r1-h1', { free: agent2 })] }), indexOf(tasks));
    // 2 cpus less the executor's 0.1 overhead hold 19 slots of 0.1 cpu.
    expect(plan.launches.map((l) => [l.slots, l.slotResources])).toEqual([[19, small]]);
    const l = plan.launches[0];
    expect(l?.resources.cpus).toBeCloseTo(19 * 0.1 + 0.1);
    expect(l?.resources.mem).toBe(19 * 64 + 128);
    expect(plan.declines).toEqual([]);
  });

  it('a launched executor of small slots then takes that many tasks at once', () => {
    const tasks = Array.from({ length: 100 }, (_, i) => task({ taskId: `t${i}`, resources: small }));
    const x = exec('r1-h1', { slotResources: small, slots: 19, freeSlots: 19 });
    const plan = place(snap(0, { executors: [x] }), indexOf(tasks));
    expect(plan.assignments).toHaveLength(19);
  });

  it('shares one offer between a small and a large shape: small ones pack, the large one still fits', () => {
    const big = { cpus: 1.5, mem: 1024, disk: 0 };
    const tasks = [
      ...Array.from({ length: 50 }, (_, i) => task({ taskId: `s${i}`, jobId: 'small', resources: small, pendingSince: 0 })),
      ...Array.from({ length: 3 }, (_, i) => task({ taskId: `b${i}`, jobId: 'big', resources: big, pendingSince: 1 })),
    ];
    const plan = place(snap(10, { offers: [offer('r1-h1', { free: { cpus: 4, mem: 8192, disk: 0 } })] }), indexOf(tasks));
    const byShape = new Map(plan.launches.map((l) => [l.slotResources.cpus, l]));
    expect(byShape.get(1.5)?.slots).toBeGreaterThanOrEqual(1);
    expect(byShape.get(0.1)?.slots).toBeGreaterThanOrEqual(5);
    // Everything launched fits the offer.
    const cpus = plan.launches.reduce((a, l) => a + l.resources.cpus, 0);
    expect(cpus).toBeLessThanOrEqual(4 + 1e-9);
    expect(plan.launches.every((l) => l.offerId === 'o-r1-h1')).toBe(true);
    expect(new Set(plan.launches.map((l) => l.executorId)).size).toBe(plan.launches.length);
  });

  it('a job too large for any offer does not hold back the ordinary jobs on the same agent', () => {
    const tasks = [
      task({ taskId: 'huge', jobId: 'huge', resources: { cpus: 64, mem: 1024, disk: 0 }, preferredHosts: ['r1-h1'], pendingSince: 0 }),
      ...Array.from({ length: 3 }, (_, i) => task({ taskId: `o${i}`, jobId: 'ordinary', resources: { cpus: 0.5, mem: 256, disk: 0 }, preferredHosts: ['r1-h1'], pendingSince: 5 })),
    ];
    const plan = place(snap(10, { offers: [offer('r1-h1', { free: agent2 })] }), indexOf(tasks));
    expect(plan.launches.map((l) => [l.slots, l.slotResources.cpus])).toEqual([[3, 0.5]]);
  });

  it('a job too large for any offer does not stop ripe work elsewhere either', () => {
    const tasks = [
      task({ taskId: 'huge', jobId: 'huge', resources: { cpus: 64, mem: 1024, disk: 0 }, pendingSince: 0 }),
      task({ taskId: 'o1', jobId: 'ordinary', resources: { cpus: 0.5, mem: 256, disk: 0 }, pendingSince: 5 }),
    ];
    const plan = place(snap(10, { offers: [offer('r1-h1', { free: agent2 }), offer('r2-h1', { free: agent2 })] }), indexOf(tasks));
    expect(plan.launches.map((l) => [l.slots, l.slotResources.cpus])).toEqual([[1, 0.5]]);
    expect(plan.suppress).toBe(false);
  });

  it('releases an idle executor whose slots are too small for the waiting work when its room would fit it', () => {
    const big = { cpus: 1.5, mem: 1024, disk: 0 };
    const tasks = [task({ taskId: 'b', jobId: 'big', resources: big, pendingSince: 0 })];
    const idle = exec('r1-h1', { executorId: 'small-idle', slotResources: small, slots: 19, freeSlots: 19, idleSince: 5_000, freeSince: 5_000 });
    // The agent's remaining offer (0.0 cpu left) is too small alone; with the idle executor's room it fits.
    const plan = place(snap(10_000, { executors: [idle], offers: [offer('r1-h1', { free: { cpus: 0, mem: 1000, disk: 0 } })] }), indexOf(tasks));
    expect(plan.releases).toEqual([{ executorId: 'small-idle', reason: 'idle' }]);
  });

  it('keeps an idle executor whose room the waiting work may not use (pinned to another host): it may serve that work\'s input', () => {
    const big = { cpus: 1.5, mem: 1024, disk: 0 };
    const pinned = [task({ taskId: 'p', jobId: 'pinned', resources: big, pendingSince: 0, constraints: [{ kind: 'hostname', equals: 'r2-h1' }] })];
    const idle = exec('r1-h1', { executorId: 'small-idle', slotResources: small, slots: 19, freeSlots: 19, idleSince: 5_000, freeSince: 5_000 });
    const offers = [offer('r1-h1', { free: { cpus: 0, mem: 1000, disk: 0 } })];
    expect(place(snap(10_000, { executors: [idle], offers }), indexOf(pinned)).releases).toEqual([]);
    // The same work free to run anywhere: the room is made.
    const free = [task({ taskId: 'f', jobId: 'free', resources: big, pendingSince: 0 })];
    expect(place(snap(10_000, { executors: [idle], offers }), indexOf(free)).releases).toEqual([{ executorId: 'small-idle', reason: 'idle' }]);
  });

  it('keeps an idle executor that cannot make room for the waiting work (too big for the agent)', () => {
    const tasks = [task({ taskId: 'huge', resources: { cpus: 64, mem: 1024, disk: 0 }, pendingSince: 0 })];
    const idle = exec('r1-h1', { executorId: 'small-idle', slotResources: small, slots: 19, freeSlots: 19, idleSince: 5_000, freeSince: 5_000 });
    const plan = place(snap(10_000, { executors: [idle] }), indexOf(tasks));
    expect(plan.releases).toEqual([]);
  });

  it('keeps an idle executor that fits the waiting work (it waits for locality, not for room)', () => {
    const tasks = [task({ taskId: 'w', resources: small, preferredHosts: ['r2-h1'], pendingSince: 9_000 })];
    const idle = exec('r1-h1', { executorId: 'fits', slotResources: small, slots: 4, freeSlots: 4, idleSince: 5_000, freeSince: 9_500 });
    const plan = place(snap(10_000, { executors: [idle, exec('r2-h1', { freeSlots: 0 })] }), indexOf(tasks));
    expect(plan.assignments).toEqual([]);
    expect(plan.releases).toEqual([]);
  });
});

describe('offer flow with work of several kinds', () => {
  it('volume work keeps offers coming: no suppress, short filters', () => {
    const plan = place(snap(0, { offers: [offer('r1-h1')], otherWork: true }), indexOf([]));
    expect(plan.suppress).toBe(false);
    expect(plan.declines).toEqual([{ offerId: 'o-r1-h1', refuseSeconds: 5 }]);
  });

  it('volume work while suppressed revives', () => {
    const plan = place(snap(10_000, { suppressed: true, otherWork: true }), indexOf([]));
    expect(plan.revive).toBe(true);
  });

  it('offers parked before new work arrived are revived at once, inside the rate limit', () => {
    const ix = (): ReturnType<typeof indexOf> => indexOf([task({ taskId: 't' })]);
    // Revived 1 s ago: the level-triggered revive waits, the parked one does not.
    expect(place(snap(10_000, { suppressed: true, lastReviveAt: 9_000 }), ix()).revive).toBe(false);
    expect(place(snap(10_000, { suppressed: false, lastReviveAt: 9_000, offersParked: true }), ix()).revive).toBe(true);
    // Nothing waiting: nothing to revive for.
    expect(place(snap(10_000, { offersParked: true }), indexOf([])).revive).toBe(false);
  });
});

describe('executors holding a volume', () => {
  it('an idle volume executor too small for the volume tasks that wait gives the volume back', () => {
    const x = exec('r1-h1', { executorId: 'vol-small', slotResources: small, slots: 1, freeSlots: 1, volumes: ['vol-1'], tenant: 'a', idleSince: 5_000, freeSince: 5_000 });
    const big = task({ taskId: 'v', volumeId: 'vol-1', resources: { cpus: 1, mem: 512, disk: 0 } });
    const plan = place(snap(10_000, { executors: [x] }), indexOf([big]));
    expect(plan.assignments).toEqual([]);
    expect(plan.releases).toEqual([{ executorId: 'vol-small', reason: 'idle' }]);
  });

  it('keeps an idle volume executor whose waiting task avoids its host, and gives it the task (the volume pins it there)', () => {
    const x = exec('r1-h1', { executorId: 'vol-fits', slotResources: small, slots: 1, freeSlots: 1, volumes: ['vol-1'], tenant: 'a', idleSince: 5_000, freeSince: 5_000 });
    const avoided = task({ taskId: 'v', volumeId: 'vol-1', resources: small, avoidHosts: ['r1-h1'] });
    const plan = place(snap(10_000, { executors: [x] }), indexOf([avoided]));
    expect(plan.assignments.map((a) => a.executorId)).toEqual(['vol-fits']);
    expect(plan.releases).toEqual([]);
  });
});
