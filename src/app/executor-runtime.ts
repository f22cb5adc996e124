/**
 * The executor side of the framework as the coordinator sees it: how a new
 * executor becomes a Mesos TaskInfo (with its own Redis ACL user, never a
 * cluster-wide credential), how attempts reach its queue, and how results and
 * executor losses come back.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { Redis as RedisClient } from 'ioredis';
import type { Clock } from '../core/clock.js';
import { formatMiB } from '../core/units.js';
import type { Logger } from '../obs/log.js';
import { Queue } from 'bullmq';
import { CANCELLED_REASON, QUEUE_PREFIX, executorBatchIndexKey, executorKey, executorQueueName, prefetchDepth, type AttemptPayload, type AttemptResult } from '../executor/contract.js';
import type { CommandInfo, ContainerInfo, TaskInfo } from '../mesos/types.js';
import { Dispatcher } from '../scheduler/dispatch.js';
import { ExecutorProvisioner } from '../scheduler/executor-registry.js';
import type { AttemptDispatch, ExecutorLauncher } from '../scheduler/coordinator.js';
import type { FrameworkSettings } from './config.js';
import { executorStorageConfig } from './data-plane.js';

/** What the coordinator and the app get. */
export interface ExecutorRuntime {
  readonly launcher: ExecutorLauncher;
  readonly dispatch: AttemptDispatch;
  onResult(cb: (result: AttemptResult, executorId: string) => Promise<void>): void;
  onExecutorLost(cb: (executorId: string, message: string) => Promise<void>): void;
  /** An attempt started running (with its sandbox when the executor reports it). */
  onRunning(cb: (taskId: string, attemptId: string, sandboxDir: string | undefined) => Promise<void>): void;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Inputs of the runtime. */
export interface ExecutorRuntimeOptions {
  readonly settings: FrameworkSettings;
  readonly redis: Redis;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Directory executors commit outputs into (mounted read-write into local executors). */
  readonly outputRoot: string;
  /** The directory of each host's own outputs with `shared-outputs: false` (default: the settings' `host-output-dir`). */
  readonly hostOutputRoot?: string;
  /** The scheduler's fenced connection: finished queue jobs are removed through it once recorded (Dispatcher.acknowledge). */
  readonly fenced?: Redis;
  /** How long finished, recorded queue jobs stay before removal (Dispatcher's keepRecordedMs; benchmarks). */
  readonly keepRecordedQueueJobsMs?: number;
}

/**
 * How long an executor has to register its queue once Mesos reports its task running (ready() is
 * called then); attempts queued for it wait that long after it, however long the launch took.
 */
const REGISTRATION_TIMEOUT_MS = 60_000;
/** For how long after the wait starts, and after the executor's task runs, the registration is polled quickly (see ensureWatched). */
const REGISTRATION_FAST_POLL_FOR_MS = 5_000;

/** How long an executor has between SIGTERM and SIGKILL (its TaskInfo kill_policy). */
export const EXECUTOR_KILL_GRACE_MS = 35_000;

/**
 * The executor's libuv thread pool (UV_THREADPOOL_SIZE): every filesystem call of an attempt's
 * set-up and commit (a dozen, three of them fsyncs) is one job of that pool. libuv's default 4
 * threads queue a few slots' calls behind each other; but past a few threads per core each call
 * costs more than it saves: a job given to an idle thread wakes it (a context switch), and the
 * threads contend on the pool's one lock. With 64 threads a profile of the executor (perf, dispatch
 * benchmark) had a third of its samples in the kernel's context switches and futex waits, and
 * half its CPU in pool threads. Busy threads take the next job without sleeping, so a smaller
 * pool costs fewer switches: at most 16 (the executor turns bound the attempts in set-up or
 * commit at once to 32, each with one call outstanding). The gain is small: an executor alone
 * (4,000 no-op attempts with commit and ledger, 160 slots, three alternations at load 7-12) spent
 * 1.89, 1.90 and 2.95 ms of CPU per attempt with 64 threads against 1.78, 1.90 and 2.70 with 16
 * (37 and 35 voluntary context switches per attempt); 8 threads cut the switches to 22 but not
 * clearly the CPU (1.61, 2.50, 2.57 ms). Most switches are the calls themselves, one hand-off
 * to the pool and one back per call, whatever its size.
 */
export function executorThreadPoolSize(slots: number): number {
  return Math.min(16, Math.max(4, slots * 2));
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Build the runtime on the dispatcher and the ACL provisioner. */
export async function createExecutorRuntime(o: ExecutorRuntimeOptions): Promise<ExecutorRuntime> {
  const { settings, logger } = o;
  // Outputs are written by workloads running as an unprivileged user: the root is
  // world-writable with the sticky bit, like /tmp, so attempts cannot remove each other's files.
  mkdirSync(o.outputRoot, { recursive: true });
  chmodSync(o.outputRoot, 0o1777);
  const provisioner = new ExecutorProvisioner(o.redis, logger);
  const dispatcher = new Dispatcher({
    connect: () => new RedisClient(settings.redis, { maxRetriesPerRequest: null }),
    clock: o.clock,
    logger,
    ...(o.fenced === undefined ? {} : { fenced: o.fenced }),
    ...(o.keepRecordedQueueJobsMs === undefined ? {} : { keepRecordedMs: o.keepRecordedQueueJobsMs }),
  });
  const redisUrl = new URL(settings.redis);
  // The executor gets the address only; its user and password are its own.
  const bareRedis = `${redisUrl.protocol}//${redisUrl.hostname}:${redisUrl.port || '6379'}${redisUrl.pathname === '/' ? '' : redisUrl.pathname}`;
  let resultCb: ((result: AttemptResult, executorId: string) => Promise<void>) | undefined;
  let lostCb: ((executorId: string, message: string) => Promise<void>) | undefined;
  let runningCb: ((taskId: string, attemptId: string, sandboxDir: string | undefined) => Promise<void>) | undefined;
  const readyWaits = new Map<string, Promise<void>>();
  /** Executors whose registration is being polled for, and those of them retired meanwhile (the poll stops). */
  const polling = new Set<string>();
  const retiredWhileWaited = new Set<string>();
  /**
   * When Mesos reported each awaited executor's task running. The registration timeout runs from
   * then: before it, the agent may still be fetching the executor or pulling its image (minutes on
   * a slow registry), and an executor killed for that would be counted as one that cannot start.
   */
  const runningSince = new Map<string, number>();

  dispatcher.on((e) => {
    switch (e.type) {
      case 'result':
        // Once recorded, the result's queue job may go (Dispatcher.acknowledge); a result that
        // could not be recorded keeps it for the reconcile.
        if (resultCb) void resultCb(e.result, e.executorId).then(() => dispatcher.acknowledge(e.result.attemptId), (err: unknown) => logger.error({ err: String(err) }, 'recording a result failed'));
        return;
      case 'executor-lost':
        if (lostCb) void lostCb(e.executorId, `executor ${e.reason.toLowerCase().replace(/_/g, ' ')}`).catch((err: unknown) => logger.error({ err: String(err) }, 'handling a lost executor failed'));
        return;
      case 'running':
      case 'progress':
        if (runningCb && e.progress.sandboxDir !== undefined) {
          void runningCb(e.taskId, e.progress.attemptId, e.progress.sandboxDir).catch((err: unknown) => logger.warn({ err: String(err) }, 'recording a running attempt failed'));
        }
        return;
      default:
        return;
    }
  });

  // Executors register in Redis shortly after Mesos starts them; attempts can only be queued once
  // the dispatcher watches them, so enqueue waits for the registration: until the executor ends
  // (retire), or for REGISTRATION_TIMEOUT_MS once Mesos reported it running. Every job that
  // finds no warm executor waits here: the first seconds are polled every 10 ms (a start takes
  // 0.3-0.5 s, and polls 100 ms apart added 50 ms to it on average), later ones every 100 ms.
  const ensureWatched = (executorId: string): Promise<void> => {
    const existing = readyWaits.get(executorId);
    if (existing) return existing;
    const p = (async () => {
      const since = o.clock.now();
      polling.add(executorId);
      try {
        for (;;) {
          try {
            await dispatcher.watchExecutor(executorId);
            return;
          } catch (err) {
            // Gone before it registered (its task ended, it was released): polling Redis for the
            // rest of the timeout would be for nothing, for every executor that failed to start.
            if (retiredWhileWaited.has(executorId)) throw new Error(`executor ${executorId} was retired before it registered`);
            const now = o.clock.now();
            // Not running yet: no deadline (its end, whichever, retires it and stops this wait).
            const running = runningSince.get(executorId);
            if (running !== undefined && now - running > REGISTRATION_TIMEOUT_MS) throw err;
            // The registration follows the process's start closely: polled quickly again once
            // Mesos says it runs, after a launch that outlasted the first quick polls.
            const fastFrom = Math.max(since, running ?? since);
            await new Promise((r) => setTimeout(r, now - fastFrom < REGISTRATION_FAST_POLL_FOR_MS ? 10 : 100));
          }
        }
      } finally {
        polling.delete(executorId);
        retiredWhileWaited.delete(executorId);
        runningSince.delete(executorId);
      }
    })();
    readyWaits.set(executorId, p);
    p.catch(() => readyWaits.delete(executorId));
    return p;
  };

  const launcher: ExecutorLauncher = {
    async taskInfo(launch, offer, resources) {
      dispatcher.prepareExecutor(launch.executorId);
      const creds = await provisioner.create(launch.executorId);
      const flags = [
        '--executor-id', launch.executorId,
        '--agent-id', launch.agentId,
        '--hostname', launch.hostname,
        '--slots', String(launch.slots),
        ...(settings.executorPrefetch ? ['--prefetch', String(prefetchDepth(launch.slots))] : []),
        // auto is the executor's own default: no flag, which an executor older than `auto` (from
        // executor-uri or executor-image) also takes.
        ...(settings.executorPrefetch && settings.executorHeldStarts !== 'auto' ? ['--held-starts', settings.executorHeldStarts ? 'on' : 'off'] : []),
        // Unset: the executor's own default, and no flag an older executor would refuse.
        ...(settings.executorKeptSandboxes === undefined ? [] : ['--kept-sandboxes', String(settings.executorKeptSandboxes)]),
        '--slot-cpus', String(launch.slotResources.cpus),
        '--slot-mem', formatMiB(launch.slotResources.mem),
        '--slot-disk', formatMiB(launch.slotResources.disk),
        '--redis-url', bareRedis,
        '--redis-user', creds.username,
        '--isolation', settings.isolation,
        '--runner', settings.executorRunner,
        // A safety net only: the scheduler releases idle executors itself.
        '--idle-timeout', '30m',
        // Where storage is on that host (mounts, datasets, outputs, block server); no secrets.
        '--storage-config', JSON.stringify(await executorStorageConfig(settings, launch.hostname, o.outputRoot, o.hostOutputRoot)),
        '--drain-grace', `${Math.floor(EXECUTOR_KILL_GRACE_MS / 1000) - 5}s`,
      ];
      const environment = {
        variables: [
          // Never the password itself: a genuine agent shows a task's environment on its
          // unauthenticated state endpoints. The token is worthless once redeemed.
          { name: 'LOCUS_REDIS_BOOT_TOKEN', value: creds.bootToken },
          { name: 'UV_THREADPOOL_SIZE', value: String(executorThreadPoolSize(launch.slots)) },
        ],
      };
      let command: CommandInfo;
      let container: ContainerInfo | undefined;
      switch (settings.executor.kind) {
        case 'local':
          // No ContainerInfo: a genuine agent under its default `filesystem/posix` isolator fails
          // any command task whose ContainerInfo has volumes ("Volumes in ContainerInfo is not
          // supported"). Without an image, every Mesos filesystem isolator shows the executor the
          // host's filesystem, so the installation and the output root are reachable as they are.
          command = { shell: false, value: settings.executor.nodePath, arguments: [settings.executor.nodePath, settings.executor.mainJs, 'executor', ...flags], environment };
          break;
        case 'uri':
          command = { shell: true, value: `${settings.executor.command} ${flags.map(shellQuote).join(' ')}`, uris: [{ value: settings.executor.uri, extract: true, cache: true }], environment };
          break;
        case 'image':
          command = { shell: true, value: `locus executor ${flags.map(shellQuote).join(' ')}`, environment };
          container = { type: 'MESOS', mesos: { image: { type: 'DOCKER', docker: { name: settings.executor.image } } } };
          break;
      }
      logger.info({ executorId: launch.executorId, host: offer.hostname, slots: launch.slots }, 'prepared executor launch');
      return {
        name: `locus executor ${launch.executorId}`,
        task_id: { value: launch.executorId },
        agent_id: { value: launch.agentId },
        resources: [...resources],
        command,
        ...(container ? { container } : {}),
        // The executor drains on SIGTERM (running attempts finish or are handed back); the
        // default 3 s before SIGKILL would cut that short.
        kill_policy: { grace_period: { nanoseconds: EXECUTOR_KILL_GRACE_MS * 1_000_000 } },
        labels: { labels: [{ key: 'locus.executor', value: 'true' }, ...(launch.tenant ? [{ key: 'locus.tenant', value: launch.tenant }] : [])] },
      } satisfies TaskInfo;
    },
    ready: async (executorId) => {
      if (!runningSince.has(executorId)) runningSince.set(executorId, o.clock.now());
      try {
        await ensureWatched(executorId);
      } finally {
        // Registered (or given up on) already when its task was reported running: nothing to time.
        runningSince.delete(executorId);
      }
      // Registered, so its password was redeemed: the one-time user is no longer needed.
      await provisioner.retireBootUser(executorId).catch((err: unknown) => logger.warn({ err: String(err), executorId }, 'removing the executor boot user failed'));
    },
    async retire(executorId) {
      readyWaits.delete(executorId);
      runningSince.delete(executorId);
      if (polling.has(executorId)) retiredWhileWaited.add(executorId);
      dispatcher.forgetExecutor(executorId);
      // Fence it first (its user is gone, so it can neither take nor finish work), then drop
      // its queue, event stream and registration: a dead queue never cleans itself up.
      await provisioner.remove(executorId).catch((err: unknown) => logger.warn({ err: String(err), executorId }, 'removing the executor ACL user failed'));
      const queue = new Queue(executorQueueName(executorId), { connection: o.redis, prefix: QUEUE_PREFIX });
      try {
        await queue.obliterate({ force: true });
        await o.redis.del(executorKey(executorId), executorBatchIndexKey(executorId));
      } catch (err) {
        logger.warn({ err: String(err), executorId }, 'removing the executor queue failed');
      } finally {
        await queue.close().catch(() => undefined);
      }
    },
  };

  // Attempts for an executor that has not registered yet wait here (placement may hand work to a
  // launching executor); they go out as soon as it registers, or come back LOST if it never does.
  const waiting = new Map<string, AttemptPayload[]>();
  const flush = (executorId: string): void => {
    if (waiting.has(executorId)) return;
    waiting.set(executorId, []);
    const lose = async (list: readonly AttemptPayload[], err: unknown): Promise<void> => {
      logger.warn({ executorId, attempts: list.length, err: String(err) }, 'attempts that could not reach their executor come back as lost');
      for (const p of list) {
        const now = o.clock.now();
        await resultCb?.({
          attemptId: p.attemptId, taskId: p.taskId, state: 'LOST', exitCode: null, reason: 'EXECUTOR_LOST',
          message: `could not queue on executor ${executorId}: ${String(err)}`, startedAt: now, finishedAt: now, host: '',
        }, executorId);
      }
    };
    ensureWatched(executorId).then(async () => {
      const list = waiting.get(executorId) ?? [];
      waiting.delete(executorId);
      // Taken out of `waiting` before the await: a failure must still report exactly these.
      if (list.length > 0) await dispatcher.dispatchMany(list.map((payload) => ({ executorId, payload }))).catch((err: unknown) => lose(list, err));
    }, async (err: unknown) => {
      const list = waiting.get(executorId) ?? [];
      waiting.delete(executorId);
      await lose(list, err);
    }).catch((err: unknown) => logger.error({ err: String(err) }, 'reporting lost attempts failed'));
  };

  const dispatch: AttemptDispatch = {
    async enqueueMany(executorId, payloads) {
      if (dispatcher.watchedExecutors().includes(executorId) && !waiting.has(executorId)) {
        await dispatcher.dispatchMany(payloads.map((payload) => ({ executorId, payload })));
        return;
      }
      flush(executorId);
      waiting.get(executorId)?.push(...payloads);
    },
    async adopt(executorId, payload) {
      await dispatcher.adopt(executorId, payload);
    },
    contractOf(executorId) {
      return dispatcher.contractOf(executorId);
    },
    prefetch(executorId) {
      return dispatcher.prefetchOf(executorId);
    },
    async cancel(executorId, attemptId) {
      // An attempt still buffered for an executor that has not registered never reaches it:
      // it ends here, KILLED, so its task and slot are settled like any other.
      const buffered = waiting.get(executorId);
      const i = buffered ? buffered.findIndex((p) => p.attemptId === attemptId) : -1;
      const held = buffered && i >= 0 ? buffered.splice(i, 1)[0] : undefined;
      if (held) {
        const now = o.clock.now();
        await resultCb?.({
          attemptId, taskId: held.taskId, state: 'KILLED', exitCode: null, reason: CANCELLED_REASON,
          message: 'never sent to its executor: its job was cancelled', startedAt: now, finishedAt: now, host: '',
        }, executorId);
        return;
      }
      // Queued or running: the dispatcher takes it off the queue or has the executor kill it.
      const how = await dispatcher.kill(executorId, attemptId);
      logger.info({ executorId, attemptId, how }, 'cancelled attempt killed');
    },
  };

  return {
    launcher,
    dispatch,
    onResult(cb) { resultCb = cb; },
    onExecutorLost(cb) { lostCb = cb; },
    onRunning(cb) { runningCb = cb; },
    async start() { await dispatcher.start(); },
    async close() { await dispatcher.close(); },
  };
}
