/**
 * Output commit decided by the Redis commit ledger (real redis-server, real
 * filesystem): attempts in different output directories (different hosts)
 * race, exactly one wins and only its directory is renamed into place; the
 * record lists the files and sizes; and a crash between the record and the
 * rename is rolled forward from the staging directory the record names.
 */
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCommitLedger } from '../../src/executor/data-plane.js';
import { commitOutput, committedBy, planOutput, prepareAttemptDir, settleCommitted, type CommitDecision } from '../../src/executor/output.js';
import { commitKey, type CommittedOutput } from '../../src/executor/contract.js';
import { startRedis, type TestRedis } from '../harness/redis.js';

let redis: TestRedis;
let conn: Redis;
let dir: string;

beforeAll(async () => {
  redis = await startRedis();
  conn = redis.client();
  dir = await mkdtemp(join(tmpdir(), 'locus-ledger-'));
});
afterAll(async () => {
  conn?.disconnect();
  await redis?.dispose();
  await rm(dir, { recursive: true, force: true });
});

function decider(ledger: RedisCommitLedger, taskId: string, attemptId: string, host: string, path: string): CommitDecision {
  return async (files, size, staged) => await ledger.commit(taskId, { attemptId, host, path, size, files, committedAt: Date.now(), staged });
}

describe('commit decided in Redis', () => {
  it('one winner among attempts on different hosts; losers keep nothing; the record lists the files', async () => {
    const ledger = new RedisCommitLedger(conn);
    const attempts = Array.from({ length: 6 }, (_, i) => {
      const host = `host-${i % 3}`;
      const finalDir = join(dir, host, 'job', 'map', '00002');
      return { id: `job.0.2.a${i}`, host, finalDir, plan: planOutput(finalDir, `job.0.2.a${i}`) };
    });
    for (const a of attempts) {
      await prepareAttemptDir(a.plan);
      await mkdir(join(a.plan.attemptDir, 'sub'));
      await writeFile(join(a.plan.attemptDir, 'sub', 'part'), a.id);
      await writeFile(join(a.plan.attemptDir, 'count'), '42\n');
    }
    const outcomes = await Promise.all(attempts.map((a) => commitOutput(a.plan, a.id, decider(ledger, 'job.0.2', a.id, a.host, a.finalDir))));
    const won = outcomes.filter((o) => o.kind === 'committed');
    expect(won).toHaveLength(1);
    const winner = attempts[outcomes.findIndex((o) => o.kind === 'committed')];
    const record = (await ledger.lookup('job.0.2')) as CommittedOutput;
    expect(record.attemptId).toBe(winner?.id);
    expect(record.files).toEqual([{ name: 'count', size: 3 }, { name: 'sub/part', size: winner?.id.length }]);
    expect(record.size).toBe(3 + (winner?.id.length ?? 0));
    // Every other attempt lost, and was told who won.
    expect(outcomes.filter((o) => o.kind === 'already').map((o) => (o.kind === 'already' ? o.winner : undefined))).toEqual(Array(attempts.length - 1).fill(winner?.id));
    // A loser on another host than the winner's renamed nothing into place (its own final directory
    // holds no commit); losers on the winner's host share the winner's directory, checked below.
    const elsewhere = attempts.filter((a, i) => outcomes[i]?.kind === 'already' && a.host !== winner?.host);
    expect(elsewhere).toHaveLength(4);
    for (const a of elsewhere) expect(await committedBy(a.finalDir)).toBeUndefined();
    expect(await readFile(join(winner?.finalDir ?? '', 'sub', 'part'), 'utf8')).toBe(winner?.id);
    expect(await committedBy(winner?.finalDir ?? '')).toBe(winner?.id);
  });

  it('rolls a recorded commit forward when the rename never happened', async () => {
    const ledger = new RedisCommitLedger(conn);
    const finalDir = join(dir, 'crash', 'reduce', '00000');
    const plan = planOutput(finalDir, 'job.1.0.a1');
    await prepareAttemptDir(plan);
    await writeFile(join(plan.attemptDir, 'words'), 'the 3\n');
    // The decision is recorded, then the process "dies" before renaming: simulate by deciding
    // through the ledger and throwing before commitOutput gets to the rename.
    const crash: CommitDecision = async (files, size, staged) => {
      await ledger.commit('job.1.0', { attemptId: 'job.1.0.a1', host: 'h', path: finalDir, size, files, committedAt: 1, staged });
      throw new Error('killed');
    };
    await expect(commitOutput(plan, 'job.1.0.a1', crash)).rejects.toThrow('killed');
    expect(await committedBy(finalDir)).toBeUndefined();
    const record = await ledger.lookup('job.1.0');
    expect(record?.staged).toBe(plan.attemptDir);
    expect(await settleCommitted(record as CommittedOutput)).toBe(true);
    expect(await readFile(join(finalDir, 'words'), 'utf8')).toBe('the 3\n');
    expect(await committedBy(finalDir)).toBe('job.1.0.a1');
    expect(await readdir(join(dir, 'crash', 'reduce'))).toEqual(['00000']);
    expect(await conn.exists(commitKey('job.1.0'))).toBe(1);
  });
});
