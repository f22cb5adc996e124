/**
 * Exactly-once output commit. An attempt writes into a private staging
 * directory next to the task's final location (same filesystem, so rename is
 * atomic); on success the staging directory is renamed onto the final path.
 *
 * The commit point is rename(2) of a directory onto a path that must not hold
 * a non-empty directory: the kernel makes exactly one of several concurrent
 * renames win, the others fail with ENOTEMPTY/EEXIST. Every committed
 * directory carries a `_SUCCESS` marker naming the winning attempt, so it is
 * never empty and can never be replaced by a later rename. No Redis state is
 * involved, which closes the windows a separate commit record would open.
 *
 * Crash windows, and why each converges:
 * - Crash before the rename: nothing is committed; the staging directory is
 *   left behind and swept by the next winning commit of the task (or by the
 *   next attempt that finds the task already committed).
 * - Crash after the rename, before the result reaches Redis: the attempt is
 *   redelivered (stalled job) or re-run elsewhere (executor lost); the new
 *   attempt sees the marker before it runs anything and reports
 *   ALREADY_COMMITTED with the committed path.
 * - Redis loses the last second of writes (kill -9 with appendfsync everysec):
 *   the same as the previous case, the filesystem remains the authority.
 * - Host crash right after the rename: the attempt's files and directories,
 *   then the marker and the parent directory, are fsynced before the commit
 *   is reported, so a reported commit survives with its data. Without a
 *   ledger, a parent that cannot be flushed fails the attempt
 *   (OutputNotDurableError), and an attempt that finds the task committed
 *   flushes the parent before saying so (committedDurably); with one, the
 *   record stands and the failed flush is reported with the commit.
 *
 * When agents share no filesystem, a rename cannot decide between attempts on
 * different hosts. With a ledger (the Redis commit script), the decision is
 * the ledger's: the attempt's files are synced and listed, the first attempt
 * to write the task's commit record wins, and only then does the winner
 * rename its staging directory onto the final path on its own host. The
 * record names the host, the block server, the path and every file, which is
 * how the next stage finds the output from any host. A crash between the
 * record and the rename leaves the synced staging directory named in the
 * record (`staged`); the next attempt on that host rolls the rename forward.
 *
 * A final path held by anything this task did not commit (another job's output, a purged job's
 * leftovers, files put there by hand) is never overwritten, and never taken for this task's
 * output: only a marker naming an attempt of this very task is. The commit fails with a conflict
 * (OUTPUT_CONFLICT, which fails the task at once: every attempt would find the same). With the
 * ledger, the final path is looked at before the decision, so such a commit writes no record;
 * when something takes the path between that look and the rename, the winner marks its record
 * with the conflict (`conflict`) before reporting it, and every later attempt of the task, on any
 * host, reads the mark and reports the conflict again: a record is never read as a commit whose
 * output is someone else's files. A roll-forward (settleCommitted) tells the two apart the same
 * way: the record's own attempt (or another of its task) in place is the commit; anything else
 * there is the conflict, marked by the attempt that finds it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, promises as fsp, type Dirent } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { COMMIT_MARKER, type CommittedOutput, type OutputFile } from './contract.js';
import { learnLocalFs, metaCallsFor, POOLED_CALLS, type MetaCalls } from './local-fs.js';
import { SharedRuns } from '../core/shared-runs.js';
import { FilesystemFlusher, syncfsHelperPath } from './fs-flush.js';

/** Group commit of flushes on local filesystems (fs-flush.ts); callers fall back to fsyncs without it. */
const flusher = new FilesystemFlusher(syncfsHelperPath());
/** Attempt directories whose stage directory was watched before they were made: they may share flushes. */
const sharing = new Set<string>();

/** The metadata calls for this task's output: synchronous where its directory is local (local-fs.ts). */
function callsFor(plan: OutputPlan): MetaCalls {
  return metaCallsFor(dirname(plan.finalDir));
}

export { COMMIT_MARKER };

/** Where one attempt writes and where its output goes. */
export interface OutputPlan {
  readonly finalDir: string;
  /** Holds the staging directories of every attempt of every task committing beside finalDir (STAGING_DIR). */
  readonly stagingRoot: string;
  /** How the name of each staging directory of this task in stagingRoot begins (and no other task's). */
  readonly taskPrefix: string;
  /** This delivery's private directory (unique even for duplicate deliveries of one attempt). */
  readonly attemptDir: string;
}

