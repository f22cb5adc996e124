/**
 * Jobs, tasks and attempts as Locus records them. A job's tasks are not
 * stored one record each up front: splits are kept per stage in one list and
 * a task gets its own record only once it is attempted (see store.ts).
 */
import type { JobSpec } from './spec.js';
import type { LocalityLevel } from '../../core/locality.js';

/** Job lifecycle. */
export type JobState = 'PENDING' | 'RESOLVING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
/** Terminal job states. */
export const TERMINAL_JOB_STATES: ReadonlySet<JobState> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** Task lifecycle (a task is PENDING until an attempt is dispatched). */
export type TaskState = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
/** Terminal task states. */
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** Attempt outcome as recorded. */
export type AttemptState = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'KILLED' | 'TIMED_OUT' | 'LOST';

/** How a failure counts (Spark's classification). */
export type FailureClass = 'not-counted' | 'counted' | 'fatal';

/** One attempt of a task. */
export interface AttemptRecord {
  readonly attempt: number;
  readonly attemptId: string;
  readonly executorId: string;
  readonly host: string;
  readonly locality: LocalityLevel;
  readonly startedAt: number;
  readonly finishedAt?: number;
  readonly state: AttemptState;
  readonly reason?: string;
  readonly message?: string;
  readonly exitCode?: number | null;
  readonly sandboxDir?: string;
  readonly agentUrl?: string;
}

/** A task's durable record (exists once the task was first attempted). */
export interface TaskRecord {
  /** `<jobId>.<stage>.<index>` */
  readonly id: string;
  readonly jobId: string;
  readonly stage: number;
  readonly index: number;
  readonly state: TaskState;
  /** Failures that count toward `retries`. */
  readonly failures: number;
  readonly attempts: readonly AttemptRecord[];
  readonly outputPath?: string;
  /** Hosts where this task failed (avoided for the rest of the job). */
  readonly failedHosts: readonly string[];
  /**
   * Output generation (absent = 0): raised each time the task's committed output was lost with
   * its host and the task was made pending again to recompute it (see JobStore.reopen).
   */
  readonly generation?: number;
}

/** Per-stage bookkeeping. */
export interface StageRecord {
  readonly name: string;
  /** Number of tasks, known once the stage's inputs are resolved (-1 before). */
  readonly taskCount: number;
}

/** Task counters of a job, kept by the store's atomic transitions. */
export interface JobCounts {
  readonly total: number;
  readonly pending: number;
  readonly running: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly nodeLocal: number;
  readonly rackLocal: number;
  readonly anyLocal: number;
}

/** A job's record. */
export interface JobRecord {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  readonly spec: JobSpec;
  readonly state: JobState;
  /** Index of the stage currently running. */
  readonly stage: number;
  readonly stages: readonly StageRecord[];
  readonly outputDir: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly finishedAt?: number;
  readonly message?: string;
  readonly counts: JobCounts;
}

/** The id of task `index` of `stage` in `jobId`. */
export function taskIdOf(jobId: string, stage: number, index: number): string {
  return `${jobId}.${stage}.${index}`;
}

/** Split a task id into its parts, or undefined when it is not one. */
export function parseTaskId(taskId: string): { jobId: string; stage: number; index: number } | undefined {
  const m = /^(.+)\.(\d+)\.(\d+)$/.exec(taskId);
  if (!m || m[1] === undefined) return undefined;
  return { jobId: m[1], stage: Number(m[2]), index: Number(m[3]) };
}
