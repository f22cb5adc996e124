/**
 * An output is reported committed only once the rename that committed it is on disk. When the
 * directory the output was renamed into cannot be flushed (EIO from its fsync), the attempt ends
 * FAILED with OUTPUT_WRITE_FAILED (counted: a failing disk ends in the task's failure, not in
 * attempts placed again without end), with and without the commit ledger. An attempt that
 * finds the task committed by another reports ALREADY_COMMITTED only after flushing that
 * directory itself, so the winner's lost flush is made good by the next attempt once the disk
 * is back. node:fs is wrapped: every call goes through, and the fsync of a directory named in
 * `failing` fails with EIO. Shared flushes are off (LOCUS_SYNCFS_PATH=''): each commit flushes
 * its own directories, which is where the fault is put.
 */
import type * as FsModule from 'node:fs';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** Directories whose fsync fails. */
const failing = new Set<string>();
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
    open: async (...args: Parameters<typeof real.promises.open>): ReturnType<typeof real.promises.open> => {
      const fh = await real.promises.open(...args);
      const path = String(args[0]);
      if (!failing.has(path)) return fh;
      return Object.assign(Object.create(fh) as typeof fh, { sync: async () => { throw eio(path); }, close: () => fh.close() });
    },
  };
  const wrapped = {
    ...real,
    promises,
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
      if (path !== undefined && failing.has(path)) {
        setImmediate(() => cb(eio(path)));
        return;
      }
      real.fsync(fd, cb);
    },
  };
  return { ...wrapped, default: wrapped };
});

process.env['LOCUS_SYNCFS_PATH'] = '';
const { runAttempt } = await import('../../src/executor/attempt.js');
const { attemptContext, attemptPayload, memoryLedger } = await import('./attempt-fixture.js');
type AttemptContext = import('../../src/executor/attempt.js').AttemptContext;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-not-durable-'));
  failing.clear();
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

describe.each([
  { ledger: 'without the ledger (the rename decides)', withLedger: false },
  { ledger: 'with the ledger', withLedger: true },
])('a commit whose directory cannot be flushed, $ledger', ({ withLedger }) => {
  function context(): AttemptContext {
    const ctx = attemptContext(dir, memoryLedger().ledger);
    if (withLedger) return ctx;
    if (ctx.dataPlane === undefined) throw new Error('the fixture has a data plane');
    const { ledger: _ledger, ...plane } = ctx.dataPlane;
    return { ...ctx, dataPlane: plane };
  }

  it('fails the attempt (OUTPUT_WRITE_FAILED, counted) instead of reporting a commit the disk may not keep', async () => {
    const ctx = context();
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

  it('a later attempt reports the commit only once it could flush it itself', async () => {
    const ctx = context();
    const finalDir = attemptOf(1).outputDir as string;
    failing.add(dirname(finalDir));
    expect((await runAttempt(attemptOf(1), ctx, control('d1'))).reason).toBe('OUTPUT_WRITE_FAILED');
    if (!withLedger) {
      // The disk still refuses: the next attempt finds the commit but cannot make it durable.
      const again = await runAttempt(attemptOf(2), ctx, control('d2'));
      expect(again.state).toBe('FAILED');
      expect(again.reason).toBe('OUTPUT_WRITE_FAILED');
    }
    failing.clear();
    const flushesBefore = failedFlushes;
    const last = await runAttempt(attemptOf(3), ctx, control('d3'));
    expect(last.state).toBe('SUCCEEDED');
    expect(last.reason).toBe('ALREADY_COMMITTED');
    expect(last.message).toContain(`${attemptOf(1).attemptId}`);
    expect(last.outputPath).toBe(finalDir);
    expect(failedFlushes).toBe(flushesBefore);
  });

  it('commits as before when the disk flushes', async () => {
    const r = await runAttempt(attemptOf(1), context(), control('d1'));
    expect(r.state).toBe('SUCCEEDED');
    expect(r.reason).toBe('COMMITTED');
    expect(failedFlushes).toBe(0);
  });
});
