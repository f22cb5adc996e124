/**
 * The order of an output commit's flushes, on a real filesystem: the attempt directory is
 * flushed once, after its `_SUCCESS` marker exists (a flush before the marker was made leaves
 * the marker's entry to chance across a host crash), and the marker's descriptor is closed only
 * after its own flush has ended (closed earlier, a flush still in the thread pool could reach
 * whatever file reuses the number). Once the stage's filesystem is watched by the flush helper,
 * a later attempt flushes nothing of its own: the shared flush (syncfs) begins after its marker
 * exists. node:fs is wrapped, not replaced: every call goes through; the helper is the real one
 * behind a script that notes, at each flush, how many markers wait in the staging directory.
 */
import type * as FsModule from 'node:fs';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync as writeFileSyncReal } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { syncfsHelperPath } from '../../src/executor/fs-flush.js';

const events: string[] = [];
/** Paths of interest, set per test: the attempt directory and its marker. */
const watched = { dir: '', marker: '' };
const markerFds = new Set<number>();

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof FsModule>();
  const note = (path: unknown, fd: number): void => {
    if (path === watched.dir) events.push(`dir opened (marker there: ${real.existsSync(watched.marker)})`);
    if (path === watched.marker) markerFds.add(fd);
  };
  const wrapped = {
    ...real,
    openSync: (...args: Parameters<typeof real.openSync>): number => {
      const fd = real.openSync(...args);
      note(args[0], fd);
      return fd;
    },
    open: (path: FsModule.PathLike, flags: FsModule.OpenMode, cb: (err: NodeJS.ErrnoException | null, fd: number) => void): void => {
      real.open(path, flags, (err, fd) => {
        if (!err) note(path, fd);
        cb(err, fd);
      });
    },
    fsync: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void => {
      real.fsync(fd, (err) => {
        if (markerFds.has(fd)) events.push('marker flushed');
        cb(err);
      });
    },
    closeSync: (fd: number): void => {
      if (markerFds.delete(fd)) events.push('marker closed');
      real.closeSync(fd);
    },
    close: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void => {
      if (markerFds.delete(fd)) events.push('marker closed');
      real.close(fd, cb);
    },
  };
  return { ...wrapped, default: wrapped };
});

const helperDir = mkdtempSync(join(tmpdir(), 'locus-flush-helper-'));
const helperLog = join(helperDir, 'flushes.log');
const realHelper = syncfsHelperPath();
if (realHelper === undefined) throw new Error('dist/native/locus-syncfs is not built (npm run build builds it)');
writeFileSyncReal(join(helperDir, 'helper.sh'), [
  '#!/bin/sh',
  // A flush names the device; the markers are counted under the directory watched last.
  'while read op id arg; do',
  `  if [ "$op" = S ]; then echo "S $(find "$watched" -path '*/.locus-staging/*' -name _SUCCESS | wc -l)" >> '${helperLog}'; fi`,
  `  if [ "$op" = W ]; then watched="$arg"; echo W >> '${helperLog}'; fi`,
  '  echo "$op $id $arg"',
  `done | '${realHelper}'`,
  '',
].join('\n'));
chmodSync(join(helperDir, 'helper.sh'), 0o755);
process.env['LOCUS_SYNCFS_PATH'] = join(helperDir, 'helper.sh');
const { COMMIT_MARKER, commitOutput, planOutput, prepareAttemptDir, releaseStaging } = await import('../../src/executor/output.js');
type CommittedOutput = import('../../src/executor/contract.js').CommittedOutput;

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'locus-flush-order-'));
  events.length = 0;
  markerFds.clear();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

afterAll(async () => {
  await rm(helperDir, { recursive: true, force: true });
});

async function commitWatched(withLedger: boolean, index = '00001'): Promise<string> {
  const plan = planOutput(join(root, 'stage', index), `job.0.${Number(index)}.a1`);
  await prepareAttemptDir(plan);
  await writeFile(join(plan.attemptDir, 'part-0'), 'data');
  watched.dir = plan.attemptDir;
  watched.marker = join(plan.attemptDir, COMMIT_MARKER);
  const attemptId = `job.0.${Number(index)}.a1`;
  const decide = async (): Promise<{ won: boolean; record: CommittedOutput }> =>
    ({ won: true, record: { attemptId, host: 'h', path: plan.finalDir, size: 4, files: [], committedAt: 0 } });
  try {
    const outcome = await commitOutput(plan, attemptId, withLedger ? decide : undefined);
    expect(outcome.kind).toBe('committed');
    expect(existsSync(join(plan.finalDir, COMMIT_MARKER))).toBe(true);
    expect(JSON.parse(readFileSync(join(plan.finalDir, COMMIT_MARKER), 'utf8')).attemptId).toBe(attemptId);
  } finally {
    await releaseStaging(plan);
  }
  return events.join(' | ');
}

describe('the flushes of an output commit', () => {
  for (const withLedger of [false, true]) {
    it(`share one flush of the filesystem, begun after the marker exists, once the stage is watched (${withLedger ? 'with' : 'without'} a ledger)`, async () => {
      // The stage's first attempt flushes its own files and starts the watch.
      await commitWatched(withLedger, '00001');
      await vi.waitFor(() => expect(existsSync(helperLog) && readFileSync(helperLog, 'utf8').includes('W')).toBe(true));
      writeFileSyncReal(helperLog, '');
      events.length = 0;
      const order = await commitWatched(withLedger, '00002');
      // Nothing flushed on its own: no marker fsync, no attempt-directory flush.
      expect(events, order).toEqual(['marker closed']);
      // Two shared flushes: the first (the marker and its directory) with the marker in staging,
      // the second after the rename (the stage directory).
      expect(readFileSync(helperLog, 'utf8').trim().split('\n')).toEqual(['S 1', 'S 0']);
    });

    it(`flush the attempt directory once, after the marker exists, and close the marker after its flush (${withLedger ? 'with' : 'without'} a ledger)`, async () => {
      const order = await commitWatched(withLedger);
      const dirFlushes = events.filter((e) => e.startsWith('dir opened'));
      expect(dirFlushes, order).toEqual(['dir opened (marker there: true)']);
      expect(events.indexOf('marker flushed'), order).toBeGreaterThanOrEqual(0);
      expect(events.indexOf('marker closed'), order).toBeGreaterThan(events.indexOf('marker flushed'));
    });
  }
});
