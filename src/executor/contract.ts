/**
 * The queue contract between the scheduler and its executors: queue names,
 * the payload of one task attempt, and the result an executor reports. Both
 * sides check CONTRACT_VERSION's major and refuse a mismatch.
 */
import { asArray, asBoolean, asEnum, asNumber, asObject, asString, isObject, optional } from '../core/decode.js';

/**
 * Version of this contract; a different major on either side is refused. 2.1: results say when
 * the workload exited (`exitedAt`; optional, so 2.0 and 2.1 talk). 2: attempts stage in
 * one directory per stage (`.locus-staging`), which a commit record's `staged` path now names; an
 * executor of major 1 rolling such a record forward would remove that whole directory (it
 * removed the staged path's parent, then its task's alone), so the two must not share a scheduler.
 */
export const CONTRACT_VERSION = '2.2';

/** The BullMQ queue an executor consumes. */
export function executorQueueName(executorId: string): string {
  return `locus-exec-${executorId}`;
}

/**
 * A key of an executor's queue, as BullMQ names them (`<prefix>:<queue>:<part>...`): a queue
 * job's hash (`executorQueueKey(id, jobId)`), its sets (`'completed'`), its event stream.
 */
export function executorQueueKey(executorId: string, ...parts: string[]): string {
  return [QUEUE_PREFIX, executorQueueName(executorId), ...parts].join(':');
}

/** Prefix of every BullMQ key Locus uses (so ACLs can be scoped per queue). */
export const QUEUE_PREFIX = 'locus:q';

/**
 * Name of the marker file inside every committed output directory: part of the contract, since
 * the scheduler checks whether a recorded output is in place by it.
 */
export const COMMIT_MARKER = '_SUCCESS';

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
  /** Where committed output goes (a directory); undefined = no output commit (a stage of `outputs: none`). */
  readonly outputDir?: string;
  /**
   * The job's tenant (contract 2.2): whose uid the workload runs as when there is no output
   * directory to tell it (an attempt with one takes its tenant from the output's path, as before).
   */
  readonly tenant?: string;
  /**
   * The last stage's final place when the spec names one outside the output root:
   * `local://<dataset>/<path>/<stage>/<index>` or `hdfs://nn:port/<out>/<stage>/<index>` (attempts
   * stage under `<out>/_temporary/`). The attempt still writes `outputDir`'s layout on its host first.
   */
  readonly destination?: string;
  /** The split this attempt reads, when it has one. */
  readonly split?: {
    readonly uri: string;
    readonly offset: number;
    readonly length: number;
    /** A path readable on the executor's host when the data is local there. */
    readonly localPath?: string;
    /**
     * Block servers that can serve this split's bytes (local:// datasets, stage outputs), best
     * first. The executor reads through them when the data is not on its own host.
     */
    readonly sources?: readonly BlockSource[];
  };
  readonly volumes: readonly AttemptVolume[];
  /** Extra read-only host paths the attempt may read (inputs). */
  readonly inputPaths: readonly string[];
  /**
   * Committed outputs of earlier stages this attempt reads (`{stages.<name>.output}`). When a
   * part is not readable at its path on the executor's host, the executor fetches it through a
   * block server into its scratch directory and rewrites `dir` in argv and env to that copy.
   */
  readonly stageInputs?: readonly StageInput[];
  /**
   * The output generation this attempt commits into (absent = 0). A task whose committed output
   * was lost with its host is run again in the next generation, which has its own commit record
   * (see ledgerIdOf): a late commit of an older generation can never be taken for the new one.
   */
  readonly generation?: number;
}

/**
 * The commit-ledger id of a task's output in one generation: the task id itself for generation
 * 0 (every record written before generations existed), `<taskId>~g<n>` after n recomputes.
 */
export function ledgerIdOf(taskId: string, generation = 0): string {
  return generation > 0 ? `${taskId}~g${generation}` : taskId;
}

/** A block server that can serve a file: `address` is host:port, `root` one of its served roots. */
export interface BlockSource {
  readonly host: string;
  readonly address: string;
  readonly root: BlockRoot;
  /** Path relative to the root. */
  readonly path: string;
}

/** The directories a block server serves: local:// dataset replicas and committed stage outputs. */
export type BlockRoot = 'datasets' | 'outputs';

/** The committed outputs of one earlier stage, as one attempt reads them. */
export interface StageInput {
  readonly stage: string;
  /** The directory the command names (`{stages.<name>.output}` as rendered). */
  readonly dir: string;
  readonly parts: readonly StageOutputPart[];
}

