/**
 * Finished jobs are purged once they have been finished for `job-retention` (default 7 days; 0
 * keeps them for ever). A job's record, tasks and commit records stay in Redis until purged:
 * about 2 KB per task (bench:dispatch, BENCH_MEMORY_BREAKDOWN), so a cluster that runs a
 * million tasks a week and never purges keeps gigabytes in Redis, which it must hold in memory
 * and copy whole at every rewrite of its append-only file. The committed outputs stay where
 * they were committed; only the records go, as with `POST /v1/jobs/:id/purge`.
 */
import type { Clock, TimerHandle } from '../../core/clock.js';
import type { Logger } from '../../obs/log.js';

/** The framework's default `job-retention`. */
export const DEFAULT_JOB_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** Jobs read per sweep: a backlog is worked off page by page, never in one long go. */
const PAGE = 1_000;

/** Between pages while there are more to read: a backlog goes at up to a page a second. */
const NEXT_PAGE_MS = 1_000;

/** How often the sweep runs once it has read every page: a tenth of the retention, between 1 s and 10 min. */
export function retentionSweepEveryMs(retentionMs: number): number {
  return Math.min(10 * 60_000, Math.max(1_000, Math.round(retentionMs / 10)));
}

/** What the sweep needs of the job service. */
export interface PurgesFinished {
  purgeFinishedBefore(cutoff: number, offset: number, count: number): Promise<{ purged: readonly string[]; scanned: number }>;
}

/**
 * Sweep finished jobs past `retentionMs` away until stopped. Each sweep reads one page of the
 * jobs created before the cutoff, going on from where the last one stopped: old jobs that cannot
 * go yet (still running, or finished only lately) never hold back the ones behind them. A full
 * page is followed by the next a second later; the last page, after a whole interval, from the
 * start again.
 */
export function startJobRetention(jobs: PurgesFinished, retentionMs: number, clock: Clock, logger: Logger): { stop(): Promise<void> } {
  let offset = 0;
  let stopped = false;
  let timer: TimerHandle | undefined;
  let running: Promise<void> | undefined;
  const schedule = (ms: number): void => {
    if (stopped) return;
    timer = clock.setTimer(ms, () => {
      running = sweep().finally(() => (running = undefined));
    });
  };
  const sweep = async (): Promise<void> => {
    let next = retentionSweepEveryMs(retentionMs);
    try {
      const page = await jobs.purgeFinishedBefore(clock.now() - retentionMs, offset, PAGE);
      if (page.purged.length > 0) logger.info({ purged: page.purged.length, first: page.purged[0], retentionMs }, 'purged finished jobs past their retention');
      if (page.scanned < PAGE) {
        offset = 0;
      } else {
        // The purged left the index: the unread ones moved down by as many.
        offset += page.scanned - page.purged.length;
        next = NEXT_PAGE_MS;
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'purging finished jobs past their retention failed; the next sweep tries again');
    }
    schedule(next);
  };
  // The first soon after taking the lead: a scheduler that restarts often must still purge.
  schedule(Math.min(retentionSweepEveryMs(retentionMs), 30_000));
  return {
    async stop() {
      stopped = true;
      timer?.cancel();
      await running;
    },
  };
}
