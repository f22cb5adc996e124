/**
 * Stages waiting for the storage of their inputs. Listing a stage's inputs (files, splits, block
 * locations) asks the storage directly: a NameNode restarting, Ceph monitors not answering or a
 * GlusterFS mount gone for a minute would fail the job at once, though a minute later the same
 * listing succeeds. A listing that fails because the storage is away (a transient error, see
 * storage/errors.ts isTransientStorageError) is tried again after a pause doubling from 1 s to
 * 30 s, for at most `input-storage-give-up` (10 minutes by default); the job then fails with
 * INPUT_STORAGE_UNAVAILABLE, naming the input and the last error. A storage's "no" (no such
 * path, permission denied, a malformed URI) still fails the job at once.
 *
 * Pure: the job service feeds it each failed try and acts on the answer (JobService.startStage).
 */

/** The code a job whose inputs' storage stayed unreachable ends with (the first word of its message). */
export const INPUT_STORAGE_UNAVAILABLE = 'INPUT_STORAGE_UNAVAILABLE';
/** The explain code of a task whose stage waits for the storage of its inputs. */
export const WAITING_FOR_INPUT_STORAGE = 'WAITING_FOR_INPUT_STORAGE';

/** The pause before the first retry of a stage's input listing; it doubles per failed try. */
export const INPUT_LISTING_RETRY_BASE_MS = 1000;
/** The longest such pause. */
export const INPUT_LISTING_RETRY_MAX_MS = 30_000;
/**
 * How long a stage waits for the storage of its inputs by default (`input-storage-give-up`): a
 * NameNode restart or an HA failover takes a minute or two, a Ceph monitor election seconds; ten
 * minutes covers them with room, and still ends a job whose storage is really gone the same hour.
 */
export const DEFAULT_INPUT_STORAGE_GIVE_UP_MS = 600_000;

/** A stage input whose listing failed because its storage is away (thrown and caught inside the job service). */
export class InputOutage extends Error {
  constructor(readonly input: string, cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'InputOutage';
  }
}

/** A stage waiting for the storage of one of its inputs. */
export interface InputWait {
  readonly jobId: string;
  readonly stage: number;
  readonly stageName: string;
  /** The input as the spec names it (the one whose listing failed last). */
  readonly input: string;
  /** When the first try of this wait failed (ms). */
  readonly since: number;
  /** Failed tries so far. */
  readonly tries: number;
  readonly lastError: string;
  /** When the listing is tried again (ms). */
  readonly nextTryAt: number;
  /** Past this, a failed try fails the job (ms). */
  readonly giveUpAt: number;
}

/** Backoff and deadline of the waits. */
export interface InputWaitPolicy {
  readonly giveUpMs: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

/** A failed try of a stage's listing. */
export interface FailedTry {
  readonly jobId: string;
  readonly stage: number;
  readonly stageName: string;
  readonly input: string;
  readonly error: string;
  readonly now: number;
}

/**
 * What follows a failed try: wait (with when to try next), or give up (the job fails with
 * `message`). The next try is never later than the deadline, so the last one is made at it.
 */
export function afterFailedTry(prev: InputWait | undefined, t: FailedTry, policy: InputWaitPolicy): { readonly wait: InputWait } | { readonly giveUp: string } {
  const since = prev?.since ?? t.now;
  const tries = (prev?.tries ?? 0) + 1;
  const giveUpAt = since + policy.giveUpMs;
  if (t.now >= giveUpAt) {
    return {
      giveUp: `${INPUT_STORAGE_UNAVAILABLE}: the storage of input ${t.input} of stage '${t.stageName}' stayed unreachable for ${formatMs(t.now - since)} `
        + `(${tries} ${tries === 1 ? 'try' : 'tries'}; input-storage-give-up is ${formatMs(policy.giveUpMs)}); last error: ${t.error}`,
    };
  }
  const pause = Math.min(policy.baseMs * 2 ** (tries - 1), policy.maxMs);
  return { wait: { jobId: t.jobId, stage: t.stage, stageName: t.stageName, input: t.input, since, tries, lastError: t.error, nextTryAt: Math.min(t.now + pause, giveUpAt), giveUpAt } };
}

/** What a waiting stage's job says (its message, while it waits). */
export function waitMessage(w: InputWait): string {
  return `waiting for the storage of input ${w.input} of stage '${w.stageName}': ${w.lastError}; `
    + `${w.tries} ${w.tries === 1 ? 'try' : 'tries'} failed, the next at ${new Date(w.nextTryAt).toISOString()}; `
    + `the job fails at ${new Date(w.giveUpAt).toISOString()} if it is still unreachable (input-storage-give-up)`;
}

/** A duration for messages: `45 s`, `10 min`, `1 min 30 s`. */
function formatMs(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return ms < 1000 ? `${ms} ms` : `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`;
}
