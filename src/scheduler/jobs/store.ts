/**
 * The durable job store on Redis. Every task transition is ONE Lua script
 * (store-scripts.ts), so it is atomic, and each script checks the attempt it
 * is about, so a replayed status update or a result delivered twice changes
 * nothing the second time.
 *
 * Keys (prefix `locus:`):
 * - `jobs`                      zset  jobId → createdAt (all jobs)
 * - `job:<id>`                  hash  `record` (JSON JobRecord without counts), `state`, `stage`,
 *                                     counters named by JOB_COUNTERS (`n:total n:pending ... n:node n:rack n:any`)
 * - `job:<id>:splits:<stage>`   list  one packed split per task, in task-index order (written once)
 * - `job:<id>:tasks`            hash  `<stage>.<index>` → JSON TaskRecord, only for tasks attempted at least once
 * - `idem:<tenant>:<key>`       string jobId, 24 h
 * - `output:<place>`            string jobId of the job whose spec named that output (destinations.ts
 *                                     outputPlace), until its purge; a job of another id takes it only
 *                                     once that job is gone
 * - `job:<id>:gens`             hash  `<stage>.<index>` → output generation, only for tasks recomputed
 *                                     after their output was lost with its host (see reopen)
 * - `purging`                   hash  jobId → JSON task count per stage, while a purge deletes the
 *                                     job's commit records (`commit:<task id>`, written by executors)
 * A job of 1,000,000 split tasks costs one list of 1,000,000 short entries, not 1,000,000 keys.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LocusError } from '../../core/errors.js';
import { asObject, isObject, parseJson } from '../../core/decode.js';
import { commitKey, ledgerIdOf } from '../../executor/contract.js';
import type { SplitLocation } from '../../core/blocks.js';
import type {
  AttemptRecord, FailureClass, JobCounts, JobRecord, JobState, StageRecord, TaskRecord, TaskState,
} from './model.js';
import { parseTaskId, taskIdOf } from './model.js';
import { outputPlace } from './destinations.js';
import { COUNTER_FIELDS, COUNTER_KEYS, FINISH_ATTEMPT_ITEM, JOB_COUNTERS, LEGACY_ANY_COUNTER, START_ATTEMPT_ITEM, defineStoreScripts, type ScriptedRedis } from './store-scripts.js';
import { CallBatch } from '../../core/call-batch.js';
import { batchCallArgs, batchReplies, type BatchItem } from '../../core/lua-batch.js';

export { JOB_COUNTERS, LOCALITY_COUNTER } from './store-scripts.js';

/** A split as stored for one task. */
export interface StoredSplit extends SplitLocation {
  readonly uri: string;
  readonly localPath?: string;
}

const P = 'locus:';


const C = JOB_COUNTERS;
const jobKey = (id: string): string => `${P}job:${id}`;

const tasksKey = (id: string): string => `${P}job:${id}:tasks`;
const splitsKey = (id: string, stage: number): string => `${P}job:${id}:splits:${stage}`;
/** Where a large stage's splits are written before its script renames them into `splitsKey`. */
const stagingKey = (id: string, stage: number): string => `${splitsKey(id, stage)}:staging`;
const PURGING_KEY = `${P}purging`;
const gensKey = (id: string): string => `${P}job:${id}:gens`;
/** Names the job holding an output place; '' (no key) for a job that names no output. */
const outputKeyOf = (job: Pick<JobRecord, 'spec' | 'outputDir'>): string => {
  const place = outputPlace(job);
  return place === undefined ? '' : `${P}output:${place}`;
};
/** CREATE_JOB's answer when another job holds the output place: this, then that job's id. */
const OUTPUT_HELD = 'output:';

/** The part of a job record that never changes after creation. */
type JobStatic = Omit<JobRecord, 'state' | 'stage' | 'counts' | 'updatedAt' | 'finishedAt' | 'message' | 'stages'>;

