/**
 * The executor's slots as a gate in front of its containers. The queue worker takes more
 * attempts than slots (prefetchDepth in contract.ts); every attempt is set up as it arrives and
 * then passes this gate before its container starts, so at most `slots` containers run at once
 * and a prepared attempt starts the moment a container exits. Waiters are served in arrival
 * order; a wait ends early when the attempt's stop signal fires (drain, cancel) or when it has
 * waited `maxWaitMs` (the executor then hands the attempt back to the scheduler).
 */

/** What a wait for a slot ends in: the slot (call to give it back, idempotent), or why not. */
export type SlotWait = { readonly release: () => void } | 'aborted' | 'timeout';

interface Waiter {
  readonly grant: () => void;
}

/** A counting gate over the executor's slots. */
export class SlotGate {
  private held = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly slots: number) {}

  /** Containers running (slots held) and prepared attempts waiting for one. */
  get state(): { held: number; waiting: number } {
    return { held: this.held, waiting: this.waiters.length };
  }

  /** Wait for a slot; at once when one is free and nobody waits ahead. */
  acquire(signal: AbortSignal, maxWaitMs: number): Promise<SlotWait> {
    if (signal.aborted) return Promise.resolve('aborted');
    if (this.held < this.slots && this.waiters.length === 0) return Promise.resolve(this.take());
    return new Promise<SlotWait>((resolve) => {
      const finish = (outcome: SlotWait): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const waiter: Waiter = { grant: () => finish(this.take()) };
      const leave = (why: 'aborted' | 'timeout'): void => {
        const i = this.waiters.indexOf(waiter);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        finish(why);
      };
      const onAbort = (): void => leave('aborted');
      const timer = setTimeout(() => leave('timeout'), maxWaitMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private take(): { release: () => void } {
    this.held++;
    let done = false;
    return {
      release: () => {
        if (done) return;
        done = true;
        this.held--;
        // The slot goes straight to the longest waiter, so none can overtake it meanwhile.
        const next = this.waiters.shift();
        next?.grant();
      },
    };
  }
}
