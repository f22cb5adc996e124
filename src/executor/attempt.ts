/**
 * One attempt from payload to result: check the contract and whether the
 * task is already committed, stage the output and the split, launch the
 * workload through a runner, enforce the timeout; then attempt-outcome.ts
 * commits or discards the output and describes the end as an AttemptResult.
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { systemClock } from '../core/clock.js';
import { COMMIT_MARKER, CONTRACT_VERSION, HANDED_BACK, INPUT_FAILED, INPUT_UNREACHABLE, contractCompatible, ledgerIdOf, type AttemptPayload, type AttemptProgress, type AttemptResult, type AttemptVolume, type CommittedOutput } from './contract.js';
import { fetchPart, isHostCause, materialiseSplit, type CommitLedger, type DataPlane } from './data-plane.js';
import { committedDurably, conflictMessage, discardAttemptDir, discardStaged, OutputNotDurableError, planOutput, prepareAttemptDir, releaseStaging, settleCommitted, type CommitDecision, type ConflictMark, type Occupant, type OutputPlan } from './output.js';
import { notDurable, outcomeOf } from './attempt-outcome.js';
import { destinationOf, isHdfsRecord, settleHdfs, type Destination, type HdfsOutputFs } from './destination.js';
import { containerIdFor, type AttemptRunner, type RunExit, type RunHandle, type RunSpec } from './runner.js';
import { tenantOfOutput, tenantUid, type TenantUidRange } from './isolation/tenant.js';
import type { Logger } from '../obs/log.js';
import type { GateWait } from './fair-gate.js';
import { startHeld, type HeldContainer, type StartOrder } from './start-gate.js';
import { closeTenantDir, makeScratch, makeScratchRoot, shareScratch } from './attempt-dirs.js';
import { substitutePlaceholders } from '../core/placeholders.js';

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
  /** Storage readers, other hosts' block servers and the commit ledger (multi-host data plane). */
  readonly dataPlane?: DataPlane;
  /** SIGTERM-to-SIGKILL grace when a timeout or drain stops a workload. */
  readonly killGraceMs: number;
  /**
   * Each tenant's attempts run under a uid of their own from this range, and the tenant's
   * output directory is closed to everyone else; undefined = every attempt runs as the
   * runner's default user (one tenant, or `--tenant-uids off`).
   */
  readonly tenantUids?: TenantUidRange;
  /**
   * Present when containers may start held (start-gate.ts): an attempt set up while every slot is
   * busy starts its container at once, held, and releases it when its slot frees. Where the
   * runner allows it (AttemptRunner.heldStarts).
   */
  readonly startOrder?: StartOrder;
  /** Asked before each held start (executor-held-starts auto): false starts the container when its slot frees. Absent: held whenever startOrder is set. */
  readonly holdStarts?: () => boolean;
}

/** Per-attempt controls from the executor. */
export interface AttemptControl {
  /** A delivery tag (BullMQ job id) that keeps duplicate deliveries apart. */
  readonly delivery: string;
  /** Aborted when the executor drains past its grace: the attempt is handed back. */
  readonly drain: AbortSignal;
  /** Called once the workload runs. */
  onRunning(progress: AttemptProgress): void | Promise<void>;
  /**
   * Called once the workload has ended, before its output is committed: a progress report
   * still pending for it would only tell what the result says a moment later (under load the
   * commit of a short task takes longer than the report's delay, and every such report costs
   * two scripts on the shared Redis).
   */
  onExited?(): void;
  /**
   * Waits for this attempt's turn at the parts of an attempt the executor itself works through
   * (the set-up until the workload runs, the commit after it ended) and resolves to the release
   * of that turn. Absent: no turns, every attempt goes at once. The workload's own run holds none.
   */
  turn?(): Promise<() => void>;
  /**
   * Waits for one of the executor's slots once the attempt is set up, right before its container
   * starts (FairGate); the slot is given back when the container has exited. Absent: the
   * scheduler's placement is the only bound on containers at once.
   */
  slot?(): Promise<GateWait>;
  /** A slot now, when one is free and no attempt waits for one (FairGate.tryAcquire); else undefined. */
  slotNow?(): { readonly release: () => void } | undefined;
  /**
   * Called when the attempt's container has started held (start-gate.ts): its set-up is done, and
   * what is left before its workload runs is the wait for its slot.
   */
  onHeld?(): void;
}

