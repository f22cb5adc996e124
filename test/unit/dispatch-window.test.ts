/**
 * The adaptive dispatch window (issue 16, item 4): it shrinks while attempts
 * wait to start, grows back when they start promptly, stays between its
 * floor and the executor's slots, and never throttles work that merely lasts
 * (long or sleeping attempts, one burst of container launches). Placement
 * fills only the slots the window leaves, but grows and releases executors by
 * their free slots.
 */
import { describe, expect, it } from 'vitest';
import { DispatchWindows, workloadMs, type DispatchWindowOptions } from '../../src/scheduler/dispatch-window.js';
import { place } from '../../src/scheduler/placement/index.js';
import { exec, indexOf, offer, snap, task } from './placement-builders.js';

const E = 'e1';

/** Dispatch one attempt at `at`; it starts `wait` ms later and ends `run` ms after that. */
function oneAttempt(w: DispatchWindows, id: string, slots: number, at: number, wait: number, run: number): void {
  w.dispatched(E, slots, [id], at);
  w.finished(E, id, at + wait, at + wait + run, run);
}

interface Attempt { readonly id: string; readonly at: number; readonly wait: number; readonly run: number }

/**
 * Play attempts in time order (dispatches and results interleaved, as they would happen), asking
 * for the dispatchable slots before each dispatch. Returns the window after each result.
 */
function play(w: DispatchWindows, slots: number, attempts: readonly Attempt[], wanted = true): number[] {
  const events: { t: number; kind: 0 | 1; a: Attempt }[] = [];
  for (const a of attempts) {
    events.push({ t: a.at, kind: 0, a });
    events.push({ t: a.at + a.wait + a.run, kind: 1, a });
  }
  events.sort((x, y) => x.t - y.t || x.kind - y.kind);
  const seen: number[] = [];
  for (const e of events) {
    if (e.kind === 0) {
      w.dispatchable(E, slots, slots, e.t, wanted);
      w.dispatched(E, slots, [e.a.id], e.t);
    } else {
      w.finished(E, e.a.id, e.a.at + e.a.wait, e.t, e.a.run);
      seen.push(w.window(E) ?? NaN);
    }
  }
  return seen;
}

/** `n` attempts dispatched every `every` ms from `from`, each waiting longer than the one before. */
function congestedStream(prefix: string, from: number, n: number, every = 10): Attempt[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, at: from + i * every, wait: 200 + i, run: 1 }));
}

/** `n` attempts dispatched every `every` ms from `from`, each starting within 2 ms. */
function promptStream(prefix: string, from: number, n: number, every = 30): Attempt[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, at: from + i * every, wait: 2, run: 1 }));
}

/**
 * A closed loop: an executor that starts one attempt every `serviceMs` in arrival order (one
 * starter, like a saturated executor's set-up path), each attempt ending `runMs` after its
 * start; the scheduler tops the executor up to what the window allows every millisecond, with
 * endless work pending. Returns the window at the end and the waits of the last attempts.
 */
function simulate(opts: Partial<DispatchWindowOptions>, slots: number, serviceMs: number, runMs: number, totalMs: number): { window: number; waits: number[]; started: number } {
  const w = new DispatchWindows({ enabled: true, ...opts });
  const queue: { id: string; at: number }[] = [];
  const running: { id: string; at: number; startedAt: number; endsAt: number }[] = [];
  let busy = 0;
  let next = 0;
  let nextStart = 0;
  let started = 0;
  const waits: number[] = [];
  for (let now = 0; now < totalMs; now++) {
    for (let i = running.length - 1; i >= 0; i--) {
      const r = running[i];
      if (r && r.endsAt <= now) {
        running.splice(i, 1);
        busy--;
        w.finished(E, r.id, r.startedAt, now, runMs);
      }
    }
    while (queue.length > 0 && nextStart <= now) {
      const q = queue.shift();
      if (!q) break;
      running.push({ id: q.id, at: q.at, startedAt: now, endsAt: now + runMs });
      started++;
      if (now > totalMs - 1000) waits.push(now - q.at);
      nextStart = now + serviceMs;
    }
    if (nextStart < now) nextStart = now;
    const n = w.dispatchable(E, slots, slots - busy, now);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(`a${next++}`);
    if (ids.length > 0) {
      w.dispatched(E, slots, ids, now);
      for (const id of ids) queue.push({ id, at: now });
      busy += ids.length;
    }
  }
  return { window: w.window(E) ?? slots, waits, started };
}

