/**
 * How an executor reaches data that is not on its own disk, and where it
 * writes outputs: the storage readers built from the framework's storage
 * configuration, the block servers of other hosts, and the Redis commit
 * ledger that decides which attempt's output is the task's.
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import { LocusError } from '../core/errors.js';
import { hostRelativePath, pathUnder } from '../storage/output-layout.js';
import { CallBatch } from '../core/call-batch.js';
import { batchCallArgs, batchedScript, batchReplies, type BatchItem, type BatchShape } from '../core/lua-batch.js';
import { readFromBlockServers } from '../storage/block-client.js';
import type { HdfsOutputFs } from './destination.js';
import type { InputMounts } from './input-mounts.js';
import { commitKey, decodeCommittedOutput, type AttemptPayload, type CommittedOutput, type StageOutputPart } from './contract.js';

/** Decides, once per task, which attempt's output counts. */
export interface CommitLedger {
  /** Write `record` as the task's output unless an attempt already did; the record that holds is returned. */
  commit(taskId: string, record: CommittedOutput): Promise<{ readonly won: boolean; readonly record: CommittedOutput }>;
  /** The task's committed output, if any. */
  lookup(taskId: string): Promise<CommittedOutput | undefined>;
  /**
   * The winner found the task's final path held by something else: mark its record (`record`,
   * as the commit wrote it) with `conflict`, so that no later attempt takes it for a commit.
   * Only that very record is marked (the same attempt and staging directory); the record that
   * holds afterwards is returned (undefined: none).
   */
  markConflict(taskId: string, record: CommittedOutput, conflict: string): Promise<CommittedOutput | undefined>;
}

// KEYS[1] = the task's commit key; ARGV[1] = the record (JSON).
// Returns {1, record} when this call committed, {0, existing record} when an attempt already had.
// One script so that "is anything committed?" and "commit mine" cannot interleave with another
// attempt's: exactly one attempt of a task ever gets 1.
// The same call again finds its own record and gets 1 again: an executor's client sends a
// command whose reply the connection lost again once it reconnects (Redis killed after applying
// the script and writing its AOF, before answering), and taking its own record for another
// attempt's, the winner discarded the staging directory the record names and reported the task
// committed where nothing was ever renamed (chaos kill-redis: readers' 404 on the output, then a
// recompute). Only that very call matches: the record names the delivery's own staging
// directory and the time of the call, so another attempt, or another delivery of this one,
// still gets 0.
const COMMIT_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then return {1, cur} end
if cur then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[1])
return {1, ARGV[1]}
`;

// KEYS[1] = the task's commit key; ARGV[1] = the winner's attempt id, ARGV[2] its staging path
// ('' for none), ARGV[3] its record with the conflict (JSON). Replaces the record only when it is
// still the one that attempt's delivery wrote (the staging path is the delivery's own), so it can
// never overwrite another attempt's commit; returns the record that holds (false: none).
// The fields are compared decoded (cjson), not as text: the executor holds the record decoded.
const MARK_CONFLICT_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
local ok, rec = pcall(cjson.decode, cur)
if ok and type(rec) == 'table' and rec.attemptId == ARGV[1] and (rec.staged or '') == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[3])
  return ARGV[3]
end
return cur
`;

/** The connection with the commit scripts defined on it (the commit batched: see CallBatch). */
interface LedgerRedis extends Redis {
  locusCommitOutputs(numKeys: number, ...keysThenArgs: string[]): Promise<([number, string] | string)[]>;
  locusMarkConflict(key: string, attemptId: string, staged: string, record: string): Promise<string | null>;
}

/** One commit record per item: its key, the record. */
const COMMIT_ITEM: BatchShape = { keys: 1, args: 1 };

