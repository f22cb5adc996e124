/**
 * The adaptive dispatch window: how many attempts the scheduler keeps in
 * flight on each executor, at most its slots. Congestion control in the
 * manner of TCP Vegas and Netflix's concurrency-limits: the signal is the
 * queueing delay of each attempt (dispatched -> started, as the executor's
 * result reports the start), compared with a low baseline (the least delay
 * seen lately, which also cancels a constant clock skew between the hosts).
 *
 * Why: attempts an executor cannot start yet wait inside it (its queue, its
 * turns, its thread pool) in arrival order, so a new job's first task waits
 * behind all of them. Held back in the scheduler instead, the backlog stays
 * in the pending set, where fair share puts a new job's task first.
 *
 * What the window must not do is throttle work that merely lasts: the signal
 * is the wait before the start, never the run time; a wait counts as
 * congestion only when it is longer than the attempt then ran (most of the
 * window was waiting, not working: shrinking it cuts queue, not work, and a
 * window that holds attempts of `sleep 0.2` whose containers take 50 ms to
 * launch on a busy host keeps all its slots); an attempt in flight
 * longer than `youngMs` no longer counts against the window (it runs, or its
 * wait has been measured by then); congestion must show in attempts
 * dispatched at different times (`spreadMs`), so the queue one burst builds
 * for itself (many containers launched at once) does not shrink the window;
 * and a window with no sample for `quietMs` goes back to the slots.
 *
 * Decisions use only attempts dispatched after the window last changed, so it
 * changes at most once per measured round trip. Pure bookkeeping: time comes
 * in as arguments.
 */

/**
 * How long an attempt's workload ran, the run a wait is weighed against: from its start to its
 * exit, not to the end of the commit after it (`finishedAt`, for results of executors that do not
 * say when it exited). A no-op task's commit (its flushes, the ledger, its turn) is the
 * executor's own work and queues as its start does; counted as run it outweighed every wait, and
 * the window never shrank for short tasks (bench:dispatch: about 210 attempts in flight and a new
 * job's task 39-45 ms to start; weighed by the workload, 30-31 ms at the same throughput,
 * bench/results/dispatch-2026-12-07-s13.notes.md).
 */
export function workloadMs(result: { readonly startedAt: number; readonly exitedAt?: number; readonly finishedAt: number }): number {
  return Math.max(0, (result.exitedAt ?? result.finishedAt) - result.startedAt);
}

/** Tunables of the dispatch window. */
export interface DispatchWindowOptions {
  /** Off: every free slot is dispatchable, as without a window. */
  readonly enabled: boolean;
  /** The least window (capped by the executor's slots). */
  readonly floor: number;
  /** Queueing delay above the baseline that counts as congestion (ms). */
  readonly toleranceMs: number;
  /** Congested attempts must have been dispatched at least this far apart to shrink the window (ms). */
  readonly spreadMs: number;
  /** An attempt counts against the window for this long after its dispatch (ms). */
  readonly youngMs: number;
  /** Without a sample this long, the window goes back to the slots (ms). */
  readonly quietMs: number;
  /** The baseline is the least delay of the last one or two periods of this length (ms). */
  readonly baselineMs: number;
  /** Least time between two decisions (ms). */
  readonly minRoundMs: number;
  /** Least samples a decision is taken on. */
  readonly minSamples: number;
}

/** The defaults. */
export const DEFAULT_DISPATCH_WINDOW: DispatchWindowOptions = Object.freeze({
  // On: off until session 11 (it then cost 31 % of bench:dispatch's throughput); with the faster
  // dispatch path of 2026-12-07 it costs none within noise and halves a new job's wait under load
  // (bench/results/dispatch-2026-12-07-s11-window.notes.md).
  enabled: true,
  floor: 8,
  // 15, not 10, since the wait is weighed against the workload alone (workloadMs): at 10 the
  // window held no-op tasks to about 90 in flight, a p50 of 26 ms to start, and cost 18 % of
  // their throughput; at 15 about 110, 30 ms, and no throughput within the runs' spread.
  toleranceMs: 15,
  spreadMs: 25,
  youngMs: 1000,
  quietMs: 2000,
  baselineMs: 30_000,
  minRoundMs: 20,
  minSamples: 4,
});

