/**
 * The executor process: registers itself in Redis, heartbeats, consumes its
 * own BullMQ queue (one job = one attempt, or a batch of attempts run side by side), and drains
 * on request, on idleness or on SIGTERM. Its queue worker takes up to slots + prefetch jobs: the
 * scheduler sends more attempts than slots only to an executor whose attempts end quickly, and
 * the extra ones wait prepared at the gate over its slots (a FairGate) for the next container to exit (or are handed
 * back after PREFETCH_HOLD_MS).
 *
 * Redis layout (all keys this process touches, which is exactly what its
 * ACL user allows): the BullMQ keys of `executorQueueName(id)` under
 * QUEUE_PREFIX, its registration hash `executorKey(id)`, and a read of
 * SCHEDULER_INFO_KEY.
 */
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { DecodeError } from '../core/decode.js';
import { LocusError } from '../core/errors.js';
import type { Logger } from '../obs/log.js';
import { runAttempt, type AttemptContext, type SplitReader } from './attempt.js';
import type { TenantUidRange } from './isolation/tenant.js';
import type { DataPlane } from './data-plane.js';
import {
  CONTRACT_VERSION,
  EXECUTOR_FIELDS as F,
  QUEUE_PREFIX,
  SCHEDULER_INFO_KEY,
  CANCELLED_REASON,
  contractCompatible,
  decodeAttemptPayload,
  PREFETCH_HOLD_MS,
  executorKey,
  executorKillKey,
  executorQueueKey,
  executorQueueName,
  isValidExecutorId,
  isBatchData,
  BATCH_MEMBER_EVENT,
  unheldPrefetch,
  type AttemptBatchResult,
  type AttemptPayload,
  type AttemptResult,
  type ExecutorState,
} from './contract.js';
import type { AttemptRunner } from './runner.js';
import { FairGate } from './fair-gate.js';
import { fifoStockFor, StartOrder } from './start-gate.js';
import { HostCpu, holdWhileIdle } from './host-cpu.js';
import { withTimeout } from '../storage/concurrency.js';
import { settleStaging } from './output.js';

/** Everything an executor needs to run. */
export interface ExecutorOptions {
  readonly executorId: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly slots: number;
  readonly slotResources: { readonly cpus: number; readonly memMiB: number; readonly diskMiB: number };
  /** A new Redis connection (with the executor's own ACL user); BullMQ needs several. */
  readonly connect: () => Redis;
  readonly runner: AttemptRunner;
  readonly logger: Logger;
  /** Where non-local splits are materialised. */
  readonly scratchDir: string;
  readonly splitReader?: SplitReader;
  /** The multi-host data plane: storage readers, block servers, the commit ledger. */
  readonly dataPlane?: DataPlane;
  readonly heartbeatMs?: number;
  /** How often the kill set is read while attempts run (default 500 ms; heartbeats read it too). */
  readonly killPollMs?: number;
  /** Exit after this long without attempts; 0 = never. */
  readonly idleTimeoutMs?: number;
  /** How long running attempts may finish after a drain starts before they are handed back. */
  readonly drainGraceMs?: number;
  readonly killGraceMs?: number;
  /** Each tenant's attempts run under their own uid from this range (see isolation/tenant.ts); undefined = all as the runner's default user. */
  readonly tenantUids?: TenantUidRange;
  /** BullMQ lock duration: a job whose lock is not renewed this long is stalled. */
  readonly lockDurationMs?: number;
  readonly stalledIntervalMs?: number;
  /** Report progress (sandbox, start time) on attempts still running after this long (default 1 s). */
  readonly progressDelayMs?: number;
  /** Attempts the executor sets up or commits at once (a FairGate; default DEFAULT_TURNS, 0 = no limit). */
  readonly turns?: number;
  /** Attempts taken beyond the slots, held prepared for the next free slot (default 0: none; the framework asks for prefetchDepth(slots)). */
  readonly prefetch?: number;
  /** How long a prepared attempt waits for a slot before it is handed back (default PREFETCH_HOLD_MS). */
  readonly prefetchHoldMs?: number;
  /**
   * A prepared attempt's container starts held while it waits for its slot, where the runner
   * allows it (start-gate.ts; default false). `auto`: only while the host's CPUs have idled at
   * least HELD_STARTS_MIN_IDLE of the time lately (host-cpu.ts).
   */
  readonly heldStarts?: boolean | 'auto';
}

