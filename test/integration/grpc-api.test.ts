/**
 * The gRPC API (locus.v1) against `locus up` run as a child process with a
 * tenants file (alpha, beta) and a fixed admin token: authentication by
 * metadata, tenant isolation, field-named INVALID_ARGUMENT for bad specs,
 * status codes from the error catalog, CancelJob with a WatchJob stream that
 * ends CANCELLED, and the volume calls on a subscribed framework.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/api/auth.js';
import {
  buildIfStale, grpcClient, grpcError, startUpProcess, tempStateDir, until, waitReady, type LocusGrpc, type UpProcess,
} from './surfaces-harness.js';

const TOKENS = { admin: 'grpc-admin-token-0123456789', alpha: 'grpc-alpha-token-0123456789', beta: 'grpc-beta-token-0123456789' } as const;

let stateDir: string;
let up: UpProcess;
let rpc: LocusGrpc;

const SLEEPY = (name: string): string => `name: ${name}
retries: 0
tasks: [{ command: [sleep, "30"] }]
task: { command: ['true'], resources: { cpus: 0.1, mem: 32MiB, disk: 8MiB } }
`;
const QUICK = (name: string): string => JSON.stringify({ name, retries: 0, tasks: [{ command: ['true'] }], task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } } });

/** The Locus error code and field a failed call carries in its trailing metadata. */
function locusCode(err: grpc.ServiceError): { code: unknown; field: unknown } {
  return { code: err.metadata?.get('locus-error-code')[0], field: err.metadata?.get('locus-error-field')[0] };
}

beforeAll(async () => {
  buildIfStale();
  stateDir = tempStateDir('locus-grpc-');
  const tenantsFile = join(stateDir, 'tenants.yaml');
  writeFileSync(tenantsFile, [
    'tenants:',
    `  - { name: alpha, role: alpha, weight: 1, tokenSha256: ${hashToken(TOKENS.alpha)} }`,
    `  - { name: beta, role: beta, weight: 2, tokenSha256: ${hashToken(TOKENS.beta)} }`,
    '',
  ].join('\n'));
  up = await startUpProcess(stateDir, ['--agents', '2', '--tenants-file', tenantsFile, '--admin-token', TOKENS.admin]);
  rpc = grpcClient(up.grpcAddress);
  await waitReady(up.httpUrl);
}, 90_000);

afterAll(async () => {
  rpc?.close();
  // Ctrl-C: a clean stop, exit 0.
  const code = await up?.stop('SIGINT');
  await up?.dispose();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  // Asserted even when beforeAll failed (code is then undefined): a stop that was never checked is not a pass.
  expect(code, up?.stderr().slice(-3000)).toBe(0);
}, 30_000);

