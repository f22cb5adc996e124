/**
 * How an attempt ends once its workload has exited (attempt.ts runs it up to there): drained or
 * timed out, killed for its memory or disk, committed elsewhere meanwhile, its output committed
 * after a clean exit (in place or to HDFS, with or without the ledger), or failed; each end
 * described as an AttemptResult.
 */
import { HOST_DISK_FULL, type AttemptResult } from './contract.js';
import { commitOutput, committedDurably, discardAttemptDir, OutputNotDurableError, OutputNotPlacedError, type CommitDecision, type OutputPlan } from './output.js';
import { commitToHdfs } from './destination.js';
import { LocusError } from '../core/errors.js';
import type { RunHandle } from './runner.js';
import { noSpaceLeft } from './attempt-dirs.js';
import type { AttemptScope, FinishFields, RunEnd, RunEnders } from './attempt.js';

/** The result of an attempt whose output is committed but could not be flushed: a failed write, counted. */
export function notDurable(err: OutputNotDurableError): { state: 'FAILED'; exitCode: 0; reason: 'OUTPUT_WRITE_FAILED'; message: string } {
  return { state: 'FAILED', exitCode: 0, reason: 'OUTPUT_WRITE_FAILED', message: err.message };
}

/** Describe how the attempt ended once its workload exited, committing its output after a clean exit. */
export async function outcomeOf(s: AttemptScope, handle: RunHandle, run: RunEnd): Promise<AttemptResult> {
  const { payload, ctx, end, plan } = s;
  const { exit, runningAt, exitedAt } = run;
  const common = { sandboxDir: handle.sandboxDir, ...(exit.usage ? { usage: exit.usage } : {}), startedAt: runningAt, exitedAt };
  const finish = (r: FinishFields): AttemptResult => ({ ...end({ ...r, ...common }), startedAt: runningAt });
  const failed = async (r: FinishFields): Promise<AttemptResult> => {
    if (plan) await discardAttemptDir(plan).catch(() => undefined);
    return finish(r);
  };
  const enders: RunEnders = { finish, failed };

  if (run.drained) return failed({ state: 'LOST', exitCode: exit.exitCode, reason: 'DRAINED', message: 'the executor drained and handed the attempt back' });
  if (run.timedOut) return failed({ state: 'TIMED_OUT', exitCode: exit.exitCode, reason: 'TIMEOUT', message: `timed out after ${payload.timeoutMs} ms; the whole process tree was killed` });
  if (exit.reason === 'LAUNCH_FAILED') {
    const done = await committedElsewhere(s, enders, exit.exitCode);
    if (done !== undefined) return done;
  }
  if (exit.reason === 'OOM' || exit.reason === 'DISK_LIMIT' || exit.reason === 'LAUNCH_FAILED') {
    return failed({ state: 'FAILED', exitCode: exit.exitCode, reason: exit.reason, message: exit.message });
  }
  if (exit.exitCode === 0) {
    if (!plan) return finish({ state: 'SUCCEEDED', exitCode: 0, reason: 'EXITED', message: exit.message });
    return await commitRunOutput(s, plan, enders);
  }
  const done = await committedElsewhere(s, enders, exit.exitCode);
  if (done !== undefined) return done;
  if (await noSpaceLeft(handle.sandboxDir)) {
    return failed({ state: 'FAILED', exitCode: exit.exitCode, reason: HOST_DISK_FULL, message: `${exit.message}; the sandbox's filesystem on ${ctx.host} has no space left` });
  }
  if (exit.exitCode === null) return failed({ state: 'FAILED', exitCode: null, reason: 'SIGNALED', message: exit.message });
  return failed({ state: 'FAILED', exitCode: exit.exitCode, reason: 'EXIT_NONZERO', message: exit.message });
}

/**
 * The result of an attempt whose task another attempt committed, else undefined. A losing
 * duplicate may fail because the winner swept its staging directory (before its container could
 * bind it: LAUNCH_FAILED; or while it wrote: a non-zero exit); the task is done all the same, and
 * this attempt says so instead of failing it.
 */
async function committedElsewhere(s: AttemptScope, enders: RunEnders, exitCode: number | null): Promise<AttemptResult | undefined> {
  const { plan, ledger, ledgerId } = s;
  const { finish, failed } = enders;
  if (!plan) return undefined;
  const recorded = await ledger?.lookup(ledgerId).catch(() => undefined);
  if (recorded !== undefined) {
    await discardAttemptDir(plan).catch(() => undefined);
    if (recorded.conflict !== undefined) return finish({ state: 'FAILED', exitCode, reason: 'OUTPUT_CONFLICT', message: recorded.conflict });
    return finish({ state: 'SUCCEEDED', exitCode, reason: 'ALREADY_COMMITTED', message: `output already committed by attempt ${recorded.attemptId} on ${recorded.host}`, outputPath: recorded.path, output: recorded });
  }
  // Only this task's own commit counts; anything else there is not one (the attempt fails as it would).
  let winner: string | undefined;
  try {
    const held = ledger === undefined ? await committedDurably(plan.finalDir, s.payload.attemptId) : undefined;
    winner = held?.kind === 'task' ? held.attemptId : undefined;
  } catch (err) {
    if (err instanceof OutputNotDurableError) return failed(notDurable(err));
    winner = undefined;
  }
  if (winner !== undefined) {
    await discardAttemptDir(plan).catch(() => undefined);
    return finish({ state: 'SUCCEEDED', exitCode, reason: 'ALREADY_COMMITTED', message: `output already committed by attempt ${winner}`, outputPath: plan.finalDir });
  }
  return undefined;
}

