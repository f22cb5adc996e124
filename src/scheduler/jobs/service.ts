/**
 * The job service: submission with admission control, input resolution into
 * tasks, stage progression, attempt bookkeeping and job events. It decides
 * nothing about placement; the coordinator asks it for pending tasks and
 * tells it what was started and how attempts ended.
 */
import { EventEmitter } from 'node:events';
import { LocusError } from '../../core/errors.js';
import { newId, attemptId as makeAttemptId } from '../../core/ids.js';
import type { Clock } from '../../core/clock.js';
import type { FileLocations } from '../../core/blocks.js';
import type { LocalityLevel } from '../../core/locality.js';
import type { ResourceVector } from '../../core/resources.js';
import type { ResolveOptions } from '../../storage/port.js';
import type { Logger } from '../../obs/log.js';
import type { AttemptPayload, AttemptResult } from '../../executor/contract.js';
import { CONTRACT_VERSION, HOST_DISK_FULL, TENANT_IN_PAYLOAD_CONTRACT, contractAtLeast } from '../../executor/contract.js';
import { publishFinalOutputs, taskDestination, type LocalDatasetLister } from './destinations.js';
import { StageOutputs, splitSources, withDataPlane, type JobDataPlane } from './outputs.js';
import { LostOutputs } from './recompute.js';
import { FailureTally, HOST_FAILURES_TO_AVOID, classifyFailure, hostAtFault } from './failures.js';
import { JobStore, type StoredSplit } from './store.js';
import { effectiveLocality, type JobSpec } from './spec.js';
import type { LocalityPolicy } from '../placement/types.js';
import type { VolumeUse } from '../../volumes/feedback.js';
import {
  TERMINAL_JOB_STATES, parseTaskId, taskIdOf, type FailureClass, type JobRecord, type TaskRecord, type TaskState,
} from './model.js';
import { stageOutputDir, substitute, taskOutputDir } from './tasks.js';
import { PendingIndex } from '../placement/index.js';
import { checkExplicitTaskCounts, checkInputSchemes, checkTaskSizesAgainstQuota, checkVolumes, outputDirFor } from './admission.js';
import { SharedRuns } from '../../core/shared-runs.js';
import { TalliedMap } from '../../core/tallied-map.js';
import type { TimerHandle } from '../../core/clock.js';
import { isTransientStorageError } from '../../storage/errors.js';
import {
  DEFAULT_INPUT_STORAGE_GIVE_UP_MS, INPUT_LISTING_RETRY_BASE_MS, INPUT_LISTING_RETRY_MAX_MS, InputOutage, afterFailedTry, waitMessage, type InputWait,
} from './input-waits.js';

export { HOST_FAILURES_TO_AVOID, INPUT_RETRY_BASE_MS, INPUT_RETRY_MAX_MS, UNCOUNTED_INPUT_FAILURES, classifyFailure, hostAtFault } from './failures.js';

/** Resolves input URIs into files with splits (the storage registry). */
export interface InputResolver {
  resolve(uri: string, options: ResolveOptions): Promise<FileLocations[]>;
  /**
   * The backend serving a URI's scheme; throws for a scheme no backend serves.
   * When present, submission refuses such inputs at once (UNKNOWN_SCHEME).
   */
  backendFor?(uri: string): unknown;
}

/** A persistent volume as a job's task mounts it. */
export interface JobVolume {
  /** The volume's persistence id (placement pins tasks to the executor holding it). */
  readonly id: string;
  /** Where the volume is mounted in the executor's sandbox (relative). */
  readonly containerPath: string;
  readonly mode: 'RW' | 'RO';
}

/** Looks up a tenant's volume by name (the volume service). Throws when it is not usable. */
export interface VolumeLookup {
  forJob(tenant: string, name: string): Promise<JobVolume>;
}

/** Per-tenant admission limits. */
export interface AdmissionLimits {
  readonly maxPendingTasksPerTenant: number;
  readonly maxTasksPerJob: number;
}

/** A task waiting for a slot, as placement sees it. */
export interface PendingTask {
  readonly taskId: string;
  readonly jobId: string;
  readonly tenant: string;
  readonly stage: number;
  readonly index: number;
  readonly priority: number;
  readonly spec: JobSpec;
  readonly split: StoredSplit | undefined;
  readonly avoidHosts: readonly string[];
  readonly pendingSince: number;
  /** Attempts so far (the next attempt number is attempts + 1). */
  readonly attempts: number;
  /** The output generation the next attempt commits into (raised by each recompute). */
  readonly generation: number;
}

/** Events for watchers (SSE, gRPC WatchJob, CLI --watch). */
export interface JobEvent {
  readonly kind: 'job' | 'task';
  readonly jobId: string;
  readonly at: number;
  readonly state: string;
  readonly taskId?: string;
  readonly host?: string;
  readonly locality?: LocalityLevel;
  readonly message?: string;
  readonly counts?: JobRecord['counts'];
}

interface ServiceEvents {
  event: [JobEvent];
  /** New pending work appeared (submit, retry, next stage): run a placement pass. */
  work: [];
  /** Committed outputs of a job were lost with a host and their tasks reopened to recompute them. */
  recompute: [{ jobId: string; host: string; reason: string; tasks: number }];
  /** A stage's input listing failed because its storage is away, and will be tried again (input-waits.ts). */
  inputRetry: [{ wait: InputWait; scheme: string }];
}

/** Options for the job service. */
export interface JobServiceOptions {
  readonly store: JobStore;
  readonly resolver: InputResolver;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Directory under which each job's outputs go when the spec names none. */
  readonly outputRoot: string;
  readonly limits: AdmissionLimits;
  /** A tenant's quota (its tenants-file entry), read at each submission; absent: no quotas. */
  readonly quotaOf?: (tenant: string) => Partial<ResourceVector> | undefined;
  readonly volumes?: VolumeLookup;
  /** Block servers and commit records: attempts read data and earlier outputs on other hosts. */
  readonly dataPlane?: JobDataPlane;
  /** Lists a job's local:// final outputs in their dataset when it succeeds (absent: no local datasets). */
  readonly localDatasets?: LocalDatasetLister;
  /**
   * The framework's locality policy (`--locality-wait-node/-rack`): what a spec's
   * `locality` leaves out is taken from it. Default: 3 s per level, as the flags'.
   */
  readonly defaultLocality?: LocalityPolicy;
  /** The pause before retrying a task whose input its host could not reach, doubled per such failure (default INPUT_RETRY_BASE_MS). */
  readonly inputRetryPauseMs?: number;
  /**
   * How long a stage waits for the storage of its inputs (listing failing with transient errors)
   * before its job fails with INPUT_STORAGE_UNAVAILABLE (`input-storage-give-up`; default
   * DEFAULT_INPUT_STORAGE_GIVE_UP_MS).
   */
  readonly inputStorageGiveUpMs?: number;
  /** The pause before such a listing is tried again, doubled per failed try up to 30 s (default INPUT_LISTING_RETRY_BASE_MS). */
  readonly inputListingRetryMs?: number;
  /**
   * The queue contract an executor registered with (undefined: not known, taken as this
   * build's). An executor older than 2.2 reads an attempt's tenant from its output path only.
   */
  readonly executorContract?: (executorId: string) => string | undefined;
}

const FRAMEWORK_LOCALITY_DEFAULT: LocalityPolicy = { mode: 'wait', nodeWaitMs: 3000, rackWaitMs: 3000 };

/** A task's running attempt, as this process knows it. */
interface RunningAttempt {
  readonly attemptId: string;
  readonly tenant: string;
  readonly jobId: string;
  readonly executorId: string;
  readonly locality: LocalityLevel;
  readonly startSeq: number;
}