/**
 * The staging directory beside the final ones, shared by every task whose output directory has
 * the same parent (a stage's tasks). Earlier versions made one per task
 * (`.<task>.locus-attempts`) and removed it after each commit; on ext4 a directory's removal
 * orphans its inode under a lock every process on the filesystem shares, and with an mkdir that
 * was the largest cost of a short attempt: on `bench:dispatch` (20,000 no-op tasks) executors
 * spent 4.6 of their 22 s busy in that rmdir, and without it they ran 1,620-1,740 tasks/s
 * against 1,075-1,140. The shared directory is made by the first attempt and removed once no
 * attempt of this process used it for STAGING_UPKEEP_MS (releaseStaging), not per attempt.
 */
export const STAGING_DIR = '.locus-staging';

/** How an earlier version named a task's own staging root: a record may still name a directory in one. */
const LEGACY_ROOT_SUFFIX = '.locus-attempts';

/** The outcome of a commit. */
export type CommitOutcome =
  /** `unflushed`: with the ledger, the rename could not be flushed; the record stands (why, in words). */
  | { readonly kind: 'committed'; readonly finalDir: string; readonly unflushed?: string }
  | { readonly kind: 'already'; readonly finalDir: string; readonly winner: string }
  /** The final path holds something that Locus did not commit. */
  | { readonly kind: 'conflict'; readonly finalDir: string; readonly message: string };

/** The ledger decision commitOutput needs: record this output unless another attempt did. */
export type CommitDecision = (files: readonly OutputFile[], size: number, staged: string) => Promise<{ readonly won: boolean; readonly record: CommittedOutput }>;

/**
 * Mark the winner's own record (as the decision returned it) with a conflict, in words; returns
 * the record that holds afterwards (CommitLedger.markConflict).
 */
export type ConflictMark = (record: CommittedOutput, conflict: string) => Promise<CommittedOutput | undefined>;

/** What holds a task's final directory, as one of its attempts sees it (occupantOf). */
export type Occupant =
  /** Nothing: no such path, or an empty directory (which the commit's rename replaces). */
  | { readonly kind: 'free' }
  /** The output of an attempt of this very task: its commit. */
  | { readonly kind: 'task'; readonly attemptId: string }
  /** Anything else, said in words for the conflict's message. */
  | { readonly kind: 'foreign'; readonly what: string };

/** The task of an attempt id: `<taskId>.a<n>` without its last part. */
export function taskOfAttempt(attemptId: string): string {
  const dot = attemptId.lastIndexOf('.');
  return dot < 0 ? attemptId : attemptId.slice(0, dot);
}

/**
 * What holds `finalDir`, seen by an attempt (`attemptId`) of the task committing there. A marker
 * naming an attempt of another task is that task's output, not this one's, even though Locus
 * wrote it (two jobs naming one `output:`, or a purged job's leftovers); a marker Locus cannot
 * read, or none in a directory that has entries, means files Locus did not commit. Absent, the
 * usual case, it is one lstat that throws nothing; else one listing of the directory.
 */
export async function occupantOf(finalDir: string, attemptId: string, calls: Pick<MetaCalls, 'readdir' | 'exists'> = POOLED_CALLS): Promise<Occupant> {
  // Asked first without an exception: the directory is almost never there, and a failed listing
  // builds an error with its stack on every commit (a quarter of what the check cost).
  if (!(await calls.exists(finalDir))) return { kind: 'free' };
  let entries: readonly Dirent[];
  try {
    entries = await calls.readdir(finalDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'free' };
    if (code === 'ENOTDIR') return { kind: 'foreign', what: 'a file (not a directory) that Locus did not commit' };
    throw err;
  }
  if (entries.length === 0) return { kind: 'free' };
  const by = await committedBy(finalDir);
  if (by !== undefined && by !== 'unknown') {
    if (taskOfAttempt(by) === taskOfAttempt(attemptId)) return { kind: 'task', attemptId: by };
    return { kind: 'foreign', what: `the output of attempt ${by}, which belongs to another task or job` };
  }
  const names = entries.map((e) => e.name).sort();
  const shown = names.slice(0, 3).map((n) => `'${n}'`).join(', ') + (names.length > 3 ? ', ...' : '');
  const marker = by === 'unknown' ? ` (its ${COMMIT_MARKER} is not one Locus wrote)` : '';
  return { kind: 'foreign', what: `${names.length} ${names.length === 1 ? 'entry' : 'entries'} that Locus did not commit: ${shown}${marker}` };
}

/**
 * The message of a conflict: the directory, what holds it, and what to do. Never retried: the
 * files stay until someone removes them, and Locus never overwrites what it did not commit.
 */
export function conflictMessage(finalDir: string, what: string): string {
  return `the task's output directory ${finalDir} already holds ${what}; Locus never overwrites it nor takes it for the task's output, so the task fails. Choose another \`output:\` for the job, or empty that directory, and submit the job again`;
}

