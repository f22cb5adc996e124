/**
 * Fan-out of job events to the streams watching each job (SSE, gRPC WatchJob):
 * one listener on the job service, whatever the number of watchers.
 */
import type { JobEvent } from './service.js';

/** Watchers of job events, by job id. Attach `listener` to the job service's 'event'. */
export class JobWatchers {
  private readonly byJob = new Map<string, Set<(e: JobEvent) => void>>();

  /** Hand this to `jobs.on('event', …)`. */
  readonly listener = (e: JobEvent): void => {
    for (const fn of this.byJob.get(e.jobId) ?? []) fn(e);
  };

  /** Watch one job's events; returns the function that stops watching. */
  watch(jobId: string, fn: (e: JobEvent) => void): () => void {
    let set = this.byJob.get(jobId);
    if (!set) this.byJob.set(jobId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.byJob.get(jobId) === set) this.byJob.delete(jobId);
    };
  }
}
