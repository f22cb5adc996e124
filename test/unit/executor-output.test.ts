/**
 * Output commit on a real filesystem: one winner among concurrent commits
 * of the same task, losers discarded, a committed directory never replaced,
 * and foreign content at the final path reported as a conflict.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COMMIT_MARKER, STAGING_DIR, STAGING_UPKEEP_MS, commitOutput, committedBy, discardAttemptDir, mkdirpRacing, planOutput, prepareAttemptDir, releaseStaging, settleCommitted, settleStaging, stagingInUse, type OutputPlan } from '../../src/executor/output.js';
import type { CommittedOutput } from '../../src/executor/contract.js';

let dir: string;
/** Every attempt a test prepared: released after it, so that no test begins with this process staging. */
let made: OutputPlan[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-output-'));
});
afterEach(async () => {
  for (const p of made) await releaseStaging(p);
  made = [];
  await settleStaging();
  await rm(dir, { recursive: true, force: true });
});

/** prepareAttemptDir, the attempt noted for release after the test. */
async function prepare(p: OutputPlan): Promise<OutputPlan> {
  made.push(p);
  await prepareAttemptDir(p);
  return p;
}

/** Prepare an attempt directory for each [task directory name, attempt id], each holding a part file that names it. */
async function stageAttempts<T extends readonly [] | readonly (readonly [string, string])[]>(attempts: T): Promise<{ -readonly [K in keyof T]: OutputPlan }> {
  const plans: OutputPlan[] = [];
  for (const [task, attemptId] of attempts as readonly (readonly [string, string])[]) {
    const p = planOutput(join(dir, task), attemptId);
    await prepare(p);
    await writeFile(join(p.attemptDir, 'part-0'), p.attemptDir);
    plans.push(p);
  }
  return plans as { -readonly [K in keyof T]: OutputPlan };
}

