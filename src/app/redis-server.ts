/**
 * The Redis that `locus up` manages: a redis-server child process on a free
 * loopback port with AOF persistence under the Locus data directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createHash } from 'node:crypto';
import { LocusError } from '../core/errors.js';
import { newToken } from '../core/ids.js';
import type { Logger } from '../obs/log.js';

/** Options for the managed Redis. */
export interface ManagedRedisOptions {
  readonly dataDir: string;
  /** `everysec` (default) may lose the last second on a crash; `always` loses nothing but is slower. */
  readonly appendfsync?: 'everysec' | 'always';
  readonly port?: number;
  /** Addresses to listen on besides 127.0.0.1 (separate hosts reach Redis on their bridge's address). */
  readonly alsoBind?: readonly string[];
  readonly logger: Logger;
}

/** A running managed Redis. */
export interface ManagedRedis {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** The message shown when redis-server is not installed. */
export const REDIS_INSTALL_HINT =
  "redis-server is not installed. On Debian/Ubuntu: 'sudo apt-get install -y redis-server' " +
  "(or run 'npm run demo', which installs it), or point Locus at an existing Redis with --redis redis://host:6379";

/** Whether redis-server is on PATH. */
export function redisServerAvailable(): boolean {
  return spawnSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' }).status === 0;
}

async function freeLoopbackPort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function stopStale(pidFile: string, logger: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return; // not running
  }
  if (!cmdline.includes('redis-server')) return;
  logger.warn({ pid }, 'stopping a redis-server left running by an earlier Locus on the same data directory');
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 50));
}

/** How waitForRedisPong waits. */
export interface RedisPongWait {
  readonly host?: string;
  readonly password?: string;
  readonly timeoutMs?: number;
  /** Checked before each try: a reason to stop waiting at once (the server process exited). */
  readonly gaveUp?: () => string | undefined;
}

/**
 * Wait until a redis-server answers PONG on a port: connection refusals while it starts and
 * LOADING answers while it replays a large AOF are waited out; past the deadline, TIMEOUT.
 */
export async function waitForRedisPong(port: number, o: RedisPongWait = {}): Promise<void> {
  const host = o.host ?? '127.0.0.1';
  const timeoutMs = o.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stop = o.gaveUp?.();
    if (stop !== undefined) throw new LocusError('UNAVAILABLE', stop);
    const probe = new Redis(port, host, { ...(o.password === undefined ? {} : { password: o.password }), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    if (Date.now() > deadline) throw new LocusError('TIMEOUT', `redis-server did not answer on ${host}:${port} within ${Math.round(timeoutMs / 1000)}s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start redis-server and wait until it answers PING. */
export async function startManagedRedis(options: ManagedRedisOptions): Promise<ManagedRedis> {
  if (!redisServerAvailable()) throw new LocusError('UNAVAILABLE', REDIS_INSTALL_HINT);
  mkdirSync(options.dataDir, { recursive: true });
  // Every tenant's jobs are in the AOF: no one but Locus reads it, also where a task sees the host.
  chmodSync(options.dataDir, 0o700);
  // Executors' Redis users live in the ACL file, not the AOF: without it a Redis restart
  // would lock every executor out.
  const aclFile = join(options.dataDir, 'users.acl');
  // The default user gets a fresh password each start: workloads share the host's network,
  // and a password-less Redis on loopback would let any task rewrite every tenant's jobs.
  // Executors' own users (saved by ACL SAVE) are kept.
  const password = newToken(24);
  const kept = existsSync(aclFile) ? readFileSync(aclFile, 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('user default ')) : [];
  const hash = createHash('sha256').update(password).digest('hex');
  writeFileSync(aclFile, [`user default on #${hash} ~* &* +@all`, ...kept].join('\n') + '\n', { mode: 0o600 });
  // A redis-server left running by a crashed `locus up` still holds this directory: stop it first.
  const pidFile = join(options.dataDir, 'redis.pid');
  await stopStale(pidFile, options.logger);
  const port = options.port ?? (await freeLoopbackPort());
  const args = [
    '--bind', '127.0.0.1', ...(options.alsoBind ?? []), '--port', String(port), '--dir', options.dataDir,
    '--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'everysec',
    '--save', '', '--daemonize', 'no', '--protected-mode', 'yes',
    '--logfile', join(options.dataDir, 'redis.log'),
    '--aclfile', aclFile,
    '--pidfile', pidFile,
    // BullMQ needs keys to stay: eviction would silently drop queued work.
    '--maxmemory-policy', 'noeviction',
  ];
  const child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => { exited = true; });
  const url = `redis://:${password}@127.0.0.1:${port}`;
  try {
    await waitForRedisPong(port, { password, timeoutMs: 15_000, gaveUp: () => (exited ? `redis-server exited at start; see ${join(options.dataDir, 'redis.log')}` : undefined) });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  options.logger.info({ port, dataDir: options.dataDir }, 'managed redis-server started (AOF on)');
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    stop() {
      // SIGTERM makes Redis fsync its AOF before exiting: a clean stop loses nothing.
      stopping ??= new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
      return stopping;
    },
  };
}
