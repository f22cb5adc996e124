/**
 * The fair choice between jobs' waiters that FairTurns (set-ups and commits) and SlotGate
 * (containers) share: the next waiter is of the waiting job holding the fewest, ties going to
 * the job waiting longest (the Map's order), and the job served goes to the back of that order.
 * So a new job's first attempt goes before the backlog of another.
 */
export function takeFairly<T>(waiting: Map<string, T[]>, held: ReadonlyMap<string, number>): T | undefined {
  let best: string | undefined;
  let fewest = Infinity;
  for (const jobId of waiting.keys()) {
    const n = held.get(jobId) ?? 0;
    if (n < fewest) {
      fewest = n;
      best = jobId;
      if (n === 0) break;
    }
  }
  if (best === undefined) return undefined;
  const q = waiting.get(best) as T[];
  const w = q.shift();
  waiting.delete(best);
  if (q.length > 0) waiting.set(best, q);
  return w;
}

/** What each job holds (turns, slots) and all of them together. */
export class Holdings {
  private count = 0;
  /** Held per job (jobs holding none are absent). */
  readonly byJob = new Map<string, number>();

  get total(): number {
    return this.count;
  }

  /** Count one more for `jobId`; returns its release, which counts once and then calls `onRelease`. */
  hold(jobId: string, onRelease: () => void): () => void {
    this.count++;
    this.byJob.set(jobId, (this.byJob.get(jobId) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.count--;
      const n = (this.byJob.get(jobId) ?? 1) - 1;
      if (n === 0) this.byJob.delete(jobId);
      else this.byJob.set(jobId, n);
      onRelease();
    };
  }
}