/** Splits of a stage passed to its script directly; a larger stage is staged in a list first. */
const OPEN_STAGE_INLINE = 10_000;
/** How long a staging list outlives a writer that stopped before the script renamed it. */
const STAGING_TTL_MS = 3_600_000;

/** Result of finishing an attempt. */
export type FinishOutcome = TaskState | 'STALE';

/** Redis-backed job and task state. */
export class JobStore {
  private readonly redis: ScriptedRedis;
  /** The attempts' starts and finishes made in one turn, each kind one script call (CallBatch). */
  private readonly starts: CallBatch<BatchItem, number | string>;
  private readonly finishes: CallBatch<BatchItem, string>;

  constructor(redis: Redis) {
    this.redis = defineStoreScripts(redis);
    this.starts = new CallBatch((items) => this.redis.locusStartAttempts(...batchCallArgs(items, START_ATTEMPT_ITEM)).then(batchReplies));
    this.finishes = new CallBatch((items) => this.redis.locusFinishAttempts(...batchCallArgs(items, FINISH_ATTEMPT_ITEM)).then(batchReplies));
  }

  /**
   * Create a job. With an idempotency key, a second create with the same key
   * returns the first job's id instead of creating another. A new job's record
   * comes back as `job`: it is decoded from the very fields written, so it is
   * what a read would return, without the read.
   */
  async create(job: JobStatic & { stages: readonly StageRecord[] }, idempotencyKey?: string): Promise<{ id: string; created: true; job: JobRecord } | { id: string; created: false } | { created: false; outputHeldBy: string }> {
    const fields: Record<string, string> = {
      record: JSON.stringify(job), stages: JSON.stringify(job.stages), state: 'PENDING', stage: '0', updatedAt: String(job.createdAt),
    };
    for (const k of COUNTER_KEYS) fields[C[k]] = '0';
    // One script: the idempotency key and the job appear together or not at all, so a crash
    // can never leave a key pointing at a job that does not exist.
    // Also in the script: the job takes its output place (outputPlace), or learns which job has it.
    const existing = await this.redis.locusCreateJob(
      jobKey(job.id), `${P}jobs`, idempotencyKey === undefined ? '' : `${P}idem:${job.tenant}:${idempotencyKey}`, outputKeyOf(job),
      job.id, String(job.createdAt), jobKey(''), ...Object.entries(fields).flat(),
    );
    if (existing.startsWith(OUTPUT_HELD)) return { created: false, outputHeldBy: existing.slice(OUTPUT_HELD.length) };
    return existing === '' ? { id: job.id, created: true, job: decodeJob(fields) } : { id: existing, created: false };
  }

  /**
   * Record a stage's splits (once), make its tasks pending and the job RUNNING, in one script
   * (a crash leaves all or nothing). A `split-stage:<n>` field marks a stage as written, so a
   * replay adds nothing twice, and a job that ended meanwhile (cancelled while its inputs were
   * resolved) takes none; callers in one process serialise per stage (JobService does).
   * Returns whether this call wrote them, with the job's state, stages and counters after it.
   */
  async openStage(jobId: string, stage: number, splits: readonly StoredSplit[], now: number): Promise<{ opened: boolean; state: JobState; stages: StageRecord[]; counts: JobCounts }> {
    const packed = splits.map(packSplit);
    // Up to this many go in the script's own arguments; a larger stage is staged in a list first,
    // in commands of bounded size, and the script renames that list into place.
    const inline = packed.length <= OPEN_STAGE_INLINE;
    const staged = inline ? '' : stagingKey(jobId, stage);
    // Told apart from any other start of this stage: a run of this very call whose reply was lost
    // (ioredis sends it again after a reconnect) answers "opened", as the first run would have.
    const nonce = randomBytes(8).toString('hex');
    for (let tries = 1; ; tries++) {
      if (!inline) await this.stage(staged, packed);
      const [code, state, stages, ...counters] = await this.redis.locusOpenStage(
        jobKey(jobId), splitsKey(jobId, stage), staged, String(stage), String(splits.length), String(now), nonce, ...(inline ? packed : []),
      );
      if (code === -2) {
        if (tries < 3) continue;
        throw new LocusError('UNAVAILABLE', `the splits of job ${jobId} stage ${stage} could not be staged whole (${tries} tries)`);
      }
      if (code === -1 || state === undefined) throw new LocusError('NOT_FOUND', `job ${jobId} not found`);
      return { opened: code === 1, state: state as JobState, stages: parseJson(stages ?? '[]', 'job.stages') as StageRecord[], counts: decodeCounts(hashOf(COUNTER_FIELDS, counters)) };
    }
  }