/** The files below a directory (regular files only, names '/'-separated, the marker left out). */
export async function listOutputFiles(dir: string, prefix = ''): Promise<OutputFile[]> {
  const out: OutputFile[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const name = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (prefix === '' && e.name === COMMIT_MARKER) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listOutputFiles(p, name)));
    else if (e.isFile()) out.push({ name, size: (await fsp.stat(p)).size });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Finish a commit the ledger recorded but whose rename never happened (a crash between
 * the two): when the record's staging directory is on this host, rename it into place.
 * Returns whether the final directory now holds the output, or the conflict (its message) when
 * it holds something this task did not commit: the winner died before it could mark its record,
 * and the caller marks it. A rename made here that cannot be flushed stands, as the winner's own
 * does (the record has decided); `unflushed` hears why, for the attempt's report.
 */
export async function settleCommitted(record: CommittedOutput, unflushed?: (why: string) => void): Promise<boolean | { readonly conflict: string }> {
  const held = await occupantOf(record.path, record.attemptId);
  if (held.kind === 'task') return true;
  if (held.kind === 'foreign') return { conflict: conflictMessage(record.path, held.what) };
  if (record.staged === undefined) return false;
  try {
    await fsp.rename(record.staged, record.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') return false;
    // Taken meanwhile: by another roll-forward of this record (the commit), or by something else.
    const now = await occupantOf(record.path, record.attemptId);
    if (now.kind === 'task') return true;
    return now.kind === 'foreign' ? { conflict: conflictMessage(record.path, now.what) } : false;
  }
  try {
    await flushCommitted(record.path, false);
  } catch (err) {
    unflushed?.(err instanceof Error ? err.message : String(err));
  }
  const root = dirname(record.staged);
  // An earlier version's root held this task's directories alone; the shared one holds others'.
  if (basename(root).endsWith(LEGACY_ROOT_SUFFIX)) await fsp.rm(root, { recursive: true, force: true }).catch(() => undefined);
  else if (basename(root) === STAGING_DIR) {
    await sweepTasks(POOLED_CALLS, root, [[taskPrefixOf(record.path), record.path]]);
    if (!stagingHeld.has(root)) await fsp.rmdir(root).catch(() => undefined);
  }
  return true;
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 120);
}

/** This process's part of every staging name: random, so two processes never share one. */
const STAGING_PREFIX = randomBytes(4).toString('hex');
let stagingSeq = 0;

/**
 * How a task's staging directories are named in the shared staging directory: its final
 * directory's name made safe (for a person reading the listing), then a hash of the exact name
 * after a `~`, which safeName never leaves: one task's prefix can never begin another's name.
 */
function taskPrefixOf(finalDir: string): string {
  const name = basename(finalDir);
  return `${safeName(name)}~${createHash('sha256').update(name).digest('hex').slice(0, 16)}.`;
}

/** Plan the directories of one delivery of an attempt. */
export function planOutput(outputDir: string, attemptId: string): OutputPlan {
  const finalDir = outputDir.replace(/\/+$/, '');
  const stagingRoot = join(dirname(finalDir), STAGING_DIR);
  const taskPrefix = taskPrefixOf(finalDir);
  // A suffix unique to this delivery keeps two deliveries of the same attempt id apart: random
  // per process and counted within it (random bytes per attempt cost more than the no-op attempt).
  return { finalDir, stagingRoot, taskPrefix, attemptDir: join(stagingRoot, `${taskPrefix}${safeName(attemptId)}.${STAGING_PREFIX}${(stagingSeq++).toString(36)}`) };
}

/** The attempt that committed `finalDir`, or undefined when nothing is committed there. */
export async function committedBy(finalDir: string): Promise<string | undefined> {
  try {
    const text = await fsp.readFile(join(finalDir, COMMIT_MARKER), 'utf8');
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed === 'object' && parsed !== null && 'attemptId' in parsed && typeof parsed.attemptId === 'string') return parsed.attemptId;
    return 'unknown';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    // A marker that exists but cannot be parsed still means "committed".
    if (err instanceof SyntaxError) return 'unknown';
    throw err;
  }
}