/** One committed task output: where it was written and how to reach it from another host. */
export interface StageOutputPart {
  /** Sub-directory name under the stage directory (the task index, zero-padded). */
  readonly name: string;
  readonly host: string;
  /** Absolute path on `host`. */
  readonly path: string;
  readonly files: readonly OutputFile[];
  /** Block servers on `host` (host:port), best first; the path is relative to their outputs root. */
  readonly sources: readonly string[];
  /** The path relative to the outputs root of `host`'s block servers. */
  readonly relPath: string;
}

/** One file of a committed output. */
export interface OutputFile {
  /** Path relative to the output directory ('/'-separated). */
  readonly name: string;
  readonly size: number;
}

/** Where an attempt's committed output lives (the record the commit script wrote). */
export interface CommittedOutput {
  readonly attemptId: string;
  readonly host: string;
  /** The block server of the committing executor (host:port), when it had one. */
  readonly blockServer?: string;
  readonly path: string;
  /** The path relative to the host's outputs root, when the output is served from there. */
  readonly relPath?: string;
  readonly size: number;
  readonly files: readonly OutputFile[];
  readonly committedAt: number;
  /** The staging directory the winner renames onto `path` (to finish a rename a crash cut short). */
  readonly staged?: string;
  /**
   * Set when the winner found `path` held by something this task did not commit (another job's
   * output, files put there by hand): what holds it, in words. The output was never placed, and
   * the record stays so that every later attempt of the task, on any host, reports the conflict
   * (OUTPUT_CONFLICT) instead of taking the record for a commit.
   */
  readonly conflict?: string;
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
  /** The full commit record (host, block server, files) of the output that won. */
  readonly output?: CommittedOutput;
  /**
   * With INPUT_UNREACHABLE for an earlier stage's committed output: the host whose block
   * servers could not be read (a fetch failure; the scheduler may recompute that host's outputs).
   */
  readonly inputHost?: string;
  readonly startedAt: number;
  /**
   * When the workload exited, before its output was committed (absent: it never ran, or an
   * executor of contract 2.0). The scheduler's dispatch window tells the workload's own run from
   * the executor's work around it with this.
   */
  readonly exitedAt?: number;
  readonly finishedAt: number;
  readonly host: string;
}

/** Whether two contract versions can talk (same major). */
export function contractCompatible(a: string, b: string): boolean {
  return a.split('.')[0] === b.split('.')[0];
}

/** Whether `version` is `least`'s major at `least`'s minor or later (what a minor addition needs). */
export function contractAtLeast(version: string, least: string): boolean {
  const [major, minor] = version.split('.').map(Number);
  const [wantMajor, wantMinor] = least.split('.').map(Number);
  return major === wantMajor && (minor ?? 0) >= (wantMinor ?? 0);
}

/** The contract in which attempts carry their tenant (AttemptPayload.tenant). */
export const TENANT_IN_PAYLOAD_CONTRACT = '2.2';

// ---------------------------------------------------------------------------
// Additions (executor issue): Redis keys both sides agree on, the progress an
// executor reports, and decoders for the wire shapes. All additive.
//
// Placeholders: the scheduler renders argv, but two tokens can only be known
// on the executor and are substituted there when still present: `{output}`
// (the attempt-private output directory, also in LOCUS_OUTPUT_DIR) and
// `{split.path}` (a local path of the split, also in LOCUS_SPLIT_PATH).
// ---------------------------------------------------------------------------

/** Prefix of the executor registration keys. */
export const EXECUTOR_KEY_PREFIX = 'locus:executor:';

/** The hash an executor registers itself in and heartbeats (agent, host, slots, contract, hb). */
export function executorKey(executorId: string): string {
  return `${EXECUTOR_KEY_PREFIX}${executorId}`;
}

/** A hash the scheduler publishes its contract version in; executors may only read it. */
export const SCHEDULER_INFO_KEY = 'locus:scheduler:info';

/** The Redis ACL user of one executor. */
export function executorAclUser(executorId: string): string {
  return `locus-exec-${executorId}`;
}

/** Executor ids must be safe inside Redis key patterns and ACL globs (no `*?[]\\:`). */
export function isValidExecutorId(id: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id);
}

/** The states an executor publishes in its registration hash. */
export type ExecutorState = 'running' | 'draining' | 'exited';

