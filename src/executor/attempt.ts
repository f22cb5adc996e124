/**
 * One attempt from payload to result: check the contract and whether the
 * task is already committed, stage the output and the split, launch the
 * workload through a runner, enforce the timeout, commit or discard the
 * output, and describe the end as an AttemptResult.
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CONTRACT_VERSION, contractCompatible, type AttemptPayload, type AttemptProgress, type AttemptResult } from './contract.js';
import { commitOutput, committedBy, discardAttemptDir, planOutput, prepareAttemptDir, type OutputPlan } from './output.js';
import { containerIdFor, type AttemptRunner, type RunExit, type RunHandle } from './runner.js';
import type { Logger } from '../obs/log.js';

/** Streams a byte range of a file from its storage backend (the storage port's `read`). */
export type SplitReader = (uri: string, offset: number, length: number) => Promise<NodeJS.ReadableStream>;

/** What every attempt of one executor shares. */
export interface AttemptContext {
  readonly runner: AttemptRunner;
  readonly host: string;
  readonly logger: Logger;
  /** Where non-local splits are materialised (one directory per attempt). */
  readonly scratchDir: string;
  readonly splitReader?: SplitReader;
  /** SIGTERM-to-SIGKILL grace when a timeout or drain stops a workload. */
  readonly killGraceMs: number;
}

/** Per-attempt controls from the executor. */
export interface AttemptControl {
  /** A delivery tag (BullMQ job id) that keeps duplicate deliveries apart. */
  readonly delivery: string;
  /** Aborted when the executor drains past its grace: the attempt is handed back. */
  readonly drain: AbortSignal;
  /** Called once the workload runs. */
  onRunning(progress: AttemptProgress): void | Promise<void>;
}

function substitute(s: string, values: Readonly<Record<string, string>>): string {
  return s.replace(/\{(output|split\.path)\}/g, (m, key: string) => values[key] ?? m);
}

