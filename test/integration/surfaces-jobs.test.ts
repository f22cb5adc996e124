/**
 * The same word-count job through every surface a data engineer uses,
 * against `locus up` run as a child process (real redis-server, the
 * embedded local cluster, executors, containers): HTTP POST + server-sent
 * events, gRPC SubmitJob + WatchJob, and `locus submit --watch --json`.
 * All three must succeed with the same output. Then /metrics shows what
 * happened, and SIGTERM stops everything cleanly.
 */
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildIfStale, grpcClient, grpcError, processesUnder, readSseToEnd, runCli, startUpProcess, tempStateDir, until, waitReady, wordCountYaml, writeWords,
  type LocusGrpc, type UpProcess,
} from './surfaces-harness.js';

const FILES = 4;
let stateDir: string;
let up: UpProcess;
let rpc: LocusGrpc;
let jobYaml: string;
let expectedWords: string;
/** The reduce output of each surface's job. */
const outputs: Record<string, string> = {};

/** The word count of the test text, in the reduce task's format (`count word`, sorted by word). */
function expectedCounts(dir: string): string {
  const counts = new Map<string, number>();
  for (let f = 0; f < FILES; f++) {
    for (const w of readFileSync(join(dir, `part-${f}.txt`), 'utf8').split(/[^A-Za-z]+/).filter(Boolean)) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([w, c]) => `${c} ${w}`).join('\n') + '\n';
}

const readWords = (outputDir: string): string => readFileSync(join(outputDir, 'reduce', '00000', 'words'), 'utf8');

beforeAll(async () => {
  buildIfStale();
  stateDir = tempStateDir('locus-surfaces-');
  up = await startUpProcess(stateDir, ['--agents', '3']);
  rpc = grpcClient(up.grpcAddress);
  await waitReady(up.httpUrl);
  const text = join(stateDir, 'text');
  writeWords(text, FILES);
  expectedWords = expectedCounts(text);
  const put = await runCli(['data', 'put', text, 'local://ds/', '--work-dir', join(stateDir, 'local'), '--replicas', '2']);
  expect(put.code, put.stderr).toBe(0);
  jobYaml = join(stateDir, 'job.yaml');
  writeFileSync(jobYaml, wordCountYaml('ds'));
}, 90_000);

