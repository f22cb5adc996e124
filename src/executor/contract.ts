/**
 * The queue contract between the scheduler and its executors: queue names,
 * the payload of one task attempt, and the result an executor reports. Both
 * sides check CONTRACT_VERSION's major and refuse a mismatch.
 */

/** Version of this contract; a different major on either side is refused. */
export const CONTRACT_VERSION = '1.0';

/** The BullMQ queue an executor consumes. */
export function executorQueueName(executorId: string): string {
  return `locus-exec-${executorId}`;
}

/** Prefix of every BullMQ key Locus uses (so ACLs can be scoped per queue). */
export const QUEUE_PREFIX = 'locus:q';

/** A volume an attempt mounts. */
export interface AttemptVolume {
  readonly hostPath: string;
  readonly containerPath: string;
  readonly readOnly: boolean;
}

/** One task attempt, as queued for an executor (the BullMQ job data). */
export interface AttemptPayload {
  readonly contractVersion: string;
  readonly jobId: string;
  readonly taskId: string;
  readonly attemptId: string;
  readonly attempt: number;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly resources: { readonly cpus: number; readonly memMiB: number; readonly diskMiB: number };
  readonly timeoutMs: number;
  /** Where committed output goes (a directory); undefined = no output commit. */
  readonly outputDir?: string;
  /** The split this attempt reads, when it has one. */
  readonly split?: {
    readonly uri: string;
    readonly offset: number;
    readonly length: number;
    /** A path readable on the executor's host when the data is local there. */
    readonly localPath?: string;
  };
  readonly volumes: readonly AttemptVolume[];
  /** Extra read-only host paths the attempt may read (inputs). */
  readonly inputPaths: readonly string[];
}

/** How an attempt ended, as the executor reports it. */
export interface AttemptResult {
  readonly attemptId: string;
  readonly taskId: string;
  readonly state: 'SUCCEEDED' | 'FAILED' | 'KILLED' | 'TIMED_OUT' | 'LOST';
  readonly exitCode: number | null;
  /** A catalogued reason (`EXIT_NONZERO`, `OOM`, `DISK_LIMIT`, `TIMEOUT`, `LAUNCH_FAILED`, `DRAINED`...). */
  readonly reason: string;
  readonly message: string;
  readonly usage?: { readonly cpuTimeSeconds: number; readonly memPeakBytes: number };
  /** Sandbox directory of the attempt on the agent (for logs). */
  readonly sandboxDir?: string;
  /** Where the committed output is (when the attempt committed it). */
  readonly outputPath?: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly host: string;
}

/** Whether two contract versions can talk (same major). */
export function contractCompatible(a: string, b: string): boolean {
  return a.split('.')[0] === b.split('.')[0];
}
