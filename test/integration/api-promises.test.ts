/**
 * What the job and volume APIs promise at their edges, against the framework
 * on the real local cluster over real HTTP and gRPC (and the built CLI):
 * - an input scheme no backend serves is a 400 UNKNOWN_SCHEME naming the
 *   known schemes, and nothing is created;
 * - a volume pinned to an agent the cluster does not have is a 400
 *   UNKNOWN_AGENT, and nothing is created;
 * - a 20 MB request body is answered 413 with a JSON error, also to a client
 *   that sends its whole body before reading; gRPC refuses it clearly;
 * - every surface shows the same node-local share for the same job, and
 *   tasks that ran at level `any` are counted.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningFramework } from '../../src/app/framework.js';
import { LOCUS_CLI } from '../harness/build.js';
import { startBed, startInProcess, waitForJob, type Bed } from './framework-harness.js';
import { grpcClient, grpcError, type LocusGrpc } from './surfaces-harness.js';

let bed: Bed;
let fw: RunningFramework;
let rpc: LocusGrpc;
let auth: Record<string, string>;

beforeAll(async () => {
  bed = await startBed({ agents: 2, files: 2 });
  fw = await startInProcess(bed);
  rpc = grpcClient(fw.grpcAddress);
  auth = { authorization: `Bearer ${fw.adminToken}` };
}, 120_000);

afterAll(async () => {
  rpc?.close();
  await fw?.stop();
  await bed?.dispose();
});

const jobCount = async (): Promise<number> => ((await (await fetch(`${fw.httpUrl}/v1/jobs`, { headers: auth })).json()) as { jobs: unknown[] }).jobs.length;

function cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [LOCUS_CLI, ...args], { env: { ...process.env, LOCUS_SERVER: fw.httpUrl, LOCUS_TOKEN: fw.adminToken }, timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/**
 * POST a body the way a naive client does: headers and the whole body (with
 * Content-Length) first, reading nothing meanwhile, then the answer. A server
 * that closes on such a client while its bytes are unread resets the
 * connection, and the reset throws away the answer it had sent.
 */
function postWholeBody(path: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; contentType: string; text: string }> {
  const u = new URL(path, fw.httpUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname);
    socket.on('error', reject);
    socket.pause();
    const head = [`POST ${u.pathname} HTTP/1.1`, `Host: ${u.host}`, ...Object.entries({ ...headers, 'content-length': String(body.length) }).map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''].join('\r\n');
    socket.on('connect', () => {
      socket.write(head);
      socket.write(body, () => {
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const [top = '', rest = ''] = raw.split('\r\n\r\n', 2);
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(top)?.[1] ?? 0);
          const contentType = /^content-type: (.*)$/im.exec(top)?.[1] ?? '';
          // The error body is small: it comes with a Content-Length, not chunked.
          resolve({ status, contentType, text: rest });
        });
        socket.resume();
      });
    });
  });
}

describe('an input scheme no backend serves', () => {
  const spec = { name: 'gopher', inputs: ['gopher://x/y'], task: { command: ['true'] } };

  it('is a 400 UNKNOWN_SCHEME over HTTP, naming the field and the known schemes, and creates nothing', async () => {
    const before = await jobCount();
    const res = await fetch(`${fw.httpUrl}/v1/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(spec) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; field: string; message: string } };
    expect(body.error).toMatchObject({ code: 'UNKNOWN_SCHEME', field: 'inputs[0]' });
    for (const scheme of ['file', 'hdfs', 'local']) expect(body.error.message).toContain(scheme);
    expect(body.error.message).toContain("'gopher://'");
    expect(await jobCount()).toBe(before);
  });

  it('is INVALID_ARGUMENT with the same code over gRPC', async () => {
    const err = await grpcError(rpc.unary('SubmitJob', { spec: JSON.stringify(spec) }, fw.adminToken));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.metadata.get('locus-error-code')).toEqual(['UNKNOWN_SCHEME']);
    expect(err.details).toContain('gopher');
  });
});

describe('a volume pinned to an agent the cluster does not have', () => {
  it('is a 400 UNKNOWN_AGENT over HTTP and gRPC once the agents are known; a known agent is accepted', async () => {
    // The framework knows the agents once they have offered.
    const deadline = Date.now() + 30_000;
    let agents: { hostname: string }[] = [];
    while (agents.length < 2 && Date.now() < deadline) {
      agents = ((await (await fetch(`${fw.httpUrl}/v1/cluster`, { headers: auth })).json()) as { agents: { hostname: string }[] }).agents;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(agents.length).toBe(2);

    const res = await fetch(`${fw.httpUrl}/v1/volumes`, {
      method: 'POST', headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'noagent', size: '64MiB', agent: 'no-such-host-xyz' }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; field: string; message: string } };
    expect(body.error).toMatchObject({ code: 'UNKNOWN_AGENT', field: 'agent' });
    expect(body.error.message).toContain(agents[0]?.hostname ?? '?');
    expect((await fetch(`${fw.httpUrl}/v1/volumes/noagent`, { headers: auth })).status).toBe(404);

    const err = await grpcError(rpc.unary('ReserveVolume', { name: 'noagent', size: '64MiB', agent: 'no-such-host-xyz' }, fw.adminToken));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.metadata.get('locus-error-code')).toEqual(['UNKNOWN_AGENT']);

    // A capacity reservation is held to the same rule.
    const resv = await fetch(`${fw.httpUrl}/v1/reservations`, {
      method: 'POST', headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ resources: { cpus: 0.1 }, agent: 'no-such-host-xyz' }),
    });
    expect(resv.status).toBe(400);
    expect(((await resv.json()) as { error: { code: string } }).error.code).toBe('UNKNOWN_AGENT');

    // Pinned to an agent the cluster has, the request is taken.
    const ok = await fetch(`${fw.httpUrl}/v1/volumes`, {
      method: 'POST', headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'pinned', size: '16MiB', agent: agents[0]?.hostname }),
    });
    expect(ok.status).toBe(201);
    await fetch(`${fw.httpUrl}/v1/volumes/pinned?force=true`, { method: 'DELETE', headers: auth });
  }, 60_000);
});

describe('a 20 MB request body', () => {
  const big = Buffer.alloc(20 * 1024 * 1024, 0x61);

  it('is answered 413 with a JSON error, even to a client that sends it all before reading', async () => {
    for (const contentType of ['application/json', 'application/yaml']) {
      const res = await postWholeBody('/v1/jobs', big, { ...auth, 'content-type': contentType });
      expect(res.status, contentType).toBe(413);
      expect(res.contentType).toContain('application/json');
      expect(JSON.parse(res.text)).toMatchObject({ error: { code: 'TOO_LARGE', field: 'body', message: expect.stringContaining('limit') } });
    }
    // fetch (streams while it reads) gets the same answer, and the server goes on serving.
    const viaFetch = await fetch(`${fw.httpUrl}/v1/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: big });
    expect(viaFetch.status).toBe(413);
    expect(((await viaFetch.json()) as { error: { code: string } }).error.code).toBe('TOO_LARGE');
    expect((await fetch(`${fw.httpUrl}/healthz`)).status).toBe(200);
  }, 60_000);

  it('is refused with RESOURCE_EXHAUSTED over gRPC, and the server goes on serving', async () => {
    const err = await grpcError(rpc.unary('SubmitJob', { spec: big.toString('latin1') }, fw.adminToken));
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/larger than max/i);
    const list = await rpc.unary('ListJobs', {}, fw.adminToken);
    expect(Array.isArray(list['jobs'])).toBe(true);
  }, 60_000);
});

