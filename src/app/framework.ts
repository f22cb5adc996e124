/**
 * The composition root of the framework: wires Redis, storage, jobs,
 * volumes, executors, the coordinator, the Mesos client and the HTTP and
 * gRPC APIs, and stops them in reverse order. `locus framework` runs this on
 * an existing master; `locus up` runs it on the embedded local cluster.
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { systemClock, type Clock } from '../core/clock.js';
import { newToken } from '../core/ids.js';
import { LocusError } from '../core/errors.js';
import type { Logger } from '../obs/log.js';
import { createMetrics, type LocusMetrics } from '../obs/metrics.js';
import { SchedulerClient } from '../mesos/client.js';
import { buildFrameworkInfo } from '../mesos/calls.js';
import { createStorageRegistry, type StorageRegistry } from '../storage/registry.js';
import { loadHostMap } from '../storage/hostmap.js';
import { JobStore } from '../scheduler/jobs/store.js';
import { JobService } from '../scheduler/jobs/service.js';
import { ExecutorBook } from '../scheduler/executors.js';
import { Coordinator, type OfferOperationPlanner, type TenantSetting } from '../scheduler/coordinator.js';
import { VolumeService, type KnownAgent } from '../volumes/service.js';
import { HoldingStore } from '../volumes/store.js';
import { nearResolver } from '../volumes/near.js';
import { Authenticator, loadTenantsFile } from '../api/auth.js';
import type { TenantsConfig } from '../core/tenants.js';
import { createHttpServer } from '../api/http/server.js';
import { jobsRoutes, cancelJob } from '../api/http/jobs-routes.js';
import { AgentFilesLogReader } from '../api/http/jobs-logs.js';
import type { ClusterView } from '../api/http/jobs-views.js';
import { startGrpcServer, type RunningGrpcServer } from '../api/grpc/server.js';
import { clientDriver } from './driver.js';
import type { FrameworkSettings } from './config.js';
import { createExecutorRuntime, type ExecutorRuntime } from './executor-runtime.js';

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
  /** Resolves once subscribed to a master. */
  waitForSubscribed(timeoutMs: number): Promise<void>;
  /** Stop everything; tasks keep running on Mesos until the failover timeout (no TEARDOWN). */
  stop(): Promise<void>;
}

/** Extras the embedding process may hand in. */
export interface FrameworkExtras {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Agents known up front (the local cluster) for the volume size check and /v1/cluster. */
  readonly agents?: () => readonly { id: string; hostname: string; rack?: string; url?: string }[];
}

