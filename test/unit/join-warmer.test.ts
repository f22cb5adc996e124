/**
 * JoinWarmer and ownProcsFile (src/executor/isolation/cgroups.ts): a launch after a quiet spell of
 * JOIN_QUIET_MS starts one no-op move of this process into its own cgroup (so the kernel's grace
 * period passes while the launch prepares), launches close together start none, a failing write
 * turns it off; the own cgroup.procs is found in /proc/self/cgroup for v1 (pids) and v2; and on
 * this host the real no-op move leaves the process where it was.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectCgroupLayout, JOIN_QUIET_MS, JoinWarmer, ownProcsFile } from '../../src/executor/isolation/cgroups.js';

describe('JoinWarmer', () => {
  it('starts a no-op move only after a quiet spell, and stops for good when a write fails', async () => {
    let now = 1000;
    const writes: string[] = [];
    let fail = false;
    const w = new JoinWarmer('/cg/cgroup.procs', () => now, async (file, text) => {
      writes.push(`${file}:${text}`);
      if (fail) throw new Error('EROFS');
    });
    w.launching();
    expect(writes).toEqual([`/cg/cgroup.procs:${process.pid}`]);
    // A burst: the first launch's join keeps the lock warm for the rest.
    now += 2;
    w.launching();
    now += JOIN_QUIET_MS - 1;
    w.launching();
    expect(writes).toHaveLength(1);
    now += JOIN_QUIET_MS;
    fail = true;
    w.launching();
    expect(writes).toHaveLength(2);
    await new Promise((r) => setImmediate(r));
    now += JOIN_QUIET_MS;
    w.launching();
    expect(writes).toHaveLength(2);
    expect(w.started).toBe(2);
    // Nothing to write to: nothing started.
    const none = new JoinWarmer(undefined, () => 0, async () => undefined);
    none.launching();
    expect(none.started).toBe(0);
  });

  it('finds this process\'s cgroup.procs in /proc/self/cgroup: v1 in the pids hierarchy, v2 in the unified one', () => {
    const v1 = { version: 'v1' as const, mounts: new Map([['pids', '/sys/fs/cgroup/pids'], ['cpu', '/sys/fs/cgroup/cpu']]) };
    expect(ownProcsFile('12:cpu,cpuacct:/a\n8:pids:/system.slice/x.service\n0::/\n', v1)).toBe('/sys/fs/cgroup/pids/system.slice/x.service/cgroup.procs');
    expect(ownProcsFile('0::/user.slice/s-1.scope\n', { version: 'v2', mount: '/sys/fs/cgroup' })).toBe('/sys/fs/cgroup/user.slice/s-1.scope/cgroup.procs');
    expect(ownProcsFile('3:cpu:/\n', v1)).toBeUndefined();
    expect(ownProcsFile('8:pids:/\n', { version: 'none', why: 'x' })).toBeUndefined();
  });

  it('on this host, the no-op move leaves the process in its cgroups', async () => {
    const layout = detectCgroupLayout();
    const file = ownProcsFile(readFileSync('/proc/self/cgroup', 'utf8'), layout);
    if (file === undefined || process.getuid?.() !== 0) {
      console.log('SKIPPED JoinWarmer on this host: no cgroups Locus can use, or not root');
      return;
    }
    const before = readFileSync('/proc/self/cgroup', 'utf8');
    let failed = false;
    const w = new JoinWarmer(file, () => performance.now());
    w.launching();
    // The write runs on the thread pool: wait for it through a second, direct one.
    await import('node:fs/promises').then((f) => f.writeFile(file, String(process.pid))).catch(() => (failed = true));
    expect(failed).toBe(false);
    expect(readFileSync('/proc/self/cgroup', 'utf8')).toBe(before);
  });
});
