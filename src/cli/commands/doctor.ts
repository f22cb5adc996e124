/**
 * `locus doctor`: the first thing an operator runs. It checks what this
 * machine gives Locus (Node, redis-server, isolation, a state directory) and,
 * when told where they are, whether the master, Redis and a running framework
 * answer. Each check is one line, OK / WARN / FAIL, and every WARN or FAIL
 * says how to fix it. Exits 1 when anything FAILs.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { detectIsolation } from '../../executor/isolation/index.js';
import { createDetector } from '../../mesos/detector.js';
import { defaultExecutorMain, defaultStateDir } from '../../app/config.js';
import { REDIS_INSTALL_HINT, redisServerAvailable } from '../../app/redis-server.js';
import { parseCommand, waitFlag } from '../args.js';
import { syncfsHelperPath } from '../../executor/fs-flush.js';

/** The outcome of one check. */
export interface CheckResult {
  readonly name: string;
  /** ok: fully supported; warn: works in a reduced way; fail: Locus cannot do this here. */
  readonly status: 'ok' | 'warn' | 'fail';
  readonly summary: string;
  /** What to do about a warn or a fail. */
  readonly fix?: string;
  readonly details: readonly string[];
}

/** Where the optional reachability checks point (flags or LOCUS_* variables). */
export interface DoctorTargets {
  readonly master: string | undefined;
  readonly redis: string | undefined;
  readonly server: string | undefined;
  readonly timeoutMs: number;
}

/** One check; undefined when it does not apply (e.g. no --master given). */
export type Check = (t: DoctorTargets) => Promise<CheckResult | undefined>;

const MIN_NODE_MAJOR = 20;

/** The Node running Locus: 20 or newer (package.json engines). */
export async function nodeCheck(): Promise<CheckResult> {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= MIN_NODE_MAJOR) return { name: 'node', status: 'ok', summary: `v${process.versions.node}`, details: [process.execPath] };
  return {
    name: 'node', status: 'fail', summary: `v${process.versions.node} is too old`,
    fix: `install Node ${MIN_NODE_MAJOR} or newer (Debian: apt-get install nodejs from NodeSource, or nvm install ${MIN_NODE_MAJOR})`, details: [process.execPath],
  };
}

/** redis-server on PATH: `locus up` and `locus demo` start one unless given --redis. */
export async function redisServerCheck(): Promise<CheckResult> {
  if (!redisServerAvailable()) {
    return {
      name: 'redis-server', status: 'warn', summary: 'not installed: `locus up` and `locus demo` need it unless given --redis URL',
      fix: REDIS_INSTALL_HINT.replace(/^redis-server is not installed\. /, ''), details: [],
    };
  }
  const v = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 5_000 });
  const version = /v=(\S+)/.exec(v.stdout ?? '')?.[1];
  return { name: 'redis-server', status: 'ok', summary: version ? `installed (${version})` : 'installed', details: [] };
}

/** Which isolation containers get here: linux (namespaces + cgroups) or plain processes. */
export async function isolationCheck(): Promise<CheckResult> {
  const r = await detectIsolation();
  if (r.kind === 'linux') {
    const launcher = r.launcher === 'native' ? 'launcher locus-spawn' : 'launcher bwrap (locus-spawn not built: slower)';
    return { name: 'isolation', status: 'ok', summary: `linux (cgroups ${r.cgroups}; namespaces ${r.namespaces.join(', ')}; ${launcher})`, details: r.notes };
  }
  return {
    name: 'isolation', status: 'warn', summary: 'process: containers are NOT isolated (plain processes with rlimits)',
    fix: 'run Locus as root on Linux with cgroups (v1 or v2) and user/pid/mount namespaces; --verbose says what is missing', details: r.notes,
  };
}

/**
 * What executors of this installation start from (without an image or URI): the one bundled file
 * `npm run build` makes, or, when it is missing or older than the build, the CLI's ~300 files,
 * which take about 0.2 s longer to load on every executor start.
 */
