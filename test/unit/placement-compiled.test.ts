/**
 * What keeps task placement's compiled code valid from one pass (and one index) to the next,
 * and bookkeeping that only saves a pass work: none of it changes a decision, and each is
 * checked here because nothing else would notice if it went missing (only the benchmark's
 * speed would).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../src/scheduler/placement/options.js';
import { Pass, type ExecState } from '../../src/scheduler/placement/pass.js';
import { PendingIndex, type Bucket } from '../../src/scheduler/placement/pending-index.js';
import { shapeWitness } from '../../src/scheduler/placement/place.js';
import { scarceFirst } from '../../src/scheduler/placement/task-placement.js';
import { exec, indexOf, snap, task, tenant } from './placement-builders.js';

describe('placement code that outlives passes and indexes', () => {
  it('a pass gives every queue its tenant and job state when it begins, before any placement', () => {
    const ix = indexOf([
      task({ jobId: 'j1', tenant: 'a', preferredHosts: ['r1-h1'] }),
      task({ jobId: 'j2', tenant: 'b', preferredHosts: ['r1-h2'] }),
      task({ jobId: 'j2', tenant: 'b', priority: 5, preferredHosts: ['r1-h2'] }),
    ]);
    const s = snap(0, { executors: [exec('r1-h1')], tenants: [tenant('a')] });
    const queues = ['a', 'b'].flatMap((t) => [...ix.queuesOfTenant(t)]);
    expect(queues).toHaveLength(3);
    const first = new Pass(s, ix, resolveOptions());
    for (const q of queues) {
      expect(q.passTenant).toBe(first.tenants.get(q.tenant));
      expect(q.passJob).toBe(first.job(q.jobId));
    }
    // The next pass replaces them all (its own overlay), whether or not the last one used them.
    const second = new Pass(s, ix, resolveOptions());
    for (const q of queues) {
      expect(q.passTenant).toBe(second.tenants.get(q.tenant));
      expect(q.passTenant).not.toBe(first.tenants.get(q.tenant));
      expect(q.passJob).toBe(second.job(q.jobId));
    }
  });

  it('keeps the objects of one finished pass for the life of the process (their maps keep compiled code valid)', () => {
    const w = shapeWitness();
    expect(w.objects).toBeGreaterThanOrEqual(3);
    // It ran the node phase and built a plan: 5 hosts of 4 slots, every task node-local.
    expect(w.placed).toBe(20);
    expect(w.nodeLocal).toBe(20);
  });
});

describe('pass bookkeeping that only saves work', () => {
  it('a node-phase fill leaves its bucket\'s cursor at the first entry it did not place', () => {
    // On r1-h1 (3 slots): a, b and e may also run on r1-h2 (free), c and d only here. The fill
    // takes c, d (no alternative), then a (the first of the rest); b is left at position 1.
    const ts = [
      task({ taskId: 'a', preferredHosts: ['r1-h1', 'r1-h2'] }),
      task({ taskId: 'b', preferredHosts: ['r1-h1', 'r1-h2'] }),
      task({ taskId: 'c', preferredHosts: ['r1-h1'] }),
      task({ taskId: 'd', preferredHosts: ['r1-h1'] }),
      task({ taskId: 'e', preferredHosts: ['r1-h1', 'r1-h2'] }),
    ];
    const ix = indexOf(ts);
    const s = snap(0, { executors: [exec('r1-h1', { slots: 3, freeSlots: 3 }), exec('r1-h2', { slots: 3, freeSlots: 3 })], tenants: [tenant('a')] });
    const pass = new Pass(s, ix, resolveOptions());
    const b = ix.bucketsAtHost(ix.hostId('r1-h1'))[0] as Bucket;
    const x = pass.execs[0] as ExecState;
    pass.fillFrom(b, x);
    expect(pass.columns().length).toBe(3);
    expect([0, 1, 2].map((k) => pass.columns().taskId(k))).toEqual(['c', 'd', 'a']);
    expect(b.cursor).toBe(1);
    // What take() finds from there is what it found walking from the start.
    expect(pass.take(b, pass.execs[1] as ExecState, false)?.taskId).toBe('b');
  });

  it('orders executors with equal free slots by node-local candidates, then snapshot order, as a comparator sort does', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 40 }),
      fc.integer({ min: 1, max: 3 }),
      (perHost, slots) => {
        // Host i is preferred by perHost[i] tasks; every executor has `slots` free slots.
        const ts = perHost.flatMap((n, i) => Array.from({ length: n }, (_, k) => task({ taskId: `t${i}-${k}`, preferredHosts: [`r1-h${i}`] })));
        const execs = perHost.map((_, i) => exec(`r1-h${i}`, { slots, freeSlots: slots }));
        const pass = new Pass(snap(0, { executors: execs, tenants: [tenant('a')] }), indexOf(ts), resolveOptions());
        const expected = perHost.map((n, i) => ({ n, i })).sort((p, q) => p.n - q.n || p.i - q.i).map((p) => `e-r1-h${p.i}`);
        expect(scarceFirst(pass).map((x) => x.view.executorId)).toEqual(expected);
      },
    ), { numRuns: 200 });
  });
});

describe('entries without their own copy of the first three host ids', () => {
  it('the index answers an entry\'s hosts from its columns, past the third from the entry, after numbers are recycled too', () => {
    const ix = new PendingIndex();
    // Fill and empty the index so that later entries get recycled numbers (a sweep frees them).
    for (let i = 0; i < 1100; i++) ix.add(task({ taskId: `old${i}`, preferredHosts: ['r9-h1', 'r9-h2', 'r9-h3'] }));
    for (let i = 0; i < 1100; i++) ix.remove(`old${i}`);
    const hosts = ['r1-h1', 'r1-h2', 'r2-h1', 'r2-h2', 'r3-h1'];
    ix.add(task({ taskId: 'five', preferredHosts: [...hosts, 'r1-h2'] }));
    ix.add(task({ taskId: 'one', preferredHosts: ['r3-h1'] }));
    const five = ix.entry('five');
    const one = ix.entry('one');
    if (!five || !one) throw new Error('entries missing');
    expect(five.hostCount).toBe(5);
    expect([0, 1, 2, 3, 4].map((k) => ix.hostOf(five, k))).toEqual(hosts.map((h) => ix.hostId(h)));
    for (const h of hosts) expect(ix.prefers(five, ix.hostId(h))).toBe(true);
    expect(ix.prefers(one, ix.hostId('r3-h1'))).toBe(true);
    expect(ix.prefers(one, ix.hostId('r1-h1'))).toBe(false);
    expect(ix.prefers(one, -1)).toBe(false);
    // Removing them releases every host they name, the fourth and fifth included.
    ix.remove('five');
    ix.remove('one');
    for (const h of hosts) expect(ix.hostId(h)).toBe(-1);
  });
});