  /**
   * Write a large stage's packed splits into its staging list, in commands of bounded size. Each
   * one (re)arms the list's expiry in the same transaction, so a writer that stops part-way
   * (fenced out, crashed) leaves nothing for longer than STAGING_TTL_MS. The script checks the
   * list's length: a command sent twice (a lost reply) is caught there.
   */
  private async stage(key: string, packed: readonly string[]): Promise<void> {
    for (let i = 0; i < packed.length; i += OPEN_STAGE_INLINE) {
      const tx = this.redis.multi();
      if (i === 0) tx.del(key);
      await tx.rpush(key, ...packed.slice(i, i + OPEN_STAGE_INLINE)).pexpire(key, STAGING_TTL_MS).exec();
    }
  }

  /** Read splits [start, end) of a stage. */
  async getSplits(jobId: string, stage: number, start = 0, end = -1): Promise<StoredSplit[]> {
    const raw = await this.redis.lrange(splitsKey(jobId, stage), start, end < 0 ? -1 : end - 1);
    return raw.map(unpackSplit);
  }

  /**
   * Change the job's state if it is in one of `from` (and, with `onlyIdle`, only while none of
   * its attempts runs, by the job's own running counter). Returns whether it changed.
   */
  async setState(jobId: string, to: JobState, from: readonly JobState[], now: number, message = '', onlyIdle = false): Promise<boolean> {
    const r = await this.redis.locusSetJobState(jobKey(jobId), to, from.join(','), String(now), message, onlyIdle ? '1' : '');
    if (r === -1) throw new LocusError('NOT_FOUND', `job ${jobId} not found`);
    return r === 1;
  }

  /**
   * Start an attempt of a PENDING task. Returns false when the task was not pending (a replay)
   * or `attempt.attempt` is not its next attempt number.
   */
  async startAttempt(taskId: string, attempt: AttemptRecord): Promise<boolean> {
    const parts = mustParse(taskId);
    const fresh: TaskRecord = {
      id: taskId, jobId: parts.jobId, stage: parts.stage, index: parts.index,
      state: 'PENDING', failures: 0, attempts: [], failedHosts: [],
    };
    const r = await this.starts.call({
      keys: [jobKey(parts.jobId), tasksKey(parts.jobId)],
      args: [`${parts.stage}.${parts.index}`, JSON.stringify(attempt), JSON.stringify(fresh)],
    });
    return r === 1;
  }

  /**
   * Finish the running attempt `attemptId` of a task. A result for an attempt
   * that is not the task's running one (old, or already finished) returns 'STALE'
   * and changes nothing. A counted failure adds the attempt's host to the task's
   * failed hosts unless `blameHost` is false (the fault lay elsewhere).
   */
  async finishAttempt(
    taskId: string,
    attemptId: string,
    patch: Partial<AttemptRecord> & { state: AttemptRecord['state'] },
    failureClass: FailureClass | 'cancelled',
    maxRetries: number,
    outputPath?: string,
    blameHost = true,
  ): Promise<FinishOutcome> {
    const parts = mustParse(taskId);
    const failedHost = blameHost && patch.state !== 'SUCCEEDED' && failureClass === 'counted' && patch.host ? patch.host : '';
    const r = await this.finishes.call({
      keys: [jobKey(parts.jobId), tasksKey(parts.jobId)],
      args: [`${parts.stage}.${parts.index}`, attemptId, JSON.stringify(patch), failureClass, String(maxRetries), outputPath ?? '', failedHost],
    });
    return r as FinishOutcome;
  }