/** Start the framework with its APIs. */
export async function startFramework(settings: FrameworkSettings, extras: FrameworkExtras): Promise<RunningFramework> {
  const log = extras.logger;
  const clock = extras.clock ?? systemClock;
  const metrics = createMetrics();
  const stops: { name: string; fn: () => Promise<void> | void }[] = [];
  const stopAll = async (): Promise<void> => {
    // Each step is isolated so one failing clean-up never blocks the rest.
    for (const s of stops.reverse()) {
      try {
        await s.fn();
      } catch (err) {
        log.warn({ step: s.name, err: String(err) }, 'stop step failed');
      }
    }
  };

  try {
    const redis = new Redis(settings.redis, { maxRetriesPerRequest: null, lazyConnect: true });
    redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error'));
    redis.on('ready', () => metrics.redisConnected.set(1));
    redis.on('close', () => metrics.redisConnected.set(0));
    try {
      await redis.connect();
    } catch (err) {
      throw new LocusError('UNAVAILABLE', `cannot connect to Redis at ${settings.redis}: ${(err as Error).message}`);
    }
    stops.push({ name: 'redis', fn: async () => { await redis.quit().catch(() => redis.disconnect()); } });

    const tenantsConfig: TenantsConfig = settings.tenantsFile ? await loadTenantsFile(settings.tenantsFile) : { tenants: [] };
    const adminToken = settings.adminToken ?? newToken();
    const auth = new Authenticator({ config: tenantsConfig, adminToken });
    const roles = [...new Set([settings.role, ...auth.tenants().map((t) => t.role)])];

    const storage = createStorageRegistry({
      clock,
      ...(settings.localWorkDir ? { local: { workDir: settings.localWorkDir } } : {}),
      ...(settings.hostMapFile ? { hostMap: await loadHostMap(settings.hostMapFile) } : {}),
      ...(settings.cephConf ? { ceph: { conf: settings.cephConf, ...(settings.cephfsMount ? { cephfsMount: settings.cephfsMount } : {}) } } : {}),
      ...(Object.keys(settings.glusterMounts).length > 0 ? { gluster: { mounts: settings.glusterMounts } } : {}),
      ...(settings.hdfsUser ? { webhdfs: { user: settings.hdfsUser } } : {}),
    });
    stops.push({ name: 'storage', fn: () => storage.close() });

    const store = new JobStore(redis);
    const frameworkId = await store.frameworkId();
    let volumesRef: VolumeService | undefined;
    const jobs = new JobService({
      store, resolver: storage, clock, logger: log.child({ component: 'jobs' }),
      outputRoot: join(settings.stateDir, 'outputs'),
      limits: { maxPendingTasksPerTenant: settings.maxPendingTasksPerTenant, maxTasksPerJob: settings.maxTasksPerJob },
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

    // Agents seen in offers, for volume size checks and the cluster view.
    const seenAgents = new Map<string, KnownAgent & { rack?: string; url?: string }>();
    let coordinatorRef: Coordinator | undefined;
    const volumes = new VolumeService({
      store: new HoldingStore(redis),
      clock,
      who: { framework: settings.frameworkName, ...(settings.principal ? { principal: settings.principal } : {}) },
      logger: log.child({ component: 'volumes' }),
      resolveNear: nearResolver((uri, o) => storage.resolve(uri, o)),
      agents: () => [...seenAgents.values()],
      onWork: () => coordinatorRef?.requestPass(),
    });

    volumesRef = volumes;
    const executors = new ExecutorBook(redis);
    const runtime: ExecutorRuntime = await createExecutorRuntime({
      settings, redis, logger: log.child({ component: 'executors' }), clock, outputRoot: join(settings.stateDir, 'outputs'),
    });
    stops.push({ name: 'executor runtime', fn: () => runtime.close() });

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
      placement: {
        defaultLocality: { mode: 'wait', nodeWaitMs: settings.localityWaitNodeMs, rackWaitMs: settings.localityWaitRackMs },
        idleTimeoutMs: settings.executorIdleTimeoutMs,
        slotResources: { cpus: 1, mem: 1024, disk: 1024 },
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
    client.on('disconnected', (info) => {
      coordinator.disconnected();
      log.warn({ reason: info.reason, willRetry: info.willRetry }, 'disconnected from the master');
    });
    client.on('error', (err) => log.error({ err: err.message }, 'the Mesos client stopped'));

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
    const http: FastifyInstance = await createHttpServer({
      services: {
        volumes,
        health: { ready: () => ({ subscribed: coordinator.isSubscribed, redis: redis.status === 'ready' }) },
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
      })],
    });
    const httpAddress = await http.listen({ host: settings.httpHost, port: settings.httpPort });
    stops.push({ name: 'http', fn: () => http.close() });

    const grpc: RunningGrpcServer = await startGrpcServer({
      host: settings.httpHost, port: settings.grpcPort, auth, logger: log,
      services: {
        jobs, cancel: cancelJob(jobs, coordinator), volumes,
        ready: () => ({ subscribed: coordinator.isSubscribed, redis: redis.status === 'ready' }),
      },
    });
    stops.push({ name: 'grpc', fn: () => grpc.stop() });

    let stopping: Promise<void> | undefined;
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
      async waitForSubscribed(timeoutMs) {
        await client.waitForSubscribed(timeoutMs);
      },
      stop() {
        stopping ??= stopAll();
        return stopping;
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
