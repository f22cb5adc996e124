/**
 * The job HTTP API over real Redis and a real job service: JSON and YAML
 * submission, Idempotency-Key, field-named errors (alias bomb and oversized
 * body included), tenant isolation on every route, the SSE stream followed
 * to the end of a job, logs through an agent's /files/read, explain, cancel
 * and the cluster view.
 */
import { mkdir, writeFile, appendFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKENS, WORD_FILES, startJobsApi, until, type JobsApi } from './api-jobs-fixture.js';

let api: JobsApi;
/** What the server reports to /readyz; a test turns it off and back on. */
const readiness = { subscribed: true, redis: true };

beforeAll(async () => {
  api = await startJobsApi({
    heartbeatMs: 100,
    ready: () => ({ ...readiness }),
    cluster: {
      subscribed: true,
      agents: [{ id: 'S0', hostname: 'agent-a', rack: 'r1' }],
      executors: [
        { id: 'e-alpha', agentId: 'S0', hostname: 'agent-a', state: 'RUNNING', slots: 2, running: 1, tenant: 'alpha' },
        { id: 'e-beta', agentId: 'S0', hostname: 'agent-a', state: 'RUNNING', slots: 2, running: 0, tenant: 'beta' },
      ],
      locality: { nodeLocal: 5, rackLocal: 1, any: 0 },
      pendingTasks: 2,
      runningTasks: 1,
    },
  });
});

afterAll(async () => {
  await api?.close();
});

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
const errorOf = (res: { json(): unknown }): { code?: string; field?: string; message?: string; details?: Record<string, unknown> } =>
  (res.json() as { error?: { code?: string; field?: string; message?: string; details?: Record<string, unknown> } }).error ?? {};
const SPEC = { name: 'wc', inputs: ['local://words/'], task: { command: ['wc', '-w', '{split.path}'] }, retries: 1 };
const YAML_SPEC = `name: wc-yaml
retries: 1
stages:
  - name: map
    inputs: local://words/
    task:
      command: [wc, -w, "{split.path}"]
  - name: reduce
    inputs: [stage:map]
    tasks:
      - command: [cat]
    task:
      command: [cat]
`;

