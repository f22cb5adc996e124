/**
 * The JSON shapes the job routes answer with, and their documentation
 * schemas. These views are the stable contract the CLI (and anyone with curl)
 * reads: fields are added, never renamed or removed. Times are ISO-8601
 * strings; locality is a name (`node-local`, `rack-local`, `any`).
 */
import { LOCALITY_NAMES, nodeLocalShare, type LocalityLevel } from '../../core/locality.js';
import type { JobEvent } from '../../scheduler/jobs/service.js';
import type { AttemptRecord, JobCounts, JobRecord, TaskRecord } from '../../scheduler/jobs/model.js';
import type { Explanation } from '../../scheduler/coordinator.js';
import type { JsonSchema } from './schemas.js';
import { outputDestination } from '../../scheduler/jobs/destinations.js';
import { hostOutputPattern, type OutputPlaces } from '../../storage/output-layout.js';

/** Task counters of a job as answered (locality counts successful tasks by where they ran). */
export interface JobCountsView {
  readonly total: number;
  readonly pending: number;
  readonly running: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly locality: {
    readonly nodeLocal: number;
    readonly rackLocal: number;
    readonly any: number;
    /** `nodeLocalShare` of core/locality (0..1), null before any task succeeded. */
    readonly nodeLocalShare: number | null;
  };
}

/** One stage of a job as answered. */
export interface StageView {
  readonly index: number;
  readonly name: string;
  /** Number of tasks, or null while the stage's inputs are not resolved yet. */
  readonly tasks: number | null;
  /** `none`: the stage's tasks write no output (the spec's `outputs: none`). */
  readonly outputs: 'committed' | 'none';
}

/** A job as answered by `GET /v1/jobs/:id` (and in lists, and as the first SSE event). */
export interface JobView {
  readonly id: string;
  readonly name: string;
  readonly tenant: string;
  readonly state: string;
  /** Index of the stage currently running. */
  readonly stage: number;
  readonly stages: readonly StageView[];
  readonly counts: JobCountsView;
  readonly priority: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly finishedAt?: string;
  readonly message?: string;
  /**
   * The directory the stages' committed outputs go to (under the tenant's output root). With
   * outputs kept on the hosts, the pattern of where they are on each host (`hostOutputs.directory`):
   * the job's directory on the output root holds nothing then.
   */
  readonly outputDir: string;
  /** Where the job's final output goes: its `output:` URI (local://, hdfs://) when it names one, else outputDir. */
  readonly output: string;
  /** Where the final output is kept (see OutputKept); always sent, absent from servers older than it. */
  readonly outputKept?: OutputKept;
  /** With outputs kept on the hosts (`shared-outputs: false`): where on each host, and where each task's is listed. */
  readonly hostOutputs?: HostOutputsView;
}

/**
 * Where a job's final output is: `output-root` under `output` on the output root every host
 * shares; `hosts` each last-stage task's on the host that ran it (`hostOutputs`); `destination`
 * the local:// or hdfs:// URI `output` names; `none` nowhere (its last stage writes none).
 */
export const OUTPUT_KEPT = ['output-root', 'hosts', 'destination', 'none'] as const;
export type OutputKept = (typeof OUTPUT_KEPT)[number];

/** Where a job's outputs are when each host keeps those written on it. */
export interface HostOutputsView {
  /** `<host-output-dir>/{host}/<path>`, `{host}` standing for the name of the host that ran a task (its attempt's `host`). */
  readonly directory: string;
  /** Where each task's `outputPath` and `outputHost` are listed. */
  readonly tasks: string;
}

/** One attempt of a task as answered. */
export interface AttemptView {
  readonly attempt: number;
  readonly attemptId: string;
  readonly executorId: string;
  readonly host: string;
  readonly locality: string;
  readonly state: string;
  readonly startedAt: string;
  readonly finishedAt?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly exitCode?: number | null;
}

/** A task as answered by `GET /v1/jobs/:id/tasks`. */
export interface TaskView {
  readonly id: string;
  readonly jobId: string;
  readonly stage: number;
  readonly index: number;
  readonly state: string;
  readonly failures: number;
  readonly attempts: readonly AttemptView[];
  readonly outputPath?: string;
  /** The host whose attempt committed outputPath: with outputs kept on the hosts, the one holding it. */
  readonly outputHost?: string;
}

