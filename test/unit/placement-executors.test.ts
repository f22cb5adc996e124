import { describe, expect, it } from 'vitest';
import { place, type Plan } from '../../src/scheduler/placement/index.js';
import { exec, indexOf, offer, snap, task, tenant } from './placement-builders.js';

const GiB = 1024 * 1024 * 1024;

/** Every offer appears exactly once: accepted by launches or declined. */
function offersSettled(plan: Plan, offerIds: readonly string[]): void {
  const launched = new Set(plan.launches.map((l) => l.offerId));
  const declined = plan.declines.map((d) => d.offerId);
  expect(new Set(declined).size).toBe(declined.length);
  for (const id of declined) expect(launched.has(id)).toBe(false);
  expect(new Set([...launched, ...declined])).toEqual(new Set(offerIds));
}

describe('executor placement: which offers to accept', () => {
  it('grows executors on the agents holding the most pending input, declines the rest', () => {
    const tasks = [
      ...Array.from({ length: 3 }, (_, i) => task({ taskId: `a${i}`, preferredHosts: ['r1-h1'], inputBytes: GiB })),
      ...Array.from({ length: 2 }, (_, i) => task({ taskId: `b${i}`, preferredHosts: ['r1-h2'], inputBytes: 4 * GiB })),
    ];
    const offers = [offer('r1-h1'), offer('r1-h2'), offer('r2-h9')];
    const plan = place(snap(0, { offers }), indexOf(tasks), { maxLaunchSlotsPerPass: 100 });
    expect(plan.launches.map((l) => [l.hostname, l.slots, l.why])).toEqual([
      ['r1-h2', 2, 'data'], // 8 GiB pending there: first
      ['r1-h1', 3, 'data'],
    ]);
    expect(plan.declines).toEqual([{ offerId: 'o-r2-h9', refuseSeconds: 5 }]);
    offersSettled(plan, offers.map((o) => o.offerId));
    // Launch resources are what the offer must give: slots × slot + overhead, and fit the offer.
    for (const l of plan.launches) {
      expect(l.resources.cpus).toBeCloseTo(l.slots * l.slotResources.cpus + 0.1);
      expect(l.resources.mem).toBe(l.slots * l.slotResources.mem + 128);
    }
  });

  it('does not launch where free executor slots already cover the demand', () => {
    const tasks = [task({ taskId: 'a', preferredHosts: ['r1-h1'] }), task({ taskId: 'b', preferredHosts: ['r1-h1'] })];
    // r1-h1 has an executor with 2 free slots: both tasks are placed there, no new executor.
    const plan = place(snap(0, { offers: [offer('r1-h1')], executors: [exec('r1-h1', { slots: 2, freeSlots: 2 })] }), indexOf(tasks));
    expect(plan.assignments).toHaveLength(2);
    expect(plan.launches).toEqual([]);
    expect(plan.declines).toEqual([{ offerId: 'o-r1-h1', refuseSeconds: 120 }]);
    expect(plan.suppress).toBe(true);
  });

  it('never counts an executor\'s prefetch room as free slots: it launches for work waiting elsewhere', () => {
    // Three tasks wait for node locality on r1-h2, which has an offer; r1-h1's executor is busy
    // (no free slot) but may be sent 5 attempts ahead (dispatchSlots 5). Those places are not
    // slots: they take no work that waits for r1-h2, so they must not cancel its launch.
    const tasks = Array.from({ length: 3 }, (_, i) => task({ taskId: `w${i}`, preferredHosts: ['r1-h2'], pendingSince: 0 }));
    const plan = place(snap(1000, { offers: [offer('r1-h2')], executors: [exec('r1-h1', { slots: 4, freeSlots: 0, dispatchSlots: 5 })] }), indexOf(tasks));
    expect(plan.assignments).toEqual([]);
    expect(plan.launches.map((l) => [l.hostname, l.slots])).toEqual([['r1-h2', 3]]);
    // The free slots left that the plan reports are real ones only.
    expect(plan.stats.freeSlotsLeft).toBe(0);
  });

  it('only launches far from the data for work whose locality wait is over', () => {
    const mk = (): ReturnType<typeof indexOf> => indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'], pendingSince: 0 })]);
    // r1-h1 has a busy executor (the node level is alive); only an offer in another rack.
    const parts = { offers: [offer('r2-h1')], executors: [exec('r1-h1', { freeSlots: 0 })] };
    expect(place(snap(1000, parts), mk()).launches).toEqual([]);
    const later = place(snap(6000, parts), mk());
    expect(later.launches).toEqual([expect.objectContaining({ hostname: 'r2-h1', why: 'any', slots: 1 })]);
  });

  it('a rack-local offer is used once the node wait is over', () => {
    const ix = indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'], pendingSince: 0 })]);
    const plan = place(snap(3000, { offers: [offer('r1-h5'), offer('r2-h1')], executors: [exec('r1-h1', { freeSlots: 0 })] }), ix);
    expect(plan.launches.map((l) => [l.hostname, l.why])).toEqual([['r1-h5', 'rack']]);
  });

  it('launches a dedicated executor with the volume on the agent holding it', () => {
    const ix = indexOf([task({ taskId: 't', tenant: 'b', jobId: 'jb', volumeId: 'vol-7', resources: { cpus: 2, mem: 2048, disk: 0 } })]);
    const plan = place(snap(0, { offers: [offer('r1-h1'), offer('r1-h2', { volumes: ['vol-7'] })] }), ix);
    expect(plan.launches).toEqual([expect.objectContaining({
      hostname: 'r1-h2', volumeId: 'vol-7', tenant: 'b', why: 'volume', slots: 1, slotResources: { cpus: 2, mem: 2048, disk: 0 },
    })]);
  });

  it('adds no demand for a tenant at its quota', () => {
    const ix = indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'] })]);
    const plan = place(snap(0, { offers: [offer('r1-h1')], tenants: [tenant('a', 1, { quota: { cpus: 4 }, usage: { cpus: 4, mem: 0, disk: 0 } })] }), ix);
    expect(plan.launches).toEqual([]);
    expect(plan.declines).toHaveLength(1);
  });

  it('a job too large for its tenant\'s quota does not hold back executors for the tenant\'s other jobs', () => {
    // The oversized job is the tenant's first queue (older); the small one behind it fits the quota.
    const ix = indexOf([
      task({ taskId: 'big', jobId: 'j-big', resources: { cpus: 1.5, mem: 64, disk: 0 } }),
      task({ taskId: 'small', jobId: 'j-small', resources: { cpus: 0.1, mem: 32, disk: 0 } }),
    ]);
    const plan = place(snap(0, { offers: [offer('r1-h1')], tenants: [tenant('a', 1, { quota: { cpus: 1 } })] }), ix);
    expect(plan.launches).toHaveLength(1);
    // Shaped for what fits (the small job), not the oversized one.
    expect(plan.launches[0]?.slotResources.cpus).toBeLessThanOrEqual(1);
  });

  it('never starts executors on agents about to enter maintenance', () => {
    const ix = indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'] })]);
    const plan = place(snap(0, { offers: [offer('r1-h1', { unavailability: { start: 60_000, durationMs: 3_600_000 } })] }), ix);
    expect(plan.launches).toEqual([]);
    expect(plan.declines).toEqual([{ offerId: 'o-r1-h1', refuseSeconds: 120 }]);
  });

  it('caps the slots launched in one pass and the slots per executor', () => {
    const tasks = Array.from({ length: 50 }, (_, i) => task({ taskId: `t${i}`, preferredHosts: [`r1-h${i % 2}`] }));
    const plan = place(snap(0, { offers: [offer('r1-h0', { free: { cpus: 100, mem: 100_000, disk: 0 } }), offer('r1-h1', { free: { cpus: 100, mem: 100_000, disk: 0 } })] }),
      indexOf(tasks), { maxSlotsPerExecutor: 16, maxLaunchSlotsPerPass: 20 });
    expect(plan.launches.map((l) => l.slots)).toEqual([16, 4]);
  });

  it('sizes launches by what the offer holds', () => {
    const tasks = Array.from({ length: 10 }, (_, i) => task({ taskId: `t${i}`, preferredHosts: ['r1-h1'] }));
    const plan = place(snap(0, { offers: [offer('r1-h1', { free: { cpus: 3.1, mem: 8192, disk: 0 } })] }), indexOf(tasks));
    expect(plan.launches.map((l) => l.slots)).toEqual([3]);
  });
});

