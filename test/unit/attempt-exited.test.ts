/**
 * runAttempt tells its executor when the workload has ended, before the output commit
 * (AttemptControl.onExited): the executor drops a progress report still pending then, so a
 * short task whose commit is slow under load costs no progress scripts on Redis. The runner
 * is the real no-op runner and the output commit runs on a real filesystem; the commit ledger
 * is an in-memory one that records when it is asked.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAttempt, type AttemptContext } from '../../src/executor/attempt.js';
import { type AttemptPayload } from '../../src/executor/contract.js';
import { attemptContext, attemptPayload, memoryLedger } from './attempt-fixture.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-exited-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup(events: string[]): { ctx: AttemptContext; payload: (n: number) => AttemptPayload } {
  return { ctx: attemptContext(dir, memoryLedger(events).ledger), payload: (n) => attemptPayload(dir, n) };
}

describe('the workload has exited', () => {
  it('is told once, after the workload ran and before its output is committed', async () => {
    const events: string[] = [];
    const { ctx, payload } = setup(events);
    const r = await runAttempt(payload(0), ctx, {
      delivery: 'd0', drain: new AbortController().signal,
      onRunning: () => void events.push('running'),
      onExited: () => void events.push('exited'),
    });
    expect(r.state).toBe('SUCCEEDED');
    expect(r.reason).toBe('COMMITTED');
    expect(events).toEqual(['running', 'exited', 'commit']);
  });

  it('is not told for an attempt that never ran (its output was committed already)', async () => {
    const events: string[] = [];
    const { ctx, payload } = setup(events);
    await runAttempt(payload(1), ctx, { delivery: 'd1', drain: new AbortController().signal, onRunning: () => undefined });
    events.length = 0;
    const again = await runAttempt({ ...payload(1), attemptId: 'job-1.0.1.2', attempt: 2 }, ctx, {
      delivery: 'd2', drain: new AbortController().signal,
      onRunning: () => void events.push('running'),
      onExited: () => void events.push('exited'),
    });
    expect(again.reason).toBe('ALREADY_COMMITTED');
    expect(events).toEqual([]);
  });
});
