/**
 * Final outputs written to HDFS through WebHDFS (the repository's WebHDFS
 * server, which answers CREATE, MKDIRS, RENAME and DELETE as a NameNode and
 * its DataNodes do) with the decision in the Redis commit ledger (a real
 * redis-server): CREATE in two steps with the bytes sent only to the
 * DataNode, attempts racing for one task (one winner renamed into place, the
 * losers' temporary paths deleted), and a crash between the record and the
 * rename rolled forward by the next attempt; and through the executor's own
 * attempt path (runAttempt, real processes), duplicate deliveries of one
 * attempt and a second attempt on another host, of which one commits.
 */
import { chmod, mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCommitLedger, outputMapper } from '../../src/executor/data-plane.js';
import { runAttempt, type AttemptContext } from '../../src/executor/attempt.js';
import { CONTRACT_VERSION, type AttemptPayload } from '../../src/executor/contract.js';
import { createIsolator } from '../../src/executor/isolation/index.js';
import type { Isolator } from '../../src/executor/isolation/types.js';
import { IsolatorRunner } from '../../src/executor/runner.js';
import { silentLogger } from '../../src/obs/log.js';
import { commitToHdfs, settleHdfs, type HdfsOutputFs } from '../../src/executor/destination.js';
import { LocusError } from '../../src/core/errors.js';
import { planOutput, prepareAttemptDir, type CommitDecision } from '../../src/executor/output.js';
import type { CommittedOutput } from '../../src/executor/contract.js';
import { WebHdfsBackend } from '../../src/storage/hdfs/backend.js';
import { HostMapper } from '../../src/storage/hostmap.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { outputsAndStagingSwept } from '../harness/staging.js';
import { startWebHdfsServer, type WebHdfsServer } from '../harness/webhdfs-server.js';

let redis: TestRedis;
let conn: Redis;
let dir: string;
let nn: WebHdfsServer;
let hdfs: WebHdfsBackend;

beforeAll(async () => {
  redis = await startRedis();
  conn = redis.client();
  dir = await mkdtemp(join(tmpdir(), 'locus-hdfs-out-'));
  nn = await startWebHdfsServer({ files: [] });
  hdfs = new WebHdfsBackend({ user: 'alice' }, new HostMapper({}));
});
afterAll(async () => {
  await hdfs?.close();
  await nn?.close();
  conn?.disconnect();
  await redis?.dispose();
  await rm(dir, { recursive: true, force: true });
});

function decider(ledger: RedisCommitLedger, taskId: string, attemptId: string, path: string): CommitDecision {
  return async (files, size, staged) => await ledger.commit(taskId, { attemptId, host: `host-of-${attemptId}`, path, size, files, committedAt: Date.now(), staged });
}

async function attemptDir(finalKey: string, attemptId: string, files: Record<string, string>): Promise<ReturnType<typeof planOutput>> {
  const plan = planOutput(join(dir, finalKey), attemptId);
  await prepareAttemptDir(plan);
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(plan.attemptDir, name, '..'), { recursive: true });
    await writeFile(join(plan.attemptDir, name), text);
  }
  return plan;
}

async function readBack(uri: string): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of await hdfs.read(uri, 0, 1 << 20)) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

describe('WebHDFS writes', () => {
  it('CREATE sends no bytes to the NameNode, follows its answer to a DataNode, and never overwrites', async () => {
    const local = join(dir, 'one.txt');
    await writeFile(local, 'hello hdfs\n');
    const uri = `hdfs://127.0.0.1:${nn.port}/w/one.txt`;
    await hdfs.writeFile(uri, local, 11);
    expect(nn.written('/w/one.txt')?.toString()).toBe('hello hdfs\n');
    const lines = nn.log.filter((l) => l.includes('op=CREATE'));
    expect(lines[0]).toMatch(/^NN PUT \/webhdfs\/v1\/w\/one\.txt\?op=CREATE&user\.name=alice&overwrite=false&noredirect=true$/);
    expect(lines[1]).toMatch(/^DN PUT \/webhdfs\/v1\/w\/one\.txt\?op=CREATE/);
    expect(await readBack(uri)).toBe('hello hdfs\n');
    await expect(hdfs.writeFile(uri, local, 11)).rejects.toMatchObject({ code: 'CONFLICT' });

    // A NameNode that ignores noredirect answers 307: the client follows it with the bytes.
    const old = await startWebHdfsServer({ files: [], ignoreNoredirect: true });
    try {
      await hdfs.writeFile(`hdfs://127.0.0.1:${old.port}/w/two.txt`, local, 11);
      expect(old.written('/w/two.txt')?.toString()).toBe('hello hdfs\n');
      expect(old.counts.get('DN_CREATE')).toBe(1);
    } finally {
      await old.close();
    }
  });

  it('RENAME, MKDIRS and DELETE answer as HDFS does', async () => {
    const base = `hdfs://127.0.0.1:${nn.port}/r`;
    await hdfs.mkdirs(`${base}/a/b`);
    expect(await hdfs.exists(`${base}/a/b`)).toBe(true);
    // A missing source or a missing destination parent: false, nothing moved.
    expect(await hdfs.rename(`${base}/none`, `${base}/x`)).toBe(false);
    expect(await hdfs.rename(`${base}/a/b`, `${base}/no/such/parent`)).toBe(false);
    // Onto an existing directory: INTO it.
    await hdfs.mkdirs(`${base}/c`);
    expect(await hdfs.rename(`${base}/a/b`, `${base}/c`)).toBe(true);
    expect(await hdfs.exists(`${base}/c/b`)).toBe(true);
    expect(await hdfs.remove(`${base}/c`)).toBe(true);
    expect(await hdfs.remove(`${base}/c`)).toBe(false);
    expect(nn.tree().filter((p) => p.startsWith('/r/'))).toEqual(['/r/', '/r/a/']);
  });
});