/** Run one attempt and describe how it ended; never throws for workload failures. */
export async function runAttempt(payload: AttemptPayload, ctx: AttemptContext, control: AttemptControl): Promise<AttemptResult> {
  const startedAt = Date.now();
  const base = { attemptId: payload.attemptId, taskId: payload.taskId, host: ctx.host, startedAt };
  const end = (r: Omit<AttemptResult, 'attemptId' | 'taskId' | 'host' | 'startedAt' | 'finishedAt'>): AttemptResult => ({ ...base, ...r, finishedAt: Date.now() });
  // A child logger per attempt costs more than a no-op attempt: create it only to log.
  const log = { warn: (o: object, m: string) => ctx.logger.warn({ attempt: payload.attemptId, ...o }, m), debug: (o: object, m: string) => ctx.logger.debug({ attempt: payload.attemptId, ...o }, m) };

  if (!contractCompatible(payload.contractVersion, CONTRACT_VERSION)) {
    return end({ state: 'FAILED', exitCode: null, reason: 'CONTRACT_MISMATCH', message: `attempt speaks queue contract ${payload.contractVersion}, this executor ${CONTRACT_VERSION}: major versions differ; upgrade the executor or the scheduler` });
  }
  // A task whose output is already committed is never run again: this is what
  // makes redelivery after a crash or a Redis rollback converge.
  if (payload.outputDir !== undefined) {
    const winner = await committedBy(payload.outputDir);
    if (winner !== undefined) {
      return end({ state: 'SUCCEEDED', exitCode: 0, reason: 'ALREADY_COMMITTED', message: `output already committed by attempt ${winner}`, outputPath: payload.outputDir });
    }
  }

  const containerId = containerIdFor(payload.attemptId, control.delivery);
  const plan: OutputPlan | undefined = payload.outputDir !== undefined ? planOutput(payload.outputDir, payload.attemptId) : undefined;
  const scratch = join(ctx.scratchDir, containerId);
  let scratchMade = false;
  const cleanupScratch = async (): Promise<void> => {
    if (scratchMade) await fsp.rm(scratch, { recursive: true, force: true });
  };
  let handle: RunHandle;
  // A relative host path names a directory of the executor's own sandbox (a persistent volume
  // its agent mounted there); each runner resolves it the way its launcher can see it.
  const volumes = [...payload.volumes];
  const env: Record<string, string> = { ...payload.env, LOCUS_ATTEMPT_ID: payload.attemptId, LOCUS_TASK_ID: payload.taskId, LOCUS_JOB_ID: payload.jobId };
  try {
    const values: Record<string, string> = {};
    if (plan) {
      await prepareAttemptDir(plan);
      values['output'] = plan.attemptDir;
      env['LOCUS_OUTPUT_DIR'] = plan.attemptDir;
      volumes.push({ hostPath: plan.attemptDir, containerPath: plan.attemptDir, readOnly: false });
    }
    if (payload.split) {
      env['LOCUS_SPLIT_URI'] = payload.split.uri;
      env['LOCUS_SPLIT_OFFSET'] = String(payload.split.offset);
      env['LOCUS_SPLIT_LENGTH'] = String(payload.split.length);
      let splitPath = payload.split.localPath;
      if (splitPath === undefined && ctx.splitReader) {
        // Not on this host: stream the byte range from the backend into the
        // attempt's scratch directory, so the workload always reads a file.
        await fsp.mkdir(scratch, { recursive: true });
        scratchMade = true;
        splitPath = join(scratch, 'split');
        await pipeline(await ctx.splitReader(payload.split.uri, payload.split.offset, payload.split.length), createWriteStream(splitPath));
        await fsp.chmod(scratch, 0o755);
        await fsp.chmod(splitPath, 0o644);
        volumes.push({ hostPath: scratch, containerPath: scratch, readOnly: true });
      }
      if (splitPath !== undefined) {
        values['split.path'] = splitPath;
        env['LOCUS_SPLIT_PATH'] = splitPath;
      }
    }
    for (const p of payload.inputPaths) volumes.push({ hostPath: p, containerPath: p, readOnly: true });
    for (const [k, v] of Object.entries(env)) env[k] = substitute(v, values);
    handle = await ctx.runner.launch({
      containerId,
      argv: payload.argv.map((a) => substitute(a, values)),
      env,
      resources: payload.resources,
      volumes,
    });
  } catch (err) {
    if (plan) await discardAttemptDir(plan).catch(() => undefined);
    await cleanupScratch().catch(() => undefined);
    log.warn({ err: (err as Error).message }, 'attempt could not be launched');
    return end({ state: 'FAILED', exitCode: null, reason: 'LAUNCH_FAILED', message: (err as Error).message });
  }

  const runningAt = Date.now();
  await Promise.resolve(control.onRunning({ phase: 'running', attemptId: payload.attemptId, startedAt: runningAt, host: ctx.host, sandboxDir: handle.sandboxDir })).catch((err: unknown) => {
    log.debug({ err: (err as Error).message }, 'progress report failed');
  });

  let timedOut = false;
  let drained = false;
  const timer = payload.timeoutMs > 0 ? setTimeout(() => {
    timedOut = true;
    void handle.kill(ctx.killGraceMs).catch(() => undefined);
  }, payload.timeoutMs) : undefined;
  const onDrain = (): void => {
    drained = true;
    void handle.kill(ctx.killGraceMs).catch(() => undefined);
  };
  if (control.drain.aborted) onDrain();
  else control.drain.addEventListener('abort', onDrain, { once: true });
  let exit: RunExit;
  try {
    exit = await handle.wait();
  } catch (err) {
    exit = { exitCode: null, signal: null, reason: 'LAUNCH_FAILED', message: `lost track of the container: ${(err as Error).message}` };
  } finally {
    if (timer) clearTimeout(timer);
    control.drain.removeEventListener('abort', onDrain);
  }
  await cleanupScratch().catch(() => undefined);

  const common = { sandboxDir: handle.sandboxDir, ...(exit.usage ? { usage: exit.usage } : {}), startedAt: runningAt };
  const finish = (r: Omit<AttemptResult, 'attemptId' | 'taskId' | 'host' | 'startedAt' | 'finishedAt' | 'sandboxDir'>): AttemptResult => ({ ...end({ ...r, ...common }), startedAt: runningAt });
  const failed = async (r: Omit<AttemptResult, 'attemptId' | 'taskId' | 'host' | 'startedAt' | 'finishedAt' | 'sandboxDir'>): Promise<AttemptResult> => {
    if (plan) await discardAttemptDir(plan).catch(() => undefined);
    return finish(r);
  };

  if (drained) return failed({ state: 'LOST', exitCode: exit.exitCode, reason: 'DRAINED', message: 'the executor drained and handed the attempt back' });
  if (timedOut) return failed({ state: 'TIMED_OUT', exitCode: exit.exitCode, reason: 'TIMEOUT', message: `timed out after ${payload.timeoutMs} ms; the whole process tree was killed` });
  if (exit.reason === 'OOM' || exit.reason === 'DISK_LIMIT' || exit.reason === 'LAUNCH_FAILED') {
    return failed({ state: 'FAILED', exitCode: exit.exitCode, reason: exit.reason, message: exit.message });
  }
  if (exit.exitCode === 0) {
    if (!plan) return finish({ state: 'SUCCEEDED', exitCode: 0, reason: 'EXITED', message: exit.message });
    const outcome = await commitOutput(plan, payload.attemptId);
    if (outcome.kind === 'committed') return finish({ state: 'SUCCEEDED', exitCode: 0, reason: 'COMMITTED', message: `output committed to ${outcome.finalDir}`, outputPath: outcome.finalDir });
    if (outcome.kind === 'already') return finish({ state: 'SUCCEEDED', exitCode: 0, reason: 'ALREADY_COMMITTED', message: `output already committed by attempt ${outcome.winner}; this attempt's output was discarded`, outputPath: outcome.finalDir });
    return failed({ state: 'FAILED', exitCode: 0, reason: 'OUTPUT_CONFLICT', message: outcome.message });
  }
  // A losing duplicate may fail because the winner swept its staging
  // directory; the task is done all the same.
  if (plan) {
    const winner = await committedBy(plan.finalDir).catch(() => undefined);
    if (winner !== undefined) {
      await discardAttemptDir(plan).catch(() => undefined);
      return finish({ state: 'SUCCEEDED', exitCode: exit.exitCode, reason: 'ALREADY_COMMITTED', message: `output already committed by attempt ${winner}`, outputPath: plan.finalDir });
    }
  }
  if (exit.exitCode === null) return failed({ state: 'FAILED', exitCode: null, reason: 'SIGNALED', message: exit.message });
  return failed({ state: 'FAILED', exitCode: exit.exitCode, reason: 'EXIT_NONZERO', message: exit.message });
}
