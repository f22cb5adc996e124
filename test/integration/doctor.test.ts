/**
 * `locus doctor` through the built binary: one line per check (OK / WARN /
 * FAIL), every WARN and FAIL with its fix, the master and Redis checked when
 * given (a real local cluster, real redis-servers), exit 1 on any FAIL, and
 * the same results as JSON.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCUS_CLI, ensureBuilt } from '../harness/build.js';
import { freePort } from '../harness/ports.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { startLocalCluster, type LocalCluster } from '../../src/local/index.js';
import { codeCacheMatches } from '../../src/cli/commands/doctor.js';

const run = promisify(execFile);

interface Result { code: number; stdout: string; stderr: string }

async function doctor(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  // Only what the test sets: a LOCUS_MASTER / LOCUS_REDIS in the caller's environment must not leak in.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOCUS_')));
  try {
    const r = await run(process.execPath, [LOCUS_CLI, 'doctor', ...args], { env: { ...clean, ...env }, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The status word and the check name of each output line. */
function lines(stdout: string): { status: string; name: string; text: string }[] {
  return stdout.trimEnd().split('\n').map((text) => {
    const m = /^(OK|WARN|FAIL) {2,}(\S+) {2,}\S/.exec(text);
    return { status: m?.[1] ?? '', name: m?.[2] ?? '', text };
  });
}