const NO_TURN = (): void => undefined;

/**
 * Run one attempt and describe how it ended; never throws for workload failures. With turns
 * (AttemptControl.turn), the set-up and the commit each wait for one; the run in between holds none.
 */
export async function runAttempt(payload: AttemptPayload, ctx: AttemptContext, control: AttemptControl): Promise<AttemptResult> {
  if (control.turn === undefined) return await runAttemptInTurns(payload, ctx, control, () => Promise.resolve());
  const turn = control.turn;
  let release = await turn();
  try {
    return await runAttemptInTurns(payload, ctx, {
      ...control,
      onRunning: (p) => {
        release();
        release = NO_TURN;
        return control.onRunning(p);
      },
      // A held container waits for its slot without the turn: its set-up is done.
      onHeld: () => {
        release();
        release = NO_TURN;
        control.onHeld?.();
      },
    }, async () => {
      release();
      release = NO_TURN;
      release = await turn();
    });
  } finally {
    release();
  }
}

/**
 * The executor's part of the placeholders, the last substitution: `{output}` and `{split.path}`
 * (only it knows them), and `{{name}}` unescaped to the text `{name}`.
 */
function substitute(s: string, values: Readonly<Record<string, string>>): string {
  return substitutePlaceholders(s, (name) => (name === 'output' || name === 'split.path' ? values[name] : undefined), true);
}

/** An input that could not be read, classified: the host's trouble (not counted) or the task's. */
class InputError extends Error {
  /** `outputHost`: the host of an earlier stage's output that could not be fetched. */
  constructor(readonly hostCause: boolean, message: string, readonly outputHost?: string) {
    super(message);
  }
}