/**
 * Turns at the executor's own work on attempts (set-up, commit) at once by default
 * (ExecutorOptions.turns, a FairGate): enough to overlap the fsyncs and Redis round trips of
 * set-ups and commits. Without a limit an executor with hundreds of slots of short tasks works on
 * all of them at once: every step of every attempt waits behind every other's (a no-op attempt
 * took 200 ms to start under load), and a new job's first task waits behind hundreds of another
 * job's. With it the attempts of a job that has few at work go first, so a small job starts
 * within a few turns however large the backlog of another.
 */
export const DEFAULT_TURNS = 32;

/**
 * How long a batch member's result waits for others ending at about the same time, to share
 * one event with them (short tasks of one batch end within a few milliseconds of each other).
 */
const MEMBER_REPORT_DELAY_MS = 5;

/** Why an executor stopped. */
export type ExitReason = 'idle' | 'stop-requested' | 'signal' | 'closed';

/** A running executor. */
export class Executor {
  private readonly redis: Redis;
  private worker: Worker | undefined;
  private workerConnection: Redis | undefined;
  /** Set when the drain grace is over: every running attempt is stopped and handed back. */
  private drainAborted = false;
  /** The stop controller of every delivery running here (two deliveries of one attempt included). */
  private readonly stops = new Set<AbortController>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private killPollBusy = false;
  private heartbeatBusy = false;
  private active = 0;
  private idleSince = Date.now();
  private draining: Promise<ExitReason> | undefined;
  private resolveFinished!: (r: ExitReason) => void;
  /** Resolves when the executor has drained and deregistered. */
  readonly finished: Promise<ExitReason>;
  private readonly key: string;
  private readonly killKey: string;
  /** The queue's event stream (BullMQ's), where batch members' results are added as they end. */
  private readonly events: string;
  /** Attempts running here, each with the controller that kills it when its job is cancelled. */
  private readonly attemptKills = new Map<string, { readonly stop: AbortController; killed: boolean }>();
  /**
   * Kill requests for attempts not running here (yet): one may still be delivered after the
   * request was read, and must then end at once. Id → when the request was read (ms).
   */
  private readonly killedEarly = new Map<string, number>();
  /**
   * Deliveries running here, by attempt and delivery tag. When Redis loses its last writes
   * (kill -9 under appendfsync everysec), BullMQ can hand the same delivery to this executor
   * again while the first still runs; the second must share the first's run and result,
   * not start a container of the same id and fail the task with LAUNCH_FAILED.
   */
  private readonly inFlight = new Map<string, Promise<AttemptResult>>();
  private readonly log: Logger;
  private readonly turns: FairGate | undefined;
  /** Containers at once: the slots, whatever the worker has taken. */
  private readonly gate: FairGate;
  private readonly prefetch: number;

