/**
 * Turns at an executor's own work on attempts (a FairGate, issue 16 item 4): at most `limit`
 * attempts are set up or committed at once, the job holding the fewest turns goes first, and a
 * workload's run holds none. runAttempt takes a turn for its set-up and another for its commit,
 * and gives each back on every path (the real no-op runner, a real filesystem, an in-memory
 * commit ledger).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAttempt, type AttemptContext } from '../../src/executor/attempt.js';
import { FairGate } from '../../src/executor/fair-gate.js';
import { type AttemptPayload } from '../../src/executor/contract.js';
import { attemptContext, attemptPayload, memoryLedger } from './attempt-fixture.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('FairGate as the executor\'s turns', () => {
  it('gives at most `limit` turns at once, the next to the waiting job holding the fewest', async () => {
    const turns = new FairGate(2);
    const order: string[] = [];
    const take = (job: string, name: string): Promise<() => void> => turns.take(job).then((release) => {
      order.push(name);
      return release;
    });
    const a1 = await take('big', 'a1');
    const a2 = await take('big', 'a2');
    // Four more of the big job queue first, then one of a new job.
    const waiting = [take('big', 'a3'), take('big', 'a4'), take('big', 'a5'), take('big', 'a6')];
    const small = take('small', 's1');
    await tick();
    expect(turns.state).toEqual({ held: 2, waiting: 5 });
    a1();
    await tick();
    // The small job holds none: it goes before the big job's earlier waiters.
    expect(order).toEqual(['a1', 'a2', 's1']);
    a2();
    a2(); // a release is idempotent
    await tick();
    expect(order).toEqual(['a1', 'a2', 's1', 'a3']);
    expect(turns.state).toEqual({ held: 2, waiting: 3 });
    (await small)();
    for (const w of waiting) (await w)();
    expect(order).toEqual(['a1', 'a2', 's1', 'a3', 'a4', 'a5', 'a6']);
    expect(turns.state).toEqual({ held: 0, waiting: 0 });
  });

  it('alternates between jobs holding as many turns', async () => {
    const turns = new FairGate(1);
    const order: string[] = [];
    const first = await turns.take('x');
    const all = ['x', 'x', 'y', 'y'].map((job, i) => turns.take(job).then((release) => {
      order.push(`${job}${i}`);
      release();
    }));
    first();
    await Promise.all(all);
    expect(order).toEqual(['x0', 'y2', 'x1', 'y3']);
  });
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-turns-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup(): { ctx: AttemptContext; payload: (n: number) => AttemptPayload } {
  return { ctx: attemptContext(dir, memoryLedger().ledger), payload: (n) => attemptPayload(dir, n) };
}

describe('an attempt in turns', () => {
  it('holds a turn for its set-up and one for its commit, none while the workload runs', async () => {
    const { ctx, payload } = setup();
    const turns = new FairGate(4);
    const events: string[] = [];
    const r = await runAttempt(payload(0), ctx, {
      delivery: 'd0', drain: new AbortController().signal,
      turn: async () => {
        const release = await turns.take('job-1');
        events.push(`take ${turns.state.held}`);
        return () => {
          release();
          events.push(`release ${turns.state.held}`);
        };
      },
      onRunning: () => void events.push(`running ${turns.state.held}`),
      onExited: () => void events.push(`exited ${turns.state.held}`),
    });
    expect(r.reason).toBe('COMMITTED');
    expect(events).toEqual(['take 1', 'release 0', 'running 0', 'exited 0', 'take 1', 'release 0']);
    expect(turns.state).toEqual({ held: 0, waiting: 0 });
  });

  it('gives its turn back when it ends before running (already committed), and many attempts share few turns', async () => {
    const { ctx, payload } = setup();
    const turns = new FairGate(2);
    let most = 0;
    const turn = async (): Promise<() => void> => {
      const release = await turns.take('job-1');
      most = Math.max(most, turns.state.held);
      return release;
    };
    const control = (d: string): Parameters<typeof runAttempt>[2] => ({ delivery: d, drain: new AbortController().signal, onRunning: () => undefined, turn });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => runAttempt(payload(i), ctx, control(`d${i}`))));
    expect(results.map((r) => r.reason)).toEqual(Array.from({ length: 12 }, () => 'COMMITTED'));
    expect(most).toBe(2);
    const again = await runAttempt({ ...payload(3), attemptId: 'job-1.0.3.2', attempt: 2 }, ctx, control('d-again'));
    expect(again.reason).toBe('ALREADY_COMMITTED');
    expect(turns.state).toEqual({ held: 0, waiting: 0 });
  });
});