async function submit(token: string, body: unknown, headers: Record<string, string> = {}, query = ''): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  const res = await api.app.inject({
    method: 'POST', url: `/v1/jobs${query}`,
    headers: { ...bearer(token), 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, body: res.json() as Record<string, unknown>, headers: res.headers };
}

async function submitOk(token: string, body: unknown = SPEC, headers: Record<string, string> = {}, query = ''): Promise<string> {
  const r = await submit(token, body, headers, query);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return String(r.body['id']);
}

/** Read an SSE response until it ends: [event, data] pairs and comment lines. */
async function readSse(res: Response): Promise<{ events: [string, Record<string, unknown>][]; comments: string[] }> {
  const events: [string, Record<string, unknown>][] = [];
  const comments: string[] = [];
  const text = await res.text();
  for (const block of text.split('\n\n')) {
    if (block.trim() === '') continue;
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comments.push(line.slice(1).trim());
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (data !== '') events.push([event, JSON.parse(data) as Record<string, unknown>]);
  }
  return { events, comments };
}

describe('submit', () => {
  it('accepts JSON and answers the job view (201, Location)', async () => {
    const r = await submit(TOKENS.alpha, SPEC);
    expect(r.status).toBe(201);
    expect(r.headers['location']).toBe(`/v1/jobs/${String(r.body['id'])}`);
    expect(r.body).toMatchObject({ name: 'wc', tenant: 'alpha', stage: 0, stages: [{ index: 0, name: 'main' }], priority: 0, labels: {} });
    expect(r.body['counts']).toMatchObject({ total: expect.any(Number), locality: { nodeLocal: 0, rackLocal: 0, any: 0 } });
    expect(typeof r.body['createdAt']).toBe('string');
    expect(String(r.body['outputDir'])).toContain(String(r.body['id']));
    expect(r.body).not.toHaveProperty('spec');
    const id = String(r.body['id']);
    await api.waitPending(id, WORD_FILES);
    const one = await api.app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: bearer(TOKENS.alpha) });
    expect(one.json()).toMatchObject({ id, state: 'RUNNING', stages: [{ name: 'main', tasks: WORD_FILES }], counts: { total: WORD_FILES, pending: WORD_FILES } });
  });

  it('opens a job of explicit tasks in one write: PENDING to RUNNING, its RUNNING event and record counting its tasks', async () => {
    const all: { jobId: string; state: string; counts: unknown }[] = [];
    const listen = (e: { kind: string; jobId: string; state: string; counts?: unknown }): void => {
      if (e.kind === 'job') all.push({ jobId: e.jobId, state: e.state, counts: e.counts });
    };
    api.jobs.on('event', listen);
    try {
      const r = await submit(TOKENS.alpha, { name: 'explicit', tasks: [{}, {}, {}, {}], task: { command: ['true'] } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const id = String(r.body['id']);
      await api.waitPending(id, 4);
      const events = (): typeof all => all.filter((e) => e.jobId === id);
      await until('the RUNNING event', async () => (events().some((e) => e.state === 'RUNNING') ? true : undefined));
      // No RESOLVING in between: there are no inputs to list.
      expect(events().map((e) => e.state)).toEqual(['PENDING', 'RUNNING']);
      expect(events()[1]?.counts).toMatchObject({ total: 4, pending: 4, running: 0 });
      const one = await api.app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers: bearer(TOKENS.alpha) });
      expect(one.json()).toMatchObject({ id, state: 'RUNNING', stages: [{ name: 'main', tasks: 4 }], counts: { total: 4, pending: 4 } });
      expect((await api.jobs.get(id)).counts).toMatchObject({ total: 4, pending: 4 });
    } finally {
      api.jobs.off('event', listen);
    }
  });

  it.each(['application/yaml', 'application/x-yaml', 'text/yaml', 'application/yaml; charset=utf-8'])('accepts YAML as %s', async (type) => {
    const r = await submit(TOKENS.alpha, YAML_SPEC, { 'content-type': type });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ name: 'wc-yaml', stages: [{ name: 'map' }, { name: 'reduce', tasks: null }] });
  });

  it('replays an Idempotency-Key (200, same job) and refuses it for a different spec', async () => {
    const key = { 'idempotency-key': 'submit-once-1' };
    const first = await submit(TOKENS.alpha, SPEC, key);
    const again = await submit(TOKENS.alpha, SPEC, key);
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body['id']).toBe(first.body['id']);
    const other = await submit(TOKENS.alpha, { ...SPEC, name: 'other' }, key);
    expect(other.status).toBe(409);
    expect(errorOf({ json: () => other.body })).toMatchObject({ code: 'CONFLICT', field: 'Idempotency-Key' });
    // Keys are per tenant: beta's same key makes beta's own job.
    const beta = await submit(TOKENS.beta, SPEC, key);
    expect(beta.status).toBe(201);
    expect(beta.body['id']).not.toBe(first.body['id']);
  });

  it("refuses a job whose output is another existing job's (409 naming output and that job) until that job is purged", async () => {
    const spec = { ...SPEC, name: 'shared-out', output: 'shared' };
    const first = await submitOk(TOKENS.alpha, spec);
    // The same place written another way (file://, a path inside the tenant's outputs) is the same place.
    for (const output of ['shared', 'shared/', './shared']) {
      const second = await submit(TOKENS.alpha, { ...spec, name: 'second', output });
      expect(second.status, JSON.stringify(second.body)).toBe(409);
      const err = errorOf({ json: () => second.body });
      expect(err).toMatchObject({ code: 'CONFLICT', field: 'output' });
      expect(err.message).toContain(`is the output of job ${first}`);
      expect(err.details).toEqual({ jobId: first });
    }
    // Replaying the first job's Idempotency-Key is not a conflict with itself.
    const keyed = { ...spec, name: 'keyed', output: 'keyed-out' };
    const k1 = await submit(TOKENS.alpha, keyed, { 'idempotency-key': 'out-once' });
    const k2 = await submit(TOKENS.alpha, keyed, { 'idempotency-key': 'out-once' });
    expect([k1.status, k2.status]).toEqual([201, 200]);
    expect(k2.body['id']).toBe(k1.body['id']);
    // Another tenant's directory of the same name is another place.
    expect((await submit(TOKENS.beta, spec)).status).toBe(201);
    // Once the first job is purged, its place is free.
    await api.app.inject({ method: 'POST', url: `/v1/jobs/${first}/cancel`, headers: bearer(TOKENS.alpha) });
    expect((await api.app.inject({ method: 'POST', url: `/v1/jobs/${first}/purge`, headers: bearer(TOKENS.alpha) })).statusCode).toBe(200);
    expect(await api.client.exists(`locus:output:file://${String((await api.jobs.get(await submitOk(TOKENS.alpha, spec), 'alpha')).outputDir)}`)).toBe(1);
  });

  it('checks the spec before readiness: a bad spec is a 400 while not ready, a good one a 503', async () => {
    readiness.subscribed = false;
    try {
      const bad = await submit(TOKENS.alpha, { ...SPEC, task: { command: ['x'], resources: { mem: 'lots' } } });
      expect(bad.status).toBe(400);
      expect(errorOf({ json: () => bad.body })).toMatchObject({ code: 'INVALID_FIELD', field: 'task.resources.mem' });
      const yaml = await submit(TOKENS.alpha, 'name: y\ninputs: local://words/\ntask: {command: ["{foo}"]}\n', { 'content-type': 'application/yaml' });
      expect(yaml.status).toBe(400);
      const good = await submit(TOKENS.alpha, SPEC);
      expect(good.status).toBe(503);
      expect(errorOf({ json: () => good.body }).code).toBe('NOT_READY');
    } finally {
      readiness.subscribed = true;
    }
  });

  it('lets the admin submit for a tenant, and refuses a tenant acting for another', async () => {
    const id = await submitOk(TOKENS.admin, SPEC, {}, '?tenant=beta');
    expect((await api.jobs.get(id)).tenant).toBe('beta');
    const r = await submit(TOKENS.alpha, SPEC, {}, '?tenant=beta');
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ error: { code: 'FORBIDDEN', field: 'tenant' } });
    const admin = await submitOk(TOKENS.admin);
    expect((await api.jobs.get(admin)).tenant).toBe('default');
  });

  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 8 }, (_, i) => {
    const prev = i === 0 ? 'a' : `l${i - 1}`;
    return `l${i}: &l${i} [${Array(10).fill(`*${prev}`).join(', ')}]`;
  }), 'name: boom', 'inputs: local://words/', 'task: {command: [true]}'].join('\n');

  const table: [string, string | object, string, number, string, string | undefined][] = [
    ['missing name', { inputs: ['local://words/'], task: { command: ['x'] } }, 'application/json', 400, 'INVALID_FIELD', 'name'],
    ['unknown field', { ...SPEC, colour: 'red' }, 'application/json', 400, 'INVALID_FIELD', 'colour'],
    ['empty command', { ...SPEC, task: { command: [] } }, 'application/json', 400, 'INVALID_FIELD', 'task.command'],
    ['{output} in a stage of outputs: none', { ...SPEC, task: { command: ['x', '{output}/y'] }, outputs: 'none' }, 'application/json', 400, 'INVALID_FIELD', 'task.command[1]'],
    ['bad memory size', { ...SPEC, task: { command: ['x'], resources: { mem: 'lots' } } }, 'application/json', 400, 'INVALID_FIELD', 'task.resources.mem'],
    ['input not a URI', { ...SPEC, inputs: ['just words'] }, 'application/json', 400, 'INVALID_FIELD', 'inputs[0]'],
    ['unknown placeholder', { ...SPEC, task: { command: ['x', '{nope}'] } }, 'application/json', 400, 'INVALID_FIELD', 'task.command[1]'],
    ['stage refers forward', { name: 'j', stages: [{ name: 'a', inputs: ['stage:b'], task: { command: ['x'] } }, { name: 'b', inputs: ['local://words/'], task: { command: ['x'] } }] }, 'application/json', 400, 'INVALID_FIELD', 'stages[0].inputs[0]'],
    ['YAML field error', 'name: y\ninputs: local://words/\ntask:\n  command: [x]\n  resources: {cpus: -1}\n', 'application/yaml', 400, 'INVALID_FIELD', 'task.resources.cpus'],
    ['malformed JSON', '{"name": "a", ', 'application/json', 400, 'INVALID_BODY', 'body'],
    ['malformed YAML', 'name: [unclosed\n  - x: :', 'application/yaml', 400, 'INVALID_BODY', undefined],
    ['a number, not a spec', '12', 'application/json', 400, 'INVALID_FIELD', 'body'],
    ['alias bomb', bomb, 'application/yaml', 400, 'INVALID_BODY', undefined],
    // Valid JSON: refused for the key, which is named, not as "not valid JSON".
    ['prototype pollution', '{"name":"p","inputs":["local://words/"],"task":{"command":["x"]},"__proto__":{"admin":true}}', 'application/json', 400, 'INVALID_FIELD', '__proto__'],
    ['a __proto__ label', '{"name":"p","inputs":["local://words/"],"task":{"command":["x"]},"labels":{"__proto__":"x"}}', 'application/json', 400, 'INVALID_FIELD', 'labels.__proto__'],
    ['an escaped __proto__ key', '{"name":"p","inputs":["local://words/"],"task":{"command":["x"]},"labels":{"__pro\\u0074o__":"x"}}', 'application/json', 400, 'INVALID_FIELD', 'labels.__proto__'],
    ['a __proto__ label in YAML', 'name: p\ninputs: local://words/\ntask: {command: [x]}\nlabels: {__proto__: x}\n', 'application/yaml', 400, 'INVALID_FIELD', 'labels.__proto__'],
    ['oversized JSON body', { ...SPEC, labels: { big: 'x'.repeat(2 * 1024 * 1024) } }, 'application/json', 413, 'TOO_LARGE', 'body'],
    ['oversized YAML body', `name: big\n# ${'x'.repeat(2 * 1024 * 1024)}\ninputs: local://words/\ntask: {command: [x]}\n`, 'application/yaml', 413, 'TOO_LARGE', 'body'],
  ];

  it.each(table)('%s → %i %s', async (_what, body, type, status, code, field) => {
    const before = (await api.jobs.list()).length;
    const r = await submit(TOKENS.alpha, body, { 'content-type': type });
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(status);
    const err = errorOf({ json: () => r.body });
    // A row without a field says the error names none (toEqual treats a missing key as undefined).
    expect({ code: err.code, field: err.field }).toEqual({ code, field });
    expect((await api.jobs.list()).length).toBe(before);
  });

  // The rows whose error is about one field of the spec: the message names it too.
  const fieldRows = table.filter(([, , , , code, field]) => code === 'INVALID_FIELD' && field !== undefined && field !== 'body');
  it.each(fieldRows)('%s: the message names the field', async (_what, body, type, _status, _code, field) => {
    const r = await submit(TOKENS.alpha, body, { 'content-type': type });
    expect(errorOf({ json: () => r.body }).message).toContain(field);
  });

  it('documents the routes and the YAML body in OpenAPI', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([
      '/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/tasks', '/v1/jobs/{id}/cancel', '/v1/jobs/{id}/events',
      '/v1/tasks/{id}/logs', '/v1/tasks/{id}/explain', '/v1/cluster',
    ]));
    expect(Object.keys(doc.paths['/v1/jobs']?.['post']?.requestBody?.content ?? {})).toEqual(expect.arrayContaining(['application/json', 'application/yaml', 'text/yaml']));
  });
});

