/**
 * The job service on a real Redis with the attempts played by the test (jobs-recompute,
 * jobs-liveness): executors are stood in for by writing the commit records they would write,
 * first writer of a generation winning, and by reporting the attempts' results.
 */
import type { Redis } from 'ioredis';
import { commitKey, decodeCommittedOutput, ledgerIdOf, type AttemptPayload, type CommittedOutput } from '../../src/executor/contract.js';
import { systemClock } from '../../src/core/clock.js';
import { LocalityLevel } from '../../src/core/locality.js';
import { silentLogger } from '../../src/obs/log.js';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { validateJobSpec, type JobSpec } from '../../src/scheduler/jobs/spec.js';

/** Where the stood-in executors say each host keeps its outputs. */
export const HOST_ROOT = '/srv/host-outputs';

/** A job service with a data plane whose commit records are read from `conn`. */
export function serviceOn(conn: Redis, outputRoot: string, store: JobStore = new JobStore(conn), inputRetryPauseMs = 10): JobService {
  return new JobService({
    store,
    inputRetryPauseMs,
    resolver: { resolve: () => Promise.reject(new Error('no inputs in these jobs')) },
    clock: systemClock,
    logger: silentLogger(),
    outputRoot,
    limits: { maxPendingTasksPerTenant: 1000, maxTasksPerJob: 1000 },
    dataPlane: {
      blockServers: (host) => [`${host}:7000`],
      async commits(ids) {
        const raw = await conn.mget(...ids.map(commitKey));
        return raw.map((r) => (r === null ? undefined : decodeCommittedOutput(JSON.parse(r) as unknown)));
      },
    },
  });
}

/** Three maps and one reduce reading all their outputs. */
export const twoStage = (retries: number): JobSpec => validateJobSpec({
  name: 'two-stage', retries,
  stages: [
    { name: 'map', tasks: [{ command: ['m0'] }, { command: ['m1'] }, { command: ['m2'] }], task: { command: ['true'] } },
    { name: 'reduce', tasks: [{ command: ['cat', '{stages.map.output}/*/x'] }], task: { command: ['true'] } },
  ],
});

/** A job's pending task ids, sorted. */
export const pendingIds = (jobs: JobService, jobId: string): string[] => [...jobs.pendingTasks()].filter((t) => t.jobId === jobId).map((t) => t.taskId).sort();

/** Start a pending task on `host`'s executor (`ex-<host>`); fails the test when it does not start. */
export async function startOn(jobs: JobService, taskId: string, host: string): Promise<AttemptPayload> {
  const p = await jobs.startAttempt(taskId, { id: `ex-${host}`, host }, LocalityLevel.ANY);
  if (!p) throw new Error(`${taskId} did not start`);
  return p;
}

/** Where a stood-in executor on `host` commits an attempt's output. */
export type OutputPath = (p: AttemptPayload, host: string) => string;
/** Under the host's root, named by the generation's ledger id. */
export const byLedgerId: OutputPath = (p, host) => `${HOST_ROOT}/${host}/${ledgerIdOf(p.taskId, p.generation)}`;

/** Play an executor's commit: the ledger's decision (first writer wins) under the payload's generation. */
export async function commitAs(conn: Redis, p: AttemptPayload, host: string, path: OutputPath = byLedgerId): Promise<{ won: boolean; record: CommittedOutput }> {
  const record: CommittedOutput = {
    attemptId: p.attemptId, host, blockServer: `${host}:7000`, path: path(p, host), relPath: p.taskId,
    size: 2, files: [{ name: 'x', size: 2 }], committedAt: Date.now(),
  };
  const key = commitKey(ledgerIdOf(p.taskId, p.generation));
  if ((await conn.set(key, JSON.stringify(record), 'NX')) === 'OK') return { won: true, record };
  return { won: false, record: decodeCommittedOutput(JSON.parse((await conn.get(key)) ?? 'null') as unknown) };
}

/** Play an executor that commits and reports success; returns the task's new state. */
export async function succeedAs(jobs: JobService, conn: Redis, p: AttemptPayload, host: string, path: OutputPath = byLedgerId): Promise<string> {
  const c = await commitAs(conn, p, host, path);
  const now = Date.now();
  return await jobs.finishAttempt({
    attemptId: p.attemptId, taskId: p.taskId, state: 'SUCCEEDED', exitCode: 0, reason: c.won ? 'COMMITTED' : 'ALREADY_COMMITTED',
    message: '', outputPath: c.record.path, output: c.record, startedAt: now, finishedAt: now, host,
  });
}
