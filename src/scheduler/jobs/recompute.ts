/**
 * Outputs lost with their host, per job (Spark's lost shuffle files): which hosts hold a job's
 * host-local outputs, which hosts were lost, which earlier-stage tasks are being recomputed, and
 * which later-stage tasks wait (parked) for them. The job service owns tasks and attempts; this
 * class decides what a host loss or an attempt's end means for outputs and asks the service,
 * through RecomputeContext, to make tasks pending.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../obs/log.js';
import type { AttemptResult } from '../../executor/contract.js';
import { COMMIT_MARKER, INPUT_UNREACHABLE, ledgerIdOf } from '../../executor/contract.js';
import { partsLostWith, sharedPartsOn, type CommittedPart, type JobDataPlane, type StageOutputs } from './outputs.js';
import type { JobStore, StoredSplit } from './store.js';
import { TERMINAL_JOB_STATES, taskIdOf, type JobRecord, type TaskRecord, type TaskState } from './model.js';
import { stageOutputDir } from './tasks.js';

/** A later-stage task waiting for a recompute: how to make it pending again. */
interface ParkedTask {
  readonly stage: number;
  readonly index: number;
  readonly split: StoredSplit | undefined;
  readonly rec: TaskRecord | undefined;
}

/** A pending task, as far as parking it needs. */
export interface UnpendedTask {
  readonly taskId: string;
  readonly stage: number;
  readonly index: number;
  readonly split: StoredSplit | undefined;
}

/** What the lost-output bookkeeping needs of the job service. */
export interface RecomputeContext {
  readonly store: JobStore;
  readonly dataPlane: JobDataPlane | undefined;
  readonly outputs: StageOutputs | undefined;
  readonly logger: Logger;
  /** Ids of the jobs this process knows. */
  jobIds(): string[];
  /** A job's cached record (state as last read). */
  cached(jobId: string): JobRecord | undefined;
  /** A job's record with its state and counters read anew. */
  refresh(jobId: string): Promise<JobRecord>;
  isPending(taskId: string): boolean;
  isRunning(taskId: string): boolean;
  /** Make a task pending (it parks itself here while an earlier stage is recomputed). */
  addPending(job: JobRecord, stage: number, index: number, split: StoredSplit | undefined, rec: TaskRecord | undefined): void;
  /** Take a job's pending tasks of stages after `stage` out of pending; returns them. */
  unpendAfter(jobId: string, stage: number): UnpendedTask[];
  /** Forget a job's counts of uncounted input failures. */
  resetInputFailures(jobId: string): void;
  /** Outputs of a job were reopened to recompute them. */
  recomputed(event: { jobId: string; host: string; reason: string; tasks: number }): void;
  /** Tell watchers what the job is doing. */
  progress(job: JobRecord, message: string): void;
  /**
   * Whether a committed output under the shared output root is in place (its commit marker is
   * there). Default: looked up on this process's filesystem, where the shared root is mounted; an
   * output this process cannot see is taken as not in place.
   */
  inPlace?(path: string): Promise<boolean>;
  /** New pending work appeared. */
  work(): void;
}

/** Lost-output bookkeeping for the job service (see the file comment). */
export class LostOutputs {
  /**
   * Per job, the earlier-stage tasks being recomputed because their outputs were lost with a
   * host (task id → its stage). While a job has any, its tasks of later stages wait in `parked`.
   */
  private readonly recomputing = new Map<string, Map<string, number>>();
  /** Per job, later-stage tasks waiting for a recompute to commit. */
  private readonly parked = new Map<string, Map<string, ParkedTask>>();
  /**
   * Per job, hosts that were lost, each with the `seq` of its latest loss: a commit recorded
   * there later by an attempt started before that loss (one that raced it) is recomputed too.
   * An attempt started there after the loss (the host came back: unreachable for a while, or its
   * executors replaced) commits for good.
   */
  private readonly lostHosts = new Map<string, Map<string, number>>();
  /** Per job, hosts holding its host-local committed outputs of non-final stages (see outputHosts). */
  private readonly heldOutputs = new Map<string, Set<string>>();
  /** Jobs whose every commit this process saw (submitted here): their heldOutputs is complete. */
  private readonly heldComplete = new Set<string>();
  /** Orders attempt starts and host losses: an attempt started after its host was declared lost. */
  private seq = 0;
  /** Counters for tests and metrics: tasks reopened to recompute lost outputs. */
  readonly metrics = { recomputed: 0 };

