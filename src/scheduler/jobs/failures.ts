/**
 * How failed attempts count: against the task's retries or not, against the
 * host they ran on or not, and how long a task whose input its host could not
 * reach waits before it is offered again. The job service records results;
 * this module keeps the per-job and per-task tallies those decisions need.
 */
import { HOST_DISK_FULL, INPUT_UNREACHABLE, type AttemptResult } from '../../executor/contract.js';
import { parseTaskId, type FailureClass } from './model.js';

/** Uncounted input failures of one task after which further ones count (an input that no host can reach). */
export const UNCOUNTED_INPUT_FAILURES = 5;
/** The pause before the first retry of a task whose input its host could not reach; it doubles per failure. */
export const INPUT_RETRY_BASE_MS = 250;
/** The longest such pause. */
export const INPUT_RETRY_MAX_MS = 4000;

/** Counted failures on one host after which the whole job avoids it (Spark's blacklisting, per job). */
export const HOST_FAILURES_TO_AVOID = 2;

/** How a failed attempt counts (agent/executor loss is not the task's fault). */
export function classifyFailure(result: Pick<AttemptResult, 'state' | 'reason'>): FailureClass {
  if (result.state === 'LOST') return 'not-counted';
  if (result.reason === 'DRAINED' || result.reason === 'EXECUTOR_LOST' || result.reason === 'AGENT_LOST') return 'not-counted';
  // The input could not be reached from that host (storage or a block server down): the host's
  // trouble, not the task's (capped per task, see UNCOUNTED_INPUT_FAILURES).
  if (result.reason === INPUT_UNREACHABLE || result.reason === 'COMMIT_LEDGER_UNAVAILABLE') return 'not-counted';
  // The agent's disk was full: every task placed there would fail (capped like input failures).
  if (result.reason === HOST_DISK_FULL) return 'not-counted';
  if (result.reason === 'INVALID_SPEC' || result.reason === 'INPUT_MISSING' || result.reason === 'LAUNCH_FAILED_FATAL') return 'fatal';
  // The task's output directory holds what it did not commit (another job's output, files put
  // there by hand): every attempt would find the same, and its commit record says so for good.
  if (result.reason === 'OUTPUT_CONFLICT') return 'fatal';
  return 'counted';
}

/**
 * Whether a failed attempt counts against the host it ran on (its task's failed hosts, the job's
 * per-host failure count). Not when it could not read an output held on another host: that host
 * is the one at fault (its outputs are recomputed), and charging the reader would steer the job
 * off healthy hosts, each reader in turn, until no live host was left to it.
 */
export function hostAtFault(result: Pick<AttemptResult, 'reason' | 'inputHost' | 'host'>): boolean {
  return !(result.reason === INPUT_UNREACHABLE && result.inputHost !== undefined && result.inputHost !== result.host);
}

/** What the tally needs to know of lost outputs being recomputed (LostOutputs). */
export interface RecomputeView {
  isRecomputing(jobId: string): boolean;
  wasLost(jobId: string, host: string): boolean;
}

const jobOf = (taskId: string): string => parseTaskId(taskId)?.jobId ?? taskId;

/** Per-job counted failures by host and per-task host-caused failures, forgotten when the job ends. */
export class FailureTally {
  private readonly hostFailures = new Map<string, Map<string, number>>();
  private readonly inputFailures = new Map<string, number>();
  /** Tasks whose placements wait for their data's hosts (noteUnreachable). */
  private readonly awaitData = new Set<string>();

  constructor(private readonly lost: RecomputeView, private readonly inputRetryPauseMs = INPUT_RETRY_BASE_MS) {}