/** Fields of the registration hash (`executorKey`), all strings in Redis. */
export const EXECUTOR_FIELDS = {
  agentId: 'agentId',
  hostname: 'hostname',
  slots: 'slots',
  contract: 'contract',
  state: 'state',
  /** Incremented on every heartbeat; watchers compare it, never wall clocks. */
  heartbeat: 'hb',
  /** Set by the scheduler to ask the executor to drain and exit. */
  stopRequested: 'stopRequested',
  runner: 'runner',
  pid: 'pid',
  /** The executor's block server (host:port) serving dataset replicas and outputs on its host. */
  blockServer: 'blockServer',
  /** '1' when the executor takes batch jobs (AttemptBatch); absent on executors that predate them. */
  batches: 'batches',
  /**
   * How many attempts beyond its slots the executor takes and holds prepared (prefetchDepth);
   * absent (0) on executors that predate prefetching: the scheduler never sends those more
   * attempts than slots.
   */
  prefetch: 'prefetch',
} as const;

/**
 * Attempts beyond its slots an executor takes ahead (its queue worker takes slots + this many
 * jobs). Each is set up (its ledger lookup, staging directory and inputs) and waits, prepared,
 * for the next container to exit, so the slot goes straight to it: without them a slot of short
 * tasks idles through the commit, the result's way to the scheduler, the next dispatch and the
 * next set-up, ~20 ms of a 230 ms cycle of `sleep 0.2` (bench/results/short-2026-12-06-s5.md).
 * Where the runner allows it, a prepared attempt's container also starts, held (start-gate.ts).
 *
 * The executor keeps all of it when its containers may start held (`executor-held-starts` true or
 * auto, and a runner that can hold them), else a quarter (unheldPrefetch). Under `auto` it keeps
 * all of it while the host is busy and it starts nothing held, too: on `bench:short`'s 1,000 tasks
 * on three agents of one 2-core machine (CPU-bound, holds mostly off) that ran 5.6-5.7 s against
 * 6.0-6.2 s with held starts off and a quarter. As many as the slots: tasks started together end together, so a whole wave of slots frees
 * within a few milliseconds, and each slot without a prepared attempt waits for the round trip
 * through the scheduler (a quarter of the slots, the depth before held starts, left 14 of 19
 * slots of `sleep 0.2` waiting at every wave, and held starts then gained nothing measurable).
 * Capped so that a large executor does not hold a large backlog outside the scheduler's pending
 * set, where fair share orders it.
 */
export function prefetchDepth(slots: number): number {
  return Math.max(1, Math.min(32, slots));
}

/**
 * The prefetch an executor keeps of what it is asked (prefetchDepth) when its containers cannot
 * start held: a quarter of the slots, 1 to 8. Deeper, prepared attempts only queue longer in it:
 * on bench:dispatch (no-op runner) a prefetch as deep as the slots cost 10-20 % of the throughput
 * and 30-80 ms of the p50 under load.
 */
export function unheldPrefetch(slots: number): number {
  return Math.max(1, Math.min(8, Math.ceil(slots / 4)));
}

/**
 * The longest a prepared attempt waits for a slot before the executor hands it back (result
 * LOST, reason HANDED_BACK): the scheduler prefetches only onto executors whose attempts end
 * quickly, but a run of long tasks can follow, and an attempt must not wait behind them while
 * another executor has room.
 */
export const PREFETCH_HOLD_MS = 1000;

/** Result reason of a prepared attempt that found no slot within PREFETCH_HOLD_MS: it never ran, not counted. */
export const HANDED_BACK = 'HANDED_BACK';

/**
 * A hash of data-plane secrets (field `blockToken`: the bearer token every block server
 * accepts; `webhdfsDelegationToken` when set). Executors read it with their own Redis user;
 * secrets never travel in TaskInfo, argv or the environment.
 */
export const DATAPLANE_SECRETS_KEY = 'locus:dataplane:secrets';

/** The key of one task's commit record: the first attempt to write it owns the task's output. */
export function commitKey(taskId: string): string {
  return `${COMMIT_KEY_PREFIX}${taskId}`;
}

/** Prefix of the commit records (executors may write these through the commit script). */
export const COMMIT_KEY_PREFIX = 'locus:commit:';

/** Result reasons for input failures caused by the host (storage or block server unreachable): not counted. */
export const INPUT_UNREACHABLE = 'INPUT_UNREACHABLE';
/**
 * Result reason for an attempt that failed while the filesystem of its sandbox had no space
 * left: the host's trouble, not the task's (a full agent disk fails every task placed there).
 * Not counted, capped like INPUT_UNREACHABLE; the retry avoids the host.
 */
