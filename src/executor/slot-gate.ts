/**
 * The executor's slots as a gate in front of its containers. The queue worker takes more
 * attempts than slots (prefetchDepth in contract.ts); every attempt is set up as it arrives and
 * then passes this gate before its container starts, so at most `slots` containers run at once
 * and a prepared attempt starts the moment a container exits. A wait ends early when the
 * attempt's stop signal fires (drain, cancel) or when it has waited `maxWaitMs` (the executor
 * then hands the attempt back to the scheduler).
 *
 * A freed slot goes to the waiting job that holds the fewest slots, in arrival order within a
 * job (as FairTurns does for set-ups and commits): a new job's first attempt does not wait
 * behind the attempts another job has prefetched.
 */

import { Holdings, takeFairly } from './fair-pick.js';

/** What a wait for a slot ends in: the slot (call to give it back, idempotent), or why not. */
export type SlotWait = { readonly release: () => void } | 'aborted' | 'timeout';

interface Waiter {
  readonly grant: () => void;
}

/** A counting gate over the executor's slots, shared fairly between jobs. */
export class SlotGate {
  /** Slots held, per job and in all. */
  private readonly holdings = new Holdings();
  /** Waiters per job, in arrival order; jobs in the order they started waiting. */
  private readonly waiting = new Map<string, Waiter[]>();
  private waiters = 0;

  constructor(readonly slots: number) {}

  /** Containers running (slots held) and prepared attempts waiting for one. */
  get state(): { held: number; waiting: number } {
    return { held: this.holdings.total, waiting: this.waiters };
  }

  /** Wait for a slot for an attempt of `jobId`; at once when one is free and nobody waits. */
  acquire(jobId: string, signal: AbortSignal, maxWaitMs: number): Promise<SlotWait> {
    if (signal.aborted) return Promise.resolve('aborted');
    if (this.holdings.total < this.slots && this.waiters === 0) return Promise.resolve(this.take(jobId));
    return new Promise<SlotWait>((resolve) => {
      const finish = (outcome: SlotWait): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const waiter: Waiter = { grant: () => finish(this.take(jobId)) };
      const leave = (why: 'aborted' | 'timeout'): void => {
        const q = this.waiting.get(jobId);
        const i = q === undefined ? -1 : q.indexOf(waiter);
        if (q === undefined || i < 0) return;
        q.splice(i, 1);
        if (q.length === 0) this.waiting.delete(jobId);
        this.waiters--;
        finish(why);
      };
      const onAbort = (): void => leave('aborted');
      const timer = setTimeout(() => leave('timeout'), maxWaitMs);
      signal.addEventListener('abort', onAbort, { once: true });
      const q = this.waiting.get(jobId);
      if (q) q.push(waiter);
      else this.waiting.set(jobId, [waiter]);
      this.waiters++;
    });
  }

  private take(jobId: string): { release: () => void } {
    // A freed slot goes straight to a waiter, so none can overtake it meanwhile.
    return { release: this.holdings.hold(jobId, () => this.next()?.grant()) };
  }

  /** The next waiter (takeFairly: of the waiting job holding the fewest slots). */
  private next(): Waiter | undefined {
    const w = takeFairly(this.waiting, this.holdings.byJob);
    if (w !== undefined) this.waiters--;
    return w;
  }
}
