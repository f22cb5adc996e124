import { describe, expect, it } from 'vitest';
import { LocalityLevel } from '../../src/core/locality.js';
import { place, type PendingTask, type Plan, type Snapshot } from '../../src/scheduler/placement/index.js';
import { exec, indexOf, offer, snap, task, tenant } from './placement-builders.js';

const where = (plan: Plan): Record<string, string> =>
  Object.fromEntries(plan.assignments.map((a) => [a.taskId, a.hostname]));
const levels = (plan: Plan): Record<string, number> =>
  Object.fromEntries(plan.assignments.map((a) => [a.taskId, a.level]));

describe('placement: locality order', () => {
  it.each([
    // [free executors, expected host, expected level]
    { name: 'node-local first', execs: ['r2-h9', 'r1-h2', 'r1-h1'], host: 'r1-h1', level: LocalityLevel.NODE_LOCAL },
    { name: 'then rack-local', execs: ['r2-h9', 'r1-h2'], host: 'r1-h2', level: LocalityLevel.RACK_LOCAL },
    { name: 'then any', execs: ['r2-h9'], host: 'r2-h9', level: LocalityLevel.ANY },
  ])('$name', ({ execs, host, level }) => {
    const ix = indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'] })]);
    // r1-h1 always has an executor (busy unless listed) so the node level is not empty.
    const all = execs.includes('r1-h1') ? execs.map((h) => exec(h)) : [...execs.map((h) => exec(h)), exec('r1-h1', { freeSlots: 0 })];
    const plan = place(snap(10_000, { executors: all }), ix);
    expect(plan.assignments).toHaveLength(1);
    expect(plan.assignments[0]).toMatchObject({ taskId: 't', hostname: host, level });
  });

  it('fills every slot with node-local work before any slot takes remote work', () => {
    // Executors are visited in order: r1-h1 first. A slot-by-slot greedy would let r1-h1 take t2 (remote to it)
    // before r2-h5 gets its only local task.
    const ix = indexOf([
      task({ taskId: 't1', preferredHosts: ['r1-h1'] }),
      task({ taskId: 't2', preferredHosts: ['r2-h5'] }),
    ]);
    const plan = place(snap(10_000, { executors: [exec('r1-h1', { slots: 2, freeSlots: 2 }), exec('r2-h5')] }), ix);
    expect(where(plan)).toEqual({ t1: 'r1-h1', t2: 'r2-h5' });
    expect(plan.stats.nodeLocal).toBe(2);
  });

  it('trades placements so more tasks end node-local (augmenting path)', () => {
    // r1-h1 takes a first (FIFO); b can only be local on r1-h1; r1-h2 would stay empty.
    const ix = indexOf([
      task({ taskId: 'a', preferredHosts: ['r1-h1', 'r1-h2'] }),
      task({ taskId: 'b', preferredHosts: ['r1-h1'] }),
    ]);
    const plan = place(snap(0, { executors: [exec('r1-h1', { freeSince: 0 }), exec('r1-h2', { freeSince: 0 })] }), ix);
    expect(where(plan)).toEqual({ a: 'r1-h2', b: 'r1-h1' });
    expect(plan.stats.nodeLocal).toBe(2);
  });
});

