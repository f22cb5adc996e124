/**
 * A real redis-server for tests: spawned on a free loopback port with its own
 * data directory, stopped (and the directory removed) by stop().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { freePort } from './ports.js';
import { waitForRedisPong } from '../../src/app/redis-server.js';

/** A running test Redis. */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** Stop gracefully (SIGTERM: Redis flushes its AOF); the data directory stays for restart(). */
  stop(): Promise<void>;
  /** Stop and remove the data directory: the end of a test. */
  dispose(): Promise<void>;
  /** kill -9, for crash tests. */
  crash(): Promise<void>;
  /** Start again on the same port and directory (after stop or crash). */
  restart(): Promise<void>;
  /** A new ioredis client for this server (caller quits it). */
  client(): Redis;
}

export interface TestRedisOptions {
  readonly appendonly?: boolean;
  readonly appendfsync?: 'always' | 'everysec' | 'no';
  readonly extraArgs?: readonly string[];
}

/** Start a redis-server for a test. */
export async function startRedis(options: TestRedisOptions = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'locus-redis-'));
  let proc: ChildProcess | undefined;
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', options.appendonly === false ? 'no' : 'yes',
    '--appendfsync', options.appendfsync ?? 'everysec',
    '--daemonize', 'no', '--logfile', join(dir, 'redis.log'),
    ...(options.extraArgs ?? []),
  ];
  const launch = async (): Promise<void> => {
    proc = spawn('redis-server', args, { stdio: 'ignore' });
    proc.on('error', () => undefined);
    await waitForRedisPong(port, { timeoutMs: 10_000 });
  };
  const exited = (p: ChildProcess): Promise<void> =>
    p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((res) => p.once('exit', () => res()));
  await launch();
  const handle: TestRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    client: () => new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null }),
    async stop() {
      const p = proc;
      if (!p || p.exitCode !== null) return;
      p.kill('SIGTERM');
      await exited(p);
    },
    async crash() {
      const p = proc;
      if (!p || p.exitCode !== null) return;
      p.kill('SIGKILL');
      await exited(p);
    },
    async restart() {
      await launch();
    },
    async dispose() {
      await handle.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

/** A real redis-server (no AOF) for the suite, started before its tests and stopped after; `client()` is a connection to it. */
export function suiteRedis(): { client: () => Redis } {
  let redis: TestRedis | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    redis = await startRedis({ appendonly: false });
    client = redis.client();
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.dispose();
  });
  return {
    client: () => {
      if (!client) throw new Error('the suite redis has not started');
      return client;
    },
  };
}

/**
 * Script calls the server has run so far (INFO commandstats): EVALSHA, and the EVAL a script's
 * first call on a server falls back to (NOSCRIPT). Tests count the calls a batch costs.
 */
export async function scriptCalls(conn: Redis): Promise<number> {
  return (await conn.info('commandstats')).split('\n')
    .filter((l) => l.startsWith('cmdstat_evalsha:') || l.startsWith('cmdstat_eval:'))
    .reduce((n, l) => n + Number(/calls=(\d+)/.exec(l)?.[1] ?? 0), 0);
}
