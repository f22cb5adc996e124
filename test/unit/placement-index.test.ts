import { describe, expect, it } from 'vitest';
import {
  PendingIndex, decodePendingSplits, encodePendingSplits, PENDING_SPLITS_FORMAT,
} from '../../src/scheduler/placement/index.js';
import { maxNodeLocal } from '../../bench/placement.js';
import { task } from './placement-builders.js';

describe('PendingIndex', () => {
  it('adds, updates and removes; lookups follow hosts, racks, volumes and tenants', () => {
    const ix = new PendingIndex();
    ix.add(task({ taskId: 'a', preferredHosts: ['r1-h1', 'r2-h1'] }));
    ix.add(task({ taskId: 'b', preferredHosts: ['r1-h1'], tenant: 'b', jobId: 'jb' }));
    ix.add(task({ taskId: 'v', volumeId: 'vol', jobId: 'jv' }));
    expect(ix.size).toBe(3);
    expect(ix.queuesAtHost('r1-h1').map((q) => q.jobId).sort()).toEqual(['jb', 'job1']);
    expect(ix.queuesAtRack('r2').map((q) => q.jobId)).toEqual(['job1']);
    expect(ix.queuesWithVolume('vol').map((q) => q.jobId)).toEqual(['jv']);
    expect([...ix.tenantNames()].sort()).toEqual(['a', 'b']);

    // Update moves the task to its new host.
    ix.update(task({ taskId: 'a', preferredHosts: ['r3-h3'] }));
    expect(ix.size).toBe(3);
    expect(ix.queuesAtHost('r1-h1').map((q) => q.jobId)).toEqual(['jb']);
    expect(ix.queuesAtHost('r3-h3').map((q) => q.jobId)).toEqual(['job1']);
    expect(ix.queuesAtRack('r2')).toEqual([]);

    expect(ix.remove('b')?.taskId).toBe('b');
    expect(ix.remove('b')).toBeUndefined();
    expect(ix.queuesAtHost('r1-h1')).toEqual([]);
    expect([...ix.tenantNames()]).toEqual(['a']);
    expect(ix.removeJob('jv')).toBe(1);
    expect([...ix.tasks()].map((t) => t.taskId)).toEqual(['a']);
  });

  it('drops dead entries lazily and compacts buckets so memory follows the pending set', () => {
    const ix = new PendingIndex();
    for (let i = 0; i < 1000; i++) ix.add(task({ taskId: `t${i}`, preferredHosts: ['r1-h1'] }));
    for (let i = 0; i < 990; i++) ix.remove(`t${i}`);
    const q = ix.queuesAtHost('r1-h1')[0];
    const b = q?.hosts.get('r1-h1');
    expect(b?.live).toBe(10);
    // Compaction keeps the array near the live count rather than 1000.
    expect((b?.items.length ?? 0) - (b?.head ?? 0)).toBeLessThan(100);
    const first = b?.items[b.start(ix.marks)];
    expect(first === undefined ? undefined : ix.entryAt(first).task.taskId).toBe('t990');
  });

  it('reuses a removed task\'s number only after every bucket has let go of it', () => {
    const ix = new PendingIndex();
    const keep = Array.from({ length: 1000 }, (_, i) => `keep${i}`);
    for (const id of keep) ix.add(task({ taskId: id, preferredHosts: ['r1-h1'] }));
    // Removed from r1-h1's bucket too few to compact it there (lazy deletion keeps their numbers)...
    for (let i = 0; i < 500; i++) ix.add(task({ taskId: `gone${i}`, preferredHosts: ['r1-h1'] }));
    for (let i = 0; i < 5000; i++) ix.add(task({ taskId: `x${i}`, jobId: 'jx', preferredHosts: ['r1-h3'] }));
    for (let i = 0; i < 500; i++) ix.remove(`gone${i}`);
    // ...until enough removals elsewhere make numbers reusable: the sweep must compact r1-h1's bucket first.
    for (let i = 0; i < 5000; i++) ix.remove(`x${i}`);
    for (let i = 0; i < 5500; i++) ix.add(task({ taskId: `b${i}`, jobId: 'jb', preferredHosts: ['r1-h2'] }));
    expect(ix.entry('b0')?.no).toBeLessThan(6500);
    const b = ix.queuesAtHost('r1-h1')[0]?.hosts.get('r1-h1');
    expect(b?.live).toBe(1000);
    // Every number the bucket holds is DEAD or one of its own tasks, never a newer task's.
    const named = (b?.items ?? []).filter((no) => ix.alive(no)).map((no) => ix.entryAt(no).task.taskId);
    expect(named).toEqual(keep);
    expect(ix.removeJob('jb')).toBe(5500);
    expect([...ix.tasks()].map((t) => t.taskId)).toEqual(keep);
  });

  it('orders a tenant\'s queues by priority, then age', () => {
    const ix = new PendingIndex();
    ix.add(task({ taskId: 'low', jobId: 'j1', priority: 0 }));
    ix.add(task({ taskId: 'high', jobId: 'j2', priority: 9 }));
    ix.add(task({ taskId: 'low2', jobId: 'j3', priority: 0 }));
    expect(ix.queuesOfTenant('a').map((q) => q.jobId)).toEqual(['j2', 'j1', 'j3']);
  });

  it('counts a task once in a bucket even when a host is listed twice', () => {
    const ix = new PendingIndex();
    ix.add(task({ taskId: 't', preferredHosts: ['r1-h1', 'r1-h1'] }));
    expect(ix.queuesAtHost('r1-h1')[0]?.hosts.get('r1-h1')?.live).toBe(1);
    ix.remove('t');
    expect(ix.queuesAtHost('r1-h1')).toEqual([]);
  });
});