describe('final outputs committed to HDFS, decided in Redis', () => {
  it('attempts of one task race: one winner renamed into place, every loser leaves nothing behind', async () => {
    const ledger = new RedisCommitLedger(conn);
    const finalUri = `hdfs://127.0.0.1:${nn.port}/out/reduce/00003`;
    const ids = Array.from({ length: 5 }, (_, i) => `job.1.3.a${i}`);
    const plans = await Promise.all(ids.map((id) => attemptDir(`race-${id}`, id, { 'part-0': `counts of ${id}\n`, 'sub/extra': 'x' })));
    const outcomes = await Promise.all(ids.map((id, i) => commitToHdfs(plans[i] as ReturnType<typeof planOutput>, id, finalUri, hdfs, decider(ledger, 'job.1.3', id, finalUri))));
    expect(outcomes.filter((o) => o.kind === 'committed')).toHaveLength(1);
    const winner = ids[outcomes.findIndex((o) => o.kind === 'committed')] ?? '';
    expect(outcomes.filter((o) => o.kind === 'already').map((o) => (o.kind === 'already' ? o.winner : ''))).toEqual(Array(4).fill(winner));
    const record = (await ledger.lookup('job.1.3')) as CommittedOutput;
    expect(record.attemptId).toBe(winner);
    expect(record.path).toBe(finalUri);
    expect(record.files).toEqual([{ name: 'part-0', size: `counts of ${winner}\n`.length }, { name: 'sub/extra', size: 1 }]);
    // Only the winner's files are in place, with the marker naming it; no temporary path is left.
    expect(await readBack(`${finalUri}/part-0`)).toBe(`counts of ${winner}\n`);
    expect(JSON.parse(await readBack(`${finalUri}/_SUCCESS`))).toMatchObject({ attemptId: winner });
    expect(nn.tree().filter((p) => p.startsWith('/out/'))).toEqual([
      '/out/', '/out/_temporary/', '/out/reduce/', '/out/reduce/00003/', '/out/reduce/00003/_SUCCESS', '/out/reduce/00003/part-0', '/out/reduce/00003/sub/', '/out/reduce/00003/sub/extra',
    ]);
    expect(nn.counts.get('RENAME')).toBeGreaterThanOrEqual(1);
  });

  it('a crash between the record and the rename is rolled forward by the next attempt', async () => {
    const ledger = new RedisCommitLedger(conn);
    const finalUri = `hdfs://127.0.0.1:${nn.port}/crash/reduce/00000`;
    const plan = await attemptDir('crash-a1', 'job.2.0.a1', { words: 'the 3\n' });
    const crash: CommitDecision = async (files, size, staged) => {
      await ledger.commit('job.2.0', { attemptId: 'job.2.0.a1', host: 'h', path: finalUri, size, files, committedAt: 1, staged });
      throw new Error('killed');
    };
    await expect(commitToHdfs(plan, 'job.2.0.a1', finalUri, hdfs, crash)).rejects.toThrow('killed');
    expect(await hdfs.exists(finalUri)).toBe(false);
    const record = (await ledger.lookup('job.2.0')) as CommittedOutput;
    expect(record.staged).toMatch(new RegExp(`^hdfs://127\\.0\\.0\\.1:${nn.port}/crash/_temporary/job\\.2\\.0\\.a1\\.[0-9a-f]{8}$`));
    expect(await hdfs.exists(record.staged ?? '')).toBe(true);
    // The next attempt (any host) finds the record and finishes the rename; again changes nothing.
    expect(await settleHdfs(record, hdfs)).toBe(true);
    expect(await readBack(`${finalUri}/words`)).toBe('the 3\n');
    expect(await hdfs.exists(record.staged ?? '')).toBe(false);
    expect(await settleHdfs(record, hdfs)).toBe(true);
    expect(nn.tree().filter((p) => p.startsWith('/crash/reduce/'))).toEqual(['/crash/reduce/', '/crash/reduce/00000/', '/crash/reduce/00000/_SUCCESS', '/crash/reduce/00000/words']);
  });

  it('a crash between the record and the rename, then someone else\'s files at the path: the roll-forward says conflict, not committed', async () => {
    const ledger = new RedisCommitLedger(conn);
    const finalUri = `hdfs://127.0.0.1:${nn.port}/crashtaken/reduce/00000`;
    const plan = await attemptDir('crashtaken-a1', 'job.7.0.a1', { words: 'the 7\n' });
    const crash: CommitDecision = async (files, size, staged) => {
      await ledger.commit('job.7.0', { attemptId: 'job.7.0.a1', host: 'h', path: finalUri, size, files, committedAt: 1, staged });
      throw new Error('killed');
    };
    await expect(commitToHdfs(plan, 'job.7.0.a1', finalUri, hdfs, crash)).rejects.toThrow('killed');
    const local = join(dir, 'foreign-7');
    await writeFile(local, 'foreign');
    await hdfs.writeFile(`${finalUri}/theirs`, local, 7);
    const record = (await ledger.lookup('job.7.0')) as CommittedOutput;
    const settled = await settleHdfs(record, hdfs);
    expect(settled).toMatchObject({ conflict: expect.stringContaining(`${finalUri} already holds`) });
    // Nothing was renamed over or into their files.
    expect(nn.tree().filter((p) => p.startsWith('/crashtaken/reduce/'))).toEqual(['/crashtaken/reduce/', '/crashtaken/reduce/00000/', '/crashtaken/reduce/00000/theirs']);
  });

  it('a roll-forward that placed the winner\'s copy before the winner renamed it: the winner reports its commit, the record is never marked a conflict', async () => {
    const ledger = new RedisCommitLedger(conn);
    const finalUri = `hdfs://127.0.0.1:${nn.port}/rolled/reduce/00000`;
    const plan = await attemptDir('rolled-a1', 'job.5.0.a1', { words: 'the 5\n' });
    // Another delivery (or attempt, on any host) reads the record between the decision and the
    // winner's rename, and rolls it forward first.
    const decideThenRolled: CommitDecision = async (files, size, staged) => {
      const decision = await ledger.commit('job.5.0', { attemptId: 'job.5.0.a1', host: 'h', path: finalUri, size, files, committedAt: 1, staged });
      expect(await settleHdfs(decision.record, hdfs)).toBe(true);
      return decision;
    };
    const marks: string[] = [];
    const mark = async (record: CommittedOutput, conflict: string): Promise<CommittedOutput | undefined> => {
      marks.push(conflict);
      return await ledger.markConflict('job.5.0', record, conflict);
    };
    const outcome = await commitToHdfs(plan, 'job.5.0.a1', finalUri, hdfs, decideThenRolled, mark);
    expect(outcome.kind).toBe('committed');
    expect(marks).toEqual([]);
    expect((await ledger.lookup('job.5.0'))?.conflict).toBeUndefined();
    expect(await readBack(`${finalUri}/words`)).toBe('the 5\n');
  });

  it('a final path that holds this task\'s own earlier commit, its record lost by Redis, is the task\'s commit, not a conflict', async () => {
    const ledger = new RedisCommitLedger(conn);
    const finalUri = `hdfs://127.0.0.1:${nn.port}/own/reduce/00000`;
    const first = await commitToHdfs(await attemptDir('own-a1', 'job.6.0.a1', { words: 'the 6\n' }), 'job.6.0.a1', finalUri, hdfs, decider(ledger, 'job.6.0', 'job.6.0.a1', finalUri));
    expect(first.kind).toBe('committed');
    // Redis loses the record (a crash within its fsync interval); the task is delivered again.
    await conn.flushall();
    const marks: string[] = [];
    const mark = async (record: CommittedOutput, conflict: string): Promise<CommittedOutput | undefined> => {
      marks.push(conflict);
      return await ledger.markConflict('job.6.0', record, conflict);
    };
    const again = await commitToHdfs(await attemptDir('own-a2', 'job.6.0.a2', { words: 'the 6 again\n' }), 'job.6.0.a2', finalUri, hdfs, decider(ledger, 'job.6.0', 'job.6.0.a2', finalUri), mark);
    expect(again).toMatchObject({ kind: 'already', winner: 'job.6.0.a1' });
    expect(marks).toEqual([]);
    expect((await ledger.lookup('job.6.0'))?.conflict).toBeUndefined();
    // The output in place is the first commit's; the second attempt's copy is gone.
    expect(await readBack(`${finalUri}/words`)).toBe('the 6\n');
    expect(nn.tree().filter((p) => p.startsWith('/own/') && p.includes('a2'))).toEqual([]);
  });

  it('a final path that holds someone else\'s files is a conflict, not an overwrite', async () => {
    const ledger = new RedisCommitLedger(conn);
    const finalUri = `hdfs://127.0.0.1:${nn.port}/taken/reduce/00000`;
    const local = join(dir, 'foreign');
    await writeFile(local, 'foreign');
    await hdfs.writeFile(`${finalUri}/theirs`, local, 7);
    const plan = await attemptDir('taken-a1', 'job.3.0.a1', { mine: 'mine' });
    const outcome = await commitToHdfs(plan, 'job.3.0.a1', finalUri, hdfs, decider(ledger, 'job.3.0', 'job.3.0.a1', finalUri));
    expect(outcome.kind).toBe('conflict');
    expect(await hdfs.exists(`${finalUri}/mine`)).toBe(false);
    expect(await hdfs.exists(`${finalUri}/theirs`)).toBe(true);
  });
});

