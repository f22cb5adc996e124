/** How failed attempts count and how long an unreachable input waits (src/scheduler/jobs/failures.ts). */
import { describe, expect, it } from 'vitest';
import { INPUT_UNREACHABLE, type AttemptResult } from '../../src/executor/contract.js';
import {
  FailureTally, HOST_FAILURES_TO_AVOID, INPUT_RETRY_MAX_MS, UNCOUNTED_INPUT_FAILURES, classifyFailure,
} from '../../src/scheduler/jobs/failures.js';

const noRecompute = { isRecomputing: () => false, wasLost: () => false };

function unreachable(taskId: string, over: Partial<AttemptResult> = {}): AttemptResult {
  return { attemptId: `${taskId}-a`, taskId, state: 'FAILED', exitCode: null, reason: INPUT_UNREACHABLE, message: 'no block server', startedAt: 0, finishedAt: 0, host: 'h1', ...over };
}

describe('FailureTally', () => {
  it('an unreachable input is uncounted up to the cap, each retry after a pause that doubles up to the longest', () => {
    const t = new FailureTally(noRecompute, 100);
    const r = unreachable('j1.0.0');
    const pauses: number[] = [];
    const classes: string[] = [];
    for (let i = 0; i < UNCOUNTED_INPUT_FAILURES + 1; i++) {
      const cls = t.cap(r, classifyFailure(r));
      classes.push(cls);
      pauses.push(t.retryPauseMs(r, cls));
    }
    expect(classes).toEqual([...Array<string>(UNCOUNTED_INPUT_FAILURES).fill('not-counted'), 'counted']);
    // 100, 200, 400, 800, 1600 ms; the failure past the cap counts and retries at once.
    expect(pauses).toEqual([100, 200, 400, 800, 1600, 0]);
    const slow = new FailureTally(noRecompute, 3000);
    slow.cap(r, 'not-counted');
    slow.cap(r, 'not-counted');
    expect(slow.retryPauseMs(r, 'not-counted')).toBe(INPUT_RETRY_MAX_MS);
    // Any other failure is retried at once.
    expect(t.retryPauseMs({ ...r, reason: 'EXIT_NONZERO' }, 'counted')).toBe(0);
  });

  it('a failure while the input is being recomputed counts toward nothing', () => {
    const t = new FailureTally({ isRecomputing: () => true, wasLost: () => true }, 100);
    const r = unreachable('j1.1.0', { inputHost: 'h3' });
    for (let i = 0; i < UNCOUNTED_INPUT_FAILURES + 3; i++) expect(t.cap(r, 'not-counted')).toBe('not-counted');
    expect(t.retryPauseMs(r, 'not-counted')).toBe(0);
  });

  it('a dataset input unreachable while another output is recomputed still pauses and counts (no spin)', () => {
    const t = new FailureTally({ isRecomputing: () => true, wasLost: () => true }, 100);
    const r = unreachable('j1.0.2');
    const classes: string[] = [];
    const pauses: number[] = [];
    for (let i = 0; i < UNCOUNTED_INPUT_FAILURES + 1; i++) {
      const cls = t.cap(r, 'not-counted');
      classes.push(cls);
      pauses.push(t.retryPauseMs(r, cls));
    }
    expect(classes).toEqual([...Array<string>(UNCOUNTED_INPUT_FAILURES).fill('not-counted'), 'counted']);
    expect(pauses).toEqual([100, 200, 400, 800, 1600, 0]);
  });

  it('a task whose input its host could not reach waits for its data hosts until an attempt ends otherwise', () => {
    const t = new FailureTally(noRecompute);
    expect(t.awaitsData('j4.0.1')).toBe(false);
    t.noteUnreachable(unreachable('j4.0.1'));
    expect(t.awaitsData('j4.0.1')).toBe(true);
    // Not when another host is the one at fault (an output's host): the reader is fine where it is.
    t.noteUnreachable(unreachable('j4.0.2', { inputHost: 'h9' }));
    expect(t.awaitsData('j4.0.2')).toBe(false);
    // Any other end forgets it; so does the job's end.
    t.noteUnreachable({ taskId: 'j4.0.1', reason: 'EXIT_NONZERO', host: 'h1' });
    expect(t.awaitsData('j4.0.1')).toBe(false);
    t.noteUnreachable(unreachable('j4.0.1'));
    t.forgetJob('j4');
    expect(t.awaitsData('j4.0.1')).toBe(false);
  });

  it('avoids a host after repeated failures of the job, and forgets the job when it ends', () => {
    const t = new FailureTally(noRecompute);
    for (let i = 1; i <= HOST_FAILURES_TO_AVOID; i++) expect(t.countHost('j2', 'h1')).toBe(i);
    t.countHost('j2', 'h2');
    expect(t.avoided('j2')).toEqual(['h1']);
    const r = unreachable('j2.0.0');
    t.cap(r, 'not-counted');
    expect(t.retryPauseMs(r, 'not-counted')).toBeGreaterThan(0);
    t.forgetJob('j2');
    expect(t.avoided('j2')).toEqual([]);
    expect(t.countHost('j2', 'h1')).toBe(1);
    expect(t.retryPauseMs(r, 'not-counted')).toBe(0);
  });
});