/** The job service. */
export class JobService extends EventEmitter<ServiceEvents> {
  private readonly pending = new TalliedMap<string, PendingTask, 'tenant'>({ tenant: (t) => t.tenant });
  /** The same pending tasks, indexed by host, rack and volume for placement. */
  readonly index = new PendingIndex();
  /**
   * taskId → running attempt id (to recognise stale results fast), and when it started in the
   * order of starts and host losses (LostOutputs.attemptStarted; 0: started before this process
   * knew of it, as after a restart).
   */
  private readonly running = new TalliedMap<string, RunningAttempt, 'tenant' | 'job'>({ tenant: (r) => r.tenant, job: (r) => r.jobId });
  private readonly jobs = new Map<string, JobRecord>();
  /** Each job spec's resolved locality policy (see localityOf). */
  private readonly resolvedLocality = new WeakMap<JobSpec, LocalityPolicy>();
  /** `<jobId>:<stage>` → the volume its tasks mount, resolved when the stage starts. */
  private readonly stageVolumes = new Map<string, { volume: JobVolume; path: string; readOnly: boolean }>();
  /** Tasks of stages being written, per tenant: they count toward the pending cap already. */
  private readonly reserved = new Map<string, number>();
  /** Per job: the progress check running and the one queued behind it (checkProgressShared). */
  private readonly progressChecks = new SharedRuns();
  /** `<jobId>:<stage>` of stages being started, so concurrent progress checks start a stage once. */
  private readonly startingStages = new Set<string>();
  /**
   * `<jobId>:<stage>` → a stage waiting for the storage of its inputs, and the timer of its next
   * try. Such a stage stays in startingStages until it opens or its job ends.
   */
  private readonly inputWaits = new Map<string, { wait: InputWait; timer: TimerHandle | undefined }>();
  /**
   * `<jobId>:<stage>` → the listing of a stage's inputs in flight. Aborted when its job ends or
   * this service closes: a listing of a stage that waits for a storage away can last the
   * registry's whole deadline, and its answer would only be written for a job that is gone
   * (purged: the writes fail) or for a scheduler that no longer leads (fenced: refused).
   */
  private readonly listings = new Map<string, AbortController>();
  private closed = false;

  /** Committed outputs of earlier stages (with a data plane). */
  private readonly outputs: StageOutputs | undefined;
  /** Outputs lost with their host: hosts holding outputs, lost hosts, recomputes, parked tasks. */
  private readonly lost: LostOutputs;
  /** Counted failures per job and host (a host that failed a job repeatedly is avoided), host-caused ones per task. */
  private readonly failures: FailureTally;

  constructor(private readonly o: JobServiceOptions) {
    super();
    this.outputs = o.dataPlane === undefined ? undefined : new StageOutputs(o.dataPlane);
    this.lost = new LostOutputs({
      store: o.store, dataPlane: o.dataPlane, outputs: this.outputs, logger: o.logger,
      jobIds: () => [...this.jobs.keys()],
      cached: (jobId) => this.jobs.get(jobId),
      refresh: (jobId) => this.refresh(jobId),
      isPending: (taskId) => this.pending.has(taskId),
      isRunning: (taskId) => this.running.has(taskId),
      addPending: (job, stage, index, split, rec) => this.addPending(job, stage, index, split, rec),
      unpendAfter: (jobId, stage) => {
        const out: PendingTask[] = [];
        for (const t of [...this.pending.values()]) {
          if (t.jobId !== jobId || t.stage <= stage) continue;
          this.pending.delete(t.taskId);
          this.index.remove(t.taskId);
          out.push(t);
        }
        return out;
      },
      resetInputFailures: (jobId) => {
        this.failures.resetInputs(jobId);
      },
      recomputed: (event) => this.emit('recompute', event),
      progress: (job, message) => this.emitJob(job, 'RUNNING', message),
      work: () => this.emit('work'),
    });
    this.failures = new FailureTally(this.lost, o.inputRetryPauseMs);
  }

  /** Counters for tests and metrics: tasks reopened to recompute lost outputs. */
  get metrics(): { readonly recomputed: number } {
    return this.lost.metrics;
  }

  /** Submit a job for a tenant. Resolution continues in the background. */
  async submit(tenant: string, spec: JobSpec, idempotencyKey?: string): Promise<JobRecord> {
    return (await this.submitJob(tenant, spec, idempotencyKey)).job;
  }

  /**
   * Submit, telling a new job from an idempotent replay (`created: false`:
   * the Idempotency-Key named an earlier job, which is returned instead).
   */
  async submitJob(tenant: string, spec: JobSpec, idempotencyKey?: string): Promise<{ job: JobRecord; created: boolean }> {
    const pendingForTenant = this.pending.countOf('tenant', tenant);
    if (pendingForTenant >= this.o.limits.maxPendingTasksPerTenant) {
      throw new LocusError('QUOTA_EXCEEDED', `tenant '${tenant}' already has ${pendingForTenant} pending tasks (limit ${this.o.limits.maxPendingTasksPerTenant})`);
    }
    checkExplicitTaskCounts(spec, this.o.limits.maxTasksPerJob);
    checkTaskSizesAgainstQuota(tenant, spec, this.o.quotaOf?.(tenant));
    checkInputSchemes(spec, this.o.resolver.backendFor ? { backendFor: (uri) => this.o.resolver.backendFor?.(uri) } : undefined);
    await checkVolumes(tenant, spec, this.o.volumes);
    const id = newId('job');
    const outputDir = outputDirFor(this.o.outputRoot, tenant, id, spec, { localDatasets: this.o.localDatasets !== undefined });
    const now = this.o.clock.now();
    const created = await this.o.store.create(
      { id, tenant, name: spec.name, spec, outputDir, createdAt: now, stages: spec.stages.map((s) => ({ name: s.name, taskCount: -1 })) },
      idempotencyKey,
    );
    if ('outputHeldBy' in created) {
      // Found here, not when the second job's first task commits into a directory that holds the
      // other job's outputs (and fails, or, its attempt retried, took the other's for its own).
      const holder = await this.o.store.get(created.outputHeldBy);
      const state = holder === undefined ? '' : ` (${holder.state.toLowerCase()})`;
      throw new LocusError('CONFLICT', `output: '${spec.output ?? ''}' is the output of job ${created.outputHeldBy}${state}, which is kept until that job is purged: choose another output`, {
        field: 'output', details: { jobId: created.outputHeldBy },
      });
    }
    if (!created.created) {
      // The key and its job are written together (one script), and a key naming a purged job is
      // taken over by the new one (CREATE_JOB): the earlier job is there.
      const existing = await this.o.store.get(created.id);
      if (!existing) throw new LocusError('INTERNAL', `idempotency key names job ${created.id}, which does not exist`);
      // A replay is the same request again; a key sent with another spec is a client's mistake,
      // refused on every surface alike (HTTP and gRPC), as the volume service does.
      if (JSON.stringify(existing.spec) !== JSON.stringify(spec)) {
        throw new LocusError('CONFLICT', `idempotency key '${idempotencyKey ?? ''}' was already used for a different job spec (job ${existing.id})`, { field: 'Idempotency-Key' });
      }
      return { job: existing, created: false };
    }
    const job = created.job;
    this.jobs.set(id, job);
    // Every commit of this job will be seen here: hosts are added as outputs land on them.
    this.lost.jobSubmitted(id);
    this.emitJob(job, 'PENDING');
    void this.startStage(job, 0);
    return { job, created: true };
  }

  /** Note where a running attempt's sandbox is (so its logs can be followed while it runs). */
  async attemptRunning(taskId: string, attemptId: string, sandboxDir: string | undefined): Promise<void> {
    if (sandboxDir === undefined) return;
    await this.o.store.noteAttempt(taskId, attemptId, { sandboxDir });
  }

  /** Resolve the volume of a stage (once per stage; kept for the stage's attempts). */
  private async resolveStageVolume(job: JobRecord, stage: number): Promise<void> {
    const ref = job.spec.stages[stage]?.task.volumes[0];
    if (!ref || !this.o.volumes) return;
    const volume = await this.o.volumes.forJob(job.tenant, ref.name);
    this.stageVolumes.set(`${job.id}:${stage}`, { volume, path: ref.path, readOnly: ref.mode === 'RO' || volume.mode === 'RO' });
  }

