/**
 * Output commit on a real filesystem: one winner among concurrent commits
 * of the same task, losers discarded, a committed directory never replaced,
 * and foreign content at the final path reported as a conflict.
 */
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COMMIT_MARKER, commitOutput, committedBy, planOutput, prepareAttemptDir } from '../../src/executor/output.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-output-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('exactly-once output commit', () => {
  it('lets exactly one of many concurrent attempts commit, and discards the others', async () => {
    const final = join(dir, 'task-1');
    const plans = Array.from({ length: 12 }, (_, i) => ({ plan: planOutput(final, `task-1.a${i}`), id: `task-1.a${i}` }));
    for (const { plan, id } of plans) {
      await prepareAttemptDir(plan);
      await writeFile(join(plan.attemptDir, 'part-0'), id);
    }
    const outcomes = await Promise.all(plans.map(({ plan, id }) => commitOutput(plan, id)));
    expect(outcomes.filter((o) => o.kind === 'committed')).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === 'already')).toHaveLength(11);
    const winner = await committedBy(final);
    expect(await readFile(join(final, 'part-0'), 'utf8')).toBe(winner);
    expect((await readdir(final)).sort()).toEqual([COMMIT_MARKER, 'part-0']);
    expect((await readdir(dir)).sort()).toEqual(['task-1']);
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
    await prepareAttemptDir(first);
    expect((await commitOutput(first, 't.a1')).kind).toBe('committed');
    const second = planOutput(final, 't.a2');
    await prepareAttemptDir(second);
    const o = await commitOutput(second, 't.a2');
    expect(o).toMatchObject({ kind: 'already', winner: 't.a1' });
    expect(await committedBy(final)).toBe('t.a1');
  });

  it('reports foreign content at the final path as a conflict', async () => {
    const final = join(dir, 'taken');
    await mkdir(final);
    await writeFile(join(final, 'someone-elses'), 'x');
    const plan = planOutput(final, 'taken.a1');
    await prepareAttemptDir(plan);
    expect((await commitOutput(plan, 'taken.a1')).kind).toBe('conflict');
    expect(await readdir(final)).toEqual(['someone-elses']);
  });
});
