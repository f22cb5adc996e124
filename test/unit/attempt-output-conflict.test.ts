/**
 * An attempt whose task's output directory holds what the task did not commit ends FAILED with
 * OUTPUT_CONFLICT, on every path to it, and never SUCCEEDED with ALREADY_COMMITTED:
 * - with the ledger, a crash between the record and the rename, then the path taken: the next
 *   attempt on the recording host finds the conflict, marks the record (and drops the staging
 *   copy); an attempt on any other host then reads the mark;
 * - without the ledger, a directory holding another job's committed output (its `_SUCCESS`)
 *   is found before anything runs;
 * and the scheduler takes OUTPUT_CONFLICT as fatal: the task is not retried.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAttempt } from '../../src/executor/attempt.js';
import { COMMIT_MARKER } from '../../src/executor/contract.js';
import type { CommitLedger } from '../../src/executor/data-plane.js';
import { classifyFailure } from '../../src/scheduler/jobs/failures.js';
import { attemptContext, attemptPayload, memoryLedger } from './attempt-fixture.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-output-conflict-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The ledger, except that its first commit's reply is lost after it was recorded (the executor died). */
function diesAfterFirstCommit(ledger: CommitLedger): CommitLedger {
  let die = true;
  return {
    ...ledger,
    commit: async (taskId, record) => {
      const d = await ledger.commit(taskId, record);
      if (die) {
        die = false;
        throw new Error('Connection is closed.');
      }
      return d;
    },
  };
}

const control = (delivery: string): Parameters<typeof runAttempt>[2] => ({ delivery, drain: new AbortController().signal, onRunning: () => undefined });

describe('a recorded commit whose final path something else took before the rename', () => {
  it('is marked as a conflict by the next attempt on its host, and reported as one on every host after', async () => {
    const { ledger, records } = memoryLedger();
    // The executor dies right after the ledger recorded its commit (seen as a lost reply).
    const dying = diesAfterFirstCommit(ledger);
    const ctx = attemptContext(dir, dying);
    const first = attemptPayload(dir, 0);
    const finalDir = first.outputDir as string;
    expect(await runAttempt(first, ctx, control('d1'))).toMatchObject({ state: 'LOST', reason: 'COMMIT_LEDGER_UNAVAILABLE' });
    const staged = records.get(first.taskId)?.staged as string;
    expect(existsSync(staged)).toBe(true);

    // Someone's files land in the task's directory before any roll-forward.
    await mkdir(finalDir, { recursive: true });
    await writeFile(join(finalDir, 'theirs.csv'), 'a,b\n');
    const retry = { ...first, attemptId: 'job-1.0.0.2', attempt: 2 };
    const r2 = await runAttempt(retry, ctx, control('d2'));
    expect(r2).toMatchObject({ state: 'FAILED', reason: 'OUTPUT_CONFLICT' });
    expect(r2.message).toContain(`${finalDir} already holds 1 entry that Locus did not commit: 'theirs.csv'`);
    expect(r2.message).toContain('Choose another `output:` for the job, or empty that directory');
    expect(records.get(first.taskId)?.conflict).toBe(r2.message);
    // The staging copy the record named is gone; the files are as they were.
    expect(existsSync(staged)).toBe(false);
    expect(await readdir(finalDir)).toEqual(['theirs.csv']);
    expect(await readFile(join(finalDir, 'theirs.csv'), 'utf8')).toBe('a,b\n');

    // Another host (it never looks at this host's directory) reads the mark: no ALREADY_COMMITTED.
    const elsewhere = await runAttempt({ ...first, attemptId: 'job-1.0.0.3', attempt: 3 }, { ...ctx, host: 'other-host' }, control('d3'));
    expect(elsewhere).toMatchObject({ state: 'FAILED', reason: 'OUTPUT_CONFLICT', message: r2.message });
  });

  it('is still rolled forward when nothing took the path (not a conflict)', async () => {
    const { ledger, records } = memoryLedger();
    const dying = diesAfterFirstCommit(ledger);
    const ctx = attemptContext(dir, dying);
    const first = attemptPayload(dir, 0);
    expect((await runAttempt(first, ctx, control('d1'))).reason).toBe('COMMIT_LEDGER_UNAVAILABLE');
    // An empty directory is no conflict: the rename replaces it.
    await mkdir(first.outputDir as string, { recursive: true });
    const r2 = await runAttempt({ ...first, attemptId: 'job-1.0.0.2', attempt: 2 }, ctx, control('d2'));
    expect(r2).toMatchObject({ state: 'SUCCEEDED', reason: 'ALREADY_COMMITTED' });
    expect(records.get(first.taskId)?.conflict).toBeUndefined();
    expect(JSON.parse(await readFile(join(first.outputDir as string, COMMIT_MARKER), 'utf8')).attemptId).toBe(first.attemptId);
  });
});

describe('without the ledger, a directory holding another job\'s committed output', () => {
  it('fails the attempt with OUTPUT_CONFLICT before it runs, where it reported ALREADY_COMMITTED', async () => {
    const ctx = attemptContext(dir, memoryLedger().ledger);
    const noLedger = { ...ctx, dataPlane: undefined };
    const payload = attemptPayload(dir, 0);
    const finalDir = payload.outputDir as string;
    const marker = JSON.stringify({ attemptId: 'job-0.0.0.a1', committedAt: '2026-01-01T00:00:00.000Z' }) + '\n';
    await mkdir(finalDir, { recursive: true });
    await writeFile(join(finalDir, 'part'), 'job-0\n');
    await writeFile(join(finalDir, COMMIT_MARKER), marker);
    const r = await runAttempt({ ...payload, argv: ['sh', '-c', `touch ${join(dir, 'ran')}`] }, noLedger, control('d1'));
    expect(r).toMatchObject({ state: 'FAILED', reason: 'OUTPUT_CONFLICT' });
    expect(r.message).toContain('the output of attempt job-0.0.0.a1');
    expect(existsSync(join(dir, 'ran'))).toBe(false);
    expect(await readFile(join(finalDir, COMMIT_MARKER), 'utf8')).toBe(marker);
    expect(await readFile(join(finalDir, 'part'), 'utf8')).toBe('job-0\n');
    // The task's own commit there is still its commit.
    await writeFile(join(finalDir, COMMIT_MARKER), JSON.stringify({ attemptId: 'job-1.0.0.7' }));
    expect(await runAttempt(payload, noLedger, control('d2'))).toMatchObject({ state: 'SUCCEEDED', reason: 'ALREADY_COMMITTED' });
  });
});

describe('the scheduler', () => {
  it('does not retry OUTPUT_CONFLICT: every attempt would find the same directory', () => {
    expect(classifyFailure({ state: 'FAILED', reason: 'OUTPUT_CONFLICT' })).toBe('fatal');
  });
});