  /** Resume active jobs after a restart: rebuild pending tasks from the store. */
  async recover(): Promise<{ jobs: number; pending: number; running: TaskRecord[] }> {
    const running: TaskRecord[] = [];
    let pendingCount = 0;
    for (const job of await this.o.store.active()) {
      this.jobs.set(job.id, job);
      const stage = job.stage;
      const stageRec = job.stages[stage];
      if (!stageRec || stageRec.taskCount < 0) {
        void this.startStage(job, stage);
        continue;
      }
      // Splits written but the job not RUNNING: only a record of a version that wrote them and
      // the state in two steps (OPEN_STAGE now does both at once) with a crash in between.
      if (job.state !== 'RUNNING') {
        await this.o.store.setState(job.id, 'RUNNING', ['PENDING', 'RESOLVING'], this.o.clock.now());
        this.jobs.set(job.id, await this.refresh(job.id));
      }
      await this.resolveStageVolume(job, stage).catch((err: unknown) => this.o.logger.warn({ jobId: job.id, err: String(err) }, 'the volume of a recovered stage is not usable'));
      if (stage > 0) await this.outputs?.loadBefore(job, stage, await this.o.store.generations(job.id)).then(() => {
        // Hosts serving the earlier stages' outputs keep an executor (the current stage's commits
        // before the restart are not known here: hostLost reads every record of such a job).
        if (this.outputs !== undefined) this.lost.heldAfterRecovery(job.id, this.outputs.localHosts(job));
      }).catch((err: unknown) => this.o.logger.warn({ jobId: job.id, err: String(err) }, 'reading the commit records of earlier stages failed'));
      const allTasks = await this.o.store.tasks(job.id);
      // Per-job host avoidance survives a restart: rebuild it from the tasks' failed hosts.
      for (const t of allTasks) for (const h of t.failedHosts) this.failures.countHost(job.id, h);
      // Earlier-stage tasks reopened to recompute lost outputs before the restart: recomputing
      // again (registered before any later-stage task is made pending, so those wait for them).
      const reopened = allTasks.filter((t) => t.stage < stage && (t.state === 'PENDING' || t.state === 'RUNNING'));
      this.lost.resumeRecomputes(job.id, reopened);
      for (const rec of reopened) {
        const last = rec.attempts[rec.attempts.length - 1];
        if (rec.state === 'RUNNING') {
          if (last) this.running.set(rec.id, { attemptId: last.attemptId, tenant: job.tenant, jobId: job.id, executorId: last.executorId, locality: last.locality, startSeq: 0 });
          running.push(rec);
        } else {
          const split = job.spec.stages[rec.stage]?.tasks ? undefined : (await this.o.store.getSplits(job.id, rec.stage, rec.index, rec.index + 1))[0];
          this.addPending(job, rec.stage, rec.index, split, rec);
          pendingCount++;
        }
      }
      const tasks = new Map(allTasks.filter((t) => t.stage === stage).map((t) => [t.index, t]));
      const splits = job.spec.stages[stage]?.tasks ? [] : await this.o.store.getSplits(job.id, stage);
      for (let i = 0; i < stageRec.taskCount; i++) {
        const rec = tasks.get(i);
        if (rec?.state === 'RUNNING') {
          const last = rec.attempts[rec.attempts.length - 1];
          if (last) this.running.set(rec.id, { attemptId: last.attemptId, tenant: job.tenant, jobId: job.id, executorId: last.executorId, locality: last.locality, startSeq: 0 });
          running.push(rec);
        } else if (!rec || rec.state === 'PENDING') {
          this.addPending(job, stage, i, splits[i], rec);
          pendingCount++;
        }
      }
      // A later stage this check starts is listed in the background, as a first stage is above:
      // recovery is awaited before the framework subscribes to Mesos, and a listing of a storage
      // away lasts up to the registry's deadline per input, for every job behind this one.
      await this.checkProgress(job.id, false);
    }
    if (pendingCount > 0) this.emit('work');
    return { jobs: this.jobs.size, pending: pendingCount, running };
  }

  /** Tasks waiting for a slot. */
  pendingTasks(): IterableIterator<PendingTask> {
    return this.pending.values();
  }

  /** How many tasks are pending, per tenant. */
  pendingByTenant(): Map<string, number> {
    return this.pending.tally('tenant');
  }

  /** How many attempts are running, per tenant. */
  runningByTenant(): Map<string, number> {
    return this.running.tally('tenant');
  }

  /** Running attempts per tenant and per job (every placement pass asks for both). */
  runningCounts(): { readonly byTenant: Map<string, number>; readonly byJob: Map<string, number> } {
    return { byTenant: this.running.tally('tenant'), byJob: this.running.tally('job') };
  }

  /**
   * Fail a running job whose waiting tasks can get no executor anywhere (executor-starts.ts):
   * its pending tasks are dropped and it ends FAILED with `message`. Only with none of its
   * attempts running: one on a launching executor may still start, and a FAILED job's attempts
   * ending afterwards would make their tasks pending again under it. Returns whether it failed.
   */
  async giveUp(jobId: string, message: string, why = 'no executor could be started for it'): Promise<boolean> {
    const job = this.jobs.get(jobId);
    if (job === undefined || job.state !== 'RUNNING' || this.running.countOf('job', jobId) > 0) return false;
    // The count above misses an attempt whose start a pass has sent to Redis and not yet heard
    // back from: the store decides again, in the script that fails the job, from the job's own
    // running counter. Failed with such an attempt running, the job would have it sent out all
    // the same, to run for nothing.
    if (!(await this.o.store.setState(jobId, 'FAILED', ['RUNNING'], this.o.clock.now(), message, true))) return false;
    this.dropPending(jobId);
    this.o.logger.warn({ jobId, message }, `job failed: ${why}`);
    this.emitJob(await this.refresh(jobId), 'FAILED', message);
    return true;
  }

  /**
   * What uses a volume, for a delete of it (VolumeService.deleteVolume): running attempts of
   * stages that mount it, and jobs with pending tasks pinned to it. An attempt whose stage's
   * volume is not known here (its resolution failed after a restart) counts when it runs in an
   * executor holding the volume and its stage names a volume: it may well mount it.
   */
  volumeUse(volumeId: string, holders: readonly string[]): VolumeUse {
    const running: string[] = [];
    for (const [taskId, r] of this.running.entries()) {
      const stage = parseTaskId(taskId)?.stage;
      if (stage === undefined) continue;
      const mount = this.stageVolumes.get(`${r.jobId}:${stage}`);
      const mounts = mount !== undefined
        ? mount.volume.id === volumeId
        : holders.includes(r.executorId) && (this.jobs.get(r.jobId)?.spec.stages[stage]?.task.volumes.length ?? 0) > 0;
      if (mounts) running.push(taskId);
    }
    return { running, waiting: this.index.jobsPinnedTo(volumeId) };
  }

  /** Jobs with pending tasks pinned to a volume. */
  jobsPinnedTo(volumeId: string): string[] {
    return this.index.jobsPinnedTo(volumeId).map((j) => j.jobId);
  }

  /** Running attempts on one executor (to fail them over when it dies). */
  attemptsOnExecutor(executorId: string): { taskId: string; attemptId: string }[] {
    return [...this.running.entries()].filter(([, r]) => r.executorId === executorId).map(([taskId, r]) => ({ taskId, attemptId: r.attemptId }));
  }

