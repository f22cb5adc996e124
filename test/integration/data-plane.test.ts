/**
 * The multi-host data plane with real parts: the block server over real HTTP,
 * the Redis commit ledger on a real redis-server with the executors' own ACL
 * users, and two real `locus executor` processes acting as two hosts (each
 * with its own hostname, dataset directory and output directory, sharing no
 * output root): a map on one host reads a dataset replica that only the other
 * host has, a reduce on the other host reads that map's committed output
 * through the first host's block server, two attempts of one task on two
 * hosts commit exactly once, HDFS input is read through WebHDFS OPEN (the
 * redirect to a DataNode followed), and an input the host cannot reach fails
 * uncounted while a missing one counts.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { Redis as IORedis, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBlockServer, type BlockServer } from '../../src/executor/block-server.js';
import { RedisCommitLedger } from '../../src/executor/data-plane.js';
import { COMMIT_KEY_PREFIX, DATAPLANE_SECRETS_KEY, commitKey, type CommittedOutput } from '../../src/executor/contract.js';
import { readFromBlockServers } from '../../src/storage/block-client.js';
import { classifyFailure } from '../../src/scheduler/jobs/service.js';
import type { ExecutorProvisioner } from '../../src/scheduler/executor-registry.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { freePort } from '../harness/ports.js';
import { startWebHdfsServer, type WebHdfsServer } from '../harness/webhdfs-server.js';
import { RecordingDispatcher, payload, provisioner, requireBuild, spawnExecutor, stopProc, waitRegistered, type ExecutorProc } from './executor-harness.js';
import { LocusError } from '../../src/core/errors.js';

const TOKEN = 'data-plane-test-token-0123456789';
let redis: TestRedis;
let admin: Redis;
let prov: ExecutorProvisioner;
let rd: RecordingDispatcher;
let work: string;
let hdfs: WebHdfsServer;
const procs: ExecutorProc[] = [];

async function streamText(s: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

function rawStatus(address: string, path: string): Promise<number> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port: Number(port), path, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  requireBuild();
  // Not under /tmp: the linux isolator gives attempts a private /tmp.
  work = await mkdtemp(join('/var/tmp', 'locus-dataplane-'));
  await chmod(work, 0o755);
  const aclFile = join(work, 'users.acl');
  await writeFile(aclFile, '');
  redis = await startRedis({ extraArgs: ['--aclfile', aclFile] });
  ({ admin, prov } = provisioner(redis));
  await admin.hset(DATAPLANE_SECRETS_KEY, 'blockToken', TOKEN);
  rd = new RecordingDispatcher(redis);
  await rd.dispatcher.start();
  hdfs = await startWebHdfsServer({ files: [{ path: '/logs/day1.txt', size: 300_000, blockSize: 100_000 }] });
}, 60_000);

afterAll(async () => {
  for (const p of procs) await stopProc(p);
  await rd?.close();
  admin?.disconnect();
  await redis?.dispose();
  await hdfs?.close();
  await rm(work, { recursive: true, force: true });
});

describe('block server', () => {
  let server: BlockServer;
  let root: string;
  beforeAll(async () => {
    root = join(work, 'bs-root');
    await mkdir(join(root, 'ds', 'dir'), { recursive: true });
    await writeFile(join(root, 'ds', 'dir', 'f.txt'), '0123456789abcdef');
    await writeFile(join(work, 'secret.txt'), 'host secret');
    await symlink(join(work, 'secret.txt'), join(root, 'ds', 'escape'));
    server = await startBlockServer({ roots: { datasets: root }, token: () => TOKEN });
  });
  afterAll(async () => server?.close());

  it('serves byte ranges to a reader with the token', async () => {
    const s = await readFromBlockServers([{ address: server.address, root: 'datasets', path: 'ds/dir/f.txt' }], 4, 6, { token: TOKEN });
    expect(await streamText(s)).toBe('456789');
    // A range running past the end is cut at the end.
    const tail = await readFromBlockServers([{ address: server.address, root: 'datasets', path: 'ds/dir/f.txt' }], 12, 100, { token: TOKEN });
    expect(await streamText(tail)).toBe('cdef');
  });

  it('refuses a wrong token, paths outside the root, and symlinks leading out of it', async () => {
    const at = (path: string, token = TOKEN): Promise<Response> => fetch(`http://${server.address}/v1/blocks/datasets/${path}`, { headers: { authorization: `Bearer ${token}` } });
    expect((await at('ds/dir/f.txt', 'wrong')).status).toBe(401);
    expect((await fetch(`http://${server.address}/v1/blocks/datasets/ds/dir/f.txt`)).status).toBe(401);
    // Sent as written (fetch would normalise the dots away before they reach the server).
    expect(await rawStatus(server.address, '/v1/blocks/datasets/ds/../../secret.txt')).toBe(403);
    expect(await rawStatus(server.address, '/v1/blocks/datasets/ds/%2E%2E/%2E%2E/secret.txt')).toBe(403);
    expect((await at('ds/escape')).status).toBe(403);
    expect((await at('ds/nope')).status).toBe(404);
    expect((await at('ds/dir/f.txt')).status).toBe(200);
  });

  it('tries the next source when one is down; says whether the host or the request is to blame', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const s = await readFromBlockServers([
      { address: dead, root: 'datasets', path: 'ds/dir/f.txt' },
      { address: server.address, root: 'datasets', path: 'ds/dir/f.txt' },
    ], 0, 4, { token: TOKEN });
    expect(await streamText(s)).toBe('0123');
    const down = await readFromBlockServers([{ address: dead, root: 'datasets', path: 'ds/dir/f.txt' }], 0, 4, { token: TOKEN }).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(LocusError);
    expect((down as LocusError).code).toBe('UNAVAILABLE');
    const missing = await readFromBlockServers([{ address: server.address, root: 'datasets', path: 'ds/none' }], 0, 4, { token: TOKEN }).catch((e: unknown) => e);
    expect((missing as LocusError).code).toBe('NOT_FOUND');
  });
});

describe('commit ledger', () => {
  it('lets exactly one of many concurrent attempts commit a task, with an executor\'s own ACL user', async () => {
    const creds = await prov.create('LEDGER1');
    const conn = new IORedis(redis.url, { username: creds.username, password: creds.password, maxRetriesPerRequest: 1 });
    conn.on('error', () => undefined);
    try {
      const ledger = new RedisCommitLedger(conn);
      const rec = (i: number): CommittedOutput => ({ attemptId: `t-ledger.a${i}`, host: `h${i}`, path: `/out/${i}`, size: i, files: [{ name: 'f', size: i }], committedAt: i });
      const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => ledger.commit('job-x.0.7', rec(i))));
      const winners = outcomes.filter((o) => o.won);
      expect(winners).toHaveLength(1);
      // Every loser is told who won.
      for (const o of outcomes) expect(o.record.attemptId).toBe(winners[0]?.record.attemptId);
      expect((await ledger.lookup('job-x.0.7'))?.attemptId).toBe(winners[0]?.record.attemptId);
      // The executor user reads the data-plane secret but cannot touch the scheduler's keys.
      expect(await conn.hget(DATAPLANE_SECRETS_KEY, 'blockToken')).toBe(TOKEN);
      await expect(conn.hset(DATAPLANE_SECRETS_KEY, 'blockToken', 'mine')).rejects.toThrow(/NOPERM/);
      await expect(conn.set('locus:job:job-x', 'x')).rejects.toThrow(/NOPERM/);
      expect(commitKey('job-x.0.7').startsWith(COMMIT_KEY_PREFIX)).toBe(true);
    } finally {
      conn.disconnect();
      await prov.remove('LEDGER1');
    }
  });
});

describe('two executors as two hosts, no shared disk', () => {
  const hostDirs = (h: string): { data: string; outputs: string } => ({ data: join(work, h, 'data'), outputs: join(work, h, 'outputs') });
  const sharedRoot = (): string => join(work, 'framework-outputs');
  let addrA = '';
  let addrB = '';

  async function startHost(id: string, host: string, extra: Record<string, unknown> = {}): Promise<string> {
    const d = hostDirs(host);
    await mkdir(d.data, { recursive: true });
    await mkdir(d.outputs, { recursive: true });
    const config = {
      version: 1,
      localDataDir: d.data,
      outputs: { root: sharedRoot(), shared: false, hostRoot: d.outputs },
      blockServer: { bind: '127.0.0.1' },
      webhdfs: { endpoints: { 'nn:8020': hdfs.url } },
      ...extra,
    };
    const creds = await prov.create(id);
    const e = spawnExecutor({ redis, id, creds, sandbox: join(work, `sandbox-${id}`), args: ['--hostname', host, '--storage-config', JSON.stringify(config)] });
    procs.push(e);
    // Generous: on a loaded machine an executor's start (node, Redis, isolation probe) is slow.
    await waitRegistered(admin, id, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${e.stderr()}`);
    });
    await rd.dispatcher.watchExecutor(id);
    const address = await admin.hget(`locus:executor:${id}`, 'blockServer');
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    return address ?? '';
  }

  beforeAll(async () => {
    addrA = await startHost('HA', 'host-a');
    addrB = await startHost('HB', 'host-b');
    // A dataset replica that only host-a holds.
    await mkdir(join(hostDirs('host-a').data, 'books'), { recursive: true });
    await writeFile(join(hostDirs('host-a').data, 'books', 'b1.txt'), 'the cat the dog\nthe end\n');
  }, 150_000);

  it('a map on host-b reads host-a\'s replica through its block server and commits on host-b; a reduce on host-a reads that output through host-b\'s', async () => {
    const mapOut = join(sharedRoot(), 'default', 'job-dp', 'map', '00000');
    const map = payload('job-dp.0.0', 1, ['sh', '-c', "tr ' ' '\\n' < '{split.path}' | grep -v '^$' | sort | uniq -c > '{output}/counts'"], {
      jobId: 'job-dp', outputDir: mapOut,
      split: { uri: 'local://books/b1.txt', offset: 0, length: 24, sources: [{ host: 'host-a', address: addrA, root: 'datasets', path: 'books/b1.txt' }] },
    });
    await rd.dispatcher.dispatch('HB', map);
    const r = await rd.result(map.attemptId);
    expect(r).toMatchObject({ state: 'SUCCEEDED', reason: 'COMMITTED', host: 'host-b' });
    // Committed where it was written, on host-b, and recorded in Redis with host and block server.
    const onB = join(hostDirs('host-b').outputs, 'default', 'job-dp', 'map', '00000');
    expect(r.outputPath).toBe(onB);
    expect(await readFile(join(onB, 'counts'), 'utf8')).toMatch(/3 the/);
    const record = JSON.parse((await admin.get(commitKey('job-dp.0.0'))) ?? '{}') as CommittedOutput;
    expect(record).toMatchObject({ attemptId: map.attemptId, host: 'host-b', blockServer: addrB, path: onB, relPath: 'default/job-dp/map/00000' });
    expect(record.files).toEqual([{ name: 'counts', size: (await readFile(join(onB, 'counts'))).length }]);
    // Nothing was written to the framework's output root: the hosts share no disk.
    await expect(readFile(join(mapOut, 'counts'))).rejects.toThrow(/ENOENT/);

    const stageDir = join(sharedRoot(), 'default', 'job-dp', 'map');
    const reduce = payload('job-dp.1.0', 1, ['sh', '-c', `cat ${stageDir}/*/counts | awk '{c[$2]+=$1} END {for (w in c) print c[w], w}' | sort -rn > '{output}/words'`], {
      jobId: 'job-dp', outputDir: join(sharedRoot(), 'default', 'job-dp', 'reduce', '00000'), inputPaths: [stageDir],
      stageInputs: [{ stage: 'map', dir: stageDir, parts: [{ name: '00000', host: 'host-b', path: onB, relPath: record.relPath ?? '', files: record.files, sources: [addrB] }] }],
    });
    await rd.dispatcher.dispatch('HA', reduce);
    const rr = await rd.result(reduce.attemptId);
    expect(rr).toMatchObject({ state: 'SUCCEEDED', reason: 'COMMITTED', host: 'host-a' });
    expect((await readFile(join(rr.outputPath ?? '', 'words'), 'utf8')).split('\n')[0]).toBe('3 the');
    expect(rr.outputPath?.startsWith(hostDirs('host-a').outputs)).toBe(true);
  });

  it('two attempts of one task on two hosts: exactly one commits, the other is told which', async () => {
    const out = join(sharedRoot(), 'default', 'job-dup', 'map', '00003');
    const argv = ['sh', '-c', "echo $LOCUS_ATTEMPT_ID > '{output}/who'; sleep 0.3"];
    const a1 = payload('job-dup.0.3', 1, argv, { jobId: 'job-dup', outputDir: out });
    const a2 = payload('job-dup.0.3', 2, argv, { jobId: 'job-dup', outputDir: out });
    await Promise.all([rd.dispatcher.dispatch('HA', a1), rd.dispatcher.dispatch('HB', a2)]);
    const [r1, r2] = await Promise.all([rd.result(a1.attemptId), rd.result(a2.attemptId)]);
    const reasons = [r1.reason, r2.reason].sort();
    expect(reasons).toEqual(['ALREADY_COMMITTED', 'COMMITTED']);
    const winner = r1.reason === 'COMMITTED' ? r1 : r2;
    const loser = r1.reason === 'COMMITTED' ? r2 : r1;
    const record = JSON.parse((await admin.get(commitKey('job-dup.0.3'))) ?? '{}') as CommittedOutput;
    expect(record.attemptId).toBe(winner.attemptId);
    expect(loser.outputPath).toBe(winner.outputPath);
    expect((await readFile(join(winner.outputPath ?? '', 'who'), 'utf8')).trim()).toBe(winner.attemptId);
    // A redelivery after the commit does not run the workload again.
    const a3 = payload('job-dup.0.3', 3, ['sh', '-c', 'exit 7'], { jobId: 'job-dup', outputDir: out });
    await rd.dispatcher.dispatch('HB', a3);
    expect(await rd.result(a3.attemptId)).toMatchObject({ state: 'SUCCEEDED', reason: 'ALREADY_COMMITTED', outputPath: winner.outputPath });
  });

  it('reads HDFS input through WebHDFS OPEN, following the NameNode\'s redirect to a DataNode, at an offset', async () => {
    const before = hdfs.counts.get('DN_OPEN') ?? 0;
    const pl = payload('job-hdfs.0.1', 1, ['sh', '-c', "cp '{split.path}' '{output}/bytes'"], {
      jobId: 'job-hdfs', outputDir: join(sharedRoot(), 'default', 'job-hdfs', 'map', '00001'),
      split: { uri: 'hdfs://nn:8020/logs/day1.txt', offset: 100_000, length: 100_000 },
    });
    await rd.dispatcher.dispatch('HA', pl);
    const r = await rd.result(pl.attemptId);
    expect(r).toMatchObject({ state: 'SUCCEEDED', reason: 'COMMITTED' });
    const got = await readFile(join(r.outputPath ?? '', 'bytes'));
    expect(got.equals(hdfs.content('/logs/day1.txt', 100_000, 100_000))).toBe(true);
    expect((hdfs.counts.get('DN_OPEN') ?? 0) - before).toBe(1);
  });

  it('an input the host cannot reach fails uncounted (INPUT_UNREACHABLE); a missing one counts (INPUT_FAILED)', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const unreachable = payload('job-in.0.0', 1, ['sh', '-c', "cat '{split.path}'"], {
      jobId: 'job-in', outputDir: join(sharedRoot(), 'default', 'job-in', 'map', '00000'),
      split: { uri: 'local://books/b1.txt', offset: 0, length: 10, sources: [{ host: 'host-z', address: dead, root: 'datasets', path: 'books/b1.txt' }] },
    });
    await rd.dispatcher.dispatch('HB', unreachable);
    const r = await rd.result(unreachable.attemptId);
    expect(r).toMatchObject({ state: 'FAILED', reason: 'INPUT_UNREACHABLE' });
    expect(r.message).toContain('local://books/b1.txt');
    expect(classifyFailure(r)).toBe('not-counted');

    const missing = payload('job-in.0.1', 1, ['sh', '-c', "cat '{split.path}'"], {
      jobId: 'job-in', outputDir: join(sharedRoot(), 'default', 'job-in', 'map', '00001'),
      split: { uri: 'local://books/none.txt', offset: 0, length: 10, sources: [{ host: 'host-a', address: addrA, root: 'datasets', path: 'books/none.txt' }] },
    });
    await rd.dispatcher.dispatch('HB', missing);
    const m = await rd.result(missing.attemptId);
    expect(m).toMatchObject({ state: 'FAILED', reason: 'INPUT_FAILED' });
    expect(classifyFailure(m)).toBe('counted');
  });
});