describe('through the attempt path', () => {
  let isolator: Isolator | undefined;
  afterAll(async () => {
    await isolator?.close();
  });

  it('two deliveries of one attempt and an attempt on another host: one commits to HDFS, the others report it', async () => {
    isolator = await createIsolator('process', silentLogger());
    const outputs = join(dir, 'outputs');
    await mkdir(outputs, { recursive: true });
    await chmod(dir, 0o755);
    await chmod(outputs, 0o1777);
    const ledger = new RedisCommitLedger(conn);
    const ctx = (host: string): AttemptContext => ({
      runner: new IsolatorRunner(isolator as Isolator, join(dir, `executor-${host}`)),
      host, logger: silentLogger(), scratchDir: join(dir, `executor-${host}`, 'scratch'), killGraceMs: 200,
      dataPlane: { token: async () => '', ...outputMapper({ root: outputs, shared: true }), ledger, hdfs: () => hdfs },
    });
    const finalUri = `hdfs://127.0.0.1:${nn.port}/dup/reduce/00000`;
    const payload = (attempt: number): AttemptPayload => ({
      contractVersion: CONTRACT_VERSION, jobId: 'dup', taskId: 'dup.1.0', attemptId: `dup.1.0.a${attempt}`, attempt,
      // Long enough for the three to overlap: each writes its own delivery's identity.
      argv: ['sh', '-c', 'sleep 0.5; echo "$LOCUS_ATTEMPT_ID $$" > {output}/part'], env: {}, resources: { cpus: 0.2, memMiB: 64, diskMiB: 0 }, timeoutMs: 30_000,
      outputDir: join(outputs, 't', 'dup', 'reduce', '00000'), destination: finalUri, volumes: [], inputPaths: [],
    });
    const control = (delivery: string): Parameters<typeof runAttempt>[2] => ({ delivery, drain: new AbortController().signal, onRunning: () => undefined });
    const results = await Promise.all([
      runAttempt(payload(1), ctx('host-a'), control('d1')),
      runAttempt(payload(1), ctx('host-a'), control('d1-again')),
      runAttempt(payload(2), ctx('host-b'), control('d2')),
    ]);
    expect(results.map((r) => r.state)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    // All three ran their workload (none found a record at its start): the race was at the commit.
    for (const r of results) expect(r.sandboxDir).toBeDefined();
    // Each says when its workload (`sleep 0.5`) exited, before its commit ended.
    for (const r of results) {
      expect(r.exitedAt).toBeGreaterThanOrEqual(r.startedAt + 450);
      expect(r.exitedAt).toBeLessThanOrEqual(r.finishedAt);
    }
    expect(results.filter((r) => r.reason === 'COMMITTED')).toHaveLength(1);
    expect(results.filter((r) => r.reason === 'ALREADY_COMMITTED')).toHaveLength(2);
    const record = (await ledger.lookup('dup.1.0')) as CommittedOutput;
    const winner = results.find((r) => r.reason === 'COMMITTED');
    expect(record.attemptId).toBe(winner?.attemptId);
    expect(record.host).toBe(winner?.host);
    for (const r of results) expect(r.outputPath).toBe(finalUri);
    // The one part in place is one delivery's, whole; no temporary copy and no local staging is left.
    expect(await readBack(`${finalUri}/part`)).toMatch(new RegExp(`^${winner?.attemptId ?? '?'} \\d+\n$`));
    expect(nn.tree().filter((p) => p.startsWith('/dup/'))).toEqual(['/dup/', '/dup/_temporary/', '/dup/reduce/', '/dup/reduce/00000/', '/dup/reduce/00000/_SUCCESS', '/dup/reduce/00000/part']);
    expect(await outputsAndStagingSwept(join(outputs, 't', 'dup', 'reduce'))).toEqual({ entries: [], staging: [] });

    // A later redelivery runs nothing: the record is found before the workload starts.
    const late = await runAttempt(payload(3), ctx('host-c'), control('d3'));
    expect(late).toMatchObject({ state: 'SUCCEEDED', reason: 'ALREADY_COMMITTED', outputPath: finalUri });
    expect(late.sandboxDir).toBeUndefined();
  }, 60_000);

  it('a rename WebHDFS refuses after the ledger recorded the commit: the attempt is LOST (uncounted), the next one finishes the rename', async () => {
    isolator ??= await createIsolator('process', silentLogger());
    const outputs = join(dir, 'outputs-rename');
    await mkdir(outputs, { recursive: true });
    await chmod(outputs, 0o1777);
    const ledger = new RedisCommitLedger(conn);
    // The NameNode is there for the upload and the record, and refuses the RENAME once.
    let refuse = true;
    const flaky: HdfsOutputFs = {
      exists: (u) => hdfs.exists(u), writeFile: (u, f, n) => hdfs.writeFile(u, f, n), mkdirs: (u) => hdfs.mkdirs(u), remove: (u) => hdfs.remove(u),
      rename: async (from, to) => {
        if (refuse) {
          refuse = false;
          throw new LocusError('UNAVAILABLE', 'WebHDFS RENAME: connection refused');
        }
        return await hdfs.rename(from, to);
      },
    };
    const ctx = (host: string, fs: HdfsOutputFs): AttemptContext => ({
      runner: new IsolatorRunner(isolator as Isolator, join(dir, `executor-r-${host}`)),
      host, logger: silentLogger(), scratchDir: join(dir, `executor-r-${host}`, 'scratch'), killGraceMs: 200,
      dataPlane: { token: async () => '', ...outputMapper({ root: outputs, shared: true }), ledger, hdfs: () => fs },
    });
    const finalUri = `hdfs://127.0.0.1:${nn.port}/refused/reduce/00000`;
    const payload = (attempt: number): AttemptPayload => ({
      contractVersion: CONTRACT_VERSION, jobId: 'refused', taskId: 'refused.1.0', attemptId: `refused.1.0.a${attempt}`, attempt,
      argv: ['sh', '-c', 'echo "$LOCUS_ATTEMPT_ID" > {output}/part'], env: {}, resources: { cpus: 0.2, memMiB: 64, diskMiB: 0 }, timeoutMs: 30_000,
      outputDir: join(outputs, 't', 'refused', 'reduce', '00000'), destination: finalUri, volumes: [], inputPaths: [],
    });
    const control = (delivery: string): Parameters<typeof runAttempt>[2] => ({ delivery, drain: new AbortController().signal, onRunning: () => undefined });
    const first = await runAttempt(payload(1), ctx('host-a', flaky), control('r1'));
    // Not FAILED: a counted failure would spend a retry (with none left, fail the job) on a task
    // whose output the ledger holds.
    expect(first).toMatchObject({ state: 'LOST', reason: 'OUTPUT_WRITE_FAILED' });
    expect(first.message).toContain('on any host');
    const record = (await ledger.lookup('refused.1.0')) as CommittedOutput;
    expect(record.attemptId).toBe('refused.1.0.a1');
    expect(await hdfs.exists(finalUri)).toBe(false);
    expect(await hdfs.exists(record.staged ?? '')).toBe(true);
    // The next attempt, on another host, runs nothing and finishes the rename from the record.
    const next = await runAttempt(payload(2), ctx('host-b', hdfs), control('r2'));
    expect(next).toMatchObject({ state: 'SUCCEEDED', reason: 'ALREADY_COMMITTED', outputPath: finalUri });
    expect(next.sandboxDir).toBeUndefined();
    expect(await readBack(`${finalUri}/part`)).toBe('refused.1.0.a1\n');
  }, 60_000);
});