  /**
   * Make a SUCCEEDED task pending again because its output in `generation` was lost with its
   * host (one script, see REOPEN_TASK). Returns the new generation, or undefined when nothing
   * changed (the task was reopened already, or the job is not running).
   */
  async reopen(taskId: string, generation: number): Promise<number | undefined> {
    const parts = mustParse(taskId);
    const r = await this.redis.locusReopenTask(jobKey(parts.jobId), tasksKey(parts.jobId), gensKey(parts.jobId), `${parts.stage}.${parts.index}`, String(generation));
    return r > 0 ? r : undefined;
  }

  /** The output generation of every task of a job that was ever recomputed (task id → generation). */
  async generations(jobId: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [field, v] of Object.entries(await this.redis.hgetall(gensKey(jobId)))) out.set(`${jobId}.${field}`, Number(v));
    return out;
  }

  /** Add facts (sandbox path) to a task's running attempt; ignored for any other attempt. */
  async noteAttempt(taskId: string, attemptId: string, patch: Partial<AttemptRecord>): Promise<boolean> {
    const parts = mustParse(taskId);
    return (await this.redis.locusNoteAttempt(tasksKey(parts.jobId), `${parts.stage}.${parts.index}`, attemptId, JSON.stringify(patch))) === 1;
  }

  /** A job with its counters, or undefined. */
  async get(jobId: string): Promise<JobRecord | undefined> {
    const h = await this.redis.hgetall(jobKey(jobId));
    if (!h['record']) return undefined;
    return decodeJob(h);
  }

  /**
   * The fields of a job that change (state, stage, counters), without the
   * static record: what progress checks need after every result, at a cost that
   * does not grow with the spec.
   */
  async getDynamic(jobId: string): Promise<Pick<JobRecord, 'state' | 'stage' | 'stages' | 'counts' | 'updatedAt' | 'finishedAt' | 'message'> | undefined> {
    const fields = ['state', 'stage', 'stages', 'updatedAt', 'finishedAt', 'message', ...COUNTER_FIELDS];
    const v = await this.redis.hmget(jobKey(jobId), ...fields);
    if (v[0] === null) return undefined;
    const h = hashOf(fields, v);
    return {
      state: v[0] as JobState,
      stage: Number(v[1] ?? 0),
      stages: parseJson(v[2] ?? '[]') as StageRecord[],
      updatedAt: Number(v[3] ?? 0),
      ...(v[4] ? { finishedAt: Number(v[4]) } : {}),
      ...(v[5] ? { message: v[5] } : {}),
      counts: decodeCounts(h),
    };
  }

  /** Jobs, newest first, optionally one tenant's. */
  async list(tenant?: string, limit = 100): Promise<JobRecord[]> {
    const ids = await this.redis.zrevrange(`${P}jobs`, 0, tenant === undefined ? limit - 1 : -1);
    const out: JobRecord[] = [];
    for (const id of ids) {
      const job = await this.get(id);
      if (job && (tenant === undefined || job.tenant === tenant)) out.push(job);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * One page of the jobs created at or before `cutoff` (ms), oldest first, from `offset`: the ids
   * of those that finished (SUCCEEDED, FAILED, CANCELLED) at or before it with no attempt still
   * running (a cancelled job's attempts end after it), and how many jobs the page read (fewer
   * than `count`: it was the last). Only jobs created by the cutoff can have finished by then, so
   * only those are read (the jobs index is ordered by creation).
   */
  async finishedBefore(cutoff: number, offset: number, count: number): Promise<{ ids: string[]; scanned: number }> {
    const ids = await this.redis.zrangebyscore(`${P}jobs`, '-inf', cutoff, 'LIMIT', offset, count);
    if (ids.length === 0) return { ids: [], scanned: 0 };
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hmget(jobKey(id), 'state', 'finishedAt', JOB_COUNTERS.running);
    const rows = (await pipe.exec()) ?? [];
    const out: string[] = [];
    ids.forEach((id, i) => {
      const row = rows[i];
      if (!row || row[0] || !Array.isArray(row[1])) return;
      const [state, finishedAt, running] = row[1] as (string | null)[];
      const finished = state === 'SUCCEEDED' || state === 'FAILED' || state === 'CANCELLED';
      if (finished && finishedAt !== null && Number(finishedAt) <= cutoff && Number(running ?? 0) <= 0) out.push(id);
    });
    return { ids: out, scanned: ids.length };
  }

  /** Jobs not yet in a terminal state (recovery after a restart). */
  async active(): Promise<JobRecord[]> {
    const ids = await this.redis.zrange(`${P}jobs`, 0, -1);
    const out: JobRecord[] = [];
    for (const id of ids) {
      const state = await this.redis.hget(jobKey(id), 'state');
      if (state === 'PENDING' || state === 'RESOLVING' || state === 'RUNNING') {
        const job = await this.get(id);
        if (job) out.push(job);
      }
    }
    return out;
  }

  /** A task's record (undefined when it was never attempted). */
  async getTask(taskId: string): Promise<TaskRecord | undefined> {
    const parts = parseTaskId(taskId);
    if (!parts) return undefined;
    const raw = await this.redis.hget(tasksKey(parts.jobId), `${parts.stage}.${parts.index}`);
    return raw ? decodeTask(raw) : undefined;
  }

  /** Every attempted task of a job. */
  async tasks(jobId: string): Promise<TaskRecord[]> {
    const h = await this.redis.hgetall(tasksKey(jobId));
    return Object.values(h).map(decodeTask).sort((a, b) => a.stage - b.stage || a.index - b.index);
  }

  /**
   * Delete a finished job: its record, tasks and splits at once (one script), then the commit
   * records its executors wrote. Until then the commit records stay: recovery and later stages
   * read them for as long as the job exists. A crash between the two steps leaves the job in
   * the purging hash, and the next purge (of any job) finishes it.
   * Returns the number of commit records deleted; throws NOT_FOUND, or CONFLICT for a job that
   * has not finished.
   */
  async purge(jobId: string): Promise<number> {
    const job = await this.get(jobId);
    if (!job) throw new LocusError('NOT_FOUND', `job ${jobId} not found`);
    // Commit records of recomputed generations (`<task>~g<n>`): only the gens hash, which the
    // purge removes, names them (a crash right after the script leaves these few behind).
    const gens = [...(await this.generations(jobId))].flatMap(([taskId, g]) => Array.from({ length: g }, (_, i) => commitKey(ledgerIdOf(taskId, i + 1))));
    // A staging list left by a writer that stopped would expire anyway; it goes with the job.
    const keys = [jobKey(jobId), tasksKey(jobId), `${P}jobs`, PURGING_KEY, outputKeyOf(job), ...job.stages.flatMap((_, i) => [splitsKey(jobId, i), stagingKey(jobId, i)]), gensKey(jobId)];
    const r = await this.redis.locusPurgeJob(keys.length, ...keys, jobId);
    if (r === -1) throw new LocusError('NOT_FOUND', `job ${jobId} not found`);
    if (r === 0) throw new LocusError('CONFLICT', `job ${jobId} has not finished: cancel it before deleting it`);
    let deleted = 0;
    for (let i = 0; i < gens.length; i += 10_000) deleted += await this.redis.unlink(...gens.slice(i, i + 10_000));
    return deleted + (await this.finishPurges());
  }

  /**
   * Delete the commit records of every job whose record a purge removed; returns how many. A job
   * whose deletion fails (Redis away) stays in the purging hash for the next purge, and the others
   * go on: one failing job must not fail every purge after it (the hash is read in insertion order).
   */
  async finishPurges(): Promise<number> {
    let deleted = 0;
    for (const [jobId, raw] of Object.entries(await this.redis.hgetall(PURGING_KEY))) {
      let stages: unknown;
      try {
        stages = parseJson(raw, 'purging');
      } catch {
        stages = [];
      }
      const counts = Array.isArray(stages) ? stages.map((s: unknown) => (isObject(s) && typeof s['taskCount'] === 'number' ? s['taskCount'] : 0)) : [];
      try {
        for (const [stage, count] of counts.entries()) {
          // Chunked so that a job of a million tasks never sends one million-key command.
          for (let from = 0; from < count; from += 10_000) {
            const ids = Array.from({ length: Math.min(10_000, count - from) }, (_, i) => commitKey(taskIdOf(jobId, stage, from + i)));
            deleted += await this.redis.unlink(...ids);
          }
        }
        await this.redis.hdel(PURGING_KEY, jobId);
      } catch {
        // Left for the next purge.
      }
    }
    return deleted;
  }

  /** The persisted FrameworkID, if any. */
  async frameworkId(): Promise<string | undefined> {
    return (await this.redis.get(`${P}framework-id`)) ?? undefined;
  }

  /** Persist the FrameworkID. */
  async setFrameworkId(id: string): Promise<void> {
    await this.redis.set(`${P}framework-id`, id);
  }
}

function mustParse(taskId: string): { jobId: string; stage: number; index: number } {
  const parts = parseTaskId(taskId);
  if (!parts) throw new LocusError('NOT_FOUND', `'${taskId}' is not a task id`);
  return parts;
}

// Splits are packed as JSON arrays, not objects: half the bytes for million-task jobs.
function packSplit(s: StoredSplit): string {
  return JSON.stringify([s.uri, s.offset, s.length, s.hosts, s.racks, s.localPath ?? null, s.localPaths ?? null]);
}

function unpackSplit(raw: string): StoredSplit {
  const a = parseJson(raw) as [string, number, number, string[], string[], string | null, Record<string, string> | null | undefined];
  return {
    uri: a[0], offset: a[1], length: a[2], hosts: a[3], racks: a[4],
    ...(a[5] ? { localPath: a[5] } : {}), ...(a[6] ? { localPaths: a[6] } : {}),
  };
}

function decodeTask(raw: string): TaskRecord {
  const o = asObject(parseJson(raw, 'task'), 'task') as unknown as TaskRecord;
  // cjson encodes empty Lua tables as objects; normalise them back to arrays.
  return {
    ...o,
    attempts: Array.isArray(o.attempts) ? o.attempts : [],
    failedHosts: Array.isArray(o.failedHosts) ? o.failedHosts : [],
  };
}

/** The counters of a job hash (every name from JOB_COUNTERS). */
/** An HMGET's reply as the hash it read: `fields[i]` → `values[i]`, the absent ones left out. */
function hashOf(fields: readonly string[], values: readonly (string | null | undefined)[]): Record<string, string> {
  const h: Record<string, string> = {};
  fields.forEach((f, i) => {
    const x = values[i];
    if (typeof x === 'string') h[f] = x;
  });
  return h;
}

function decodeCounts(h: Readonly<Record<string, string>>): JobCounts {
  const out = {} as Record<keyof JobCounts, number>;
  for (const k of COUNTER_KEYS) out[k] = Number(h[C[k]] ?? 0);
  out.anyLocal += Number(h[LEGACY_ANY_COUNTER] ?? 0);
  return out;
}

function decodeJob(h: Record<string, string>): JobRecord {
  const base = asObject(parseJson(h['record'] ?? '', 'job.record'), 'job.record') as unknown as JobStatic;
  const counts = decodeCounts(h);
  return {
    ...base,
    state: (h['state'] ?? 'PENDING') as JobState,
    stage: Number(h['stage'] ?? 0),
    stages: parseJson(h['stages'] ?? '[]') as StageRecord[],
    counts,
    updatedAt: Number(h['updatedAt'] ?? base.createdAt),
    ...(h['finishedAt'] ? { finishedAt: Number(h['finishedAt']) } : {}),
    ...(h['message'] ? { message: h['message'] } : {}),
  };
}

export { taskIdOf };