/** Commit the output of a workload that exited 0 (to HDFS, or in place) and describe how that went. */
async function commitRunOutput(s: AttemptScope, plan: OutputPlan, enders: RunEnders): Promise<AttemptResult> {
  const { payload, ctx, log, dest, hdfs } = s;
  const { finish, failed } = enders;
  // Whether the ledger was asked: from then on a record may name the staging directory.
  let asked = false;
  const decide: CommitDecision | undefined = s.decide === undefined ? undefined : async (...args) => {
    asked = true;
    return await (s.decide as CommitDecision)(...args);
  };
  let outcome: Awaited<ReturnType<typeof commitOutput>>;
  try {
    outcome = dest?.kind === 'hdfs' && hdfs !== undefined && decide !== undefined
      ? await commitToHdfs(plan, payload.attemptId, dest.uri, hdfs, decide, s.markConflict)
      : await commitOutput(plan, payload.attemptId, decide, s.markConflict);
  } catch (err) {
    if (err instanceof OutputNotDurableError) return failed(notDurable(err));
    // Recorded, not renamed: not the task's failure (every retry would find the record), and the
    // staging directory the record names stays for the next attempt here to finish the rename.
    if (err instanceof OutputNotPlacedError) {
      log.warn({ err: err.message }, 'the output was recorded but could not be renamed into place');
      const where = dest?.kind === 'hdfs' ? 'on any host' : 'here';
      return finish({ state: 'LOST', exitCode: 0, reason: 'OUTPUT_WRITE_FAILED', message: `${err.message} on ${ctx.host}; the task's next attempt ${where} finishes the rename` });
    }
    // WebHDFS refused or could not be reached while the output was uploaded, before the ledger
    // was asked: nothing is recorded, and the temporary copy is gone. (Once the ledger was asked,
    // a failure is the ledger's, below, or the rename's, above.)
    if (dest?.kind === 'hdfs' && err instanceof LocusError && !asked) {
      return failed({ state: 'FAILED', exitCode: 0, reason: 'OUTPUT_WRITE_FAILED', message: `the output could not be written to ${dest.uri}: ${err.message}` });
    }
    // Redis unreachable at the commit (anything that failed once the ledger was asked, or a
    // reply that never came): the attempt goes back, uncounted. Whether the record
    // landed is unknown (Redis may have applied it before the reply was lost), so the staging
    // directory stays: a record names it, and the task's next attempt on this host finishes
    // the rename from it (settleCommitted); with no record, the task's next commit sweeps it.
    const errno = (err as NodeJS.ErrnoException).code;
    if (asked || (decide !== undefined && (errno === undefined || !errno.startsWith('E')))) {
      return finish({ state: 'LOST', exitCode: 0, reason: 'COMMIT_LEDGER_UNAVAILABLE', message: `the output could not be recorded: ${(err as Error).message}` });
    }
    // The filesystem refused a step of the commit before the ledger was asked (a flush, the
    // marker; without the ledger, the rename): no record names the staging directory, so it goes
    // (a full disk kept full would fail the next attempts here too). A full disk is the host's
    // trouble (not counted, as a full sandbox); anything else fails the attempt, counted, so a
    // disk that keeps refusing ends in the task's failure.
    if (errno !== undefined && errno.startsWith('E') && !errno.startsWith('ERR_')) {
      const message = `the output could not be committed on ${ctx.host}: ${(err as Error).message}`;
      log.warn({ err: (err as Error).message }, 'the output could not be committed');
      return await failed(errno === 'ENOSPC' || errno === 'EDQUOT'
        ? { state: 'FAILED', exitCode: 0, reason: HOST_DISK_FULL, message }
        : { state: 'FAILED', exitCode: 0, reason: 'OUTPUT_WRITE_FAILED', message });
    }
    throw err;
  }
  const rec = outcome.record === undefined ? {} : { output: outcome.record };
  if (outcome.kind === 'committed') {
    if (outcome.unflushed !== undefined) log.warn({ output: outcome.finalDir }, `the commit record stands, but ${outcome.unflushed}`);
    const unflushed = outcome.unflushed === undefined ? '' : `; the commit record stands, but ${outcome.unflushed} (an output the host loses is computed again)`;
    return finish({ state: 'SUCCEEDED', exitCode: 0, reason: 'COMMITTED', message: `output committed to ${outcome.finalDir} on ${ctx.host}${unflushed}`, outputPath: outcome.finalDir, ...rec });
  }
  if (outcome.kind === 'already') return finish({ state: 'SUCCEEDED', exitCode: 0, reason: 'ALREADY_COMMITTED', message: `output already committed by attempt ${outcome.winner}; this attempt's output was discarded`, outputPath: outcome.finalDir, ...rec });
  // A final path held by what this task did not commit: failed, and the task with it (the
  // scheduler does not retry OUTPUT_CONFLICT: every attempt would find the same).
  log.warn({ output: outcome.finalDir }, 'the task\'s output directory holds what it did not commit; the output was discarded');
  return failed({ state: 'FAILED', exitCode: 0, reason: 'OUTPUT_CONFLICT', message: outcome.message });
}
