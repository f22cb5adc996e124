/**
 * One regression test per class of bug the fuzzing pass found, each at the
 * edge where the input enters, on the lightest real wiring (the job API
 * fixture: real Redis, the real fastify server; a real gRPC server on the
 * same job service; the built `locus` binary):
 *
 * 1. Node's HTTP parser refusals (a malformed request line, header or body
 *    framing; a head over the size limit) were answered with fastify's own
 *    `{"error":"Bad Request","message":"Client Error"}`, not a catalog code.
 * 2. A path that is not valid percent-encoding was answered with fastify's
 *    `FST_ERR_BAD_URL` body.
 * 3. gRPC request bytes that are not the method's message were INTERNAL
 *    ("Error deserializing request") with no Locus code.
 * 4. gRPC `tenant` fields were not validated (ListJobs with tenant "UPPER"
 *    answered an empty list; the HTTP API answers 400 to `?tenant=UPPER`).
 * 5. A bad `--server` was exit 1 (a server error) instead of a usage error.
 * 6. A path parameter over fastify's 100 characters was answered 414 with
 *    fastify's body (and 500 once framework errors were routed to the
 *    catalog), before the route's own schema (ids up to 160) could answer.
 * 7. CONNECT was answered by closing the connection, with no answer at all.
 * 8. A YAML job spec of 10 KB of nested brackets overflowed the composer's
 *    stack; a few such requests made V8 abort the whole process (a fatal
 *    RegExpCompiler out-of-memory): a remote crash of the server.
 * 9. Integer flags read '' and ' ' as 0 and '0x10' as 16 (`locus up --http-port ''`
 *    started every server on random ports instead of refusing the flag).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator, hashToken } from '../../src/api/auth.js';
import { startGrpcServer, type RunningGrpcServer } from '../../src/api/grpc/server.js';
import { LocusError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/obs/log.js';
import { parseJobSpecText } from '../../src/scheduler/jobs/spec.js';
import { TOKENS, startJobsApi, type JobsApi } from './api-jobs-fixture.js';
import { catalogCodeOf, rawHttp } from './fuzz-kit.js';
import { BIN, authMetadata } from './surfaces-harness.js';

let api: JobsApi;
let grpcServer: RunningGrpcServer;
let client: grpc.Client;
let port: number;

beforeAll(async () => {
  api = await startJobsApi();
  port = Number(new URL(api.url).port);
  const auth = new Authenticator({
    config: { tenants: [{ name: 'alpha', role: 'alpha', weight: 1, tokenSha256: hashToken(TOKENS.alpha) }] },
    adminToken: TOKENS.admin,
  });
  grpcServer = await startGrpcServer({
    host: '127.0.0.1', port: 0, auth, logger: silentLogger(),
    services: { jobs: api.jobs, cancel: async (id, tenant) => (await api.jobs.cancel(id, tenant)).job },
  });
  client = new grpc.Client(`127.0.0.1:${grpcServer.port}`, grpc.credentials.createInsecure());
}, 60_000);

afterAll(async () => {
  client?.close();
  await grpcServer?.stop();
  await api?.close();
});

describe('job specs nested deeper than the YAML composer can take are refused before composing', () => {
  const deep = (n: number): string[] => [
    '['.repeat(n), '['.repeat(n) + ']'.repeat(n), 'x: ' + '{a: '.repeat(n) + '1' + '}'.repeat(n), '- '.repeat(n) + 'x\n', '? '.repeat(n) + 'x\n',
    Array.from({ length: 250 }, (_, i) => `${' '.repeat(i)}a${i}:`).join('\n') + ' 1\n',
  ];

  it('in process, many times over (the sequence that aborted the process): INVALID_BODY every time', () => {
    for (let round = 0; round < 3; round++) {
      for (const text of [...deep(20_000), ...deep(5000), ...deep(65)]) {
        let err: unknown;
        try {
          parseJobSpecText(text, 'application/yaml');
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(LocusError);
        expect((err as LocusError).code).toBe('INVALID_BODY');
        expect((err as LocusError).message).toMatch(/nested deeper than 64 levels|indented more than 200 columns/);
      }
    }
  });

  it('nesting a real spec uses (and shell brackets inside strings) still parses', () => {
    const spec = parseJobSpecText(`name: ok
stages:
  - name: map
    tasks: [{ command: [sh, -c, "awk '{c[$2]+=$1} END {for (w in c) print c[w], w}' [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["] }]
    task: { command: ['true'], resources: { cpus: 0.1, mem: 32MiB, disk: 8MiB } }
`, 'application/yaml');
    expect(spec.stages[0]?.tasks?.[0]?.command[2]).toMatch(/^awk/);
  });

  it('over HTTP and gRPC: refused, and the server keeps answering', async () => {
    for (const text of deep(20_000).slice(0, 2)) {
      const res = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/yaml' }, body: text });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_BODY');
      // SubmitJobRequest { spec = 1 }: the same text through gRPC.
      const body = Buffer.from(text);
      const len: number[] = [];
      for (let n = body.length; ; n >>>= 7) {
        if (n < 0x80) {
          len.push(n);
          break;
        }
        len.push((n & 0x7f) | 0x80);
      }
      const err = await rawCall('SubmitJob', Buffer.concat([Buffer.from([0x0a, ...len]), body]));
      expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err?.details).toMatch(/^INVALID_BODY: .*nested deeper/);
    }
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
  });
});

describe('HTTP: refusals before routing answer the catalog body', () => {
  const cases: readonly [string, string, number, string][] = [
    ['a malformed request line', 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n', 400, 'INVALID_BODY'],
    ['a Content-Length that is not a number', 'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}', 400, 'INVALID_BODY'],
    ['two different Content-Lengths', 'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400, 'INVALID_BODY'],
    ['Content-Length with chunked', 'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}', 400, 'INVALID_BODY'],
    ['a chunk size that is not hex', 'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', 400, 'INVALID_BODY'],
    ['a header without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n', 400, 'INVALID_BODY'],
    ['a head larger than the limit', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'x'.repeat(20 * 1024)}\r\n\r\n`, 413, 'TOO_LARGE'],
  ];
  for (const [what, request, status, code] of cases) {
    it(`${what}: ${status} ${code}`, async () => {
      const a = await rawHttp(port, Buffer.from(request, 'latin1'), { endAfterMs: 50 });
      expect(a.status, a.body).toBe(status);
      expect(a.headers['content-type']).toMatch(/^application\/json/);
      expect(catalogCodeOf(a.body), a.body).toBe(code);
    });
  }

  it('a path parameter over the router\'s limit is 400 INVALID_FIELD; one within the schema\'s 160 reaches the route (404)', async () => {
    const long = await fetch(`${api.url}/v1/jobs/${'x'.repeat(300)}`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(long.status).toBe(400);
    expect(((await long.json()) as { error: { code: string; field: string } }).error).toMatchObject({ code: 'INVALID_FIELD', field: 'path' });
    const schema = await fetch(`${api.url}/v1/jobs/${'x'.repeat(200)}`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(schema.status).toBe(400);
    expect(((await schema.json()) as { error: { field: string } }).error.field).toBe('id');
    const routed = await fetch(`${api.url}/v1/jobs/${'x'.repeat(150)}`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(routed.status).toBe(404);
    expect(((await routed.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('CONNECT is answered 404 NOT_FOUND with the catalog body, not a closed connection', async () => {
    const a = await rawHttp(port, 'CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n', { endAfterMs: 200 });
    expect(a.status, a.body).toBe(404);
    expect(catalogCodeOf(a.body)).toBe('NOT_FOUND');
  });

  it('a path that is not valid percent-encoding: 400 INVALID_FIELD naming the path, and the server still answers', async () => {
    const a = await rawHttp(port, `GET /v1/jobs/%ff%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${TOKENS.admin}\r\n\r\n`);
    expect(a.status, a.body).toBe(400);
    expect(JSON.parse(a.body)).toEqual({ error: { code: 'INVALID_FIELD', message: expect.stringContaining('path') as unknown, field: 'path' } });
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
  });
});

function rawCall(method: string, bytes: Buffer, token: string = TOKENS.admin): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(`/locus.v1.Locus/${method}`, (b: Buffer) => b, (b: Buffer) => b, bytes, authMetadata(token), { deadline: Date.now() + 10_000 }, (e) => resolve(e));
  });
}

describe('gRPC: requests refused with a catalog code', () => {
  it('bytes that are not the method\'s message: INVALID_ARGUMENT with INVALID_BODY, on unary calls and on WatchJob', async () => {
    // 0x08 opens a varint field and ends: protobuf cannot decode it.
    for (const method of ['GetJob', 'SubmitJob', 'CancelJob', 'ListJobs']) {
      const err = await rawCall(method, Buffer.from([0x08]));
      expect(err?.code, method).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err?.details, method).toMatch(/^INVALID_BODY: /);
      expect(err?.metadata.get('locus-error-code')[0], method).toBe('INVALID_BODY');
    }
    const watch = await new Promise<grpc.ServiceError | null>((resolve) => {
      const s = client.makeServerStreamRequest('/locus.v1.Locus/WatchJob', (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0xff]), authMetadata(TOKENS.admin), { deadline: Date.now() + 10_000 });
      s.on('data', () => resolve(null));
      s.on('error', resolve);
      s.on('end', () => resolve(null));
    });
    expect(watch?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(watch?.details).toMatch(/^INVALID_BODY: /);
  });

  it('undecodable bytes still need a token first: UNAUTHENTICATED', async () => {
    const err = await rawCall('GetJob', Buffer.from([0x08]), 'wrong-token');
    expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('a tenant field that is not a tenant name: INVALID_ARGUMENT INVALID_FIELD naming tenant (as HTTP answers 400)', async () => {
    // ListJobsRequest { tenant = 1 } with "UPPER": tag 0x0a, length 5.
    const err = await rawCall('ListJobs', Buffer.concat([Buffer.from([0x0a, 5]), Buffer.from('UPPER')]));
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/^INVALID_FIELD: tenant: /);
    expect(err?.metadata.get('locus-error-field')[0]).toBe('tenant');
    const http = await fetch(`${api.url}/v1/jobs?tenant=UPPER`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(http.status).toBe(400);
    // An empty tenant field is proto3's "not set": the admin's listing, answered.
    expect(await rawCall('ListJobs', Buffer.alloc(0))).toBeNull();
  });
});

describe('CLI: bad flag values are usage errors', () => {
  it('exit 2 and a message naming the flag: --server (and LOCUS_SERVER), integer flags that are not decimal digits', async () => {
    const home = mkdtempSync(join(tmpdir(), 'locus-fuzz-reg-'));
    try {
      const run = (args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> => new Promise((resolve) => {
        const clean: Record<string, string> = {};
        for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('LOCUS_')) clean[k] = v;
        const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...clean, HOME: home, ...env } });
        let stderr = '';
        child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stderr });
        });
      });
      const flag = await run(['jobs', '--server', 'ftp://127.0.0.1:1'], {});
      expect(flag.code, flag.stderr).toBe(2);
      expect(flag.stderr).toMatch(/^locus: --server .*'ftp:\/\/127\.0\.0\.1:1' must start with http/);
      const env = await run(['job', 'job-x'], { LOCUS_SERVER: 'not a url' });
      expect(env.code, env.stderr).toBe(2);
      expect(env.stderr).toContain('LOCUS_SERVER');
      // Integer flags: decimal digits only (a port nobody listens on, in case one were accepted).
      for (const bad of ['', ' ', '0x10', '1e3', '+5', '5 ']) {
        const r = await run(['logs', '--tail', bad, 'job-x.main.0'], { LOCUS_SERVER: 'http://127.0.0.1:1' });
        expect(r.code, `--tail '${bad}': ${r.stderr}`).toBe(2);
        expect(r.stderr).toContain(`--tail must be an integer >= 0, got '${bad}'`);
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }, 60_000);
});
