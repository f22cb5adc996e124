/**
 * `locus executor`: the long-lived executor process Locus launches on an
 * agent. Identity comes from flags or the environment the agent and the
 * scheduler provide (MESOS_AGENT_ENDPOINT, MESOS_CONTAINER_ID, MESOS_SANDBOX,
 * LOCUS_* for every flag); the Redis credentials are the executor's own ACL
 * user, never a cluster-wide one.
 */
import { chmod, mkdtemp, readFile, stat } from 'node:fs/promises';
import { hostname as osHostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { LocusError } from '../../core/errors.js';
import { parseDurationMs, parseSizeMiB } from '../../core/units.js';
import type { SplitReader } from '../../executor/attempt.js';
import { Executor } from '../../executor/executor.js';
import { createIsolator } from '../../executor/isolation/index.js';
import type { IsolationMode } from '../../executor/isolation/types.js';
import { AgentRunner, HostPathRunner, IsolatorRunner, NoopRunner, PreferAgentRunner, type AttemptRunner } from '../../executor/runner.js';
import { DEFAULT_KEPT_SANDBOXES } from '../../executor/sandbox-retention.js';
import { AgentClient } from '../../mesos/agent.js';
import { DEFAULT_TENANT_UIDS, parseTenantUids, type TenantUidRange } from '../../executor/isolation/tenant.js';
import { PREFETCH_HOLD_MS } from '../../executor/contract.js';
import { redeemBootToken } from '../../executor/boot-token.js';
import { createLogger, type Logger } from '../../obs/log.js';
import { startDataPlane, type RunningDataPlane } from '../../executor/data-plane-setup.js';
import { decodeExecutorStorageConfig } from '../../storage/executor-config.js';
import { CliUsageError, intFlag, parseCommand, required } from '../args.js';

const HELP = `usage: locus executor [options]

Run a Locus executor: consume this executor's BullMQ queue and run every
attempt in an isolated (nested) container. Every flag also reads LOCUS_<FLAG>.

  --executor-id ID        this executor's id (required)
  --agent-id ID           the agent it runs on (default MESOS_AGENT_ID)
  --hostname NAME         the agent's hostname (default: this host's)
  --slots N               attempts run at once (default 1)
  --prefetch N            attempts taken beyond the slots and held prepared for the next slot
                          to free; one that waits longer than --prefetch-hold is handed back
                          (LOST, HANDED_BACK). Without held starts at most a quarter of the
                          slots (1 to 8) is kept. The framework sets it for its executors
                          (default 0: none)
  --prefetch-hold DUR     how long a prefetched attempt waits for a slot before it is handed
                          back (default 1s)
  --held-starts on|off|auto
                          start a prefetched attempt's container while it waits for its slot,
                          held before the workload runs, and release it when the slot frees
                          (where the runner allows it: the local agent, or the executor's own
                          containers). Costs CPU per task; auto (the default): only while the
                          host's CPUs were idle at least 30% lately. The framework's
                          executor-held-starts setting passes on or off when it is not auto
  --slot-cpus N           cpus per slot (default 1)
  --slot-mem SIZE         memory per slot (default 256MiB)
  --slot-disk SIZE        disk per slot (default 0: no limit)
  --redis-url URL         Redis (default redis://127.0.0.1:6379)
  --redis-user NAME       this executor's own Redis ACL user
  --redis-password PW     its password (prefer --redis-password-file)
  --redis-password-file F read the password from a file
                          (LOCUS_REDIS_BOOT_TOKEN: a one-time token redeemed for the password)
  --agent-endpoint H:P    the agent's operator API (default MESOS_AGENT_ENDPOINT)
  --container-id ID       this executor's container (default MESOS_CONTAINER_ID, else looked
                          up on the agent by MESOS_FRAMEWORK_ID and MESOS_EXECUTOR_ID)
  --sandbox DIR           sandbox root (default MESOS_SANDBOX, else a temp dir)
  --isolation MODE        auto | linux | process, when running attempts itself (default auto)
  --runner KIND           auto | agent | isolator | noop (noop: benchmarks only; default auto)
  --idle-timeout DUR      exit after this long without attempts (default 0: never)
  --kept-sandboxes N      keep the sandboxes (stdout, stderr) of the N most recently ended
                          attempts and remove older ones, through the agent for nested
                          containers (default 1000; 0: keep all until the executor's own
                          sandbox goes)
  --drain-grace DUR       on SIGTERM, let running attempts finish this long (default 30s)
  --kill-grace DUR        SIGTERM-to-SIGKILL grace when killing an attempt (default 2s)
  --heartbeat DUR         heartbeat interval (default 2s)
  --lock-duration DUR     BullMQ job lock (default 30s)
  --stalled-interval DUR  BullMQ stalled-job check (default 30s)
  --tenant-uids RANGE     run each tenant's attempts under its own uid from FIRST-LAST, and close
                          its output directory to others (default 200000-265535; off: all
                          attempts run as the default user)
  --storage-config JSON   storage on this host, from the framework (mounts, WebHDFS, Ceph,
                          dataset and output directories, block server); enables the block
                          server and the Redis commit ledger. No secrets: those are read from Redis
`;

const OPTIONS = {
  'executor-id': { type: 'string' },
  'agent-id': { type: 'string' },
  hostname: { type: 'string' },
  slots: { type: 'string' },
  prefetch: { type: 'string' },
  'prefetch-hold': { type: 'string' },
  'held-starts': { type: 'string' },
  'slot-cpus': { type: 'string' },
  'slot-mem': { type: 'string' },
  'slot-disk': { type: 'string' },
  'redis-url': { type: 'string' },
  'redis-user': { type: 'string' },
  'redis-password': { type: 'string' },
  'redis-password-file': { type: 'string' },
  'agent-endpoint': { type: 'string' },
  'container-id': { type: 'string' },
  sandbox: { type: 'string' },
  isolation: { type: 'string' },
  runner: { type: 'string' },
  'idle-timeout': { type: 'string' },
  'kept-sandboxes': { type: 'string' },
  'drain-grace': { type: 'string' },
  'kill-grace': { type: 'string' },
  heartbeat: { type: 'string' },
  'lock-duration': { type: 'string' },
  'stalled-interval': { type: 'string' },
  'storage-config': { type: 'string' },
  'tenant-uids': { type: 'string' },
} as const;

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

function duration(v: string | undefined, flag: string, fallback: number): number {
  if (v === undefined) return fallback;
  try {
    return parseDurationMs(v, `--${flag}`);
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
}

function size(v: string | undefined, flag: string, fallback: number): number {
  if (v === undefined) return fallback;
  try {
    return parseSizeMiB(v, `--${flag}`);
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
}

interface RunnerChoice {
  readonly runner: string;
  readonly isolation: IsolationMode;
  readonly endpoint: string | undefined;
  readonly containerId: string | undefined;
  readonly frameworkId: string | undefined;
  readonly mesosExecutorId: string | undefined;
  readonly bearerToken: string | undefined;
  readonly sandbox: string;
  /** Ended attempts' sandboxes kept (sandbox-retention.ts); 0 keeps all. */
  readonly keptSandboxes: number;
}

/**
 * Which runner starts attempts. Nested containers through the agent are preferred only where the
 * agent isolates their filesystem (`filesystem/linux`): under the default `filesystem/posix` a
 * genuine agent silently ignores a nested container's volumes and gives it the host's filesystem,
 * so the executor isolates attempts itself. A genuine agent never tells a command task its
 * container id, so it is looked up (GET_CONTAINERS) by framework and executor id.
 */
async function chooseRunner(v: RunnerChoice, logger: Logger): Promise<AttemptRunner> {
  const isolated = async (): Promise<AttemptRunner> => new IsolatorRunner(await createIsolator(v.isolation, logger), v.sandbox, undefined, v.keptSandboxes, logger);
  if (v.runner === 'noop') {
    logger.warn('runner noop: attempts are NOT run (benchmark mode)');
    return new NoopRunner(v.sandbox);
  }
  if (v.runner === 'isolator') return isolated();
  if (v.endpoint === undefined) {
    if (v.runner === 'agent') throw new CliUsageError('--runner agent needs --agent-endpoint (MESOS_AGENT_ENDPOINT)');
    logger.warn('no agent endpoint (MESOS_AGENT_ENDPOINT): running attempts as isolated children of the executor');
    return isolated();
  }
  const client = new AgentClient(v.endpoint, v.bearerToken !== undefined ? { bearerToken: v.bearerToken } : {});
  let containerId = v.containerId;
  if (containerId === undefined && v.frameworkId !== undefined && v.mesosExecutorId !== undefined) {
    containerId = await client.findExecutorContainer(v.frameworkId, v.mesosExecutorId).catch((err: unknown) => {
      logger.warn({ err: String(err) }, 'could not look up this executor\'s container on its agent');
      return undefined;
    });
  }
  if (containerId === undefined) {
    if (v.runner === 'agent') throw new CliUsageError('--runner agent needs this executor\'s container id (--container-id, or MESOS_FRAMEWORK_ID and MESOS_EXECUTOR_ID to look it up)');
    logger.warn('this executor\'s container is unknown: running attempts as isolated children of the executor');
    return isolated();
  }
  const flags = await client.flags().catch(() => undefined);
  const local = flags?.['locus_local'] === 'true';
  const isolation = flags?.['isolation'];
  const filesystemLinux = isolation?.split(',').includes('filesystem/linux');
  const agent = new AgentRunner(client, containerId, v.sandbox, local, local && filesystemLinux === true, v.keptSandboxes, logger);
  if (v.runner === 'agent') return agent;
  if (filesystemLinux === false) {
    logger.info({ agentIsolation: isolation }, 'the agent does not isolate nested containers\' filesystems: attempts run in the executor\'s own containers');
    return isolated();
  }
  return new PreferAgentRunner(agent, isolated, logger);
}

/** Entry point of `locus executor`. */
export async function run(argv: string[]): Promise<number> {
  // A stop asked for while starting up ends the process at once: nothing has been taken yet.
  // Without a handler, a container's pid 1 (bubblewrap's --as-pid-1, an image's entrypoint)
  // ignores SIGTERM, and the agent's kill would wait out the whole kill-policy grace.
  const stopWhileStarting = (): void => {
    process.stderr.write('locus: executor stopped while starting\n');
    process.exit(143);
  };
  process.on('SIGTERM', stopWhileStarting);
  process.on('SIGINT', stopWhileStarting);
  const parsed = parseCommand(argv, OPTIONS, HELP, false);
  if (!parsed) return 0;
  const v = parsed.values;
  const executorId = required(v['executor-id'], 'executor-id');
  const isolation = v.isolation ?? 'auto';
  if (isolation !== 'auto' && isolation !== 'linux' && isolation !== 'process') throw new CliUsageError(`--isolation must be auto, linux or process, got '${isolation}'`);
  const runnerKind = v.runner ?? 'auto';
  if (!['auto', 'agent', 'isolator', 'noop'].includes(runnerKind)) throw new CliUsageError(`--runner must be auto, agent, isolator or noop, got '${runnerKind}'`);
  const slots = intFlag(v.slots, 'slots', 1, 1);
  const prefetch = intFlag(v.prefetch, 'prefetch', 0, 0);
  const keptSandboxes = intFlag(v['kept-sandboxes'], 'kept-sandboxes', DEFAULT_KEPT_SANDBOXES, 0);
  const heldStarts = v['held-starts'] ?? 'auto';
  if (heldStarts !== 'on' && heldStarts !== 'off' && heldStarts !== 'auto') throw new CliUsageError(`--held-starts must be on, off or auto, got '${heldStarts}'`);
  let tenantUids: TenantUidRange | undefined;
  try {
    tenantUids = v['tenant-uids'] === undefined ? DEFAULT_TENANT_UIDS : parseTenantUids(v['tenant-uids'], '--tenant-uids');
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
  const slotCpus = v['slot-cpus'] !== undefined ? Number(v['slot-cpus']) : 1;
  if (!Number.isFinite(slotCpus) || slotCpus <= 0) throw new CliUsageError(`--slot-cpus must be a positive number, got '${v['slot-cpus'] ?? ''}'`);
  let password = v['redis-password'];
  if (v['redis-password-file'] !== undefined) password = (await readFile(v['redis-password-file'], 'utf8')).trim();
  const redisUrl = v['redis-url'] ?? 'redis://127.0.0.1:6379';
  const user = v['redis-user'];
  const bootToken = env('LOCUS_REDIS_BOOT_TOKEN');
  if (password === undefined && bootToken !== undefined && user === undefined) throw new CliUsageError('LOCUS_REDIS_BOOT_TOKEN needs --redis-user');
  const sandbox = v.sandbox ?? env('MESOS_SANDBOX') ?? (await mkdtemp(join(tmpdir(), `locus-executor-${executorId}-`)));
  // A genuine agent makes the sandbox 0750 root: attempts this executor runs as the unprivileged
  // workload user could not reach the inputs it prepares under it (scratch, earlier stages'
  // outputs). Traversal only (o+x), not listing.
  await stat(sandbox).then((st) => chmod(sandbox, (st.mode & 0o7777) | 0o001)).catch(() => undefined);
  const logger = createLogger('locus-executor');

  const connect = (): Redis => {
    const r = new Redis(redisUrl, {
      maxRetriesPerRequest: null,
      ...(user !== undefined ? { username: user } : {}),
      ...(password !== undefined ? { password } : {}),
      // Keep retrying through a Redis restart; BullMQ resumes by itself.
      retryStrategy: (times) => Math.min(times * 100, 2000),
    });
    r.on('error', () => undefined);
    return r;
  };

  // The data plane (storage readers, block server, commit ledger) when the framework sent a
  // storage configuration; without one, attempts read through unconfigured backends as before.
  const storageText = v['storage-config'] ?? env('LOCUS_STORAGE_CONFIG');
  // Redis (the password from the bootstrap token, then the data plane) and the agent (which
  // runner) are asked at the same time: each is a few round trips, and a job that finds no warm
  // executor waits for all of them.
  // A runner that cannot be had ends the start at once, not after a wait for Redis.
  const agentFailed = new AbortController();
  const redisSide = (async (): Promise<{ plane: RunningDataPlane; redis: Redis } | undefined> => {
    if (password === undefined && bootToken !== undefined && user !== undefined) password = await redeemBootToken(redisUrl, user, executorId, bootToken, { signal: agentFailed.signal });
    if (storageText === undefined) return undefined;
    const redis = connect();
    try {
      return { plane: await startDataPlane({ config: decodeExecutorStorageConfig(storageText), redis, logger }), redis };
    } catch (err) {
      redis.disconnect();
      throw err;
    }
  })();
  const agentSide = chooseRunner({
    runner: runnerKind, isolation, endpoint: v['agent-endpoint'] ?? env('MESOS_AGENT_ENDPOINT'), containerId: v['container-id'] ?? env('MESOS_CONTAINER_ID'),
    frameworkId: env('MESOS_FRAMEWORK_ID'), mesosExecutorId: env('MESOS_EXECUTOR_ID'), bearerToken: env('MESOS_EXECUTOR_AUTHENTICATION_TOKEN'), sandbox,
    keptSandboxes,
  }, logger);
  agentSide.catch(() => agentFailed.abort());
  const [redisDone, agentDone] = await Promise.allSettled([redisSide, agentSide]);
  if (redisDone.status === 'rejected' || agentDone.status === 'rejected') {
    if (agentDone.status === 'fulfilled') await agentDone.value.close().catch(() => undefined);
    if (redisDone.status === 'fulfilled' && redisDone.value !== undefined) {
      await redisDone.value.plane.close().catch(() => undefined);
      redisDone.value.redis.disconnect();
    }
    // A usage error in the runner's flags is the one to fix first.
    throw agentDone.status === 'rejected' ? agentDone.reason : (redisDone as PromiseRejectedResult).reason;
  }
  const chosen = agentDone.value;
  const dataPlane = redisDone.value?.plane;
  const dataPlaneRedis = redisDone.value?.redis;
  // MESOS_DIRECTORY is the sandbox's host path; it differs from MESOS_SANDBOX inside an image.
  const hostSandbox = env('MESOS_DIRECTORY');
  const runner: AttemptRunner = hostSandbox !== undefined && hostSandbox !== sandbox ? new HostPathRunner(chosen, sandbox, hostSandbox) : chosen;
  let registry: { read(uri: string, offset: number, length: number): Promise<NodeJS.ReadableStream> } | undefined;
  const splitReader: SplitReader = async (uri, offset, length) => {
    if (!registry) {
      const { createStorageRegistry } = await import('../../storage/registry.js');
      registry = createStorageRegistry({});
    }
    return registry.read(uri, offset, length);
  };

  let executor: Executor;
  try {
    executor = await Executor.start({
      executorId,
      agentId: v['agent-id'] ?? env('MESOS_AGENT_ID') ?? 'none',
      hostname: v.hostname ?? osHostname(),
      slots,
      prefetch,
      prefetchHoldMs: duration(v['prefetch-hold'], 'prefetch-hold', PREFETCH_HOLD_MS),
      heldStarts: heldStarts === 'auto' ? 'auto' : heldStarts === 'on',
      slotResources: { cpus: slotCpus, memMiB: size(v['slot-mem'], 'slot-mem', 256), diskMiB: size(v['slot-disk'], 'slot-disk', 0) },
      connect,
      runner,
      logger,
      scratchDir: join(sandbox, 'scratch'),
      splitReader,
      ...(dataPlane === undefined ? {} : { dataPlane: dataPlane.dataPlane }),
      heartbeatMs: duration(v.heartbeat, 'heartbeat', 2000),
      idleTimeoutMs: duration(v['idle-timeout'], 'idle-timeout', 0),
      drainGraceMs: duration(v['drain-grace'], 'drain-grace', 30_000),
      killGraceMs: duration(v['kill-grace'], 'kill-grace', 2000),
      ...(tenantUids !== undefined ? { tenantUids } : {}),
      lockDurationMs: duration(v['lock-duration'], 'lock-duration', 30_000),
      stalledIntervalMs: duration(v['stalled-interval'], 'stalled-interval', 30_000),
    });
  } catch (err) {
    await runner.close().catch(() => undefined);
    await dataPlane?.close();
    dataPlaneRedis?.disconnect();
    if (err instanceof LocusError) throw err;
    throw new LocusError('UNAVAILABLE', `executor ${executorId} could not start: ${(err as Error).message}`, { cause: err });
  }
  process.stderr.write(`locus: executor ${executorId} running (${slots} slots, runner ${executor.runnerKind})\n`);
  const onSignal = (sig: NodeJS.Signals): void => {
    logger.info({ signal: sig }, 'signal received: draining');
    void executor.drain('signal');
  };
  process.off('SIGTERM', stopWhileStarting);
  process.off('SIGINT', stopWhileStarting);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const reason = await executor.finished;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  await dataPlane?.close();
  dataPlaneRedis?.disconnect();
  process.stderr.write(`locus: executor ${executorId} stopped (${reason})\n`);
  // Stray handles (a Redis reconnect timer) must not keep a drained executor alive.
  setTimeout(() => process.exit(0), 200).unref();
  return 0;
}