describe('placement: tasks pinned to a host', () => {
  const pinned = (taskId: string, host: string, over: Partial<PendingTask> = {}): PendingTask =>
    task({ taskId, preferredHosts: [], constraints: [{ kind: 'hostname', equals: host }], ...over });

  it('a host\'s last slots go to the tasks pinned to it, even when tasks that could run elsewhere came first', () => {
    // One job: u1 and u2 prefer r1-h1 (and came first), p1 and p2 may run only there. r1-h1 has two
    // slots, r2-h5 two more: all four fit only if the pinned tasks get r1-h1's.
    const ix = indexOf([
      task({ taskId: 'u1', preferredHosts: ['r1-h1'] }),
      task({ taskId: 'u2', preferredHosts: ['r1-h1'] }),
      pinned('p1', 'r1-h1'),
      pinned('p2', 'r1-h1'),
    ]);
    const plan = place(snap(60_000, { executors: [exec('r1-h1', { slots: 2, freeSlots: 2, freeSince: 0 }), exec('r2-h5', { slots: 2, freeSlots: 2, freeSince: 0 })] }), ix);
    expect(where(plan)).toEqual({ p1: 'r1-h1', p2: 'r1-h1', u1: 'r2-h5', u2: 'r2-h5' });
  });

  it('across jobs and tenants too: the fairer job\'s movable task does not take the pinned task\'s only host', () => {
    // Tenant b is far behind a (fairness prefers b's job), but b's task can run on r2-h5.
    const ix = indexOf([
      task({ taskId: 'b1', jobId: 'jb', tenant: 'b', preferredHosts: ['r1-h1'] }),
      pinned('a1', 'r1-h1', { jobId: 'ja', tenant: 'a' }),
    ]);
    const tenants = [tenant('a', 1, { usage: { cpus: 50, mem: 0, disk: 0 } }), tenant('b')];
    const plan = place(snap(60_000, { tenants, executors: [exec('r1-h1', { freeSince: 0 }), exec('r2-h5', { freeSince: 0 })] }), ix);
    expect(where(plan)).toEqual({ a1: 'r1-h1', b1: 'r2-h5' });
  });

  it('a volume\'s task keeps its volume\'s executor: pinned tasks fill the host\'s other executors first', () => {
    // The volume's executor is listed first; the pinned task could take its only slot, and the
    // volume's task can run nowhere else.
    const ix = indexOf([task({ taskId: 'v', volumeId: 'vol1' }), pinned('p', 'r1-h1')]);
    const execs = [exec('r1-h1', { volumes: ['vol1'], tenant: 'a', executorId: 'ev' }), exec('r1-h1', { executorId: 'plain' })];
    const plan = place(snap(60_000, { executors: execs }), ix);
    expect(Object.fromEntries(plan.assignments.map((a) => [a.taskId, a.executorId]))).toEqual({ v: 'ev', p: 'plain' });
  });

  it('the oldest pinned task goes first, whatever hosts its data is on', () => {
    // p1 also prefers r2-h5, where a slot is free (it can never use it): it still came first.
    const ix = indexOf([pinned('p1', 'r1-h1', { preferredHosts: ['r2-h5'] }), pinned('p2', 'r1-h1'), pinned('p3', 'r1-h1')]);
    const plan = place(snap(60_000, { executors: [exec('r1-h1', { freeSince: 0 }), exec('r2-h5', { freeSince: 0 })] }), ix);
    expect(where(plan)).toEqual({ p1: 'r1-h1' });
  });

  it('node-only does not keep a task from the host it is pinned to when its data is elsewhere', () => {
    const ix = indexOf([pinned('p', 'r1-h1', { preferredHosts: ['r2-h5'], locality: { mode: 'node-only' } })]);
    const plan = place(snap(0, { executors: [exec('r1-h1', { freeSince: 0 })] }), ix);
    expect(where(plan)).toEqual({ p: 'r1-h1' });
  });

  it('a pinned task that does not fit leaves the slot to other work; pinned tasks of other hosts wait for theirs', () => {
    const ix = indexOf([
      pinned('big', 'r1-h1', { resources: { cpus: 64, mem: 1024, disk: 0 } }),
      pinned('elsewhere', 'r3-h3'),
      task({ taskId: 'u', preferredHosts: ['r1-h1'] }),
    ]);
    const plan = place(snap(60_000, { executors: [exec('r1-h1', { freeSince: 0 })] }), ix);
    expect(where(plan)).toEqual({ u: 'r1-h1' });
  });
});