describe('executor placement: release, suppress, revive', () => {
  it('releases executors idle past the timeout and drained ones', () => {
    const plan = place(snap(100_000, {
      executors: [
        exec('r1-h1', { executorId: 'old', idleSince: 30_000 }),
        exec('r1-h2', { executorId: 'recent', idleSince: 90_000 }),
        exec('r1-h3', { executorId: 'busy', slots: 2, freeSlots: 1, idleSince: undefined }),
        exec('r1-h4', { executorId: 'drained', draining: true, idleSince: 99_000 }),
      ],
    }), indexOf([]));
    expect(plan.releases).toEqual([
      { executorId: 'drained', reason: 'drained' },
      { executorId: 'old', reason: 'idle' },
    ]);
  });

  it('does not release an idle executor that gets a task in this pass', () => {
    const plan = place(snap(100_000, { executors: [exec('r1-h1', { executorId: 'old', idleSince: 0 })] }), indexOf([task({ taskId: 't' })]));
    expect(plan.assignments).toHaveLength(1);
    expect(plan.releases).toEqual([]);
  });

  it.each([
    { name: 'nothing pending: suppress', tasks: 0, suppressed: false, last: undefined, suppress: true, revive: false },
    { name: 'work while suppressed: revive', tasks: 1, suppressed: true, last: undefined, suppress: false, revive: true },
    { name: 'revive is rate limited', tasks: 1, suppressed: true, last: 8000, suppress: false, revive: false },
    { name: 'revive again after the interval', tasks: 1, suppressed: true, last: 4000, suppress: false, revive: true },
    { name: 'not suppressed: no revive needed', tasks: 1, suppressed: false, last: undefined, suppress: false, revive: false },
  ])('$name', ({ tasks, suppressed, last, suppress, revive }) => {
    const ix = indexOf(Array.from({ length: tasks }, (_, i) => task({ taskId: `t${i}`, preferredHosts: ['r1-h1'] })));
    const plan = place(snap(10_000, { suppressed, ...(last === undefined ? {} : { lastReviveAt: last }) }), ix);
    expect({ suppress: plan.suppress, revive: plan.revive }).toEqual({ suppress, revive });
  });
});