export const HOST_DISK_FULL = 'HOST_DISK_FULL';
/** Result reason for input failures caused by the task (no such file, bad range): counted. */
export const INPUT_FAILED = 'INPUT_FAILED';

/**
 * The cancel channel: a set of attempt ids the scheduler wants killed on one
 * executor (their job was cancelled). It lives under the executor's queue
 * prefix, so the executor's own ACL user may read and trim it; the executor
 * reads it with every heartbeat, kills those attempts' containers and reports
 * them KILLED with reason CANCELLED_REASON. The key expires on its own.
 */
export function executorKillKey(executorId: string): string {
  // Attempt ids end in `.a<n>`, so BullMQ's job keys under the same prefix can never be `kill`.
  return executorQueueKey(executorId, 'kill');
}

/** How long kill requests are kept (refreshed on each request); an executor reads them within seconds. */
export const KILL_REQUEST_TTL_SECONDS = 3600;

/** Result reason of an attempt killed because its job was cancelled. */
export const CANCELLED_REASON = 'CANCELLED';

/** The progress an executor reports on the BullMQ job when the attempt starts running. */
export interface AttemptProgress {
  readonly phase: 'running';
  readonly attemptId: string;
  readonly startedAt: number;
  readonly host: string;
  readonly sandboxDir?: string;
}

/** Result states that do not count against the task's retries. */
export const NOT_COUNTED_STATES: ReadonlySet<AttemptResult['state']> = new Set(['LOST']);


/** Decode an AttemptPayload from wire data (BullMQ job data), or throw a DecodeError naming the field. */
export function decodeAttemptPayload(v: unknown): AttemptPayload {
  const o = asObject(v, 'payload');
  const env: Record<string, string> = {};
  for (const [k, x] of Object.entries(asObject(o['env'] ?? {}, 'payload.env'))) env[k] = asString(x, `payload.env.${k}`);
  const r = asObject(o['resources'], 'payload.resources');
  const split = optional(o['split'], 'payload.split', (x, p) => {
    const s = asObject(x, p);
    const localPath = optional(s['localPath'], `${p}.localPath`, asString);
    const sources = optional(s['sources'], `${p}.sources`, (y, q) => asArray(y, q, decodeBlockSource));
    return {
      uri: asString(s['uri'], `${p}.uri`),
      offset: asNumber(s['offset'], `${p}.offset`),
      length: asNumber(s['length'], `${p}.length`),
      ...(localPath !== undefined ? { localPath } : {}),
      ...(sources !== undefined ? { sources } : {}),
    };
  });
  const stageInputs = optional(o['stageInputs'], 'payload.stageInputs', (x, p) => asArray(x, p, (y, q) => {
    const si = asObject(y, q);
    return {
      stage: asString(si['stage'], `${q}.stage`),
      dir: asString(si['dir'], `${q}.dir`),
      parts: asArray(si['parts'], `${q}.parts`, (z, r) => {
        const part = asObject(z, r);
        return {
          name: asString(part['name'], `${r}.name`),
          host: asString(part['host'], `${r}.host`),
          path: asString(part['path'], `${r}.path`),
          relPath: asString(part['relPath'], `${r}.relPath`),
          files: asArray(part['files'], `${r}.files`, decodeOutputFile),
          sources: asArray(part['sources'], `${r}.sources`, asString),
        };
      }),
    };
  }));
  const outputDir = optional(o['outputDir'], 'payload.outputDir', asString);
  const tenant = optional(o['tenant'], 'payload.tenant', asString);
  const destination = optional(o['destination'], 'payload.destination', asString);
  const generation = optional(o['generation'], 'payload.generation', asNumber);
  return {
    contractVersion: asString(o['contractVersion'], 'payload.contractVersion'),
    jobId: asString(o['jobId'], 'payload.jobId'),
    taskId: asString(o['taskId'], 'payload.taskId'),
    attemptId: asString(o['attemptId'], 'payload.attemptId'),
    attempt: asNumber(o['attempt'], 'payload.attempt'),
    argv: asArray(o['argv'], 'payload.argv', asString),
    env,
    resources: {
      cpus: asNumber(r['cpus'], 'payload.resources.cpus'),
      memMiB: asNumber(r['memMiB'], 'payload.resources.memMiB'),
      diskMiB: asNumber(r['diskMiB'], 'payload.resources.diskMiB'),
    },
    timeoutMs: asNumber(o['timeoutMs'], 'payload.timeoutMs'),
    ...(outputDir !== undefined ? { outputDir } : {}),
    ...(tenant !== undefined ? { tenant } : {}),
    ...(destination !== undefined ? { destination } : {}),
    ...(split !== undefined ? { split } : {}),
    volumes: asArray(o['volumes'] ?? [], 'payload.volumes', (x, p) => {
      const vo = asObject(x, p);
      return { hostPath: asString(vo['hostPath'], `${p}.hostPath`), containerPath: asString(vo['containerPath'], `${p}.containerPath`), readOnly: asBoolean(vo['readOnly'], `${p}.readOnly`) };
    }),
    inputPaths: asArray(o['inputPaths'] ?? [], 'payload.inputPaths', asString),
    ...(stageInputs !== undefined ? { stageInputs } : {}),
    ...(generation !== undefined && generation > 0 ? { generation } : {}),
  };
}