describe('placement: delay scheduling', () => {
  // t prefers r1-h1 (busy); a rack-local slot on r1-h2 and a remote one on r2-h1 became free at time 0.
  const execs = [exec('r1-h1', { freeSlots: 0 }), exec('r1-h2', { freeSince: 0 }), exec('r2-h1', { freeSince: 0 })];
  it.each([
    { now: 0, placed: undefined, why: 'nothing: both slots idle 0 ms < node wait' },
    { now: 2999, placed: undefined, why: 'still inside the node wait' },
    { now: 3000, placed: ['r1-h2', LocalityLevel.RACK_LOCAL], why: 'node wait over: rack-local' },
    { now: 5999, placed: ['r1-h2', LocalityLevel.RACK_LOCAL], why: 'rack slot preferred while the rack wait runs' },
  ])('at $now ms: $why', ({ now, placed }) => {
    const ix = indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'], pendingSince: 0 })]);
    const plan = place(snap(now, { executors: execs }), ix);
    if (placed === undefined) {
      expect(plan.assignments).toEqual([]);
      expect(plan.reasons[0]).toMatchObject({ taskId: 't', code: 'WAITING_FOR_LOCALITY', until: 3000 });
    } else {
      expect(plan.assignments[0]).toMatchObject({ hostname: placed[0], level: placed[1] });
    }
  });

  it('goes to any level after node + rack waits when only a remote slot is free', () => {
    const only = [exec('r1-h1', { freeSlots: 0 }), exec('r1-h2', { freeSlots: 0 }), exec('r2-h1', { freeSince: 0 })];
    const mk = (): ReturnType<typeof indexOf> => indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'], pendingSince: 0 })]);
    expect(place(snap(5999, { executors: only }), mk()).assignments).toEqual([]);
    expect(place(snap(6000, { executors: only }), mk()).assignments[0]).toMatchObject({ hostname: 'r2-h1', level: LocalityLevel.ANY });
  });

  it('node-only tasks never leave their data hosts', () => {
    const ix = indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'], locality: { mode: 'node-only' } })]);
    const plan = place(snap(10_000_000, { executors: [exec('r1-h1', { freeSlots: 0 }), exec('r1-h2')] }), ix);
    expect(plan.assignments).toEqual([]);
    expect(plan.reasons[0]?.code).toBe('NODE_ONLY');
  });
});

describe('placement: idle capacity bounds the wait (SPARK-18886)', () => {
  it('a slot idle longer than the wait takes a less local task even when the task is brand new', () => {
    // The task just arrived (pendingSince = now) but r1-h2's slot has been idle for 10 s.
    const now = 50_000;
    const ix = indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'], pendingSince: now })]);
    const plan = place(snap(now, { executors: [exec('r1-h1', { freeSlots: 0 }), exec('r1-h2', { freeSince: now - 10_000 })] }), ix);
    expect(plan.assignments[0]).toMatchObject({ hostname: 'r1-h2', level: LocalityLevel.RACK_LOCAL });
  });

  it('local launches elsewhere do not reset the wait of an idle slot', () => {
    // r1-h1 keeps getting local work every pass; r2-h7 has been idle since 0 and must eventually take a task.
    const tasks = Array.from({ length: 6 }, (_, i) => task({ taskId: `t${i}`, preferredHosts: ['r1-h1'], pendingSince: 0 }));
    const ix = indexOf(tasks);
    const plan = place(snap(6000, { executors: [exec('r1-h1', { freeSince: 5999 }), exec('r2-h7', { freeSince: 0 })] }), ix);
    expect(where(plan)).toEqual({ t0: 'r1-h1', t1: 'r2-h7' });
    expect(levels(plan)).toEqual({ t0: LocalityLevel.NODE_LOCAL, t1: LocalityLevel.ANY });
  });

  it('a slot that just freed does not take remote work from a tenant that is not first in line', () => {
    // Two tenants: b holds less (head). a's task is remote to the free slot, fresh, and the slot idle 0.
    const ix = indexOf([task({ taskId: 'ta', tenant: 'a', preferredHosts: ['r1-h1'], pendingSince: 0 })]);
    ix.add(task({ taskId: 'tb', tenant: 'b', jobId: 'jb', preferredHosts: ['r3-h1'], pendingSince: 10_000, locality: { mode: 'node-only' } }));
    const plan = place(snap(10_000, {
      tenants: [tenant('a', 1, { usage: { cpus: 1, mem: 0, disk: 0 } }), tenant('b')],
      executors: [exec('r1-h1', { freeSlots: 0 }), exec('r3-h1', { freeSlots: 0 }), exec('r2-h1', { freeSince: 10_000 })],
    }), ix);
    // a has waited 10 s (> 6 s) but is not the least-served tenant; the slot has idled 0 ms.
    expect(plan.assignments).toEqual([]);
  });
});

