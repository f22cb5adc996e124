/**
 * Removal of finished queue jobs once the scheduler has recorded every attempt in them.
 *
 * A queue job (one attempt, or a batch of them) holds the attempts' payloads and, once finished,
 * their results: about 1.6 KB per attempt (bench:dispatch's memory breakdown). BullMQ kept every
 * finished one for a day (`removeOnComplete: { age }`), 14 GB at 100 attempts a second, which
 * Redis holds in memory and copies at every rewrite of its append-only file. A job is needed
 * until the scheduler has recorded its results: the dispatcher's reconcile reads a finished job
 * when it missed its event (a failover), and re-adds one whose hash is gone while its attempts
 * are in flight. So a job goes only when both hold: it has finished (its event, or its hash, was
 * read) and every attempt in it was recorded (acknowledge, after the fenced record). The removal
 * goes through the scheduler's fenced connection (fence.ts): a scheduler that no longer leads
 * removes nothing. One it could not remove (Redis away, an executor lost, a result never
 * recorded) expires as before.
 */
import type { Redis } from 'ioredis';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../obs/log.js';
import { executorBatchIndexKey, executorQueueKey } from '../executor/contract.js';

/** A queue job this process queued, until it can be removed. */
interface Tracked {
  readonly executorId: string;
  readonly jobId: string;
  /** A batch's attempts, for the batch index entries that go with it; none for a single attempt. */
  readonly members: readonly string[];
  /** Its attempts whose results are not recorded yet. */
  readonly unrecorded: Set<string>;
  /** Which of BullMQ's sets holds it once it has finished. */
  finishedIn: 'completed' | 'failed' | undefined;
}

/** How long finished, recorded jobs wait to be removed together (one fenced script for all). */
const REMOVE_EVERY_MS = 200;

/** The queue jobs one dispatcher queued, and their removal. */
export class FinishedJobs {
  /** By `<executor>\0<job id>`. */
  private readonly tracked = new Map<string, Tracked>();
  /** Attempt id -> the key of its job in `tracked`. */
  private readonly jobOf = new Map<string, string>();
  private due: Tracked[] = [];
  private timer: TimerHandle | undefined;
  private closed = false;

  /**
   * `keepMs`: how long a finished, recorded job stays before its removal (default 0: the next
   * removal, within REMOVE_EVERY_MS); bench:dispatch reads a round's jobs after the round.
   */
  constructor(private readonly fenced: Redis, private readonly clock: Clock, private readonly logger: Logger, private readonly keepMs = 0) {}

  /** A job this dispatcher queued: `attempts`, and whether it is a batch. */
  track(executorId: string, jobId: string, attempts: readonly string[], batch: boolean): void {
    const key = `${executorId}\0${jobId}`;
    this.tracked.set(key, { executorId, jobId, members: batch ? attempts : [], unrecorded: new Set(attempts), finishedIn: undefined });
    for (const id of attempts) this.jobOf.set(id, key);
  }

  /** A job never queued (its add failed) or already gone from the queue (taken off by a kill): nothing to remove. */
  untrack(executorId: string, jobId: string): void {
    const key = `${executorId}\0${jobId}`;
    const t = this.tracked.get(key);
    if (t === undefined) return;
    this.tracked.delete(key);
    for (const id of t.unrecorded) this.jobOf.delete(id);
  }

  /** The scheduler recorded this attempt's result (or found it stale). */
  recorded(attemptId: string): void {
    const key = this.jobOf.get(attemptId);
    if (key === undefined) return;
    this.jobOf.delete(attemptId);
    const t = this.tracked.get(key);
    if (t === undefined) return;
    t.unrecorded.delete(attemptId);
    this.maybeRemove(key, t);
  }

  /** A job has finished (its event, or its hash, was read): `set` is where BullMQ keeps it. */
  finished(executorId: string, jobId: string, set: 'completed' | 'failed'): void {
    const key = `${executorId}\0${jobId}`;
    const t = this.tracked.get(key);
    if (t === undefined) return;
    t.finishedIn = set;
    this.maybeRemove(key, t);
  }

  /** An executor was forgotten: its jobs are no longer tracked (those left expire). */
  forgetExecutor(executorId: string): void {
    for (const [key, t] of this.tracked) {
      if (t.executorId !== executorId) continue;
      this.tracked.delete(key);
      for (const id of t.unrecorded) this.jobOf.delete(id);
    }
  }

  /** Stop: jobs not removed yet expire. */
  close(): void {
    this.closed = true;
    this.timer?.cancel();
  }

  private maybeRemove(key: string, t: Tracked): void {
    if (t.finishedIn === undefined || t.unrecorded.size > 0) return;
    this.tracked.delete(key);
    if (this.keepMs > 0) this.clock.setTimer(this.keepMs, () => this.queue(t));
    else this.queue(t);
  }

  private queue(t: Tracked): void {
    if (this.closed) return;
    this.due.push(t);
    this.timer ??= this.clock.setTimer(REMOVE_EVERY_MS, () => void this.remove());
  }

  /** Remove the jobs due since the last time, in one fenced script. */
  private async remove(): Promise<void> {
    this.timer = undefined;
    const jobs = this.due;
    this.due = [];
    if (jobs.length === 0 || this.closed) return;
    const m = this.fenced.multi();
    for (const t of jobs) {
      const key = (...parts: string[]): string => executorQueueKey(t.executorId, ...parts);
      m.zrem(key(t.finishedIn ?? 'completed'), t.jobId).unlink(key(t.jobId), key(t.jobId, 'logs'));
      if (t.members.length > 0) m.hdel(executorBatchIndexKey(t.executorId), ...t.members);
    }
    // Not removed (Redis away, this scheduler fenced): they expire.
    await m.exec().catch((err: unknown) => this.logger.debug({ err: (err as Error).message, jobs: jobs.length }, 'finished queue jobs not removed; they expire'));
  }
}
