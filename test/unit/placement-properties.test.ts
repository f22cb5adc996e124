/**
 * Properties of task placement on random clusters (fast-check), for the
 * parts the fast path changed: interned host ids (refcounted, recycled),
 * the node phase that judges each entry once per executor (Pass.fillFrom),
 * and plain tasks checked once per bucket instead of once per task.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LocalityLevel } from '../../src/core/locality.js';
import { fits } from '../../src/core/resources.js';
import {
  PendingIndex, place, type ExecutorView, type PendingTask, type Plan, type Snapshot, type TenantView,
} from '../../src/scheduler/placement/index.js';
import { exec, rackOf, task } from './placement-builders.js';

const HOSTS = Array.from({ length: 10 }, (_, i) => `r${i % 3}-h${i}`);

const hostArb = fc.constantFrom(...HOSTS);

/** A pending task: a few preferred hosts, sometimes a constraint, an avoided host, a larger size. */
const taskArb = fc.record({
  hosts: fc.uniqueArray(hostArb, { maxLength: 4 }),
  tenant: fc.constantFrom('a', 'b'),
  job: fc.integer({ min: 0, max: 2 }),
  big: fc.boolean(),
  extra: fc.constantFrom('none', 'none', 'none', 'avoid', 'pin', 'not', 'gpu', 'node-only'),
  extraHost: hostArb,
  since: fc.integer({ min: 0, max: 9000 }),
});

const execArb = fc.record({
  host: hostArb,
  slots: fc.integer({ min: 1, max: 4 }),
  busy: fc.integer({ min: 0, max: 4 }),
  freeSince: fc.integer({ min: -60_000, max: 9000 }),
  bigSlots: fc.boolean(),
  gpu: fc.boolean(),
  dedicated: fc.constantFrom(undefined, undefined, undefined, 'a'),
});

type TaskSpec = typeof taskArb extends fc.Arbitrary<infer T> ? T : never;
type ExecSpec = typeof execArb extends fc.Arbitrary<infer T> ? T : never;

function toTask(s: TaskSpec, i: number): PendingTask {
  const t = task({
    taskId: `t${i}`, tenant: s.tenant, jobId: `${s.tenant}-j${s.job}`, preferredHosts: s.hosts, pendingSince: s.since,
    resources: { cpus: s.big ? 2 : 1, mem: 512, disk: 0 },
  });
  switch (s.extra) {
    case 'avoid': return { ...t, avoidHosts: [s.extraHost] };
    case 'pin': return { ...t, constraints: [{ kind: 'hostname', equals: s.extraHost }] };
    case 'not': return { ...t, constraints: [{ kind: 'hostname-not', values: [s.extraHost] }] };
    case 'gpu': return { ...t, constraints: [{ kind: 'attribute', attribute: 'gpu', equals: 'yes' }] };
    case 'node-only': return { ...t, locality: { mode: 'node-only' } };
    default: return t;
  }
}

function toExec(s: ExecSpec, i: number): ExecutorView {
  return exec(s.host, {
    executorId: `e${i}`, slots: s.slots, freeSlots: Math.max(0, s.slots - s.busy), freeSince: s.freeSince,
    slotResources: { cpus: s.bigSlots ? 2 : 1, mem: 1024, disk: 0 },
    ...(s.gpu ? { attributes: { gpu: 'yes' } } : {}),
    ...(s.dedicated === undefined ? {} : { tenant: s.dedicated }),
  });
}

/** Whether an executor passes a task's hard rules other than its avoided hosts (busy or not). */
function couldRun(t: PendingTask, e: ExecutorView): boolean {
  if (e.tenant !== undefined && e.tenant !== t.tenant) return false;
  if (!fits(t.resources, e.slotResources)) return false;
  return (t.constraints ?? []).every((c) => (c.kind === 'hostname' ? e.hostname === c.equals
    : c.kind === 'hostname-not' ? !c.values.includes(e.hostname) : e.attributes?.[c.attribute] === c.equals));
}

