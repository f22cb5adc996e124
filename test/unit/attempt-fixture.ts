/**
 * What the attempt unit tests share: an in-memory commit ledger (optionally recording when it
 * is asked), an attempt context over a real directory, and the payload of task n of one job.
 */
import { join } from 'node:path';
import type { AttemptContext } from '../../src/executor/attempt.js';
import { CONTRACT_VERSION, type AttemptPayload, type CommittedOutput } from '../../src/executor/contract.js';
import { outputMapper, type CommitLedger } from '../../src/executor/data-plane.js';
import { NoopRunner, type AttemptRunner } from '../../src/executor/runner.js';
import { silentLogger } from '../../src/obs/log.js';

/** A ledger in memory: the first commit of a task wins. `events` gets 'commit' per ask. */
export function memoryLedger(events?: string[]): { ledger: CommitLedger; records: Map<string, CommittedOutput> } {
  const records = new Map<string, CommittedOutput>();
  const ledger: CommitLedger = {
    async commit(taskId, record) {
      events?.push('commit');
      const held = records.get(taskId);
      if (held) return { won: false, record: held };
      records.set(taskId, record);
      return { won: true, record };
    },
    async lookup(taskId) {
      return records.get(taskId);
    },
    // As the Redis script: only the record of that very attempt and staging directory is marked.
    async markConflict(taskId, record, conflict) {
      const held = records.get(taskId);
      if (held?.attemptId === record.attemptId && held.staged === record.staged) records.set(taskId, { ...held, conflict });
      return records.get(taskId);
    },
  };
  return { ledger, records };
}

/** An attempt context under `dir` (the no-op runner unless one is given). */
export function attemptContext(dir: string, ledger: CommitLedger, runner: AttemptRunner = new NoopRunner(join(dir, 'executor'))): AttemptContext {
  return {
    runner,
    host: 'localhost',
    logger: silentLogger(),
    scratchDir: join(dir, 'scratch'),
    killGraceMs: 200,
    dataPlane: { token: async () => '', ledger, ...outputMapper({ root: join(dir, 'outputs'), shared: true }) },
  };
}

/** The payload of task n of job-1, stage 0, attempt 1, running `true`. */
export function attemptPayload(dir: string, n: number): AttemptPayload {
  return {
    contractVersion: CONTRACT_VERSION, jobId: 'job-1', taskId: `job-1.0.${n}`, attemptId: `job-1.0.${n}.1`, attempt: 1,
    argv: ['true'], env: {}, resources: { cpus: 0.1, memMiB: 32, diskMiB: 1 }, timeoutMs: 30_000,
    outputDir: join(dir, 'outputs', 'default', 'job-1', 'main', String(n).padStart(5, '0')), volumes: [], inputPaths: [],
  };
}