let dir: string;
let redis: TestRedis;
let redisNoAof: TestRedis;
let cluster: LocalCluster;

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync('/tmp/locus-doctor-');
  redis = await startRedis({ extraArgs: ['--maxmemory-policy', 'noeviction'] });
  redisNoAof = await startRedis({ appendonly: false });
  cluster = await startLocalCluster({ workDir: join(dir, 'local'), agents: 1, racks: 1, port: 0, isolation: 'process' });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await redis?.dispose();
  await redisNoAof?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('locus doctor', () => {
  it('checks this machine, the master and Redis: one OK line each, exit 0', async () => {
    const r = await doctor(['--master', cluster.masterUrl, '--redis', redis.url], { LOCUS_HOME: join(dir, 'home') });
    const ls = lines(r.stdout);
    // Every line is a check line; nothing else goes to stdout.
    expect(ls.filter((l) => l.status === ''), r.stdout).toEqual([]);
    expect(ls.map((l) => l.name)).toEqual(['isolation', 'node', 'executor', 'redis-server', 'state-dir', 'master', 'redis']);
    const byName = new Map(ls.map((l) => [l.name, l]));
    expect(byName.get('node')?.text).toMatch(new RegExp(`^OK +node +v${process.versions.node.replace(/\./g, '\\.')}$`));
    expect(byName.get('redis-server')?.text).toMatch(/^OK +redis-server +installed \(\d+\.\d+/);
    // The build bundles the executor: doctor says executors start from that one file.
    expect(byName.get('executor')?.text).toMatch(/^OK +executor +starts from one bundled file with its code cache \(dist\/executor\.mjs\); output commits share flushes \(locus-syncfs\)$/);
    expect(byName.get('master')?.text).toContain(`OK    master`);
    expect(byName.get('master')?.text).toContain(`${cluster.masterUrl} answers`);
    expect(byName.get('redis')?.text).toMatch(/^OK +redis +redis:\/\/127\.0\.0\.1:\d+\/? answers \(Redis \d+\.\d+\.\d+\); AOF on; maxmemory-policy noeviction$/);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  }, 60_000);

  it('FAILs an unreachable master, Redis and framework with a fix each, and exits 1', async () => {
    const dead = await freePort();
    const r = await doctor(['--master', `http://127.0.0.1:${dead}`, '--redis', `redis://127.0.0.1:${dead}`, '--server', `http://127.0.0.1:${dead}`, '--timeout', '2s']);
    expect(r.code).toBe(1);
    const byName = new Map(lines(r.stdout).map((l) => [l.name, l]));
    for (const name of ['master', 'redis', 'framework']) {
      expect(byName.get(name)?.status, r.stdout).toBe('FAIL');
      expect(byName.get(name)?.text).toMatch(/ — fix: \S/);
    }
    expect(byName.get('master')?.text).toContain('cannot be reached (ECONNREFUSED)');
    expect(byName.get('redis')?.text).toContain('ECONNREFUSED');
  }, 60_000);

  it('WARNs a Redis without AOF, with the fix, and still exits 0', async () => {
    const r = await doctor(['--redis', redisNoAof.url]);
    const redisLine = lines(r.stdout).find((l) => l.name === 'redis');
    expect(redisLine?.status, r.stdout).toBe('WARN');
    expect(redisLine?.text).toContain('AOF is off: a Redis crash loses jobs — fix: run redis-server with --appendonly yes');
    expect(r.code).toBe(0);
    // Without --master, doctor says how to check it.
    expect(r.stderr).toContain('add --master URL to check the addresses the framework will use');
  }, 60_000);

  it('takes the addresses from LOCUS_MASTER and LOCUS_REDIS, and prints the same results as JSON', async () => {
    const r = await doctor(['--json'], { LOCUS_MASTER: cluster.masterUrl, LOCUS_REDIS: redis.url });
    expect(r.code).toBe(0);
    const results = JSON.parse(r.stdout) as { name: string; status: string; summary: string; fix?: string; details: string[] }[];
    expect(results.map((x) => x.name)).toEqual(['isolation', 'node', 'executor', 'redis-server', 'state-dir', 'master', 'redis']);
    expect(results.find((x) => x.name === 'master')?.status).toBe('ok');
    const isolation = results.find((x) => x.name === 'isolation');
    expect(isolation?.details.length).toBeGreaterThan(0);
    // Where linux isolation works, doctor says what starts the containers (set-up builds locus-spawn).
    if (isolation?.summary.startsWith('linux')) expect(isolation.summary).toContain('launcher locus-spawn');
    // The set-up builds the flush helper too; doctor names it.
    expect(results.find((x) => x.name === 'executor')?.summary).toContain('locus-syncfs');
    for (const x of results) expect(['ok', 'warn', 'fail']).toContain(x.status);
    for (const x of results.filter((y) => y.status !== 'ok')) expect(x.fix, x.name).toBeTruthy();
  }, 60_000);

  it('follows a running framework: FAIL names what it is not connected to', async () => {
    // A framework API that is up but not ready: a plain HTTP server answering /readyz like Locus does.
    const { createServer } = await import('node:http');
    const srv = createServer((req, res) => {
      res.writeHead(req.url === '/readyz' ? 503 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ready: false, subscribed: false, redis: true }));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      const r = await doctor([], { LOCUS_SERVER: `http://127.0.0.1:${port}` });
      const fw = lines(r.stdout).find((l) => l.name === 'framework');
      expect(fw?.status, r.stdout).toBe('FAIL');
      expect(fw?.text).toContain('is not ready: not subscribed to a master');
      expect(r.code).toBe(1);
    } finally {
      srv.close();
    }
  }, 60_000);

  it("FAILs a --server that is not a Locus API (the master's address) instead of blaming Redis or passing it", async () => {
    const r = await doctor(['--server', cluster.masterUrl]);
    const fw = lines(r.stdout).find((l) => l.name === 'framework');
    expect(fw?.status, r.stdout).toBe('FAIL');
    expect(fw?.text).toContain(`${cluster.masterUrl} is not a Locus API (/readyz answered 404`);
    expect(fw?.text).toContain("— fix: point --server / LOCUS_SERVER at the framework's HTTP API");
    expect(fw?.text).not.toContain('--redis');
    expect(r.code).toBe(1);
    // A server that answers 200 to anything is not taken for a ready framework either.
    const { createServer } = await import('node:http');
    const srv = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>'));
    await new Promise<void>((done) => srv.listen(0, '127.0.0.1', () => done()));
    try {
      const port = (srv.address() as { port: number }).port;
      const any = await doctor(['--server', `http://127.0.0.1:${port}`]);
      expect(lines(any.stdout).find((l) => l.name === 'framework')?.status, any.stdout).toBe('FAIL');
      expect(any.code).toBe(1);
    } finally {
      srv.close();
    }
  }, 60_000);

  it('refuses a --timeout of 0 or no duration as a usage error naming --timeout, as mesos probe does', async () => {
    for (const bad of ['0', '0s', 'abc']) {
      const r = await doctor(['--master', cluster.masterUrl, '--timeout', bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toMatch(/^locus: --timeout/);
      expect(r.stdout, bad).toBe('');
    }
    // A probe with no time to wait failed as if no master led ("no leading master found").
    const probe = await run(process.execPath, [LOCUS_CLI, 'mesos', 'probe', '--master', cluster.masterUrl, '--timeout', '0s'], { timeout: 30_000 })
      .then(() => ({ code: 0, stderr: '' }), (e: unknown) => e as { code: number; stderr: string });
    expect(probe.code).toBe(2);
    expect(probe.stderr).toBe("locus: --timeout must be more than 0, got '0s'\n");
  }, 60_000);

  it('tells a code cache written for the bundle from a missing one or one for another bundle', () => {
    const dir = mkdtempSync(join(tmpdir(), 'locus-doctor-cache-'));
    try {
      const entry = join(dir, 'executor.mjs');
      writeFileSync(entry, "const BUNDLE_ID = 'ab12';\n");
      expect(codeCacheMatches(entry)).toBe(false);
      writeFileSync(join(dir, 'executor-bundle.cjs.cache'), Buffer.concat([Buffer.from('locus-code-cache ab13\n'), Buffer.alloc(64, 1)]));
      expect(codeCacheMatches(entry)).toBe(false);
      writeFileSync(join(dir, 'executor-bundle.cjs.cache'), Buffer.concat([Buffer.from('locus-code-cache ab12\n'), Buffer.alloc(64, 1)]));
      expect(codeCacheMatches(entry)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
