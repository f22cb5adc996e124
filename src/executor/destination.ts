/**
 * The job's final output where the spec says: the last stage's tasks commit
 * to `payload.destination` instead of the framework's output root.
 *
 * - `local://<dataset>/<path>/<stage>/<index>`: committed into this host's
 *   local dataset directory (`<localDataDir>/<dataset>/...`), with the same
 *   rename-after-the-ledger commit as any output on this host; the scheduler
 *   adds the files to the dataset's manifest when the job succeeds, so a later
 *   job reads them as `local://` input next to the host that holds them.
 * - `hdfs://namenode:port/<out>/<stage>/<index>`: the attempt writes its
 *   private directory on this host as always; after it exits 0 every file is
 *   streamed to HDFS through WebHDFS CREATE under a private temporary path,
 *   `<out>/_temporary/<attempt>.<random>/`, together with a `_SUCCESS` marker
 *   naming the attempt. Then the Redis ledger decides: the first attempt to
 *   record the task's output (naming that temporary path as `staged`) wins and
 *   RENAMEs it onto the final path (MKDIRS of the stage directory first); a
 *   loser DELETEs its temporary path. HDFS's rename is atomic on the NameNode,
 *   so readers see the whole directory or nothing.
 *
 * Crash windows: before the record, nothing is committed (a temporary path may
 * be left under `_temporary`, which readers skip as Hadoop does); between the
 * record and the rename, the next attempt of the task (on any host: HDFS is
 * shared) finds the record and rolls the rename forward (`settleHdfs`); after
 * the rename, the next attempt finds the record and the final path and runs
 * nothing.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { LocusError } from '../core/errors.js';
import type { AttemptPayload, CommittedOutput } from './contract.js';
import { COMMIT_MARKER, OutputNotPlacedError, conflictMessage, discardAttemptDir, listOutputFiles, taskOfAttempt, type CommitDecision, type CommitOutcome, type ConflictMark, type OutputPlan } from './output.js';

/** What the executor needs of HDFS to commit an output there (WebHdfsBackend has it). */
export interface HdfsOutputFs {
  exists(uri: string): Promise<boolean>;
  writeFile(uri: string, localFile: string, size: number): Promise<void>;
  mkdirs(uri: string): Promise<void>;
  rename(from: string, to: string): Promise<boolean>;
  remove(uri: string): Promise<boolean>;
  /** A byte range of a file (the storage backend's read): the final path's marker is read through it. */
  read?(uri: string, offset: number, length: number): Promise<NodeJS.ReadableStream>;
}

/** The longest commit marker read back (ours are one short JSON line). */
const MARKER_READ_BYTES = 4096;

/**
 * The attempt a final HDFS path's marker names, or undefined when it has none Locus can read (no
 * marker, not JSON, no read on this filesystem, or HDFS refused): then the path is not known to
 * be this task's commit.
 */
async function hdfsMarkerAttempt(fs: HdfsOutputFs, finalUri: string): Promise<string | undefined> {
  if (fs.read === undefined) return undefined;
  try {
    const chunks: Buffer[] = [];
    for await (const c of await fs.read(`${finalUri}/${COMMIT_MARKER}`, 0, MARKER_READ_BYTES)) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    return typeof parsed === 'object' && parsed !== null && 'attemptId' in parsed && typeof parsed.attemptId === 'string' ? parsed.attemptId : undefined;
  } catch {
    return undefined;
  }
}

/** Where this attempt's output goes when the payload names a destination. */
export type Destination =
  | { readonly kind: 'hdfs'; readonly uri: string }
  | { readonly kind: 'local'; readonly uri: string; readonly dir: string };

/** A destination the executor cannot serve (its host lacks the configuration): the task's trouble on this host. */
export class DestinationError extends LocusError {}

function isHdfs(uri: string): boolean {
  return /^(hdfs|webhdfs|swebhdfs):\/\//.test(uri);
}

/** The parent of a URI's path (`hdfs://nn/a/b` → `hdfs://nn/a`). */
export function parentUri(uri: string): string {
  const cut = uri.lastIndexOf('/');
  const head = /^[a-z]+:\/\/[^/]*/.exec(uri)?.[0] ?? '';
  return cut <= head.length ? `${head}/` : uri.slice(0, cut);
}