/** Create the attempt's private directory, writable by the unprivileged workload user. */
export async function prepareAttemptDir(plan: OutputPlan): Promise<void> {
  // One call makes the staging root too; it names the first directory it created, none when the
  // attempt's directory was there already (which must not be shared: refused as mkdir would).
  const calls = callsFor(plan);
  // Held before the mkdir: this process does not remove the directory while the attempt uses it.
  // Another process may (it is empty for an instant between its own attempts): mkdir -p makes it
  // again when the attempt's mkdir finds it gone.
  holdStaging(plan);
  // Asked before anything of this attempt exists: a flush of the stage's filesystem covers its
  // writes only if the filesystem was watched before them (fs-flush.ts).
  const stageDir = dirname(plan.finalDir);
  if (calls !== POOLED_CALLS && flusher.watchedBefore(stageDir)) sharing.add(plan.attemptDir);
  if ((await mkdirpRacing(calls, plan.attemptDir)) === undefined) {
    throw Object.assign(new Error(`EEXIST: staging directory already exists, mkdir '${plan.attemptDir}'`), { code: 'EEXIST', path: plan.attemptDir });
  }
  // Shared only when the attempt's directory is on the watched filesystem itself: a staging
  // directory that is a symbolic link or a mount point leads elsewhere.
  if (sharing.has(plan.attemptDir) && String(lstatSync(plan.attemptDir, { throwIfNoEntry: false })?.dev) !== flusher.deviceOf(stageDir)) {
    sharing.delete(plan.attemptDir);
  }
  // Workloads run as an unprivileged user; the staging name is unguessable
  // and lives only as long as the attempt.
  await calls.chmod(plan.attemptDir, 0o777);
  // The stage's directory exists now: the next attempts under it know its filesystem, and on a
  // local one may share its flushes.
  if (calls === POOLED_CALLS) await learnLocalFs(stageDir);
  else if (!sharing.has(plan.attemptDir)) void flusher.watch(stageDir);
}

/** Tries of an attempt directory's mkdir -p while other processes remove the staging root. */
const MKDIR_RACE_TRIES = 5;

/**
 * mkdir -p of an attempt's directory while another process may remove the staging root (empty
 * for an instant between its own attempts). Node's mkdir -p does not make it again then: when
 * the root was there at its mkdir (EEXIST) and gone at the stat that follows, it reports ENOTDIR
 * (ENOENT when synchronous), and the attempt failed to launch (bench:dispatch, 5 executors on
 * one stage, 2026-12-06). A root that is really not a directory still fails, after the last try.
 */