function decodeBlockSource(v: unknown, p: string): BlockSource {
  const o = asObject(v, p);
  return { host: asString(o['host'], `${p}.host`), address: asString(o['address'], `${p}.address`), root: asEnum(o['root'], `${p}.root`, ['datasets', 'outputs'] as const), path: asString(o['path'], `${p}.path`) };
}

function decodeOutputFile(v: unknown, p: string): OutputFile {
  const o = asObject(v, p);
  return { name: asString(o['name'], `${p}.name`), size: asNumber(o['size'], `${p}.size`) };
}

/** Decode a commit record (the Redis hash the commit script writes, or a result's `output`). */
export function decodeCommittedOutput(v: unknown, p = 'output'): CommittedOutput {
  const o = asObject(v, p);
  const blockServer = optional(o['blockServer'], `${p}.blockServer`, asString);
  const relPath = optional(o['relPath'], `${p}.relPath`, asString);
  const staged = optional(o['staged'], `${p}.staged`, asString);
  const conflict = optional(o['conflict'], `${p}.conflict`, asString);
  return {
    attemptId: asString(o['attemptId'], `${p}.attemptId`),
    host: asString(o['host'], `${p}.host`),
    ...(blockServer !== undefined && blockServer !== '' ? { blockServer } : {}),
    path: asString(o['path'], `${p}.path`),
    ...(relPath !== undefined && relPath !== '' ? { relPath } : {}),
    size: asNumber(o['size'], `${p}.size`),
    files: asArray(o['files'], `${p}.files`, decodeOutputFile),
    committedAt: asNumber(o['committedAt'], `${p}.committedAt`),
    ...(staged !== undefined ? { staged } : {}),
    ...(conflict !== undefined ? { conflict } : {}),
  };
}

const RESULT_STATES = ['SUCCEEDED', 'FAILED', 'KILLED', 'TIMED_OUT', 'LOST'] as const;

/** Decode an AttemptResult from wire data (a BullMQ return value), or throw a DecodeError. */
export function decodeAttemptResult(v: unknown): AttemptResult {
  const o = asObject(v, 'result');
  const usage = optional(o['usage'], 'result.usage', (x, p) => {
    const u = asObject(x, p);
    return { cpuTimeSeconds: asNumber(u['cpuTimeSeconds'], `${p}.cpuTimeSeconds`), memPeakBytes: asNumber(u['memPeakBytes'], `${p}.memPeakBytes`) };
  });
  const sandboxDir = optional(o['sandboxDir'], 'result.sandboxDir', asString);
  const outputPath = optional(o['outputPath'], 'result.outputPath', asString);
  const output = optional(o['output'], 'result.output', decodeCommittedOutput);
  const inputHost = optional(o['inputHost'], 'result.inputHost', asString);
  const exitedAt = optional(o['exitedAt'], 'result.exitedAt', asNumber);
  const exitCode = o['exitCode'];
  return {
    attemptId: asString(o['attemptId'], 'result.attemptId'),
    taskId: asString(o['taskId'], 'result.taskId'),
    state: asEnum(o['state'], 'result.state', RESULT_STATES),
    exitCode: exitCode === null || exitCode === undefined ? null : asNumber(exitCode, 'result.exitCode'),
    reason: asString(o['reason'], 'result.reason'),
    message: asString(o['message'] ?? '', 'result.message'),
    ...(usage !== undefined ? { usage } : {}),
    ...(sandboxDir !== undefined ? { sandboxDir } : {}),
    ...(outputPath !== undefined ? { outputPath } : {}),
    ...(output !== undefined ? { output } : {}),
    ...(inputHost !== undefined ? { inputHost } : {}),
    startedAt: asNumber(o['startedAt'], 'result.startedAt'),
    ...(exitedAt !== undefined ? { exitedAt } : {}),
    finishedAt: asNumber(o['finishedAt'], 'result.finishedAt'),
    host: asString(o['host'], 'result.host'),
  };
}

