/**
 * An output is reported committed only once the rename that committed it is on disk. Without
 * the commit ledger (the rename decides), when the directory the output was renamed into cannot
 * be flushed (EIO from its fsync), the attempt ends FAILED with OUTPUT_WRITE_FAILED (counted: a
 * failing disk ends in the task's failure, not in attempts placed again without end), and an
 * attempt that finds the task committed by another reports ALREADY_COMMITTED only after flushing
 * that directory itself. With the ledger the record has decided: the commit stands and its
 * message says the flush failed, as does the message of an attempt that rolls a recorded commit
 * forward (a crash between the record and the rename) into a directory it cannot flush. node:fs is wrapped: every call goes through, and the fsync of a directory named in
 * `failing` fails with EIO. Shared flushes are off (LOCUS_SYNCFS_PATH=''): each commit flushes
 * its own directories, which is where the fault is put.
 */
import type * as FsModule from 'node:fs';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** Directories whose fsync fails. */
const failing = new Set<string>();
/** Directories below which every fsync fails. */
const failingUnder = new Set<string>();
const fails = (path: string): boolean => failing.has(path) || [...failingUnder].some((p) => path.startsWith(`${p}/`));
/** Paths a rename onto fails with EIO (a rename into place the disk refuses). */
const failingRenames = new Set<string>();
function renameEio(to: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EIO: i/o error, rename onto '${to}'`), { code: 'EIO' });
}
/** Directories flushed successfully, in order. */
const flushed: string[] = [];
const fdPaths = new Map<number, string>();
let failedFlushes = 0;

function eio(path: string): NodeJS.ErrnoException {
  failedFlushes++;
  return Object.assign(new Error(`EIO: i/o error, fsync '${path}'`), { code: 'EIO' });
}

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof FsModule>();
  const promises = {
    ...real.promises,
    rename: async (from: FsModule.PathLike, to: FsModule.PathLike): Promise<void> => {
      if (failingRenames.has(String(to))) throw renameEio(String(to));
      await real.promises.rename(from, to);
    },
    open: async (...args: Parameters<typeof real.promises.open>): ReturnType<typeof real.promises.open> => {
      const fh = await real.promises.open(...args);
      const path = String(args[0]);
      if (!fails(path)) return fh;
      return Object.assign(Object.create(fh) as typeof fh, { sync: async () => { throw eio(path); }, close: () => fh.close() });
    },
  };
  const wrapped = {
    ...real,
    promises,
    renameSync: (from: FsModule.PathLike, to: FsModule.PathLike): void => {
      if (failingRenames.has(String(to))) throw renameEio(String(to));
      real.renameSync(from, to);
    },
    openSync: (...args: Parameters<typeof real.openSync>): number => {
      const fd = real.openSync(...args);
      fdPaths.set(fd, String(args[0]));
      return fd;
    },
    open: (path: FsModule.PathLike, flags: FsModule.OpenMode, cb: (err: NodeJS.ErrnoException | null, fd: number) => void): void => {
      real.open(path, flags, (err, fd) => {
        if (!err) fdPaths.set(fd, String(path));
        cb(err, fd);
      });
    },
    fsync: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void => {
      const path = fdPaths.get(fd);
      if (path !== undefined && fails(path)) {
        setImmediate(() => cb(eio(path)));
        return;
      }
      real.fsync(fd, (err) => {
        if (!err && path !== undefined) flushed.push(path);
        cb(err);
      });
    },
  };
  return { ...wrapped, default: wrapped };
});

process.env['LOCUS_SYNCFS_PATH'] = '';
const { runAttempt } = await import('../../src/executor/attempt.js');
const { attemptContext, attemptPayload, memoryLedger } = await import('./attempt-fixture.js');
const { ledgerIdOf } = await import('../../src/executor/contract.js');
type AttemptContext = import('../../src/executor/attempt.js').AttemptContext;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-not-durable-'));
  failing.clear();
  failingUnder.clear();
  failingRenames.clear();
  flushed.length = 0;
  failedFlushes = 0;
});
afterEach(async () => {
  failing.clear();
  await rm(dir, { recursive: true, force: true });
});

const control = (n: string): Parameters<typeof runAttempt>[2] => ({ delivery: n, drain: new AbortController().signal, onRunning: () => undefined });

/** Task 0's payload, as attempt `attempt`. */
function attemptOf(attempt: number): ReturnType<typeof attemptPayload> {
  const p = attemptPayload(dir, 0);
  return { ...p, attemptId: `${p.taskId}.${attempt}`, attempt };
}

function contextWith(withLedger: boolean): AttemptContext {
  const ctx = attemptContext(dir, memoryLedger().ledger);
  if (withLedger) return ctx;
  if (ctx.dataPlane === undefined) throw new Error('the fixture has a data plane');
  const { ledger: _ledger, ...plane } = ctx.dataPlane;
  return { ...ctx, dataPlane: plane };
}

describe('without the ledger (the rename decides), a commit whose directory cannot be flushed', () => {
  it('fails the attempt (OUTPUT_WRITE_FAILED, counted) instead of reporting a commit the disk may not keep', async () => {
    const ctx = contextWith(false);
    const finalDir = attemptOf(1).outputDir as string;
    failing.add(dirname(finalDir));
    const r = await runAttempt(attemptOf(1), ctx, control('d1'));
    expect(failedFlushes).toBeGreaterThan(0);
    expect(r.state).toBe('FAILED');
    expect(r.reason).toBe('OUTPUT_WRITE_FAILED');
    expect(r.message).toContain('could not be flushed');
    expect(r.message).toContain(dirname(finalDir));
    // The rename itself was made: the output is in place, under the first attempt's marker.
    expect(existsSync(join(finalDir, '_SUCCESS'))).toBe(true);
  });

  it('a later attempt reports the commit only once it could flush the directory itself', async () => {
    const ctx = contextWith(false);
    const finalDir = attemptOf(1).outputDir as string;
    failing.add(dirname(finalDir));
    expect((await runAttempt(attemptOf(1), ctx, control('d1'))).reason).toBe('OUTPUT_WRITE_FAILED');
    // The disk still refuses: the next attempt finds the commit but cannot make it durable.
    const again = await runAttempt(attemptOf(2), ctx, control('d2'));
    expect(again.state).toBe('FAILED');
    expect(again.reason).toBe('OUTPUT_WRITE_FAILED');
    failing.clear();
    flushed.length = 0;
    const last = await runAttempt(attemptOf(3), ctx, control('d3'));
    expect(last.state).toBe('SUCCEEDED');
    expect(last.reason).toBe('ALREADY_COMMITTED');
    expect(last.message).toContain(`${attemptOf(1).attemptId}`);
    expect(last.outputPath).toBe(finalDir);
    // It flushed the directory holding the output before saying so.
    expect(flushed).toContain(dirname(finalDir));
  });
});

describe('with the ledger, a commit whose directory cannot be flushed', () => {
  it('stands (the record decided), and says the flush failed; a retry reports the same output', async () => {
    const ctx = contextWith(true);
    const finalDir = attemptOf(1).outputDir as string;
    failing.add(dirname(finalDir));
    const r = await runAttempt(attemptOf(1), ctx, control('d1'));
    expect(failedFlushes).toBeGreaterThan(0);
    expect(r.state).toBe('SUCCEEDED');
    expect(r.reason).toBe('COMMITTED');
    expect(r.message).toContain('the commit record stands');
    expect(r.message).toContain('could not be flushed');
    expect(existsSync(join(finalDir, '_SUCCESS'))).toBe(true);
    const again = await runAttempt(attemptOf(2), ctx, control('d2'));
    expect(again.reason).toBe('ALREADY_COMMITTED');
    expect(again.outputPath).toBe(finalDir);
  });
});

describe('with the ledger, a recorded commit rolled forward on this host', () => {
  it('is reported committed, and its message says when the directory it was renamed into could not be flushed', async () => {
    const { ledger, records } = memoryLedger();
    const ctx = attemptContext(dir, ledger);
    const first = attemptOf(1);
    const finalDir = first.outputDir as string;
    // The first attempt's record was written, then its host crashed before the rename.
    const staged = join(dirname(finalDir), '.locus-staging', 'crashed-before-rename');
    await mkdir(staged, { recursive: true });
    await writeFile(join(staged, '_SUCCESS'), `${JSON.stringify({ attemptId: first.attemptId })}\n`);
    records.set(ledgerIdOf(first.taskId, first.generation), { attemptId: first.attemptId, host: 'localhost', path: finalDir, size: 0, files: [], committedAt: Date.now(), staged });
    failing.add(dirname(finalDir));
    const r = await runAttempt(attemptOf(2), ctx, control('d2'));
    expect(r.state).toBe('SUCCEEDED');
    expect(r.reason).toBe('ALREADY_COMMITTED');
    expect(existsSync(join(finalDir, '_SUCCESS'))).toBe(true);
    expect(failedFlushes).toBeGreaterThan(0);
    expect(r.message).toContain('rolled into place here');
    expect(r.message).toContain('could not be flushed');
  });
});

describe.each([
  { ledger: 'without the ledger', withLedger: false },
  { ledger: 'with the ledger', withLedger: true },
])('a commit whose own files cannot be flushed (before anything is decided), $ledger', ({ withLedger }) => {
  it('fails the attempt with OUTPUT_WRITE_FAILED instead of throwing out of it; nothing is committed', async () => {
    const finalDir = attemptOf(1).outputDir as string;
    failingUnder.add(join(dirname(finalDir), '.locus-staging'));
    const r = await runAttempt(attemptOf(1), contextWith(withLedger), control('d1'));
    expect(failedFlushes).toBeGreaterThan(0);
    expect(r.state).toBe('FAILED');
    expect(r.reason).toBe('OUTPUT_WRITE_FAILED');
    expect(r.message).toContain('could not be committed on localhost');
    expect(r.message).toContain('EIO');
    expect(existsSync(join(finalDir, '_SUCCESS'))).toBe(false);
    // No record names its staging directory: it went with the attempt.
    const staging = join(dirname(finalDir), '.locus-staging');
    expect(existsSync(staging) ? await readdir(staging) : []).toEqual([]);
  });
});

describe('with the ledger, an output recorded as the task\'s whose rename into place fails', () => {
  it('ends the attempt LOST (uncounted), keeps the staging directory the record names; the next attempt here fails while the output cannot be placed, and rolls it into place once it can', async () => {
    const { ledger, records } = memoryLedger();
    const ctx = attemptContext(dir, ledger);
    const finalDir = attemptOf(1).outputDir as string;
    // The disk refuses the rename into place (EIO). (A file in the way would not do: that is
    // something the task did not commit, a conflict found before the record is written.)
    failingRenames.add(finalDir);
    const r = await runAttempt(attemptOf(1), ctx, control('d1'));
    expect(r.state).toBe('LOST');
    expect(r.reason).toBe('OUTPUT_WRITE_FAILED');
    expect(r.message).toContain('could not be renamed into');
    const record = records.get(ledgerIdOf(attemptOf(1).taskId, attemptOf(1).generation));
    expect(record?.attemptId).toBe(attemptOf(1).attemptId);
    expect(record?.staged !== undefined && existsSync(record.staged)).toBe(true);
    // While the final path stays taken, the output cannot be put in place: not reported committed.
    const blocked = await runAttempt(attemptOf(2), ctx, control('d2'));
    expect(blocked.state).toBe('FAILED');
    expect(blocked.reason).toBe('OUTPUT_WRITE_FAILED');
    expect(blocked.message).toContain('not in place');
    // Once the disk takes it, the next attempt here rolls the recorded output into place.
    failingRenames.delete(finalDir);
    const again = await runAttempt(attemptOf(3), ctx, control('d3'));
    expect(again.reason).toBe('ALREADY_COMMITTED');
    expect(existsSync(join(finalDir, '_SUCCESS'))).toBe(true);
  });
});

describe.each([
  { ledger: 'without the ledger', withLedger: false },
  { ledger: 'with the ledger', withLedger: true },
])('a commit on a disk that flushes, $ledger', ({ withLedger }) => {
  it('is reported committed, with its directory flushed and no warning', async () => {
    const finalDir = attemptOf(1).outputDir as string;
    const r = await runAttempt(attemptOf(1), contextWith(withLedger), control('d1'));
    expect(r.state).toBe('SUCCEEDED');
    expect(r.reason).toBe('COMMITTED');
    expect(r.message).not.toContain('flushed');
    expect(failedFlushes).toBe(0);
    expect(flushed).toContain(dirname(finalDir));
  });
});