afterAll(async () => {
  rpc?.close();
  await up?.dispose();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('locus up', () => {
  it('prints the master, redis, HTTP and gRPC addresses and the admin token', () => {
    expect(up.masterUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // The managed Redis has a fresh password for its default user on every start.
    expect(up.redisUrl).toMatch(/^redis:\/\/:[0-9a-f]{48}@127\.0\.0\.1:\d+$/);
    expect(up.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(up.grpcAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(up.adminToken).toMatch(/^[0-9a-f]{64}$/);
    expect(up.stdout()).toContain(`export LOCUS_SERVER=${up.httpUrl} LOCUS_TOKEN=${up.adminToken}`);
  });
});

describe('locus up without redis-server', () => {
  it('says how to install it and exits 1', async () => {
    // A PATH with a shell but no redis-server.
    const bin = join(stateDir, 'no-redis-bin');
    mkdirSync(bin);
    symlinkSync('/bin/sh', join(bin, 'sh'));
    const r = await runCli(['up', '--state-dir', join(stateDir, 'unused'), '--http-port', '0', '--grpc-port', '0', '--master-port', '0'], { PATH: bin, HOME: stateDir }, 20_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^locus: redis-server is not installed\. On Debian\/Ubuntu: 'sudo apt-get install -y redis-server'/);
    expect(r.stderr).toContain('--redis redis://');
  });
});

describe('the same job three ways', () => {
  it('HTTP: POST /v1/jobs (YAML) and GET /v1/jobs/:id/events to the end', async () => {
    const res = await fetch(`${up.httpUrl}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${up.adminToken}`, 'content-type': 'application/yaml', 'idempotency-key': 'surfaces-http-1' },
      body: readFileSync(jobYaml, 'utf8'),
    });
    const job = (await res.json()) as { id: string; state: string; outputDir: string };
    expect(res.status, JSON.stringify(job)).toBe(201);
    const events = await readSseToEnd(`${up.httpUrl}/v1/jobs/${job.id}/events`, up.adminToken);
    expect(events[0]).toMatchObject({ event: 'job', data: { kind: 'job', jobId: job.id, job: { id: job.id } } });
    const last = events[events.length - 1];
    expect(last, JSON.stringify(events.slice(-3))).toMatchObject({ event: 'job', data: { kind: 'job', state: 'SUCCEEDED' } });
    // Task events came live exactly when the job had not finished before the stream opened
    // (a finished job's stream is its snapshot alone): both cases are asserted.
    const snapshotState = (events[0]?.data as { state: string }).state;
    expect(events.some((e) => e.event === 'task')).toBe(snapshotState !== 'SUCCEEDED');
    const final = (await (await fetch(`${up.httpUrl}/v1/jobs/${job.id}`, { headers: { authorization: `Bearer ${up.adminToken}` } })).json()) as {
      state: string; outputDir: string; counts: { succeeded: number; total: number; failed: number };
    };
    expect(final).toMatchObject({ state: 'SUCCEEDED', counts: { succeeded: FILES + 1, total: FILES + 1, failed: 0 } });
    outputs['http'] = readWords(final.outputDir);
    expect(outputs['http']).toBe(expectedWords);
  });

  it('gRPC: SubmitJob and the WatchJob stream to the end', async () => {
    const job = await rpc.unary('SubmitJob', { spec: readFileSync(jobYaml, 'utf8'), idempotency_key: 'surfaces-grpc-1' }, up.adminToken);
    expect(job).toMatchObject({ name: 'surfaces-wc', tenant: 'default', stages: ['map', 'reduce'] });
    const id = String(job['id']);
    const events = await rpc.watch(id, up.adminToken);
    expect(events[0]).toMatchObject({ kind: 'job', job_id: id });
    expect(events[events.length - 1]).toMatchObject({ kind: 'job', job_id: id, state: 'SUCCEEDED' });
    // As over HTTP: live task events exactly when the job was still running when the watch began;
    // the reduce task starts after that, so a start event is among them.
    const live = events[0]?.['state'] !== 'SUCCEEDED';
    const tasks = events.filter((e) => e['kind'] === 'task');
    expect(tasks.some((e) => e['state'] === 'SUCCEEDED')).toBe(live);
    const started = tasks.filter((e) => e['state'] === 'RUNNING');
    expect(started.length > 0).toBe(live);
    // Task start events carry where they ran and the locality achieved.
    for (const e of started) expect(['node-local', 'rack-local', 'any']).toContain(e['locality']);
    const final = await rpc.unary('GetJob', { id }, up.adminToken);
    expect(final).toMatchObject({ id, state: 'SUCCEEDED', counts: { succeeded: FILES + 1, failed: 0 } });
    outputs['grpc'] = readWords(String(final['output_dir']));
    expect(outputs['grpc']).toBe(expectedWords);
  });

  it('CLI: locus submit job.yaml --watch --json', async () => {
    const r = await runCli(['submit', jobYaml, '--watch', '--json'], { HOME: stateDir, LOCUS_SERVER: up.httpUrl, LOCUS_TOKEN: up.adminToken });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const job = lines[0] as { id: string; outputDir: string };
    expect(job).toMatchObject({ name: 'surfaces-wc', tenant: 'default' });
    expect(lines[lines.length - 1]).toMatchObject({ kind: 'job', jobId: job.id, state: 'SUCCEEDED' });
    outputs['cli'] = readWords(job.outputDir);
    expect(outputs['cli']).toBe(expectedWords);
  });

  it('the three jobs are distinct and produced the same output', async () => {
    expect(Object.keys(outputs).sort()).toEqual(['cli', 'grpc', 'http']);
    expect(outputs['grpc']).toBe(outputs['http']);
    expect(outputs['cli']).toBe(outputs['http']);
    const list = await rpc.unary('ListJobs', {}, up.adminToken);
    const ours = (list['jobs'] as { name: string; state: string }[]).filter((j) => j.name === 'surfaces-wc');
    expect(ours).toHaveLength(3);
    expect(ours.every((j) => j.state === 'SUCCEEDED')).toBe(true);
  });
});

describe('a bad job spec', () => {
  it('is refused with the field named on every surface', async () => {
    const bad = readFileSync(jobYaml, 'utf8').replace('mem: 64MiB', 'mem: 12 parsecs');
    const field = 'stages[0].task.resources.mem';
    const res = await fetch(`${up.httpUrl}/v1/jobs`, {
      method: 'POST', headers: { authorization: `Bearer ${up.adminToken}`, 'content-type': 'application/yaml' }, body: bad,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'INVALID_FIELD', field } });
    const err = await grpcError(rpc.unary('SubmitJob', { spec: bad }, up.adminToken));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.metadata.get('locus-error-field')).toEqual([field]);
    const badFile = join(stateDir, 'bad.yaml');
    writeFileSync(badFile, bad);
    const r = await runCli(['submit', badFile, '--watch'], { HOME: stateDir, LOCUS_SERVER: up.httpUrl, LOCUS_TOKEN: up.adminToken });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`locus: INVALID_FIELD: ${field}: `);
    expect(r.stdout).toBe('');
  });
});