interface Sent {
  readonly dispatchedAt: number;
  /** Young attempts on the executor when this one was dispatched (those it could queue behind). */
  readonly ahead: number;
  /** Whether its start delay says anything about queueing (not when the executor was still launching). */
  readonly sample: boolean;
}

interface ExecWindow {
  slots: number;
  window: number;
  readonly sent: Map<string, Sent>;
  lastChangeAt: number;
  lastSampleAt: number;
  baseCur: number;
  basePrev: number;
  bucketStart: number;
  roundStart: number;
  samples: number;
  congested: number;
  firstCongested: number;
  lastCongested: number;
  /** Dispatch time of the first congested attempt of the rounds congested in a row (Infinity: none). */
  streakFirst: number;
  excess: number[];
  /** The window held back dispatchable work since the last decision. */
  limited: boolean;
}

/** A window change, for logs and tests. */
export interface WindowChange {
  readonly executorId: string;
  readonly from: number;
  readonly to: number;
  readonly why: 'congested' | 'prompt' | 'quiet';
}

/** Per-executor dispatch windows. */
export class DispatchWindows {
  readonly opts: DispatchWindowOptions;
  private readonly execs = new Map<string, ExecWindow>();
  /** Called on every change of a window (logging). */
  onChange: ((c: WindowChange) => void) | undefined;

  constructor(options: Partial<DispatchWindowOptions> = {}) {
    this.opts = { ...DEFAULT_DISPATCH_WINDOW, ...options };
  }

  private state(executorId: string, slots: number, now: number): ExecWindow {
    let s = this.execs.get(executorId);
    if (!s) {
      s = {
        slots, window: slots, sent: new Map(), lastChangeAt: now, lastSampleAt: now,
        baseCur: Infinity, basePrev: Infinity, bucketStart: now, roundStart: now,
        samples: 0, congested: 0, firstCongested: Infinity, lastCongested: -Infinity, streakFirst: Infinity, excess: [], limited: false,
      };
      this.execs.set(executorId, s);
    } else if (s.slots !== slots) {
      s.slots = slots;
      s.window = Math.min(s.window, slots);
    }
    return s;
  }

  private floorOf(s: ExecWindow): number {
    return Math.max(1, Math.min(s.slots, this.opts.floor));
  }

  private young(s: ExecWindow, now: number): number {
    const cutoff = now - this.opts.youngMs;
    let n = 0;
    for (const x of s.sent.values()) if (x.dispatchedAt > cutoff) n++;
    return n;
  }

  /** Attempts went out to an executor (record them before the queue write: a fast result must find them). */
  dispatched(executorId: string, slots: number, attemptIds: readonly string[], now: number, sample = true): void {
    if (!this.opts.enabled) return;
    const s = this.state(executorId, slots, now);
    let ahead = this.young(s, now);
    for (const id of attemptIds) s.sent.set(id, { dispatchedAt: now, ahead: ahead++, sample });
  }

  /** An attempt will not report (enqueue failed, lost, stale): drop it without a sample. */
  forget(executorId: string, attemptId: string): void {
    this.execs.get(executorId)?.sent.delete(attemptId);
  }

  /** The executor is gone. */
  dropExecutor(executorId: string): void {
    this.execs.delete(executorId);
  }