  constructor(private readonly c: RecomputeContext) {}

  /** A job submitted here: every commit of it will be seen, hosts are added as outputs land on them. */
  jobSubmitted(jobId: string): void {
    this.heldOutputs.set(jobId, new Set());
    this.heldComplete.add(jobId);
  }

  /** After a restart: the hosts holding a recovered job's earlier outputs (its list is incomplete). */
  heldAfterRecovery(jobId: string, hosts: Set<string>): void {
    this.heldOutputs.set(jobId, hosts);
  }

  /**
   * After a restart: earlier-stage tasks reopened before it are recomputing again (registered
   * before any later-stage task is made pending, so those wait for them).
   */
  resumeRecomputes(jobId: string, reopened: readonly TaskRecord[]): void {
    if (reopened.length > 0) this.recomputing.set(jobId, new Map(reopened.map((t) => [t.id, t.stage])));
  }

  /** An attempt starts: its place in the order of starts and losses. */
  attemptStarted(): number {
    return ++this.seq;
  }

  /** Whether some of a job's outputs are being recomputed. */
  isRecomputing(jobId: string): boolean {
    return this.recomputing.has(jobId);
  }

  /** Whether a host was declared lost for a job. */
  wasLost(jobId: string, host: string): boolean {
    return this.lostHosts.get(jobId)?.has(host) === true;
  }

  /**
   * Park a task that would read outputs being recomputed (an earlier stage's): it waits, not
   * failing, not spending attempts, until they are committed again. Returns whether it was parked.
   */
  parkIfWaiting(job: JobRecord, taskId: string, stage: number, index: number, split: StoredSplit | undefined, rec: TaskRecord | undefined): boolean {
    const recomputing = this.recomputing.get(job.id);
    if (recomputing === undefined || ![...recomputing.values()].some((s) => s < stage)) return false;
    this.parkedOf(job.id).set(taskId, { stage, index, split, rec });
    return true;
  }

  /** The hosts a task avoids because it recomputes outputs lost with them. */
  lostFor(jobId: string, taskId: string): string[] {
    return this.recomputing.get(jobId)?.has(taskId) === true ? [...(this.lostHosts.get(jobId)?.keys() ?? [])] : [];
  }

  /** A job takes no more work (failing or cancelled): nothing of it waits any longer. */
  dropJob(jobId: string): void {
    this.parked.delete(jobId);
    this.recomputing.delete(jobId);
  }

  /**
   * Hosts holding committed outputs that a running job's later stages still read (kept on the
   * host, not under the shared output root): executor placement keeps an executor there, because
   * its block server is what serves them.
   */
  outputHosts(): Set<string> {
    const out = new Set<string>();
    for (const [jobId, hosts] of this.heldOutputs) {
      const job = this.c.cached(jobId);
      if (job === undefined || TERMINAL_JOB_STATES.has(job.state)) {
        this.heldOutputs.delete(jobId);
        continue;
      }
      for (const h of hosts) out.add(h);
    }
    return out;
  }

  /**
   * A host is lost (Mesos says its agent is gone or unreachable, or no executor — hence no block
   * server — is left on it): the committed outputs it held that running jobs still need are
   * recomputed. See recomputeLost.
   */
  async hostLost(host: string, reason: string): Promise<number> {
    let n = 0;
    for (const jobId of this.c.jobIds()) {
      const job = this.c.cached(jobId);
      if (job === undefined || TERMINAL_JOB_STATES.has(job.state)) continue;
      // Commits seen by this process name their hosts: a job with none on this host is skipped
      // without reading its records (a job recovered after a restart has no such list: checked).
      if (this.heldComplete.has(jobId) && this.heldOutputs.get(jobId)?.has(host) !== true) continue;
      n += await this.recomputeLost(jobId, host, reason).catch((err: unknown) => {
        this.c.logger.warn({ jobId, host, err: String(err) }, 'recomputing outputs lost with a host failed');
        return 0;
      });
    }
    return n;
  }