export async function executorCheck(): Promise<CheckResult> {
  let entry: string;
  try {
    entry = defaultExecutorMain();
  } catch (err) {
    return { name: 'executor', status: 'fail', summary: (err as Error).message, fix: 'npm run build', details: [] };
  }
  const result = executorEntryCheck(entry);
  // Without the flush helper every output commit flushes its own files (src/executor/fs-flush.ts).
  // LOCUS_SYNCFS_PATH= (empty) turns it off on purpose: said, not warned about.
  const syncfs = syncfsHelperPath();
  if (syncfs !== undefined && existsSync(syncfs)) return { ...result, summary: `${result.summary}; output commits share flushes (locus-syncfs)`, details: [...result.details, syncfs] };
  if (process.env['LOCUS_SYNCFS_PATH'] === '') return { ...result, summary: `${result.summary}; output commits flush file by file (LOCUS_SYNCFS_PATH is empty)` };
  return {
    ...result, status: result.status === 'ok' ? 'warn' : result.status,
    summary: `${result.summary}; output commits flush file by file: ${syncfs === undefined ? 'dist/native/locus-syncfs was not built' : `${syncfs} (LOCUS_SYNCFS_PATH) is not there`} (short tasks cost executors about 30 % more CPU)`,
    fix: [result.fix, 'install a C compiler (gcc) and run npm run build'].filter((f) => f !== undefined).join('; '),
  };
}

/** How executors start: from the bundle with its code cache, the bundle alone, or the CLI. */
function executorEntryCheck(entry: string): CheckResult {
  if (basename(entry) === 'executor.mjs') {
    if (codeCacheMatches(entry)) return { name: 'executor', status: 'ok', summary: 'starts from one bundled file with its code cache (dist/executor.mjs)', details: [entry] };
    return {
      name: 'executor', status: 'warn', summary: 'starts from one bundled file, without its code cache: dist/executor-bundle.cjs.cache is missing or written for another bundle (each start ~20 ms longer)',
      fix: 'npm run build (it writes the cache after bundling)', details: [entry],
    };
  }
  return {
    name: 'executor', status: 'warn', summary: 'starts from the CLI: dist/executor.mjs is missing or older than the build (each executor start takes ~0.2 s longer)',
    fix: 'npm run build (it bundles the executor after compiling; without esbuild it says why)', details: [entry],
  };
}

/**
 * Whether the code cache beside the bundle was written for it: its header names the bundle id the
 * entry point carries (scripts/bundle-executor.mjs). Whether V8 takes it (the same Node) shows
 * only at a start: LOCUS_EXECUTOR_CODE_CACHE_REPORT=1 makes an executor say.
 */