  /**
   * An attempt ended; `startedAt` is when its executor started it (undefined: it never
   * started, or the time means nothing, as for a synthetic LOST result) and `runMs` how long its
   * workload ran then, without the commit after it (both on the executor's clock).
   */
  finished(executorId: string, attemptId: string, startedAt: number | undefined, now: number, runMs = 0): void {
    const s = this.execs.get(executorId);
    const x = s?.sent.get(attemptId);
    if (!s || !x) return;
    s.sent.delete(attemptId);
    if (startedAt === undefined || !x.sample || !Number.isFinite(startedAt)) return;
    const delay = startedAt - x.dispatchedAt;
    if (now - s.bucketStart >= this.opts.baselineMs) {
      s.basePrev = s.baseCur;
      s.baseCur = Infinity;
      s.bucketStart = now;
    }
    s.baseCur = Math.min(s.baseCur, delay);
    s.lastSampleAt = now;
    // Attempts dispatched before the last change measure the old window.
    if (x.dispatchedAt < s.lastChangeAt) return;
    const excess = delay - Math.min(s.baseCur, s.basePrev);
    s.samples++;
    // Fewer attempts ahead than the floor: a smaller window could not have shortened its wait.
    // A wait shorter than the run: the window was mostly working, and shrinking it would cut work.
    if (excess > this.opts.toleranceMs && excess > runMs && x.ahead >= this.floorOf(s)) {
      s.congested++;
      s.firstCongested = Math.min(s.firstCongested, x.dispatchedAt);
      s.lastCongested = Math.max(s.lastCongested, x.dispatchedAt);
      s.excess.push(excess);
    }
    if (s.samples >= this.opts.minSamples && now - s.roundStart >= this.opts.minRoundMs) this.decide(executorId, s, now);
  }

  private decide(executorId: string, s: ExecWindow, now: number): void {
    const from = s.window;
    const congested = s.congested * 2 > s.samples;
    // Rounds congested in a row make one streak; a prompt round ends it. The streak's attempts
    // must span spreadMs of dispatches: one burst's attempts all went out at once.
    if (congested) s.streakFirst = Math.min(s.streakFirst, s.firstCongested);
    else s.streakFirst = Infinity;
    if (congested && s.lastCongested - s.streakFirst >= this.opts.spreadMs) {
      s.streakFirst = Infinity;
      // Shrink in proportion to how far past the tolerance the wait is (a gradient), by half at most.
      s.excess.sort((a, b) => a - b);
      const median = s.excess[s.excess.length >> 1] ?? this.opts.toleranceMs;
      const factor = Math.min(0.9, Math.max(0.5, this.opts.toleranceMs / median));
      s.window = Math.max(this.floorOf(s), Math.floor(s.window * factor));
      if (s.window !== from) this.changed(executorId, s, from, 'congested', now);
    } else if (s.congested * 4 <= s.samples && s.limited && s.window < s.slots) {
      s.window = Math.min(s.slots, s.window + Math.max(1, Math.floor(s.window * 0.1)));
      this.changed(executorId, s, from, 'prompt', now);
    }
    s.roundStart = now;
    s.samples = 0;
    s.congested = 0;
    s.firstCongested = Infinity;
    s.lastCongested = -Infinity;
    s.excess = [];
    s.limited = false;
  }

  private changed(executorId: string, s: ExecWindow, from: number, why: WindowChange['why'], now: number): void {
    s.lastChangeAt = now;
    this.onChange?.({ executorId, from, to: s.window, why });
  }

  /**
   * The free slots placement may fill on an executor now: its nominal free slots, capped by
   * what its window leaves. `wanted`: work is waiting (a window that holds work back may grow).
   */
  dispatchable(executorId: string, slots: number, free: number, now: number, wanted = true): number {
    if (!this.opts.enabled) return free;
    const s = this.state(executorId, slots, now);
    if (s.window < s.slots && now - Math.max(s.lastSampleAt, s.lastChangeAt) >= this.opts.quietMs) {
      const from = s.window;
      s.window = s.slots;
      this.changed(executorId, s, from, 'quiet', now);
    }
    const allowed = Math.min(free, Math.max(0, s.window - this.young(s, now)));
    if (allowed < free && wanted) s.limited = true;
    return allowed;
  }

  /** The current window of an executor (undefined: none kept for it). */
  window(executorId: string): number | undefined {
    return this.execs.get(executorId)?.window;
  }

  /** Every executor's window (metrics). */
  entries(): [string, number][] {
    return [...this.execs].map(([id, s]) => [id, s.window]);
  }
}
