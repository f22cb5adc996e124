/**
 * The scheduler's side of the executor queues: put attempts on the chosen
 * executor's BullMQ queue and turn what happens to them into events for the
 * coordinator (running, result, stalled, executor lost). It knows nothing of
 * Mesos; the coordinator wires it to placement and task state.
 *
 * How results arrive: every executor queue has BullMQ's event stream
 * (`<prefix>:<queue>:events`, the stream QueueEvents reads). One connection
 * reads all of them with a single multi-key XREAD, remembering the last id
 * per stream, so a reconnect resumes without a gap. A reconcile pass reads
 * the job hashes of attempts that have been in flight for a while: it picks
 * up results whose events were lost or trimmed, and re-enqueues jobs that
 * Redis lost (a kill -9 with `appendfsync everysec` can drop the last
 * second of writes). Re-enqueueing is safe because the job id is the
 * attempt id and output commit is exactly-once on the executor; an attempt
 * of a stage of `outputs: none` has no commit to find, so its command runs
 * again (docs/job-spec.md: such commands must be idempotent).
 *
 * Batches: attempts placed on an executor together go out in queue jobs of up
 * to `maxBatch` attempts (AttemptBatch), whatever their jobs, when the
 * executor registered that it takes them, so the queue's add, take and finish
 * scripts run once per batch instead of once per attempt. Everything else
 * stays per attempt: the executor runs each member as a job of its own and
 * reports each member's result as it ends (BATCH_MEMBER_EVENT; the batch's
 * result carries them all again), and each is settled, killed or reported lost
 * on its own. The attempt -> batch index in Redis
 * (executorBatchIndexKey) lets a scheduler that took over find the batch that
 * holds an adopted attempt; a batch Redis lost goes out again under the same
 * job id with the same members, so an executor still running it shares the
 * run instead of starting a second one.
 *
 * Executor liveness: the dispatcher polls each executor's heartbeat counter
 * and measures, on its own Clock, how long it has not moved. Past the
 * timeout (or when the executor marks itself exited) its in-flight attempts
 * are reported LOST, which does not count against retries.
 */
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Clock, TimerHandle } from '../core/clock.js';
import { LocusError } from '../core/errors.js';
import type { Logger } from '../obs/log.js';
import {
  CANCELLED_REASON,
  CONTRACT_VERSION,
  EXECUTOR_FIELDS as F,
  KILL_REQUEST_TTL_SECONDS,
  QUEUE_PREFIX,
  SCHEDULER_INFO_KEY,
  contractCompatible,
  BATCH_MEMBER_EVENT,
  batchJobId,
  decodeAttemptBatchResult,
  decodeAttemptProgress,
  decodeAttemptResult,
  executorBatchIndexKey,
  executorKey,
  executorKillKey,
  executorQueueKey,
  executorQueueName,
  isBatchData,
  type AttemptBatch,
  type AttemptPayload,
  type AttemptProgress,
  type AttemptResult,
} from '../executor/contract.js';
import { readRegistration, requestExecutorStop, type ExecutorRegistration } from './executor-registry.js';
import { FinishedJobs } from './finished-jobs.js';

/** What the dispatcher tells the coordinator. */
export type DispatchEvent =
  | { readonly type: 'running'; readonly executorId: string; readonly taskId: string; readonly progress: AttemptProgress }
  /** A later progress report of a running attempt (carries its sandbox directory). */
  | { readonly type: 'progress'; readonly executorId: string; readonly taskId: string; readonly progress: AttemptProgress }
  /** `stale`: the attempt is not the task's current one (or was already settled): ignore it for task state. */
  | { readonly type: 'result'; readonly executorId: string; readonly result: AttemptResult; readonly stale: boolean }
  | { readonly type: 'stalled'; readonly executorId: string; readonly attemptId: string }
  | { readonly type: 'executor-lost'; readonly executorId: string; readonly reason: 'HEARTBEAT_TIMEOUT' | 'EXITED' | 'UNREGISTERED'; readonly attempts: readonly string[] };

