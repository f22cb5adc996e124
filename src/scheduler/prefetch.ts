/**
 * When the scheduler may send an executor more attempts than it has slots (its prefetch, see
 * prefetchDepth in executor/contract.ts): only while its attempts end quickly. A prepared
 * attempt waits inside the executor for the next container to exit; behind tasks that last it
 * would wait while another executor might have room, so a run of short results turns
 * prefetching on and one long run, or one attempt handed back for want of a slot, turns it off.
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
    if (ranMs === undefined) return;
    this.streaks.set(executorId, (this.streaks.get(executorId) ?? 0) + 1);
  }

  /** Attempts beyond its slots the executor may hold now: its prefetch `depth`, or 0. */
  extra(executorId: string, slots: number, depth: number): number {
    if (depth <= 0) return 0;
    return (this.streaks.get(executorId) ?? 0) >= Math.min(slots, PREFETCH_MIN_STREAK) ? depth : 0;
  }

  dropExecutor(executorId: string): void {
    this.streaks.delete(executorId);
  }
}
