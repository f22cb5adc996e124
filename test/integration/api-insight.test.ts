/**
 * The API views added for the dashboard, and the dashboard's own routes, on
 * a real fastify server with a real redis-server, the Redis job store and the
 * job service (its storage port is the small in-test dataset of
 * api-jobs-fixture: three one-split files on agent-a / agent-b):
 *
 * - GET /v1/jobs/:id/splits: replicas, where each task ran, bytes read
 *   locally vs over the network; tenant scope, validation, 401/404.
 * - GET /v1/cluster/resources: offered/used/reserved per agent and DRF
 *   shares per tenant; a tenant sees only its own row.
 * - /ui/: public shell with a strict CSP, modules served only by plain names.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator, hashToken } from '../../src/api/auth.js';
import { createHttpServer } from '../../src/api/http/server.js';
import { insightDeps, insightRoutes } from '../../src/api/http/insight-routes.js';
import { uiRoutes } from '../../src/api/http/ui-routes.js';
import { systemClock } from '../../src/core/clock.js';
import { LocalityLevel } from '../../src/core/locality.js';
import { silentLogger } from '../../src/obs/log.js';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { HoldingStore } from '../../src/volumes/store.js';
import { VolumeService } from '../../src/volumes/service.js';
import { validateVolumeRequest } from '../../src/volumes/model.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { resolver, until, WORD_FILES } from './api-jobs-fixture.js';

const TOKENS = { admin: 'insight-admin-0123456789', alpha: 'insight-alpha-0123456789', beta: 'insight-beta-0123456789' } as const;
const OFFERED = { cpus: 4, mem: 4096, disk: 10_240 };

let redis: TestRedis;
let client: Redis;
let app: FastifyInstance;
let jobs: JobService;
let volumes: VolumeService;
let auth: Authenticator;
let assets: string;
let jobId: string;

const req = async (method: 'GET', url: string, token?: string): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown>; text: string }> => {
  const r = await app.inject({ method, url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  let body: Record<string, unknown> = {};
  try {
    body = r.json();
  } catch {
    body = {};
  }
  return { status: r.statusCode, body, headers: r.headers, text: r.body };
};

async function runTask(taskId: string, host: string, locality: LocalityLevel, finish: boolean): Promise<void> {
  const payload = await jobs.startAttempt(taskId, { id: 'exec-a', host }, locality);
  if (!payload) throw new Error(`${taskId} was not pending`);
  if (!finish) return;
  const now = Date.now();
  await jobs.finishAttempt({
    attemptId: payload.attemptId, taskId, state: 'SUCCEEDED', exitCode: 0, reason: '', message: 'exited 0', startedAt: now - 1000, finishedAt: now, host,
  });
}

beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
  client = redis.client();
  const store = new JobStore(client);
  const logger = silentLogger();
  const outputRoot = await mkdtemp(join(tmpdir(), 'locus-insight-out-'));
  jobs = new JobService({ store, resolver, clock: systemClock, logger, outputRoot, limits: { maxPendingTasksPerTenant: 1000, maxTasksPerJob: 1000 } });
  volumes = new VolumeService({ store: new HoldingStore(client, { prefix: 'insighttest' }), clock: systemClock, who: { framework: 'locus-test', principal: 'locus' } });
  auth = new Authenticator({
    config: {
      tenants: [
        { name: 'alpha', role: 'alpha', weight: 1, quota: { cpus: 2 }, tokenSha256: hashToken(TOKENS.alpha) },
        { name: 'beta', role: 'beta', weight: 3, tokenSha256: hashToken(TOKENS.beta) },
      ],
    },
    adminToken: TOKENS.admin,
  });
  assets = await mkdtemp(join(tmpdir(), 'locus-ui-assets-'));
  await writeFile(join(assets, 'app.js'), 'export const ok = 1;\n');
  const executors = [{ executorId: 'exec-a', agentId: 'A', tenant: 'alpha', slots: 2, slotResources: { cpus: 0.5, mem: 64, disk: 10 } }];
  app = await createHttpServer({
    services: { volumes, health: { ready: () => ({ subscribed: true, redis: true }) } },
    auth, logger,
    plugins: [
      insightRoutes(insightDeps({
        jobs, store, volumes,
        knownAgents: () => [{ id: 'A', hostname: 'agent-a', rack: 'r1' }, { id: 'B', hostname: 'agent-b', rack: 'r2' }],
        offeredAgents: () => [{ agentId: 'A', hostname: 'agent-a', total: OFFERED }, { agentId: 'B', hostname: 'agent-b', total: OFFERED }],
        executors: () => executors,
      })),
      uiRoutes({ assetsDir: assets }),
    ],
  });
  await app.ready();

  const spec = validateJobSpec({
    name: 'insight', inputs: ['local://words/'], split: 'file',
    task: { command: ['true'], resources: { cpus: 1, mem: '128MiB', disk: '16MiB' } },
  });
  jobId = (await jobs.submit('alpha', spec)).id;
  await until('the tasks to be pending', async () => ([...jobs.pendingTasks()].filter((t) => t.jobId === jobId).length === WORD_FILES ? true : undefined));
  // Task 0 on the host of its replica, task 1 away from its replica (agent-b holds it), task 2 running.
  await runTask(`${jobId}.0.0`, 'agent-a', LocalityLevel.NODE_LOCAL, true);
  await runTask(`${jobId}.0.1`, 'agent-a', LocalityLevel.ANY, true);
  await runTask(`${jobId}.0.2`, 'agent-a', LocalityLevel.NODE_LOCAL, false);
  await volumes.createVolume(auth.actingTenant({ kind: 'admin' }, 'alpha'), validateVolumeRequest({ name: 'scratch', size: '64MiB' }));
}, 60_000);

afterAll(async () => {
  await app?.close();
  client?.disconnect();
  await redis?.dispose();
  if (assets) await rm(assets, { recursive: true, force: true });
});

describe('GET /v1/jobs/:id/splits', () => {
  it('answers each split with its replicas, where its task ran, and bytes read locally vs over the network', async () => {
    const r = await req('GET', `/v1/jobs/${jobId}/splits`, TOKENS.alpha);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ jobId, stage: 0, stageName: 'main', total: WORD_FILES, bytesLocal: 100, bytesNetwork: 100 });
    const splits = r.body['splits'] as Record<string, unknown>[];
    expect(splits).toHaveLength(WORD_FILES);
    expect(splits[0]).toMatchObject({ task: `${jobId}.0.0`, uri: 'local://words/part-0', length: 100, hosts: ['agent-a'], racks: ['r1'], state: 'SUCCEEDED', ranOn: 'agent-a', locality: 'node-local', bytesLocal: 100, bytesNetwork: 0 });
    expect(splits[1]).toMatchObject({ task: `${jobId}.0.1`, hosts: ['agent-b'], ranOn: 'agent-a', locality: 'any', bytesLocal: 0, bytesNetwork: 100 });
    // Running: where it runs is known, the bytes are counted once it succeeded.
    expect(splits[2]).toMatchObject({ task: `${jobId}.0.2`, state: 'RUNNING', ranOn: 'agent-a', bytesLocal: 0, bytesNetwork: 0 });
  });

  it('bounds the answer with limit and says how many there are', async () => {
    const r = await req('GET', `/v1/jobs/${jobId}/splits?limit=1`, TOKENS.admin);
    expect(r.status).toBe(200);
    expect(r.body['total']).toBe(WORD_FILES);
    expect(r.body['splits']).toHaveLength(1);
  });

  it('refuses without a token (401), hides another tenant’s job (404), and validates stage', async () => {
    expect((await req('GET', `/v1/jobs/${jobId}/splits`)).status).toBe(401);
    const foreign = await req('GET', `/v1/jobs/${jobId}/splits`, TOKENS.beta);
    expect(foreign.status).toBe(404);
    expect(foreign.body).toMatchObject({ error: { code: 'NOT_FOUND' } });
    const noStage = await req('GET', `/v1/jobs/${jobId}/splits?stage=7`, TOKENS.alpha);
    expect(noStage.status).toBe(404);
    expect(noStage.body).toMatchObject({ error: { code: 'NOT_FOUND', field: 'stage' } });
    const bad = await req('GET', `/v1/jobs/${jobId}/splits?stage=first`, TOKENS.alpha);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'INVALID_FIELD', field: 'stage' } });
    const unknown = await req('GET', `/v1/jobs/${jobId}/splits?hosts=1`, TOKENS.alpha);
    expect(unknown.status).toBe(400);
  });
});

describe('GET /v1/cluster/resources', () => {
  it('shows the admin every agent and every tenant’s DRF share against its weight and quota', async () => {
    const r = await req('GET', '/v1/cluster/resources', TOKENS.admin);
    expect(r.status, r.text).toBe(200);
    expect(r.body['viewer']).toEqual({ kind: 'admin' });
    expect(r.body['total']).toEqual({ cpus: 8, mem: 8192, disk: 20_480 });
    const agents = r.body['agents'] as Record<string, unknown>[];
    expect(agents).toEqual([
      { id: 'A', hostname: 'agent-a', rack: 'r1', offered: OFFERED, used: { cpus: 1, mem: 128, disk: 20 }, reserved: { cpus: 0, mem: 0, disk: 0 }, executors: 1 },
      { id: 'B', hostname: 'agent-b', rack: 'r2', offered: OFFERED, used: { cpus: 0, mem: 0, disk: 0 }, reserved: { cpus: 0, mem: 0, disk: 0 }, executors: 0 },
    ]);
    const tenants = r.body['tenants'] as Record<string, unknown>[];
    const weights = tenants.reduce((a, t) => a + Number(t['weight']), 0);
    expect(tenants.map((t) => t['name']).sort()).toEqual(['alpha', 'beta', 'default']);
    // alpha runs one task of 1 cpu / 128 MiB: its dominant resource is cpus, 1 of 8.
    expect(tenants.find((t) => t['name'] === 'alpha')).toMatchObject({
      weight: 1, quota: { cpus: 2 }, used: { cpus: 1, mem: 128, disk: 16 }, reserved: { cpus: 0, mem: 0, disk: 64 },
      executors: 1, runningTasks: 1, pendingTasks: 0, dominantShare: 0.125, weightedShare: 0.125, fairShare: Math.round((1 / weights) * 10_000) / 10_000,
    });
    expect(tenants.find((t) => t['name'] === 'beta')).toMatchObject({ weight: 3, dominantShare: 0, runningTasks: 0, fairShare: Math.round((3 / weights) * 10_000) / 10_000 });
  });

  it('shows a tenant only its own share', async () => {
    const r = await req('GET', '/v1/cluster/resources', TOKENS.beta);
    expect(r.status).toBe(200);
    expect(r.body['viewer']).toEqual({ kind: 'tenant', tenant: 'beta' });
    expect((r.body['tenants'] as Record<string, unknown>[]).map((t) => t['name'])).toEqual(['beta']);
    expect((await req('GET', '/v1/cluster/resources')).status).toBe(401);
    expect((await req('GET', '/v1/cluster/resources', 'wrong-token')).status).toBe(401);
  });

  it('is documented in OpenAPI, and the dashboard routes are not', async () => {
    const doc = await req('GET', '/openapi.json');
    const paths = Object.keys(doc.body['paths'] as Record<string, unknown>);
    expect(paths).toEqual(expect.arrayContaining(['/v1/jobs/{id}/splits', '/v1/cluster/resources']));
    expect(paths.some((p) => p.startsWith('/ui'))).toBe(false);
  });
});

describe('the dashboard routes', () => {
  it('serve the shell without a token, with a CSP that allows only this server', async () => {
    const r = await req('GET', '/ui/');
    expect(r.status).toBe(200);
    expect(String(r.headers['content-type'])).toMatch(/^text\/html/);
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(r.text).toContain('<script type="module" src="/ui/js/app.js"></script>');
    // The shell carries no data: nothing from the API is in it.
    expect(r.text).not.toContain(jobId);
    const redirect = await req('GET', '/ui');
    expect(redirect.status).toBe(302);
    expect(redirect.headers['location']).toBe('/ui/');
    const css = await req('GET', '/ui/app.css');
    expect(String(css.headers['content-type'])).toMatch(/^text\/css/);
  });

  it('serve compiled modules by plain names only', async () => {
    const js = await req('GET', '/ui/js/app.js');
    expect(js.status).toBe(200);
    expect(String(js.headers['content-type'])).toMatch(/^text\/javascript/);
    expect(js.text).toBe('export const ok = 1;\n');
    const missing = await req('GET', '/ui/js/nothing.js');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error: { code: 'NOT_FOUND' } });
    for (const url of ['/ui/js/..%2Fapp.js', '/ui/js/%2e%2e%2f%2e%2e%2fpackage.json', '/ui/js/App.JS', '/ui/js/app.ts']) {
      expect((await req('GET', url)).status, url).toBe(404);
    }
  });
});
