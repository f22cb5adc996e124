/**
 * When the scheduler may send an executor more attempts than it has slots (its prefetch, see
 * prefetchDepth in executor/contract.ts): only while nothing says its attempts last. A prepared
 * attempt waits inside the executor for the next container to exit; behind tasks that last it
 * would wait while another executor might have room. A new executor prefetches from its start:
 * with short tasks its next wave is ready the moment the first one ends (on a new job of 100 ×
 * `sleep 0.2` on 19 slots, the second wave started 60-80 ms after the first one ended without
 * it). One long run, or one attempt handed back for want of a slot, turns prefetching off, and a
 * run of short results turns it on again.
 * Pure bookkeeping: the coordinator feeds it results and asks it at each placement pass.
 */

/** A run (container start to result) shorter than this counts as short. */
export const PREFETCH_SHORT_RUN_MS = 1000;
/** Short results in a row (at most the executor's slots) before its queue is filled ahead. */
export const PREFETCH_MIN_STREAK = 4;

/**
 * How many attempts an executor may be sent now: `windowed` (its dispatch window's share of its
 * free slots) while the window holds any back or is shrunk below its slots (then it holds the
 * prefetch back too, even with no slot free: prefetch is the very queueing a window exists to
 * stop); otherwise its free slots and its prefetch (`ahead`), less what it holds already (`busy`
 * counts prefetched attempts too).
 */
export function dispatchableSlots(o: { readonly slots: number; readonly busy: number; readonly windowed: number; readonly window: number | undefined; readonly ahead: number }): number {
  const free = Math.max(0, o.slots - o.busy);
  if (o.windowed < free || (o.window !== undefined && o.window < o.slots)) return Math.min(o.windowed, free);
  return Math.max(0, o.slots + o.ahead - o.busy);
}

/** Per-executor runs of short results. */
export class PrefetchPolicy {
  /** Short results in a row since the executor's last long run or hand-back; absent: none of those yet. */
  private readonly streaks = new Map<string, number>();

  /**
   * An attempt on the executor ended: `ranMs` is its run, undefined when it never ran (lost,
   * cancelled before its start); `handedBack` when it found no slot in time.
   */
  finished(executorId: string, ranMs: number | undefined, handedBack: boolean): void {
    if (handedBack || (ranMs !== undefined && ranMs >= PREFETCH_SHORT_RUN_MS)) {
      this.streaks.set(executorId, 0);
      return;
    }
    const streak = this.streaks.get(executorId);
    if (ranMs === undefined || streak === undefined) return;
    this.streaks.set(executorId, streak + 1);
  }

  /**
   * Attempts beyond its slots the executor may hold now: its prefetch `depth`, or 0 after a long
   * run or a hand-back until PREFETCH_MIN_STREAK short results in a row (at most its slots).
   */
  extra(executorId: string, slots: number, depth: number): number {
    if (depth <= 0) return 0;
    const streak = this.streaks.get(executorId);
    return streak === undefined || streak >= Math.min(slots, PREFETCH_MIN_STREAK) ? depth : 0;
  }

  /** An executor that ran before this scheduler knew it (recovered after a restart): no optimism, its streak starts at zero. */
  unknown(executorId: string): void {
    if (!this.streaks.has(executorId)) this.streaks.set(executorId, 0);
  }

  dropExecutor(executorId: string): void {
    this.streaks.delete(executorId);
  }
}
