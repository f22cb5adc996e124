/**
 * FairGate (src/executor/fair-gate.ts) as the gate over an executor's slots: at most `slots` holders; a freed slot handed straight to
 * a waiter, of the waiting job holding the fewest slots, in arrival order within a job; a wait
 * ends on abort or after its limit without taking a slot; a release counts once.
 */
import { describe, expect, it } from 'vitest';
import { FairGate, type GateWait } from '../../src/executor/fair-gate.js';

const held = (w: GateWait): { release: () => void } => {
  if (typeof w === 'string') throw new Error(`expected a slot, got ${w}`);
  return w;
};
const never = new AbortController().signal;
/** A wait for a place that notes `name` in `order` when it is granted. */
const queued = (gate: FairGate, job: string, name: string, order: string[]): Promise<{ release: () => void }> =>
  gate.acquire(job, never, 10_000).then((w) => (order.push(name), held(w)));

describe('FairGate over slots', () => {
  it('grants free slots at once and queues the rest of one job in arrival order', async () => {
    const gate = new FairGate(2);
    const a = held(await gate.acquire('j', never, 10_000));
    const b = held(await gate.acquire('j', never, 10_000));
    const order: string[] = [];
    const c = queued(gate, 'j', 'c', order);
    const d = queued(gate, 'j', 'd', order);
    expect(gate.state).toEqual({ held: 2, waiting: 2 });
    a.release();
    a.release(); // counted once
    const cs = await c;
    expect(gate.state).toEqual({ held: 2, waiting: 1 });
    // A newcomer does not overtake the waiter the next slot belongs to.
    const e = queued(gate, 'j', 'e', order);
    b.release();
    const ds = await d;
    cs.release();
    const es = await e;
    expect(order).toEqual(['c', 'd', 'e']);
    ds.release();
    es.release();
    expect(gate.state).toEqual({ held: 0, waiting: 0 });
  });

  it('gives a freed slot to the waiting job that holds the fewest, not to the longest waiter', async () => {
    const gate = new FairGate(2);
    const big1 = held(await gate.acquire('big', never, 10_000));
    const big2 = held(await gate.acquire('big', never, 10_000));
    const order: string[] = [];
    // The big job has prefetched two more; a new job's first attempt arrives after them.
    const big3 = queued(gate, 'big', 'big3', order);
    const big4 = queued(gate, 'big', 'big4', order);
    const small = queued(gate, 'small', 'small', order);
    big1.release();
    const s = await small;
    expect(order).toEqual(['small']);
    big2.release();
    const b3 = await big3;
    // Now each job holds one: the slot goes back and forth, arrival order breaking the ties.
    s.release();
    const b4 = await big4;
    expect(order).toEqual(['small', 'big3', 'big4']);
    b3.release();
    b4.release();
    expect(gate.state).toEqual({ held: 0, waiting: 0 });
  });

  it('ends a wait on abort or after its limit, without taking a slot', async () => {
    const gate = new FairGate(1);
    const stop = new AbortController();
    const first = held(await gate.acquire('j', stop.signal, 10_000));
    const aborted = gate.acquire('j', stop.signal, 10_000);
    const t0 = Date.now();
    const timedOut = gate.acquire('k', new AbortController().signal, 80);
    stop.abort();
    expect(await aborted).toBe('aborted');
    expect(await timedOut).toBe('timeout');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(70);
    expect(gate.state).toEqual({ held: 1, waiting: 0 });
    // An aborted signal never waits.
    expect(await gate.acquire('j', stop.signal, 10_000)).toBe('aborted');
    first.release();
    expect(gate.state.held).toBe(0);
    // With nobody waiting, the freed slot is free for the next comer.
    held(await gate.acquire('k', never, 10_000)).release();
  });
});