function indexOf(tasks: readonly PendingTask[]): PendingIndex {
  const ix = new PendingIndex();
  for (const t of tasks) ix.add(t);
  return ix;
}

const scenarioArb = fc.record({
  tasks: fc.array(taskArb, { maxLength: 40 }),
  execs: fc.array(execArb, { minLength: 1, maxLength: 12 }),
  now: fc.integer({ min: 0, max: 20_000 }),
  scanLimit: fc.integer({ min: 1, max: 64 }),
});

function snapshotOf(execs: readonly ExecutorView[], now: number, tenants: readonly TenantView[] = []): Snapshot {
  return { now, offers: [], executors: execs, tenants };
}

describe('placement properties', () => {
  it('never books a slot twice, never places a task twice, never breaks a hard rule, and labels levels truly', () => {
    fc.assert(fc.property(scenarioArb, ({ tasks: ts, execs: es, now, scanLimit }) => {
      const tasks = ts.map(toTask);
      const execs = es.map(toExec);
      const plan = place(snapshotOf(execs, now), indexOf(tasks), { scanLimit });
      const byId = new Map(tasks.map((t) => [t.taskId, t]));
      const execById = new Map(execs.map((e) => [e.executorId, e]));
      const perExec = new Map<string, number>();
      for (const a of plan.assignments) perExec.set(a.executorId, (perExec.get(a.executorId) ?? 0) + 1);
      for (const [id, n] of perExec) expect(n).toBeLessThanOrEqual(execById.get(id)?.freeSlots ?? -1);
      expect(new Set(plan.assignments.map((a) => a.taskId)).size).toBe(plan.assignments.length);
      let node = 0;
      let rack = 0;
      for (const a of plan.assignments) {
        const t = byId.get(a.taskId) as PendingTask;
        const e = execById.get(a.executorId) as ExecutorView;
        expect(a.hostname).toBe(e.hostname);
        expect([a.jobId, a.tenant]).toEqual([t.jobId, t.tenant]);
        expect(e.tenant === undefined || e.tenant === t.tenant).toBe(true);
        expect(fits(t.resources, e.slotResources)).toBe(true);
        // An avoided host only when no executor on a host it does not avoid could run it at all.
        if (t.avoidHosts?.includes(e.hostname) === true) {
          expect(execs.some((o) => !(t.avoidHosts?.includes(o.hostname) ?? false) && couldRun(t, o))).toBe(false);
        }
        for (const c of t.constraints ?? []) {
          if (c.kind === 'hostname') expect(e.hostname).toBe(c.equals);
          else if (c.kind === 'hostname-not') expect(c.values).not.toContain(e.hostname);
          else expect(e.attributes?.[c.attribute]).toBe(c.equals);
        }
        const level = t.preferredHosts.includes(e.hostname) ? LocalityLevel.NODE_LOCAL
          : t.preferredRacks.includes(rackOf(e.hostname)) ? LocalityLevel.RACK_LOCAL : LocalityLevel.ANY;
        expect(a.level).toBe(level);
        // Node-only binds a task that has data hosts (one with none runs anywhere, as a task without preferences).
        if (t.locality?.mode === 'node-only' && t.preferredHosts.length > 0) expect(a.level).toBe(LocalityLevel.NODE_LOCAL);
        if (level === LocalityLevel.NODE_LOCAL) node++;
        else if (level === LocalityLevel.RACK_LOCAL) rack++;
      }
      expect([plan.stats.nodeLocal, plan.stats.rackLocal, plan.stats.placed]).toEqual([node, rack, plan.assignments.length]);
    }), { numRuns: 300 });
  });

  it('is deterministic: the same tasks and executors give the same plan, on a fresh index or the same one again', () => {
    fc.assert(fc.property(scenarioArb, ({ tasks: ts, execs: es, now, scanLimit }) => {
      const tasks = ts.map(toTask);
      const snap = snapshotOf(es.map(toExec), now);
      const ix = indexOf(tasks);
      const first = place(snap, ix, { scanLimit });
      expect(place(snap, ix, { scanLimit })).toEqual(first);
      expect(place(snap, indexOf(tasks), { scanLimit })).toEqual(first);
    }), { numRuns: 200 });
  });

  it('the once-per-entry node phase decides exactly as the per-slot one (a quota never reached forces the per-slot path)', () => {
    // A tenant quota, even one far above any usage, makes the node phase judge entries slot by
    // slot (Pass.fillBySlot); without one it caches each entry's verdict (Pass.fillFrom).
    // Both must produce the same plan, reasons and counters included.
    // Mostly one job of one tenant with many tasks, so that a host's bucket is the only
    // candidate and the window of fillFrom has several entries to choose from.
    const oneJob = fc.record({
      tasks: fc.array(taskArb.map((t) => ({ ...t, tenant: 'a' as const, job: 0 })), { minLength: 10, maxLength: 80 }),
      execs: fc.array(execArb, { minLength: 1, maxLength: 12 }),
      now: fc.integer({ min: 0, max: 20_000 }),
      scanLimit: fc.integer({ min: 1, max: 64 }),
    });
    fc.assert(fc.property(fc.oneof(oneJob, oneJob, scenarioArb), ({ tasks: ts, execs: es, now, scanLimit }) => {
      const tasks = ts.map(toTask);
      const execs = es.map(toExec);
      const free: TenantView[] = [{ name: 'a', weight: 1, usage: { cpus: 0, mem: 0, disk: 0 } }, { name: 'b', weight: 1, usage: { cpus: 0, mem: 0, disk: 0 } }];
      const capped = free.map((t) => ({ ...t, quota: { cpus: 1e9 } }));
      const fast: Plan = place(snapshotOf(execs, now, free), indexOf(tasks), { scanLimit });
      const slow: Plan = place(snapshotOf(execs, now, capped), indexOf(tasks), { scanLimit });
      expect(fast).toEqual(slow);
    }), { numRuns: 300 });
  });

  it('places every task when idle slots outnumber them and nothing but size restricts them', () => {
    fc.assert(fc.property(fc.array(fc.uniqueArray(hostArb, { maxLength: 3 }), { maxLength: 30 }), (prefs) => {
      const tasks = prefs.map((hosts, i) => task({ taskId: `t${i}`, preferredHosts: hosts }));
      // Every host has an executor idle for a minute with more slots than there are tasks in all.
      const execs = HOSTS.map((h) => exec(h, { slots: 4, freeSlots: 4, freeSince: -60_000 }));
      const plan = place(snapshotOf(execs, 0), indexOf(tasks));
      expect(plan.stats.placed).toBe(tasks.length);
      // Capacity is ample (4 slots a host, at most 30 tasks over 10 hosts... but a host may be
      // preferred by more than 4): node-local for at least every task whose hosts are not all over-asked.
      const demand = new Map<string, number>();
      for (const t of tasks) for (const h of t.preferredHosts) demand.set(h, (demand.get(h) ?? 0) + 1);
      const easy = tasks.filter((t) => t.preferredHosts.some((h) => (demand.get(h) ?? 0) <= 4)).length;
      expect(plan.stats.nodeLocal).toBeGreaterThanOrEqual(easy);
    }), { numRuns: 200 });
  });

  it('host ids follow the live tasks through any sequence of adds, updates and removes', () => {
    const op = fc.record({ kind: fc.constantFrom('add', 'add', 'remove'), id: fc.integer({ min: 0, max: 15 }), hosts: fc.uniqueArray(hostArb, { maxLength: 4 }), pin: fc.boolean(), pinHost: hostArb });
    fc.assert(fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const ix = new PendingIndex();
      const live = new Map<string, PendingTask>();
      for (const o of ops) {
        const id = `t${o.id}`;
        if (o.kind === 'remove') {
          expect(ix.remove(id)?.taskId).toBe(live.get(id)?.taskId);
          live.delete(id);
        } else {
          const t = task({ taskId: id, jobId: `j${o.id % 3}`, preferredHosts: o.hosts, ...(o.pin ? { constraints: [{ kind: 'hostname', equals: o.pinHost }] } : {}) });
          ix.add(t);
          // Re-adding a task moves it last, as the index does: the fresh index below is built in
          // the same order (a greedy pass may place a different count in another queue order).
          live.delete(id);
          live.set(id, t);
        }
      }
      expect(ix.size).toBe(live.size);
      const ids = new Set<number>();
      for (const h of HOSTS) {
        const named = [...live.values()].filter((t) => t.preferredHosts.includes(h) || t.constraints?.some((c) => c.kind === 'hostname' && c.equals === h));
        const id = ix.hostId(h);
        // A host is interned exactly while some live task names it, and no two hosts share an id.
        expect(id >= 0).toBe(named.length > 0);
        if (id >= 0) {
          expect(ids.has(id)).toBe(false);
          ids.add(id);
        }
        // Its buckets hold exactly the live tasks placed in them: preferring it (unpinned) or pinned to it.
        const inBuckets = ix.queuesAtHost(h).reduce((n, q) => n + (q.hosts.get(h)?.live ?? 0) + (q.pins.get(h)?.live ?? 0), 0);
        const pinnedHere = (t: PendingTask): boolean => t.constraints?.find((c) => c.kind === 'hostname')?.equals === h;
        const pinned = (t: PendingTask): boolean => t.constraints?.some((c) => c.kind === 'hostname') ?? false;
        expect(inBuckets).toBe([...live.values()].filter((t) => (pinned(t) ? pinnedHere(t) : t.preferredHosts.includes(h))).length);
      }
      // Placing on the recycled ids finds what a fresh index finds. With room for every task on
      // every host the plan cannot depend on the order of the index's queues (which a re-add
      // does not move, and a fresh index builds in another order: with two slots a host, an
      // unpinned task taken first may leave a task pinned there without one): each task lands
      // where it must (pinned) or where it prefers, which a stale host id would get wrong.
      const snap = snapshotOf(HOSTS.map((h) => exec(h, { slots: 100, freeSlots: 100 })), 0);
      const fresh = indexOf([...live.values()]);
      // With two slots a host the count does not depend on that order either: a host's slots go to
      // the tasks pinned to it first, and the others may run anywhere.
      const tight = snapshotOf(HOSTS.map((h) => exec(h, { slots: 2, freeSlots: 2 })), 0);
      expect(place(tight, ix).stats.placed).toBe(place(tight, fresh).stats.placed);
      const plan = place(snap, ix);
      expect(plan.stats.placed).toBe(live.size);
      expect(place(snap, fresh).stats.placed).toBe(live.size);
      for (let k = 0; k < plan.assigned.length; k++) {
        const t = live.get(plan.assigned.taskId(k));
        const host = plan.assigned.executorId(k).replace(/^e-/, '');
        const pin = t?.constraints?.find((c) => c.kind === 'hostname');
        if (pin !== undefined && pin.kind === 'hostname') expect(host).toBe(pin.equals);
        else if ((t?.preferredHosts.length ?? 0) > 0) expect(t?.preferredHosts).toContain(host);
      }
    }), {
      numRuns: 300,
      // Found in CI (seed -213239541): unpinned t0 and t3 re-added after pinned t4 and t7.
      examples: [[[
        { kind: 'add', id: 3, hosts: [], pin: false, pinHost: 'r0-h0' }, { kind: 'add', id: 4, hosts: [], pin: true, pinHost: 'r0-h0' },
        { kind: 'add', id: 7, hosts: [], pin: true, pinHost: 'r0-h0' }, { kind: 'add', id: 0, hosts: ['r0-h0'], pin: false, pinHost: 'r0-h0' },
        { kind: 'add', id: 3, hosts: ['r1-h7'], pin: false, pinHost: 'r0-h0' },
      ]]],
    });
  });
});