/** One server-sent event's data (`event: job` or `event: task`). */
export interface JobEventView {
  readonly kind: 'job' | 'task';
  readonly jobId: string;
  readonly at: string;
  readonly state: string;
  readonly taskId?: string;
  readonly host?: string;
  readonly locality?: string;
  readonly message?: string;
  readonly counts?: JobCountsView;
  /** The full job: only in the first event of a stream (the current state). */
  readonly job?: JobView;
}

/** One agent as `GET /v1/cluster` answers it. */
export interface ClusterAgentView {
  readonly id: string;
  readonly hostname: string;
  readonly rack?: string;
  readonly url?: string;
  /** Resources offered or known (cpus in cores, mem/disk in MiB). */
  readonly resources?: { readonly cpus: number; readonly mem: number; readonly disk: number };
}

/** One executor as `GET /v1/cluster` answers it. */
export interface ClusterExecutorView {
  readonly id: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly state: string;
  readonly slots: number;
  readonly running: number;
  readonly tenant?: string;
}

/** What the cluster looks like: the `cluster()` dependency of the job routes answers this. */
export interface ClusterView {
  readonly subscribed: boolean;
  readonly frameworkId?: string;
  readonly agents: readonly ClusterAgentView[];
  readonly executors: readonly ClusterExecutorView[];
  /** Successful task placements by locality level, over the jobs Locus knows. */
  readonly locality: { readonly nodeLocal: number; readonly rackLocal: number; readonly any: number };
  readonly pendingTasks: number;
  readonly runningTasks: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const localityName = (l: LocalityLevel | undefined): string | undefined => (l === undefined ? undefined : (LOCALITY_NAMES[l] ?? 'any'));

/** Counters as answered. */
export function countsView(c: JobCounts): JobCountsView {
  return {
    total: c.total, pending: c.pending, running: c.running, succeeded: c.succeeded, failed: c.failed,
    locality: { nodeLocal: c.nodeLocal, rackLocal: c.rackLocal, any: c.anyLocal, nodeLocalShare: nodeLocalShare({ nodeLocal: c.nodeLocal, rackLocal: c.rackLocal, any: c.anyLocal }) ?? null },
  };
}

/**
 * A job record as answered (the spec itself stays private: it may carry env values). `places`:
 * where this framework's outputs go; without it they are taken to be on the shared output root.
 */
export function jobView(job: JobRecord, places?: OutputPlaces): JobView {
  const where = outputWhere(job, places);
  return {
    id: job.id,
    name: job.name,
    tenant: job.tenant,
    state: job.state,
    stage: job.stage,
    stages: job.stages.map((s, index) => ({ index, name: s.name, tasks: s.taskCount < 0 ? null : s.taskCount, outputs: job.spec.stages[index]?.outputs ?? 'committed' })),
    counts: countsView(job.counts),
    priority: job.spec.priority,
    labels: job.spec.labels,
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
    ...(job.finishedAt === undefined ? {} : { finishedAt: iso(job.finishedAt) }),
    ...(job.message === undefined ? {} : { message: job.message }),
    outputDir: where.outputDir,
    output: where.output,
    outputKept: where.kept,
    ...(where.hostOutputs === undefined ? {} : { hostOutputs: where.hostOutputs }),
  };
}

/**
 * Where a job's outputs are, for its views (HTTP and gRPC alike). Kept on the hosts, the job's
 * output directory is a path on the framework's machine that nothing is written to: the views
 * name the pattern of the hosts' paths instead, which also cannot be taken for a local path.
 */
export function outputWhere(job: JobRecord, places?: OutputPlaces): { outputDir: string; output: string; kept: OutputKept; hostOutputs?: HostOutputsView } {
  const onHosts = places !== undefined && !places.shared;
  const hostOutputs: HostOutputsView | undefined = onHosts
    ? { directory: hostOutputPattern(places, job.outputDir), tasks: `/v1/jobs/${job.id}/tasks` }
    : undefined;
  const outputDir = hostOutputs?.directory ?? job.outputDir;
  const dest = outputDestination(job.spec.output);
  const lastWritesNone = job.spec.stages[job.spec.stages.length - 1]?.outputs === 'none';
  const kept: OutputKept = lastWritesNone ? 'none' : dest.kind !== 'root' ? 'destination' : onHosts ? 'hosts' : 'output-root';
  return { outputDir, output: dest.kind === 'root' ? outputDir : dest.uri, kept, ...(hostOutputs === undefined ? {} : { hostOutputs }) };
}

/** One attempt as answered (the agent URL and sandbox path stay internal). */
export function attemptView(a: AttemptRecord): AttemptView {
  return {
    attempt: a.attempt,
    attemptId: a.attemptId,
    executorId: a.executorId,
    host: a.host,
    locality: localityName(a.locality) ?? 'any',
    state: a.state,
    startedAt: iso(a.startedAt),
    ...(a.finishedAt === undefined ? {} : { finishedAt: iso(a.finishedAt) }),
    ...(a.reason === undefined ? {} : { reason: a.reason }),
    ...(a.message === undefined ? {} : { message: a.message }),
    ...(a.exitCode === undefined ? {} : { exitCode: a.exitCode }),
  };
}

/** A task record as answered. */
export function taskView(t: TaskRecord): TaskView {
  // The committing attempt is the last that succeeded (a recomputed task's earlier one lost its output).
  const outputHost = t.outputPath === undefined ? undefined : [...t.attempts].reverse().find((a) => a.state === 'SUCCEEDED')?.host;
  return {
    id: t.id, jobId: t.jobId, stage: t.stage, index: t.index, state: t.state, failures: t.failures,
    attempts: t.attempts.map(attemptView),
    ...(t.outputPath === undefined ? {} : { outputPath: t.outputPath }),
    ...(outputHost === undefined ? {} : { outputHost }),
  };
}

/** A job event as the SSE stream sends it. */
export function eventView(e: JobEvent): JobEventView {
  const locality = localityName(e.locality);
  return {
    kind: e.kind,
    jobId: e.jobId,
    at: iso(e.at),
    state: e.state,
    ...(e.taskId === undefined ? {} : { taskId: e.taskId }),
    ...(e.host === undefined || e.host === '' ? {} : { host: e.host }),
    ...(locality === undefined ? {} : { locality }),
    ...(e.message === undefined ? {} : { message: e.message }),
    ...(e.counts === undefined ? {} : { counts: countsView(e.counts) }),
  };
}

/** The first event of a stream: the job as it is now. */
export function snapshotEvent(job: JobRecord, places?: OutputPlaces): JobEventView {
  return {
    kind: 'job', jobId: job.id, at: iso(job.updatedAt), state: job.state, counts: countsView(job.counts),
    ...(job.message === undefined ? {} : { message: job.message }),
    job: jobView(job, places),
  };
}

/** An explanation as answered (`until` as a time). */
export function explanationView(e: Explanation): Omit<Explanation, 'until'> & { until?: string } {
  const { until, ...rest } = e;
  return { ...rest, ...(until === undefined ? {} : { until: iso(until) }) };
}

// Documentation schemas (OpenAPI only; responses are not validated against them).

const COUNTS_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    total: { type: 'integer' }, pending: { type: 'integer' }, running: { type: 'integer' },
    succeeded: { type: 'integer' }, failed: { type: 'integer' },
    locality: {
      type: 'object',
      properties: {
        nodeLocal: { type: 'integer' }, rackLocal: { type: 'integer' }, any: { type: 'integer' },
        nodeLocalShare: { type: ['number', 'null'], description: 'node-local tasks over all succeeded tasks (0..1); null before any succeeded' },
      },
    },
  },
};

