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
import { CONTRACT_VERSION, type AttemptPayload, type CommittedOutput } from '../../src/executor/contract.js';
import { outputMapper, type CommitLedger } from '../../src/executor/data-plane.js';
import { NoopRunner } from '../../src/executor/runner.js';
import { silentLogger } from '../../src/obs/log.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-exited-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup(events: string[]): { ctx: AttemptContext; payload: (n: number) => AttemptPayload } {
  const records = new Map<string, CommittedOutput>();
  const ledger: CommitLedger = {
    async commit(taskId, record) {
      events.push('commit');
      const held = records.get(taskId);
      if (held) return { won: false, record: held };
      records.set(taskId, record);
      return { won: true, record };
    },
    async lookup(taskId) {
      return records.get(taskId);
    },
  };
  const ctx: AttemptContext = {
    runner: new NoopRunner(join(dir, 'executor')),
    host: 'localhost',
    logger: silentLogger(),
    scratchDir: join(dir, 'scratch'),
    killGraceMs: 200,
    dataPlane: { token: async () => '', ledger, ...outputMapper({ root: join(dir, 'outputs'), shared: true }) },
  };
  const payload = (n: number): AttemptPayload => ({
    contractVersion: CONTRACT_VERSION, jobId: 'job-1', taskId: `job-1.0.${n}`, attemptId: `job-1.0.${n}.1`, attempt: 1,
    argv: ['true'], env: {}, resources: { cpus: 0.1, memMiB: 32, diskMiB: 1 }, timeoutMs: 30_000,
    outputDir: join(dir, 'outputs', 'default', 'job-1', 'main', String(n).padStart(5, '0')), volumes: [], inputPaths: [],
  });
  return { ctx, payload };
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
