/**
 * The composition root of the framework: wires Redis, storage, jobs,
 * volumes, executors, the coordinator, the Mesos client and the HTTP and
 * gRPC APIs, and stops them in reverse order. `locus framework` runs this on
 * an existing master; `locus up` runs it on the embedded local cluster.
 */
import { redisAddress } from '../core/redis-address.js';
import { startJobRetention } from '../scheduler/jobs/retention.js';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { systemClock, type Clock } from '../core/clock.js';
import { newToken } from '../core/ids.js';
import { LocusError } from '../core/errors.js';
import type { Logger } from '../obs/log.js';
import { createMetrics, type LocusMetrics } from '../obs/metrics.js';
import { SchedulerClient } from '../mesos/client.js';
import { isObject } from '../core/decode.js';
import { buildFrameworkInfo } from '../mesos/calls.js';
import { createStorageRegistry, type StorageRegistry } from '../storage/registry.js';
import { JobStore } from '../scheduler/jobs/store.js';
import { Fence, fencedRedis } from '../scheduler/fence.js';
import { JobService } from '../scheduler/jobs/service.js';
import { ExecutorBook } from '../scheduler/executors.js';
import { Coordinator, type OfferOperationPlanner, type TenantSetting } from '../scheduler/coordinator.js';
import { VolumeService, type KnownAgent } from '../volumes/service.js';
import { HoldingStore } from '../volumes/store.js';
import { nearResolver } from '../volumes/near.js';
import { Authenticator, loadTenantsFile } from '../api/auth.js';
import { checkTenantIsolation, checkTenantUids } from './tenant-isolation.js';
import { closeStateDirLogged } from '../local/work-dir.js';
import type { TenantsConfig } from '../core/tenants.js';
import { createHttpServer } from '../api/http/server.js';
import { jobsRoutes, cancelJob } from '../api/http/jobs-routes.js';
import { uiRoutes } from '../api/http/ui-routes.js';
import { insightDeps, insightRoutes } from '../api/http/insight-routes.js';
import type { AgentDirectory } from '../api/agents.js';
import { AgentFilesLogReader } from '../api/http/jobs-logs.js';
import type { ClusterView } from '../api/http/jobs-views.js';
import { startGrpcServer, type RunningGrpcServer } from '../api/grpc/server.js';
import { clientDriver } from './driver.js';
import type { FrameworkSettings } from './config.js';
import { createExecutorRuntime, type ExecutorRuntime } from './executor-runtime.js';
import { BlockServerDirectory, cephSettings, hostOutputRoot, outputsShared, prepareHostOutputRoot, prepareLocalDataDirs, publishDataPlaneSecrets } from './data-plane.js';
import { settleOutputPlaces } from './output-places.js';
import type { OutputPlaces } from '../storage/output-layout.js';
import { commitKey, decodeCommittedOutput } from '../executor/contract.js';
import { addHeldFiles, type HeldFile } from '../storage/local/register.js';

/** A running framework. */
export interface RunningFramework {
  readonly httpUrl: string;
  readonly grpcAddress: string;
  readonly adminToken: string;
  readonly jobs: JobService;
  readonly volumes: VolumeService;
  readonly coordinator: Coordinator;
  readonly storage: StorageRegistry;
  readonly metrics: LocusMetrics;
  readonly client: SchedulerClient;
  /** The leadership epoch this framework writes with (fencing; see scheduler/fence.ts). */
  readonly epoch: string;
  /**
   * Resolves (with the reason) when this framework lost the lead: Redis refused one of its
   * writes because a newer leader took an epoch, or it would have re-subscribed without being
   * the leader. It has then stopped acting (coordinator and Mesos client closed); the caller
   * stops the rest and, under `--ha`, exits so its supervisor starts it again as a standby.
   */
  readonly fenced: Promise<string>;
  /** Resolves once subscribed to a master. */
  waitForSubscribed(timeoutMs: number): Promise<void>;
  /**
   * Stop everything; tasks keep running on Mesos until the failover timeout (no TEARDOWN).
   * Bounded: steps still running after `budgetMs` (default 5 s) are abandoned and named in
   * the report, so a stop never hangs on a Redis that is gone.
   */
  stop(options?: { readonly budgetMs?: number }): Promise<StopReport>;
}