describe('placement: empty levels are skipped', () => {
  it.each([
    { name: 'no executor or offer on any data host: rack at once', execs: ['r1-h2'], level: LocalityLevel.RACK_LOCAL },
    { name: 'nothing alive in the data racks either: any at once', execs: ['r5-h1'], level: LocalityLevel.ANY },
  ])('$name', ({ execs, level }) => {
    const ix = indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'], pendingSince: 1000 })]);
    const plan = place(snap(1000, { executors: execs.map((h) => exec(h, { freeSince: 1000 })) }), ix);
    expect(plan.assignments[0]).toMatchObject({ taskId: 't', level });
  });

  it('a task whose input its last host could not reach waits for its data hosts, alive or not, then runs elsewhere', () => {
    // Nothing on r1-h1 now (no executor, no offer), which would skip the wait; but the task's
    // last attempt could not read its input from another host: elsewhere it would fail again,
    // while a REVIVE may bring r1-h1's offers back.
    const awaiting = task({ taskId: 't', preferredHosts: ['r1-h1'], pendingSince: 1000, awaitDataHosts: true });
    const execs = [exec('r5-h1', { freeSince: 1000 })];
    expect(place(snap(1000, { executors: execs }), indexOf([awaiting])).assignments).toEqual([]);
    // Past its node wait (3 s by default), any host again: the wait is bounded.
    expect(place(snap(4100, { executors: [exec('r5-h1', { freeSince: 4100 })] }), indexOf([awaiting])).assignments[0]).toMatchObject({ taskId: 't', level: LocalityLevel.ANY });
    // An offer from its data host gets an executor for it, though a slot is free elsewhere (that
    // slot cannot take it while it waits); without the mark, the free slot absorbs the demand.
    const withOffer = snap(1000, { executors: execs, offers: [offer('r1-h1')] });
    expect(place(withOffer, indexOf([awaiting])).launches).toEqual([expect.objectContaining({ hostname: 'r1-h1', why: 'data' })]);
    expect(place(withOffer, indexOf([{ ...awaiting, awaitDataHosts: false }])).launches).toEqual([]);
    // No executor starts for it on a host without its data while it waits; once its wait is
    // over, one may (its data hosts may never offer again).
    expect(place(snap(1000, { offers: [offer('r5-h2')] }), indexOf([awaiting])).launches).toEqual([]);
    expect(place(snap(4100, { offers: [offer('r5-h2')] }), indexOf([awaiting])).launches).toEqual([expect.objectContaining({ hostname: 'r5-h2' })]);
    // Removed from the index, it leaves no demand behind: the data host's offer starts nothing.
    const ix = indexOf([awaiting]);
    ix.remove('t');
    expect(place(withOffer, ix).launches).toEqual([]);
    // Without the mark, the same task goes to the free slot elsewhere at once (the level is empty).
    expect(place(snap(1000, { executors: execs }), indexOf([{ ...awaiting, awaitDataHosts: false }])).assignments[0]).toMatchObject({ taskId: 't', hostname: 'r5-h1' });
  });

  it('a task still waiting for its data hosts keeps its demand when another job\'s waiting task, its wait over, is placed elsewhere', () => {
    // Two jobs, tasks of one shape, both waiting for r1-h1: `a` since -10 s (its wait is over: it takes
    // the free slot elsewhere), `b` since 4000 (still waiting). A slot stays free on r5-h1, but it is
    // no room for `b`: the offer from r1-h1 must still start an executor for it.
    const a = task({ taskId: 'a', jobId: 'ja', preferredHosts: ['r1-h1'], pendingSince: -10_000, awaitDataHosts: true });
    const b = task({ taskId: 'b', jobId: 'jb', preferredHosts: ['r1-h1'], pendingSince: 4000, awaitDataHosts: true });
    const plan = place(snap(4100, { executors: [exec('r5-h1', { slots: 2, freeSlots: 2, freeSince: 4100 })], offers: [offer('r1-h1')] }), indexOf([a, b]));
    expect(plan.assignments.map((x) => x.taskId)).toEqual(['a']);
    expect(plan.launches).toEqual([expect.objectContaining({ hostname: 'r1-h1', why: 'data' })]);
  });

  it('a task waiting for its data hosts is not taken by a slot that idles elsewhere, until its own wait is over', () => {
    // An executor left idle by an earlier job, for longer than any locality wait: delay scheduling
    // lets an idle slot take a less local task, but this task would fail there again.
    const awaiting = task({ taskId: 't', preferredHosts: ['r1-h1'], preferredRacks: ['r1'], pendingSince: 1000, awaitDataHosts: true });
    const idle = (now: number): Snapshot => snap(now, { executors: [exec('r5-h1', { freeSince: -60_000, idleSince: -60_000 })] });
    const waiting = place(idle(1000), indexOf([awaiting]));
    expect(waiting.assignments).toEqual([]);
    // The reason the pass records (what explain shows first) has its own wait's end, not the slot's.
    expect(waiting.reasons).toContainEqual(expect.objectContaining({ taskId: 't', code: 'WAITING_FOR_LOCALITY', until: 4000 }));
    expect(waiting.reasons.find((r) => r.taskId === 't')?.message).toContain('could not read its input');
    expect(place(idle(3900), indexOf([awaiting])).assignments).toEqual([]);
    // Its own node wait over (3 s: nothing lives in its rack, so no rack wait), it goes there.
    expect(place(idle(4100), indexOf([awaiting])).assignments[0]).toMatchObject({ taskId: 't', hostname: 'r5-h1', level: LocalityLevel.ANY });
    // Without the mark the idle slot takes it at once, as delay scheduling has it.
    expect(place(idle(1000), indexOf([{ ...awaiting, awaitDataHosts: false }])).assignments[0]).toMatchObject({ taskId: 't', hostname: 'r5-h1' });
  });

  it('tasks with no preferences run anywhere at once', () => {
    const ix = indexOf([task({ taskId: 't', pendingSince: 1000 })]);
    const plan = place(snap(1000, { executors: [exec('r1-h1', { freeSince: 1000 })] }), ix);
    expect(plan.assignments).toHaveLength(1);
  });
});

