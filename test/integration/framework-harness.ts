/**
 * Shared set-up for the framework's end-to-end tests: a real redis-server, the
 * embedded local cluster over real HTTP, a local dataset laid out across its
 * agents, and the framework (in this process or as a child `locus framework`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { freePort } from '../harness/ports.js';
import { LOCUS_CLI } from '../harness/build.js';
import { startLocalCluster, type LocalCluster } from '../../src/local/index.js';
import { putLocalDataset } from '../../src/storage/local/put.js';
import { resolveSettings } from '../../src/app/config.js';
import { startFramework, type RunningFramework } from '../../src/app/framework.js';
import { silentLogger } from '../../src/obs/log.js';
import type { JobRecord } from '../../src/scheduler/jobs/model.js';
import { TERMINAL_JOB_STATES } from '../../src/scheduler/jobs/model.js';
import type { Redis } from 'ioredis';
import { commitKey, decodeCommittedOutput, type CommittedOutput } from '../../src/executor/contract.js';

/** A cluster, Redis and a dataset for one test file. */
export interface Bed {
  readonly dir: string;
  readonly redis: TestRedis;
  readonly cluster: LocalCluster;
  /** Flags for `locus framework` / resolveSettings pointing at this bed. */
  settings(extra?: Record<string, string>): Record<string, string>;
  dispose(): Promise<void>;
}

/** Start Redis and a 3-agent local cluster in a world-traversable temp dir. */
export async function startBed(o: { agents?: number; files?: number } = {}): Promise<Bed> {
  const dir = mkdtempSync('/tmp/locus-e2e-');
  // Workloads run as an unprivileged user: the tree must be traversable.
  chmodSync(dir, 0o755);
  const redis = await startRedis();
  const cluster = await startLocalCluster({
    workDir: join(dir, 'local'), agents: o.agents ?? 3, racks: 2, port: 0, allocationIntervalMs: 100,
    isolation: 'auto', resources: 'cpus:4;mem:8192;disk:20480;ports:[31000-32000]',
  });
  const text = join(dir, 'text');
  mkdirSync(text);
  for (let i = 0; i < (o.files ?? 6); i++) {
    writeFileSync(join(text, `part-${i}.txt`), Array.from({ length: 2000 }, (_, j) => `word${j % 7} locus${i}`).join('\n'));
  }
  await putLocalDataset({ workDir: join(dir, 'local'), source: text, dataset: 'words', replicas: 2 });
  return {
    dir,
    redis,
    cluster,
    settings: (extra = {}) => ({
      master: cluster.masterUrl, redis: redis.url, 'state-dir': join(dir, 'state'), 'local-work-dir': join(dir, 'local'),
      'http-port': '0', 'grpc-port': '0', 'admin-token': 'a'.repeat(64), 'executor-idle-timeout': '30s',
      'locality-wait-node': '2s', 'locality-wait-rack': '1s', ...extra,
    }),
    async dispose() {
      await cluster.stop();
      await redis.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The framework in this process. */
export async function startInProcess(bed: Bed, extra?: Record<string, string>): Promise<RunningFramework> {
  const fw = await startFramework(resolveSettings(bed.settings(extra)), { logger: silentLogger() });
  await fw.waitForSubscribed(20_000);
  return fw;
}

/** `locus framework` as a child process, for crash tests. */
export interface FrameworkProc {
  readonly proc: ChildProcess;
  readonly httpUrl: string;
  readonly token: string;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Start `locus framework` and wait until it is ready (/readyz: subscribed to the master and
 * connected to Redis). Its HTTP API answers before that, with 503 to a submit; on a loaded machine
 * the subscription can take seconds (CI run 12 got that 503).
 */
export async function spawnFramework(bed: Bed, httpPort?: number, extra: Record<string, string> = {}): Promise<FrameworkProc> {
  const port = httpPort ?? (await freePort());
  const flags = Object.entries(bed.settings({ 'http-port': String(port), ...extra })).flatMap(([k, v]) => [`--${k}`, v]);
  const proc = spawn(process.execPath, [LOCUS_CLI, 'framework', ...flags], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: 'warn' } });
  let out = '';
  proc.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  proc.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
  const deadline = Date.now() + 30_000;
  while (!/http api:\s+(\S+)/.test(out)) {
    if (proc.exitCode !== null) throw new Error(`locus framework exited ${proc.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`locus framework did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const httpUrl = /http api:\s+(\S+)/.exec(out)?.[1] ?? '';
  const readyBy = Date.now() + 60_000;
  for (;;) {
    const r = await fetch(`${httpUrl}/readyz`).catch(() => undefined);
    if (r?.status === 200) break;
    if (proc.exitCode !== null) throw new Error(`locus framework exited ${proc.exitCode}: ${out}`);
    if (Date.now() > readyBy) throw new Error(`locus framework not ready after 60 s (/readyz ${r?.status ?? 'unanswered'}): ${out}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  const exited = (): Promise<void> => (proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((r) => proc.once('exit', () => r())));
  return {
    proc, httpUrl, token: 'a'.repeat(64),
    async kill9() { proc.kill('SIGKILL'); await exited(); },
    async stop() { proc.kill('SIGTERM'); await exited(); },
  };
}

/** One call of a framework process's HTTP API with its admin token. */
export async function api(base: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Poll a framework process's GET /v1/jobs/:id until the job SUCCEEDED or FAILED; returns the last answer. */
export async function waitForJobOverHttp(fw: FrameworkProc, id: string, timeoutMs: number): Promise<{ state: string; job: Record<string, unknown> }> {
  const end = Date.now() + timeoutMs;
  let state = '';
  let job: Record<string, unknown> = {};
  while (Date.now() < end) {
    job = (await api(fw.httpUrl, fw.token, 'GET', `/v1/jobs/${id}`)).json;
    state = String(job['state']);
    if (state === 'SUCCEEDED' || state === 'FAILED') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return { state, job };
}

/** Poll until the job is terminal. */
export async function waitForJob(get: () => Promise<JobRecord>, timeoutMs = 60_000): Promise<JobRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await get();
    if (TERMINAL_JOB_STATES.has(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${job.id} still ${job.state} after ${timeoutMs} ms: ${JSON.stringify(job.counts)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The commit record an executor wrote for a task (or a generation's ledger id); fails the test when there is none. */
export async function commitRecordOf(conn: Redis, ledgerId: string): Promise<CommittedOutput> {
  const raw = await conn.get(commitKey(ledgerId));
  if (raw === null) throw new Error(`no commit record for ${ledgerId}`);
  return decodeCommittedOutput(JSON.parse(raw) as unknown);
}