export async function mkdirpRacing(calls: Pick<MetaCalls, 'mkdirp'>, dir: string): Promise<string | undefined> {
  for (let tries = 1; ; tries++) {
    try {
      return await calls.mkdirp(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (tries >= MKDIR_RACE_TRIES || (code !== 'ENOTDIR' && code !== 'ENOENT')) throw err;
    }
  }
}

/**
 * Write the commit marker exclusively and fsync it, through one handle, and fsync its directory
 * (the attempt's) at the same time: that flush covers the marker's own entry and every entry
 * made before it, so it must begin after the marker exists. The two flushes were one after the
 * other before (an attempt's commit waited out two device flushes in a row). The workload may
 * have left a `_SUCCESS` of its own, even a symlink to a file it wants overwritten: only then
 * (EEXIST) is whatever is there removed (rm does not follow links) and the marker created again.
 */
async function writeMarker(plan: OutputPlan, attemptId: string, calls: MetaCalls): Promise<void> {
  const marker = join(plan.attemptDir, COMMIT_MARKER);
  const text = JSON.stringify({ attemptId, committedAt: new Date().toISOString() }) + '\n';
  const dir = plan.attemptDir;
  let fd: number;
  try {
    fd = await calls.open(marker, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    await fsp.rm(marker, { force: true, recursive: true });
    fd = await calls.open(marker, 'wx');
  }
  const shared = sharing.has(plan.attemptDir);
  try {
    await calls.write(fd, text);
    if (!shared) {
      // Both flushes end before the handle closes, whichever fails: closing it while its fsync is
      // in the thread pool would let that fsync reach whatever file reuses the descriptor number.
      settledOrThrow(await Promise.allSettled([calls.fsyncFd(fd), calls.fsync(dir)]));
      return;
    }
  } finally {
    await calls.close(fd);
  }
  // One flush of the filesystem, shared with the other attempts committing now, covers the
  // marker, the attempt directory and everything the attempt wrote (it began after all of them).
  if (await flusher.flushShared(dirname(plan.finalDir))) return;
  settledOrThrow(await Promise.allSettled([calls.fsync(marker), calls.fsync(dir)]));
}

function settledOrThrow(results: readonly PromiseSettledResult<unknown>[]): void {
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

const dirSyncs = new SharedRuns();

/**
 * Group commit of a directory's fsync: every task of a stage renames its output into the same
 * parent directory, and one fsync of that directory makes all renames done before it began
 * durable. A caller joins the fsync queued behind the running one (never the running one: it
 * may have begun before the caller's rename); the queued one starts when the running one ends,
 * so at most two are outstanding per directory however many slots commit at once. Each
 * caller's own rename is still covered before its commit is reported: the decision per task is
 * unchanged, only the disk flushes are shared. For an attempt that may share flushes of its
 * filesystem (`shared`: watched before the attempt wrote, fs-flush.ts), the flush is one
 * syncfs, which the attempts' markers share too.
 */
export async function syncDirectoryShared(dir: string, shared = false): Promise<void> {
  if (shared && (await flusher.flushShared(dir))) return;
  await dirSyncs.run(dir, (d) => metaCallsFor(d).fsync(d));
}

/**
 * A commit's rename was made (or found made) but the directory holding it could not be flushed:
 * the output is in place now and may not be after a crash of this host. Reported as a failed
 * write (counted): no attempt may say "committed" while the disk refuses to keep it, and a
 * failing disk must end in the task's failure, not in attempts placed again without end.
 */
export class OutputNotDurableError extends Error {
  constructor(readonly dir: string, override readonly cause: unknown) {
    super(`the output is in place in ${dir}, but that directory could not be flushed to disk (${cause instanceof Error ? cause.message : String(cause)}): it may not survive a crash of this host`);
    this.name = 'OutputNotDurableError';
  }
}

/**
 * With the ledger: this attempt's output is the task's record, but its rename into place failed
 * (EIO, a read-only or full filesystem...). The record stands and names the staging directory,
 * which stays: the task's next attempt on this host rolls the rename forward (settleCommitted).
 */
export class OutputNotPlacedError extends Error {
  constructor(readonly finalDir: string, override readonly cause: unknown) {
    super(`the output is the task's record, but it could not be renamed into ${finalDir} (${cause instanceof Error ? cause.message : String(cause)})`);
    this.name = 'OutputNotPlacedError';
  }
}

/** Flush the directory a committed output was renamed into; OutputNotDurableError when it cannot be. */
async function flushCommitted(finalDir: string, shared: boolean): Promise<void> {
  const dir = dirname(finalDir);
  try {
    await syncDirectoryShared(dir, shared);
  } catch (err) {
    throw new OutputNotDurableError(dir, err);
  }
}

/**
 * What holds `finalDir` (occupantOf), and when it is this task's commit, only once the rename that
 * put it there is on disk:
 * an attempt that finds a commit it did not make reports it only after flushing its directory,
 * so a reported commit survives a crash of the host whichever attempt reports it (the winner's
 * own flush may have failed, or the winner may have died between its rename and its flush).
 */
export async function committedDurably(finalDir: string, attemptId: string): Promise<Occupant> {
  const held = await occupantOf(finalDir, attemptId, metaCallsFor(dirname(finalDir)));
  if (held.kind === 'task') await flushCommitted(finalDir, false);
  return held;
}

/**
 * Promote the attempt's output to the final location, exactly once per task. With `decide`
 * (the ledger), the ledger chooses the winner before anything is renamed.
 */
export async function commitOutput(plan: OutputPlan, attemptId: string, decide?: CommitDecision, markConflict?: ConflictMark): Promise<CommitOutcome & { readonly record?: CommittedOutput }> {
  if (decide !== undefined) return await commitWithLedger(plan, attemptId, decide, markConflict);
  const before = await committedDurably(plan.finalDir, attemptId);
  if (before.kind !== 'free') {
    // Another attempt's commit is the task's: a staging directory that will not go is swept by
    // that commit's sweep or a later one, never a reason to fail this attempt. Anything else
    // there is a conflict, found before anything is synced.
    await discardAttemptDir(plan).catch(() => undefined);
    if (before.kind === 'foreign') return { kind: 'conflict', finalDir: plan.finalDir, message: conflictMessage(plan.finalDir, before.what) };
    return { kind: 'already', finalDir: plan.finalDir, winner: before.attemptId };
  }
  try {
    // The data must be on disk before the marker says it is committed: after a host crash a
    // marker over truncated files would be taken as a finished task. The workload's own
    // `_SUCCESS`, if any, is replaced by writeMarker, not synced here. The attempt directory
    // itself is flushed by writeMarker, after the marker's entry was made: flushed here, before
    // the marker existed, it left the marker's entry to chance across a host crash.
    const calls = callsFor(plan);
    await syncTree(plan.attemptDir, false, true, undefined, '', calls);
    await writeMarker(plan, attemptId, calls);
    await calls.rename(plan.attemptDir, plan.finalDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOTEMPTY/EEXIST: another attempt won the race. ENOENT: our staging
    // directory was swept by a winner that committed while we ran.
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT') {
      await discardAttemptDir(plan).catch(() => undefined);
      const held = await committedDurably(plan.finalDir, attemptId);
      if (held.kind === 'task') return { kind: 'already', finalDir: plan.finalDir, winner: held.attemptId };
      const what = held.kind === 'foreign' ? held.what : `something that Locus did not commit (${code})`;
      return { kind: 'conflict', finalDir: plan.finalDir, message: conflictMessage(plan.finalDir, what) };
    }
    throw err;
  }
  // The rename is the commit; it is reported only once on disk (a failed flush throws).
  await flushCommitted(plan.finalDir, sharing.has(plan.attemptDir));
  sweepStaging(plan);
  return { kind: 'committed', finalDir: plan.finalDir };
}

/**
 * fsync every regular file and directory below `dir` (symlinks are neither followed nor synced),
 * and `dir` itself unless `self` is false (a caller that syncs it later anyway, after adding the
 * marker, would otherwise flush it twice).
 */
async function syncTree(dir: string, self = true, skipMarker = false, files?: OutputFile[], prefix = '', calls: MetaCalls = POOLED_CALLS): Promise<void> {
  for (const e of await calls.readdir(dir)) {
    // The top directory's `_SUCCESS` is the marker's place: writeMarker replaces it, and it is
    // never one of the output's files.
    if (skipMarker && e.name === COMMIT_MARKER) continue;
    const p = join(dir, e.name);
    const name = prefix === '' ? e.name : `${prefix}/${e.name}`;
    // What the workload made unreadable cannot be opened to sync; it is committed as it is.
    const tolerate = (err: NodeJS.ErrnoException): void => { if (err.code !== 'EACCES' && err.code !== 'EPERM') throw err; };
    if (e.isDirectory()) {
      // A directory that cannot be read cannot be listed either: when listing, that fails the
      // commit as the listing alone would.
      await (files === undefined ? syncTree(p, true, false, undefined, '', calls).catch(tolerate) : syncTree(p, true, false, files, name, calls));
    } else if (e.isFile()) {
      await calls.fsync(p).catch(tolerate);
      if (files !== undefined) files.push({ name, size: (await fsp.stat(p)).size });
    }
  }
  if (self) await calls.fsync(dir);
}

/**
 * Remove the staging copy a record marked with a conflict names: no roll-forward will ever rename
 * it. Only a directory in the staging directory beside the record's own path: the path comes
 * from Redis, and nothing else is ever removed on a record's word.
 */
export async function discardStaged(record: CommittedOutput): Promise<void> {
  const staged = record.staged;
  if (staged === undefined || dirname(staged) !== join(dirname(record.path), STAGING_DIR) || !basename(staged).startsWith(taskPrefixOf(record.path))) return;
  await fsp.rm(staged, { recursive: true, force: true }).catch(() => undefined);
}

/** Remove this delivery's staging directory (failed or losing attempt). */
export async function discardAttemptDir(plan: OutputPlan): Promise<void> {
  await fsp.rm(plan.attemptDir, { recursive: true, force: true });
}

/**
 * After a commit, remove what other attempts of the task left in staging: they can never commit
 * any more (the final path is taken), and an attempt still running finds its directory gone and
 * reports ALREADY_COMMITTED. Done by the staging directory's next upkeep (scheduleUpkeep), with
 * the other tasks committed there meanwhile: one listing for all of them.
 */
function sweepStaging(plan: OutputPlan): void {
  const u = upkeepOf(plan.stagingRoot, plan.finalDir);
  u.sweeps.set(plan.taskPrefix, plan.finalDir);
  scheduleUpkeep(plan.stagingRoot, u);
}

/** The attempts of this process using each shared staging directory (their attempt directories). */
const stagingHeld = new Map<string, Set<string>>();

function holdStaging(plan: OutputPlan): void {
  const held = stagingHeld.get(plan.stagingRoot);
  if (held) held.add(plan.attemptDir);
  else stagingHeld.set(plan.stagingRoot, new Set([plan.attemptDir]));
}

/**
 * The attempt planned as `plan` has ended, however it ended. When no other attempt of this process
 * uses its stage's staging directory, the directory is removed if it is empty: at once when this
 * process has no attempt staging anywhere (the end of a stage, or of the last job here: the
 * directory is gone before the attempt's result is reported), else by the directory's next upkeep
 * (within STAGING_UPKEEP_MS). An attempt of another executor still staging there keeps it (the
 * rmdir fails), and removes it itself when it ends. Never throws.
 */
export async function releaseStaging(plan: OutputPlan): Promise<void> {
  sharing.delete(plan.attemptDir);
  const held = stagingHeld.get(plan.stagingRoot);
  if (held === undefined || !held.delete(plan.attemptDir) || held.size > 0) return;
  stagingHeld.delete(plan.stagingRoot);
  if (stagingHeld.size === 0) await settleStaging();
  else scheduleUpkeep(plan.stagingRoot, upkeepOf(plan.stagingRoot, plan.finalDir));
}

/**
 * How often a staging directory's sweeps run, and its removal is tried, while this process's
 * attempts keep coming and going (releaseStaging). Made per commit and per attempt end, the listing
 * of the directory and its removal were an eighth of an executor's time on bench:dispatch (each
 * takes the stage directory's lock, which every executor's mkdir and rename there wait for; with
 * the attempts of twenty jobs interleaved, each job's directory went and was made again moments
 * later). Now one listing serves every task committed in the interval.
 */
export const STAGING_UPKEEP_MS = 200;

/** A staging directory's pending upkeep: the tasks committed since its last sweep (their prefixes and final directories). */
interface Upkeep {
  readonly calls: MetaCalls;
  readonly sweeps: Map<string, string>;
  timer?: NodeJS.Timeout;
}

const upkeeps = new Map<string, Upkeep>();
/** Upkeeps under way: settleStaging waits for them too. */
const upkeepsRunning = new Set<Promise<void>>();

/** The upkeep of the staging directory `root` of the stage whose task `finalDir` is one. */
function upkeepOf(root: string, finalDir: string): Upkeep {
  let u = upkeeps.get(root);
  if (u === undefined) upkeeps.set(root, (u = { calls: metaCallsFor(dirname(finalDir)), sweeps: new Map() }));
  return u;
}

function scheduleUpkeep(root: string, u: Upkeep): void {
  if (u.timer !== undefined) return;
  // Unref'd: a pending upkeep never keeps a process alive (an executor settles them as it drains).
  u.timer = setTimeout(() => void startUpkeep(root, u), STAGING_UPKEEP_MS).unref();
}

function startUpkeep(root: string, u: Upkeep): Promise<void> {
  const run = runUpkeep(root, u).finally(() => upkeepsRunning.delete(run));
  upkeepsRunning.add(run);
  return run;
}

async function runUpkeep(root: string, u: Upkeep): Promise<void> {
  clearTimeout(u.timer);
  u.timer = undefined;
  const sweeps = [...u.sweeps];
  u.sweeps.clear();
  if (!stagingHeld.has(root) && upkeeps.get(root) === u) upkeeps.delete(root);
  if (sweeps.length > 0 && !(await sweepTasks(u.calls, root, sweeps))) {
    // Not listed (EMFILE, EIO...): the next upkeep of the directory sweeps them.
    for (const [prefix, finalDir] of sweeps) {
      const next = upkeepOf(root, finalDir);
      next.sweeps.set(prefix, finalDir);
      scheduleUpkeep(root, next);
    }
    return;
  }
  // Held again meanwhile: an attempt of this process stages there (or is about to).
  if (stagingHeld.has(root)) return;
  try {
    await u.calls.rmdir(root);
  } catch {
    // Not empty (another process's attempt, a record's staged directory, a crashed attempt's
    // leftovers until its task's commit sweeps them), or gone already.
  }
}

/**
 * Run every pending upkeep now, and wait for them and for those under way: the last attempt of
 * this process leaves its stages' output directories tidy before its result is reported, an
 * executor draining does too, and a test reads them at a known moment.
 */
export async function settleStaging(): Promise<void> {
  const pending = [...upkeeps].map(([root, u]) => startUpkeep(root, u));
  await Promise.all([...pending, ...upkeepsRunning]);
}

/**
 * One listing of a staging directory for the tasks committed since the last: each one's
 * directories there go (what other deliveries and attempts of the task left: none can commit any
 * more, and one still running finds its directory gone). A recompute of a lost output commits to
 * another directory (`<task>~g<n>`), so its attempts have another prefix and are never swept by
 * the commit they replace. Then what an earlier version's attempt of each task left (its own root,
 * `.<task>.locus-attempts`), looked up without the parent's lock: it is almost never there.
 * Returns false when the directory could not be listed (and was not gone).
 */
async function sweepTasks(calls: MetaCalls, root: string, sweeps: readonly (readonly [string, string])[]): Promise<boolean> {
  let entries: readonly Dirent[] = [];
  try {
    entries = await calls.readdir(root);
  } catch (err) {
    // Gone: nothing of any task left in it.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  }
  const prefixes = new Set(sweeps.map(([prefix]) => prefix));
  for (const e of entries) {
    // A prefix ends at the first '.' after its '~' (taskPrefixOf); the delivery's own part follows.
    const tilde = e.name.indexOf('~');
    const dot = tilde < 0 ? -1 : e.name.indexOf('.', tilde);
    if (dot < 0 || !prefixes.has(e.name.slice(0, dot + 1))) continue;
    await fsp.rm(join(root, e.name), { recursive: true, force: true }).catch(() => undefined);
  }
  for (const [, finalDir] of sweeps) {
    const legacy = join(dirname(finalDir), `.${basename(finalDir)}${LEGACY_ROOT_SUFFIX}`);
    if (await calls.exists(legacy)) await fsp.rm(legacy, { recursive: true, force: true }).catch(() => undefined);
  }
  return true;
}

/** Whether this process has an attempt staging in `root` (tests). */
export function stagingInUse(root: string): boolean {
  return stagingHeld.has(root);
}

async function commitWithLedger(plan: OutputPlan, attemptId: string, decide: CommitDecision, markConflict?: ConflictMark): Promise<CommitOutcome & { readonly record?: CommittedOutput }> {
  const calls = callsFor(plan);
  // A final path held by something else is a conflict found before the ledger is asked: no
  // record is written that a later attempt could read as this task's commit. (This task's own
  // output there, whose record Redis lost, goes on to the decision: a record is written, and
  // the rename below finds the output in place.)
  const before = await occupantOf(plan.finalDir, attemptId, calls);
  if (before.kind === 'foreign') {
    await discardAttemptDir(plan).catch(() => undefined);
    return { kind: 'conflict', finalDir: plan.finalDir, message: conflictMessage(plan.finalDir, before.what) };
  }
  // As without a ledger: the workload's own `_SUCCESS` (even a symlink) goes, the data is synced,
  // and the marker is written exclusively, all before the decision is asked for.
  // The files' data and every subdirectory now, listed in the same walk; the attempt
  // directory's own entries once, with the marker (writeMarker), still before the decision and
  // the rename.
  const files: OutputFile[] = [];
  await syncTree(plan.attemptDir, false, true, files, '', calls);
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const size = files.reduce((a, f) => a + f.size, 0);
  await writeMarker(plan, attemptId, calls);
  const decision = await decide(files, size, plan.attemptDir);
  if (!decision.won) {
    await discardAttemptDir(plan).catch(() => undefined);
    // The winner's record says its output could not be placed: the task's conflict, not its commit.
    if (decision.record.conflict !== undefined) return { kind: 'conflict', finalDir: decision.record.path, message: decision.record.conflict, record: decision.record };
    return { kind: 'already', finalDir: decision.record.path, winner: decision.record.attemptId, record: decision.record };
  }
  try {
    await calls.rename(plan.attemptDir, plan.finalDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOTDIR: a file holds the final path. Anything else is the disk's refusal, not a conflict.
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw new OutputNotPlacedError(plan.finalDir, err);
    const held = await occupantOf(plan.finalDir, attemptId, calls);
    if (held.kind === 'task') {
      // This task's own output, committed by an earlier attempt whose record Redis lost (a
      // rollback): the task's commit is in place, and the record, this attempt's, now stands for
      // it (a roll-forward finds the task's output there and settles).
      await discardAttemptDir(plan).catch(() => undefined);
      return { kind: 'already', finalDir: plan.finalDir, winner: held.attemptId, record: decision.record };
    }
    // The ledger says this attempt won, yet the final path was taken since it was looked at:
    // something other than this task's commit wrote there. The record is marked before the
    // conflict is reported, so no later attempt takes it for the task's commit; if Redis cannot
    // be reached for that, the error is the ledger's (the attempt goes back, the staging copy
    // stays, and the next attempt here finds the conflict again and marks it).
    const message = conflictMessage(plan.finalDir, held.kind === 'foreign' ? held.what : `something that Locus did not commit (${code})`);
    const record = markConflict === undefined ? decision.record : ((await markConflict(decision.record, message)) ?? decision.record);
    // Marked, the staging copy is nobody's output: no roll-forward will ever rename it.
    await discardAttemptDir(plan).catch(() => undefined);
    return { kind: 'conflict', finalDir: plan.finalDir, message, record };
  }
  // The ledger has decided: the commit stands whatever the flush says, and a failed flush is
  // reported with it, not as a failed attempt (the record would answer every retry with this
  // output anyway). What a crash could cost is the rename, which the task's next attempt here
  // rolls forward from the record's `staged` directory (settleCommitted), or the output itself,
  // which is then computed again as any output lost with its host.
  let unflushed: string | undefined;
  try {
    await flushCommitted(plan.finalDir, sharing.has(plan.attemptDir));
  } catch (err) {
    if (!(err instanceof OutputNotDurableError)) throw err;
    unflushed = err.message;
  }
  sweepStaging(plan);
  return { kind: 'committed', finalDir: plan.finalDir, record: decision.record, ...(unflushed === undefined ? {} : { unflushed }) };
}