/**
 * Several attempts in one queue job (the BullMQ job data). Short tasks cost the executor queue
 * one add, one take and one finish script each; a batch pays those once for all its attempts.
 * The executor runs the members side by side, each exactly as a job of its own (its own kill,
 * duplicate-delivery check, container and commit), and completes the job with every member's
 * result. The scheduler only sends batches to executors that registered `batches` = '1', and
 * places no more attempts on an executor than it has slots, so running members side by side
 * never runs more attempts than slots.
 */
export interface AttemptBatch {
  readonly batch: readonly AttemptPayload[];
}

/** What an executor completes a batch job with: one result per member, in any order. */
export interface AttemptBatchResult {
  readonly batch: readonly AttemptResult[];
}

/**
 * The queue job id of a batch: derived from its first member, which no other job holds (job ids
 * of single attempts are the attempt ids themselves, and a member is in one batch only).
 */
export function batchJobId(firstAttemptId: string): string {
  return `batch-${firstAttemptId}`;
}

/**
 * The hash (attempt id -> batch job id) of the attempts the scheduler sent to one executor in
 * batches: a scheduler that took over from a crashed one knows an attempt only by its id, and
 * finds the queue job holding it here. Written by the scheduler before the batch is queued.
 */
export function executorBatchIndexKey(executorId: string): string {
  return `locus:batches:${executorId}`;
}

/**
 * The event an executor adds to its queue's event stream (BullMQ's, which the scheduler reads)
 * when members of a batch have ended and others still run: fields `jobId` (the batch) and
 * `returnvalue`: the members' results as an AttemptBatchResult (JSON), or one member's
 * AttemptResult (as executors before batched member events sent it; still accepted). Members that end within a few milliseconds of
 * each other share one event, and none is sent when the whole batch has ended by then. Their
 * slots are reported free at once instead of when the batch's slowest member ends; the last
 * members' results come with the batch's own `completed` event, and all of them stay in the
 * batch's job for a scheduler that missed events.
 */
export const BATCH_MEMBER_EVENT = 'locus-member-completed';

/** Whether queue job data is a batch (the members are decoded one by one, each on its own). */
export function isBatchData(v: unknown): v is { batch: unknown[] } {
  return isObject(v) && Array.isArray(v['batch']);
}

/** Decode a batch job's return value: every member's result. */
export function decodeAttemptBatchResult(v: unknown): AttemptBatchResult {
  const o = asObject(v, 'batchResult');
  return { batch: asArray(o['batch'], 'batchResult.batch', decodeAttemptResult) };
}

/** Decode AttemptProgress, or undefined when the value is some other progress shape. */
export function decodeAttemptProgress(v: unknown): AttemptProgress | undefined {
  if (!isObject(v) || v['phase'] !== 'running') return undefined;
  const sandboxDir = optional(v['sandboxDir'], 'progress.sandboxDir', asString);
  return {
    phase: 'running',
    attemptId: asString(v['attemptId'], 'progress.attemptId'),
    startedAt: asNumber(v['startedAt'], 'progress.startedAt'),
    host: asString(v['host'], 'progress.host'),
    ...(sandboxDir !== undefined ? { sandboxDir } : {}),
  };
}

/**
 * How an executor gets its Redis password without it appearing in its task's
 * environment (which agents show on their state endpoints): the scheduler
 * parks the password under a key only a one-time "boot" user may read, and
 * the executor's environment carries that boot user's password (the token).
 * The first GETDEL consumes it; a token read later from the agent's state
 * opens an empty key.
 */

/** The boot user that may fetch an executor user's password once. */
export function bootUser(executorUser: string): string {
  return `${executorUser}-boot`;
}

/** The key holding an executor's password until it is redeemed. */
export function bootKey(executorId: string): string {
  return `locus:boot:${executorId}`;
}

/** How long an unredeemed password is kept (an executor that never starts leaves nothing behind). */
export const BOOT_TTL_SECONDS = 900;