describe('exactly-once output commit', () => {
  it('lets exactly one of many concurrent attempts commit, and discards the others', async () => {
    const final = join(dir, 'task-1');
    const plans = Array.from({ length: 12 }, (_, i) => ({ plan: planOutput(final, `task-1.a${i}`), id: `task-1.a${i}` }));
    for (const { plan, id } of plans) {
      await prepare(plan);
      await writeFile(join(plan.attemptDir, 'part-0'), id);
    }
    const outcomes = await Promise.all(plans.map(({ plan, id }) => commitOutput(plan, id)));
    expect(outcomes.filter((o) => o.kind === 'committed')).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === 'already')).toHaveLength(11);
    const winner = await committedBy(final);
    expect(await readFile(join(final, 'part-0'), 'utf8')).toBe(winner);
    expect((await readdir(final)).sort()).toEqual([COMMIT_MARKER, 'part-0']);
    // The losers' directories are gone; the shared staging directory stays until it is idle.
    expect((await readdir(dir)).sort()).toEqual([STAGING_DIR, 'task-1']);
    expect(await readdir(join(dir, STAGING_DIR))).toEqual([]);
  });

  it('two deliveries of the same attempt get different private directories', () => {
    const a = planOutput('/out/t', 't.a1');
    const b = planOutput('/out/t', 't.a1');
    expect(a.attemptDir).not.toBe(b.attemptDir);
    expect(a.stagingRoot).toBe(b.stagingRoot);
  });

  it('never replaces a committed directory, even one a later attempt would leave empty', async () => {
    const final = join(dir, 't');
    const first = planOutput(final, 't.a1');
    await prepare(first);
    expect((await commitOutput(first, 't.a1')).kind).toBe('committed');
    const second = planOutput(final, 't.a2');
    await prepare(second);
    const o = await commitOutput(second, 't.a2');
    expect(o).toMatchObject({ kind: 'already', winner: 't.a1' });
    expect(await committedBy(final)).toBe('t.a1');
  });

  it("stages a stage's tasks in one shared directory, and a commit sweeps its own task's leftovers only", async () => {
    // 'task-1.x' begins with 'task-1.': a name prefix alone would take its directories for task-1's.
    const [crashed, other, winner] = await stageAttempts([['task-1', 'task-1.a0'], ['task-1.x', 'task-1.x.a1'], ['task-1', 'task-1.a1']]);
    expect(new Set([crashed.stagingRoot, other.stagingRoot, winner.stagingRoot])).toEqual(new Set([join(dir, STAGING_DIR)]));
    expect(other.attemptDir.startsWith(join(winner.stagingRoot, winner.taskPrefix))).toBe(false);
    expect((await commitOutput(winner, 'task-1.a1')).kind).toBe('committed');
    // Swept by the staging directory's next upkeep, not by the commit itself.
    expect(await readdir(winner.stagingRoot)).toHaveLength(2);
    await settleStaging();
    // The crashed delivery's directory went with the commit; the other task's running attempt kept its own.
    expect(await readdir(winner.stagingRoot)).toEqual([other.attemptDir.slice(other.stagingRoot.length + 1)]);
    expect((await commitOutput(other, 'task-1.x.a1')).kind).toBe('committed');
    expect(await readFile(join(dir, 'task-1.x', 'part-0'), 'utf8')).toBe(other.attemptDir);
    expect(await readdir(winner.stagingRoot)).toEqual([]);
  });

  it("a commit's sweep leaves the directories of a recompute of the task (another output directory, another prefix)", async () => {
    const [crashed, winner] = await stageAttempts([['t', 't.a0'], ['t', 't.a1']]);
    // The output lost and computed again: a generation's own directory, `<task>~g<n>` (JobService).
    const recompute = await prepare(planOutput(join(dir, 't~g1'), 't.a2'));
    expect(recompute.taskPrefix.startsWith(winner.taskPrefix)).toBe(false);
    expect((await commitOutput(winner, 't.a1')).kind).toBe('committed');
    await settleStaging();
    expect(await readdir(winner.stagingRoot)).toEqual([recompute.attemptDir.slice(recompute.stagingRoot.length + 1)]);
    expect(crashed.attemptDir).not.toBe(recompute.attemptDir);
  });

  it("removes the shared staging directory when this process's last attempt in it ends, never while one uses it", async () => {
    const a = await prepare(planOutput(join(dir, 't1'), 't1.a1'));
    const b = await prepare(planOutput(join(dir, 't2'), 't2.a1'));
    expect((await commitOutput(a, 't1.a1')).kind).toBe('committed');
    await releaseStaging(a);
    // b still stages there.
    expect(stagingInUse(a.stagingRoot)).toBe(true);
    expect(await readdir(a.stagingRoot)).toHaveLength(1);
    expect((await commitOutput(b, 't2.a1')).kind).toBe('committed');
    await releaseStaging(b);
    // This process stages nowhere else: gone before the release returns (before a result is reported).
    expect(stagingInUse(a.stagingRoot)).toBe(false);
    expect((await readdir(dir)).sort()).toEqual(['t1', 't2']);
    // A release twice, or of an attempt never prepared, changes nothing.
    await releaseStaging(b);
    await releaseStaging(planOutput(join(dir, 't3'), 't3.a1'));
    // Another process's attempt (not held here) keeps the directory: the rmdir fails.
    const c = await prepare(planOutput(join(dir, 't3'), 't3.a1'));
    const foreign = join(c.stagingRoot, 'other-process-attempt');
    await mkdir(foreign);
    await discardAttemptDir(c);
    await releaseStaging(c);
    expect(await readdir(c.stagingRoot)).toEqual(['other-process-attempt']);
    // The next attempt makes it again after it went.
    await rm(c.stagingRoot, { recursive: true });
    const d = await prepare(planOutput(join(dir, 't4'), 't4.a1'));
    expect((await commitOutput(d, 't4.a1')).kind).toBe('committed');
    await releaseStaging(d);
    expect((await readdir(dir)).sort()).toEqual(['t1', 't2', 't4']);
  });

  it('while this process stages elsewhere, a staging directory it left is swept and removed by its upkeep, within STAGING_UPKEEP_MS', async () => {
    // An attempt of another stage keeps this process busy.
    const elsewhere = await prepare(planOutput(join(dir, 'other-stage', 'x'), 'x.a1'));
    const [crashed, winner] = await stageAttempts([['s/t', 't.a0'], ['s/t', 't.a1']]);
    expect((await commitOutput(winner, 't.a1')).kind).toBe('committed');
    await releaseStaging(winner);
    // Not yet: the crashed delivery's directory (still held here) waits for the sweep.
    expect(await readdir(winner.stagingRoot)).toEqual([crashed.attemptDir.slice(crashed.stagingRoot.length + 1)]);
    await releaseStaging(crashed);
    expect(existsSync(winner.stagingRoot)).toBe(true);
    // By the upkeep's timer alone.
    await new Promise((r) => setTimeout(r, STAGING_UPKEEP_MS + 150));
    expect((await readdir(join(dir, 's'))).sort()).toEqual(['t']);
    expect(stagingInUse(elsewhere.stagingRoot)).toBe(true);
  });

  it('sweeps what an earlier version left for the task in its own staging root when the task commits', async () => {
    const legacy = join(dir, '.t.locus-attempts', 't.a0.abc');
    await mkdir(legacy, { recursive: true });
    await writeFile(join(legacy, 'part-0'), 'half');
    const keep = join(dir, '.u.locus-attempts');
    await mkdir(keep);
    const p = planOutput(join(dir, 't'), 't.a1');
    await prepare(p);
    expect((await commitOutput(p, 't.a1')).kind).toBe('committed');
    await releaseStaging(p);
    // The task's old root is gone; another task's is not its to remove.
    expect((await readdir(dir)).sort()).toEqual(['.u.locus-attempts', 't']);
  });

  it('finishes a recorded rename from the shared staging directory, leaving other tasks\' directories', async () => {
    const [recorded, , neighbour] = await stageAttempts([['t', 't.a1'], ['t', 't.a0'], ['u', 'u.a1']]);
    await writeFile(join(recorded.attemptDir, COMMIT_MARKER), JSON.stringify({ attemptId: 't.a1' }));
    const record: CommittedOutput = { attemptId: 't.a1', host: 'h', path: join(dir, 't'), size: 0, files: [], committedAt: 0, staged: recorded.attemptDir };
    expect(await settleCommitted(record)).toBe(true);
    expect(await committedBy(join(dir, 't'))).toBe('t.a1');
    expect(await readdir(recorded.stagingRoot)).toEqual([neighbour.attemptDir.slice(neighbour.stagingRoot.length + 1)]);
  });

  it('removes the shared staging directory a settled rename left empty when no attempt here uses it', async () => {
    // Another process staged and recorded, then died: nothing of this process holds the directory.
    const root = join(dir, STAGING_DIR);
    const staged = join(root, `${planOutput(join(dir, 't'), 'x').taskPrefix}t.a1.dead0`);
    await mkdir(staged, { recursive: true });
    await writeFile(join(staged, COMMIT_MARKER), JSON.stringify({ attemptId: 't.a1' }));
    const record: CommittedOutput = { attemptId: 't.a1', host: 'h', path: join(dir, 't'), size: 0, files: [], committedAt: 0, staged };
    expect(await settleCommitted(record)).toBe(true);
    expect(await readdir(dir)).toEqual(['t']);
  });

  it('finishes a recorded rename from an earlier version\'s per-task staging root, and removes that root', async () => {
    const root = join(dir, '.t.locus-attempts');
    const staged = join(root, 't.a1.abc');
    await mkdir(staged, { recursive: true });
    await writeFile(join(staged, COMMIT_MARKER), JSON.stringify({ attemptId: 't.a1' }));
    await mkdir(join(root, 't.a0.def'));
    const record: CommittedOutput = { attemptId: 't.a1', host: 'h', path: join(dir, 't'), size: 0, files: [], committedAt: 0, staged };
    expect(await settleCommitted(record)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['t']);
  });

  it('reports foreign content at the final path as a conflict', async () => {
    const final = join(dir, 'taken');
    await mkdir(final);
    await writeFile(join(final, 'someone-elses'), 'x');
    const plan = planOutput(final, 'taken.a1');
    await prepare(plan);
    expect((await commitOutput(plan, 'taken.a1')).kind).toBe('conflict');
    expect(await readdir(final)).toEqual(['someone-elses']);
  });
});

