/**
 * What keeps task placement's compiled code valid from one pass (and one index) to the next:
 * these change no decision, and each is checked here because nothing else would notice if it
 * went missing (only the benchmark's speed would).
 */
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../src/scheduler/placement/options.js';
import { Pass } from '../../src/scheduler/placement/pass.js';
import { shapeWitness } from '../../src/scheduler/placement/place.js';
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
