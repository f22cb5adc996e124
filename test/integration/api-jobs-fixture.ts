/**
 * A real job API for tests: redis-server, the Redis job store, the job
 * service (its input resolver is a small in-test fake of the storage port),
 * a coordinator with inert Mesos ports (only `explain` is exercised), the
 * fastify server with the job routes, two tenants plus an admin token, and
 * a loopback HTTP server that imitates an agent's `/files/read`.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { Authenticator, hashToken } from '../../src/api/auth.js';
import { createHttpServer } from '../../src/api/http/server.js';
import { cancelJob, jobsRoutes } from '../../src/api/http/jobs-routes.js';
import { AgentFilesLogReader } from '../../src/api/http/jobs-logs.js';
import type { ClusterView } from '../../src/api/http/jobs-views.js';
import { systemClock } from '../../src/core/clock.js';
import type { FileLocations } from '../../src/core/blocks.js';
import { silentLogger } from '../../src/obs/log.js';
import { Coordinator } from '../../src/scheduler/coordinator.js';
import { ExecutorBook } from '../../src/scheduler/executors.js';
import { JobService, type InputResolver, type JobServiceOptions } from '../../src/scheduler/jobs/service.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import type { JobRecord } from '../../src/scheduler/jobs/model.js';
import { HoldingStore } from '../../src/volumes/store.js';
import { VolumeService } from '../../src/volumes/service.js';
import { freePort } from '../harness/ports.js';
import { startRedis, type TestRedis } from '../harness/redis.js';

/** Tokens of the test principals. */
export const TOKENS = { admin: 'admin-token-0123456789', alpha: 'alpha-token-0123456789', beta: 'beta-token-0123456789' } as const;

/** `local://words/` resolves to this many one-split files; `local://empty/` to none. */
export const WORD_FILES = 3;

/** The in-test storage port: a fixed dataset on two hosts. */
export const resolver: InputResolver = {
  async resolve(uri) {
    if (!uri.startsWith('local://words/')) return [];
    return Array.from({ length: WORD_FILES }, (_, i): FileLocations => ({
      uri: `local://words/part-${i}`,
      size: 100,
      splits: [{ offset: 0, length: 100, hosts: [i % 2 === 0 ? 'agent-a' : 'agent-b'], racks: ['r1'] }],
    }));
  },
};

/** A running test API. */
export interface JobsApi {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly jobs: JobService;
  readonly store: JobStore;
  readonly redis: TestRedis;
  readonly client: Redis;
  /** The loopback "agent": base URL and its root directory (sandboxes go below). */
  readonly agentUrl: string;
  readonly agentRoot: string;
  /** Open SSE and log-follow responses right now. */
  activeStreams(): number;
  /** Wait until the job has resolved its current stage and its tasks are pending. */
  waitPending(jobId: string, count: number): Promise<string[]>;
  /** Start an attempt of a pending task on the fake agent (node-local). */
  start(taskId: string, host?: string): Promise<string>;
  /** Finish the running attempt (a succeeded one may name where its output was committed). */
  finish(taskId: string, attemptId: string, state?: 'SUCCEEDED' | 'FAILED', sandboxDir?: string, outputPath?: string): Promise<void>;
  waitState(jobId: string, states: readonly string[]): Promise<JobRecord>;
  close(): Promise<void>;
}

/** Options of the test API. */
export interface JobsApiOptions {
  readonly heartbeatMs?: number;
  readonly logPollMs?: number;
  readonly cluster?: ClusterView;
  /** The storage port (default: `resolver`). */
  readonly resolver?: InputResolver;
  /** Readiness as `/readyz` reports it (default: ready). */
  readonly ready?: () => { readonly subscribed: boolean; readonly redis: boolean };
  /** How stages wait for their inputs' storage (default: the service's). */
  readonly inputWaits?: Pick<JobServiceOptions, 'inputStorageGiveUpMs' | 'inputListingRetryMs'>;
}

