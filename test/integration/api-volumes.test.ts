/**
 * The volume HTTP API over real Redis: the bad-input table (nothing created),
 * auth before validation, tenant isolation on every route, Idempotency-Key,
 * readiness, and the operational routes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { Authenticator, hashToken } from '../../src/api/auth.js';
import { createHttpServer } from '../../src/api/http/server.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { HoldingStore } from '../../src/volumes/store.js';
import { VolumeService } from '../../src/volumes/service.js';
import { nearResolver } from '../../src/volumes/near.js';
import { createStorageRegistry, type StorageRegistry } from '../../src/storage/registry.js';
import { startRedis, type TestRedis } from '../harness/redis.js';

const ADMIN = 'admin-token-0123456789';
const ALPHA = 'alpha-token-0123456789';
const BETA = 'beta-token-0123456789';

let redis: TestRedis;
let client: Redis;
let app: FastifyInstance;
let store: HoldingStore;
let storage: StorageRegistry;
const health = { subscribed: true, redis: true };

beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
  client = redis.client();
  store = new HoldingStore(client, { prefix: 'apitest' });
  storage = createStorageRegistry({});
  const volumes = new VolumeService({
    store,
    clock: systemClock,
    who: { framework: 'locus-test', principal: 'locus' },
    agents: () => [{ agentId: 'S0', hostname: 'agent-a', total: { cpus: 4, mem: 8192, disk: 100 * 1024 } }],
    // As the framework wires it: `near` is located through the storage registry.
    resolveNear: nearResolver((uri, o) => storage.resolve(uri, o)),
  });
  const auth = new Authenticator({
    config: {
      tenants: [
        { name: 'alpha', role: 'alpha', weight: 1, tokenSha256: hashToken(ALPHA) },
        { name: 'beta', role: 'beta', weight: 1, tokenSha256: hashToken(BETA), quota: { disk: 2048 } },
      ],
    },
    adminToken: ADMIN,
  });
  app = await createHttpServer({ services: { volumes, health: { ready: () => ({ ...health }) } }, auth, logger: silentLogger(), metrics: new Registry() });
  await app.ready();
});

afterAll(async () => {
  await storage?.close();
  await app?.close();
  client?.disconnect();
  await redis?.dispose();
});

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
const post = (url: string, token: string, body: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, headers: { ...bearer(token), 'content-type': 'application/json', ...headers }, payload: typeof body === 'string' ? body : JSON.stringify(body) });
const get = (url: string, token?: string) => app.inject({ method: 'GET', url, headers: token ? bearer(token) : {} });
const del = (url: string, token: string) => app.inject({ method: 'DELETE', url, headers: bearer(token) });
const errorOf = (res: { json(): unknown }): { code?: string; field?: string } => (res.json() as { error?: { code?: string; field?: string } }).error ?? {};

describe('auth comes first', () => {
  it('answers 401 without a token, even for a malformed or oversized body', async () => {
    for (const payload of ['{"name":', 'x'.repeat(200_000), JSON.stringify({ name: '..' })]) {
      const res = await app.inject({ method: 'POST', url: '/v1/volumes', headers: { 'content-type': 'application/json' }, payload });
      expect(res.statusCode).toBe(401);
      expect(errorOf(res).code).toBe('UNAUTHENTICATED');
    }
  });
  it('answers 401 for a wrong token on every route', async () => {
    for (const [method, url] of [['GET', '/v1/volumes'], ['GET', '/v1/volumes/x'], ['DELETE', '/v1/volumes/x'], ['GET', '/v1/reservations'], ['POST', '/v1/reservations']] as const) {
      const res = await app.inject({ method, url, headers: bearer('nope') });
      expect(res.statusCode, `${method} ${url}`).toBe(401);
    }
  });
  it('leaves health, docs and metrics public', async () => {
    expect((await get('/healthz')).statusCode).toBe(200);
    expect((await get('/readyz')).json()).toMatchObject({ ready: true, subscribed: true, redis: true });
    const doc = (await get('/openapi.json')).json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/volumes', '/v1/volumes/{name}', '/v1/reservations', '/v1/reservations/{id}']));
    expect(doc.paths['/v1/volumes']?.['post']).toMatchObject({ requestBody: { content: { 'application/json': { schema: { required: ['name', 'size'] } } } } });
    expect((await get('/docs')).body).toContain('/v1/volumes/{name}');
    expect((await get('/metrics')).body).toContain('locus_http_requests_total');
  });
});

describe('bad input', () => {
  const table: [string, unknown, number, string, string][] = [
    ['malformed JSON', '{"name": "a", ', 400, 'INVALID_BODY', 'body'],
    ['not an object', '[1,2]', 400, 'INVALID_FIELD', 'body'],
    ['missing name', { size: '1GiB' }, 400, 'INVALID_FIELD', 'name'],
    ['missing size', { name: 'v1' }, 400, 'INVALID_FIELD', 'size'],
    ['name is a number', { name: 12, size: '1GiB' }, 400, 'INVALID_FIELD', 'name'],
    ['unicode name', { name: 'vølume', size: '1GiB' }, 400, 'INVALID_FIELD', 'name'],
    ['name ..', { name: '..', size: '1GiB' }, 400, 'INVALID_FIELD', 'name'],
    ['name .', { name: '.', size: '1GiB' }, 400, 'INVALID_FIELD', 'name'],
    ['name too long', { name: 'a'.repeat(64), size: '1GiB' }, 400, 'INVALID_FIELD', 'name'],
    ['name with slash', { name: 'a/b', size: '1GiB' }, 400, 'INVALID_FIELD', 'name'],
    ['size not a size', { name: 'v1', size: 'lots' }, 400, 'INVALID_FIELD', 'size'],
    ['size zero', { name: 'v1', size: '0' }, 400, 'INVALID_FIELD', 'size'],
    // Mesos holds disk in whole MiB: a size under 1 MiB is refused, not rounded up to 1 MiB unsaid.
    ['size of one byte', { name: 'v1', size: '1B' }, 400, 'INVALID_FIELD', 'size'],
    ['size of half a MiB', { name: 'v1', size: 0.5 }, 400, 'INVALID_FIELD', 'size'],
    ['size unknown unit', { name: 'v1', size: '3 parsecs' }, 400, 'INVALID_FIELD', 'size'],
    ['path traversal', { name: 'v1', size: '1GiB', containerPath: '../../etc' }, 400, 'INVALID_FIELD', 'containerPath'],
    ['path traversal inside', { name: 'v1', size: '1GiB', containerPath: 'data/../../x' }, 400, 'INVALID_FIELD', 'containerPath'],
    ['absolute path', { name: 'v1', size: '1GiB', containerPath: '/etc' }, 400, 'INVALID_FIELD', 'containerPath'],
    ['unicode path', { name: 'v1', size: '1GiB', containerPath: 'dätä' }, 400, 'INVALID_FIELD', 'containerPath'],
    ['path over the sandbox log', { name: 'v1', size: '1GiB', containerPath: 'stdout' }, 400, 'INVALID_FIELD', 'containerPath'],
    ['path under the nested sandboxes', { name: 'v1', size: '1GiB', containerPath: 'containers/x' }, 400, 'INVALID_FIELD', 'containerPath'],
    ['bad mode', { name: 'v1', size: '1GiB', mode: 'RWX' }, 400, 'INVALID_FIELD', 'mode'],
    ['unknown field', { name: 'v1', size: '1GiB', colour: 'red' }, 400, 'INVALID_FIELD', 'colour'],
    ['reserved label', { name: 'v1', size: '1GiB', labels: { 'locus.volume': 'x' } }, 400, 'INVALID_FIELD', 'labels.locus.volume'],
    ['label not a string', { name: 'v1', size: '1GiB', labels: { team: 3 } }, 400, 'INVALID_FIELD', 'labels.team'],
    ['agent and near', { name: 'v1', size: '1GiB', agent: 'agent-a', near: 'hdfs://nn/x' }, 400, 'INVALID_FIELD', 'near'],
    ['near not a URI', { name: 'v1', size: '1GiB', near: 'just words' }, 400, 'INVALID_FIELD', 'near'],
    ['near with a scheme no backend serves', { name: 'v1', size: '1GiB', near: 'gopher://x/y' }, 400, 'UNKNOWN_SCHEME', 'near'],
    ['bad constraint op', { name: 'v1', size: '1GiB', constraints: [{ attribute: 'rack', op: 'LIKE', value: 'r1' }] }, 400, 'INVALID_FIELD', 'constraints.0.op'],
    ['prototype pollution', '{"name":"v1","size":"1GiB","__proto__":{"admin":true}}', 400, 'INVALID_FIELD', '__proto__'],
    ['a __proto__ label', '{"name":"v1","size":"1GiB","labels":{"__proto__":"x"}}', 400, 'INVALID_FIELD', 'labels.__proto__'],
    ['bigger than any agent', { name: 'v1', size: '1TiB' }, 422, 'UNSATISFIABLE', 'size'],
    ['oversized body', { name: 'v1', size: '1GiB', labels: { big: 'x'.repeat(100_000) } }, 413, 'TOO_LARGE', 'body'],
  ];
  it.each(table)('%s → %i %s', async (_what, body, status, code, field) => {
    const res = await post('/v1/volumes', ALPHA, body);
    expect(res.statusCode).toBe(status);
    expect(errorOf(res).code).toBe(code);
    expect(errorOf(res).field).toBe(field);
  });
  it('refuses a wrong content type and a bad Idempotency-Key', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/volumes', headers: { ...bearer(ALPHA), 'content-type': 'text/plain' }, payload: 'name=v1' });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    const res2 = await post('/v1/volumes', ALPHA, { name: 'v1', size: '1GiB' }, { 'idempotency-key': 'has space' });
    expect(res2.statusCode).toBe(400);
    expect(errorOf(res2).field).toBe('Idempotency-Key');
  });
  it('created nothing', async () => {
    expect((await store.list({ includeDeleted: true })).length).toBe(0);
  });
  it('refuses a duplicate name with 409 and creates only one', async () => {
    expect((await post('/v1/volumes', ALPHA, { name: 'dup', size: '1GiB' })).statusCode).toBe(201);
    const res = await post('/v1/volumes', ALPHA, { name: 'dup', size: '2GiB' });
    expect(res.statusCode).toBe(409);
    expect(errorOf(res)).toMatchObject({ code: 'ALREADY_EXISTS', field: 'name' });
    expect((await store.list({ kind: 'volume', tenant: 'alpha' })).filter((v) => v.kind === 'volume' && v.name === 'dup')).toHaveLength(1);
    // The same name in another tenant is fine.
    expect((await post('/v1/volumes', BETA, { name: 'dup', size: '1GiB' })).statusCode).toBe(201);
  });
  it('enforces quota with 429', async () => {
    const res = await post('/v1/volumes', BETA, { name: 'huge', size: '4GiB' });
    expect(res.statusCode).toBe(429);
    expect(errorOf(res).code).toBe('QUOTA_EXCEEDED');
  });
});

describe('volumes', () => {
  it('creates, shows with a top-level state, lists, and deletes a never-placed volume at once', async () => {
    const res = await post('/v1/volumes', ALPHA, { name: 'cache', size: '10GiB', containerPath: 'cache/hot', labels: { team: 'data' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ name: 'cache', state: 'REQUESTED', sizeMiB: 10240, containerPath: 'cache/hot', mode: 'RW', tenant: 'alpha', role: 'alpha' });
    expect(res.headers['location']).toBe('/v1/volumes/cache');
    expect((await get('/v1/volumes/cache', ALPHA)).json()).toMatchObject({ name: 'cache', state: 'REQUESTED' });
    const list = (await get('/v1/volumes', ALPHA)).json() as { volumes: { name: string }[] };
    expect(list.volumes.map((v) => v.name)).toContain('cache');
    const d = await del('/v1/volumes/cache', ALPHA);
    expect(d.statusCode).toBe(200);
    expect(d.json()).toMatchObject({ state: 'DELETED' });
    expect((await get('/v1/volumes/cache', ALPHA)).json()).toMatchObject({ state: 'DELETED' });
    expect(((await get('/v1/volumes', ALPHA)).json() as { volumes: { name: string }[] }).volumes.map((v) => v.name)).not.toContain('cache');
    // The name is free again.
    expect((await post('/v1/volumes', ALPHA, { name: 'cache', size: '1GiB' })).statusCode).toBe(201);
  });
  it('replays an Idempotency-Key and refuses it with a different body', async () => {
    const key = { 'idempotency-key': 'req-42' };
    const a = await post('/v1/volumes', ALPHA, { name: 'idem', size: '1GiB' }, key);
    const b = await post('/v1/volumes', ALPHA, { name: 'idem', size: '1GiB' }, key);
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(200);
    expect(b.headers['idempotent-replayed']).toBe('true');
    expect((b.json() as { id: string }).id).toBe((a.json() as { id: string }).id);
    const c = await post('/v1/volumes', ALPHA, { name: 'idem2', size: '1GiB' }, key);
    expect(c.statusCode).toBe(409);
    expect(errorOf(c)).toMatchObject({ code: 'CONFLICT', field: 'Idempotency-Key' });
    expect((await store.list({ kind: 'volume' })).filter((v) => v.kind === 'volume' && v.name.startsWith('idem'))).toHaveLength(1);
  });
  it('answers 503 for mutations while not subscribed, reads still work', async () => {
    health.subscribed = false;
    try {
      const res = await post('/v1/volumes', ALPHA, { name: 'later', size: '1GiB' });
      expect(res.statusCode).toBe(503);
      expect(errorOf(res).code).toBe('NOT_READY');
      // The request is checked first: a bad one is refused as such, ready or not.
      const bad = await post('/v1/volumes', ALPHA, { name: 'later', size: '1B' });
      expect(bad.statusCode).toBe(400);
      expect(errorOf(bad)).toMatchObject({ code: 'INVALID_FIELD', field: 'size' });
      const badReservation = await post('/v1/reservations', ALPHA, { resources: { cpus: -1 } });
      expect(badReservation.statusCode).toBe(400);
      expect(errorOf(badReservation).field).toBe('resources.cpus');
      expect((await post('/v1/reservations', ALPHA, { resources: { cpus: 1 } })).statusCode).toBe(503);
      expect((await get('/readyz')).statusCode).toBe(503);
      expect((await get('/v1/volumes', ALPHA)).statusCode).toBe(200);
    } finally {
      health.subscribed = true;
    }
  });
});

describe('what a refusal says', () => {
  it('a size that is neither text nor a number of MiB says what it may be', async () => {
    const res = await post('/v1/volumes', ALPHA, { name: 'neg', size: -5 });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).field).toBe('size');
    expect((res.json() as { error: { message: string } }).error.message).toMatch(/a size such as/);
  });

  it('refuses a size under 1 MiB, naming the field, and rounds one between whole MiB up, showing the size held', async () => {
    const volume = await post('/v1/volumes', ALPHA, { name: 'tiny', size: '1B' });
    expect(volume.statusCode).toBe(400);
    expect(errorOf(volume)).toMatchObject({ code: 'INVALID_FIELD', field: 'size' });
    expect((volume.json() as { error: { message: string } }).error.message).toContain("size: '1B' is less than 0.01 MiB: Mesos counts mem and disk in whole MiB, so a size is 0 or at least 1MiB");
    const reservation = await post('/v1/reservations', ALPHA, { resources: { cpus: 1, disk: '0.5MiB' } });
    expect(reservation.statusCode).toBe(400);
    expect(errorOf(reservation)).toMatchObject({ code: 'INVALID_FIELD', field: 'resources.disk' });
    expect((await get('/v1/volumes/tiny', ALPHA)).statusCode).toBe(404);
    // 1GB is 953.67 MiB: the volume holds 954 MiB, at least what was asked, and says so.
    const decimal = await post('/v1/volumes', ALPHA, { name: 'decimal', size: '1GB' });
    expect(decimal.statusCode).toBeLessThan(300);
    expect((await get('/v1/volumes/decimal', ALPHA)).json()).toMatchObject({ sizeMiB: 954 });
  });

  it('a reservation no agent can hold names the resource that does not fit', async () => {
    const res = await post('/v1/reservations', ALPHA, { resources: { cpus: 1000, mem: '1GiB' } });
    expect(res.statusCode).toBe(422);
    const message = (res.json() as { error: { message: string } }).error.message;
    expect(message).toMatch(/it asks 1000 cpus, the largest has 4 cpus/);
    expect(message).not.toMatch(/disk/);
  });
});

describe('tenant isolation', () => {
  let resId = '';
  beforeAll(async () => {
    expect((await post('/v1/volumes', ALPHA, { name: 'secret', size: '1GiB' })).statusCode).toBe(201);
    const r = await post('/v1/reservations', ALPHA, { resources: { cpus: 1, mem: '1GiB' } });
    expect(r.statusCode).toBe(201);
    resId = (r.json() as { id: string }).id;
  });
  it('refuses every route to another tenant', async () => {
    expect((await get('/v1/volumes/secret', BETA)).statusCode).toBe(404);
    expect((await del('/v1/volumes/secret', BETA)).statusCode).toBe(404);
    expect((await get('/v1/volumes?tenant=alpha', BETA)).statusCode).toBe(403);
    expect((await get('/v1/volumes/secret?tenant=alpha', BETA)).statusCode).toBe(403);
    expect((await post('/v1/volumes', BETA, { name: 'x', size: '1GiB', tenant: 'alpha' })).statusCode).toBe(403);
    const listed = (await get('/v1/volumes', BETA)).json() as { volumes: { name: string; tenant: string }[] };
    expect(listed.volumes.every((v) => v.tenant === 'beta')).toBe(true);
    expect((await get(`/v1/reservations/${resId}`, BETA)).statusCode).toBe(404);
    expect((await del(`/v1/reservations/${resId}`, BETA)).statusCode).toBe(404);
    expect((await get('/v1/reservations?tenant=alpha', BETA)).statusCode).toBe(403);
    expect(((await get('/v1/reservations', BETA)).json() as { reservations: unknown[] }).reservations).toHaveLength(0);
    expect((await post('/v1/reservations', BETA, { resources: { cpus: 1 }, tenant: 'alpha' })).statusCode).toBe(403);
    // Nothing changed for alpha.
    expect((await get('/v1/volumes/secret', ALPHA)).json()).toMatchObject({ state: 'REQUESTED', deleteRequested: false });
    expect((await get(`/v1/reservations/${resId}`, ALPHA)).json()).toMatchObject({ state: 'REQUESTED' });
  });
  it('lets the admin see everything and create in default or a named tenant', async () => {
    expect((await get('/v1/volumes/secret', ADMIN)).json()).toMatchObject({ tenant: 'alpha' });
    expect((await get(`/v1/reservations/${resId}`, ADMIN)).statusCode).toBe(200);
    const all = (await get('/v1/volumes', ADMIN)).json() as { volumes: { tenant: string }[] };
    expect(new Set(all.volumes.map((v) => v.tenant))).toEqual(new Set(['alpha', 'beta']));
    expect((await post('/v1/volumes', ADMIN, { name: 'adm', size: '1GiB' })).json()).toMatchObject({ tenant: 'default', role: 'locus' });
    expect((await post('/v1/volumes', ADMIN, { name: 'adm', size: '1GiB', tenant: 'beta' })).json()).toMatchObject({ tenant: 'beta', role: 'beta' });
    expect((await post('/v1/volumes', ADMIN, { name: 'adm2', size: '1GiB', tenant: 'nobody' })).statusCode).toBe(404);
    // Listing under a tenant that is not configured is a mistake, not an empty list; a configured
    // tenant with nothing listed is an empty list.
    for (const url of ['/v1/volumes?tenant=nobody', '/v1/reservations?tenant=nobody']) {
      const r = await get(url, ADMIN);
      expect(r.statusCode).toBe(404);
      expect(r.json()).toMatchObject({ error: { code: 'NOT_FOUND', field: 'tenant' } });
    }
    expect(((await get('/v1/reservations?tenant=beta', ADMIN)).json() as { reservations: unknown[] }).reservations).toEqual([]);
  });
});