export function codeCacheMatches(entry: string): boolean {
  try {
    const id = /const BUNDLE_ID = '([0-9a-f]+)'/.exec(readFileSync(entry, 'utf8'))?.[1];
    if (id === undefined) return false;
    const fd = openSync(join(dirname(entry), 'executor-bundle.cjs.cache'), 'r');
    try {
      const head = Buffer.alloc(100);
      const n = readSync(fd, head, 0, head.length, 0);
      return head.subarray(0, n).toString('latin1').startsWith(`locus-code-cache ${id}\n`);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** The default state directory is writable, or can be made (up and framework keep files there). */
export async function stateDirCheck(): Promise<CheckResult> {
  const dir = defaultStateDir();
  try {
    // A check changes nothing: a missing directory is judged by its nearest existing ancestor.
    let probe = dir;
    while (!existsSync(probe)) probe = dirname(probe);
    accessSync(probe, constants.W_OK | constants.X_OK);
    return { name: 'state-dir', status: 'ok', summary: probe === dir ? `${dir} is writable` : `${dir} can be created`, details: [] };
  } catch (err) {
    return {
      name: 'state-dir', status: 'warn', summary: `${dir} is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      fix: 'set LOCUS_HOME (or --state-dir) to a directory you can write', details: [],
    };
  }
}

async function fetchWithTimeout(url: string, timeoutMs: number): Promise<Response> {
  return await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
}

function reason(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'no answer in time';
  return e.cause?.code ?? e.cause?.message ?? e.message;
}

/** The master answers: found through ZooKeeper for zk:// URLs, then its /health endpoint. */
export async function masterCheck(t: DoctorTargets): Promise<CheckResult | undefined> {
  if (t.master === undefined) return undefined;
  const probeHint = `then 'locus mesos probe --master ${t.master}' subscribes and says whether authentication and the role are accepted`;
  let base: string;
  if (t.master.trim().startsWith('zk://')) {
    const detector = createDetector(t.master);
    try {
      await detector.start();
      base = await detector.waitForLeader(t.timeoutMs);
    } catch (err) {
      return {
        name: 'master', status: 'fail', summary: `${t.master}: no leading master found (${(err as Error).message})`,
        fix: 'check the ZooKeeper hosts and the path (the masters\' --zk value)', details: [],
      };
    } finally {
      await detector.close().catch(() => undefined);
    }
  } else {
    try {
      base = new URL(t.master).origin;
    } catch {
      return { name: 'master', status: 'fail', summary: `'${t.master}' is not a URL`, fix: 'use http://host:5050, https://host:5050 or zk://host:2181/mesos', details: [] };
    }
  }
  try {
    const r = await fetchWithTimeout(`${base}/health`, t.timeoutMs);
    if (r.ok) return { name: 'master', status: 'ok', summary: `${base} answers${base !== t.master ? ` (for ${t.master})` : ''}`, details: [`next: ${probeHint}`] };
    return { name: 'master', status: 'fail', summary: `${base}/health answered ${r.status}`, fix: `make sure ${base} is a Mesos master; ${probeHint}`, details: [] };
  } catch (err) {
    return {
      name: 'master', status: 'fail', summary: `${base} cannot be reached (${reason(err)})`,
      fix: `start the master or correct --master (curl ${base}/health must answer 200); ${probeHint}`, details: [],
    };
  }
}

/** Redis answers PING, and is set up the way Locus needs: AOF on, no eviction, ACLs (6.0+). */
export async function redisCheck(t: DoctorTargets): Promise<CheckResult | undefined> {
  if (t.redis === undefined) return undefined;
  let shown = t.redis;
  try {
    const u = new URL(t.redis);
    if (u.password) u.password = '***';
    shown = u.toString();
  } catch {
    return { name: 'redis', status: 'fail', summary: `'${t.redis}' is not a URL`, fix: 'use redis://[:password@]host:6379[/db]', details: [] };
  }
  const client = new Redis(t.redis, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: t.timeoutMs, enableOfflineQueue: false });
  // The socket's own error (ECONNREFUSED, ...) says more than the "Connection is closed" that follows it.
  let socketError: string | undefined;
  client.on('error', (err: Error) => { socketError ??= err.message; });
  try {
    try {
      await client.connect();
      await client.ping();
    } catch (err) {
      const msg = socketError ?? (err as Error).message;
      const auth = /NOAUTH|WRONGPASS|invalid password|NOPERM/i.test(msg);
      return {
        name: 'redis', status: 'fail', summary: `${shown}: ${auth ? 'authentication refused' : 'cannot be reached'} (${msg})`,
        fix: auth ? 'put the password in the URL: redis://:PASSWORD@host:6379' : 'start Redis (redis-server --appendonly yes) or correct --redis',
        details: [],
      };
    }
    const info = await client.info().catch(() => '');
    const field = (k: string): string | undefined => new RegExp(`^${k}:(.*)$`, 'm').exec(info)?.[1]?.trim();
    const version = field('redis_version');
    const problems: string[] = [];
    const fixes: string[] = [];
    if (version !== undefined && Number(version.split('.')[0]) < 6) {
      return {
        name: 'redis', status: 'fail', summary: `${shown}: Redis ${version} is too old (executors get their own ACL users, Redis 6.0+)`,
        fix: 'upgrade Redis to 6.2 or newer', details: [],
      };
    }
    if (field('aof_enabled') === '0') {
      problems.push('AOF is off: a Redis crash loses jobs');
      fixes.push('run redis-server with --appendonly yes (or CONFIG SET appendonly yes)');
    }
    // CONFIG may be forbidden to this user (managed Redis): then the policy is not judged.
    const policy = await client.config('GET', 'maxmemory-policy').then((r) => (Array.isArray(r) ? String(r[1]) : undefined), () => undefined);
    if (policy !== undefined && policy !== 'noeviction') {
      problems.push(`maxmemory-policy is ${policy}: queued work can be evicted`);
      fixes.push('set maxmemory-policy noeviction');
    }
    const summary = `${shown} answers (Redis ${version ?? 'version unknown'})`;
    if (problems.length > 0) return { name: 'redis', status: 'warn', summary: `${summary}; ${problems.join('; ')}`, fix: fixes.join('; '), details: [] };
    return { name: 'redis', status: 'ok', summary: `${summary}; AOF on${policy === undefined ? '' : `; maxmemory-policy ${policy}`}`, details: [] };
  } finally {
    client.disconnect();
  }
}

/** A running framework (--server / LOCUS_SERVER): subscribed to its master and connected to its Redis (/readyz). */
export async function frameworkCheck(t: DoctorTargets): Promise<CheckResult | undefined> {
  if (t.server === undefined) return undefined;
  const base = t.server.replace(/\/+$/, '');
  try {
    const r = await fetchWithTimeout(`${base}/readyz`, t.timeoutMs);
    const body = (await r.json().catch(() => ({}))) as { subscribed?: boolean; redis?: boolean };
    // Locus's /readyz always says both; an answer without them (a master's or
    // a web server's 404, or 200) is another service at that address, which
    // would otherwise pass as ready or be blamed on the framework's Redis.
    if (typeof body.subscribed !== 'boolean' || typeof body.redis !== 'boolean') {
      return {
        name: 'framework', status: 'fail', summary: `${base} is not a Locus API (/readyz answered ${r.status} without its subscribed and redis fields)`,
        fix: "point --server / LOCUS_SERVER at the framework's HTTP API (its http-port, 8080 by default), not the Mesos master or another service",
        details: [],
      };
    }
    if (r.ok) return { name: 'framework', status: 'ok', summary: `${base} is subscribed to its master and connected to Redis`, details: [] };
    const missing = [...(body.subscribed === false ? ['not subscribed to a master'] : []), ...(body.redis === false ? ['not connected to Redis'] : [])];
    return {
      name: 'framework', status: 'fail', summary: `${base} is not ready: ${missing.join(', ') || `/readyz answered ${r.status}`}`,
      fix: body.subscribed === false
        ? "check the framework's --master with 'locus doctor --master URL' and 'locus mesos probe'; its log says why"
        : "check the framework's --redis with 'locus doctor --redis URL'",
      details: [],
    };
  } catch (err) {
    return { name: 'framework', status: 'fail', summary: `${base} cannot be reached (${reason(err)})`, fix: 'start it (locus up or locus framework) or correct --server / LOCUS_SERVER', details: [] };
  }
}

/** Every check `locus doctor` runs, in order: this machine first, then the addresses given. */
export const CHECKS: readonly Check[] = [isolationCheck, nodeCheck, executorCheck, redisServerCheck, stateDirCheck, masterCheck, redisCheck, frameworkCheck];

const HELP = `usage: locus doctor [--master URL] [--redis URL] [--server URL] [--timeout 5s] [--json] [--verbose]

Checks what this machine gives Locus (Node, redis-server, isolation: namespaces, cgroups, users;
the state directory) and, when given, whether the master, Redis and a running framework answer.
One line per check: OK, WARN (works, in a reduced way) or FAIL, each WARN and FAIL with its fix.
Exits 1 when any check FAILs.

options:
  --master URL    a Mesos master to reach: http(s)://host:5050 or zk://host:2181/mesos (LOCUS_MASTER)
  --redis URL     the Redis the framework will use (LOCUS_REDIS): reachable, AOF on, no eviction
  --server URL    a running framework's HTTP API (LOCUS_SERVER): subscribed and connected (/readyz)
  --timeout DUR   how long each reachability check waits (default 5s)
  --json          print the results as a JSON array
  --verbose       also print each check's details
`;

/** Entry point of `locus doctor`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, {
    json: { type: 'boolean' }, verbose: { type: 'boolean' }, master: { type: 'string' }, redis: { type: 'string' },
    server: { type: 'string' }, timeout: { type: 'string' },
  } as const, HELP, false);
  if (!parsed) return 0;
  const v = parsed.values;
  const targets: DoctorTargets = {
    master: v.master, redis: v.redis, server: v.server,
    timeoutMs: waitFlag(v.timeout, 'timeout', 5_000),
  };
  const results: CheckResult[] = [];
  for (const check of CHECKS) {
    try {
      const r = await check(targets);
      if (r) results.push(r);
    } catch (err) {
      results.push({ name: check.name.replace(/Check$/, ''), status: 'fail', summary: `the check itself failed: ${(err as Error).message}`, fix: 'report this as a bug', details: [] });
    }
  }
  if (v.json === true) {
    process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  } else {
    const width = Math.max(...results.map((r) => r.name.length));
    for (const r of results) {
      const fix = r.fix !== undefined && r.status !== 'ok' ? ` — fix: ${r.fix}` : '';
      process.stdout.write(`${r.status.toUpperCase().padEnd(4)}  ${r.name.padEnd(width)}  ${r.summary}${fix}\n`);
      if (v.verbose === true) for (const d of r.details) process.stdout.write(`      ${''.padEnd(width)}  ${d}\n`);
    }
    const skipped = [...(v.master === undefined ? ['--master URL'] : []), ...(v.redis === undefined ? ['--redis URL'] : [])];
    if (skipped.length > 0) process.stderr.write(`locus doctor: add ${skipped.join(' and ')} to check the addresses the framework will use\n`);
  }
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}