describe('tenant isolation', () => {
  let alphaJob: string;
  let alphaTask: string;

  beforeAll(async () => {
    alphaJob = await submitOk(TOKENS.alpha);
    [alphaTask = ''] = await api.waitPending(alphaJob, WORD_FILES);
  });

  it('answers 401 without a token on every job route', async () => {
    for (const [method, url] of [
      ['POST', '/v1/jobs'], ['GET', '/v1/jobs'], ['GET', `/v1/jobs/${alphaJob}`], ['GET', `/v1/jobs/${alphaJob}/tasks`],
      ['POST', `/v1/jobs/${alphaJob}/cancel`], ['GET', `/v1/jobs/${alphaJob}/events`], ['GET', `/v1/tasks/${alphaTask}/logs`],
      ['GET', `/v1/tasks/${alphaTask}/explain`], ['GET', '/v1/cluster'],
    ] as const) {
      const res = await api.app.inject({ method, url });
      expect(res.statusCode, `${method} ${url}`).toBe(401);
    }
  });

  it("answers 404 for another tenant's job or task on every route", async () => {
    for (const [method, url] of [
      ['GET', `/v1/jobs/${alphaJob}`], ['GET', `/v1/jobs/${alphaJob}/tasks`], ['POST', `/v1/jobs/${alphaJob}/cancel`],
      ['GET', `/v1/jobs/${alphaJob}/events`], ['GET', `/v1/tasks/${alphaTask}/logs`], ['GET', `/v1/tasks/${alphaTask}/logs?follow=true`],
      ['GET', `/v1/tasks/${alphaTask}/explain`],
    ] as const) {
      const res = await api.app.inject({ method, url, headers: bearer(TOKENS.beta) });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(errorOf(res).code).toBe('NOT_FOUND');
      // The same answer as for a job that never existed.
      const none = await api.app.inject({ method, url: url.replace(alphaJob, 'job-00000000-0000-0000-0000-000000000000'), headers: bearer(TOKENS.beta) });
      expect(none.statusCode).toBe(404);
    }
    expect((await api.jobs.get(alphaJob)).state).toBe('RUNNING');
  });

  it('lists only the caller’s jobs; naming another tenant is 403; the admin sees all', async () => {
    const beta = (await api.app.inject({ method: 'GET', url: '/v1/jobs', headers: bearer(TOKENS.beta) })).json() as { jobs: { id: string; tenant: string }[] };
    expect(beta.jobs.length).toBeGreaterThan(0);
    expect(beta.jobs.every((j) => j.tenant === 'beta')).toBe(true);
    const forbidden = await api.app.inject({ method: 'GET', url: '/v1/jobs?tenant=alpha', headers: bearer(TOKENS.beta) });
    expect(forbidden.statusCode).toBe(403);
    const forbiddenOne = await api.app.inject({ method: 'GET', url: `/v1/jobs/${alphaJob}?tenant=alpha`, headers: bearer(TOKENS.beta) });
    expect(forbiddenOne.statusCode).toBe(403);
    const admin = (await api.app.inject({ method: 'GET', url: '/v1/jobs', headers: bearer(TOKENS.admin) })).json() as { jobs: { id: string; tenant: string }[] };
    expect(new Set(admin.jobs.map((j) => j.tenant))).toEqual(new Set(['alpha', 'beta', 'default']));
    const adminAlpha = (await api.app.inject({ method: 'GET', url: '/v1/jobs?tenant=alpha&state=RUNNING', headers: bearer(TOKENS.admin) })).json() as { jobs: { tenant: string; state: string }[] };
    expect(adminAlpha.jobs.every((j) => j.tenant === 'alpha' && j.state === 'RUNNING')).toBe(true);
    expect((await api.app.inject({ method: 'GET', url: `/v1/jobs/${alphaJob}`, headers: bearer(TOKENS.admin) })).statusCode).toBe(200);
    // A tenant that is not configured is a mistake, not an empty list.
    const typo = await api.app.inject({ method: 'GET', url: '/v1/jobs?tenant=alpah', headers: bearer(TOKENS.admin) });
    expect(typo.statusCode).toBe(404);
    expect(typo.json()).toMatchObject({ error: { code: 'NOT_FOUND', field: 'tenant' } });
    expect((typo.json() as { error: { message: string } }).error.message).toContain("no tenant 'alpah' (tenants: alpha, beta, default)");
  });

  it('shows the cluster to tenants without other tenants’ executor ownership', async () => {
    const admin = (await api.app.inject({ method: 'GET', url: '/v1/cluster', headers: bearer(TOKENS.admin) })).json() as { executors: { id: string; tenant?: string }[]; locality: unknown };
    expect(admin.executors.map((e) => e.tenant)).toEqual(['alpha', 'beta']);
    expect(admin.locality).toEqual({ nodeLocal: 5, rackLocal: 1, any: 0 });
    const alpha = (await api.app.inject({ method: 'GET', url: '/v1/cluster', headers: bearer(TOKENS.alpha) })).json() as { executors: { id: string; tenant?: string }[] };
    expect(alpha.executors.map((e) => e.tenant)).toEqual(['alpha', undefined]);
  });

  it('explains a pending task through the coordinator', async () => {
    const res = await api.app.inject({ method: 'GET', url: `/v1/tasks/${alphaTask}/explain`, headers: bearer(TOKENS.alpha) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ taskId: alphaTask, state: 'PENDING', code: 'NOT_SUBSCRIBED' });
    const missing = await api.app.inject({ method: 'GET', url: `/v1/tasks/${alphaJob}.0.99/explain`, headers: bearer(TOKENS.alpha) });
    expect(missing.statusCode).toBe(404);
  });

  it('cancels: the job ends CANCELLED, its pending tasks are gone, a second cancel changes nothing', async () => {
    const res = await api.app.inject({ method: 'POST', url: `/v1/jobs/${alphaJob}/cancel`, headers: bearer(TOKENS.alpha) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: alphaJob, state: 'CANCELLED', message: 'cancelled by user' });
    expect([...api.jobs.pendingTasks()].filter((t) => t.jobId === alphaJob)).toEqual([]);
    const again = await api.app.inject({ method: 'POST', url: `/v1/jobs/${alphaJob}/cancel`, headers: bearer(TOKENS.alpha) });
    expect(again.json()).toMatchObject({ state: 'CANCELLED' });
    // The stream of a finished job is its state, then the end.
    const sse = await fetch(`${api.url}/v1/jobs/${alphaJob}/events`, { headers: bearer(TOKENS.alpha) });
    const { events } = await readSse(sse);
    expect(events).toHaveLength(1);
    expect(events[0]?.[1]).toMatchObject({ kind: 'job', state: 'CANCELLED', job: { id: alphaJob } });
  });

  it('purges only a finished job of the caller, and its commit records with it', async () => {
    const running = await submitOk(TOKENS.alpha);
    const busy = await api.app.inject({ method: 'POST', url: `/v1/jobs/${running}/purge`, headers: bearer(TOKENS.alpha) });
    expect(busy.statusCode).toBe(409);
    expect(errorOf(busy).code).toBe('CONFLICT');
    // As executors write them: one record per task that committed.
    const keys = Array.from({ length: WORD_FILES }, (_, i) => `locus:commit:${alphaJob}.0.${i}`);
    for (const k of keys) await api.client.set(k, '{}');
    const foreign = await api.app.inject({ method: 'POST', url: `/v1/jobs/${alphaJob}/purge`, headers: bearer(TOKENS.beta) });
    expect(foreign.statusCode).toBe(404);
    expect(await api.client.exists(...keys)).toBe(WORD_FILES);
    const res = await api.app.inject({ method: 'POST', url: `/v1/jobs/${alphaJob}/purge`, headers: bearer(TOKENS.alpha) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ jobId: alphaJob, commitRecords: WORD_FILES });
    expect(await api.client.exists(...keys)).toBe(0);
    expect((await api.app.inject({ method: 'GET', url: `/v1/jobs/${alphaJob}`, headers: bearer(TOKENS.alpha) })).statusCode).toBe(404);
    await api.app.inject({ method: 'POST', url: `/v1/jobs/${running}/cancel`, headers: bearer(TOKENS.alpha) });
  });
});