/** Options of the dispatcher. */
export interface DispatcherOptions {
  /** A new Redis connection with the scheduler's rights (used for a few long-lived connections). */
  readonly connect: () => Redis;
  readonly clock: Clock;
  readonly logger: Logger;
  /** An executor whose heartbeat does not move this long is lost (default 10 s). */
  readonly heartbeatTimeoutMs?: number;
  /** How often heartbeats are polled (default 1 s). */
  readonly watchIntervalMs?: number;
  /** How often in-flight attempts are reconciled against their job hashes (default 5 s). */
  readonly reconcileIntervalMs?: number;
  /** XREAD block time: the longest a newly watched executor waits to join the read (default 500 ms). */
  readonly blockMs?: number;
  /** How long finished jobs stay in Redis (dedupes re-dispatches; default 24 h). */
  readonly keepFinishedSeconds?: number;
  /** Most attempts in one queue job (default 16; 1 sends every attempt as a job of its own). */
  readonly maxBatch?: number;
  /**
   * The scheduler's fenced connection (fence.ts). With it, a finished queue job is removed as
   * soon as every attempt in it was recorded (acknowledge), through that connection, so that a
   * scheduler that no longer leads removes nothing; without it, finished jobs stay for
   * keepFinishedSeconds.
   */
  readonly fenced?: Redis;
  /**
   * How long a finished queue job whose attempts were all recorded stays before its removal
   * (default 0: at the next removal, finished-jobs.ts). bench:dispatch reads a round's queue
   * jobs after the round.
   */
  readonly keepRecordedMs?: number;
}

interface InFlight {
  readonly payload: AttemptPayload;
  readonly executorId: string;
  readonly dispatchedAt: number;
  running: boolean;
  /**
   * The queue job holding it: its own id, or its batch's. Undefined for an attempt adopted from
   * an earlier scheduler until the next reconcile has looked it up in the batch index.
   */
  jobId: string | undefined;
}

/** A batch this process queued: its executor and the members not settled yet. */
interface Batch {
  readonly executorId: string;
  readonly members: Set<string>;
}

interface Watched {
  readonly executorId: string;
  readonly queue: Queue;
  readonly stream: string;
  lastId: string;
  hostname: string;
  heartbeat: number;
  lastChangeAt: number;
  readonly attempts: Set<string>;
  /** Whether the executor registered that it takes batch jobs. */
  readonly batches: boolean;
  /** Attempts it takes beyond its slots (its registration's prefetch). */
  readonly prefetch: number;
  /** The queue contract it registered with. */
  readonly contract: string;
}

type Listener = (e: DispatchEvent) => void;

/** How long a queue made for a launched executor waits to be taken over by its registration. */
const PREPARED_QUEUE_MS = 120_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Enqueues attempts on executor queues and reports what becomes of them. */
export class Dispatcher {
  private readonly producer: Redis;
  private readonly reader: Redis;
  private readonly listeners = new Set<Listener>();
  private readonly executors = new Map<string, Watched>();
  /** Queues made for executors still starting (prepareExecutor), taken over when they register. */
  private readonly prepared = new Map<string, Queue>();
  private readonly inFlight = new Map<string, InFlight>();
  private readonly currentAttempt = new Map<string, number>();
  /** Batch job id -> the batch, for the batches this process queued. */
  private readonly batches = new Map<string, Batch>();
  /** The queue jobs this process queued, removed once finished and recorded (with the fenced connection only). */
  private readonly finishedJobs: FinishedJobs | undefined;
  private readonly maxBatch: number;
  private readonly heartbeatTimeoutMs: number;
  private readonly watchIntervalMs: number;
  private readonly reconcileIntervalMs: number;
  private readonly blockMs: number;
  private readonly keepSeconds: number;
  private closed = false;
  private started = false;
  private readLoopDone: Promise<void> = Promise.resolve();
  private watchTimer: TimerHandle | undefined;
  private reconcileTimer: TimerHandle | undefined;
  private pollFailed = false;
  private closing: Promise<void> | undefined;
  /**
   * A stream only this dispatcher reads, beside the executors' event streams: an entry ends its
   * blocked read when the executors it reads change. Without it, an executor watched while the
   * read was blocked on the others (idle ones: for the whole block) had its results read only
   * when that read timed out, up to blockMs after they were there; with none watched, the loop
   * slept and looked again.
   */
  private readonly wakeKey = `locus:dispatch:wake:${randomBytes(8).toString('hex')}`;
  private wakeLastId = '0-0';
  private wakeQueued = false;

  constructor(private readonly o: DispatcherOptions) {
    this.producer = o.connect();
    this.reader = o.connect();
    this.producer.on('error', () => undefined);
    this.reader.on('error', () => undefined);
    this.heartbeatTimeoutMs = o.heartbeatTimeoutMs ?? 10_000;
    this.watchIntervalMs = o.watchIntervalMs ?? 1000;
    this.reconcileIntervalMs = o.reconcileIntervalMs ?? 5000;
    this.blockMs = o.blockMs ?? 500;
    this.keepSeconds = o.keepFinishedSeconds ?? 24 * 3600;
    this.maxBatch = Math.max(1, Math.floor(o.maxBatch ?? 16));
    this.finishedJobs = o.fenced === undefined ? undefined : new FinishedJobs(o.fenced, o.clock, o.logger, o.keepRecordedMs);
  }