const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;

describe('dispatch window: the controller', () => {
  it('starts at the slots and lets every free slot take work while nothing queues', () => {
    const w = new DispatchWindows({ enabled: true });
    expect(w.dispatchable(E, 100, 100, 0)).toBe(100);
    expect(w.window(E)).toBe(100);
  });

  it('shrinks while attempts dispatched at different times wait to start, never below its floor', () => {
    const w = new DispatchWindows({ enabled: true, floor: 8 });
    w.dispatchable(E, 100, 100, 0);
    // A baseline: attempts alone start within 5 ms.
    for (let i = 0; i < 4; i++) oneAttempt(w, `base${i}`, 100, i * 10, 5, 1);
    expect(w.window(E)).toBe(100);
    // Then one every 10 ms, each waiting longer than the last (20 and more in flight).
    const seen = play(w, 100, congestedStream('r', 100, 400));
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(8);
    expect(Math.min(...seen)).toBeLessThan(100);
    expect(w.window(E)).toBe(8);
    // What placement may fill follows: 8 young attempts in flight fill the window.
    const t = 100 + 4000 + 700;
    w.dispatched(E, 100, Array.from({ length: 8 }, (_, i) => `y${i}`), t);
    expect(w.dispatchable(E, 100, 92, t + 1)).toBe(0);
    // And it never gives more than what is free.
    expect(w.dispatchable(E, 100, 3, t + 5000)).toBeLessThanOrEqual(3);
  });

  /** A window of 50 slots shrunk by a congested stream, and the window it shrank to. */
  const shrunk = (): { w: DispatchWindows; low: number } => {
    const w = new DispatchWindows({ enabled: true, floor: 4, quietMs: 1e9 });
    w.dispatchable(E, 50, 50, 0);
    for (let i = 0; i < 4; i++) oneAttempt(w, `base${i}`, 50, i, 2, 1);
    play(w, 50, congestedStream('c', 10, 300));
    return { w, low: w.window(E) ?? NaN };
  };

  it('grows back, at most to the slots, when attempts start promptly while it holds work back', () => {
    const { w, low } = shrunk();
    expect(low).toBeLessThan(10);
    // Prompt starts, with the window the limit (work waiting): it grows, step by step, to the slots.
    const seen = play(w, 50, promptStream('p', 10_000, 2000));
    for (let i = 1; i < seen.length; i++) expect(seen[i] as number).toBeGreaterThanOrEqual(seen[i - 1] as number);
    expect(Math.max(...seen)).toBe(50);
    expect(w.window(E)).toBe(50);
  });

  it('does not grow while it holds nothing back', () => {
    const { w, low } = shrunk();
    expect(low).toBeLessThan(50);
    play(w, 50, promptStream('p', 10_000, 500), false);
    expect(w.window(E)).toBe(low);
  });

  it('ignores how long attempts run: long and sleeping attempts that start promptly keep every slot', () => {
    const w = new DispatchWindows({ enabled: true });
    // 19 slots of `sleep 0.2`: a refill every ~11 ms starts within a few ms and ends 200 ms
    // later, reported only then (18 more in flight meanwhile); some run for minutes.
    const attempts = Array.from({ length: 500 }, (_, i) => ({ id: `s${i}`, at: 11 * i, wait: 3 + (i % 5), run: i % 50 === 0 ? 300_000 : 200 }));
    const seen = play(w, 19, attempts);
    expect(Math.min(...seen)).toBe(19);
  });

  it('does not shrink for the queue one burst builds for itself (19 containers launched at once)', () => {
    const w = new DispatchWindows({ enabled: true });
    w.dispatchable(E, 19, 19, 0);
    const ids = Array.from({ length: 19 }, (_, i) => `b${i}`);
    w.dispatched(E, 19, ids, 0);
    // Launches one after the other, 30 ms each; every one then sleeps 200 ms.
    ids.forEach((id, i) => w.finished(E, id, 30 * i, 30 * i + 200, 200));
    expect(w.window(E)).toBe(19);
    // The refills, one at a time as slots free, start promptly.
    for (let i = 0; i < 100; i++) oneAttempt(w, `r${i}`, 19, 800 + i * 11, 4, 200);
    expect(w.window(E)).toBe(19);
  });

  it('keeps every slot while attempts wait less than they then run (waves of sleeps on a busy host)', () => {
    const w = new DispatchWindows({ enabled: true });
    // 19 slots of `sleep 0.3` refilled in waves: each wave's 19 go out over 72 ms and queue for
    // their container launches, 15 ms each, so the last waits 270 ms, then runs 300 ms.
    const attempts: Attempt[] = [];
    for (let wave = 0; wave < 30; wave++) {
      for (let i = 0; i < 19; i++) attempts.push({ id: `w${wave}-${i}`, at: wave * 700 + 4 * i, wait: 15 * i, run: 300 });
    }
    const seen = play(w, 19, attempts);
    expect(Math.min(...seen)).toBe(19);
    // The same waits in front of attempts that run 5 ms are a queue: the window shrinks.
    const v = new DispatchWindows({ enabled: true });
    const short = play(v, 19, attempts.map((a) => ({ ...a, run: 5 })));
    expect(Math.min(...short)).toBeLessThan(19);
  });

  it('weighs a wait against the workload\'s run, not the commit after it (workloadMs)', () => {
    // No-op tasks on an executor getting busy: the first start at once, then each waits 40 ms
    // up to 54 to start, runs 1 ms, and takes 60 ms to commit (its flushes, the ledger, its turn);
    // its result arrives when the commit is done.
    const results = Array.from({ length: 60 }, (_, i) => {
      const startedAt = i * 10 + (i < 5 ? 2 : 40 + (i % 15));
      return { id: `c${i}`, at: i * 10, startedAt, exitedAt: startedAt + 1, finishedAt: startedAt + 61 };
    });
    const least = (runOf: (r: (typeof results)[number]) => number): number => {
      const w = new DispatchWindows({ enabled: true });
      const events = results.flatMap((r) => [{ t: r.at, end: false, r }, { t: r.finishedAt, end: true, r }]);
      events.sort((x, y) => x.t - y.t || Number(x.end) - Number(y.end));
      let min = Infinity;
      for (const e of events) {
        if (!e.end) {
          w.dispatchable(E, 40, 40, e.t);
          w.dispatched(E, 40, [e.r.id], e.t);
        } else {
          w.finished(E, e.r.id, e.r.startedAt, e.t, runOf(e.r));
          min = Math.min(min, w.window(E) ?? NaN);
        }
      }
      return min;
    };
    expect(workloadMs(results[9] as (typeof results)[number])).toBe(1);
    // Weighed by the workload: a queue, the window shrinks to its floor.
    expect(least(workloadMs)).toBe(8);
    // Weighed to the end of the commit (what the coordinator did before): each wait looked
    // shorter than the "run", and the window kept every slot.
    expect(least((r) => r.finishedAt - r.startedAt)).toBe(40);
    // A result without exitedAt (an executor of contract 2.0) is weighed to its end, as before.
    expect(workloadMs({ startedAt: 5, finishedAt: 70 })).toBe(65);
  });

  it('stops counting an attempt against the window once it has been in flight past youngMs', () => {
    const w = new DispatchWindows({ enabled: true, floor: 2, youngMs: 1000, quietMs: 1e9 });
    w.dispatchable(E, 40, 40, 0);
    for (let i = 0; i < 4; i++) oneAttempt(w, `base${i}`, 40, i, 1, 1);
    play(w, 40, congestedStream('c', 10, 300));
    const t = 10_000;
    const win = w.window(E) ?? NaN;
    expect(win).toBeLessThan(40);
    w.dispatched(E, 40, Array.from({ length: win }, (_, i) => `long${i}`), t);
    expect(w.dispatchable(E, 40, 40 - win, t + 10)).toBe(0);
    // A second later they still hold their slots, but no longer the window.
    expect(w.dispatchable(E, 40, 40 - win, t + 1001)).toBe(Math.min(win, 40 - win));
  });

  it('goes back to the slots after quietMs without a sample, and measures only attempts sent after a change', () => {
    const w = new DispatchWindows({ enabled: true, floor: 4, quietMs: 2000 });
    w.dispatchable(E, 64, 64, 0);
    for (let i = 0; i < 4; i++) oneAttempt(w, `base${i}`, 64, i, 1, 1);
    // Congested attempts dispatched 2 ms apart; their results arrive 10 ms apart after a second.
    for (let i = 0; i < 64; i++) w.dispatched(E, 64, [`y${i}`], 10 + i * 2);
    const seen: number[] = [];
    for (let i = 0; i < 64; i++) {
      w.finished(E, `y${i}`, 1000 + i * 10, 1000 + i * 10 + 1, 1);
      seen.push(w.window(E) ?? NaN);
    }
    // Halved once, after enough of them; everything later measured the old window and is ignored.
    expect(new Set(seen)).toEqual(new Set([64, 32]));
    expect(w.window(E)).toBe(32);
    expect(w.dispatchable(E, 64, 64, 1700)).toBeLessThanOrEqual(32);
    expect(w.dispatchable(E, 64, 64, 1641 + 2000)).toBe(64);
    expect(w.window(E)).toBe(64);
  });

  it('turned off, every free slot takes work', () => {
    const w = new DispatchWindows({ enabled: false });
    play(w, 100, congestedStream('c', 0, 300));
    expect(w.dispatchable(E, 100, 100, 3000)).toBe(100);
  });

  it('in a closed loop, keeps the executor busy with a short queue instead of one as deep as its slots', () => {
    // 200 slots, one start every 2 ms, attempts that run 5 ms: without a window every slot
    // holds an attempt and each waits ~400 ms to start.
    const off = simulate({ enabled: false }, 200, 2, 5, 10_000);
    const on = simulate({}, 200, 2, 5, 10_000);
    expect(p50(off.waits)).toBeGreaterThan(300);
    expect(on.window).toBeLessThan(40);
    expect(p50(on.waits)).toBeLessThan(30);
    // The executor stays saturated: starts within 5 % of the unwindowed loop.
    expect(on.started).toBeGreaterThan(off.started * 0.95);
  });
});