describe('authentication', () => {
  it('up printed the admin token it was given', () => {
    expect(up.adminToken).toBe(TOKENS.admin);
  });

  it('a missing token is UNAUTHENTICATED on unary calls and on WatchJob', async () => {
    for (const method of ['ListJobs', 'GetJob', 'SubmitJob', 'CancelJob', 'ListVolumes', 'ReserveVolume', 'DeleteVolume']) {
      const err = await grpcError(rpc.unary(method, { id: 'job-x', name: 'v', spec: QUICK('nope') }));
      expect(err.code, method).toBe(grpc.status.UNAUTHENTICATED);
      expect(locusCode(err), method).toMatchObject({ code: 'UNAUTHENTICATED', field: 'Authorization' });
      expect(err.details).toMatch(/^UNAUTHENTICATED: /);
    }
    const watch = await grpcError(rpc.watch('job-x'));
    expect(watch.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('an invalid token (or not a Bearer token) is UNAUTHENTICATED, and nothing was created', async () => {
    expect((await grpcError(rpc.unary('SubmitJob', { spec: QUICK('nope') }, 'not-a-token'))).code).toBe(grpc.status.UNAUTHENTICATED);
    const md = new grpc.Metadata();
    md.set('authorization', `Basic ${TOKENS.admin}`);
    const basic = await new Promise<grpc.ServiceError | null>((resolve) => {
      const list = (rpc.raw as unknown as Record<string, (r: unknown, m: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void) => void>)['ListJobs'];
      list?.call(rpc.raw, {}, md, (e) => resolve(e));
    });
    expect(basic?.code).toBe(grpc.status.UNAUTHENTICATED);
    const jobs = (await rpc.unary('ListJobs', {}, TOKENS.admin))['jobs'] as { name: string }[];
    expect(jobs.filter((j) => j.name === 'nope')).toHaveLength(0);
  });
});

describe('bad job specs', () => {
  const cases: [string, string, string][] = [
    ['an empty command', 'name: x\ntasks: [{command: [true]}]\ntask: {command: []}\n', 'task.command'],
    ['a size that is not one', 'name: x\ntasks: [{command: [true]}]\ntask: {command: [true], resources: {mem: 12 parsecs}}\n', 'task.resources.mem'],
    ['a bad name', 'name: "bad name!"\ntasks: [{command: [true]}]\ntask: {command: [true]}\n', 'name'],
    ['no task and no command', 'name: x\ntasks: [{env: {A: b}}]\n', 'tasks[0].command'],
    ['no task and no explicit tasks', 'name: x\ninputs: [local://words/]\n', 'task'],
  ];
  for (const [what, spec, field] of cases) {
    it(`${what}: INVALID_ARGUMENT naming ${field}`, async () => {
      const err = await grpcError(rpc.unary('SubmitJob', { spec }, TOKENS.alpha));
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details.startsWith(`INVALID_FIELD: ${field}: `), err.details).toBe(true);
      expect(locusCode(err)).toEqual({ code: 'INVALID_FIELD', field });
    });
  }

  it('text that is not YAML is INVALID_ARGUMENT (INVALID_BODY); an oversized spec is RESOURCE_EXHAUSTED (TOO_LARGE)', async () => {
    const yaml = await grpcError(rpc.unary('SubmitJob', { spec: 'a: : [' }, TOKENS.alpha));
    expect(yaml.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(locusCode(yaml).code).toBe('INVALID_BODY');
    const big = await grpcError(rpc.unary('SubmitJob', { spec: `name: x\n# ${'z'.repeat(1024 * 1024)}\n` }, TOKENS.alpha));
    expect(big.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(locusCode(big).code).toBe('TOO_LARGE');
  });
});

describe('tenants and jobs', () => {
  let alphaJob = '';
  let betaJob = '';

  it('each tenant submits; the job carries its tenant', async () => {
    const a = await rpc.unary('SubmitJob', { spec: SLEEPY('alpha-sleepy') }, TOKENS.alpha);
    const b = await rpc.unary('SubmitJob', { spec: QUICK('beta-quick') }, TOKENS.beta);
    expect(a).toMatchObject({ tenant: 'alpha', name: 'alpha-sleepy' });
    expect(b).toMatchObject({ tenant: 'beta', name: 'beta-quick' });
    alphaJob = String(a['id']);
    betaJob = String(b['id']);
    // Idempotency: the same key and spec give the same job.
    const k1 = await rpc.unary('SubmitJob', { spec: QUICK('beta-idem'), idempotency_key: 'k-1' }, TOKENS.beta);
    const k2 = await rpc.unary('SubmitJob', { spec: QUICK('beta-idem'), idempotency_key: 'k-1' }, TOKENS.beta);
    expect(k2['id']).toBe(k1['id']);
    // The same key with another spec is refused, as over HTTP (409 CONFLICT); nothing is submitted.
    const other = await grpcError(rpc.unary('SubmitJob', { spec: QUICK('beta-idem-other'), idempotency_key: 'k-1' }, TOKENS.beta));
    expect(other.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(other.metadata.get('locus-error-code')).toEqual(['CONFLICT']);
    expect(other.metadata.get('locus-error-field')).toEqual(['idempotency_key']);
    expect(other.details).toContain(String(k1['id']));
    // Keys HTTP refuses are refused here too, naming the field.
    for (const key of ['has space', 'k'.repeat(201)]) {
      const bad = await grpcError(rpc.unary('SubmitJob', { spec: QUICK('beta-idem-bad'), idempotency_key: key }, TOKENS.beta));
      expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(bad.metadata.get('locus-error-field')).toEqual(['idempotency_key']);
    }
    const listed = (await rpc.unary('ListJobs', {}, TOKENS.beta))['jobs'] as { name?: string }[];
    expect(listed.filter((j) => j.name === 'beta-idem-other' || j.name === 'beta-idem-bad')).toEqual([]);
  });

  it('a malformed job id is INVALID_ARGUMENT naming id, as over HTTP, for GetJob, CancelJob and WatchJob', async () => {
    for (const method of ['GetJob', 'CancelJob']) {
      const err = await grpcError(rpc.unary(method, { id: '../../x' }, TOKENS.alpha));
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.metadata.get('locus-error-field')).toEqual(['id']);
    }
    expect((await grpcError(rpc.watch('../../x', TOKENS.alpha))).code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("another tenant's job is NOT_FOUND for GetJob, CancelJob and WatchJob", async () => {
    for (const method of ['GetJob', 'CancelJob']) {
      const err = await grpcError(rpc.unary(method, { id: alphaJob }, TOKENS.beta));
      expect(err.code, method).toBe(grpc.status.NOT_FOUND);
      expect(locusCode(err).code).toBe('NOT_FOUND');
    }
    expect((await grpcError(rpc.watch(alphaJob, TOKENS.beta, 10_000))).code).toBe(grpc.status.NOT_FOUND);
    expect((await grpcError(rpc.unary('GetJob', { id: 'job-does-not-exist' }, TOKENS.admin))).code).toBe(grpc.status.NOT_FOUND);
    // The owner and the admin see it.
    expect(await rpc.unary('GetJob', { id: alphaJob }, TOKENS.alpha)).toMatchObject({ id: alphaJob, tenant: 'alpha' });
    expect(await rpc.unary('GetJob', { id: alphaJob }, TOKENS.admin)).toMatchObject({ id: alphaJob, tenant: 'alpha' });
  });

  it('ListJobs is scoped per tenant; the admin sees all or filters', async () => {
    const ids = async (token: string, tenant?: string): Promise<{ id: string; tenant: string }[]> =>
      (await rpc.unary('ListJobs', tenant ? { tenant } : {}, token))['jobs'] as { id: string; tenant: string }[];
    const alpha = await ids(TOKENS.alpha);
    expect(alpha.map((j) => j.id)).toContain(alphaJob);
    expect(alpha.every((j) => j.tenant === 'alpha')).toBe(true);
    const beta = await ids(TOKENS.beta);
    expect(beta.map((j) => j.id)).toContain(betaJob);
    expect(beta.map((j) => j.id)).not.toContain(alphaJob);
    const all = (await ids(TOKENS.admin)).map((j) => j.id);
    expect(all).toEqual(expect.arrayContaining([alphaJob, betaJob]));
    const filtered = await ids(TOKENS.admin, 'beta');
    expect(filtered.every((j) => j.tenant === 'beta') && filtered.some((j) => j.id === betaJob)).toBe(true);
    // A tenant that is not configured is a mistake, not an empty list.
    const typo = await grpcError(rpc.unary('ListJobs', { tenant: 'betta' }, TOKENS.admin));
    expect(typo.code).toBe(grpc.status.NOT_FOUND);
    expect(locusCode(typo)).toEqual({ code: 'NOT_FOUND', field: 'tenant' });
    // A tenant may not list or act for another.
    expect((await grpcError(rpc.unary('ListJobs', { tenant: 'beta' }, TOKENS.alpha))).code).toBe(grpc.status.PERMISSION_DENIED);
    const forOther = await grpcError(rpc.unary('SubmitJob', { spec: QUICK('x'), tenant: 'beta' }, TOKENS.alpha));
    expect(forOther.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(locusCode(forOther)).toEqual({ code: 'FORBIDDEN', field: 'tenant' });
    // The admin may submit for a tenant, but not for one that does not exist.
    expect(await rpc.unary('SubmitJob', { spec: QUICK('for-beta'), tenant: 'beta' }, TOKENS.admin)).toMatchObject({ tenant: 'beta' });
    expect((await grpcError(rpc.unary('SubmitJob', { spec: QUICK('x'), tenant: 'nosuch' }, TOKENS.admin))).code).toBe(grpc.status.NOT_FOUND);
  });

  it('WatchJob streams the quick job to SUCCEEDED', async () => {
    const events = await rpc.watch(betaJob, TOKENS.beta);
    expect(events[0]).toMatchObject({ kind: 'job', job_id: betaJob });
    expect(events[events.length - 1]).toMatchObject({ kind: 'job', state: 'SUCCEEDED', counts: { succeeded: 1, total: 1 } });
  });

  it('CancelJob cancels a running job; its WatchJob stream ends CANCELLED', async () => {
    await until('the sleepy job to run', async () => {
      const j = await rpc.unary('GetJob', { id: alphaJob }, TOKENS.alpha);
      return (j['counts'] as { running: number }).running > 0 ? true : undefined;
    }, 30_000, 200);
    const watching = rpc.watch(alphaJob, TOKENS.alpha, 30_000);
    // Let the stream open (its first message is the current state) before cancelling.
    await new Promise((r) => setTimeout(r, 300));
    const cancelled = await rpc.unary('CancelJob', { id: alphaJob }, TOKENS.alpha);
    expect(cancelled).toMatchObject({ id: alphaJob, state: 'CANCELLED' });
    const events = await watching;
    expect(events[0]).toMatchObject({ kind: 'job', state: 'RUNNING' });
    expect(events[events.length - 1]).toMatchObject({ kind: 'job', state: 'CANCELLED' });
    // Cancelling a finished job changes nothing.
    expect(await rpc.unary('CancelJob', { id: alphaJob }, TOKENS.admin)).toMatchObject({ state: 'CANCELLED' });
  }, 45_000);
});

describe('volumes', () => {
  it('validation errors are INVALID_ARGUMENT naming the field', async () => {
    const size = await grpcError(rpc.unary('ReserveVolume', { name: 'v1', size: '10 parsecs' }, TOKENS.alpha));
    expect(size.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(locusCode(size)).toEqual({ code: 'INVALID_FIELD', field: 'size' });
    const name = await grpcError(rpc.unary('ReserveVolume', { name: 'Bad Name', size: '64MiB' }, TOKENS.alpha));
    expect(name.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(locusCode(name).field).toBe('name');
  });

  it('ReserveVolume, ListVolumes per tenant, DeleteVolume', async () => {
    const v = await rpc.unary('ReserveVolume', { name: 'scratch', size: '64MiB', container_path: 'cache', labels: { team: 'a' } }, TOKENS.alpha);
    expect(v).toMatchObject({ name: 'scratch', tenant: 'alpha', size: expect.stringMatching(/64/), container_path: 'cache', mode: 'RW' });
    expect(String(v['state'])).toMatch(/^[A-Z_]+$/);
    expect(JSON.parse(String(v['json']))).toMatchObject({ name: 'scratch', tenant: 'alpha' });
    // The same name again for the same tenant is ALREADY_EXISTS; another tenant may use it.
    const dup = await grpcError(rpc.unary('ReserveVolume', { name: 'scratch', size: '64MiB' }, TOKENS.alpha));
    expect(dup.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(await rpc.unary('ReserveVolume', { name: 'scratch', size: '32MiB' }, TOKENS.beta)).toMatchObject({ tenant: 'beta' });

    const names = async (token: string, tenant?: string): Promise<{ name: string; tenant: string }[]> =>
      (await rpc.unary('ListVolumes', tenant ? { tenant } : {}, token))['volumes'] as { name: string; tenant: string }[];
    expect((await names(TOKENS.alpha)).map((x) => `${x.tenant}/${x.name}`)).toEqual(['alpha/scratch']);
    expect((await names(TOKENS.beta)).map((x) => `${x.tenant}/${x.name}`)).toEqual(['beta/scratch']);
    expect((await names(TOKENS.admin)).map((x) => `${x.tenant}/${x.name}`).sort()).toEqual(['alpha/scratch', 'beta/scratch']);
    expect((await names(TOKENS.admin, 'beta')).map((x) => x.tenant)).toEqual(['beta']);
    expect((await grpcError(rpc.unary('ListVolumes', { tenant: 'alpha' }, TOKENS.beta))).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await grpcError(rpc.unary('ListVolumes', { tenant: 'nobody' }, TOKENS.admin))).code).toBe(grpc.status.NOT_FOUND);

    expect((await grpcError(rpc.unary('DeleteVolume', { name: 'nothing-here' }, TOKENS.alpha))).code).toBe(grpc.status.NOT_FOUND);
    // A name no volume can have is a bad request, as over HTTP.
    for (const name of ['../x', '']) {
      const bad = await grpcError(rpc.unary('DeleteVolume', { name }, TOKENS.alpha));
      expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(bad.metadata.get('locus-error-field')).toEqual(['name']);
    }
    const del = await rpc.unary('DeleteVolume', { name: 'scratch' }, TOKENS.alpha);
    expect(del).toMatchObject({ name: 'scratch', tenant: 'alpha' });
    expect(String(del['state'])).not.toBe(String(v['state']));
    // beta's volume of the same name is untouched; the admin deletes it by naming the tenant.
    expect((await names(TOKENS.beta)).map((x) => x.name)).toEqual(['scratch']);
    const adminDel = await rpc.unary('DeleteVolume', { name: 'scratch', tenant: 'beta' }, TOKENS.admin);
    expect(adminDel).toMatchObject({ name: 'scratch', tenant: 'beta' });
  });
});