  /** Subscribe to events; returns the unsubscribe function. */
  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Publish this scheduler's contract version and start reading events and heartbeats. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.producer.hset(SCHEDULER_INFO_KEY, 'contract', CONTRACT_VERSION);
    this.readLoopDone = this.readLoop();
    this.scheduleWatch();
    this.scheduleReconcile();
  }

  /** Attempts dispatched and not settled yet. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * An executor was launched: make its queue's client now, while the executor starts. A queue's
   * first use reads the server's version and loads BullMQ's scripts; made at the registration,
   * that stood between the executor's start and its first attempt (the first executor of a
   * framework's life: a few ms of a cold job's critical path).
   */
  prepareExecutor(executorId: string): void {
    if (this.closed || this.executors.has(executorId) || this.prepared.has(executorId)) return;
    const queue = new Queue(executorQueueName(executorId), { connection: this.producer, prefix: QUEUE_PREFIX });
    this.prepared.set(executorId, queue);
    // A launch that failed before the executor was recorded is never retired: its queue goes by
    // itself once no registration could still come (the runtime waits a minute for one).
    setTimeout(() => {
      if (this.prepared.get(executorId) !== queue) return;
      this.prepared.delete(executorId);
      void queue.close().catch(() => undefined);
    }, PREPARED_QUEUE_MS).unref();
  }

  /** Executors being watched. */
  watchedExecutors(): string[] {
    return [...this.executors.keys()];
  }

  /**
   * Start watching an executor: read its registration, refuse a different
   * contract major, and note where its event stream stands. Idempotent.
   */
  async watchExecutor(executorId: string): Promise<ExecutorRegistration> {
    const reg = await readRegistration(this.producer, executorId);
    if (!reg) throw new LocusError('NOT_FOUND', `executor ${executorId} has not registered`);
    if (!contractCompatible(reg.contract, CONTRACT_VERSION)) {
      throw new LocusError('WRONG_STATE', `executor ${executorId} speaks queue contract ${reg.contract}, this scheduler ${CONTRACT_VERSION}: major versions differ, refusing it (deploy matching Locus versions)`);
    }
    if (!this.executors.has(executorId)) {
      const queueName = executorQueueName(executorId);
      const stream = `${QUEUE_PREFIX}:${queueName}:events`;
      const last: unknown = await this.producer.xrevrange(stream, '+', '-', 'COUNT', 1);
      const lastId = Array.isArray(last) && Array.isArray(last[0]) && typeof last[0][0] === 'string' ? last[0][0] : '0-0';
      if (!this.executors.has(executorId)) {
        this.executors.set(executorId, {
          executorId,
          queue: this.takePrepared(executorId) ?? new Queue(queueName, { connection: this.producer, prefix: QUEUE_PREFIX }),
          stream,
          lastId,
          hostname: reg.hostname,
          heartbeat: reg.heartbeat,
          lastChangeAt: this.o.clock.now(),
          attempts: new Set(),
          batches: reg.batches,
          prefetch: reg.prefetch,
          contract: reg.contract,
        });
        this.wake();
      }
    }
    return reg;
  }

  /** The queue contract a watched executor registered with (undefined when it is not watched). */
  contractOf(executorId: string): string | undefined {
    return this.executors.get(executorId)?.contract;
  }

  /** Attempts a watched executor takes beyond its slots (0 when it is not watched or does not prefetch). */
  prefetchOf(executorId: string): number {
    return this.executors.get(executorId)?.prefetch ?? 0;
  }

  /** Put one attempt on an executor's queue (job id = attempt id, so a repeat is a no-op). */
  async dispatch(executorId: string, payload: AttemptPayload): Promise<void> {
    await this.dispatchMany([{ executorId, payload }]);
  }

  /** Put many attempts on their executors' queues, batched per executor. */
  async dispatchMany(items: readonly { readonly executorId: string; readonly payload: AttemptPayload }[]): Promise<void> {
    const byExecutor = new Map<string, AttemptPayload[]>();
    for (const it of items) {
      const list = byExecutor.get(it.executorId) ?? [];
      list.push(it.payload);
      byExecutor.set(it.executorId, list);
    }
    for (const [executorId, payloads] of byExecutor) {
      const w = this.executors.get(executorId) ?? (await this.watchExecutor(executorId), this.executors.get(executorId));
      if (!w) throw new LocusError('NOT_FOUND', `executor ${executorId} is not watched`);
      const now = this.o.clock.now();
      const jobs = this.packJobs(w, payloads);
      // Track before adding: a fast executor's result must find its attempt.
      for (const j of jobs) {
        const members = 'batch' in j.data ? j.data.batch : [j.data];
        if ('batch' in j.data) this.batches.set(j.jobId, { executorId, members: new Set(members.map((p) => p.attemptId)) });
        this.finishedJobs?.track(executorId, j.jobId, members.map((p) => p.attemptId), 'batch' in j.data);
        for (const p of members) {
          this.inFlight.set(p.attemptId, { payload: p, executorId, dispatchedAt: now, running: false, jobId: j.jobId });
          w.attempts.add(p.attemptId);
          const cur = this.currentAttempt.get(p.taskId);
          if (cur === undefined || p.attempt > cur) this.currentAttempt.set(p.taskId, p.attempt);
        }
      }
      try {
        // The index first: once a batch is on the queue, a scheduler taking over must find it.
        const index = jobs.flatMap((j) => ('batch' in j.data ? j.data.batch.flatMap((p) => [p.attemptId, j.jobId]) : []));
        if (index.length > 0) {
          const key = executorBatchIndexKey(executorId);
          await this.producer.multi().hset(key, ...index).expire(key, this.keepSeconds).exec();
        }
        for (let i = 0; i < jobs.length; i += 1000) {
          const chunk = jobs.slice(i, i + 1000);
          await w.queue.addBulk(chunk.map((j) => ({ name: 'attempt', data: j.data, opts: this.jobOptions(j.jobId) })));
        }
      } catch (err) {
        for (const j of jobs) {
          this.batches.delete(j.jobId);
          this.finishedJobs?.untrack(executorId, j.jobId);
          for (const p of 'batch' in j.data ? j.data.batch : [j.data]) {
            this.inFlight.delete(p.attemptId);
            w.attempts.delete(p.attemptId);
          }
        }
        throw new LocusError('UNAVAILABLE', `could not enqueue on executor ${executorId}: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  /**
   * The queue jobs for one executor's attempts: batches of up to maxBatch in the order given,
   * whatever job or stage each attempt belongs to; an attempt alone, or any on an executor that
   * does not take batches, is a job of its own with the attempt id as job id.
   *
   * Not one batch per job and stage, as before: fair share interleaves jobs in a pass, so under
   * `bench:dispatch` (20 jobs at once) a pass's attempts for one executor came from up to 20 jobs
   * and went out as as many small queue jobs, each taken, run and finished on its own, a new
   * job's first attempt queued behind them. Batched together: 1,709-2,074 against 1,368-1,586
   * tasks/s, and a probe's submit-to-running p50 under load 288-313 against 409-444 ms. Nothing
   * waits for a batch's slowest member: each member's result is reported as it ends
   * (BATCH_MEMBER_EVENT), and the executor's worker takes as many queue jobs as it has slots.
   */
  private packJobs(w: Watched, payloads: readonly AttemptPayload[]): { jobId: string; data: AttemptPayload | AttemptBatch }[] {
    if (!w.batches || this.maxBatch === 1) return payloads.map((p) => ({ jobId: p.attemptId, data: p }));
    const out: { jobId: string; data: AttemptPayload | AttemptBatch }[] = [];
    for (let i = 0; i < payloads.length; i += this.maxBatch) {
      const chunk = payloads.slice(i, i + this.maxBatch);
      const first = chunk[0];
      if (!first) continue;
      out.push(chunk.length === 1 ? { jobId: first.attemptId, data: first } : { jobId: batchJobId(first.attemptId), data: { batch: chunk } });
    }
    return out;
  }

  private jobOptions(jobId: string): { jobId: string; attempts: number; removeOnComplete: { age: number }; removeOnFail: { age: number } } {
    // Retries are the scheduler's decision (with classification), never BullMQ's.
    return { jobId, attempts: 1, removeOnComplete: { age: this.keepSeconds }, removeOnFail: { age: this.keepSeconds } };
  }

  /**
   * Take over an attempt dispatched by an earlier scheduler process (after a
   * crash): watch its executor and track the attempt as in flight, old enough
   * that the next reconcile reads its job hash — a finished attempt is settled
   * from its result, one Redis lost is enqueued again (same job id).
   */
  async adopt(executorId: string, payload: AttemptPayload): Promise<void> {
    await this.watchExecutor(executorId);
    const w = this.executors.get(executorId);
    if (!w) throw new LocusError('NOT_FOUND', `executor ${executorId} is not watched`);
    this.inFlight.set(payload.attemptId, { payload, executorId, dispatchedAt: this.o.clock.now() - this.reconcileIntervalMs, running: true, jobId: undefined });
    w.attempts.add(payload.attemptId);
    const cur = this.currentAttempt.get(payload.taskId);
    if (cur === undefined || payload.attempt > cur) this.currentAttempt.set(payload.taskId, payload.attempt);
  }

  /**
   * Kill an attempt whose job was cancelled. Its id always goes into the
   * executor's kill set, which the executor reads with its next heartbeat: a
   * running attempt's container is killed and the attempt reported KILLED,
   * and one that reaches the executor later ends without running. Still
   * waiting in the queue, it is also taken off it and settled KILLED here and
   * now. Either way a result follows, so the slot is freed.
   */
  async kill(executorId: string, attemptId: string): Promise<'removed' | 'signalled'> {
    const key = executorKillKey(executorId);
    // First, so an attempt being added to the queue right now (or taken by the worker) is covered.
    await this.producer.multi().sadd(key, attemptId).expire(key, KILL_REQUEST_TTL_SECONDS).exec();
    const w = this.executors.get(executorId);
    const f = this.inFlight.get(attemptId);
    // A batch member cannot be taken off the queue alone (its batch holds others): the kill set
    // ends it, before it starts or while it runs, and its result comes with its batch's.
    const jobId = f ? f.jobId ?? ((await this.producer.hget(executorBatchIndexKey(executorId), attemptId).catch(() => null)) ?? attemptId) : attemptId;
    if (w && f && jobId === attemptId) {
      // BullMQ removes a job only while no worker holds its lock (and answers 1 for a job it
      // does not have): with the attempt in flight here, 1 means it had not started.
      const removed = await w.queue.remove(attemptId).catch(() => 0);
      if (removed === 1) {
        // Gone from the queue already: nothing of it to remove once it is recorded.
        this.finishedJobs?.untrack(executorId, attemptId);
        this.settle(executorId, this.synthetic(f, w, 'KILLED', CANCELLED_REASON, 'taken off the queue before it started: its job was cancelled'));
        return 'removed';
      }
    }
    return 'signalled';
  }

  /** Ask an executor to drain and exit. */
  async requestStop(executorId: string): Promise<void> {
    await requestExecutorStop(this.producer, executorId);
  }

  private takePrepared(executorId: string): Queue | undefined {
    const q = this.prepared.get(executorId);
    this.prepared.delete(executorId);
    return q;
  }

  /**
   * The scheduler has recorded this attempt's result (or found it stale): once every attempt of
   * its queue job is recorded and the job has finished, the job is removed (finished-jobs.ts).
   */
  acknowledge(attemptId: string): void {
    this.finishedJobs?.recorded(attemptId);
  }

  /** Stop watching an executor without reporting anything (after the coordinator handled its end). */
  forgetExecutor(executorId: string): void {
    // One that never registered leaves only the queue prepared for it.
    void this.takePrepared(executorId)?.close().catch(() => undefined);
    // Attempts still tracked for it were settled by the coordinator (lost); keeping them would
    // only leak memory and let a late reconcile settle them a second time.
    for (const [id, f] of this.inFlight) if (f.executorId === executorId) this.inFlight.delete(id);
    for (const [id, b] of this.batches) if (b.executorId === executorId) this.batches.delete(id);
    // Its unfinished queue jobs are never removed here (they expire): forgotten, as its attempts.
    this.finishedJobs?.forgetExecutor(executorId);
    const w = this.executors.get(executorId);
    if (!w) return;
    this.executors.delete(executorId);
    void w.queue.close().catch(() => undefined);
  }

  private emit(e: DispatchEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.o.logger.error({ err: (err as Error).message }, 'dispatch listener threw');
      }
    }
  }

  /** Settle an attempt with a result from its executor (or a synthetic one). */
  private settle(executorId: string, result: AttemptResult): void {
    const f = this.inFlight.get(result.attemptId);
    let stale = true;
    if (f) {
      this.inFlight.delete(result.attemptId);
      this.executors.get(f.executorId)?.attempts.delete(result.attemptId);
      const b = f.jobId === undefined ? undefined : this.batches.get(f.jobId);
      if (b && f.jobId !== undefined) {
        b.members.delete(result.attemptId);
        if (b.members.size === 0) this.batches.delete(f.jobId);
      }
      const cur = this.currentAttempt.get(f.payload.taskId);
      stale = cur !== undefined && f.payload.attempt < cur;
      if (!stale && result.state === 'SUCCEEDED') this.currentAttempt.delete(f.payload.taskId);
    }
    this.emit({ type: 'result', executorId, result, stale });
  }

  private onStreamEntry(w: Watched, entryId: string, fields: readonly unknown[]): void {
    // Most entries are `added`/`waiting` events nobody here needs: look at the
    // event name first and build the field map only for the rest.
    if (fields[0] !== 'event') return;
    const event = fields[1];
    if (event !== 'completed' && event !== 'active' && event !== 'progress' && event !== 'failed' && event !== 'stalled' && event !== BATCH_MEMBER_EVENT) return;
    const m = new Map<string, string>();
    for (let i = 2; i + 1 < fields.length; i += 2) m.set(String(fields[i]), String(fields[i + 1]));
    const jobId = m.get('jobId') ?? '';
    try {
      const batch = this.batches.get(jobId);
      if (event === 'completed') {
        this.finishedJobs?.finished(w.executorId, jobId, 'completed');
        const value: unknown = JSON.parse(m.get('returnvalue') ?? 'null');
        if (isBatchData(value)) {
          this.settleBatch(w, jobId, value);
          return;
        }
        const result = decodeAttemptResult(value);
        // An executor may only settle the attempt its queue entry names, and only its own:
        // a result claiming another attempt (another tenant's task) is dropped.
        const f = this.inFlight.get(jobId);
        if (result.attemptId !== jobId || (f && (f.executorId !== w.executorId || f.payload.taskId !== result.taskId))) {
          this.o.logger.warn({ executor: w.executorId, jobId, claimed: result.attemptId }, 'a result that does not match its queue entry was dropped');
          return;
        }
        this.settle(w.executorId, result);
      } else if (event === BATCH_MEMBER_EVENT) {
        // Members that ended together (a batch result), or one member's result on its own.
        const value: unknown = JSON.parse(m.get('returnvalue') ?? 'null');
        this.settleBatch(w, jobId, isBatchData(value) ? value : { batch: [value] }, false);
      } else if (event === 'active') {
        // BullMQ writes this when the executor's worker takes the job (all of a batch's members
        // start then); the entry id's first part is Redis's clock in ms.
        const startedAt = Number(entryId.split('-')[0]) || this.o.clock.now();
        for (const attemptId of batch ? [...batch.members] : [jobId]) {
          const f = this.inFlight.get(attemptId);
          if (f && !f.running) {
            f.running = true;
            this.emit({ type: 'running', executorId: w.executorId, taskId: f.payload.taskId, progress: { phase: 'running', attemptId, startedAt, host: w.hostname } });
          }
        }
      } else if (event === 'progress') {
        const p = decodeAttemptProgress(JSON.parse(m.get('data') ?? 'null') as unknown);
        const f = p ? this.inFlight.get(p.attemptId) : undefined;
        if (p && f && f.executorId === w.executorId) {
          const first = !f.running;
          f.running = true;
          this.emit({ type: first ? 'running' : 'progress', executorId: w.executorId, taskId: f.payload.taskId, progress: p });
        }
      } else if (event === 'failed') {
        this.finishedJobs?.finished(w.executorId, jobId, 'failed');
        const reason = `the executor failed the job: ${m.get('failedReason') ?? ''}`;
        for (const attemptId of batch ? [...batch.members] : [jobId]) {
          const f = this.inFlight.get(attemptId);
          if (f && f.executorId === w.executorId) this.settle(w.executorId, this.synthetic(f, w, 'FAILED', 'EXECUTOR_ERROR', reason));
        }
      } else if (event === 'stalled') {
        for (const attemptId of batch ? [...batch.members] : [jobId]) this.emit({ type: 'stalled', executorId: w.executorId, attemptId });
      }
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message, executor: w.executorId, event, jobId }, 'undecodable queue event ignored');
    }
  }

  /**
   * Settle the members of a finished batch from its return value. Each result must name an
   * attempt in flight on this executor, held by this batch (or adopted, batch not known yet),
   * for its own task: an executor settles only what its queue entry holds.
   */
  private settleBatch(w: Watched, jobId: string, value: unknown, whole = true): void {
    for (const result of decodeAttemptBatchResult(value).batch) {
      const f = this.inFlight.get(result.attemptId);
      if (!f || f.executorId !== w.executorId || f.payload.taskId !== result.taskId || (f.jobId !== undefined && f.jobId !== jobId)) {
        // Not in flight: settled already (a member reported on its own before its batch completed).
        if (f) this.o.logger.warn({ executor: w.executorId, jobId, claimed: result.attemptId }, 'a batch result that does not match its queue entry was dropped');
        continue;
      }
      this.settle(w.executorId, result);
    }
    // A member's own report (whole = false) leaves the rest of the batch in flight.
    if (whole) this.batches.delete(jobId);
  }

  private synthetic(f: InFlight, w: Watched | undefined, state: AttemptResult['state'], reason: string, message: string): AttemptResult {
    return {
      attemptId: f.payload.attemptId,
      taskId: f.payload.taskId,
      state,
      exitCode: null,
      reason,
      message,
      startedAt: f.dispatchedAt,
      finishedAt: this.o.clock.now(),
      host: w?.hostname ?? '',
    };
  }

  /** End the read loop's blocked read now (it starts again with the executors watched now). Coalesced per tick. */
  private wake(): void {
    if (this.closed || this.wakeQueued) return;
    this.wakeQueued = true;
    queueMicrotask(() => {
      this.wakeQueued = false;
      if (this.closed) return;
      // One entry kept; the key goes away by itself if this process dies without closing.
      void this.producer.multi().call('XADD', this.wakeKey, 'MAXLEN', '1', '*', 'w', '1').expire(this.wakeKey, 86_400).exec().catch(() => undefined);
    });
  }

  private async readLoop(): Promise<void> {
    while (!this.closed) {
      const ws = [...this.executors.values()];
      let res: unknown;
      try {
        res = await this.reader.call('XREAD', 'COUNT', 2000, 'BLOCK', this.blockMs, 'STREAMS', this.wakeKey, ...ws.map((w) => w.stream), this.wakeLastId, ...ws.map((w) => w.lastId));
      } catch (err) {
        if (this.closed) break;
        this.o.logger.debug({ err: (err as Error).message }, 'event read failed; retrying');
        await sleep(200);
        continue;
      }
      if (!Array.isArray(res)) continue;
      const byStream = new Map(ws.map((w) => [w.stream, w]));
      for (const s of res) {
        if (!Array.isArray(s) || typeof s[0] !== 'string' || !Array.isArray(s[1])) continue;
        if (s[0] === this.wakeKey) {
          const last: unknown = s[1][s[1].length - 1];
          if (Array.isArray(last) && typeof last[0] === 'string') this.wakeLastId = last[0];
          continue;
        }
        const w = byStream.get(s[0]);
        if (!w) continue;
        for (const entry of s[1] as unknown[]) {
          if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !Array.isArray(entry[1])) continue;
          w.lastId = entry[0];
          this.onStreamEntry(w, entry[0], entry[1] as unknown[]);
        }
      }
    }
  }

  private scheduleWatch(): void {
    if (this.closed) return;
    this.watchTimer = this.o.clock.setTimer(this.watchIntervalMs, () => {
      void this.checkHeartbeats().finally(() => this.scheduleWatch());
    });
  }

  private scheduleReconcile(): void {
    if (this.closed) return;
    this.reconcileTimer = this.o.clock.setTimer(this.reconcileIntervalMs, () => {
      void this.reconcile().finally(() => this.scheduleReconcile());
    });
  }

  /** Poll heartbeats once (the timer calls this; tests may too). */
  async checkHeartbeats(): Promise<void> {
    const ws = [...this.executors.values()];
    if (ws.length === 0) return;
    let rows: (string | null)[][];
    try {
      const pipe = this.producer.pipeline();
      for (const w of ws) pipe.hmget(executorKey(w.executorId), F.heartbeat, F.state);
      const res = await pipe.exec();
      rows = (res ?? []).map(([err, v]) => {
        if (err) throw err;
        return Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? x : null)) : [null, null];
      });
    } catch (err) {
      // Redis itself is unreachable: nobody's heartbeat can move, so do not
      // count this time against the executors.
      this.pollFailed = true;
      this.o.logger.debug({ err: (err as Error).message }, 'heartbeat poll failed');
      return;
    }
    const now = this.o.clock.now();
    if (this.pollFailed) {
      this.pollFailed = false;
      for (const w of ws) w.lastChangeAt = now;
    }
    ws.forEach((w, i) => {
      const [hb, state] = rows[i] ?? [null, null];
      if (hb === null && state === null) return this.executorLost(w, 'UNREGISTERED');
      if (state === 'exited') return this.executorLost(w, 'EXITED');
      const n = Number(hb);
      if (n !== w.heartbeat) {
        w.heartbeat = n;
        w.lastChangeAt = now;
      } else if (now - w.lastChangeAt > this.heartbeatTimeoutMs) {
        this.executorLost(w, 'HEARTBEAT_TIMEOUT');
      }
    });
  }

  private executorLost(w: Watched, reason: 'HEARTBEAT_TIMEOUT' | 'EXITED' | 'UNREGISTERED'): void {
    if (this.executors.get(w.executorId) !== w) return;
    this.executors.delete(w.executorId);
    const attempts = [...w.attempts];
    this.o.logger.warn({ executor: w.executorId, reason, attempts: attempts.length }, 'executor lost: its attempts are reported LOST');
    this.emit({ type: 'executor-lost', executorId: w.executorId, reason, attempts });
    for (const id of attempts) {
      const f = this.inFlight.get(id);
      if (f) this.settle(w.executorId, this.synthetic(f, w, 'LOST', 'EXECUTOR_LOST', `executor ${w.executorId} on ${w.hostname} was lost (${reason}); not counted against retries`));
    }
    for (const [id, b] of this.batches) if (b.executorId === w.executorId) this.batches.delete(id);
    // Waiting jobs would only run if the executor came back; its results would
    // then be stale. Drop them (best effort) and stop using the queue.
    void w.queue.drain().catch(() => undefined).finally(() => void w.queue.close().catch(() => undefined));
  }

  /** Reconcile attempts in flight for a while against their job hashes (the timer calls this). */
  async reconcile(): Promise<void> {
    const now = this.o.clock.now();
    const old = [...this.inFlight.values()].filter((f) => now - f.dispatchedAt >= this.reconcileIntervalMs && this.executors.has(f.executorId));
    if (old.length === 0) return;
    try {
      // Adopted attempts: which queue job holds each (its batch, or itself), read once.
      const unknown = old.filter((f) => f.jobId === undefined);
      for (let i = 0; i < unknown.length; i += 1000) {
        const chunk = unknown.slice(i, i + 1000);
        const pipe = this.producer.pipeline();
        for (const f of chunk) pipe.hget(executorBatchIndexKey(f.executorId), f.payload.attemptId);
        const res = (await pipe.exec()) ?? [];
        chunk.forEach((f, j) => {
          const entry = res[j];
          if (!entry || entry[0]) return;
          f.jobId = typeof entry[1] === 'string' ? entry[1] : f.payload.attemptId;
        });
      }
      // The queue jobs to read, each with its members among the old attempts.
      const byJob = new Map<string, InFlight[]>();
      for (const f of old) {
        if (f.jobId === undefined) continue;
        const key = `${f.executorId}\0${f.jobId}`;
        const list = byJob.get(key);
        if (list) list.push(f);
        else byJob.set(key, [f]);
      }
      const jobs = [...byJob.values()];
      for (let i = 0; i < jobs.length; i += 1000) {
        const chunk = jobs.slice(i, i + 1000);
        const pipe = this.producer.pipeline();
        for (const [f] of chunk) if (f) pipe.hmget(executorQueueKey(f.executorId, f.jobId ?? ''), 'timestamp', 'finishedOn', 'returnvalue', 'failedReason');
        const res = (await pipe.exec()) ?? [];
        const lost: InFlight[][] = [];
        chunk.forEach((members, j) => {
          const entry = res[j];
          const f0 = members[0];
          if (!f0 || !entry || entry[0] || !Array.isArray(entry[1])) return;
          const [timestamp, finishedOn, returnvalue, failedReason] = entry[1] as (string | null)[];
          const live = members.filter((f) => this.inFlight.get(f.payload.attemptId) === f);
          if (live.length === 0) return;
          const w = this.executors.get(f0.executorId);
          if (finishedOn && f0.jobId !== undefined) this.finishedJobs?.finished(f0.executorId, f0.jobId, returnvalue ? 'completed' : 'failed');
          if (timestamp === null || timestamp === undefined) lost.push(live);
          else if (finishedOn && returnvalue) {
            try {
              const value: unknown = JSON.parse(returnvalue);
              if (isBatchData(value)) {
                if (w) this.settleBatch(w, f0.jobId ?? '', value);
              } else {
                const result = decodeAttemptResult(value);
                if (result.attemptId !== f0.payload.attemptId || result.taskId !== f0.payload.taskId) throw new Error(`result names ${result.attemptId}, not ${f0.payload.attemptId}`);
                this.settle(f0.executorId, result);
              }
            } catch (err) {
              this.o.logger.warn({ err: (err as Error).message, attempt: f0.payload.attemptId, job: f0.jobId }, 'undecodable result');
            }
          } else if (finishedOn && failedReason) {
            for (const f of live) this.settle(f.executorId, this.synthetic(f, w, 'FAILED', 'EXECUTOR_ERROR', `the executor failed the job: ${failedReason}`));
          }
        });
        for (const members of lost) {
          const f0 = members[0];
          const w = f0 ? this.executors.get(f0.executorId) : undefined;
          if (!f0 || !w || f0.jobId === undefined) continue;
          this.o.logger.warn({ attempts: members.length, job: f0.jobId, executor: f0.executorId }, 'Redis lost a queued job (restart without the last writes?): enqueuing it again');
          // The same job id and, for a batch, the same members: an executor still running the
          // first delivery shares that run (see Executor.processOne) instead of starting another.
          const data = f0.jobId === f0.payload.attemptId ? f0.payload : { batch: members.map((f) => f.payload) };
          await w.queue.add('attempt', data, this.jobOptions(f0.jobId));
        }
      }
    } catch (err) {
      this.o.logger.debug({ err: (err as Error).message }, 'reconcile failed; will retry');
    }
  }

  /** Stop reading and close connections. Memoised; each step isolated. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.finishedJobs?.close();
      this.watchTimer?.cancel();
      this.reconcileTimer?.cancel();
      this.reader.disconnect();
      await this.readLoopDone.catch(() => undefined);
      for (const w of this.executors.values()) await w.queue.close().catch(() => undefined);
      this.executors.clear();
      for (const q of this.prepared.values()) await q.close().catch(() => undefined);
      this.prepared.clear();
      await this.producer.del(this.wakeKey).catch(() => undefined);
      await this.producer.quit().catch(() => undefined);
      this.producer.disconnect();
    })();
    return this.closing;
  }
}
