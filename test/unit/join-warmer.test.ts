/**
 * JoinWarmer, ownProcsFile and ownProcsLocator (src/executor/isolation/join-warmer.ts): a launch after a
 * quiet spell of JOIN_QUIET_MS starts one no-op move of this process into its own cgroup (so the
 * kernel's grace period passes while the launch prepares); launches close together, or while a
 * move is under way, start none; a move that fails, or finds no cgroup, turns it off; the own
 * cgroup.procs is found in /proc/self/cgroup for v1 (pids) and v2, never outside the namespace's
 * root; and on this host the real no-op move leaves the process where it was.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectCgroupLayout } from '../../src/executor/isolation/cgroups.js';
import { JOIN_QUIET_MS, JoinWarmer, ownProcsFile, ownProcsLocator } from '../../src/executor/isolation/join-warmer.js';

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe('JoinWarmer', () => {
  it('starts a no-op move only after a quiet spell, one at a time, and stops for good when a move fails', async () => {
    let now = 1000;
    const writes: string[] = [];
    let fail = false;
    let hold: (() => void) | undefined;
    const w = new JoinWarmer(async () => '/cg/cgroup.procs', () => now, async (file, text) => {
      writes.push(`${file}:${text}`);
      if (hold !== undefined) await new Promise<void>((r) => (hold = r));
      if (fail) throw new Error('EROFS');
    });
    w.launching();
    await settle();
    expect(writes).toEqual([`/cg/cgroup.procs:${process.pid}`]);
    // A burst: the first launch's join keeps the lock warm for the rest.
    now += 2;
    w.launching();
    now += JOIN_QUIET_MS - 1;
    w.launching();
    await settle();
    expect(writes).toHaveLength(1);
    // A move still waiting in the kernel: the next quiet launch starts no second one.
    hold = () => undefined;
    now += JOIN_QUIET_MS;
    w.launching();
    await settle();
    now += JOIN_QUIET_MS;
    w.launching();
    await settle();
    expect(writes).toHaveLength(2);
    const release = hold;
    hold = undefined;
    release();
    await settle();
    // A failing move turns it off.
    fail = true;
    now += JOIN_QUIET_MS;
    w.launching();
    await settle();
    expect(writes).toHaveLength(3);
    expect(w.working).toBe(false);
    now += JOIN_QUIET_MS;
    w.launching();
    await settle();
    expect(writes).toHaveLength(3);
    expect(w.started).toBe(3);
    // No cgroup found: off, nothing written; none at all: nothing started.
    const lost = new JoinWarmer(async () => undefined, () => 0, async () => { throw new Error('not asked'); });
    lost.launching();
    await settle();
    expect(lost.working).toBe(false);
    const none = new JoinWarmer(undefined, () => 0, async () => undefined);
    none.launching();
    expect(none.started).toBe(0);
  });

  it('finds this process\'s cgroup.procs in /proc/self/cgroup: v1 in the pids hierarchy, v2 in the unified one, never above the namespace root', () => {
    const v1 = { version: 'v1' as const, mounts: new Map([['pids', '/sys/fs/cgroup/pids'], ['cpu', '/sys/fs/cgroup/cpu']]) };
    expect(ownProcsFile('12:cpu,cpuacct:/a\n8:pids:/system.slice/x.service\n0::/\n', v1)).toBe('/sys/fs/cgroup/pids/system.slice/x.service/cgroup.procs');
    expect(ownProcsFile('1:name=systemd:/x\n8:cpu,pids:/y\n', v1)).toBe('/sys/fs/cgroup/pids/y/cgroup.procs');
    expect(ownProcsFile('0::/user.slice/s-1.scope\n', { version: 'v2', mount: '/sys/fs/cgroup' })).toBe('/sys/fs/cgroup/user.slice/s-1.scope/cgroup.procs');
    expect(ownProcsFile('0::/../../x\n', { version: 'v2', mount: '/sys/fs/cgroup' })).toBeUndefined();
    expect(ownProcsFile('3:cpu:/\n', v1)).toBeUndefined();
    expect(ownProcsFile('8:pids:/\n', { version: 'none', why: 'x' })).toBeUndefined();
  });

  it('on this host, finds its own cgroup.procs (listing it) and the no-op move leaves the process in its cgroups', async () => {
    const layout = detectCgroupLayout();
    const file = await ownProcsLocator(layout)().catch(() => undefined);
    if (file === undefined || process.getuid?.() !== 0) {
      console.log('SKIPPED JoinWarmer on this host: no cgroups Locus can use, or not root');
      return;
    }
    expect(readFileSync(file, 'utf8').split('\n')).toContain(String(process.pid));
    const before = readFileSync('/proc/self/cgroup', 'utf8');
    const w = new JoinWarmer(ownProcsLocator(layout));
    w.launching();
    for (let i = 0; i < 200 && w.moving; i++) await settle();
    expect(w.started).toBe(1);
    expect(w.moving).toBe(false);
    expect(w.working).toBe(true);
    expect(readFileSync('/proc/self/cgroup', 'utf8')).toBe(before);
  });
});