describe('server-sent events', () => {
  it('streams the current state, then task and job events until the job succeeds', async () => {
    const id = await submitOk(TOKENS.alpha);
    const tasks = await api.waitPending(id, WORD_FILES);
    const res = await fetch(`${api.url}/v1/jobs/${id}/events`, { headers: bearer(TOKENS.alpha) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reading = readSse(res);
    await until('the stream to be watched', async () => (api.activeStreams() > 0 ? true : undefined));
    for (const t of tasks) {
      const attempt = await api.start(t, t.endsWith('.1') ? 'agent-c' : 'agent-a');
      await api.finish(t, attempt);
    }
    const { events } = await reading;
    const [first, ...rest] = events;
    expect(first?.[0]).toBe('job');
    expect(first?.[1]).toMatchObject({ kind: 'job', jobId: id, state: 'RUNNING', counts: { pending: WORD_FILES }, job: { id, tenant: 'alpha' } });
    const taskEvents = rest.filter(([e]) => e === 'task').map(([, d]) => `${String(d['taskId'])}:${String(d['state'])}`);
    for (const t of tasks) expect(taskEvents).toEqual(expect.arrayContaining([`${t}:RUNNING`, `${t}:SUCCEEDED`]));
    const running = rest.find(([e, d]) => e === 'task' && d['state'] === 'RUNNING');
    expect(running?.[1]).toMatchObject({ host: expect.any(String), locality: 'node-local' });
    const last = events[events.length - 1];
    expect(last?.[0]).toBe('job');
    expect(last?.[1]).toMatchObject({ state: 'SUCCEEDED', counts: { succeeded: WORD_FILES, total: WORD_FILES, locality: { nodeLocal: WORD_FILES } } });
    await until('the stream to be released', async () => (api.activeStreams() === 0 ? true : undefined));
  });

  it('sends heartbeats and releases the stream when the client goes away', async () => {
    const id = await submitOk(TOKENS.alpha);
    await api.waitPending(id, WORD_FILES);
    const abort = new AbortController();
    const res = await fetch(`${api.url}/v1/jobs/${id}/events`, { headers: bearer(TOKENS.alpha), signal: abort.signal });
    const reader = res.body?.getReader();
    let text = '';
    const deadline = Date.now() + 5000;
    while (!text.includes(': heartbeat') && Date.now() < deadline) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      text += Buffer.from(chunk.value).toString('utf8');
    }
    expect(text).toContain('event: job');
    expect(text).toContain(': heartbeat');
    expect(api.activeStreams()).toBe(1);
    abort.abort();
    await until('the stream to be released', async () => (api.activeStreams() === 0 ? true : undefined));
    // A later event for the job reaches no closed stream (and nothing throws).
    await api.app.inject({ method: 'POST', url: `/v1/jobs/${id}/cancel`, headers: bearer(TOKENS.alpha) });
  });

  it('ends the stream with FAILED when a task fails beyond its retries', async () => {
    const id = await submitOk(TOKENS.beta, { ...SPEC, retries: 0 });
    const [t] = await api.waitPending(id, WORD_FILES);
    const res = await fetch(`${api.url}/v1/jobs/${id}/events`, { headers: bearer(TOKENS.beta) });
    const reading = readSse(res);
    await until('the stream to be watched', async () => (api.activeStreams() > 0 ? true : undefined));
    await api.finish(t ?? '', await api.start(t ?? ''), 'FAILED');
    const { events } = await reading;
    expect(events.find(([e, d]) => e === 'task' && d['state'] === 'FAILED')).toBeDefined();
    expect(events[events.length - 1]?.[1]).toMatchObject({ kind: 'job', state: 'FAILED', counts: { failed: 1 } });
  });
});

describe('logs', () => {
  it('reads stdout and stderr of a finished attempt, whole or the last N lines', async () => {
    const id = await submitOk(TOKENS.alpha);
    const [t = ''] = await api.waitPending(id, WORD_FILES);
    const sandbox = join(api.agentRoot, 'sandbox-1');
    await mkdir(sandbox, { recursive: true });
    await writeFile(join(sandbox, 'stdout'), 'one\ntwo\nthree\nfour\n');
    await writeFile(join(sandbox, 'stderr'), 'warning: ünïcödé\n');
    const attempt = await api.start(t);
    // While running, the sandbox is not recorded yet: a plain read says so.
    const early = await api.app.inject({ method: 'GET', url: `/v1/tasks/${t}/logs`, headers: bearer(TOKENS.alpha) });
    expect(early.statusCode).toBe(409);
    expect(errorOf(early).code).toBe('WRONG_STATE');
    await api.finish(t, attempt, 'SUCCEEDED', sandbox);
    const all = await api.app.inject({ method: 'GET', url: `/v1/tasks/${t}/logs`, headers: bearer(TOKENS.alpha) });
    expect(all.statusCode).toBe(200);
    expect(all.headers['content-type']).toContain('text/plain');
    expect(all.headers['locus-attempt']).toBe(attempt);
    expect(all.body).toBe('one\ntwo\nthree\nfour\n');
    const tail = await api.app.inject({ method: 'GET', url: `/v1/tasks/${t}/logs?tail=2`, headers: bearer(TOKENS.alpha) });
    expect(tail.body).toBe('three\nfour\n');
    const err = await api.app.inject({ method: 'GET', url: `/v1/tasks/${t}/logs?stream=stderr`, headers: bearer(TOKENS.alpha) });
    expect(err.body).toBe('warning: ünïcödé\n');
    const bad = await api.app.inject({ method: 'GET', url: `/v1/tasks/${t}/logs?stream=both`, headers: bearer(TOKENS.alpha) });
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).field).toBe('stream');
    const pending = await api.app.inject({ method: 'GET', url: `/v1/tasks/${id}.0.2/logs`, headers: bearer(TOKENS.alpha) });
    expect(pending.statusCode).toBe(409);
    // An empty log of an ended attempt is an empty log while its file is there...
    await writeFile(join(sandbox, 'stderr'), '');
    const empty = await api.app.inject({ method: 'GET', url: `/v1/tasks/${t}/logs?stream=stderr`, headers: bearer(TOKENS.alpha) });
    expect(empty.statusCode).toBe(200);
    expect(empty.body).toBe('');
    // ...and a clear 404 once its executor removed the sandbox (executor-kept-sandboxes).
    await rm(sandbox, { recursive: true, force: true });
    // (follow=true on a task that has ended reads that attempt's log and ends: the same answer.)
    for (const q of ['', '?tail=5', '?stream=stderr', '?follow=true', '?follow=true&tail=3']) {
      const goneRes = await api.app.inject({ method: 'GET', url: `/v1/tasks/${t}/logs${q}`, headers: bearer(TOKENS.alpha) });
      expect(goneRes.statusCode, q).toBe(404);
      expect(errorOf(goneRes)).toMatchObject({ code: 'NOT_FOUND', details: { reason: 'SANDBOX_REMOVED' } });
      expect(errorOf(goneRes).message).toMatch(/sandbox.*most likely removed.*executor-kept-sandboxes/);
    }
  });

  it('a running attempt whose log file is not there yet reads as empty, not as removed', async () => {
    const id = await submitOk(TOKENS.alpha);
    const [t = ''] = await api.waitPending(id, WORD_FILES);
    await api.start(t);
    // The executor has reported the sandbox (recorded on the attempt); the workload has written nothing.
    const field = t.slice(id.length + 1);
    const raw = await api.client.hget(`locus:job:${id}:tasks`, field);
    const rec = JSON.parse(raw ?? '{}') as { attempts: Record<string, unknown>[] };
    rec.attempts[0] = { ...rec.attempts[0], sandboxDir: join(api.agentRoot, 'not-made-yet') };
    await api.client.hset(`locus:job:${id}:tasks`, field, JSON.stringify(rec));
    const res = await api.app.inject({ method: 'GET', url: `/v1/tasks/${t}/logs`, headers: bearer(TOKENS.alpha) });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
  });

  it('follows a running attempt as it grows, across a retry, until the task ends', async () => {
    const id = await submitOk(TOKENS.alpha, { ...SPEC, retries: 2 });
    const [t = ''] = await api.waitPending(id, WORD_FILES);
    const dir1 = join(api.agentRoot, 'follow-1');
    const dir2 = join(api.agentRoot, 'follow-2');
    await mkdir(dir1, { recursive: true });
    await mkdir(dir2, { recursive: true });
    await writeFile(join(dir1, 'stdout'), 'a1\na2\na3\n');
    const a1 = await api.start(t);
    // The executor reports the sandbox of a running attempt: recorded on the attempt.
    const field = t.slice(id.length + 1);
    const raw = await api.client.hget(`locus:job:${id}:tasks`, field);
    const rec = JSON.parse(raw ?? '{}') as { attempts: Record<string, unknown>[] };
    rec.attempts[0] = { ...rec.attempts[0], sandboxDir: dir1 };
    await api.client.hset(`locus:job:${id}:tasks`, field, JSON.stringify(rec));

    const res = await fetch(`${api.url}/v1/tasks/${t}/logs?follow=true&tail=1`, { headers: bearer(TOKENS.alpha) });
    expect(res.status).toBe(200);
    const reader = res.body?.getReader();
    let text = '';
    const readUntil = async (needle: string): Promise<void> => {
      const deadline = Date.now() + 5000;
      while (!text.includes(needle)) {
        if (Date.now() > deadline) throw new Error(`no '${needle}' in ${JSON.stringify(text)}`);
        const chunk = await reader?.read();
        if (!chunk || chunk.done) throw new Error(`stream ended without '${needle}': ${JSON.stringify(text)}`);
        text += Buffer.from(chunk.value).toString('utf8');
      }
    };
    await readUntil('a3\n');
    expect(text).toBe('a3\n');
    await appendFile(join(dir1, 'stdout'), 'a4\n');
    await readUntil('a4\n');
    await appendFile(join(dir1, 'stdout'), 'a5\n');
    await api.finish(t, a1, 'FAILED', dir1);
    await readUntil('a5\n');
    await writeFile(join(dir2, 'stdout'), 'b1\n');
    const a2 = await api.start(t);
    await readUntil('attempt 2');
    await api.finish(t, a2, 'SUCCEEDED', dir2);
    await readUntil('b1\n');
    const end = await reader?.read();
    expect(end?.done).toBe(true);
    expect(text).toBe(`a3\na4\na5\n\n==> ${t} attempt 2 on agent-a <==\nb1\n`);
    await until('the follow to be released', async () => (api.activeStreams() === 0 ? true : undefined));
    // Following a named attempt gives that attempt's log alone, not its retry's.
    const one = await fetch(`${api.url}/v1/tasks/${t}/logs?follow=true&attempt=1`, { headers: bearer(TOKENS.alpha) });
    expect(one.status).toBe(200);
    expect(await one.text()).toBe('a1\na2\na3\na4\na5\n');
  });
});