describe('dispatch window: placement', () => {
  const ten = Array.from({ length: 10 }, (_, i) => task({ taskId: `t${i}` }));

  it('fills only the slots the window leaves', () => {
    const e = exec('r1-h1', { slots: 10, freeSlots: 10, dispatchSlots: 2 });
    const plan = place(snap(0, { executors: [e] }), indexOf(ten));
    expect(plan.assigned.length).toBe(2);
  });

  it('launches no executor for work the window holds back on free slots', () => {
    const e = exec('r1-h1', { slots: 10, freeSlots: 10, dispatchSlots: 0 });
    const plan = place(snap(0, { executors: [e], offers: [offer('r1-h2', { free: { cpus: 4, mem: 8192, disk: 0 } })] }), indexOf(ten));
    expect(plan.assigned.length).toBe(0);
    expect(plan.launches).toEqual([]);
    // The same executor with its slots busy: the work needs another executor.
    const busy = exec('r1-h1', { slots: 10, freeSlots: 0 });
    expect(place(snap(0, { executors: [busy], offers: [offer('r1-h2', { free: { cpus: 4, mem: 8192, disk: 0 } })] }), indexOf(ten)).launches.length).toBeGreaterThan(0);
  });

  it('releases an idle executor by its free slots, whatever its window', () => {
    const e = exec('r1-h1', { slots: 10, freeSlots: 10, dispatchSlots: 4, idleSince: 0, freeSince: 0 });
    const plan = place(snap(10 * 60_000, { executors: [e] }), indexOf([]));
    expect(plan.releases.map((r) => r.executorId)).toEqual([e.executorId]);
  });
});