/** What a bounded stop could not finish. */
export interface StopReport {
  /** Names of the stop steps that did not finish within the budget (empty: a clean stop). */
  readonly abandoned: readonly string[];
  /** Set when Redis was unreachable at the stop: writes queued for it were dropped. One line for the operator. */
  readonly reason: string | undefined;
}

/** How long a stop may take by default before the rest is abandoned. */
export const DEFAULT_STOP_BUDGET_MS = 5_000;
/** Each step gets at least this long, even past the budget, so later steps (closing Redis) still run. */
const MIN_STEP_MS = 250;

/** Extras the embedding process may hand in. */
export interface FrameworkExtras {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Agents known up front (the local cluster) for the volume size check and /v1/cluster. */
  readonly agents?: () => readonly { id: string; hostname: string; rack?: string; url?: string }[];
  /** How long finished, recorded queue jobs stay in Redis before removal (default: removed at once; benchmarks read them). */
  readonly keepRecordedQueueJobsMs?: number;
}

/** Start the framework with its APIs. */
export async function startFramework(settings: FrameworkSettings, extras: FrameworkExtras): Promise<RunningFramework> {
  const log = extras.logger;
  const clock = extras.clock ?? systemClock;
  const metrics = createMetrics();
  const stops: { name: string; fn: () => Promise<void> | void }[] = [];
  let redisProblem: string | undefined;
  const stopAll = async (budgetMs = DEFAULT_STOP_BUDGET_MS): Promise<StopReport> => {
    // Each step is isolated so one failing clean-up never blocks the rest, and bounded in
    // time: with Redis gone, BullMQ and ioredis wait for a reconnection for ever, and a
    // stop that waits with them ignores SIGTERM in practice.
    const deadline = Date.now() + budgetMs;
    const abandoned: string[] = [];
    for (const s of stops.reverse()) {
      const allowMs = Math.max(MIN_STEP_MS, deadline - Date.now());
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), allowMs);
        timer.unref();
      });
      try {
        const r = await Promise.race([Promise.resolve().then(() => s.fn()).then(() => 'done' as const), timedOut]);
        if (r === 'timeout') {
          abandoned.push(s.name);
          log.warn({ step: s.name, waitedMs: allowMs }, 'stop step did not finish in time; abandoned');
        }
      } catch (err) {
        log.warn({ step: s.name, err: String(err) }, 'stop step failed');
      } finally {
        clearTimeout(timer);
      }
    }
    stops.length = 0;
    return { abandoned, reason: redisProblem };
  };

  try {
    const redis = new Redis(settings.redis, { maxRetriesPerRequest: null, lazyConnect: true });
    redis.on('error', (err: Error) => {
      redisProblem = `Redis at ${redisAddress(settings.redis)} is unreachable (${err.message})`;
      log.warn({ err: err.message }, 'redis connection error');
    });
    redis.on('ready', () => {
      redisProblem = undefined;
      metrics.redisConnected.set(1);
    });
    redis.on('close', () => metrics.redisConnected.set(0));
    try {
      await redis.connect();
    } catch (err) {
      throw new LocusError('UNAVAILABLE', `cannot connect to Redis at ${settings.redis}: ${(err as Error).message}`);
    }
    stops.push({
      name: 'redis',
      fn: async () => {
        // QUIT is queued until a reconnection that may never come: only a ready connection gets one.
        if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
        else redis.disconnect();
      },
    });

    // Leadership epoch: taking one fences every scheduler that held an older one (a paused or
    // partitioned leader, or a second framework started by mistake on the same Redis). Every
    // scheduler write below goes through `fenced`; BullMQ and the executor runtime keep `redis`.
    const fence = new Fence();
    const epoch = await fence.acquire(redis);
    const fenced = fencedRedis(redis, fence);
    let lostLead: (reason: string) => void = () => undefined;
    const lostLeadership = new Promise<string>((resolve) => { lostLead = resolve; });
    log.info({ epoch }, 'took the leadership epoch');

    // Tenants that name no role, and the built-in `default` tenant, take the framework's role:
    // with another `--role` they subscribed as `locus` too, which its ACLs need not allow.
    const tenantsConfig: TenantsConfig = settings.tenantsFile ? await loadTenantsFile(settings.tenantsFile, settings.role) : { tenants: [], defaultRole: settings.role };
    checkTenantIsolation({ isolation: settings.isolation, allowUnisolatedTenants: settings.allowUnisolatedTenants, tenants: tenantsConfig.tenants.length });
    checkTenantUids(tenantsConfig.tenants.map((t) => t.name));
    // Tasks may pass through the state dir to outputs staged beneath it, but never list it or
    // read Locus's files there: where they run without a mount namespace, modes are all that
    // hides it. A state dir an earlier version left open is tightened here.
    closeStateDirLogged(settings.stateDir, { privateFiles: true }, log, 'state dir');
    const adminToken = settings.adminToken ?? newToken();
    const auth = new Authenticator({ config: tenantsConfig, adminToken });
    const tenantRoles = [...new Set([settings.role, ...auth.tenants().map((t) => t.role)])];

    const ceph = cephSettings(settings);
    const storage = createStorageRegistry({
      clock,
      ...(settings.localWorkDir ? { local: { workDir: settings.localWorkDir } } : {}),
      ...(settings.hostMap ? { hostMap: settings.hostMap } : {}),
      ...(ceph === undefined ? {} : { ceph }),
      ...(Object.keys(settings.glusterMounts).length > 0 ? { gluster: { mounts: settings.glusterMounts } } : {}),
      ...(settings.hdfsUser !== undefined || settings.hdfsDelegationToken !== undefined
        ? { webhdfs: {
          ...(settings.hdfsUser !== undefined ? { user: settings.hdfsUser } : {}),
          ...(settings.hdfsDelegationToken !== undefined ? { delegationToken: settings.hdfsDelegationToken } : {}),
        } }
        : {}),
    });
    stops.push({ name: 'storage', fn: () => storage.close() });

    const store = new JobStore(fenced);
    const frameworkId = await store.frameworkId();
    // The data plane: the token block servers accept (executors read it from Redis with their own
    // users) and where live executors' block servers are, by host.
    await publishDataPlaneSecrets(fenced, settings);
    // Every instance puts outputs where the first to lead did (see output-places.ts): job records
    // name absolute paths under that instance's root.
    const outputPlaces = await settleOutputPlaces(fenced, { root: join(settings.stateDir, 'outputs'), hostRoot: hostOutputRoot(settings) }, log);
    prepareHostOutputRoot(settings, outputPlaces.hostRoot);
    // What the APIs say of where a job's outputs are: the same places the executors commit by.
    const outputsWhere: OutputPlaces = { shared: outputsShared(settings), ...outputPlaces };
    await prepareLocalDataDirs(settings);
    const blockServers = new BlockServerDirectory(redis, () => executors.all().map((e) => e.executorId));
    blockServers.start();
    stops.push({ name: 'block server directory', fn: () => blockServers.stop() });
    let volumesRef: VolumeService | undefined;
    // Set once the executor runtime exists (it is built after the job service).
    let runtimeRef: ExecutorRuntime | undefined;
    const jobs = new JobService({
      store, resolver: storage, clock, logger: log.child({ component: 'jobs' }),
      outputRoot: outputPlaces.root,
      // local:// final outputs are listed in the local cluster's dataset manifests.
      ...(settings.localWorkDir === undefined ? {} : { localDatasets: async (dataset: string, files: readonly HeldFile[]) => await addHeldFiles(settings.localWorkDir ?? '', dataset, files) }),
      limits: { maxPendingTasksPerTenant: settings.maxPendingTasksPerTenant, maxTasksPerJob: settings.maxTasksPerJob },
      // A task larger than its tenant's whole quota is refused at submission (it could never start).
      quotaOf: (tenant) => auth.tenants().find((t) => t.name === tenant)?.quota,
      executorContract: (executorId) => runtimeRef?.dispatch.contractOf?.(executorId),
      // What a job's `locality` leaves out is the framework's (jobs saying nothing use placement's default, the same policy).
      defaultLocality: { mode: 'wait', nodeWaitMs: settings.localityWaitNodeMs, rackWaitMs: settings.localityWaitRackMs },
      inputStorageGiveUpMs: settings.inputStorageGiveUpMs,
      dataPlane: {
        blockServers: (host) => blockServers.on(host),
        async commits(taskIds) {
          // Chunked: a stage of a million tasks must not become one command.
          const raw: (string | null)[] = [];
          for (let i = 0; i < taskIds.length; i += 5_000) raw.push(...(await redis.mget(...taskIds.slice(i, i + 5_000).map(commitKey))));
          return raw.map((r) => (r === null ? undefined : decodeCommittedOutput(JSON.parse(r) as unknown)));
        },
      },
      volumes: {
        async forJob(tenant, name) {
          if (!volumesRef) throw new LocusError('NOT_READY', 'volumes are starting');
          const v = await volumesRef.volumeForJob(tenant, name);
          return { id: v.id, containerPath: v.containerPath, mode: v.mode };
        },
      },
    });
    jobs.on('event', (e) => {
      if (e.kind === 'job') metrics.jobs.inc({ state: e.state });
    });
    jobs.on('recompute', (r) => metrics.outputsRecomputed.inc(r.tasks));
    jobs.on('inputRetry', (r) => metrics.inputListingRetries.inc({ scheme: r.scheme }));
    // Stages waiting for their inputs' storage stop trying with this scheduler (the next leader lists them again).
    stops.push({ name: 'input waits', fn: () => jobs.close() });
    // Finished jobs go once past their retention (runs while this scheduler leads).
    if (settings.jobRetentionMs > 0) {
      const retention = startJobRetention(jobs, settings.jobRetentionMs, clock, log.child({ component: 'retention' }));
      stops.push({ name: 'job retention', fn: () => retention.stop() });
    }

    // Agents seen in offers, for volume size checks and the cluster view.
    const seenAgents = new Map<string, KnownAgent & { rack?: string; url?: string }>();
    let coordinatorRef: Coordinator | undefined;
    const holdings = new HoldingStore(fenced);
    const volumes = new VolumeService({
      store: holdings,
      clock,
      who: { framework: settings.frameworkName, ...(settings.principal ? { principal: settings.principal } : {}) },
      logger: log.child({ component: 'volumes' }),
      resolveNear: nearResolver((uri, o) => storage.resolve(uri, o)),
      agents: () => [...seenAgents.values()],
      // Volume work is new work: offers parked before it come back (REVIVE) at once.
      onWork: () => coordinatorRef?.noteWork(),
      // The jobs this scheduler runs decide whether a held volume may be deleted now.
      volumeUse: (v) => jobs.volumeUse(v.id, v.usedBy),
    });

    volumesRef = volumes;
    const executors = new ExecutorBook(fenced);
    const runtime: ExecutorRuntime = await createExecutorRuntime({
      settings, redis, fenced, logger: log.child({ component: 'executors' }), clock, outputRoot: outputPlaces.root, hostOutputRoot: outputPlaces.hostRoot,
      ...(extras.keepRecordedQueueJobsMs === undefined ? {} : { keepRecordedQueueJobsMs: extras.keepRecordedQueueJobsMs }),
    });
    stops.push({ name: 'executor runtime', fn: () => runtime.close() });
    runtimeRef = runtime;

    // A volume or reservation keeps the role it was made with, and Mesos offers it to that role
    // only: one made while its tenant had another role (before tenants that name none took the
    // framework's role, they had `locus`) must still be offered, used and torn down.
    const roles = [...new Set([...tenantRoles, ...(await holdings.list()).filter((h) => h.state !== 'DELETED').map((h) => h.role)])];
    const client = new SchedulerClient({
      master: settings.master,
      framework: buildFrameworkInfo({
        name: settings.frameworkName, roles, failoverTimeoutSeconds: settings.failoverTimeoutSeconds,
        ...(settings.principal ? { principal: settings.principal } : {}),
        ...(frameworkId ? { id: frameworkId } : {}),
        labels: { 'locus.framework': settings.frameworkName },
      }),
      ...(settings.principal && settings.secret ? { credentials: { principal: settings.principal, secret: settings.secret } } : {}),
      ...(settings.caFile ? { caFile: settings.caFile } : {}),
      clock,
      logger: log.child({ component: 'mesos' }),
      onFrameworkId: (id) => store.setFrameworkId(id),
      // Only the holder of the current epoch subscribes: subscribing with the stored FrameworkID
      // would take the framework away from the leader that fenced this one.
      beforeSubscribe: () => fence.current(redis),
    });

    const volumePlanner: OfferOperationPlanner = {
      async plan(offers) {
        for (const o of offers) {
          const total = { cpus: 0, mem: 0, disk: 0 };
          for (const r of o.resources) if (r.scalar && (r.name === 'cpus' || r.name === 'mem' || r.name === 'disk')) total[r.name] += r.scalar.value;
          const prev = seenAgents.get(o.agent_id.value);
          const rack = o.attributes?.find((a) => a.name === 'rack')?.text?.value;
          seenAgents.set(o.agent_id.value, {
            agentId: o.agent_id.value, hostname: o.hostname,
            total: prev ? { cpus: Math.max(prev.total.cpus, total.cpus), mem: Math.max(prev.total.mem, total.mem), disk: Math.max(prev.total.disk, total.disk) } : total,
            ...(rack ? { rack } : {}),
          });
        }
        const inUse = new Set(executors.all().flatMap((e) => e.volumes));
        const accepts = await volumes.offerCycle(offers, inUse);
        return accepts.map((a) => ({ offerId: a.offerId, operations: [...a.operations] }));
      },
      async onOperationStatus(status) {
        await volumes.onOperationStatus(status);
      },
      async onAgentLost(agentId) {
        await volumes.onAgentLost(agentId);
      },
      hasPendingWork: () => volumes.hasPendingWork(),
      goneVolumes: () => volumes.goneVolumes(),
      async operationsToReconcile() {
        return (await volumes.operationsToReconcile()).map((o) => ({ operationId: o.operation_id.value, ...(o.agent_id ? { agentId: o.agent_id.value } : {}) }));
      },
      async acquire(volumeId, executorId) {
        await volumes.acquire(volumeId, executorId);
      },
      async release(volumeId, executorId) {
        await volumes.release(volumeId, executorId);
      },
    };

    const tenants = (): TenantSetting[] => auth.tenants().map((t) => ({
      name: t.name, weight: t.weight,
      ...(t.quota ? { quota: { ...(t.quota.cpus === undefined ? {} : { cpus: t.quota.cpus }), ...(t.quota.mem === undefined ? {} : { mem: t.quota.mem }), ...(t.quota.disk === undefined ? {} : { disk: t.quota.disk }) } } : {}),
    }));
    const coordinator = new Coordinator({
      role: settings.role, clock, logger: log, metrics, jobs, executors,
      driver: clientDriver(client, roles),
      launcher: runtime.launcher,
      dispatch: runtime.dispatch,
      volumes: volumePlanner,
      tenants,
      dispatchWindow: { enabled: settings.dispatchWindow },
      executorStarts: { giveUpAfterMs: settings.executorStartGiveUpMs },
      placement: {
        defaultLocality: { mode: 'wait', nodeWaitMs: settings.localityWaitNodeMs, rackWaitMs: settings.localityWaitRackMs },
        idleTimeoutMs: settings.executorIdleTimeoutMs,
        // The executor process's own share (executor-cpus / executor-mem), added to its slots at launch.
        executorOverhead: { cpus: settings.executorCpus, mem: settings.executorMemMiB, disk: 0 },
        // No slot floor here: a task takes the resources it asks for (placement's default floor is 0.01 cpu).
        executorIdFor: (_offerId, index) => `locus-exec-${newToken(6)}-${index}`,
      },
    });
    coordinatorRef = coordinator;
    stops.push({ name: 'coordinator', fn: () => coordinator.close() });
    runtime.onResult((result, executorId) => coordinator.onAttemptResult(result, executorId));
    runtime.onExecutorLost((executorId, message) => coordinator.onExecutorLost(executorId, message));
    runtime.onRunning((taskId, attemptId, sandboxDir) => jobs.attemptRunning(taskId, attemptId, sandboxDir));

    // Events are handled strictly in order: an UPDATE must not overtake the OFFERS before it.
    let chain: Promise<void> = Promise.resolve();
    client.on('event', (event) => {
      chain = chain.then(() => coordinator.handleEvent(event)).catch((err: unknown) => {
        log.error({ err: err instanceof Error ? err.stack : String(err), type: event.type }, 'handling a Mesos event failed');
      });
    });
    // Offers alone leave agents unknown while the framework is suppressed (idle): ask the master
    // for its agents on every subscription, so requests pinned to an agent can be checked at once.
    client.on('subscribed', (info) => {
      void learnAgents(info.master, settings.principal && settings.secret ? { principal: settings.principal, secret: settings.secret } : undefined).then((list) => {
        for (const a of list) {
          if (seenAgents.has(a.agentId)) continue;
          seenAgents.set(a.agentId, a);
        }
      }, (err: unknown) => log.warn({ err: String(err) }, 'reading the master\'s agents failed; agents become known from offers'));
    });
    client.on('disconnected', (info) => {
      coordinator.disconnected();
      log.warn({ reason: info.reason, willRetry: info.willRetry }, 'disconnected from the master');
    });
    client.on('error', (err) => {
      log.error({ err: err.message }, 'the Mesos client stopped');
      if (err.code === 'NOT_LEADER') fence.noteFenced(err.message);
    });
    // A fenced leader stops acting at once: no more placement, dispatch or Mesos calls. Its
    // writes would be refused anyway; this keeps it from sending ACCEPTs and queue adds too.
    fence.onFenced((message) => {
      metrics.leader.set(0);
      log.error({ epoch, reason: message }, 'lost the lead: a newer scheduler holds the epoch; stopping to act');
      // Stages waiting for their inputs' storage stop trying too: the new leader lists them.
      jobs.close();
      void Promise.allSettled([coordinator.close(), client.stop()]).then(() => lostLead(message));
    });
    metrics.leader.set(1);

    await coordinator.recover();
    await runtime.start();
    await client.start();
    stops.push({ name: 'mesos client', fn: () => client.stop() });

    const logs = new AgentFilesLogReader({});
    const cluster = async (): Promise<ClusterView> => {
      const fromExtras = extras.agents?.() ?? [];
      const agents = fromExtras.length > 0
        ? fromExtras.map((a) => ({ id: a.id, hostname: a.hostname, ...(a.rack ? { rack: a.rack } : {}), ...(a.url ? { url: a.url } : {}) }))
        : [...seenAgents.values()].map((a) => ({ id: a.agentId, hostname: a.hostname, ...(a.rack ? { rack: a.rack } : {}) }));
      const running = jobs.runningByTenant();
      const all = await jobs.list();
      const loc = { nodeLocal: 0, rackLocal: 0, any: 0 };
      for (const j of all) {
        loc.nodeLocal += j.counts.nodeLocal;
        loc.rackLocal += j.counts.rackLocal;
        loc.any += j.counts.anyLocal;
      }
      const fid = await store.frameworkId();
      return {
        subscribed: coordinator.isSubscribed,
        ...(fid ? { frameworkId: fid } : {}),
        agents,
        executors: executors.all().map((e) => ({
          id: e.executorId, agentId: e.agentId, hostname: e.hostname, state: e.state, slots: e.slots,
          running: jobs.attemptsOnExecutor(e.executorId).length,
        })),
        locality: loc,
        pendingTasks: jobs.index.size,
        runningTasks: [...running.values()].reduce((a, b) => a + b, 0),
      };
    };
    // The agents a request may be pinned to: all of the embedded cluster's, else those seen in
    // offers since subscribing. Until one is seen nothing is refused (a pinned request waits).
    const agentDirectory: AgentDirectory = {
      known: () => {
        const fromExtras = extras.agents?.() ?? [];
        if (fromExtras.length > 0) return fromExtras.map((a) => ({ id: a.id, hostname: a.hostname }));
        return seenAgents.size > 0 ? [...seenAgents.values()].map((a) => ({ id: a.agentId, hostname: a.hostname })) : undefined;
      },
    };
    const http: FastifyInstance = await createHttpServer({
      services: {
        volumes,
        agents: agentDirectory,
        health: { ready: () => ({ subscribed: coordinator.isSubscribed && !fence.fenced, redis: redis.status === 'ready', role: fence.fenced ? 'standby' : 'leader' }) },
      },
      auth,
      logger: log.child({ component: 'http' }),
      metrics: metrics.registry,
      bodyLimit: 1024 * 1024,
      plugins: [jobsRoutes({
        jobs,
        explain: (taskId, tenant) => coordinator.explain(taskId, tenant),
        cancel: cancelJob(jobs, coordinator),
        logs,
        cluster,
        outputs: outputsWhere,
      }), uiRoutes(), insightRoutes(insightDeps({
        jobs, store, volumes, knownAgents: () => extras.agents?.() ?? [], offeredAgents: () => seenAgents.values(), executors: () => executors.all(),
      }))],
    });
    const httpAddress = await http.listen({ host: settings.httpHost, port: settings.httpPort });
    stops.push({ name: 'http', fn: () => http.close() });

    const grpc: RunningGrpcServer = await startGrpcServer({
      host: settings.httpHost, port: settings.grpcPort, auth, logger: log,
      services: {
        jobs, cancel: cancelJob(jobs, coordinator), volumes, agents: agentDirectory,
        ready: () => ({ subscribed: coordinator.isSubscribed, redis: redis.status === 'ready' }),
        outputs: outputsWhere,
      },
    });
    stops.push({ name: 'grpc', fn: () => grpc.stop() });

    let stopping: Promise<StopReport> | undefined;
    return {
      httpUrl: httpAddress,
      grpcAddress: `${settings.httpHost}:${grpc.port}`,
      adminToken,
      jobs,
      volumes,
      coordinator,
      storage,
      metrics,
      client,
      epoch,
      fenced: lostLeadership,
      async waitForSubscribed(timeoutMs) {
        await client.waitForSubscribed(timeoutMs);
      },
      stop(options) {
        stopping ??= stopAll(options?.budgetMs);
        return stopping;
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * The master's agents (`GET /slaves`, on a genuine master and on the local one): hostname, id,
 * rack and total resources, as offers would show them.
 */
async function learnAgents(master: string, credentials: { principal: string; secret: string } | undefined): Promise<(KnownAgent & { rack?: string })[]> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (credentials) headers['Authorization'] = `Basic ${Buffer.from(`${credentials.principal}:${credentials.secret}`).toString('base64')}`;
  const res = await fetch(new URL('/slaves', master), { headers, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET /slaves answered ${res.status}`);
  const body: unknown = await res.json();
  const slaves = isObject(body) && Array.isArray(body['slaves']) ? body['slaves'] : [];
  const out: (KnownAgent & { rack?: string })[] = [];
  for (const a of slaves) {
    if (!isObject(a) || typeof a['id'] !== 'string' || typeof a['hostname'] !== 'string') continue;
    if (a['active'] === false) continue;
    const r = isObject(a['resources']) ? a['resources'] : {};
    const n = (k: string): number => (typeof r[k] === 'number' ? r[k] : 0);
    const attrs = isObject(a['attributes']) ? a['attributes'] : {};
    const rack = typeof attrs['rack'] === 'string' ? attrs['rack'] : undefined;
    out.push({ agentId: a['id'], hostname: a['hostname'], total: { cpus: n('cpus'), mem: n('mem'), disk: n('disk') }, ...(rack ? { rack } : {}) });
  }
  return out;
}