describe('placement: fairness', () => {
  it('DRF with weights 2:1 splits 9 slots 6:3', () => {
    const tasks = [
      ...Array.from({ length: 20 }, (_, i) => task({ taskId: `a${i}`, tenant: 'a', jobId: 'ja' })),
      ...Array.from({ length: 20 }, (_, i) => task({ taskId: `b${i}`, tenant: 'b', jobId: 'jb' })),
    ];
    const execs = Array.from({ length: 9 }, (_, i) => exec(`r1-h${i}`));
    const plan = place(snap(0, { executors: execs, tenants: [tenant('a', 2), tenant('b', 1)] }), indexOf(tasks));
    const by = (t: string): number => plan.assignments.filter((a) => a.tenant === t).length;
    expect([by('a'), by('b')]).toEqual([6, 3]);
  });

  it('DRF counts what tenants already run', () => {
    const tasks = [
      ...Array.from({ length: 10 }, (_, i) => task({ taskId: `a${i}`, tenant: 'a', jobId: 'ja' })),
      ...Array.from({ length: 10 }, (_, i) => task({ taskId: `b${i}`, tenant: 'b', jobId: 'jb' })),
    ];
    const execs = [...Array.from({ length: 4 }, (_, i) => exec(`r1-h${i}`)), exec('r9-h9', { slots: 4, freeSlots: 0 })];
    // a already runs 4 cpus worth: the 4 free slots should all go to b.
    const plan = place(snap(0, {
      executors: execs,
      tenants: [tenant('a', 1, { usage: { cpus: 4, mem: 2048, disk: 0 } }), tenant('b')],
    }), indexOf(tasks));
    expect(plan.assignments.map((a) => a.tenant)).toEqual(['b', 'b', 'b', 'b']);
  });

  it('priority first within a tenant, then fair between jobs', () => {
    const tasks = [
      ...Array.from({ length: 5 }, (_, i) => task({ taskId: `x${i}`, jobId: 'x', priority: 0 })),
      ...Array.from({ length: 5 }, (_, i) => task({ taskId: `y${i}`, jobId: 'y', priority: 0 })),
      ...Array.from({ length: 2 }, (_, i) => task({ taskId: `u${i}`, jobId: 'urgent', priority: 5 })),
    ];
    const execs = Array.from({ length: 6 }, (_, i) => exec(`r1-h${i}`));
    const plan = place(snap(0, { executors: execs }), indexOf(tasks));
    const jobs = plan.assignments.map((a) => a.jobId);
    expect(jobs.filter((j) => j === 'urgent')).toHaveLength(2);
    expect(jobs.filter((j) => j === 'x')).toHaveLength(2);
    expect(jobs.filter((j) => j === 'y')).toHaveLength(2);
    expect(jobs.slice(0, 2)).toEqual(['urgent', 'urgent']);
  });

  it('a starving tenant is not shut out by another tenant with local data everywhere', () => {
    // a has node-local tasks on every host; b's data host is busy and b has waited 10 s (past node + rack waits).
    const tasks = [
      ...['r1-h1', 'r1-h2', 'r1-h3', 'r1-h4'].flatMap((h, i) => [task({ taskId: `a${i}`, tenant: 'a', jobId: 'ja', preferredHosts: [h], pendingSince: 10_000 })]),
      ...Array.from({ length: 4 }, (_, i) => task({ taskId: `b${i}`, tenant: 'b', jobId: 'jb', preferredHosts: ['r9-h9'], pendingSince: 0 })),
    ];
    const execs = [...['r1-h1', 'r1-h2', 'r1-h3', 'r1-h4'].map((h) => exec(h, { freeSince: 10_000 })), exec('r9-h9', { freeSlots: 0 })];
    const plan = place(snap(10_000, { executors: execs, tenants: [tenant('a'), tenant('b')] }), indexOf(tasks));
    const by = (t: string): number => plan.assignments.filter((a) => a.tenant === t).length;
    expect(by('b')).toBe(2);
    expect(by('a')).toBe(2);
  });
});