  private constructor(private readonly o: ExecutorOptions) {
    const turns = o.turns ?? DEFAULT_TURNS;
    this.turns = turns > 0 ? new FairGate(turns) : undefined;
    this.gate = new FairGate(o.slots);
    const asked = Math.max(0, Math.floor(o.prefetch ?? 0));
    this.prefetch = mayHold(o) && o.runner.heldStarts === true ? asked : Math.min(asked, unheldPrefetch(o.slots));
    this.redis = o.connect();
    this.redis.on('error', () => undefined);
    this.key = executorKey(o.executorId);
    this.killKey = executorKillKey(o.executorId);
    this.events = executorQueueKey(o.executorId, 'events');
    this.log = o.logger.child({ executor: o.executorId });
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  /** Register, check the scheduler's contract, and start consuming. */
  static async start(o: ExecutorOptions): Promise<Executor> {
    if (!isValidExecutorId(o.executorId)) throw new LocusError('INVALID_FIELD', `executor id '${o.executorId}' may hold only letters, digits, '_', '.', '-'`, { field: 'executor-id' });
    if (!Number.isInteger(o.slots) || o.slots < 1) throw new LocusError('INVALID_FIELD', `slots must be an integer >= 1, got ${o.slots}`, { field: 'slots' });
    const e = new Executor(o);
    try {
      await e.checkScheduler();
      await e.register();
    } catch (err) {
      e.redis.disconnect();
      throw err;
    }
    e.startWorker();
    e.startHeartbeat();
    e.log.info({ slots: o.slots, runner: o.runner.kind, queue: executorQueueName(o.executorId) }, 'executor started');
    return e;
  }

  /** The runner in use (`agent`, `isolator:linux`, ...). */
  get runnerKind(): string {
    return this.o.runner.kind;
  }

  private async checkScheduler(): Promise<void> {
    const theirs = await this.redis.hget(SCHEDULER_INFO_KEY, 'contract');
    if (theirs !== null && !contractCompatible(theirs, CONTRACT_VERSION)) {
      throw new LocusError('WRONG_STATE', `the scheduler speaks queue contract ${theirs}, this executor ${CONTRACT_VERSION}: major versions differ, refusing to start (deploy matching Locus versions)`);
    }
  }

  private async register(): Promise<void> {
    const fields: Record<string, string> = {
      [F.agentId]: this.o.agentId,
      [F.hostname]: this.o.hostname,
      [F.slots]: String(this.o.slots),
      [F.contract]: CONTRACT_VERSION,
      [F.state]: 'running' satisfies ExecutorState,
      [F.runner]: this.o.runner.kind,
      [F.pid]: String(process.pid),
      cpusPerSlot: String(this.o.slotResources.cpus),
      memMiBPerSlot: String(this.o.slotResources.memMiB),
      diskMiBPerSlot: String(this.o.slotResources.diskMiB),
      startedAt: String(Date.now()),
      // This executor completes batch jobs (AttemptBatch); a scheduler sends it batches only then.
      [F.batches]: '1',
      // And takes this many attempts beyond its slots, holding them prepared at the gate over its slots.
      [F.prefetch]: String(this.prefetch),
      // Where other hosts read this host's dataset replicas and committed outputs.
      ...(this.o.dataPlane?.blockServer === undefined ? {} : { [F.blockServer]: this.o.dataPlane.blockServer }),
    };
    await this.redis.multi().hset(this.key, fields).hdel(this.key, F.stopRequested).hincrby(this.key, F.heartbeat, 1).exec();
  }

  private startWorker(): void {
    const ctx: AttemptContext = {
      runner: this.o.runner,
      host: this.o.hostname,
      logger: this.log,
      scratchDir: this.o.scratchDir,
      killGraceMs: this.o.killGraceMs ?? 2000,
      ...(this.o.splitReader ? { splitReader: this.o.splitReader } : {}),
      ...(this.o.dataPlane ? { dataPlane: this.o.dataPlane } : {}),
      ...(this.o.tenantUids ? { tenantUids: this.o.tenantUids } : {}),
      ...(mayHold(this.o) ? { startOrder: new StartOrder() } : {}),
      ...(this.o.heldStarts === 'auto' ? { holdStarts: holdWhileIdle(new HostCpu()) } : {}),
    };
    // BullMQ does not close a connection it was handed; keep it to close after the worker.
    this.workerConnection = this.o.connect();
    this.workerConnection.on('error', () => undefined);
    const worker = new Worker(executorQueueName(this.o.executorId), (job: Job) => this.process(job, ctx), {
      connection: this.workerConnection,
      prefix: QUEUE_PREFIX,
      concurrency: this.o.slots + this.prefetch,
      lockDuration: this.o.lockDurationMs ?? 30_000,
      stalledInterval: this.o.stalledIntervalMs ?? 30_000,
      // A stall is the executor's or Redis's trouble, not the task's: allow several.
      maxStalledCount: 5,
      removeOnComplete: { age: 24 * 3600 },
      removeOnFail: { age: 24 * 3600 },
    });
    worker.on('error', (err) => this.log.warn({ err: err.message }, 'queue worker error'));
    this.worker = worker;
  }

  private async process(job: Job, ctx: AttemptContext): Promise<AttemptResult | AttemptBatchResult> {
    this.active++;
    try {
      // A batch's members run side by side, each exactly as a job of its own would; the job
      // completes when the last one has, with all their results (see AttemptBatch).
      if (isBatchData(job.data)) {
        let running = job.data.batch.length;
        // Members that ended and were not reported yet. They go out together, one XADD a few
        // milliseconds after the first of them ended (see BATCH_MEMBER_EVENT); none when the last
        // member ended meanwhile, since the batch's own completion carries every result.
        let unreported: AttemptResult[] = [];
        let flush: NodeJS.Timeout | undefined;
        const report = (): void => {
          flush = undefined;
          const batch = unreported;
          unreported = [];
          if (running === 0 || batch.length === 0) return;
          void this.redis.xadd(this.events, '*', 'event', BATCH_MEMBER_EVENT, 'jobId', job.id ?? '', 'returnvalue', JSON.stringify({ batch } satisfies AttemptBatchResult))
            .catch((err: unknown) => this.log.debug({ err: String(err), attempts: batch.length }, 'member results not streamed; they come with their batch'));
        };
        try {
          return {
            batch: await Promise.all(job.data.batch.map(async (member) => {
              const result = await this.processOne(job, member, ctx);
              if (--running > 0) {
                unreported.push(result);
                flush ??= setTimeout(report, MEMBER_REPORT_DELAY_MS);
              }
              return result;
            })),
          };
        } finally {
          if (flush !== undefined) clearTimeout(flush);
        }
      }
      return await this.processOne(job, job.data, ctx);
    } finally {
      this.active--;
      if (this.active === 0) this.idleSince = Date.now();
    }
  }

  /** One attempt of a delivery (`data`: the job's data, or one member of a batch). */
  private async processOne(job: Job, data: unknown, ctx: AttemptContext): Promise<AttemptResult> {
    let progressTimer: NodeJS.Timeout | undefined;
    try {
      let payload;
      try {
        payload = decodeAttemptPayload(data);
      } catch (err) {
        const attemptId = typeof data === 'object' && data !== null && typeof (data as { attemptId?: unknown }).attemptId === 'string' ? (data as { attemptId: string }).attemptId : (job.id ?? '');
        const taskId = typeof data === 'object' && data !== null && typeof (data as { taskId?: unknown }).taskId === 'string' ? (data as { taskId: string }).taskId : '';
        const now = Date.now();
        return { attemptId, taskId, state: 'FAILED', exitCode: null, reason: 'INVALID_PAYLOAD', message: err instanceof DecodeError ? err.message : String(err), startedAt: now, finishedAt: now, host: this.o.hostname };
      }
      const attemptId = payload.attemptId;
      if (this.killedEarly.delete(attemptId)) {
        const now = Date.now();
        return { attemptId, taskId: payload.taskId, state: 'KILLED', exitCode: null, reason: CANCELLED_REASON, message: 'not started: its job was cancelled', startedAt: now, finishedAt: now, host: this.o.hostname };
      }
      const deliveryKey = `${attemptId}\0${job.id ?? ''}`;
      const running = this.inFlight.get(deliveryKey);
      if (running !== undefined) {
        this.log.warn({ attempt: attemptId, delivery: job.id }, 'delivery received again while it runs here: sharing its run');
        return await running;
      }
      const run = this.runOnce(job, payload, ctx, (t) => (progressTimer = t), () => progressTimer);
      this.inFlight.set(deliveryKey, run);
      try {
        return await run;
      } finally {
        this.inFlight.delete(deliveryKey);
      }
    } finally {
      if (progressTimer) clearTimeout(progressTimer);
    }
  }

  /** One delivery's run: the attempt, its cancel controller and its delayed progress report. */
  private async runOnce(job: Job, payload: AttemptPayload, ctx: AttemptContext, setTimer: (t: NodeJS.Timeout | undefined) => void, getTimer: () => NodeJS.Timeout | undefined): Promise<AttemptResult> {
    const attemptId = payload.attemptId;
    // A cancel or the end of the drain grace aborts this controller. The attempt sees it as its
    // drain signal (which kills the container and hands the attempt back); after a cancel the
    // result is relabelled KILLED below. (One controller per attempt, not AbortSignal.any over a
    // shared drain signal: that costs weak references and finalizers for every attempt.)
    const kill = { stop: new AbortController(), killed: false };
    if (this.drainAborted) kill.stop.abort();
    this.attemptKills.set(attemptId, kill);
    this.stops.add(kill.stop);
    let result: AttemptResult;
    const startedAt = Date.now();
    try {
      result = await runAttempt(payload, ctx, {
        delivery: job.id ?? '',
        drain: kill.stop.signal,
        ...(this.turns === undefined ? {} : { turn: () => (this.turns as FairGate).take(payload.jobId) }),
        slot: () => this.gate.acquire(payload.jobId, kill.stop.signal, this.o.prefetchHoldMs ?? PREFETCH_HOLD_MS),
        // Like acquire: an attempt stopped meanwhile (cancelled, drained) gets no slot.
        slotNow: () => (kill.stop.signal.aborted ? undefined : this.gate.tryAcquire(payload.jobId)),
        // BullMQ's own `active` event already tells the scheduler the attempt
        // runs; a progress report (with the sandbox) follows only for attempts
        // that last, so short tasks cost no extra Redis round trip.
        onRunning: (p) => {
          setTimer(setTimeout(() => {
            void job.updateProgress({ ...p }).catch(() => undefined);
          }, this.o.progressDelayMs ?? 1000));
        },
        // The report is for workloads that last, not for commits that do.
        onExited: () => {
          const t = getTimer();
          if (t) clearTimeout(t);
          setTimer(undefined);
        },
      }).catch((err: unknown): AttemptResult => {
        // What the attempt's code did not expect ends this attempt alone: thrown on, it failed
        // its queue job, and with it every other attempt of a batch, done or not, as
        // EXECUTOR_ERROR.
        const message = err instanceof Error ? err.message : String(err);
        this.log.error({ attempt: attemptId, err: message }, 'the attempt failed in the executor');
        // Its job was cancelled meanwhile: it ends as every cancelled attempt does.
        if (kill.killed) return { attemptId, taskId: payload.taskId, state: 'KILLED', exitCode: null, reason: CANCELLED_REASON, message: 'killed: its job was cancelled', startedAt, finishedAt: Date.now(), host: this.o.hostname };
        return { attemptId, taskId: payload.taskId, state: 'FAILED', exitCode: null, reason: 'EXECUTOR_ERROR', message: `the executor failed the attempt: ${message}`, startedAt, finishedAt: Date.now(), host: this.o.hostname };
      });
    } finally {
      // A second delivery of the attempt may have taken the entry over: only this one's goes.
      if (this.attemptKills.get(attemptId) === kill) this.attemptKills.delete(attemptId);
      this.stops.delete(kill.stop);
    }
    // Only a result the kill caused is relabelled: one that finished first stands as it is.
    if (kill.killed && result.reason === 'DRAINED') {
      return { ...result, state: 'KILLED', reason: CANCELLED_REASON, message: 'killed: its job was cancelled' };
    }
    return result;
  }

  private startHeartbeat(): void {
    const every = this.o.heartbeatMs ?? 2000;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), every);
    // A cancelled job's attempts should die within a second, not a heartbeat: while attempts
    // run, the kill set is read more often (one SMEMBERS; nothing at all while idle).
    this.killTimer = setInterval(() => void this.pollKills(), this.o.killPollMs ?? 500);
  }

  private async heartbeat(): Promise<void> {
    // While Redis is unreachable commands queue up; never stack heartbeats.
    if (this.heartbeatBusy) return;
    this.heartbeatBusy = true;
    try {
      // A draining executor keeps its heartbeat: attempts finishing within the drain grace must
      // not be reported lost (and retried) while it is still working on them.
      // Kill requests ride on the heartbeat (one round trip), draining or not: a cancelled job's
      // attempts must not run on through a drain grace.
      if (this.draining) {
        const res = await this.redis.multi().hincrby(this.key, F.heartbeat, 1).smembers(this.killKey).exec();
        await this.applyKills(res?.[1]?.[1]);
        return;
      }
      const res = await this.redis.multi().hincrby(this.key, F.heartbeat, 1).hget(this.key, F.stopRequested).smembers(this.killKey).exec();
      await this.applyKills(res?.[2]?.[1]);
      const stop = res?.[1]?.[1];
      if (typeof stop === 'string' && stop !== '' && stop !== '0') {
        void this.drain('stop-requested');
        return;
      }
      const idle = this.o.idleTimeoutMs ?? 0;
      if (idle > 0 && this.active === 0 && Date.now() - this.idleSince >= idle) void this.drain('idle');
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'heartbeat failed');
    } finally {
      this.heartbeatBusy = false;
    }
  }

  private async pollKills(): Promise<void> {
    if (this.attemptKills.size === 0 || this.killPollBusy) return;
    this.killPollBusy = true;
    try {
      await this.applyKills(await this.redis.smembers(this.killKey));
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'reading kill requests failed');
    } finally {
      this.killPollBusy = false;
    }
  }

  /** Kill the attempts named in the kill set (SMEMBERS' answer) and take them out of it. */
  private async applyKills(members: unknown): Promise<void> {
    const now = Date.now();
    // Requests for attempts that never arrived are forgotten after a while.
    for (const [id, at] of this.killedEarly) if (now - at > 3_600_000) this.killedEarly.delete(id);
    if (!Array.isArray(members) || members.length === 0) return;
    const ids = members.filter((m): m is string => typeof m === 'string');
    for (const id of ids) {
      const kill = this.attemptKills.get(id);
      if (kill) {
        this.log.info({ attempt: id }, 'killing a cancelled attempt');
        kill.killed = true;
        kill.stop.abort();
      } else {
        this.killedEarly.set(id, now);
      }
    }
    if (ids.length > 0) await this.redis.srem(this.killKey, ...ids);
  }

  /**
   * Drain: take no new attempts, let running ones finish for the grace
   * period, then kill and hand back the rest (they report LOST/DRAINED), mark
   * the registration exited and close. Memoised: a second call waits for the first.
   */
  drain(reason: ExitReason): Promise<ExitReason> {
    this.draining ??= this.doDrain(reason);
    return this.draining;
  }

  private async doDrain(reason: ExitReason): Promise<ExitReason> {
    this.log.info({ reason, active: this.active }, 'executor draining');
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, `drain: ${what} failed`);
      }
    };
    await step('mark draining', () => withTimeout('marking the executor draining', 5000, this.redis.hset(this.key, F.state, 'draining' satisfies ExecutorState)));
    const grace = setTimeout(() => {
      this.drainAborted = true;
      for (const stop of this.stops) stop.abort();
    }, this.o.drainGraceMs ?? 30_000);
    await step('close worker', async () => {
      await this.worker?.close();
    });
    this.workerConnection?.disconnect();
    clearTimeout(grace);
    await step('close runner', () => this.o.runner.close());
    // Its last attempts' stage directories: their sweeps and staging directories' removal now,
    // not after the upkeep's wait, which a process about to exit would never see.
    await step('tidy staging', () => withTimeout('tidying the staging directories', 10_000, settleStaging()));
    // The FIFOs made ahead for held starts that no attempt took.
    if (mayHold(this.o)) await step('clear gate stock', () => fifoStockFor(this.o.scratchDir).clear());
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.killTimer) clearInterval(this.killTimer);
    await step('mark exited', () => withTimeout('marking the executor exited', 5000, this.redis.hset(this.key, F.state, 'exited' satisfies ExecutorState, 'exitedAt', String(Date.now()), 'exitReason', reason)));
    await step('quit redis', () => withTimeout('closing Redis', 2000, this.redis.quit()));
    this.redis.disconnect();
    this.log.info({ reason }, 'executor stopped');
    this.resolveFinished(reason);
    return reason;
  }
}

/** Whether the executor may start containers held at all (heldStarts true or auto). */
function mayHold(o: ExecutorOptions): boolean {
  return o.heldStarts === true || o.heldStarts === 'auto';
}