async function agentServer(root: string): Promise<{ server: Server; url: string }> {
  // Answers like the genuine agent: offset -1 → the size; otherwise up to `length` bytes from `offset`.
  const server = createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://agent');
      if (u.pathname !== '/files/read') {
        res.writeHead(404).end();
        return;
      }
      const path = resolve(u.searchParams.get('path') ?? '');
      if (!path.startsWith(root + '/')) {
        res.writeHead(404).end('File not found');
        return;
      }
      let size: number;
      try {
        size = (await stat(path)).size;
      } catch {
        res.writeHead(404).end('File not found');
        return;
      }
      const offset = Number(u.searchParams.get('offset') ?? '-1');
      const reply = (body: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (offset < 0) {
        reply({ data: '', offset: size });
        return;
      }
      const length = u.searchParams.has('length') ? Number(u.searchParams.get('length')) : size - offset;
      const n = Math.max(0, Math.min(length, size - offset));
      const fh = await open(path, 'r');
      try {
        const buf = Buffer.alloc(n);
        const { bytesRead } = await fh.read(buf, 0, n, offset);
        reply({ data: buf.subarray(0, bytesRead).toString('utf8'), offset });
      } finally {
        await fh.close();
      }
    })();
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${port}` };
}

/** Poll `fn` until it returns a value (not undefined) or the deadline passes. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Start everything. */
export async function startJobsApi(options: JobsApiOptions = {}): Promise<JobsApi> {
  const redis = await startRedis({ appendonly: false });
  const client = redis.client();
  const store = new JobStore(client);
  const logger = silentLogger();
  const outputRoot = await mkdtemp(join(tmpdir(), 'locus-jobs-out-'));
  const agentRoot = await mkdtemp(join(tmpdir(), 'locus-agent-'));
  const agent = await agentServer(agentRoot);
  const jobs = new JobService({
    store, resolver: options.resolver ?? resolver, clock: systemClock, logger, outputRoot,
    limits: { maxPendingTasksPerTenant: 10_000, maxTasksPerJob: 10_000 },
    ...options.inputWaits,
  });
  const inert = async (): Promise<void> => undefined;
  const coordinator = new Coordinator({
    role: 'locus', clock: systemClock, logger, jobs,
    executors: new ExecutorBook(client),
    driver: { accept: inert, decline: inert, revive: inert, suppress: inert, kill: inert, acknowledge: inert, acknowledgeOperationStatus: inert, reconcile: inert },
    launcher: { taskInfo: async () => { throw new Error('no executors in this test'); }, ready: inert, retire: inert },
    dispatch: { enqueueMany: inert, adopt: inert, cancel: inert },
    tenants: () => [{ name: 'alpha', weight: 1 }, { name: 'beta', weight: 1 }, { name: 'default', weight: 1 }],
  });
  const volumes = new VolumeService({ store: new HoldingStore(client, { prefix: 'jobsapitest' }), clock: systemClock, who: { framework: 'locus-test', principal: 'locus' } });
  const auth = new Authenticator({
    config: {
      tenants: [
        { name: 'alpha', role: 'alpha', weight: 1, tokenSha256: hashToken(TOKENS.alpha) },
        { name: 'beta', role: 'beta', weight: 1, tokenSha256: hashToken(TOKENS.beta) },
      ],
    },
    adminToken: TOKENS.admin,
  });
  const cluster: ClusterView = options.cluster ?? {
    subscribed: false, agents: [], executors: [], locality: { nodeLocal: 0, rackLocal: 0, any: 0 }, pendingTasks: 0, runningTasks: 0,
  };
  const plugin = jobsRoutes({
    jobs,
    explain: (taskId, tenant) => coordinator.explain(taskId, tenant),
    cancel: cancelJob(jobs, coordinator),
    logs: new AgentFilesLogReader(),
    cluster: async () => cluster,
    ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
    logPollMs: options.logPollMs ?? 50,
  });
  const app = await createHttpServer({
    services: { volumes, health: { ready: options.ready ?? (() => ({ subscribed: true, redis: true })) } },
    auth, logger, metrics: new Registry(), plugins: [plugin],
  });
  const port = await freePort();
  await app.listen({ host: '127.0.0.1', port });

  const api: JobsApi = {
    app, url: `http://127.0.0.1:${port}`, jobs, store, redis, client, agentUrl: agent.url, agentRoot,
    activeStreams: () => plugin.activeStreams(),
    async waitPending(jobId, count) {
      return await until(`${count} pending tasks of ${jobId}`, async () => {
        const ids = [...jobs.pendingTasks()].filter((t) => t.jobId === jobId).map((t) => t.taskId).sort();
        return ids.length === count ? ids : undefined;
      });
    },
    async start(taskId, host = 'agent-a') {
      const payload = await jobs.startAttempt(taskId, { id: 'exec-1', host, agentUrl: agent.url }, 0);
      if (!payload) throw new Error(`task ${taskId} was not pending`);
      return payload.attemptId;
    },
    async finish(taskId, attemptId, state = 'SUCCEEDED', sandboxDir, outputPath) {
      const now = Date.now();
      await jobs.finishAttempt({
        attemptId, taskId, state, exitCode: state === 'SUCCEEDED' ? 0 : 1, reason: state === 'SUCCEEDED' ? '' : 'EXIT_NONZERO',
        message: state === 'SUCCEEDED' ? 'exited 0' : 'exited 1', startedAt: now, finishedAt: now, host: 'agent-a',
        ...(sandboxDir === undefined ? {} : { sandboxDir }),
        ...(outputPath === undefined ? {} : { outputPath }),
      });
    },
    async waitState(jobId, states) {
      return await until(`job ${jobId} in ${states.join('|')}`, async () => {
        const j = await jobs.get(jobId);
        return states.includes(j.state) ? j : undefined;
      });
    },
    async close() {
      coordinator.close();
      jobs.close();
      await app.close();
      await new Promise<void>((r) => agent.server.close(() => r()));
      client.disconnect();
      await redis.dispose();
      await rm(outputRoot, { recursive: true, force: true });
      await rm(agentRoot, { recursive: true, force: true });
    },
  };
  return api;
}