describe('pending-splits codec (the proposed Redis encoding)', () => {
  it('round-trips and costs 20 + 2R bytes per split', () => {
    const splits = Array.from({ length: 100 }, (_, i) => ({
      fileIndex: i >> 3, offset: (i % 8) * 134217728, length: 134217728, hosts: [`h${i % 7}`, `h${(i + 1) % 7}`, `h${(i + 2) % 7}`],
    }));
    splits.push({ fileIndex: 99, offset: 2 ** 50, length: 1, hosts: ['only'] });
    const enc = encodePendingSplits(splits, 3);
    expect(enc.data.byteLength).toBe(PENDING_SPLITS_FORMAT.headerBytes + splits.length * 26);
    expect(enc.hosts.length).toBe(8);
    expect(decodePendingSplits(enc.data, enc.hosts)).toEqual(splits);
  });
});

describe('benchmark optimum (Hopcroft–Karp) agrees with brute force', () => {
  // Brute force: max flow by simple augmenting paths (Ford–Fulkerson) on the same graph.
  function brute(n: number, adj: Int32Array, deg: number, cap: Int32Array): number {
    const assigned = new Int32Array(n).fill(-1);
    const load = new Int32Array(cap.length);
    const bump = (h: number, d: number): void => {
      load[h] = (load[h] as number) + d;
    };
    const tryTask = (t: number, seen: Uint8Array): boolean => {
      for (let k = 0; k < deg; k++) {
        const h = adj[t * deg + k] as number;
        if (seen[h]) continue;
        seen[h] = 1;
        if ((load[h] as number) < (cap[h] as number)) {
          if (assigned[t] !== -1) bump(assigned[t] as number, -1);
          assigned[t] = h;
          bump(h, 1);
          return true;
        }
        for (let u = 0; u < n; u++) {
          if (assigned[u] === h && u !== t && tryTask(u, seen)) {
            if (assigned[t] !== -1) bump(assigned[t] as number, -1);
            assigned[t] = h;
            bump(h, 1);
            return true;
          }
        }
      }
      return false;
    };
    let size = 0;
    for (let t = 0; t < n; t++) if (tryTask(t, new Uint8Array(cap.length))) size++;
    return size;
  }

  it('on random small instances', () => {
    let x = 12345;
    const rnd = (m: number): number => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x % m;
    };
    for (let round = 0; round < 60; round++) {
      const hosts = 2 + rnd(8);
      const n = 1 + rnd(30);
      const adj = new Int32Array(n * 3);
      for (let i = 0; i < adj.length; i++) adj[i] = rnd(hosts);
      const cap = new Int32Array(hosts);
      for (let h = 0; h < hosts; h++) cap[h] = rnd(4);
      expect(maxNodeLocal(n, adj, 3, cap)).toBe(brute(n, adj, 3, cap));
    }
  });
});