describe('the node-local share', () => {
  it('is one figure on every surface, and tasks that ran anywhere count', async () => {
    // Tasks with no input have no data host: they run at level `any`, so this job is 0% node-local.
    const file = join(bed.dir, 'anywhere.json');
    writeFileSync(file, JSON.stringify({ name: 'anywhere', tasks: [{ command: ['true'] }, { command: ['true'] }], task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } } }));
    const watched = await cli(['submit', file, '--watch']);
    expect(watched.code, watched.stderr).toBe(0);
    const id = /job (job-[0-9a-f-]+) SUCCEEDED/.exec(watched.stderr)?.[1] ?? '';
    expect(id).not.toBe('');
    // `locus submit --watch` closes with the share.
    expect(watched.stderr).toContain('tasks succeeded, 0 failed; node-local 0% (node-local 0 (0%) · rack-local 0 (0%) · any 2 (100%))');

    // The job view counts the two `any` tasks and gives the same share.
    const view = (await (await fetch(`${fw.httpUrl}/v1/jobs/${id}`, { headers: auth })).json()) as { counts: { locality: Record<string, unknown> } };
    expect(view.counts.locality).toEqual({ nodeLocal: 0, rackLocal: 0, any: 2, nodeLocalShare: 0 });
    // gRPC.
    const job = await rpc.unary('GetJob', { id }, fw.adminToken);
    expect(job['counts']).toMatchObject({ node_local: 0, rack_local: 0, any_local: 2, node_local_share: 0 });
    // `locus jobs`: the NODE-LOCAL column.
    const listed = await cli(['jobs']);
    expect(listed.code, listed.stderr).toBe(0);
    const row = listed.stdout.split('\n').find((l) => l.startsWith(id)) ?? '';
    expect(row.split(/\s+/)).toEqual([id, 'anywhere', 'default', 'SUCCEEDED', '2/2', '0', '0', '0%', expect.stringMatching(/^\d+:\d\d$/)]);
  }, 120_000);

  it('agrees across surfaces for a job that reads data', async () => {
    const spec = { name: 'reads', inputs: ['local://words/'], split: 'file', task: { command: ['wc', '-l', '{split.path}'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } } };
    const res = await fetch(`${fw.httpUrl}/v1/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(spec) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const done = await waitForJob(() => fw.jobs.get(id), 90_000);
    expect(done.state).toBe('SUCCEEDED');
    const c = done.counts;
    const share = c.nodeLocal / (c.nodeLocal + c.rackLocal + c.anyLocal);
    const view = (await (await fetch(`${fw.httpUrl}/v1/jobs/${id}`, { headers: auth })).json()) as { counts: { locality: { nodeLocalShare: number } } };
    expect(view.counts.locality.nodeLocalShare).toBe(share);
    expect((await rpc.unary('GetJob', { id }, fw.adminToken))['counts']).toMatchObject({ node_local_share: share });
    const listed = await cli(['jobs']);
    const row = listed.stdout.split('\n').find((l) => l.startsWith(id)) ?? '';
    expect(row.split(/\s+/)[7]).toBe(`${Math.round(share * 100)}%`);
  }, 120_000);
});