/** JobView's schema. */
export const JOB_VIEW_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, name: { type: 'string' }, tenant: { type: 'string' },
    state: { type: 'string', enum: ['PENDING', 'RESOLVING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] },
    stage: { type: 'integer' },
    stages: { type: 'array', items: { type: 'object', properties: { index: { type: 'integer' }, name: { type: 'string' }, tasks: { type: ['integer', 'null'] }, outputs: { type: 'string', enum: ['committed', 'none'] } } } },
    counts: COUNTS_SCHEMA,
    priority: { type: 'integer' },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    finishedAt: { type: 'string', format: 'date-time' },
    message: { type: 'string' },
    outputDir: { type: 'string', description: "the job's output directory; with outputKept hosts (or outputs on the hosts for earlier stages) the pattern hostOutputs.directory, not a path on the framework's machine" },
    output: { type: 'string', description: 'where the final output goes: outputDir, or the local:// or hdfs:// URI the job names' },
    outputKept: {
      type: 'string', enum: [...OUTPUT_KEPT],
      description: "output-root: under output on the shared output root; hosts: each last-stage task's on the host that ran it (hostOutputs, and each task's outputHost:outputPath); destination: the URI output names; none: the last stage writes no output",
    },
    hostOutputs: {
      type: 'object',
      description: 'with shared-outputs false: where the outputs are on each host',
      properties: {
        directory: { type: 'string', description: '<host-output-dir>/{host}/<path>, {host} standing for the host that ran a task' },
        tasks: { type: 'string', description: "the API path listing each task's outputHost and outputPath" },
      },
    },
  },
};