describe('an attempt directory made while another process removes the staging root', () => {
  const failing = (codes: string[]): { mkdirp(path: string): Promise<string | undefined>; calls: number } => {
    const o = {
      calls: 0,
      async mkdirp(path: string): Promise<string | undefined> {
        const code = codes[o.calls++];
        if (code !== undefined) throw Object.assign(new Error(`${code}: mkdir '${path}'`), { code });
        return path;
      },
    };
    return o;
  };

  it('is made again when Node reports the race (ENOTDIR, or ENOENT when synchronous)', async () => {
    const c = failing(['ENOTDIR', 'ENOENT']);
    expect(await mkdirpRacing(c, '/x/.locus-staging/a')).toBe('/x/.locus-staging/a');
    expect(c.calls).toBe(3);
  });

  it('a root that stays no directory fails after a few tries, and other errors at once', async () => {
    const stuck = failing(Array<string>(10).fill('ENOTDIR'));
    await expect(mkdirpRacing(stuck, '/x/a')).rejects.toMatchObject({ code: 'ENOTDIR' });
    expect(stuck.calls).toBe(5);
    const denied = failing(['EACCES']);
    await expect(mkdirpRacing(denied, '/x/a')).rejects.toMatchObject({ code: 'EACCES' });
    expect(denied.calls).toBe(1);
  });
});
