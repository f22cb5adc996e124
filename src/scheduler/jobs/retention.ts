/**
 * Finished jobs are purged once they have been finished for `job-retention` (default 7 days; 0
 * keeps them for ever). A job's record, tasks and commit records stay in Redis until purged:
 * about 2 KB per task (bench:dispatch, BENCH_MEMORY_BREAKDOWN), so a cluster that runs a
 * million tasks a week and never purges keeps gigabytes in Redis, which it must hold in memory
 * and copy whole at every rewrite of its append-only file. The committed outputs stay where
 * they were committed; only the records go, as with `POST /v1/jobs/:id/purge`.
 */
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../obs/log.js';

/** The framework's default `job-retention`. */
export const DEFAULT_JOB_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** Jobs purged per sweep at most: a backlog is worked off sweep by sweep, never in one long go. */
const PURGES_PER_SWEEP = 500;

/** How often the sweep runs: a tenth of the retention, between 1 s and 10 min. */
export function retentionSweepEveryMs(retentionMs: number): number {
  return Math.min(10 * 60_000, Math.max(1_000, Math.round(retentionMs / 10)));
}

/** What the sweep needs of the job service. */
export interface PurgesFinished {
  purgeFinishedBefore(cutoff: number, limit: number): Promise<string[]>;
}

/** Sweep finished jobs past `retentionMs` away, periodically, until stopped. */
export function startJobRetention(jobs: PurgesFinished, retentionMs: number, clock: Clock, logger: Logger): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const sweep = (): void => {
    if (running !== undefined) return;
    running = (async () => {
      try {
        const purged = await jobs.purgeFinishedBefore(clock.now() - retentionMs, PURGES_PER_SWEEP);
        if (purged.length > 0) logger.info({ purged: purged.length, first: purged[0], retentionMs }, 'purged finished jobs past their retention');
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'purging finished jobs past their retention failed; the next sweep tries again');
      } finally {
        running = undefined;
      }
    })();
  };
  const timer = setInterval(sweep, retentionSweepEveryMs(retentionMs));
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