/** TaskView's schema. */
export const TASK_VIEW_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, jobId: { type: 'string' }, stage: { type: 'integer' }, index: { type: 'integer' },
    state: { type: 'string', enum: ['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] },
    failures: { type: 'integer' },
    outputPath: { type: 'string', description: 'where the committed output is, as its host sees it' },
    outputHost: { type: 'string', description: 'the host whose attempt committed outputPath (with shared-outputs false, the only one holding it)' },
    attempts: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          attempt: { type: 'integer' }, attemptId: { type: 'string' }, executorId: { type: 'string' }, host: { type: 'string' },
          locality: { type: 'string', enum: ['node-local', 'rack-local', 'any'] }, state: { type: 'string' },
          startedAt: { type: 'string', format: 'date-time' }, finishedAt: { type: 'string', format: 'date-time' },
          reason: { type: 'string' }, message: { type: 'string' }, exitCode: { type: ['integer', 'null'] },
        },
      },
    },
  },
};

/** The explanation's schema. */
export const EXPLANATION_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    taskId: { type: 'string' }, state: { type: 'string' },
    code: { type: 'string', description: 'a reason code such as WAITING_FOR_LOCALITY, NO_CAPACITY, DISPATCH_WINDOW, NOT_SUBSCRIBED, EXECUTOR_START_BACKOFF, WAITING_FOR_INPUT_STORAGE, RUNNING, EXECUTOR_START_FAILED, INPUT_STORAGE_UNAVAILABLE' },
    message: { type: 'string' }, until: { type: 'string', format: 'date-time' },
  },
};

/** ClusterView's schema. */
export const CLUSTER_VIEW_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    subscribed: { type: 'boolean' },
    frameworkId: { type: 'string' },
    agents: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, hostname: { type: 'string' }, rack: { type: 'string' }, url: { type: 'string' } } } },
    executors: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, agentId: { type: 'string' }, hostname: { type: 'string' }, state: { type: 'string' }, slots: { type: 'integer' }, running: { type: 'integer' } } } },
    locality: { type: 'object', properties: { nodeLocal: { type: 'integer' }, rackLocal: { type: 'integer' }, any: { type: 'integer' } } },
    pendingTasks: { type: 'integer' },
    runningTasks: { type: 'integer' },
  },
};

/**
 * The body of POST /v1/jobs, for documentation and a first shape check: a
 * JSON object, or YAML text (application/yaml). Field-level validation is
 * `validateJobSpec`, shared with gRPC, so errors name the field the same way.
 */
export const JOB_SPEC_BODY: JsonSchema = {
  description: 'a job spec (docs/job-spec.md): a JSON object, or YAML text with Content-Type application/yaml',
  anyOf: [
    {
      type: 'object',
      properties: {
        name: { description: 'letters, digits, ., _ or - (up to 63)' },
        inputs: { description: 'input URIs (single-stage form)' },
        split: { description: "'block' or 'file'" },
        task: { description: '{command: [argv], resources: {cpus, mem, disk}, env, volumes}' },
        tasks: { description: 'explicit tasks instead of one per split' },
        stages: { description: 'a list of stages, each with name, inputs, split, task, tasks, outputs' },
        outputs: { description: "'committed' (the default: each task's {output} is committed once) or 'none' (the tasks write no output)" },
        priority: { description: 'integer, -1000..1000' },
        retries: { description: 'integer, 0..100' },
        timeout: { description: 'a duration such as 10m' },
        locality: { description: "'node-only', 'off' (place blindly) or {wait: {node: 3s, rack: 3s}}" },
        constraints: { description: 'a list of {attribute, equals} | {hostname} | {notHostnames}' },
        output: { description: 'where committed outputs go' },
        labels: { description: 'a map of strings' },
      },
    },
    { type: 'string', description: 'YAML text' },
  ],
};