  /** An input no host can reach must not retry forever: past the cap, host-caused failures count. */
  cap<C extends FailureClass | 'cancelled'>(result: AttemptResult, cls: C): C | 'counted' {
    if (cls !== 'not-counted' || (result.reason !== INPUT_UNREACHABLE && result.reason !== HOST_DISK_FULL)) return cls;
    if (result.reason === HOST_DISK_FULL) return this.countUncounted(result.taskId, cls);
    // What it could not read is being recomputed, or is about to be (the first fetch failure
    // naming an output host not yet lost recomputes that host's outputs): the retry waits for the
    // recompute and counts toward nothing. Further failures naming a lost host count as usual.
    // Only an output's reader waits so: an input that is a dataset (no output host named) is not
    // what a recompute brings back, and its retries pause and count like any (the task that
    // rewrites a lost output may itself fail to read its dataset, and retried at once it would
    // spin).
    const jobId = jobOf(result.taskId);
    if (result.inputHost !== undefined && (this.lost.isRecomputing(jobId) || !this.lost.wasLost(jobId, result.inputHost))) return cls;
    return this.countUncounted(result.taskId, cls);
  }

  /**
   * An attempt of the task ended. When its host could not reach the task's input
   * (INPUT_UNREACHABLE, that host at fault), the task's next placement waits for its data's hosts
   * (PendingTask.awaitDataHosts); any other end forgets that.
   */
  noteUnreachable(result: Pick<AttemptResult, 'taskId' | 'reason' | 'inputHost' | 'host'>): void {
    if (result.reason === INPUT_UNREACHABLE && hostAtFault(result)) this.awaitData.add(result.taskId);
    else this.awaitData.delete(result.taskId);
  }

  /** Whether the task's placements wait for its data's hosts (noteUnreachable). */
  awaitsData(taskId: string): boolean {
    return this.awaitData.has(taskId);
  }

  /**
   * How long a task whose last attempt ended `cls` waits before it is offered again: after an
   * input its host could not reach (a block server not up or not yet known there), a pause that
   * doubles with each such failure, so the few uncounted retries span seconds, long enough for
   * an executor to start or register, instead of being spent in a few hundred milliseconds on
   * the same unreachable source. 0: at once.
   */
  retryPauseMs(result: AttemptResult, cls: FailureClass | 'cancelled' | 'counted'): number {
    if (cls !== 'not-counted' || result.reason !== INPUT_UNREACHABLE) return 0;
    const n = this.inputFailures.get(result.taskId) ?? 0;
    return n === 0 ? 0 : Math.min(this.inputRetryPauseMs * 2 ** (n - 1), INPUT_RETRY_MAX_MS);
  }

  /** One more counted failure of the job on `host`; returns how many it has had there. */
  countHost(jobId: string, host: string): number {
    const counts = this.hostFailures.get(jobId) ?? new Map<string, number>();
    this.hostFailures.set(jobId, counts);
    const n = (counts.get(host) ?? 0) + 1;
    counts.set(host, n);
    return n;
  }

  /** The hosts the job has failed on often enough to avoid for the rest of it. */
  avoided(jobId: string): string[] {
    return [...(this.hostFailures.get(jobId) ?? new Map<string, number>())].filter(([, n]) => n >= HOST_FAILURES_TO_AVOID).map(([h]) => h);
  }

  /** Start the job's host-caused input failures from zero (its lost outputs are being recomputed). */
  resetInputs(jobId: string): void {
    for (const k of [...this.inputFailures.keys()]) if (jobOf(k) === jobId) this.inputFailures.delete(k);
  }

  /** The job ended: nothing of it is needed any more. */
  forgetJob(jobId: string): void {
    this.hostFailures.delete(jobId);
    this.resetInputs(jobId);
    for (const k of [...this.awaitData]) if (jobOf(k) === jobId) this.awaitData.delete(k);
  }

  private countUncounted<C extends FailureClass | 'cancelled'>(taskId: string, cls: C): C | 'counted' {
    const n = (this.inputFailures.get(taskId) ?? 0) + 1;
    this.inputFailures.set(taskId, n);
    return n > UNCOUNTED_INPUT_FAILURES ? 'counted' : cls;
  }
}
