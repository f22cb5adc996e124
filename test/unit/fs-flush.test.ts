/**
 * The group commit's filesystem flush (src/executor/fs-flush.ts) with the real helper
 * (dist/native/locus-syncfs, which the set-up builds): flushes are shared only for directories
 * watched before, callers that asked meanwhile share at most two flushes and none rides on a
 * flush that began before it asked, a slow or stuck flush pauses sharing, an idle helper is
 * stopped, and every way the helper can fail (missing, dying, a failed syncfs, a filesystem it
 * does not share) sends callers back to their own fsyncs instead of failing their commits.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SharedRuns } from '../../src/core/shared-runs.js';
import { FilesystemFlusher, SLOW_FLUSH_MS, SLOW_FLUSH_PAUSE_MS, syncfsHelperPath } from '../../src/executor/fs-flush.js';

let dir: string;
const flushers: FilesystemFlusher[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-fsflush-'));
});
afterEach(async () => {
  for (const f of flushers.splice(0)) f.close();
  await rm(dir, { recursive: true, force: true });
});

function flusher(path: string | undefined, o: { now?: () => number; idleRetireMs?: number; maxWatchedDirs?: number } = {}): FilesystemFlusher {
  const f = new FilesystemFlusher(path, o);
  flushers.push(f);
  return f;
}

/** A helper that logs each request it gets to `log`, then hands it to the real one (to count flushes). */
function countingHelper(log: string): string {
  const real = syncfsHelperPath() as string;
  const p = join(dir, 'counting-helper.sh');
  writeFileSync(p, `#!/bin/sh\ntee -a '${log}' | '${real}'\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('SharedRuns', () => {
  it('serves many concurrent callers with at most two runs, each caller covered by a run begun after it asked', async () => {
    const runs = new SharedRuns();
    const events: string[] = [];
    let n = 0;
    let release: () => void = () => undefined;
    const op = async (): Promise<void> => {
      const i = ++n;
      events.push(`run ${i} begins`);
      if (i === 1) await new Promise<void>((r) => (release = r));
      events.push(`run ${i} ends`);
    };
    const first = runs.run('k', op).then(() => events.push('first done'));
    const later = Array.from({ length: 20 }, (_, i) => runs.run('k', op).then(() => events.push(`later ${i} done`)));
    expect(n).toBe(1);
    release();
    await Promise.all([first, ...later]);
    expect(n).toBe(2);
    // Every later caller finished only after run 2 (begun after they asked) ended.
    const run2End = events.indexOf('run 2 ends');
    for (let i = 0; i < 20; i++) expect(events.indexOf(`later ${i} done`)).toBeGreaterThan(run2End);
    // Once idle, a new caller starts a run of its own.
    await runs.run('k', op);
    expect(n).toBe(3);
  });
});

describe('FilesystemFlusher', () => {
  it('is built by the set-up', () => {
    expect(syncfsHelperPath()).toBeDefined();
  });

  it('flushes a watched directory through the helper, and refuses one never watched', async () => {
    const log = join(dir, 'requests.log');
    const f = flusher(countingHelper(log));
    expect(f.watchedBefore(dir)).toBe(false);
    expect(await f.flushShared(dir)).toBe(false);
    expect(await f.watch(dir)).toBe(true);
    expect(f.watchedBefore(dir)).toBe(true);
    writeFileSync(join(dir, 'part-0'), 'data');
    expect(await f.flushShared(dir)).toBe(true);
    const { readFileSync } = await import('node:fs');
    const requests = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]);
    expect(requests).toEqual(['W', 'S']);
  });

  it('shares one flush among callers that asked while another ran', async () => {
    const log = join(dir, 'requests.log');
    const f = flusher(countingHelper(log));
    expect(await f.watch(dir)).toBe(true);
    const results = await Promise.all(Array.from({ length: 40 }, () => f.flushShared(dir)));
    expect(results.every((r) => r)).toBe(true);
    const { readFileSync } = await import('node:fs');
    const flushes = readFileSync(log, 'utf8').trim().split('\n').filter((l) => l.startsWith('S ')).length;
    expect(flushes).toBeGreaterThanOrEqual(1);
    expect(flushes).toBeLessThanOrEqual(2);
  });

  it('pauses sharing after a slow flush, longer after slow ones in a row, and shares again after each pause', async () => {
    let clock = 0;
    let flushTakes = SLOW_FLUSH_MS + 1;
    const p = join(dir, 'helper.sh');
    writeFileSync(p, `#!/bin/sh\nwhile read op id path; do if [ "$op" = W ]; then echo "$id 0 1"; else echo "$id 0"; fi; done\n`);
    chmodSync(p, 0o755);
    const f = flusher(p, { now: () => clock });
    expect(await f.watch(dir)).toBe(true);
    /** One shared flush that takes `flushTakes` on the fake clock. */
    const flush = async (): Promise<boolean> => {
      const r = f.flushShared(dir);
      clock += flushTakes;
      return await r;
    };
    expect(await flush()).toBe(true);
    // Paused for SLOW_FLUSH_PAUSE_MS from the slow flush's end.
    clock += SLOW_FLUSH_PAUSE_MS - 1;
    expect(await f.flushShared(dir)).toBe(false);
    clock += 1;
    expect(await flush()).toBe(true);
    // The second slow one in a row: twice as long.
    clock += 2 * SLOW_FLUSH_PAUSE_MS - 1;
    expect(await f.flushShared(dir)).toBe(false);
    clock += 1;
    flushTakes = 1;
    expect(await flush()).toBe(true);
    // A prompt flush ended the doubling: the next slow one pauses for the first length again.
    flushTakes = SLOW_FLUSH_MS + 1;
    expect(await flush()).toBe(true);
    clock += SLOW_FLUSH_PAUSE_MS;
    expect(await f.flushShared(dir)).toBe(true);
  });

  it('sends callers back to their own fsyncs without a helper, or when it is not there', async () => {
    const none = flusher(undefined);
    expect(await none.watch(dir)).toBe(false);
    expect(await none.flushShared(dir)).toBe(false);
    const missing = flusher(join(dir, 'no-such-helper'));
    expect(await missing.watch(dir)).toBe(false);
    expect(missing.watchedBefore(dir)).toBe(false);
    expect(await missing.flushShared(dir)).toBe(false);
  });

  it('falls back for good when the helper dies, failing no caller', async () => {
    const p = join(dir, 'dying-helper.sh');
    // Acknowledges the watch, then exits at the first flush without answering it.
    writeFileSync(p, '#!/bin/sh\nread op id arg\necho "$id 0 1"\nread op id arg\nexit 0\n');
    chmodSync(p, 0o755);
    const f = flusher(p);
    expect(await f.watch(dir)).toBe(true);
    expect(await f.flushShared(dir)).toBe(false);
    expect(f.watchedBefore(dir)).toBe(false);
    expect(await f.flushShared(dir)).toBe(false);
  });

  it('sends callers back to their own fsyncs after a failed flush, and never shares that filesystem again', async () => {
    const p = join(dir, 'eio-helper.sh');
    writeFileSync(p, '#!/bin/sh\nwhile read op id arg; do if [ "$op" = W ]; then echo "$id 0 7"; else echo "$id 5"; fi; done\n');
    chmodSync(p, 0o755);
    const f = flusher(p);
    expect(await f.watch(dir)).toBe(true);
    expect(await f.flushShared(dir)).toBe(false);
    expect(f.watchedBefore(dir)).toBe(false);
    // Another directory on the same filesystem (device 7) is not shared either.
    const other = join(dir, 'other');
    mkdirSync(other);
    expect(await f.watch(other)).toBe(true);
    expect(f.watchedBefore(other)).toBe(false);
    expect(await f.flushShared(other)).toBe(false);
  });

  it('lets a caller flush its own files when a shared flush does not end within SLOW_FLUSH_MS, and pauses sharing', async () => {
    const p = join(dir, 'stuck-helper.sh');
    writeFileSync(p, '#!/bin/sh\nwhile read op id arg; do if [ "$op" = W ]; then echo "$id 0 7"; else sleep 2; echo "$id 0"; fi; done\n');
    chmodSync(p, 0o755);
    const f = flusher(p);
    expect(await f.watch(dir)).toBe(true);
    const began = performance.now();
    expect(await f.flushShared(dir)).toBe(false);
    const waited = performance.now() - began;
    expect(waited).toBeGreaterThanOrEqual(SLOW_FLUSH_MS - 5);
    expect(waited).toBeLessThan(1500);
    // Paused: the next caller does not wait at all.
    const again = performance.now();
    expect(await f.flushShared(dir)).toBe(false);
    expect(performance.now() - again).toBeLessThan(50);
  });

  it('shares only filesystems whose syncfs reports errors (not /proc, say)', async () => {
    const f = flusher(syncfsHelperPath());
    expect(await f.watch('/proc')).toBe(false);
    expect(await f.watch(dir)).toBe(true);
  });

  it('stops an idle helper (its descriptors would keep filesystems mounted) and starts a new one when asked again', async () => {
    const log = join(dir, 'requests.log');
    const f = flusher(countingHelper(log), { idleRetireMs: 300 });
    expect(await f.watch(dir)).toBe(true);
    expect(await f.flushShared(dir)).toBe(true);
    await new Promise((r) => setTimeout(r, 700));
    expect(f.watchedBefore(dir)).toBe(false);
    expect(await f.flushShared(dir)).toBe(false);
    expect(await f.watch(dir)).toBe(true);
    expect(await f.flushShared(dir)).toBe(true);
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' ')[0])).toEqual(['W', 'S', 'W', 'S']);
  });

  it('remembers a bounded number of watched directories, and watches a forgotten one again', async () => {
    const f = flusher(syncfsHelperPath(), { maxWatchedDirs: 3 });
    const dirs = ['a', 'b', 'c', 'd'].map((n) => join(dir, n));
    for (const d of dirs) mkdirSync(d);
    for (const d of dirs.slice(0, 3)) expect(await f.watch(d)).toBe(true);
    expect(dirs.slice(0, 3).every((d) => f.watchedBefore(d))).toBe(true);
    // The fourth clears the others: their next attempts flush their own files until watched again.
    expect(await f.watch(dirs[3] as string)).toBe(true);
    expect(f.watchedBefore(dirs[3] as string)).toBe(true);
    expect(f.watchedBefore(dirs[0] as string)).toBe(false);
    expect(await f.watch(dirs[0] as string)).toBe(true);
    expect(await f.flushShared(dirs[0] as string)).toBe(true);
  });
});