/**
 * The destination of a payload on this host, or undefined when the output goes to the
 * framework's output root. local:// needs this host's dataset directory; hdfs:// needs WebHDFS.
 */
export function destinationOf(payload: AttemptPayload, localDataDir: string | undefined, hdfs: (() => HdfsOutputFs) | undefined): Destination | undefined {
  const uri = payload.destination;
  if (uri === undefined) return undefined;
  if (uri.startsWith('local://')) {
    if (localDataDir === undefined) throw new DestinationError('UNSUPPORTED', `${uri}: this host has no local dataset directory to commit the output into`);
    const rel = uri.slice('local://'.length);
    // The scheduler built the path from a checked dataset name and the task's layout; a `..`
    // would still leave the dataset directory: refuse it here too.
    if (rel.split('/').some((s) => s === '..' || s === '.')) throw new DestinationError('INVALID_FIELD', `${uri}: the destination path leaves the dataset`);
    return { kind: 'local', uri, dir: join(localDataDir, rel) };
  }
  if (isHdfs(uri)) {
    if (hdfs === undefined) throw new DestinationError('UNSUPPORTED', `${uri}: this executor has no WebHDFS configuration`);
    // Built only now: most attempts never write to HDFS.
    hdfs();
    return { kind: 'hdfs', uri };
  }
  throw new DestinationError('UNKNOWN_SCHEME', `${uri}: outputs go to local://, hdfs:// or the framework's output root`);
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 120);
}

/**
 * The temporary path of one delivery of an attempt: `<out>/_temporary/<attempt>.<random>`,
 * where `<out>` is the job's destination (the task's final path is `<out>/<stage>/<index>`).
 */
export function hdfsTemporary(finalUri: string, attemptId: string): string {
  const out = parentUri(parentUri(finalUri));
  return `${out.replace(/\/$/, '')}/_temporary/${safeName(attemptId)}.${randomBytes(4).toString('hex')}`;
}

/**
 * Upload the attempt's directory to a temporary HDFS path, let the ledger decide, and RENAME
 * the winner's temporary path into place (a loser deletes its own). The local directory is
 * removed in every case.
 */
export async function commitToHdfs(plan: OutputPlan, attemptId: string, finalUri: string, fs: HdfsOutputFs, decide: CommitDecision, markConflict?: ConflictMark): Promise<CommitOutcome & { readonly record?: CommittedOutput }> {
  const temp = hdfsTemporary(finalUri, attemptId);
  // Once the ledger has been asked, the temporary copy may be what a record names (even when the
  // answer was lost on the way back): from then on only a definite loss removes it.
  let asked = false;
  try {
    // The workload's own `_SUCCESS` (even a symlink) is not the marker: ours replaces it.
    await fsp.rm(join(plan.attemptDir, COMMIT_MARKER), { force: true, recursive: true });
    const files = await listOutputFiles(plan.attemptDir);
    const size = files.reduce((a, f) => a + f.size, 0);
    await fs.mkdirs(temp);
    for (const f of files) await fs.writeFile(`${temp}/${f.name}`, join(plan.attemptDir, f.name), f.size);
    const marker = join(plan.attemptDir, COMMIT_MARKER);
    const text = JSON.stringify({ attemptId, committedAt: new Date().toISOString() }) + '\n';
    await fsp.writeFile(marker, text, { flag: 'wx' });
    await fs.writeFile(`${temp}/${COMMIT_MARKER}`, marker, Buffer.byteLength(text));
    asked = true;
    const decision = await decide(files, size, temp);
    if (!decision.won) {
      await fs.remove(temp).catch(() => false);
      // The winner's record says its output could not be placed: the task's conflict, not its commit.
      if (decision.record.conflict !== undefined) return { kind: 'conflict', finalDir: decision.record.path, message: decision.record.conflict, record: decision.record };
      return { kind: 'already', finalDir: decision.record.path, winner: decision.record.attemptId, record: decision.record };
    }
    let placed: Awaited<ReturnType<typeof placeHdfs>>;
    try {
      placed = await placeHdfs(fs, temp, finalUri, attemptId);
    } catch (err) {
      // The record names the temporary copy: the task is committed, and its next attempt (on any
      // host: HDFS is shared) finishes the rename. Not the workload's failure.
      throw new OutputNotPlacedError(finalUri, err);
    }
    if (typeof placed === 'object') {
      // The path holds this task's own commit, made by an earlier attempt whose record the ledger
      // no longer has (Redis lost it, or it was recomputed into place by hand): the task is
      // committed, and this attempt's copy is nobody's.
      await fs.remove(temp).catch(() => false);
      return { kind: 'already', finalDir: finalUri, winner: placed.own, record: decision.record };
    }
    if (placed !== 'placed') {
      // The ledger says this attempt won, yet the final path holds something else (another
      // job's output, or files written by hand). The record is marked before the conflict is
      // reported, so that no later attempt, on any host, takes it for the task's commit (a
      // failure to mark is the ledger's: the temporary copy stays, as the record names it).
      const message = placed === 'taken'
        ? conflictMessage(finalUri, 'files that this task did not commit')
        : `the task's output could not be placed at ${finalUri}: its temporary copy ${temp} was gone and nothing is in place`;
      const record = markConflict === undefined ? decision.record : ((await markConflict(decision.record, message)) ?? decision.record);
      // Marked, the temporary copy is nobody's output: no roll-forward will ever rename it.
      await fs.remove(temp).catch(() => false);
      return { kind: 'conflict', finalDir: finalUri, message, record };
    }
    return { kind: 'committed', finalDir: finalUri, record: decision.record };
  } catch (err) {
    // Unrecorded, the temporary copy is useless; recorded, it is what a roll-forward renames.
    if (!asked) await fs.remove(temp).catch(() => false);
    throw err;
  } finally {
    await discardAttemptDir(plan).catch(() => undefined);
  }
}