function inputError(what: string, err: unknown, outputHost?: string): InputError {
  const message = err instanceof Error ? err.message : String(err);
  return new InputError(isHostCause(err), `${what}: ${message}`, outputHost);
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Make every earlier stage's committed outputs readable under one directory per stage: the
 * stage directory itself when this host sees it whole (a shared mount), else a scratch
 * directory holding a link to each part on this host and a copy of each part fetched from its
 * host's block server. Returns the rewrites of the stage directories in argv and env.
 */
async function prepareStageInputs(payload: AttemptPayload, dp: DataPlane, scratch: string, volumes: AttemptVolume[]): Promise<Map<string, string>> {
  const rewrites = new Map<string, string>();
  for (const si of payload.stageInputs ?? []) {
    let whole = await exists(si.dir);
    for (const part of si.parts) {
      if (!whole) break;
      whole = await exists(join(si.dir, part.name));
    }
    if (whole) continue;
    const dir = join(scratch, 'stages', si.stage.replace(/[^A-Za-z0-9_.-]/g, '_'));
    await fsp.mkdir(dir, { recursive: true });
    for (const part of si.parts) {
      const target = join(dir, part.name);
      if (await exists(join(part.path, COMMIT_MARKER))) {
        // On this host already: link it and let the container see it read-only.
        await fsp.symlink(part.path, target);
        volumes.push({ hostPath: part.path, containerPath: part.path, readOnly: true });
        continue;
      }
      try {
        await fetchPart(part, dp, target);
      } catch (err) {
        throw inputError(`output ${part.name} of stage '${si.stage}' on ${part.host}`, err, part.host);
      }
    }
    rewrites.set(si.dir, dir);
  }
  return rewrites;
}

function rewrite(s: string, rewrites: ReadonlyMap<string, string>): string {
  let out = s;
  for (const [from, to] of rewrites) out = out.split(from).join(to);
  return out;
}

/** runAttempt's body; `commitTurn` is awaited once the workload has ended, before its output is handled. */
async function runAttemptInTurns(payload: AttemptPayload, ctx: AttemptContext, control: AttemptControl, commitTurn: () => Promise<void>): Promise<AttemptResult> {
  let plan: OutputPlan | undefined;
  let launched: RunHandle | undefined;
  try {
    return await attemptSteps(payload, ctx, control, commitTurn, (p) => (plan = p), (h) => (launched = h));
  } finally {
    // Its result is built: nothing reads its sandbox any more but `locus logs`, which the
    // runner's retention serves (sandbox-retention.ts). A runner failing at that is no reason
    // to change the result.
    try {
      launched?.release?.();
    } catch (err) {
      ctx.logger.warn({ attempt: payload.attemptId, err: (err as Error).message }, 'the runner could not take the attempt\'s sandbox back');
    }
    // Whatever the end: this attempt no longer uses its stage's staging directory, which goes
    // when no attempt of this process uses it any more and it is empty (releaseStaging).
    if (plan !== undefined) await releaseStaging(plan);
  }
}

/** An attempt's result without what every result of that attempt says alike (AttemptBasics.end adds it). */
export type EndFields = Omit<AttemptResult, 'attemptId' | 'taskId' | 'host' | 'startedAt' | 'finishedAt'>;

/** The result of an attempt whose workload ran, without what its run adds (RunEnders.finish). */
export type FinishFields = Omit<AttemptResult, 'attemptId' | 'taskId' | 'host' | 'startedAt' | 'finishedAt' | 'sandboxDir'>;

/** A phase's answer: the attempt ended there, or what the next phase goes on with. */
export type Phase<T> = { readonly ended: AttemptResult } | { readonly ended?: undefined; readonly next: T };

/** An attempt's log lines, each naming the attempt. */
export interface AttemptLog {
  warn(o: object, m: string): void;
  debug(o: object, m: string): void;
}

/** What an attempt is given, and how it logs and describes its end. */
export interface AttemptBasics {
  readonly payload: AttemptPayload;
  readonly ctx: AttemptContext;
  readonly control: AttemptControl;
  readonly log: AttemptLog;
  /** The attempt's result, started when the attempt was. */
  readonly end: (r: EndFields) => AttemptResult;
}

/** Where an attempt's output goes, once the checks before its run let it go on. */
export interface OutputTarget {
  readonly dest: Destination | undefined;
  readonly hdfs: HdfsOutputFs | undefined;
  /** Where this host writes the task's output; undefined when the task has none. */
  readonly out: { readonly dir: string; readonly relPath?: string } | undefined;
  readonly ledgerId: string;
}

/** What the phases of an attempt that goes on share, from its output's plan to its outcome. */
export interface AttemptScope extends AttemptBasics, OutputTarget {
  readonly dp: DataPlane | undefined;
  readonly tenant: string | undefined;
  readonly uid: number | undefined;
  readonly containerId: string;
  readonly plan: OutputPlan | undefined;
  readonly ledger: CommitLedger | undefined;
  readonly decide: CommitDecision | undefined;
  /** Marks the task's record with a conflict the winner found (with the ledger). */
  readonly markConflict: ConflictMark | undefined;
  readonly scratch: string;
  /** Whether the scratch directory was made: only then is there one to clean up. */
  scratchMade: boolean;
  /** The attempt's container when it started held (start-gate.ts). */
  held: HeldContainer | undefined;
  /** Gives the attempt's slot back; a no-op until it has one. */
  releaseSlot: () => void;
}

/** How the workload's run ended, and whether the attempt's timeout or the executor's drain stopped it. */
export interface RunEnd {
  readonly exit: RunExit;
  /** When the workload began to run: the start its result gives. */
  readonly runningAt: number;
  /** When it exited (before the commit's turn and the commit). */
  readonly exitedAt: number;
  readonly timedOut: boolean;
  readonly drained: boolean;
}

/** The result of an attempt whose workload ran: `finish` describes it, `failed` discards its output first. */
export interface RunEnders {
  readonly finish: (r: FinishFields) => AttemptResult;
  readonly failed: (r: FinishFields) => Promise<AttemptResult>;
}

/**
 * runAttemptInTurns's phases; `planned` is told the output's plan once it is made, `launched` the
 * container's handle once it exists.
 */
async function attemptSteps(payload: AttemptPayload, ctx: AttemptContext, control: AttemptControl, commitTurn: () => Promise<void>, planned: (plan: OutputPlan) => void, launched: (handle: RunHandle) => void): Promise<AttemptResult> {
  const startedAt = Date.now();
  const base = { attemptId: payload.attemptId, taskId: payload.taskId, host: ctx.host, startedAt };
  const end = (r: EndFields): AttemptResult => ({ ...base, ...r, finishedAt: Date.now() });
  // A child logger per attempt costs more than a no-op attempt: create it only to log.
  const log: AttemptLog = { warn: (o: object, m: string) => ctx.logger.warn({ attempt: payload.attemptId, ...o }, m), debug: (o: object, m: string) => ctx.logger.debug({ attempt: payload.attemptId, ...o }, m) };
  const basics: AttemptBasics = { payload, ctx, control, log, end };

  const checked = await checkBeforeRun(basics);
  if (checked.ended !== undefined) return checked.ended;
  const s = planAttempt({ ...basics, ...checked.next }, planned);
  const started = await startContainer(s, launched);
  if (started.ended !== undefined) return started.ended;
  const handle = started.next;
  const run = await runToExit(s, handle, commitTurn);
  return await outcomeOf(s, handle, run);
}

/**
 * The checks before anything is made for the attempt: its queue contract, its destination, and
 * whether its task's output is already committed. Ends the attempt when one of them does.
 */
async function checkBeforeRun(a: AttemptBasics): Promise<Phase<OutputTarget>> {
  const { payload, ctx, log, end } = a;
  if (!contractCompatible(payload.contractVersion, CONTRACT_VERSION)) {
    return { ended: end({ state: 'FAILED', exitCode: null, reason: 'CONTRACT_MISMATCH', message: `attempt speaks queue contract ${payload.contractVersion}, this executor ${CONTRACT_VERSION}: major versions differ; upgrade the executor or the scheduler` }) };
  }
  const dp = ctx.dataPlane;
  // The last stage's destination when the spec names one (local:// on this host, hdfs://).
  let dest: Destination | undefined;
  try {
    dest = destinationOf(payload, dp?.localDataDir, dp?.hdfs);
  } catch (err) {
    return { ended: end({ state: 'FAILED', exitCode: null, reason: 'OUTPUT_UNAVAILABLE', message: (err as Error).message }) };
  }
  const hdfs = dest?.kind === 'hdfs' ? dp?.hdfs?.() : undefined;
  // Where this host writes the task's output: the payload's directory on a shared mount, or
  // the same layout under this host's own outputs root (or its local dataset directory).
  const out = payload.outputDir === undefined ? undefined : dest?.kind === 'local' ? { dir: dest.dir } : dp ? dp.outputFor(payload.outputDir) : { dir: payload.outputDir };
  // A task whose output is already committed is never run again: this is what
  // makes redelivery after a crash or a Redis rollback converge.
  // The task's commit record in this attempt's generation (a recompute after its output was
  // lost with its host commits under a new one).
  const ledgerId = ledgerIdOf(payload.taskId, payload.generation);
  if (out !== undefined) {
    let recorded: CommittedOutput | undefined;
    try {
      recorded = await dp?.ledger?.lookup(ledgerId);
    } catch (err) {
      return { ended: end({ state: 'LOST', exitCode: null, reason: 'COMMIT_LEDGER_UNAVAILABLE', message: `cannot read the task's commit record: ${(err as Error).message}` }) };
    }
    if (recorded !== undefined) {
      // The winner could not place the output (the final path held something else): the task's
      // conflict stands, whichever host asks, and is reported again, never taken for a commit.
      if (recorded.conflict !== undefined) return { ended: end({ state: 'FAILED', exitCode: null, reason: 'OUTPUT_CONFLICT', message: recorded.conflict }) };
      // A rename a crash cut short is finished: on HDFS from any host, else on the recording host.
      let unflushed = '';
      const rec = recorded;
      // The final path holds something this task did not commit, and the winner did not live to
      // mark its record: marked here, so that attempts on every host report it too, and the copy
      // the record names (nobody's output now: no roll-forward will rename it) goes.
      let conflict: { readonly message: string; readonly discard: () => Promise<unknown> } | undefined;
      if (isHdfsRecord(rec)) {
        const settled = await (hdfs === undefined ? Promise.resolve(false) : settleHdfs(rec, hdfs)).catch(() => false);
        if (typeof settled === 'object') conflict = { message: settled.conflict, discard: async () => (rec.staged === undefined ? false : hdfs?.remove(rec.staged).catch(() => false)) };
      } else if (rec.host === ctx.host) {
        const placed = await settleCommitted(rec, (why) => {
          unflushed = `; rolled into place here: ${why}`;
          log.warn({ err: why, path: rec.path }, 'a recorded commit was rolled forward but its directory could not be flushed');
        }).catch(() => false);
        if (typeof placed === 'object') conflict = { message: placed.conflict, discard: () => discardStaged(rec) };
        // Recorded here, yet neither in place nor placeable (its staging directory gone, or the
        // rename refused by the disk): saying "committed" would hand the next stage a path with
        // nothing of it. Counted, so a host that cannot place it ends in the task's failure; an
        // attempt on another host reports the record, and readers that find nothing there have
        // the output computed again.
        else if (!placed) {
          log.warn({ path: rec.path }, 'the task\'s recorded output is not in place on this host and could not be put there');
          return { ended: end({ state: 'FAILED', exitCode: null, reason: 'OUTPUT_WRITE_FAILED', message: `the task's output is recorded on ${ctx.host} (attempt ${rec.attemptId}) but is not in place at ${rec.path}, and could not be put there` }) };
        }
      }
      if (conflict !== undefined) {
        try {
          await dp?.ledger?.markConflict(ledgerId, rec, conflict.message);
        } catch (err) {
          return { ended: end({ state: 'LOST', exitCode: null, reason: 'COMMIT_LEDGER_UNAVAILABLE', message: `the task's output cannot be placed (${conflict.message}), and its commit record could not be marked so: ${(err as Error).message}` }) };
        }
        await conflict.discard();
        return { ended: end({ state: 'FAILED', exitCode: null, reason: 'OUTPUT_CONFLICT', message: conflict.message }) };
      }
      return { ended: end({ state: 'SUCCEEDED', exitCode: 0, reason: 'ALREADY_COMMITTED', message: `output already committed by attempt ${recorded.attemptId} on ${recorded.host}${unflushed}`, outputPath: recorded.path, output: recorded }) };
    }
    // Without a ledger the committed directory's marker is the record (with one, the ledger's
    // answer above is the whole check: reading a marker that is not there costs an error per attempt,
    // and a directory held by something else is found at the commit, before the ledger is asked).
    let held: Occupant = { kind: 'free' };
    try {
      if (dp?.ledger === undefined) held = await committedDurably(out.dir, payload.attemptId);
    } catch (err) {
      if (err instanceof OutputNotDurableError) return { ended: end(notDurable(err)) };
      throw err;
    }
    if (held.kind === 'task') {
      return { ended: end({ state: 'SUCCEEDED', exitCode: 0, reason: 'ALREADY_COMMITTED', message: `output already committed by attempt ${held.attemptId}`, outputPath: out.dir }) };
    }
    // Held by something this task did not commit: it could never commit there, so nothing is run.
    if (held.kind === 'foreign') return { ended: end({ state: 'FAILED', exitCode: null, reason: 'OUTPUT_CONFLICT', message: conflictMessage(out.dir, held.what) }) };
  }
  return { next: { dest, hdfs, out, ledgerId } };
}

/**
 * What the attempt's phases share from here on: its tenant's uid, its container id, its output's
 * plan (told to `planned` at once), the commit through the ledger and its scratch directory.
 */
function planAttempt(a: AttemptBasics & OutputTarget, planned: (plan: OutputPlan) => void): AttemptScope {
  const { payload, ctx, control, dest, out, ledgerId } = a;
  const dp = ctx.dataPlane;
  // The tenant is the first segment of the output's path under the outputs root (the
  // scheduler's layout `<root>/<tenant>/<job>/...`); without one the attempt keeps the default user.
  // Without an output (outputs: none) the payload names the tenant (contract 2.2).
  const tenant = ctx.tenantUids === undefined ? undefined : out !== undefined ? tenantOfOutput(out.relPath) : payload.tenant;
  const uid = tenant !== undefined && ctx.tenantUids !== undefined ? tenantUid(tenant, ctx.tenantUids) : undefined;
  const containerId = containerIdFor(payload.attemptId, control.delivery);
  const plan: OutputPlan | undefined = out !== undefined ? planOutput(out.dir, payload.attemptId) : undefined;
  if (plan !== undefined) planned(plan);
  const ledger = dp?.ledger;
  const decide: CommitDecision | undefined = ledger === undefined || out === undefined ? undefined : async (files, size, staged) => await ledger.commit(ledgerId, {
    attemptId: payload.attemptId, host: ctx.host, ...(dp?.blockServer === undefined ? {} : { blockServer: dp.blockServer }),
    path: dest?.kind === 'hdfs' ? dest.uri : out.dir, ...(out.relPath === undefined || dest !== undefined ? {} : { relPath: out.relPath }), size, files, committedAt: Date.now(), staged,
  });
  const markConflict: ConflictMark | undefined = ledger === undefined || out === undefined ? undefined : async (record, conflict) => await ledger.markConflict(ledgerId, record, conflict);
  return {
    ...a, dp, tenant, uid, containerId, plan, ledger, decide, markConflict,
    scratch: join(ctx.scratchDir, containerId), scratchMade: false, held: undefined, releaseSlot: NO_TURN,
  };
}

/** Remove the attempt's scratch directory, when it made one. */
async function cleanupScratch(s: AttemptScope): Promise<void> {
  if (s.scratchMade) await fsp.rm(s.scratch, { recursive: true, force: true });
}

/**
 * Set the attempt up and start its container once it has a slot. Whatever fails on the way ends
 * the attempt: its slot, held container, attempt directory and scratch directory go.
 */
async function startContainer(s: AttemptScope, launched: (handle: RunHandle) => void): Promise<Phase<RunHandle>> {
  const { payload, log, end } = s;
  // A relative host path names a directory of the executor's own sandbox (a persistent volume
  // its agent mounted there); each runner resolves it the way its launcher can see it.
  const volumes = [...payload.volumes];
  const env: Record<string, string> = { ...payload.env, LOCUS_ATTEMPT_ID: payload.attemptId, LOCUS_TASK_ID: payload.taskId, LOCUS_JOB_ID: payload.jobId };
  try {
    const spec = await prepareRunSpec(s, volumes, env);
    return await launchWhenSlotFree(s, spec, launched);
  } catch (err) {
    s.releaseSlot();
    await s.held?.close();
    if (s.plan) await discardAttemptDir(s.plan).catch(() => undefined);
    await cleanupScratch(s).catch(() => undefined);
    if (err instanceof InputError) {
      // The host's trouble (storage or a block server unreachable from here) does not count
      // against the task's retries; the task's own (no such file) does.
      log.warn({ err: err.message, hostCause: err.hostCause }, 'attempt input could not be read');
      return {
        ended: end({
          state: 'FAILED', exitCode: null, reason: err.hostCause ? INPUT_UNREACHABLE : INPUT_FAILED, message: err.message,
          ...(err.hostCause && err.outputHost !== undefined ? { inputHost: err.outputHost } : {}),
        }),
      };
    }
    log.warn({ err: (err as Error).message }, 'attempt could not be launched');
    return { ended: end({ state: 'FAILED', exitCode: null, reason: 'LAUNCH_FAILED', message: (err as Error).message }) };
  }
}

/**
 * Make ready what the workload reads and writes: its attempt directory (its tenant's directory
 * closed to others), its split and earlier stages' outputs, the volumes and env that name them
 * (added to `volumes` and `env`), and its argv.
 */
async function prepareRunSpec(s: AttemptScope, volumes: AttemptVolume[], env: Record<string, string>): Promise<RunSpec> {
  const { payload, ctx, dp, out, tenant, uid, plan, scratch } = s;
  const values: Record<string, string> = {};
  // A split read through this host's GlusterFS or CephFS mount (bound into the container at its
  // path, or streamed through it into scratch): with the mount gone its file is simply not there,
  // and the launch or the read failed as the task's own failure, counted, on every retry that
  // came back here. Looked at first, before anything is made for the attempt: the host's trouble.
  if (payload.split !== undefined && dp?.inputMounts !== undefined) {
    const why = await dp.inputMounts.whyUnreadable(payload.split, ctx.host);
    if (why !== undefined) throw new InputError(true, why);
  }
  if (plan) {
    await prepareAttemptDir(plan);
    if (tenant !== undefined && uid !== undefined && out?.relPath !== undefined) await closeTenantDir(out.dir, out.relPath, uid);
    values['output'] = plan.attemptDir;
    env['LOCUS_OUTPUT_DIR'] = plan.attemptDir;
    volumes.push({ hostPath: plan.attemptDir, containerPath: plan.attemptDir, readOnly: false });
  }
  if (payload.split) {
    env['LOCUS_SPLIT_URI'] = payload.split.uri;
    env['LOCUS_SPLIT_OFFSET'] = String(payload.split.offset);
    env['LOCUS_SPLIT_LENGTH'] = String(payload.split.length);
    let splitPath = payload.split.localPath;
    if (splitPath === undefined && (dp !== undefined || ctx.splitReader)) {
      // Not on this host: stream the byte range from a block server or the backend into
      // the attempt's scratch directory, so the workload always reads a file.
      await makeScratch(scratch);
      s.scratchMade = true;
      splitPath = join(scratch, 'split');
      try {
        if (dp !== undefined) await materialiseSplit(payload.split, dp, splitPath);
        else if (ctx.splitReader) await pipeline(await ctx.splitReader(payload.split.uri, payload.split.offset, payload.split.length), createWriteStream(splitPath));
      } catch (err) {
        // A split over an earlier stage's output names the host that committed it.
        throw inputError(`cannot read ${payload.split.uri}`, err, payload.split.sources?.find((x) => x.root === 'outputs')?.host);
      }
      await shareScratch(scratch, uid);
      volumes.push({ hostPath: scratch, containerPath: scratch, readOnly: true });
    }
    if (splitPath !== undefined) {
      values['split.path'] = splitPath;
      env['LOCUS_SPLIT_PATH'] = splitPath;
    }
  }
  // No split, or none readable as a file here: `{split.path}` is empty (job-spec.md), not left
  // in the command as written.
  values['split.path'] ??= '';
  let rewrites = new Map<string, string>();
  if (dp !== undefined && (payload.stageInputs?.length ?? 0) > 0) {
    await makeScratch(scratch);
    s.scratchMade = true;
    rewrites = await prepareStageInputs(payload, dp, scratch, volumes);
    await shareScratch(scratch, uid);
    if (!volumes.some((v) => v.hostPath === scratch)) volumes.push({ hostPath: scratch, containerPath: scratch, readOnly: true });
  }
  // A stage directory replaced by a local copy is not on this host: it cannot be mounted.
  for (const p of payload.inputPaths) if (!rewrites.has(p)) volumes.push({ hostPath: p, containerPath: p, readOnly: true });
  for (const [k, v] of Object.entries(env)) env[k] = rewrite(substitute(v, values), rewrites);
  return {
    containerId: s.containerId, argv: payload.argv.map((a) => rewrite(substitute(a, values), rewrites)), env, resources: payload.resources, volumes,
    ...(uid !== undefined ? { user: String(uid) } : {}),
  };
}

/**
 * Start the attempt's container once it has one of the executor's slots (held meanwhile where it
 * may be), and tell `launched` its handle; an attempt that gets no slot is handed back.
 */
async function launchWhenSlotFree(s: AttemptScope, spec: RunSpec, launched: (handle: RunHandle) => void): Promise<Phase<RunHandle>> {
  const { ctx, control, log, end, uid, plan } = s;
  let slot = control.slotNow?.();
  if (control.slot !== undefined && slot === undefined) {
    // Queued for a slot now, in arrival order, whatever a held start does meanwhile.
    const waiting = control.slot();
    if (ctx.startOrder !== undefined && ctx.runner.heldStarts === true && (ctx.holdStarts?.() ?? true)) {
      s.held = await startHeld({
        runner: ctx.runner, order: ctx.startOrder, spec, slot: waiting, gateDir: ctx.scratchDir, prepare: () => makeScratchRoot(ctx.scratchDir),
        owner: uid !== undefined && process.getuid?.() === 0 ? uid : undefined,
        warn: (err) => log.warn({ err: err.message }, 'could not start the container held; it starts when its slot frees'),
      });
      if (s.held !== undefined) control.onHeld?.();
    }
    const got = await waiting;
    if (got === 'timeout' || got === 'aborted') {
      // Never started: its held container (the workload never ran in it) and its staging go,
      // and the scheduler places it again (not counted).
      await s.held?.stop();
      if (plan) await discardAttemptDir(plan).catch(() => undefined);
      await cleanupScratch(s).catch(() => undefined);
      return {
        ended: got === 'timeout'
          ? end({ state: 'LOST', exitCode: null, reason: HANDED_BACK, message: `handed back before it started: every slot of the executor on ${ctx.host} stayed busy; it is placed again` })
          : end({ state: 'LOST', exitCode: null, reason: 'DRAINED', message: 'the executor drained and handed the attempt back before it started' }),
      };
    }
    slot = got;
  }
  s.releaseSlot = slot?.release ?? NO_TURN;
  if (s.held?.ended === true) {
    // Not the workload's doing: it starts as it would have without held starts.
    log.warn({}, 'the held container ended before its slot freed; it starts again now');
    await s.held.close();
    s.held = undefined;
  }
  let handle: RunHandle;
  if (s.held !== undefined) {
    await s.held.release();
    handle = s.held.handle;
  } else {
    handle = await (ctx.startOrder !== undefined ? ctx.startOrder.now(() => ctx.runner.launch(spec)) : ctx.runner.launch(spec));
  }
  launched(handle);
  return { next: handle };
}

/**
 * Report the workload running and wait for it to exit, stopping it at the attempt's timeout or at
 * the executor's drain; then give its slot back, wait for the commit's turn and remove its scratch.
 */
async function runToExit(s: AttemptScope, handle: RunHandle, commitTurn: () => Promise<void>): Promise<RunEnd> {
  const { payload, ctx, control, log } = s;
  const runningAt = Date.now();
  await Promise.resolve(control.onRunning({ phase: 'running', attemptId: payload.attemptId, startedAt: runningAt, host: ctx.host, sandboxDir: handle.sandboxDir })).catch((err: unknown) => {
    log.debug({ err: (err as Error).message }, 'progress report failed');
  });

  let timedOut = false;
  let drained = false;
  // The clock's timer: a timeout past setTimeout's 24.8 days (`timeout: 30d`) fired at once.
  const timer = payload.timeoutMs > 0 ? systemClock.setTimer(payload.timeoutMs, () => {
    timedOut = true;
    void handle.kill(ctx.killGraceMs).catch(() => undefined);
  }) : undefined;
  const onDrain = (): void => {
    drained = true;
    void handle.kill(ctx.killGraceMs).catch(() => undefined);
  };
  if (control.drain.aborted) onDrain();
  else control.drain.addEventListener('abort', onDrain, { once: true });
  let exit: RunExit;
  let exitedAt: number;
  try {
    exit = await handle.wait();
  } catch (err) {
    exit = { exitCode: null, signal: null, reason: 'LAUNCH_FAILED', message: `lost track of the container: ${(err as Error).message}` };
  } finally {
    exitedAt = Date.now();
    timer?.cancel();
    control.drain.removeEventListener('abort', onDrain);
    // The container is gone: its slot goes to the next prepared attempt while this one commits.
    s.releaseSlot();
    await s.held?.close();
  }
  control.onExited?.();
  // An attempt with no output (outputs: none) has nothing to commit: no commit turn to wait for.
  if (s.plan !== undefined) await commitTurn();
  await cleanupScratch(s).catch(() => undefined);
  return { exit, runningAt, exitedAt, timedOut, drained };
}