  /**
   * Record that a pending task starts on an executor and build its payload.
   * Returns undefined when the task is no longer pending (cancelled meanwhile).
   */
  async startAttempt(taskId: string, executor: { id: string; host: string; agentUrl?: string }, locality: LocalityLevel): Promise<AttemptPayload | undefined> {
    const task = this.pending.get(taskId);
    if (!task) return undefined;
    const job = this.jobs.get(task.jobId);
    const stage = job?.spec.stages[task.stage];
    if (!job || !stage) return undefined;
    this.pending.delete(taskId);
    this.index.remove(taskId);
    const attempt = task.attempts + 1;
    const attemptId = makeAttemptId(taskId, attempt);
    let started: boolean;
    try {
      started = await this.o.store.startAttempt(taskId, {
        attempt, attemptId, executorId: executor.id, host: executor.host, locality,
        startedAt: this.o.clock.now(), state: 'RUNNING', ...(executor.agentUrl ? { agentUrl: executor.agentUrl } : {}),
      });
    } catch (err) {
      // No answer is not a no: the script may have run and its reply been lost, leaving the task
      // RUNNING in Redis under an attempt no executor was ever given. Settled once Redis answers.
      this.requeue(taskId, attemptId);
      throw err;
    }
    if (!started) {
      // Refused: the task is no longer pending, or this pending view of it is older than its
      // record (its attempts were counted before another attempt ran). In the second case it is
      // still PENDING in Redis, and nothing else would make it pending here again: put it back,
      // from its record.
      this.requeue(taskId);
      return undefined;
    }
    this.running.set(taskId, { attemptId, tenant: task.tenant, jobId: task.jobId, executorId: executor.id, locality, startSeq: this.lost.attemptStarted() });
    this.emitTask(job, taskId, 'RUNNING', { host: executor.host, locality });
    try {
      return await this.buildPayload(job, task.stage, task.index, attempt, task.split, executor, task.generation);
    } catch (err) {
      // Recorded as running but never given to an executor: ended LOST, so it runs again.
      this.requeue(taskId, attemptId);
      throw err;
    }
  }

  /**
   * The payload of a running attempt, rebuilt after a restart exactly as it was
   * dispatched (same attempt id), so the dispatcher can adopt it and re-enqueue
   * it if Redis lost it.
   */
  async payloadFor(rec: TaskRecord): Promise<AttemptPayload | undefined> {
    const job = this.jobs.get(rec.jobId) ?? (await this.o.store.get(rec.jobId));
    const last = rec.attempts[rec.attempts.length - 1];
    if (!job || !last) return undefined;
    const split = job.spec.stages[rec.stage]?.tasks ? undefined : (await this.o.store.getSplits(job.id, rec.stage, rec.index, rec.index + 1))[0];
    return this.buildPayload(job, rec.stage, rec.index, last.attempt, split, { id: last.executorId, host: last.host }, rec.generation ?? 0);
  }

  /**
   * Whether an executor runs an attempt without an output under the tenant the payload names
   * (contract 2.2). An older one takes the tenant from the output's path alone: an attempt of a
   * stage of `outputs: none` sent to it without one would run as its default user, shared by
   * every tenant. Such an attempt gets its output directory as before (and commits it, empty).
   */
  private takesTenant(executorId: string): boolean {
    const contract = this.o.executorContract?.(executorId);
    return contract === undefined || contractAtLeast(contract, TENANT_IN_PAYLOAD_CONTRACT);
  }

