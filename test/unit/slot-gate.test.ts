/**
 * SlotGate (src/executor/slot-gate.ts): at most `slots` holders; waiters served in arrival order,
 * a freed slot handed straight to the longest waiter; a wait ends on abort or after its limit
 * without taking a slot; a release counts once.
 */
import { describe, expect, it } from 'vitest';
import { SlotGate, type SlotWait } from '../../src/executor/slot-gate.js';

const held = (w: SlotWait): { release: () => void } => {
  if (typeof w === 'string') throw new Error(`expected a slot, got ${w}`);
  return w;
};

describe('SlotGate', () => {
  it('grants free slots at once and queues the rest in arrival order', async () => {
    const gate = new SlotGate(2);
    const never = new AbortController().signal;
    const a = held(await gate.acquire(never, 10_000));
    const b = held(await gate.acquire(never, 10_000));
    const order: string[] = [];
    const c = gate.acquire(never, 10_000).then((w) => (order.push('c'), held(w)));
    const d = gate.acquire(never, 10_000).then((w) => (order.push('d'), held(w)));
    expect(gate.state).toEqual({ held: 2, waiting: 2 });
    a.release();
    a.release(); // counted once
    const cs = await c;
    expect(gate.state).toEqual({ held: 2, waiting: 1 });
    // A newcomer does not overtake the waiter the next slot belongs to.
    const e = gate.acquire(never, 10_000).then((w) => (order.push('e'), held(w)));
    b.release();
    const ds = await d;
    cs.release();
    const es = await e;
    expect(order).toEqual(['c', 'd', 'e']);
    ds.release();
    es.release();
    expect(gate.state).toEqual({ held: 0, waiting: 0 });
  });

  it('ends a wait on abort or after its limit, without taking a slot', async () => {
    const gate = new SlotGate(1);
    const stop = new AbortController();
    const first = held(await gate.acquire(stop.signal, 10_000));
    const aborted = gate.acquire(stop.signal, 10_000);
    const t0 = Date.now();
    const timedOut = gate.acquire(new AbortController().signal, 80);
    stop.abort();
    expect(await aborted).toBe('aborted');
    expect(await timedOut).toBe('timeout');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(70);
    expect(gate.state).toEqual({ held: 1, waiting: 0 });
    // An aborted signal never waits.
    expect(await gate.acquire(stop.signal, 10_000)).toBe('aborted');
    first.release();
    expect(gate.state.held).toBe(0);
  });
});