describe('/metrics after the jobs ran', () => {
  it('shows offers, node-local placements, tasks, executors, master and Redis state', async () => {
    const res = await fetch(`${up.httpUrl}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const value = (re: RegExp): number => {
      const m = re.exec(text);
      expect(m, `${re} in /metrics`).not.toBeNull();
      return Number(m?.[1]);
    };
    expect(value(/^locus_offers_received_total (\S+)$/m)).toBeGreaterThan(0);
    expect(value(/^locus_placements_total\{locality="node-local"\} (\S+)$/m)).toBeGreaterThan(0);
    expect(text).toMatch(/^# TYPE locus_tasks_pending gauge$/m);
    expect(value(/^locus_executors\{state="RUNNING"\} (\S+)$/m)).toBeGreaterThan(0);
    expect(value(/^locus_master_subscribed (\S+)$/m)).toBe(1);
    expect(value(/^locus_redis_connected (\S+)$/m)).toBe(1);
    expect(value(/^locus_jobs_total\{state="SUCCEEDED"\} (\S+)$/m)).toBeGreaterThanOrEqual(3);
    expect(value(/^locus_task_duration_seconds_count\{outcome="SUCCEEDED"\} (\S+)$/m)).toBeGreaterThanOrEqual(3 * (FILES + 1));
  });

  it('shows a running task per tenant while a job runs', async () => {
    const headers = { authorization: `Bearer ${up.adminToken}`, 'content-type': 'application/json' };
    const spec = { name: 'metrics-sleepy', retries: 0, tasks: [{ command: ['sleep', '30'] }], task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } } };
    const res = await fetch(`${up.httpUrl}/v1/jobs`, { method: 'POST', headers, body: JSON.stringify(spec) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    try {
      await until('locus_tasks_running{tenant="default"} 1', async () => {
        const text = await (await fetch(`${up.httpUrl}/metrics`)).text();
        return /^locus_tasks_running\{tenant="default"\} 1$/m.test(text) ? true : undefined;
      }, 20_000, 100);
    } finally {
      await fetch(`${up.httpUrl}/v1/jobs/${id}/cancel`, { method: 'POST', headers: { authorization: headers.authorization } });
    }
  });
});

describe('stopping', () => {
  it('SIGTERM stops everything cleanly: exit 0, Redis and the master gone', async () => {
    const code = await up.stop('SIGTERM');
    expect(code, up.stderr().slice(-2000)).toBe(0);
    expect(up.stderr()).toContain('locus: stopping...');
    await expect(fetch(`${up.masterUrl}/health`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    const r = new Redis(up.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    await expect(r.connect()).rejects.toThrow();
    r.disconnect();
    // Nothing it started (agents, executors, containers) outlives it.
    const left = await until('every process under the state dir to end', async () => (processesUnder(stateDir).length === 0 ? [] : undefined), 5000).catch(() => processesUnder(stateDir));
    expect(left).toEqual([]);
  }, 30_000);
});