describe('placement: quotas, constraints, volumes, avoided hosts (never relaxed)', () => {
  it('stops at the tenant quota', () => {
    const tasks = Array.from({ length: 5 }, (_, i) => task({ taskId: `t${i}` }));
    const plan = place(snap(0, {
      executors: Array.from({ length: 5 }, (_, i) => exec(`r1-h${i}`)),
      tenants: [tenant('a', 1, { quota: { cpus: 2 } })],
    }), indexOf(tasks));
    expect(plan.assignments).toHaveLength(2);
    expect(plan.reasons.some((r) => r.code === 'OVER_QUOTA')).toBe(true);
  });

  it.each([
    { name: 'attribute', c: { kind: 'attribute', attribute: 'gpu', equals: 'yes' } as const, host: 'r2-h2' },
    { name: 'hostname', c: { kind: 'hostname', equals: 'r2-h3' } as const, host: 'r2-h3' },
    { name: 'hostname-not', c: { kind: 'hostname-not', values: ['r1-h1', 'r2-h2'] } as const, host: 'r2-h3' },
  ])('constraint $name holds even after every wait', ({ c, host }) => {
    const execs = [exec('r1-h1'), exec('r2-h2', { attributes: { gpu: 'yes' } }), exec('r2-h3')];
    const ix = indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'], constraints: [c] })]);
    const plan = place(snap(1_000_000, { executors: execs.filter((e) => e.hostname !== 'r1-h1' || host !== 'r1-h1') }), ix);
    expect(where(plan)).toEqual({ t: host });
  });

  it('a constraint nobody meets leaves the task pending forever', () => {
    const ix = indexOf([task({ taskId: 't', constraints: [{ kind: 'attribute', attribute: 'gpu', equals: 'yes' }] })]);
    const plan = place(snap(1_000_000, { executors: [exec('r1-h1'), exec('r1-h2')] }), ix);
    expect(plan.assignments).toEqual([]);
  });

  it('a volume-pinned task runs only on the executor holding its volume', () => {
    const ix = indexOf([task({ taskId: 't', volumeId: 'vol1', preferredHosts: ['r1-h1'] })]);
    const idle = [exec('r1-h1'), exec('r1-h2')];
    expect(place(snap(1_000_000, { executors: idle }), ix).assignments).toEqual([]);
    const withVol = [...idle, exec('r3-h3', { volumes: ['vol1'], tenant: 'a', executorId: 'ev' })];
    const plan = place(snap(1_000_000, { executors: withVol }), ix);
    expect(plan.assignments).toEqual([expect.objectContaining({ taskId: 't', executorId: 'ev', level: LocalityLevel.NODE_LOCAL })]);
  });

  it('a dedicated executor serves only its tenant', () => {
    const ix = indexOf([task({ taskId: 't', tenant: 'b', jobId: 'jb' })]);
    const plan = place(snap(0, { executors: [exec('r1-h1', { tenant: 'a' })] }), ix);
    expect(plan.assignments).toEqual([]);
  });

  it('avoided hosts are never used, and do not count as a node level to wait for', () => {
    const ix = indexOf([task({ taskId: 't', preferredHosts: ['r1-h1'], avoidHosts: ['r1-h1'], pendingSince: 0 })]);
    const plan = place(snap(0, { executors: [exec('r1-h1', { freeSince: 0 }), exec('r1-h2', { freeSince: 0 })] }), ix);
    expect(plan.assignments[0]).toMatchObject({ hostname: 'r1-h2', level: LocalityLevel.RACK_LOCAL });
  });

  it('a task avoiding every live host that could run it is placed on one of them (avoidance never strands a task)', () => {
    const t = task({ taskId: 't', preferredHosts: ['r1-h9'], avoidHosts: ['r1-h1', 'r1-h2', 'r1-h9'] });
    // r1-h3 is not avoided but cannot run it (too small), r1-h9 (its data host) is gone.
    const small = { cpus: 0.5, mem: 256, disk: 0 };
    const plan = place(snap(10_000, { executors: [exec('r1-h1', { freeSlots: 0 }), exec('r1-h2'), exec('r1-h3', { slotResources: small })] }), indexOf([t]));
    expect(where(plan)).toEqual({ t: 'r1-h2' });
  });

  it('avoidance holds while a host it does not avoid could run the task, busy or only offered', () => {
    const t = (): PendingTask => task({ taskId: 't', avoidHosts: ['r1-h1'] });
    const busy = place(snap(10_000, { executors: [exec('r1-h1'), exec('r1-h2', { freeSlots: 0 })] }), indexOf([t()]));
    expect(busy.assignments).toEqual([]);
    const offered = place(snap(10_000, { executors: [exec('r1-h1')], offers: [offer('r1-h2')] }), indexOf([t()]));
    expect(offered.assignments).toEqual([]);
    // The only other host is excluded by its constraints: the avoided one is used.
    const excluded = place(snap(10_000, { executors: [exec('r1-h1'), exec('r1-h2')] }), indexOf([{ ...t(), constraints: [{ kind: 'hostname-not', values: ['r1-h2'] }] }]));
    expect(where(excluded)).toEqual({ t: 'r1-h1' });
  });

  it('tasks larger than a slot do not go there', () => {
    const ix = indexOf([task({ taskId: 't', resources: { cpus: 4, mem: 512, disk: 0 } })]);
    const plan = place(snap(0, { executors: [exec('r1-h1'), exec('r1-h2', { slotResources: { cpus: 4, mem: 4096, disk: 0 } })] }), ix);
    expect(where(plan)).toEqual({ t: 'r1-h2' });
  });
});

