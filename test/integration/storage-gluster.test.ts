import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocusError } from '../../src/core/errors.js';
import { parsePathinfo, pathinfoVolume } from '../../src/storage/gluster/backend.js';
import { createStorageRegistry, type StorageRegistry } from '../../src/storage/registry.js';
import { startGluster, type TestGluster } from '../harness/gluster.js';
import { GLUSTER, describeWith } from '../harness/requires.js';

describeWith([GLUSTER], 'GlusterFS backend against a real glusterd with fake hosts', () => {
  let gluster: TestGluster;
  let registry: StorageRegistry;
  beforeAll(async () => {
    gluster = await startGluster();
    registry = createStorageRegistry({ gluster: { mounts: gluster.mounts, splitSize: 1024 * 1024 }, cache: { ttlMs: 0 } });
    for (let i = 0; i < 12; i++) await writeFile(join(gluster.mounts['dist'] as string, `f${i}.txt`), `file ${i}\n`.repeat(i * 100 + 1));
    await mkdir(join(gluster.mounts['repl'] as string, 'dir'), { recursive: true });
    for (let i = 0; i < 8; i++) await writeFile(join(gluster.mounts['repl'] as string, 'dir', `r${i}.bin`), Buffer.alloc(2.5 * 1024 * 1024, i));
  });
  afterAll(async () => {
    await registry?.close();
    await gluster?.stop();
  });

  it('locates every file of a distributed volume on the brick host pathinfo names', async () => {
    const files = await registry.resolve('glusterfs://dist/', { split: 'file' });
    expect(files).toHaveLength(12);
    const seen = new Set<string>();
    for (const f of files) {
      const abs = join(gluster.mounts['dist'] as string, f.uri.slice('glusterfs://dist'.length));
      const bricks = parsePathinfo(await gluster.pathinfo(abs));
      expect(bricks).toHaveLength(1);
      expect(f.splits[0]?.hosts).toEqual([bricks[0]?.host]);
      expect(gluster.hosts).toContain(f.splits[0]?.hosts[0]);
      // Tasks read through the mount on every host, never the brick's copy.
      expect(f.splits[0]?.localPaths).toBeUndefined();
      expect(f.localPath).toBe(abs);
      seen.add(f.splits[0]?.hosts[0] ?? '');
    }
    // 12 files spread by DHT over 3 bricks land on more than one host.
    expect(seen.size).toBeGreaterThan(1);
  });

  it('gives both replica hosts of a replicated volume, per split', async () => {
    const files = await registry.resolve('glusterfs://repl/dir/*.bin', { split: 'block' });
    expect(files).toHaveLength(8);
    for (const f of files) {
      expect(f.size).toBe(2.5 * 1024 * 1024);
      expect(f.splits.map((s) => [s.offset, s.length])).toEqual([[0, 1048576], [1048576, 1048576], [2097152, 524288]]);
      const bricks = parsePathinfo(await gluster.pathinfo(join(gluster.mounts['repl'] as string, f.uri.slice('glusterfs://repl'.length))));
      expect(bricks).toHaveLength(2);
      // AFR lists the replica set's bricks in varying order between calls; the set is what counts.
      for (const s of f.splits) expect(new Set(s.hosts)).toEqual(new Set(bricks.map((b) => b.host)));
      expect(new Set(f.splits[0]?.hosts).size).toBe(2);
    }
  });

  it('hands tasks the whole file of a sharded volume, not the first shard a brick holds', async () => {
    // With features.shard a brick's copy of a file holds only its first shard
    // (the rest lives under the volume's .shard directory): a task given the
    // brick path read 4 MiB of a 10 MB file and succeeded.
    await gluster.cli(['volume', 'set', 'repl', 'features.shard', 'on']);
    await gluster.cli(['volume', 'set', 'repl', 'features.shard-block-size', '4MB']);
    const abs = join(gluster.mounts['repl'] as string, 'sharded.bin');
    await writeFile(abs, Buffer.alloc(10 * 1000 * 1000, 7));
    const bricks = parsePathinfo(await gluster.pathinfo(abs));
    expect((await stat(bricks[0]?.path ?? '')).size).toBe(4 * 1024 * 1024);
    const [f] = await registry.resolve('glusterfs://repl/sharded.bin', { split: 'block' });
    expect(f?.size).toBe(10 * 1000 * 1000);
    for (const s of f?.splits ?? []) {
      for (const h of s.hosts) {
        const path = s.localPaths?.[h] ?? f?.localPath ?? '';
        expect((await stat(path)).size).toBeGreaterThanOrEqual(s.offset + s.length);
      }
    }
  });

  it("refuses a mount of another volume configured under the URI's volume, instead of placing by its bricks", async () => {
    const swapped = createStorageRegistry({ gluster: { mounts: { repl: gluster.mounts['dist'] as string } }, cache: { ttlMs: 0 } });
    try {
      const e = await swapped.resolve('glusterfs://repl/', { split: 'file' }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(LocusError);
      expect((e as LocusError).code).toBe('INVALID_FIELD');
      expect((e as LocusError).message).toContain(`${gluster.mounts['dist'] as string} is a mount of volume 'dist', not 'repl'`);
    } finally {
      await swapped.close();
    }
  });

  it('maps brick hosts through the host map', async () => {
    const [a, b, c] = gluster.hosts as [string, string, string];
    const mapped = createStorageRegistry({ gluster: { mounts: gluster.mounts }, hostMap: { hosts: { [a]: 'agent-1', [b]: 'agent-2', [c]: 'agent-3' }, racks: { 'agent-1': 'r1', 'agent-2': 'r1', 'agent-3': 'r2' } } });
    try {
      const files = await mapped.resolve('glusterfs://dist', { split: 'file' });
      for (const f of files) {
        expect(['agent-1', 'agent-2', 'agent-3']).toContain(f.splits[0]?.hosts[0]);
        expect(f.splits[0]?.racks[0]).toBe(f.splits[0]?.hosts[0] === 'agent-3' ? 'r2' : 'r1');
      }
    } finally {
      await mapped.close();
    }
  });

  it('names the URI in errors: a missing path, an unmounted volume', async () => {
    const e1 = await registry.resolve('glusterfs://dist/nope.txt', { split: 'file' }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(LocusError);
    expect((e1 as LocusError).code).toBe('NOT_FOUND');
    expect((e1 as LocusError).message).toContain('glusterfs://dist/nope.txt');
    const e2 = await registry.resolve('glusterfs://other/x', { split: 'file' }).catch((e: unknown) => e);
    expect((e2 as LocusError).message).toMatch(/glusterfs:\/\/other\/x: no mount configured for volume 'other'/);
    const e3 = await registry.resolve('glusterfs:///dist/f1.txt', { split: 'file' }).catch((e: unknown) => e);
    expect((e3 as LocusError).message).toBe('glusterfs:///dist/f1.txt: names no volume (expected glusterfs://volume/path)');
  });
});

describe('pathinfo parsing', () => {
  it('reads distribute and replicate values', () => {
    expect(parsePathinfo('(<DISTRIBUTE:gv0-dht> <POSIX(/b/agent-c/gv0):agent-c:/b/agent-c/gv0/f1.txt>)')).toEqual([{ brickRoot: '/b/agent-c/gv0', host: 'agent-c', path: '/b/agent-c/gv0/f1.txt' }]);
    const v = '(<DISTRIBUTE:gvr-dht> (<REPLICATE:gvr-replicate-0> <POSIX(/b/b/gvr1):agent-b:/b/b/gvr1/r2.txt> <POSIX(/b/a/gvr1):agent-a:/b/a/gvr1/r2.txt>))';
    expect(parsePathinfo(v).map((b) => b.host)).toEqual(['agent-b', 'agent-a']);
    expect(pathinfoVolume(v)).toBe('gvr');
    expect(pathinfoVolume('(<REPLICATE:my-vol-replicate-0> <POSIX(/b):h:/b/f>)')).toBe('my-vol');
    expect(pathinfoVolume('<POSIX(/b):h:/b/f>')).toBeUndefined();
  });
});
