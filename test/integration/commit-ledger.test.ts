/**
 * Output commit decided by the Redis commit ledger (real redis-server, real
 * filesystem): attempts in different output directories (different hosts)
 * race, exactly one wins and only its directory is renamed into place; the
 * record lists the files and sizes; and a crash between the record and the
 * rename is rolled forward from the staging directory the record names; a
 * commit whose reply was lost with the connection (Redis killed after it
 * applied the script, before it answered) and that the client sends again
 * after reconnecting is still this attempt's commit. Lookups asked for together (a batch's
 * members starting) go out as one MGET, each answered with its own task's record.
 */
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCommitLedger } from '../../src/executor/data-plane.js';
import { STAGING_DIR, commitOutput, committedBy, planOutput, prepareAttemptDir, settleCommitted, type CommitDecision } from '../../src/executor/output.js';
import { commitKey, type CommittedOutput } from '../../src/executor/contract.js';
import { scriptCalls, startRedis, type TestRedis } from '../harness/redis.js';

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
    // Nothing of the task is left in staging (the stage's shared staging directory stays until idle).
    expect((await readdir(join(dir, 'crash', 'reduce'))).sort()).toEqual([STAGING_DIR, '00000']);
    expect(await readdir(plan.stagingRoot)).toEqual([]);
    expect(await conn.exists(commitKey('job.1.0'))).toBe(1);
  });

  it('a final path held by files Locus did not commit: no record is written, the files stay, the staging copy goes', async () => {
    const ledger = new RedisCommitLedger(conn);
    const finalDir = join(dir, 'taken', 'main', '00000');
    await mkdir(finalDir, { recursive: true });
    await writeFile(join(finalDir, 'notes.txt'), 'a user\'s\n');
    const plan = planOutput(finalDir, 'taken.0.0.a1');
    await prepareAttemptDir(plan);
    await writeFile(join(plan.attemptDir, 'part'), 'mine\n');
    let asked = 0;
    const decide: CommitDecision = async (...args) => { asked++; return await decider(ledger, 'taken.0.0', 'taken.0.0.a1', 'h', finalDir)(...args); };
    const outcome = await commitOutput(plan, 'taken.0.0.a1', decide, async (r, c) => await ledger.markConflict('taken.0.0', r, c));
    expect(outcome.kind).toBe('conflict');
    expect(outcome.kind === 'conflict' ? outcome.message : '').toContain(`${finalDir} already holds 1 entry that Locus did not commit: 'notes.txt'`);
    expect(asked).toBe(0);
    expect(await ledger.lookup('taken.0.0')).toBeUndefined();
    expect(await readdir(finalDir)).toEqual(['notes.txt']);
    expect(await readdir(plan.stagingRoot)).toEqual([]);
  });

  it('another job\'s committed output in the final path is not this task\'s commit: a conflict, not ALREADY_COMMITTED', async () => {
    const ledger = new RedisCommitLedger(conn);
    const finalDir = join(dir, 'reused', 'main', '00000');
    const old = planOutput(finalDir, 'job-old.0.0.a1');
    await prepareAttemptDir(old);
    await writeFile(join(old.attemptDir, 'part'), 'old\n');
    expect((await commitOutput(old, 'job-old.0.0.a1', decider(ledger, 'job-old.0.0', 'job-old.0.0.a1', 'h', finalDir))).kind).toBe('committed');
    // The old job is purged (its record goes), its directory stays; the new job's task commits there.
    await conn.del(commitKey('job-old.0.0'));
    const plan = planOutput(finalDir, 'job-new.0.0.a1');
    await prepareAttemptDir(plan);
    await writeFile(join(plan.attemptDir, 'part'), 'new\n');
    const outcome = await commitOutput(plan, 'job-new.0.0.a1', decider(ledger, 'job-new.0.0', 'job-new.0.0.a1', 'h', finalDir), async (r, c) => await ledger.markConflict('job-new.0.0', r, c));
    expect(outcome.kind).toBe('conflict');
    expect(outcome.kind === 'conflict' ? outcome.message : '').toContain('the output of attempt job-old.0.0.a1');
    expect(await ledger.lookup('job-new.0.0')).toBeUndefined();
    expect(await readFile(join(finalDir, 'part'), 'utf8')).toBe('old\n');
    expect(await committedBy(finalDir)).toBe('job-old.0.0.a1');
  });

  it('taken between the decision and the rename: the winner marks its record, and the record is never read as a commit', async () => {
    const ledger = new RedisCommitLedger(conn);
    const finalDir = join(dir, 'race', 'main', '00000');
    const plan = planOutput(finalDir, 'race.0.0.a1');
    await prepareAttemptDir(plan);
    await writeFile(join(plan.attemptDir, 'part'), 'mine\n');
    // Something writes the final path just after the ledger decided for this attempt.
    const decide: CommitDecision = async (...args) => {
      const d = await decider(ledger, 'race.0.0', 'race.0.0.a1', 'h', finalDir)(...args);
      await mkdir(finalDir, { recursive: true });
      await writeFile(join(finalDir, 'late'), 'theirs\n');
      return d;
    };
    const outcome = await commitOutput(plan, 'race.0.0.a1', decide, async (r, c) => await ledger.markConflict('race.0.0', r, c));
    expect(outcome.kind).toBe('conflict');
    const record = await ledger.lookup('race.0.0');
    expect(record?.attemptId).toBe('race.0.0.a1');
    expect(record?.conflict).toContain(`${finalDir} already holds 1 entry that Locus did not commit: 'late'`);
    expect(outcome.record?.conflict).toBe(record?.conflict);
    // Marked, its staging copy is nobody's output: gone.
    expect(await readdir(plan.stagingRoot)).toEqual([]);
    expect(await readFile(join(finalDir, 'late'), 'utf8')).toBe('theirs\n');
    // Another attempt of the task loses to the record, and reports the conflict, not a commit.
    const other = planOutput(finalDir, 'race.0.0.a2');
    await prepareAttemptDir(other);
    await writeFile(join(other.attemptDir, 'part'), 'mine again\n');
    // (The final path is looked at first: emptied, the attempt reaches the ledger.)
    await rm(join(finalDir, 'late'));
    const second = await commitOutput(other, 'race.0.0.a2', decider(ledger, 'race.0.0', 'race.0.0.a2', 'h', finalDir));
    expect(second.kind).toBe('conflict');
    expect(second.kind === 'conflict' ? second.message : '').toBe(record?.conflict);
    expect(await committedBy(finalDir)).toBeUndefined();
  });

  it('marks only the record of that very attempt and staging directory', async () => {
    const ledger = new RedisCommitLedger(conn);
    const rec: CommittedOutput = { attemptId: 'mark.0.0.a1', host: 'h', path: join(dir, 'mark'), size: 1, files: [{ name: 'f', size: 1 }], committedAt: 1_767_225_600_123, staged: '/s/one' };
    expect((await ledger.commit('mark.0.0', rec)).won).toBe(true);
    // Another delivery of the attempt (its own staging directory), another attempt: unchanged.
    expect((await ledger.markConflict('mark.0.0', { ...rec, staged: '/s/two' }, 'no'))?.conflict).toBeUndefined();
    expect((await ledger.markConflict('mark.0.0', { ...rec, attemptId: 'mark.0.0.a2' }, 'no'))?.conflict).toBeUndefined();
    expect(await ledger.lookup('mark.0.0')).toEqual(rec);
    // No record: nothing is written.
    expect(await ledger.markConflict('mark.0.404', rec, 'no')).toBeUndefined();
    expect(await conn.exists(commitKey('mark.0.404'))).toBe(0);
    // Its own: marked, every other field as it was.
    expect(await ledger.markConflict('mark.0.0', rec, 'taken')).toEqual({ ...rec, conflict: 'taken' });
    expect(await ledger.lookup('mark.0.0')).toEqual({ ...rec, conflict: 'taken' });
    // A later commit of the task loses to the marked record, and hears of the conflict.
    const late = await ledger.commit('mark.0.0', { ...rec, attemptId: 'mark.0.0.a3', staged: '/s/three' });
    expect(late).toEqual({ won: false, record: { ...rec, conflict: 'taken' } });
  });

  it('a roll-forward tells the task\'s own output from a conflict', async () => {
    const ledger = new RedisCommitLedger(conn);
    const finalDir = join(dir, 'settle', 'main', '00000');
    const plan = planOutput(finalDir, 'settle.0.0.a1');
    await prepareAttemptDir(plan);
    await writeFile(join(plan.attemptDir, 'part'), 'mine\n');
    const crash: CommitDecision = async (files, size, staged) => {
      await ledger.commit('settle.0.0', { attemptId: 'settle.0.0.a1', host: 'h', path: finalDir, size, files, committedAt: 1, staged });
      throw new Error('killed');
    };
    await expect(commitOutput(plan, 'settle.0.0.a1', crash)).rejects.toThrow('killed');
    const record = (await ledger.lookup('settle.0.0')) as CommittedOutput;
    // Something took the path before the roll-forward: a conflict, and the staging copy stays
    // (the caller marks the record; the copy is the record's until then).
    await mkdir(finalDir, { recursive: true });
    await writeFile(join(finalDir, 'theirs'), 'x');
    expect(await settleCommitted(record)).toEqual({ conflict: expect.stringContaining(`${finalDir} already holds 1 entry that Locus did not commit: 'theirs'`) as unknown });
    expect(await readdir(plan.stagingRoot)).toHaveLength(1);
    // Freed again: rolled forward, and then found in place (its own marker) by the next roll-forward.
    await rm(finalDir, { recursive: true });
    expect(await settleCommitted(record)).toBe(true);
    expect(await settleCommitted(record)).toBe(true);
    expect(await committedBy(finalDir)).toBe('settle.0.0.a1');
  });

  it('a commit sent again after its reply was lost with the connection is still the sender\'s: the output is renamed into place, not discarded', async () => {
    // A proxy between the executor's client and Redis that, once armed, lets the commit reach
    // Redis and closes the connection instead of passing the answer back: what a kill -9 of Redis
    // between applying the script (and its AOF write) and replying does. The executor's client
    // (maxRetriesPerRequest: null, autoResendUnfulfilledCommands by default) reconnects and sends
    // the same commit again; Redis finds the record it wrote the first time.
    let armed = false;
    const sockets = new Set<Socket>();
    const proxy: Server = createServer((client) => {
      const upstream = connect(redis.port, '127.0.0.1');
      sockets.add(client).add(upstream);
      let dropReply = false;
      client.on('data', (d) => {
        if (armed && d.toString('latin1').includes(commitKey('job.2.0'))) {
          armed = false;
          dropReply = true;
        }
        upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (!dropReply) {
          client.write(d);
          return;
        }
        client.destroy();
        upstream.destroy();
      });
      const end = (): void => { client.destroy(); upstream.destroy(); };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((res) => proxy.listen(0, '127.0.0.1', res));
    const port = (proxy.address() as { port: number }).port;
    // As the executor connects (src/cli/commands/executor.ts).
    const exec = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 100, 2000) });
    exec.on('error', () => undefined);
    try {
      const ledger = new RedisCommitLedger(exec);
      // The script is loaded once on this connection first, so the commit below goes out as EVALSHA and runs.
      await ledger.commit('job.2.warm', { attemptId: 'w', host: 'h', path: '/nowhere', size: 0, files: [], committedAt: 1 });
      const finalDir = join(dir, 'lost-reply', 'a', '00008');
      const plan = planOutput(finalDir, 'job.2.0.a1');
      await prepareAttemptDir(plan);
      await writeFile(join(plan.attemptDir, 'v'), 'a 8 1\n');
      armed = true;
      const outcome = await commitOutput(plan, 'job.2.0.a1', decider(ledger, 'job.2.0', 'job.2.0.a1', 'h', finalDir));
      expect(armed).toBe(false);
      expect(outcome.kind).toBe('committed');
      expect(await committedBy(finalDir)).toBe('job.2.0.a1');
      expect(await readFile(join(finalDir, 'v'), 'utf8')).toBe('a 8 1\n');
      expect((await ledger.lookup('job.2.0'))?.attemptId).toBe('job.2.0.a1');
      // Another attempt of the task still loses to it.
      const other = planOutput(finalDir, 'job.2.0.a2');
      await prepareAttemptDir(other);
      await writeFile(join(other.attemptDir, 'v'), 'a 8 2\n');
      const second = await commitOutput(other, 'job.2.0.a2', decider(ledger, 'job.2.0', 'job.2.0.a2', 'h', finalDir));
      expect(second.kind === 'already' ? second.winner : second.kind).toBe('job.2.0.a1');
      expect(await readFile(join(finalDir, 'v'), 'utf8')).toBe('a 8 1\n');
    } finally {
      exec.disconnect();
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => proxy.close(() => res()));
    }
  });

  it('lookups asked for together go out as one MGET; each gets its own record, and a record that does not parse fails only its own lookup', async () => {
    const ledger = new RedisCommitLedger(conn);
    const record: CommittedOutput = { attemptId: 'mget.0.1.a1', host: 'host-1', path: join(dir, 'mget', '00001'), size: 0, files: [], committedAt: Date.now() };
    await conn.set(commitKey('mget.0.1'), JSON.stringify(record));
    await conn.set(commitKey('mget.0.9'), '{not json');
    const calls = async (): Promise<{ get: number; mget: number }> => {
      const info = await conn.info('commandstats');
      const count = (cmd: string): number => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
      return { get: count('get'), mget: count('mget') };
    };
    const before = await calls();
    const answers = await Promise.allSettled([ledger.lookup('mget.0.0'), ledger.lookup('mget.0.1'), ledger.lookup('mget.0.9'), ledger.lookup('mget.0.2')]);
    const after = await calls();
    expect(after.mget - before.mget).toBe(1);
    expect(after.get - before.get).toBe(0);
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(answers[0]).toEqual({ status: 'fulfilled', value: undefined });
    expect(answers[1]).toEqual({ status: 'fulfilled', value: record });
    expect(answers[3]).toEqual({ status: 'fulfilled', value: undefined });
    // A lookup asked later (another turn of the event loop) goes out on its own, and sees a
    // commit made after the first MGET.
    await conn.set(commitKey('mget.0.0'), JSON.stringify({ ...record, attemptId: 'mget.0.0.a1' }));
    expect((await ledger.lookup('mget.0.0'))?.attemptId).toBe('mget.0.0.a1');
    expect((await calls()).get - after.get).toBe(1);
  });

  it('commits go in group: one script call out at a time, those made meanwhile together in the next, each decided on its own', async () => {
    const ledger = new RedisCommitLedger(conn);
    const scripts = (): Promise<number> => scriptCalls(conn);
    const rec = (task: string, attempt: string): CommittedOutput => ({ attemptId: attempt, host: 'h', path: join(dir, 'group', task), size: 0, files: [], committedAt: 1 });
    // Loaded once first: a script's first call on a server goes as EVALSHA, then EVAL.
    await ledger.commit('group.0.99', rec('99', 'group.0.99.a1'));
    const before = await scripts();
    // One first, alone; then, while it is out, ten more tasks' commits, two attempts of one task
    // among them, and a record already there for another.
    await conn.set(commitKey('group.0.5'), JSON.stringify(rec('5', 'group.0.5.a0')));
    // The connection's replies wait behind a blocked command: the first commit stays out while
    // the others come, each in a turn of its own.
    const blocked = conn.blpop('group:never', 0.3);
    const first = ledger.commit('group.0.0', rec('0', 'group.0.0.a1'));
    const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
    const rest: Promise<{ won: boolean; record: CommittedOutput }>[] = [];
    for (const i of [1, 2, 3, 4, 5, 6, 7, 8, 9]) {
      await turn();
      rest.push(ledger.commit(`group.0.${i}`, rec(String(i), `group.0.${i}.a1`)));
    }
    await turn();
    const twice = ledger.commit('group.0.3', rec('3', 'group.0.3.a2'));
    expect(await blocked).toBeNull();
    expect((await first).won).toBe(true);
    const answers = await Promise.all(rest);
    expect(answers.map((a) => a.won)).toEqual([true, true, true, true, false, true, true, true, true]);
    expect(answers[4]?.record.attemptId).toBe('group.0.5.a0');
    // The second attempt of task 3, in the same call as the first: refused, with the first's record.
    expect(await twice).toMatchObject({ won: false, record: { attemptId: 'group.0.3.a1' } });
    expect(await scripts() - before).toBe(2);
    expect(JSON.parse(await conn.get(commitKey('group.0.3')) ?? '{}')).toMatchObject({ attemptId: 'group.0.3.a1' });
  });
});
