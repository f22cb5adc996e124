/**
 * Shared parts of the executor integration tests: spawn the BUILT `locus
 * executor` binary with its own Redis ACL user, a Dispatcher on the same
 * Redis, payload builders and polling helpers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { CONTRACT_VERSION, type AttemptPayload, type AttemptResult } from '../../src/executor/contract.js';
import { Dispatcher, type DispatchEvent } from '../../src/scheduler/dispatch.js';
import { ExecutorProvisioner, type ExecutorCredentials } from '../../src/scheduler/executor-registry.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { waitFor } from '../harness/wait.js';

export { waitFor };

/** The built CLI. */
export const LOCUS_BIN = resolve('dist/src/cli/main.js');

/** Fail clearly when the build is missing. */
export function requireBuild(): void {
  if (!existsSync(LOCUS_BIN)) throw new Error(`${LOCUS_BIN} is missing: run 'npx tsc -p tsconfig.build.json' first`);
}

/** A spawned executor process. */
export interface ExecutorProc {
  readonly id: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

/** Start `locus executor` as a child process with the given credentials. */
export function spawnExecutor(o: {
  redis: TestRedis;
  id: string;
  creds: ExecutorCredentials;
  sandbox: string;
  slots?: number;
  args?: readonly string[];
  env?: Readonly<Record<string, string>>;
}): ExecutorProc {
  const args = [
    LOCUS_BIN, 'executor',
    '--executor-id', o.id,
    '--agent-id', `agent-${o.id}`,
    '--hostname', `host-${o.id}`,
    '--slots', String(o.slots ?? 2),
    '--redis-url', o.redis.url,
    '--redis-user', o.creds.username,
    '--sandbox', o.sandbox,
    '--heartbeat', '200ms',
    '--kill-grace', '300ms',
    ...(o.args ?? []),
  ];
  const env: Record<string, string> = { ...process.env as Record<string, string>, LOCUS_LOG_LEVEL: 'warn', LOCUS_REDIS_PASSWORD: o.creds.password, ...o.env };
  delete env['MESOS_AGENT_ENDPOINT'];
  delete env['MESOS_CONTAINER_ID'];
  Object.assign(env, o.env ?? {});
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  return { id: o.id, proc, exited, stderr: () => err };
}

/** Kill an executor process if it still runs, and wait for it. */
export async function stopProc(p: ExecutorProc, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill(signal);
  await p.exited;
}

/** A payload for a task attempt. */
export function payload(taskId: string, attempt: number, argv: readonly string[], extra: Partial<AttemptPayload> = {}): AttemptPayload {
  return {
    contractVersion: CONTRACT_VERSION,
    jobId: 'job-test',
    taskId,
    attemptId: `${taskId}.a${attempt}`,
    attempt,
    argv,
    env: {},
    resources: { cpus: 0.5, memMiB: 128, diskMiB: 0 },
    timeoutMs: 30_000,
    volumes: [],
    inputPaths: [],
    ...extra,
  };
}

/** A dispatcher on the test Redis that records every event. */
export class RecordingDispatcher {
  readonly events: DispatchEvent[] = [];
  readonly dispatcher: Dispatcher;
  private readonly conns: Redis[] = [];

  constructor(redis: TestRedis, o: { heartbeatTimeoutMs?: number; reconcileIntervalMs?: number; blockMs?: number; fenced?: Redis } = {}) {
    this.dispatcher = new Dispatcher({
      connect: () => {
        const r = new Redis(redis.url, { maxRetriesPerRequest: null, retryStrategy: (t) => Math.min(t * 100, 1000) });
        r.on('error', () => undefined);
        this.conns.push(r);
        return r;
      },
      clock: systemClock,
      logger: silentLogger(),
      // The production timeout unless a test is about losing executors (it asks for less): under
      // CI's load an executor's heartbeats once paused past 1.5 s, the old default here, and a
      // test that was not about a lost executor saw one (data-plane, CI run 85).
      heartbeatTimeoutMs: o.heartbeatTimeoutMs ?? 10_000,
      watchIntervalMs: 200,
      reconcileIntervalMs: o.reconcileIntervalMs ?? 2000,
      blockMs: o.blockMs ?? 200,
      ...(o.fenced === undefined ? {} : { fenced: o.fenced }),
    });
    this.dispatcher.on((e) => this.events.push(e));
  }

  /** Results (non-stale unless asked) for an attempt id. */
  results(attemptId?: string, includeStale = false): AttemptResult[] {
    return this.events.flatMap((e) => (e.type === 'result' && (includeStale || !e.stale) && (attemptId === undefined || e.result.attemptId === attemptId) ? [e.result] : []));
  }

  /** Wait for the (first) result of an attempt. */
  async result(attemptId: string, timeoutMs = 20_000): Promise<AttemptResult> {
    return waitFor(`result of ${attemptId}`, () => this.results(attemptId, true)[0], timeoutMs);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
    for (const c of this.conns) c.disconnect();
  }
}

/** An admin connection and a provisioner for executor users. */
export function provisioner(redis: TestRedis): { admin: Redis; prov: ExecutorProvisioner } {
  const admin = redis.client();
  admin.on('error', () => undefined);
  return { admin, prov: new ExecutorProvisioner(admin, silentLogger()) };
}

/** Wait until an executor has registered (its hash exists with state running). */
export async function waitRegistered(admin: Redis, id: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(`executor ${id} to register`, async () => (await admin.hget(`locus:executor:${id}`, 'state')) === 'running', timeoutMs);
}

/** A path inside a directory. */
export const p = join;

/** Redis with an ACL file, a provisioner of executor users, and a recording dispatcher, for one test file. */
export interface ExecutorBed {
  readonly redis: TestRedis;
  readonly admin: Redis;
  readonly prov: ExecutorProvisioner;
  readonly rd: RecordingDispatcher;
  /** A scratch directory every user can traverse; not under /tmp, which the linux isolator replaces. */
  readonly work: string;
  /** Stop `procs`, then everything the bed started, and remove `work`. */
  dispose(procs: readonly ExecutorProc[]): Promise<void>;
}

/** Start an executor bed; `prefix` names its scratch directory. */
export async function startExecutorBed(prefix: string): Promise<ExecutorBed> {
  requireBuild();
  const work = await mkdtemp(join('/var/tmp', prefix));
  await chmod(work, 0o755);
  const aclFile = join(work, 'users.acl');
  await writeFile(aclFile, '');
  const redis = await startRedis({ extraArgs: ['--aclfile', aclFile] });
  const { admin, prov } = provisioner(redis);
  const rd = new RecordingDispatcher(redis);
  await rd.dispatcher.start();
  return {
    redis, admin, prov, rd, work,
    async dispose(procs) {
      for (const proc of procs) await stopProc(proc);
      await rd.close();
      admin.disconnect();
      await redis.dispose();
      await rm(work, { recursive: true, force: true });
    },
  };
}

/**
 * A suite's executor bed: started before its tests, disposed after them together with every
 * executor process the tests pushed to `procs`.
 */
export function useExecutorBed(prefix: string): { readonly bed: () => ExecutorBed; readonly procs: ExecutorProc[] } {
  let bed: ExecutorBed | undefined;
  const procs: ExecutorProc[] = [];
  beforeAll(async () => {
    bed = await startExecutorBed(prefix);
  });
  afterAll(async () => {
    await bed?.dispose(procs);
  });
  return {
    bed: () => {
      if (!bed) throw new Error('the executor bed has not started');
      return bed;
    },
    procs,
  };
}