  /**
   * What an attempt's end means for outputs: a commit of a host-local output is noted (its host
   * keeps an executor); a recompute that committed may release the tasks waiting for it; a commit
   * recorded on a host already lost (the result of an attempt that committed just before its host
   * went) is recomputed at once; and a later-stage attempt that could not fetch an earlier
   * output from its host (a fetch failure) declares that host's outputs of this job lost.
   * `startSeq` is the attempt's attemptStarted (0 when unknown: started before this process).
   */
  async attemptEnded(jobId: string, result: AttemptResult, outcome: TaskState, startSeq: number): Promise<void> {
    const job = this.c.cached(jobId);
    if (job === undefined) return;
    const parsed = /\.(\d+)\.(\d+)$/.exec(result.taskId);
    const stage = Number(parsed?.[1] ?? -1);
    const spec = job.spec.stages[stage];
    if (outcome === 'SUCCEEDED' && result.output !== undefined && spec !== undefined && stage < job.spec.stages.length - 1
      && !result.output.path.startsWith(`${stageOutputDir(job.outputDir, spec)}/`)) {
      const held = this.heldOutputs.get(jobId) ?? new Set<string>();
      this.heldOutputs.set(jobId, held);
      held.add(result.output.host);
      // Only an attempt started before its host's loss raced it. One started there since (the host
      // is back, and placement may use a lost host when no other could run a task) committed an
      // output that is there: recomputing it would reopen every commit on that host, for ever.
      // An output committed by another attempt (ALREADY_COMMITTED) is as old as that attempt: raced.
      const lostAt = this.lostHosts.get(jobId)?.get(result.output.host);
      const committedSeq = result.output.attemptId === result.attemptId ? startSeq : 0;
      if (lostAt !== undefined && committedSeq < lostAt) await this.recomputeLost(jobId, result.output.host, 'committed on a host already lost');
    }
    const recomputing = this.recomputing.get(jobId);
    if (outcome === 'SUCCEEDED' && recomputing?.has(result.taskId) === true) {
      recomputing.delete(result.taskId);
      this.c.outputs?.invalidate(jobId, stage);
      if (recomputing.size === 0) this.recomputing.delete(jobId);
      await this.releaseParked(jobId);
    }
    if (result.reason === INPUT_UNREACHABLE && result.inputHost !== undefined && outcome === 'PENDING') {
      await this.recomputeLost(jobId, result.inputHost, `fetch failure: ${result.message}`, true);
    }
  }