  private buildPayload(job: JobRecord, stageIndex: number, index: number, attempt: number, taskSplit: StoredSplit | undefined, executor: { readonly id: string; readonly host: string }, generation: number): AttemptPayload | undefined {
    const host = executor.host;
    const stage = job.spec.stages[stageIndex];
    if (!stage) return undefined;
    const taskId = taskIdOf(job.id, stageIndex, index);
    const explicit = stage.tasks?.[index];
    // A stage of `outputs: none` has no directory (the spec refuses references to one).
    const stageOutputs: Record<string, string> = {};
    for (const s of job.spec.stages) if (s.outputs !== 'none') stageOutputs[s.name] = stageOutputDir(job.outputDir, s);
    // A split's local path depends on the host: each replica sits in its own agent's data directory.
    const split = taskSplit && taskSplit.localPaths?.[host] !== undefined
      ? { ...taskSplit, localPath: taskSplit.localPaths[host] }
      : taskSplit;
    const values = { jobId: job.id, taskIndex: index, attempt, ...(split ? { split } : {}), stageOutputs };
    const argv = substitute(explicit?.command ?? stage.task.command, values);
    // The env's values take the same placeholders as the command's ({output} and {split.path}
    // left to the executor, as in argv; an unknown name stays as written).
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(explicit?.env ?? stage.task.env)) env[k] = substitute([v], values)[0] ?? v;
    const mount = this.stageVolumes.get(`${job.id}:${stageIndex}`);
    // The last stage's tasks commit where the spec's output says (local:// or hdfs://).
    const destination = taskDestination(job.spec, stageIndex, index);
    const committed = stage.outputs !== 'none' || !this.takesTenant(executor.id);
    const payload: AttemptPayload = {
      contractVersion: CONTRACT_VERSION,
      jobId: job.id,
      taskId,
      attemptId: makeAttemptId(taskId, attempt),
      attempt,
      argv,
      env: {
        ...env,
        LOCUS_JOB_ID: job.id, LOCUS_TASK_ID: taskId, LOCUS_TASK_INDEX: String(index), LOCUS_ATTEMPT: String(attempt),
      },
      resources: { cpus: stage.task.resources.cpus, memMiB: stage.task.resources.mem, diskMiB: stage.task.resources.disk },
      timeoutMs: job.spec.timeoutMs,
      // A recompute writes beside the lost generation's directory, never onto it: on a host that
      // still holds the old output (its block server was unreachable, not its disk) the two
      // cannot collide.
      ...(destination === undefined || !committed ? {} : { destination }),
      // Without an output directory the executor stages and commits nothing (outputs: none).
      ...(committed ? { outputDir: generation > 0 ? `${taskOutputDir(job.outputDir, stage, index)}~g${generation}` : taskOutputDir(job.outputDir, stage, index) } : {}),
      // Whose uid the workload runs as when no output path names the tenant (contract 2.2).
      tenant: job.tenant,
      ...(generation > 0 ? { generation } : {}),
      ...(split ? { split: { uri: split.uri, offset: split.offset, length: split.length, ...(split.localPath ? { localPath: split.localPath } : {}) } } : {}),
      volumes: mount ? [{ hostPath: mount.volume.containerPath, containerPath: mount.path, readOnly: mount.readOnly }] : [],
      // Read-only in the task's container: the split's local replica and earlier stages' outputs.
      inputPaths: [
        ...(split?.localPath ? [split.localPath] : []),
        ...job.spec.stages.slice(0, stageIndex).map((s) => stageOutputs[s.name] ?? '').filter(Boolean),
      ],
    };
    const dp = this.o.dataPlane;
    if (dp === undefined || this.outputs === undefined) return payload;
    const sources = taskSplit === undefined || explicit !== undefined ? undefined : splitSources(taskSplit, host, dp) ?? this.outputs.outputSources(job, stageIndex, taskSplit, host);
    return withDataPlane(payload, sources, this.outputs.stageInputs(job, stageIndex));
  }

  /**
   * Put a task whose start failed back as pending, from its record. `unconfirmed` names an
   * attempt whose start went unanswered (Redis down, or the reply lost) or was recorded but never
   * dispatched: if the record shows that attempt running, it is ended LOST (not counted), which
   * makes the task pending again. Redis being down is waited out (backing off to 5 s) for as
   * long as the job runs: giving up would leave the task in Redis with nothing here to place it.
   */
  requeue(taskId: string, unconfirmed?: string): void {
    void (async () => {
      for (let delayMs = 250; ; delayMs = Math.min(delayMs * 2, 5000)) {
        try {
          await this.requeueOnce(taskId, unconfirmed);
          return;
        } catch (err) {
          const job = this.jobs.get(taskId.replace(/\.\d+\.\d+$/, ''));
          if (job === undefined || TERMINAL_JOB_STATES.has(job.state)) return;
          this.o.logger.warn({ err: String(err), taskId, retryInMs: delayMs }, 'putting a task back as pending failed; trying again');
          await new Promise((r) => setTimeout(r, delayMs).unref());
        }
      }
    })();
  }

  private async requeueOnce(taskId: string, unconfirmed: string | undefined): Promise<void> {
    const rec = await this.o.store.getTask(taskId);
    const last = rec?.attempts[rec.attempts.length - 1];
    if (unconfirmed !== undefined && rec?.state === 'RUNNING' && last?.attemptId === unconfirmed && last.state === 'RUNNING') {
      await this.abandonAttempt(taskId, unconfirmed, 'START_UNCONFIRMED');
      return;
    }
    if (rec && rec.state !== 'PENDING') return;
    const job = this.jobs.get(parseTaskId(taskId)?.jobId ?? '');
    if (!job || job.state !== 'RUNNING') return;
    await this.pendAgain(job, taskId, rec);
  }

  /**
   * Make a task pending here again from its record (none: never attempted), unless another path
   * did meanwhile: added from a record read before a recompute or a release of parked tasks made
   * it pending (or even started it), it would be offered twice, its next attempt numbered as the
   * running one.
   */
  private async pendAgain(job: JobRecord, taskId: string, rec: TaskRecord | undefined): Promise<void> {
    const id = parseTaskId(taskId);
    if (!id) return;
    const split = job.spec.stages[id.stage]?.tasks ? undefined : (await this.o.store.getSplits(job.id, id.stage, id.index, id.index + 1))[0];
    if (this.pending.has(taskId) || this.running.has(taskId)) return;
    this.addPending(job, id.stage, id.index, split, rec);
    this.emit('work');
  }

  /** The dispatcher could not enqueue: put the task back as pending, not counted. */
  async abandonAttempt(taskId: string, attemptId: string, reason: string): Promise<void> {
    await this.finishAttempt({
      attemptId, taskId, state: 'LOST', exitCode: null, reason, message: reason,
      startedAt: this.o.clock.now(), finishedAt: this.o.clock.now(), host: '',
    });
  }

  /** Apply an attempt's result. Stale or replayed results change nothing. */
  async finishAttempt(result: AttemptResult): Promise<TaskState | 'STALE'> {
    const job = this.jobs.get(result.taskId.replace(/\.\d+\.\d+$/, ''));
    if (!job) return 'STALE';
    const cls = this.failures.cap(result, job.state === 'CANCELLED' ? 'cancelled' : result.state === 'SUCCEEDED' ? 'counted' : classifyFailure(result));
    const blameHost = hostAtFault(result);
    const outcome = await this.o.store.finishAttempt(
      result.taskId, result.attemptId,
      {
        state: result.state, finishedAt: result.finishedAt, reason: result.reason, message: result.message,
        exitCode: result.exitCode, ...(result.sandboxDir ? { sandboxDir: result.sandboxDir } : {}), host: result.host,
      },
      cls, job.spec.retries, result.outputPath, blameHost,
    );
    if (outcome === 'STALE') return outcome;
    const was = this.running.get(result.taskId);
    this.running.delete(result.taskId);
    // A full disk is not the task's fault, but it is the host's: the job moves off it as it does
    // off a host that fails its tasks.
    if (blameHost && (cls === 'counted' || result.reason === HOST_DISK_FULL) && result.state !== 'SUCCEEDED' && result.host) this.noteHostFailure(job.id, result.host);
    this.failures.noteUnreachable(result);
    await this.lost.attemptEnded(job.id, result, outcome, was?.attemptId === result.attemptId ? was.startSeq : 0);
    // A success says where it ran: a watcher that missed the RUNNING event still counts it at
    // the level the store's counters do, not as 'any'.
    this.emitTask(job, result.taskId, outcome, {
      message: `${result.state}: ${result.message}`, host: result.host,
      ...(outcome === 'SUCCEEDED' && was?.attemptId === result.attemptId ? { locality: was.locality } : {}),
    });
    if (outcome === 'PENDING') {
      // After an input the host could not reach, the task is offered again after a pause (FailureTally.retryPauseMs).
      const delayMs = this.failures.retryPauseMs(result, cls);
      if (delayMs > 0) {
        this.o.logger.info({ taskId: result.taskId, retryInMs: delayMs, message: result.message }, 'input unreachable from the host; retrying after a pause');
        setTimeout(() => void this.repend(job.id, result.taskId).catch((err: unknown) => {
          this.o.logger.warn({ err: String(err), taskId: result.taskId }, 'putting a task back after an unreachable input failed; it is recovered with its job');
        }), delayMs).unref();
      } else {
        await this.repend(job.id, result.taskId);
      }
    }
    await this.checkProgressShared(job.id);
    return outcome;
  }

  /**
   * A progress check of a job that begins after this call, shared by every caller arriving while
   * it is queued: the results of a batch arrive together, and one check (a read of the job's
   * counters, a stage start, the job's end) after all of them recorded does what one per result
   * did. A caller never joins the check already running (it may have read the counters before
   * this caller's result was recorded), only the one queued behind it, so each still returns
   * after a check that saw its result; at most two are outstanding per job.
   */
  private checkProgressShared(jobId: string): Promise<void> {
    return this.progressChecks.run(jobId, (id) => this.checkProgress(id));
  }

  /** Make a task that the store left PENDING pending here again, unless its job stopped running meanwhile. */
  private async repend(jobId: string, taskId: string): Promise<void> {
    const job = this.jobs.get(jobId);
    if (!job) return;
    const rec = await this.o.store.getTask(taskId);
    // A cancel may have landed while this result was recorded: a cancelled job takes no retries.
    const current = await this.refresh(job.id);
    if (!rec || rec.state !== 'PENDING' || current.state !== 'RUNNING') return;
    await this.pendAgain(job, taskId, rec);
  }

  /**
   * Hosts holding committed outputs that a running job's later stages still read (kept on the
   * host, not under the shared output root): executor placement keeps an executor there, because
   * its block server is what serves them.
   */
  outputHosts(): Set<string> {
    return this.lost.outputHosts();
  }

  /**
   * A host is lost (Mesos says its agent is gone or unreachable, or no executor — hence no block
   * server — is left on it): the committed outputs it held that running jobs still need are
   * recomputed (LostOutputs). Returns how many tasks were reopened.
   */
  async hostLost(host: string, reason: string): Promise<number> {
    return await this.lost.hostLost(host, reason);
  }

  /** Cancel a job: pending tasks dropped, running attempts reported for killing. */
  async cancel(jobId: string, tenant?: string): Promise<{ job: JobRecord; kill: { taskId: string; executorId: string; attemptId: string }[] }> {
    const job = await this.get(jobId, tenant);
    if (TERMINAL_JOB_STATES.has(job.state)) return { job, kill: [] };
    const cancelled = await this.o.store.setState(jobId, 'CANCELLED', ['PENDING', 'RESOLVING', 'RUNNING'], this.o.clock.now(), 'cancelled by user');
    this.dropPending(jobId);
    const kill = [...this.running.entries()]
      .filter(([taskId]) => taskId.startsWith(`${jobId}.`))
      .map(([taskId, r]) => ({ taskId, executorId: r.executorId, attemptId: r.attemptId }));
    const after = await this.refresh(jobId);
    // Not written: the job ended another way just before (failed, succeeded), and says so.
    if (cancelled) this.emitJob(after, 'CANCELLED', 'cancelled by user');
    return { job: after, kill };
  }

  /**
   * Delete a finished job for good: its record, tasks and splits, then its tasks' commit
   * records (kept until now because recovery and later stages read them). The outputs
   * themselves stay where they were committed. CONFLICT while the job is not finished.
   */
  async purge(jobId: string, tenant?: string): Promise<{ jobId: string; commitRecords: number }> {
    const job = await this.get(jobId, tenant);
    // A cancelled job's attempts are killed after it ended: until each result is in, its slot is
    // held. Purged before, the results were stale (no job) and the slots stayed held for good.
    // (A job still running is refused by the store, with its own reason.)
    const live = TERMINAL_JOB_STATES.has(job.state) ? this.running.countOf('job', jobId) : 0;
    if (live > 0) throw new LocusError('CONFLICT', `job ${jobId} still has ${live} attempt(s) being stopped; purge it once they have ended (seconds)`);
    const commitRecords = await this.o.store.purge(jobId);
    this.outputs?.forget(jobId);
    // Its cached record goes too (job-retention purges jobs for as long as the scheduler runs): a
    // late result of a job not known here is stale (finishAttempt).
    this.jobs.delete(jobId);
    for (const key of [...this.stageVolumes.keys()]) if (key.startsWith(`${jobId}:`)) this.stageVolumes.delete(key);
    return { jobId, commitRecords };
  }

  /**
   * Purge the jobs of one page (JobStore.finishedBefore) that finished at or before `cutoff`
   * (ms) with nothing running: the framework's `job-retention` (retention.ts). Returns the ids
   * purged and how many jobs the page read. A job that cannot be purged now is skipped (logged),
   * never the ones after it.
   */
  async purgeFinishedBefore(cutoff: number, offset: number, count: number): Promise<{ purged: string[]; scanned: number }> {
    const page = await this.o.store.finishedBefore(cutoff, offset, count);
    const purged: string[] = [];
    for (const id of page.ids) {
      try {
        await this.purge(id);
        purged.push(id);
      } catch (err) {
        // Purged meanwhile by hand, or reopened: nothing to say.
        if (err instanceof LocusError && (err.code === 'NOT_FOUND' || err.code === 'CONFLICT')) continue;
        this.o.logger.warn({ jobId: id, err: (err as Error).message }, 'purging a job past its retention failed; the next sweep tries again');
      }
    }
    return { purged, scanned: page.scanned };
  }

  /** A job visible to the tenant (all jobs when tenant is undefined = admin). */
  async get(jobId: string, tenant?: string): Promise<JobRecord> {
    const job = await this.o.store.get(jobId);
    // Another tenant's job answers 404, so its existence is not revealed.
    if (!job || (tenant !== undefined && job.tenant !== tenant)) throw new LocusError('NOT_FOUND', `job ${jobId} not found`);
    return job;
  }

  /** Jobs visible to the tenant. */
  async list(tenant?: string): Promise<JobRecord[]> {
    return await this.o.store.list(tenant);
  }

  /** Attempted tasks of a job plus a count of the never-attempted ones. */
  async tasks(jobId: string, tenant?: string): Promise<TaskRecord[]> {
    await this.get(jobId, tenant);
    return await this.o.store.tasks(jobId);
  }

  /** A task's stored record, if it was ever attempted (no tenant check: internal and tests). */
  async getTaskRecord(taskId: string): Promise<TaskRecord | undefined> {
    return await this.o.store.getTask(taskId);
  }

  /** A task record (attempted or pending), checked against the tenant. */
  async task(taskId: string, tenant?: string): Promise<{ record?: TaskRecord; pending?: PendingTask; job: JobRecord }> {
    const jobId = taskId.replace(/\.\d+\.\d+$/, '');
    const job = await this.get(jobId, tenant);
    const record = await this.o.store.getTask(taskId);
    const pending = this.pending.get(taskId);
    if (!record && !pending) throw new LocusError('NOT_FOUND', `task ${taskId} not found`);
    return { job, ...(record ? { record } : {}), ...(pending ? { pending } : {}) };
  }

  /** Hosts avoided for every task of a job: where its tasks failed (counted) at least twice. */
  private noteHostFailure(jobId: string, host: string): void {
    if (this.failures.countHost(jobId, host) !== HOST_FAILURES_TO_AVOID) return;
    // The host just crossed the line: tasks of this job already pending avoid it too.
    this.o.logger.info({ jobId, host }, 'host failed this job repeatedly; avoiding it for the rest of the job');
    for (const t of this.pending.values()) {
      if (t.jobId !== jobId || t.avoidHosts.includes(host)) continue;
      const updated = { ...t, avoidHosts: [...t.avoidHosts, host] };
      this.pending.set(t.taskId, updated);
      const entry = this.index.get(t.taskId);
      if (entry) this.index.update({ ...entry, avoidHosts: updated.avoidHosts });
    }
  }

  /**
   * The locality policy of a job's tasks, resolved once per spec object so all its
   * tasks share it. Undefined (the spec says nothing) leaves placement's default —
   * the framework's — in charge.
   */
  private localityOf(spec: JobSpec): LocalityPolicy | undefined {
    if (spec.locality === undefined) return undefined;
    let resolved = this.resolvedLocality.get(spec);
    if (resolved === undefined) {
      resolved = effectiveLocality(spec.locality, this.o.defaultLocality ?? FRAMEWORK_LOCALITY_DEFAULT);
      if (resolved !== undefined) this.resolvedLocality.set(spec, resolved);
    }
    return resolved;
  }

  private dropPending(jobId: string): void {
    // A stage of the job waiting for its inputs' storage waits no more (the job failed or was
    // cancelled), and a listing of its inputs in flight is of no more use.
    for (const key of [...this.inputWaits.keys()]) if (key.startsWith(`${jobId}:`)) this.stopWaiting(key);
    for (const [key, l] of this.listings) if (key.startsWith(`${jobId}:`)) l.abort();
    for (const [id, t] of this.pending) if (t.jobId === jobId) this.pending.delete(id);
    this.index.removeJob(jobId);
    this.lost.dropJob(jobId);
  }

  private addPending(job: JobRecord, stage: number, index: number, split: StoredSplit | undefined, rec?: TaskRecord): void {
    const taskId = taskIdOf(job.id, stage, index);
    const stageSpec = job.spec.stages[stage];
    if (!stageSpec) return;
    // An earlier stage's lost outputs are being recomputed: this task would read them, so it
    // waits (not failing, not spending attempts) until they are committed again.
    if (this.lost.parkIfWaiting(job, taskId, stage, index, split, rec)) return;
    const now = this.o.clock.now();
    // A recompute stays off the hosts whose outputs were lost (one merely unreachable may still answer offers).
    const lost = this.lost.lostFor(job.id, taskId);
    const avoidHosts = [...new Set([...(rec?.failedHosts ?? []), ...this.failures.avoided(job.id), ...lost])];
    this.pending.set(taskId, {
      taskId, jobId: job.id, tenant: job.tenant, stage, index, priority: job.spec.priority, spec: job.spec, split,
      avoidHosts, pendingSince: now, attempts: rec?.attempts.length ?? 0, generation: rec?.generation ?? 0,
    });
    // Objects shared by all tasks of a stage (resources, constraints, locality) are passed by
    // reference: the index keeps them, and sharing keeps a million pending tasks small.
    const locality = this.localityOf(job.spec);
    // `locality: off` places blindly: placement is told of no data hosts at all.
    const blind = job.spec.locality?.mode === 'off';
    this.index.add({
      taskId, jobId: job.id, tenant: job.tenant, priority: job.spec.priority,
      resources: stageSpec.task.resources,
      // A task with no split of its own (an explicit reduce) goes near the largest share of the
      // earlier stages' committed outputs.
      preferredHosts: blind ? [] : split?.hosts ?? this.outputs?.preferredHosts(job.id, stage).hosts ?? [],
      preferredRacks: blind ? [] : split?.racks ?? [],
      inputBytes: split?.length ?? this.outputs?.preferredHosts(job.id, stage).bytes ?? 0,
      constraints: job.spec.constraints,
      ...(locality === undefined ? {} : { locality }),
      ...(avoidHosts.length > 0 ? { avoidHosts } : {}),
      ...(this.failures.awaitsData(taskId) ? { awaitDataHosts: true } : {}),
      ...(this.stageVolumes.has(`${job.id}:${stage}`) ? { volumeId: this.stageVolumes.get(`${job.id}:${stage}`)?.volume.id } : {}),
      pendingSince: now,
    });
  }

  /**
   * List a stage's inputs into splits and open the stage (its tasks pending). A listing that
   * fails because the storage of an input is away is tried again later (waitForInputs): the
   * stage stays unopened, and starting, until it opens or its job ends. `retry`: a later try
   * of a stage already starting here.
   */
  private async startStage(job: JobRecord, stage: number, retry = false): Promise<void> {
    const log = this.o.logger.child({ jobId: job.id, stage });
    const spec = job.spec.stages[stage];
    const key = `${job.id}:${stage}`;
    if (!spec || (!retry && this.startingStages.has(key))) return;
    this.startingStages.add(key);
    const listing = new AbortController();
    this.listings.set(key, listing);
    let reservedHere = 0;
    let waiting = false;
    try {
      // RESOLVING says inputs are being listed, which can take a while; a stage of explicit tasks
      // has none, and its job goes from PENDING to RUNNING in one write (each round trip before a
      // new job's first task is placed is one more wait behind the results of other jobs).
      if (stage === 0 && !spec.tasks && !retry) await this.o.store.setState(job.id, 'RESOLVING', ['PENDING'], this.o.clock.now());
      await this.resolveStageVolume(job, stage);
      // Where the earlier stages' outputs were committed: what this stage reads, and where it should run.
      if (stage > 0) await this.outputs?.loadBefore(await this.refresh(job.id), stage, await this.o.store.generations(job.id));
      let splits: StoredSplit[] = [];
      if (spec.tasks) {
        splits = spec.tasks.map(() => ({ uri: '', offset: 0, length: 0, hosts: [], racks: [] }));
      } else {
        for (const input of spec.inputs) {
          // Earlier outputs kept on the hosts that wrote them: one split per file, from the commit records.
          const recorded = input.startsWith('stage:') ? this.outputs?.stageSplits(await this.refresh(job.id), input.slice(6)) : undefined;
          if (recorded !== undefined) {
            splits.push(...recorded);
            continue;
          }
          const uri = input.startsWith('stage:')
            ? `file://${stageOutputDir(job.outputDir, job.spec.stages.find((s) => s.name === input.slice(6)) ?? spec)}/`
            : input;
          const files = await this.o.resolver.resolve(uri, { split: spec.split, signal: listing.signal }).catch((err: unknown) => {
            // The storage away (unreachable, timed out, 5xx): waited out. Its "no": the job fails.
            throw isTransientStorageError(err) ? new InputOutage(input, err) : err;
          });
          for (const f of files) {
            for (const s of f.splits) {
              splits.push({
                uri: f.uri, offset: s.offset, length: s.length, hosts: s.hosts, racks: s.racks,
                ...(f.localPath ? { localPath: f.localPath } : {}), ...(s.localPaths ? { localPaths: s.localPaths } : {}),
              });
            }
          }
        }
        // The job ended or this service closed while its inputs were listed (a resolver that does
        // not heed the signal answers anyway): nothing of this answer is to be written.
        if (listing.signal.aborted) return;
        if (splits.length === 0) throw new LocusError('NOT_FOUND', `inputs of stage '${spec.name}' name no files: ${spec.inputs.join(', ')}`);
      }
      if (splits.length > this.o.limits.maxTasksPerJob) {
        throw new LocusError('QUOTA_EXCEEDED', `stage '${spec.name}' would have ${splits.length} tasks (limit ${this.o.limits.maxTasksPerJob})`);
      }
      // Checked again here, not only at submission: many jobs submitted at once all pass the
      // submission check before any of them has resolved its inputs into pending tasks.
      // Stages being written count too (synchronously reserved, released once they are pending).
      const pendingNow = this.pending.countOf('tenant', job.tenant) + (this.reserved.get(job.tenant) ?? 0);
      if (stage === 0 && pendingNow + splits.length > this.o.limits.maxPendingTasksPerTenant) {
        throw new LocusError('QUOTA_EXCEEDED', `tenant '${job.tenant}' would have ${pendingNow + splits.length} pending tasks (limit ${this.o.limits.maxPendingTasksPerTenant})`);
      }
      this.reserved.set(job.tenant, (this.reserved.get(job.tenant) ?? 0) + splits.length);
      reservedHere = splits.length;
      const openedAt = this.o.clock.now();
      const opened = await this.o.store.openStage(job.id, stage, splits, openedAt);
      // Not opened: another start of this stage (a recovery racing a progress check) got there
      // first, or the job ended meanwhile (cancelled while its inputs were resolved).
      if (!opened.opened) return;
      // The script's answer on the cached record: what a read of the job would give now.
      // OPEN_STAGE cleared the message a wait for the inputs' storage left (a running job has no other).
      const { message: _cleared, ...cached } = this.jobs.get(job.id) ?? job;
      const fresh: JobRecord = { ...cached, state: opened.state, stage, stages: opened.stages, counts: opened.counts, updatedAt: openedAt };
      this.jobs.set(job.id, fresh);
      splits.forEach((s, i) => this.addPending(fresh, stage, i, spec.tasks ? undefined : s));
      const waited = this.inputWaits.get(key)?.wait;
      log.info({ tasks: splits.length, ...(waited === undefined ? {} : { failedTries: waited.tries }) }, waited === undefined ? 'stage resolved' : 'stage resolved after its inputs\' storage came back');
      this.emitJob(fresh, 'RUNNING', `stage ${spec.name}: ${splits.length} tasks`);
      this.emit('work');
    } catch (err) {
      // Aborted: the job ended (its listing's failure, or its aborted listing, says nothing of it).
      if (listing.signal.aborted) return;
      // Nothing below may reject: startStage runs unawaited (submission, recovery, a retry's
      // timer), and an unhandled rejection ends the scheduler's process.
      try {
        let message = `resolving inputs failed: ${err instanceof Error ? err.message : String(err)}`;
        if (err instanceof InputOutage) {
          const next = await this.waitForInputs(job, stage, spec.name, err);
          if (next === 'waiting' || next === 'ended') {
            waiting = next === 'waiting';
            return;
          }
          message = next.giveUp;
        }
        log.warn({ err: message }, 'stage resolution failed');
        // Announced only when written: a job cancelled meanwhile stays CANCELLED in the store, and
        // its watchers and locus_jobs_total must not hear it FAILED.
        if (await this.o.store.setState(job.id, 'FAILED', ['PENDING', 'RESOLVING', 'RUNNING'], this.o.clock.now(), message)) {
          const failed = await this.refresh(job.id);
          this.emitJob(failed, 'FAILED', failed.message);
        }
      } catch (writeErr) {
        // The job was purged meanwhile (NOT_FOUND), or this scheduler's writes are refused (it was
        // fenced, or Redis is away): the job is no longer this one's to end; a leader that lists
        // the stage again decides.
        log.warn({ err: writeErr instanceof Error ? writeErr.message : String(writeErr) }, 'recording the end of a stage\'s resolution failed');
      }
    } finally {
      if (this.listings.get(key) === listing) this.listings.delete(key);
      if (!waiting) this.stopWaiting(key);
      if (reservedHere > 0) this.reserved.set(job.tenant, (this.reserved.get(job.tenant) ?? reservedHere) - reservedHere);
    }
  }

  /**
   * A stage's listing failed because the storage of an input is away: note the wait (the job's
   * message says what it waits for, and until when), and try again after a pause that doubles up
   * to 30 s (input-waits.ts). 'ended': the job ended meanwhile (cancelled, purged), nothing to
   * wait for; `giveUp`: past the deadline, the job fails with that message. Other jobs are not
   * held: each stage waits on its own timer.
   */
  private async waitForInputs(job: JobRecord, stage: number, stageName: string, outage: InputOutage): Promise<'waiting' | 'ended' | { giveUp: string }> {
    const key = `${job.id}:${stage}`;
    const now = this.o.clock.now();
    const after = afterFailedTry(this.inputWaits.get(key)?.wait, { jobId: job.id, stage, stageName, input: outage.input, error: outage.message, now }, {
      giveUpMs: this.o.inputStorageGiveUpMs ?? DEFAULT_INPUT_STORAGE_GIVE_UP_MS,
      baseMs: this.o.inputListingRetryMs ?? INPUT_LISTING_RETRY_BASE_MS,
      maxMs: INPUT_LISTING_RETRY_MAX_MS,
    });
    if ('giveUp' in after) return after;
    const { wait } = after;
    const current = await this.refresh(job.id).catch(() => undefined);
    if (this.closed || current === undefined || TERMINAL_JOB_STATES.has(current.state)) return 'ended';
    const message = waitMessage(wait);
    // The message is what `locus job`, the job's HTTP and gRPC views and a standby show; the
    // state is left as it is (RESOLVING for the first stage, RUNNING for a later one). A Redis
    // that cannot take it now does not stop the wait: the next try writes it again.
    const written = await this.o.store.setState(job.id, current.state, [current.state], now, message).catch((err: unknown) => {
      this.o.logger.warn({ jobId: job.id, err: String(err) }, 'noting that a stage waits for its inputs failed');
      return true;
    });
    if (!written) return 'ended';
    const log = this.o.logger.child({ jobId: job.id, stage });
    if (wait.tries === 1) {
      log.warn({ input: wait.input, err: wait.lastError, retryInMs: wait.nextTryAt - now }, 'the storage of a stage input is unreachable; the stage waits for it');
      this.emitJob(current, current.state, message);
    } else {
      log.info({ input: wait.input, err: wait.lastError, tries: wait.tries, retryInMs: wait.nextTryAt - now }, 'the storage of a stage input is still unreachable');
    }
    const timer = this.o.clock.setTimer(Math.max(0, wait.nextTryAt - now), () => {
      // retryStage handles its own failures; this is the last guard, since nothing awaits a
      // timer's promise and an unhandled rejection ends the scheduler's process (Node ≥ 15).
      this.retryStage(job.id, stage).catch((err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err) }, 'the next try of a stage waiting for its inputs failed'));
    });
    this.inputWaits.set(key, { wait, timer });
    this.emit('inputRetry', { wait, scheme: /^([a-z][a-z0-9+.-]*):/i.exec(wait.input)?.[1]?.toLowerCase() ?? 'stage' });
    return 'waiting';
  }

  /** The next try of a stage waiting for its inputs' storage, unless its job ended meanwhile. */
  private async retryStage(jobId: string, stage: number): Promise<void> {
    const key = `${jobId}:${stage}`;
    const entry = this.inputWaits.get(key);
    if (entry === undefined || this.closed) return;
    entry.timer = undefined;
    const job = await this.refresh(jobId).catch(() => undefined);
    if (job === undefined || TERMINAL_JOB_STATES.has(job.state)) {
      this.stopWaiting(key);
      return;
    }
    await this.startStage(job, stage, true);
  }

  /** A stage no longer waits for its inputs (opened, failed, its job ended): forget it and its timer. */
  private stopWaiting(key: string): void {
    this.inputWaits.get(key)?.timer?.cancel();
    this.inputWaits.delete(key);
    this.startingStages.delete(key);
  }

  /**
   * The wait of the stage a task id names, when that stage waits for the storage of its inputs
   * (its tasks are not known until its inputs are listed). The job is checked against the tenant.
   */
  async stageInputWait(taskId: string, tenant?: string): Promise<InputWait | undefined> {
    const id = parseTaskId(taskId);
    const wait = id === undefined ? undefined : this.inputWaits.get(`${id.jobId}:${id.stage}`)?.wait;
    if (id === undefined || wait === undefined) return undefined;
    await this.get(id.jobId, tenant);
    return wait;
  }

  /** Stages waiting for the storage of their inputs now. */
  inputWaitsNow(): InputWait[] {
    return [...this.inputWaits.values()].map((e) => e.wait);
  }

  /**
   * Stop the timers of stages waiting for their inputs and abort the listings in flight (the
   * framework stops or lost the lead; a restart, or the new leader, lists them again). The waits
   * are forgotten too: `explain` on a stopped or fenced instance must not promise a next try.
   */
  close(): void {
    this.closed = true;
    for (const e of this.inputWaits.values()) e.timer?.cancel();
    this.inputWaits.clear();
    for (const l of this.listings.values()) l.abort();
  }

  /**
   * Fail, finish or advance a running job by its counters. `awaitNextStage` false: a next stage
   * it starts is not awaited (recovery: its listing may wait for a storage away). Either way
   * the stage is started once: startStage marks it starting before its first await.
   */
  private async checkProgress(jobId: string, awaitNextStage = true): Promise<void> {
    const job = await this.refresh(jobId);
    if (TERMINAL_JOB_STATES.has(job.state) || job.state !== 'RUNNING') return;
    const { counts } = job;
    if (counts.failed > 0 && counts.running === 0) {
      this.dropPending(jobId);
      // Announced only when written (a cancel may have landed first).
      if (await this.o.store.setState(jobId, 'FAILED', ['RUNNING'], this.o.clock.now(), `${counts.failed} task(s) failed`)) {
        this.emitJob(await this.refresh(jobId), 'FAILED', `${counts.failed} task(s) failed`);
      }
      return;
    }
    if (counts.failed > 0) {
      // Stop starting new work for a failing job; running attempts finish first.
      this.dropPending(jobId);
      return;
    }
    const stageRec = job.stages[job.stage];
    if (!stageRec || stageRec.taskCount < 0 || counts.succeeded < counts.total) return;
    const next = job.stage + 1;
    if (next < job.spec.stages.length) {
      if (awaitNextStage) await this.startStage(job, next);
      else void this.startStage(job, next);
      return;
    }
    // A local:// output is listed in its dataset before the job says SUCCEEDED, so a job
    // submitted after that reads it.
    const unpublished = await publishFinalOutputs(job, this.o.dataPlane && { commits: (ids) => this.o.dataPlane?.commits(ids) ?? Promise.resolve([]), ...(this.o.localDatasets ? { listLocal: this.o.localDatasets } : {}) })
      .then(() => undefined, (err: unknown) => (err instanceof Error ? err.message : String(err)));
    if (unpublished !== undefined) {
      const message = `the outputs were committed but could not be listed at ${job.spec.output ?? ''}: ${unpublished}`;
      if (await this.o.store.setState(jobId, 'FAILED', ['RUNNING'], this.o.clock.now(), message)) this.emitJob(await this.refresh(jobId), 'FAILED', message);
      return;
    }
    if (await this.o.store.setState(jobId, 'SUCCEEDED', ['RUNNING'], this.o.clock.now())) {
      this.emitJob(await this.refresh(jobId), 'SUCCEEDED');
    }
  }

  private async refresh(jobId: string): Promise<JobRecord> {
    // The static part (spec, tenant, output dir) never changes: keep it cached and
    // re-read only state and counters, so a result costs the same for any job size.
    const cached = this.jobs.get(jobId);
    const dynamic = cached ? await this.o.store.getDynamic(jobId) : undefined;
    const job = cached && dynamic
      ? { ...cached, ...dynamic, ...(dynamic.finishedAt === undefined ? {} : { finishedAt: dynamic.finishedAt }) }
      : await this.o.store.get(jobId);
    if (!job) throw new LocusError('NOT_FOUND', `job ${jobId} not found`);
    // Terminal jobs stay cached too: late results for them must still be recognised as stale.
    this.jobs.set(jobId, job);
    return job;
  }


  private emitJob(job: JobRecord, state: string, message?: string): void {
    // An ended job's failure tallies are of no further use (a long-lived framework runs many).
    if (TERMINAL_JOB_STATES.has(state as JobRecord['state'])) this.failures.forgetJob(job.id);
    this.emit('event', { kind: 'job', jobId: job.id, at: this.o.clock.now(), state, counts: job.counts, ...(message ? { message } : {}) });
  }

  private emitTask(job: JobRecord, taskId: string, state: string, extra: { host?: string; locality?: LocalityLevel; message?: string }): void {
    this.emit('event', { kind: 'task', jobId: job.id, taskId, at: this.o.clock.now(), state, ...extra });
  }
}
