/**
 * A counting gate shared fairly between jobs: at most `limit` holders at once, and a freed place
 * goes to the waiting job that holds the fewest, in arrival order within a job (ties to the job
 * waiting longest, which then goes to the back of that order). So a new job's first attempt goes
 * before the backlog of another.
 *
 * The executor keeps two:
 * - its turns at its own work on attempts (set-ups and commits; DEFAULT_TURNS in executor.ts);
 * - its slots, in front of its containers. The queue worker takes more attempts than slots
 *   (prefetchDepth in contract.ts); each is set up as it arrives, then waits here, so at most
 *   `slots` containers run at once and a prepared attempt starts the moment a container exits.
 *   That wait ends early when the attempt's stop signal fires (drain, cancel) or after
 *   `maxWaitMs` (the executor then hands the attempt back to the scheduler).
 */

/** What a wait ends in: the place (call to give it back, idempotent), or why not. */
export type GateWait = { readonly release: () => void } | 'aborted' | 'timeout';

interface Waiter {
  readonly grant: () => void;
}

/** A counting gate over `limit` places, shared fairly between jobs. */
export class FairGate {
  private held = 0;
  /** Places held per job (jobs holding none are absent). */
  private readonly byJob = new Map<string, number>();
  /** Waiters per job, in arrival order; jobs in the order they started waiting. */
  private readonly waiting = new Map<string, Waiter[]>();
  private waiters = 0;

  constructor(readonly limit: number) {}

  /** Places held and waits under way. */
  get state(): { held: number; waiting: number } {
    return { held: this.held, waiting: this.waiters };
  }

  /** Wait for a place for an attempt of `jobId` that nothing ends early; resolves to its release. */
  async take(jobId: string): Promise<() => void> {
    return ((await this.acquire(jobId)) as { release: () => void }).release;
  }

  /** A place for an attempt of `jobId` now, when one is free and nobody waits; else undefined. */
  tryAcquire(jobId: string): { release: () => void } | undefined {
    return this.held < this.limit && this.waiters === 0 ? this.take1(jobId) : undefined;
  }

  /**
   * Wait for a place for an attempt of `jobId`: at once when one is free and nobody waits; ended
   * early by `signal` or after `maxWaitMs` when given.
   */
  acquire(jobId: string, signal?: AbortSignal, maxWaitMs?: number): Promise<GateWait> {
    if (signal?.aborted === true) return Promise.resolve('aborted');
    const now = this.tryAcquire(jobId);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<GateWait>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (outcome: GateWait): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const waiter: Waiter = { grant: () => finish(this.take1(jobId)) };
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
      if (maxWaitMs !== undefined) timer = setTimeout(() => leave('timeout'), maxWaitMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      const q = this.waiting.get(jobId);
      if (q) q.push(waiter);
      else this.waiting.set(jobId, [waiter]);
      this.waiters++;
    });
  }

  private take1(jobId: string): { release: () => void } {
    this.held++;
    this.byJob.set(jobId, (this.byJob.get(jobId) ?? 0) + 1);
    let done = false;
    return {
      release: () => {
        if (done) return;
        done = true;
        this.held--;
        const n = (this.byJob.get(jobId) ?? 1) - 1;
        if (n === 0) this.byJob.delete(jobId);
        else this.byJob.set(jobId, n);
        // The place goes straight to a waiter, so none can overtake it meanwhile.
        this.next()?.grant();
      },
    };
  }

  /** The next waiter: of the waiting job holding the fewest places. */
  private next(): Waiter | undefined {
    let best: string | undefined;
    let fewest = Infinity;
    for (const jobId of this.waiting.keys()) {
      const n = this.byJob.get(jobId) ?? 0;
      if (n < fewest) {
        fewest = n;
        best = jobId;
        if (n === 0) break;
      }
    }
    if (best === undefined) return undefined;
    const q = this.waiting.get(best) as Waiter[];
    const w = q.shift();
    this.waiting.delete(best);
    if (q.length > 0) this.waiting.set(best, q);
    this.waiters--;
    return w;
  }
}