  /**
   * Recompute one job's committed outputs on a lost host (Spark's lost shuffle files): each such
   * task is made pending again in its next output generation (JobStore.reopen: one script, so a
   * second report of the same loss changes nothing), and every task of a later stage — pending
   * now or coming back from an attempt that could not read its input — waits, parked, until the
   * recomputes committed; then it is pending again with the new locations. Returns how many
   * tasks were reopened.
   */
  private async recomputeLost(jobId: string, host: string, reason: string, fetchFailure = false): Promise<number> {
    const job = await this.c.refresh(jobId);
    if (job.state !== 'RUNNING' || this.c.dataPlane === undefined) return 0;
    const lostOn = this.lostHosts.get(jobId) ?? new Map<string, number>();
    this.lostHosts.set(jobId, lostOn);
    lostOn.set(host, ++this.seq);
    const gens = await this.c.store.generations(jobId);
    const candidates: { stage: number; index: number; generation: number }[] = [];
    const last = Math.min(job.stage, job.spec.stages.length - 2);
    for (let s = 0; s <= last; s++) {
      const count = job.stages[s]?.taskCount ?? 0;
      for (let i = 0; i < count; i++) {
        const t = taskIdOf(jobId, s, i);
        candidates.push({ stage: s, index: i, generation: gens.get(t) ?? 0 });
      }
    }
    if (candidates.length === 0) return 0;
    const records = await this.c.dataPlane.commits(candidates.map((c) => ledgerIdOf(taskIdOf(jobId, c.stage, c.index), c.generation)));
    const parts: CommittedPart[] = candidates.flatMap((c, i) => {
      const record = records[i];
      return record === undefined ? [] : [{ ...c, record }];
    });
    const lost = partsLostWith(host, job, parts);
    // A reader could not fetch an output of this host: one recorded under the shared root whose
    // commit marker is not in place was never renamed there (its winner was cut off between the
    // ledger's record and the rename, as when its host's link went down) and is lost with the host
    // too. Without this it would be read from that host for ever, each reader's failure counting
    // once the uncounted ones are spent, until the job failed.
    if (fetchFailure) {
      for (const p of sharedPartsOn(host, job, parts)) if (!(await this.inPlace(p.record.path))) lost.push(p);
    }
    let reopened = 0;
    const recomputing = this.recomputing.get(jobId) ?? new Map<string, number>();
    for (const p of lost) {
      const taskId = taskIdOf(jobId, p.stage, p.index);
      const generation = await this.c.store.reopen(taskId, p.generation);
      if (generation === undefined) continue;
      reopened++;
      // Registered before anything is made pending, so later stages park from here on.
      recomputing.set(taskId, p.stage);
      this.recomputing.set(jobId, recomputing);
      this.c.outputs?.invalidate(jobId, p.stage);
      this.metrics.recomputed++;
    }
    if (reopened === 0) return 0;
    this.c.logger.warn({ jobId, host, reason, tasks: reopened }, 'committed outputs lost with their host; recomputing them');
    this.c.recomputed({ jobId, host, reason, tasks: reopened });
    // Later-stage tasks already pending wait too; attempts that failed reading the lost host so
    // far start their count of uncounted input failures afresh.
    const first = Math.min(...recomputing.values());
    for (const t of this.c.unpendAfter(jobId, first)) {
      this.parkedOf(jobId).set(t.taskId, { stage: t.stage, index: t.index, split: t.split, rec: undefined });
    }
    this.c.resetInputFailures(jobId);
    for (const taskId of recomputing.keys()) {
      if (this.c.isPending(taskId) || this.c.isRunning(taskId)) continue;
      const rec = await this.c.store.getTask(taskId);
      if (rec?.state !== 'PENDING') continue;
      const split = job.spec.stages[rec.stage]?.tasks ? undefined : (await this.c.store.getSplits(jobId, rec.stage, rec.index, rec.index + 1))[0];
      // Checked again after the reads: a concurrent report of the same loss may have added it.
      if (!this.c.isPending(taskId) && !this.c.isRunning(taskId)) this.c.addPending(job, rec.stage, rec.index, split, rec);
    }
    this.c.progress(await this.c.refresh(jobId), `recomputing ${reopened} output(s) lost with host ${host} (${reason})`);
    this.c.work();
    return reopened;
  }

  private async inPlace(path: string): Promise<boolean> {
    if (this.c.inPlace !== undefined) return await this.c.inPlace(path).catch(() => false);
    return await access(join(path, COMMIT_MARKER)).then(() => true, () => false);
  }

  /** Make parked tasks pending again once no stage before theirs is being recomputed. */
  private async releaseParked(jobId: string): Promise<void> {
    const parked = this.parked.get(jobId);
    if (parked === undefined || parked.size === 0) return;
    const busy = [...(this.recomputing.get(jobId)?.values() ?? [])];
    const first = busy.length === 0 ? Infinity : Math.min(...busy);
    const ready = [...parked].filter(([, p]) => p.stage <= first);
    if (ready.length === 0) return;
    const job = await this.c.refresh(jobId);
    if (job.state !== 'RUNNING') return;
    // The recomputed stages' records anew: where the waiting tasks now read from.
    await this.c.outputs?.loadBefore(job, job.stage, await this.c.store.generations(jobId));
    for (const [taskId, p] of ready) {
      parked.delete(taskId);
      const rec = await this.c.store.getTask(taskId);
      if ((rec !== undefined && rec.state !== 'PENDING') || this.c.isPending(taskId)) continue;
      this.c.addPending(job, p.stage, p.index, p.split, rec);
    }
    if (parked.size === 0) this.parked.delete(jobId);
    this.c.logger.info({ jobId, tasks: ready.length }, 'recomputed outputs committed; waiting tasks are pending again');
    this.c.work();
  }

  // A job's parked tasks, the map created when it has none.
  private parkedOf(jobId: string): Map<string, ParkedTask> {
    let parked = this.parked.get(jobId);
    if (parked === undefined) {
      parked = new Map();
      this.parked.set(jobId, parked);
    }
    return parked;
  }
}