/** The commit ledger on Redis (the executor's own ACL user may write `locus:commit:*`). */
export class RedisCommitLedger implements CommitLedger {
  private readonly redis: LedgerRedis;
  /**
   * Every attempt looks its task up before it runs, and a batch's members start together: one
   * MGET for all the lookups of a turn costs one write and one reply instead of one per attempt.
   * A lookup still sees every commit made before it was asked (the MGET is sent later, never
   * earlier). Each record is decoded on its own: one that does not parse fails its own lookup only.
   */
  private readonly lookups = new CallBatch<string, CommittedOutput | undefined>(async (keys) => {
    const raws = keys.length === 1 ? [await this.redis.get(keys[0] ?? '')] : await this.redis.mget([...keys]);
    return keys.map((_, i) => {
      const raw = raws[i];
      try {
        return raw === null || raw === undefined ? undefined : decodeCommittedOutput(JSON.parse(raw) as unknown);
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    });
  });

  /**
   * Commits in group: one script call out at a time, and the commits that ended meanwhile go in
   * the next, each still decided on its own (the script writes a record only where none is). Under
   * load an executor's attempts end a few at a time, each with its own round trip before.
   */
  private readonly commits = new CallBatch<BatchItem, [number, string]>(
    async (items) => batchReplies(await this.redis.locusCommitOutputs(...batchCallArgs(items, COMMIT_ITEM)))
      .map((r) => (typeof r === 'string' ? new Error(`the commit script answered '${r}'`) : r)),
    // A record lists every file of its output: 32 of them bound one call's size and the time
    // Redis spends in it, and still share each round trip among many commits.
    { serial: true, maxSize: 32 },
  );

  constructor(redis: Redis) {
    // A defined command goes out as EVALSHA (the script text once per connection, not with
    // every commit: one commit per attempt made the text the largest part of the call).
    redis.defineCommand('locusCommitOutputs', { lua: batchedScript(COMMIT_SCRIPT, COMMIT_ITEM) });
    // Rare (a conflict only): one call each, not batched.
    redis.defineCommand('locusMarkConflict', { lua: MARK_CONFLICT_SCRIPT, numberOfKeys: 1 });
    this.redis = redis as LedgerRedis;
  }

  async commit(taskId: string, record: CommittedOutput): Promise<{ won: boolean; record: CommittedOutput }> {
    const r = await this.commits.call({ keys: [commitKey(taskId)], args: [JSON.stringify(record)] });
    return { won: Number(r[0]) === 1, record: decodeCommittedOutput(JSON.parse(r[1]) as unknown) };
  }

  lookup(taskId: string): Promise<CommittedOutput | undefined> {
    return this.lookups.call(commitKey(taskId));
  }

  async markConflict(taskId: string, record: CommittedOutput, conflict: string): Promise<CommittedOutput | undefined> {
    const marked: CommittedOutput = { ...record, conflict };
    const r = await this.redis.locusMarkConflict(commitKey(taskId), record.attemptId, record.staged ?? '', JSON.stringify(marked));
    return r === null ? undefined : decodeCommittedOutput(JSON.parse(r) as unknown);
  }
}

/** Reads any storage URI (the storage registry's `read`). */
export type UriReader = (uri: string, offset: number, length: number) => Promise<Readable>;

/** Everything the attempts of one executor use to reach data. */
export interface DataPlane {
  /** This executor's block server (host:port), recorded with its commits. */
  readonly blockServer?: string;
  /** The data-plane token for other hosts' block servers. */
  token(): Promise<string>;
  /** Storage backends (HDFS, Ceph, CephFS, GlusterFS, file, local) configured for this host. */
  readonly readUri?: UriReader;
  readonly ledger?: CommitLedger;
  /** Where a payload's output directory is on this host, and its path under the served outputs root. */
  outputFor(outputDir: string): { readonly dir: string; readonly relPath?: string };
  /** The directory the block server serves as `outputs`. */
  readonly outputsRoot?: string;
  /** This host's local:// dataset directory (`<dir>/<dataset>/<path>`), where local:// outputs are committed. */
  readonly localDataDir?: string;
  /** WebHDFS for hdfs:// outputs (built on first use). */
  hdfs?(): HdfsOutputFs;
  /** This host's GlusterFS and CephFS mounts, looked at before an attempt reads a split through one. */
  readonly inputMounts?: InputMounts;
}

/** Where outputs go: the shared root itself, or the same layout under this host's own root. */
export function outputMapper(o: { root: string; shared: boolean; hostRoot?: string } | undefined): { outputFor: DataPlane['outputFor']; outputsRoot?: string } {
  if (o === undefined) return { outputFor: (dir) => ({ dir }) };
  const served = o.shared ? o.root : o.hostRoot;
  return {
    ...(served === undefined ? {} : { outputsRoot: served }),
    outputFor(dir) {
      if (o.shared || served === undefined) {
        const rel = pathUnder(o.root, dir);
        return rel === undefined ? { dir } : { dir, relPath: rel };
      }
      // The same mapping the API names host-kept outputs by (storage/output-layout.ts).
      const relPath = hostRelativePath(o.root, dir);
      return { dir: join(served, relPath), relPath };
    },
  };
}

/** Whether an error reading input is the host's trouble (retry elsewhere, uncounted) rather than the task's. */
export function isHostCause(err: unknown): boolean {
  if (err instanceof LocusError) return err.code === 'UNAVAILABLE' || err.code === 'TIMEOUT';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENOTCONN' || code === 'ESTALE' || code === 'EIO' || code === 'EPIPE';
}

/**
 * Stream a split's bytes to `dest`: from block servers when the split names
 * them (local:// datasets, stage outputs), else from the storage backend of
 * its scheme.
 */
export async function materialiseSplit(split: NonNullable<AttemptPayload['split']>, dp: DataPlane, dest: string): Promise<void> {
  let stream: Readable;
  // The scheduler found the split on other hosts only and no block server there (an executor
  // just started or gone): the host cannot reach it now, which is not the task's fault. Read
  // here, it would be ENOENT and count against the task.
  if (split.uri.startsWith('local://') && split.sources !== undefined && split.sources.length === 0) {
    throw new LocusError('UNAVAILABLE', `${split.uri}: held only by other hosts, and no block server is known there yet`);
  }
  if (split.sources !== undefined && split.sources.length > 0) {
    stream = await readFromBlockServers(split.sources.map((s) => ({ address: s.address, root: s.root, path: s.path })), split.offset, split.length, { token: await dp.token() });
  } else if (dp.readUri !== undefined) {
    stream = await dp.readUri(split.uri, split.offset, split.length);
  } else {
    throw new LocusError('UNAVAILABLE', `${split.uri}: this executor has no storage configuration to read it with`);
  }
  await pipeline(stream, createWriteStream(dest));
}

/** Fetch one committed output part from its host's block servers into `dest` (a new directory). */
export async function fetchPart(part: StageOutputPart, dp: DataPlane, dest: string): Promise<number> {
  let bytes = 0;
  await fsp.mkdir(dest, { recursive: true });
  for (const f of part.files) {
    const target = join(dest, f.name);
    // File names come from the commit record; never let one climb out of dest.
    if (relative(dest, target).startsWith('..')) throw new LocusError('PROTOCOL', `output file name '${f.name}' leaves its directory`);
    await fsp.mkdir(dirname(target), { recursive: true });
    const sources = part.sources.map((address) => ({ address, root: 'outputs', path: `${part.relPath}/${f.name}` }));
    const stream = await readFromBlockServers(sources, 0, f.size, { token: await dp.token() });
    await pipeline(stream, createWriteStream(target));
    bytes += f.size;
  }
  return bytes;
}