/**
 * RENAME a recorded temporary path onto the final one. HDFS renames INTO an existing
 * directory, so the final path is checked first; only the ledger's winner (or a roll-forward
 * of its record) ever gets here, so nothing else of this task races the check.
 */
async function placeHdfs(fs: HdfsOutputFs, temp: string, finalUri: string, attemptId?: string): Promise<'placed' | 'taken' | 'gone' | { readonly own: string }> {
  await fs.mkdirs(parentUri(finalUri));
  // A final path that exists while the temporary copy is gone was filled by a roll-forward of
  // this very record (another delivery or attempt, on any host, between the decision and this
  // rename): the temporary path is this delivery's own, and only that rename moves it. It is the
  // task's commit, not a conflict; a conflict leaves the temporary copy where it is.
  if (await fs.exists(finalUri)) {
    if (!(await fs.exists(temp))) return 'placed';
    // Taken: by an earlier commit of this very task (its marker names one of its attempts), or by
    // something else.
    const by = attemptId === undefined ? undefined : await hdfsMarkerAttempt(fs, finalUri);
    return by !== undefined && attemptId !== undefined && taskOfAttempt(by) === taskOfAttempt(attemptId) ? { own: by } : 'taken';
  }
  if (await fs.rename(temp, finalUri)) return 'placed';
  // false: the temporary path is gone (a concurrent roll-forward moved it) or the final path
  // appeared meanwhile.
  return (await fs.exists(finalUri)) ? 'placed' : 'gone';
}

/**
 * Finish an HDFS commit the ledger recorded but whose rename never happened (a crash between
 * the two). Any host can: HDFS is shared. Returns whether the final path holds the output, or
 * the conflict when it holds something else while the recorded copy still waits (the winner died
 * before it could mark its record: the caller marks it).
 */
export async function settleHdfs(record: CommittedOutput, fs: HdfsOutputFs): Promise<boolean | { readonly conflict: string }> {
  const staged = record.staged !== undefined && (await fs.exists(record.staged)) ? record.staged : undefined;
  if (staged === undefined) return fs.exists(record.path);
  const placed = await placeHdfs(fs, staged, record.path, record.attemptId);
  if (placed === 'taken') return { conflict: conflictMessage(record.path, 'files that this task did not commit') };
  if (typeof placed === 'object') await fs.remove(staged).catch(() => false);
  return placed !== 'gone';
}

/** Whether a commit record's output is on HDFS (rolled forward by `settleHdfs`, from any host). */
export function isHdfsRecord(record: CommittedOutput): boolean {
  return isHdfs(record.path);
}
