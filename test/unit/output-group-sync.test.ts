/**
 * Group commit of the parent directory's fsync after output renames
 * (syncDirectoryShared): concurrent commits into one stage directory share
 * flushes, yet every caller is covered by a flush that began after it asked.
 * The filesystem is real; only `open` is observed (and held back in one case)
 * to count and order the flushes.
 */
import { promises as fsp } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { syncDirectoryShared } from '../../src/executor/output.js';

let root: string;
/**
 * The stage directory, reached through a symbolic link: its filesystem is then left to a statfs
 * (local-fs.ts judgeLocalFs), so the flushes go through the thread pool, where the test can
 * observe each `open` and hold one back.
 */
let dir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'locus-groupsync-'));
  await mkdir(join(root, 'real'));
  await symlink(join(root, 'real'), join(root, 'link'));
  dir = join(root, 'link');
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(root, { recursive: true, force: true });
});

describe('shared directory fsync', () => {
  it('serves many concurrent callers with at most two flushes', async () => {
    const open = vi.spyOn(fsp, 'open');
    await Promise.all(Array.from({ length: 50 }, () => syncDirectoryShared(dir)));
    const flushes = open.mock.calls.filter((c) => c[0] === dir).length;
    expect(flushes).toBeGreaterThanOrEqual(1);
    expect(flushes).toBeLessThanOrEqual(2);
  });

  it('never lets a caller ride on a flush that began before it asked', async () => {
    const real = fsp.open.bind(fsp);
    const events: string[] = [];
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    let n = 0;
    vi.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
      if (args[0] === dir) {
        const i = ++n;
        events.push(`flush ${i} begins`);
        if (i === 1) await held;
      }
      return real(...args);
    });
    const first = syncDirectoryShared(dir).then(() => events.push('first done'));
    // The first flush is under way (held): a later caller must wait for a second one.
    await vi.waitFor(() => expect(events).toContain('flush 1 begins'));
    const second = syncDirectoryShared(dir).then(() => events.push('second done'));
    const third = syncDirectoryShared(dir).then(() => events.push('third done'));
    release();
    await Promise.all([first, second, third]);
    expect(n).toBe(2);
    expect(events.indexOf('flush 2 begins')).toBeGreaterThan(events.indexOf('flush 1 begins'));
    expect(events.indexOf('second done')).toBeGreaterThan(events.indexOf('flush 2 begins'));
    expect(events.indexOf('third done')).toBeGreaterThan(events.indexOf('flush 2 begins'));
  });

  it('starts afresh once a directory is idle, and reports a failed flush to its callers', async () => {
    await syncDirectoryShared(dir);
    const open = vi.spyOn(fsp, 'open');
    await syncDirectoryShared(dir);
    expect(open.mock.calls.filter((c) => c[0] === dir)).toHaveLength(1);
    await expect(syncDirectoryShared(join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
    // The failed directory left nothing behind: the next call flushes again.
    await expect(syncDirectoryShared(join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
    expect(open.mock.calls.filter((c) => c[0] === join(dir, 'missing'))).toHaveLength(2);
  });
});
