/**
 * CgroupPool (src/executor/isolation/cgroup-pool.ts) over a driver that makes plain directories:
 * a pool's cgroups are named `locus-cg-<n>` and taken again in place (never renamed) by the next
 * container with the same limits under the same parent; a cgroup whose directory went with its
 * parent is not counted as a spare; a driver that cannot restart counters names cgroups after
 * their containers and removes them at the end.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CgroupPool } from '../../src/executor/isolation/cgroup-pool.js';
import type { CgroupDriver, ContainerCgroup } from '../../src/executor/isolation/cgroups.js';

let base: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'locus-pool-'));
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

function fakeCgroup(rel: readonly string[]): ContainerCgroup {
  const dir = join(base, ...rel);
  return {
    dirs: [dir],
    addProcess: async () => undefined,
    procsFiles: () => [join(dir, 'cgroup.procs')],
    pids: async () => [],
    freeze: async () => undefined,
    thaw: async () => undefined,
    killAll: async () => false,
    stats: async () => ({ cpuNs: 0, memPeakBytes: 0, memCurrentBytes: 0, oomKills: 0, pidsCurrent: 0 }),
    watch: async () => ({ oomKills: 0, memCurrentBytes: undefined }),
    remove: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A driver over directories; `reusable` false drops `reuse` (as cgroup2). Counts what it was asked. */
function fakeDriver(reusable: boolean): CgroupDriver & { created: string[]; reused: string[] } {
  const created: string[] = [];
  const reused: string[] = [];
  return {
    version: reusable ? 'v1' : 'v2',
    bases: [base],
    created,
    reused,
    create: async (rel) => {
      mkdirSync(join(base, ...rel), { recursive: true });
      created.push(rel.join('/'));
      return fakeCgroup(rel);
    },
    open: (rel) => fakeCgroup(rel),
    ...(reusable ? { reuse: (rel: readonly string[]) => {
      reused.push(rel.join('/'));
      return fakeCgroup(rel);
    } } : {}),
  };
}

const root = ['locus', 'owner'];
const small = { cpus: 0.1, memMiB: 32, diskMiB: 0, pids: 0 };

describe('cgroup pool', () => {
  it('names its cgroups locus-cg-<n> and gives an emptied one to the next container with the same limits, in place', async () => {
    const driver = fakeDriver(true);
    const pool = new CgroupPool(driver, root);
    const a = await pool.create(root, 'task-a', small);
    expect(a.rel).toEqual([...root, 'locus-cg-1']);
    await pool.release(a.cg, a.rel, small, 0, false);
    expect(pool.size).toBe(1);
    expect(existsSync(join(base, ...a.rel))).toBe(true);
    const b = await pool.create(root, 'task-b', small);
    expect(b.rel).toEqual(a.rel);
    expect(driver.reused).toEqual([a.rel.join('/')]);
    expect(pool.reused).toBe(1);
    expect(pool.size).toBe(0);
    // Other limits, or another parent, never take it.
    await pool.release(b.cg, b.rel, small, 0, false);
    const c = await pool.create(root, 'task-c', { ...small, memMiB: 64 });
    expect(c.rel).toEqual([...root, 'locus-cg-2']);
    const nested = await pool.create(c.rel, 'task-d', small);
    expect(nested.rel).toEqual([...c.rel, 'locus-cg-3']);
    expect(pool.size).toBe(1);
  });

  it('keeps no spare of a cgroup whose directory went with its parent, nor of one that held nested containers', async () => {
    const driver = fakeDriver(true);
    const pool = new CgroupPool(driver, root);
    const parent = await pool.create(root, 'parent', small);
    const child = await pool.create(parent.rel, 'child', small);
    // The parent ends first: it held a nested container, so it is removed, with the child's directory.
    await pool.release(parent.cg, parent.rel, small, 0, true);
    expect(existsSync(join(base, ...parent.rel))).toBe(false);
    await pool.release(child.cg, child.rel, small, 0, false);
    expect(pool.size).toBe(0);
    // A container under another parent later gets a new cgroup, not the child's gone one.
    const other = await pool.create(root, 'other', small);
    expect(other.rel).toEqual([...root, 'locus-cg-3']);
  });

  it('where counters cannot restart, names cgroups after their containers and removes them at the end', async () => {
    const driver = fakeDriver(false);
    const pool = new CgroupPool(driver, root);
    expect(pool.reusable).toBe(false);
    const a = await pool.create(root, 'task-a', small);
    expect(a.rel).toEqual([...root, 'task-a']);
    await pool.release(a.cg, a.rel, small, 0, false);
    expect(pool.size).toBe(0);
    expect(existsSync(join(base, ...a.rel))).toBe(false);
  });
});