describe('placement: no double booking', () => {
  it('never books a slot twice and never assigns a task twice', () => {
    let x = 7;
    const rnd = (n: number): number => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x % n;
    };
    const hosts = Array.from({ length: 12 }, (_, i) => `r${i % 3}-h${i}`);
    const tasks = Array.from({ length: 200 }, (_, i) => task({
      taskId: `t${i}`, tenant: i % 3 === 0 ? 'b' : 'a', jobId: `j${i % 3 === 0 ? 'b' : 'a'}${i % 2}`,
      preferredHosts: [hosts[rnd(12)] as string, hosts[rnd(12)] as string], pendingSince: rnd(5000),
    }));
    const execs = hosts.map((h, i) => exec(h, { slots: 4, freeSlots: 1 + (i % 4), freeSince: rnd(8000) }));
    const plan = place(snap(8000, { executors: execs, tenants: [tenant('a', 2), tenant('b')] }), indexOf(tasks));
    const perExec = new Map<string, number>();
    for (const a of plan.assignments) perExec.set(a.executorId, (perExec.get(a.executorId) ?? 0) + 1);
    for (const e of execs) expect(perExec.get(e.executorId) ?? 0).toBeLessThanOrEqual(e.freeSlots);
    expect(new Set(plan.assignments.map((a) => a.taskId)).size).toBe(plan.assignments.length);
    expect(plan.assignments.length).toBe(execs.reduce((n, e) => n + e.freeSlots, 0));
    for (const a of plan.assignments) {
      const t = tasks.find((u) => u.taskId === a.taskId);
      const lvl = t?.preferredHosts.includes(a.hostname) ? 0 : t?.preferredRacks.includes(a.hostname.split('-')[0] ?? '') ? 1 : 2;
      expect(a.level).toBe(lvl);
    }
  });

  it('a second pass without the coordinator removing tasks plans them again (the index is the truth)', () => {
    const ix = indexOf([task({ taskId: 't' })]);
    const s = snap(0, { executors: [exec('r1-h1')] });
    expect(place(s, ix).assignments).toHaveLength(1);
    expect(place(s, ix).assignments).toHaveLength(1);
    ix.remove('t');
    expect(place(s, ix).assignments).toHaveLength(0);
  });
});
