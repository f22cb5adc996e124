import { execFile } from 'node:child_process';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocusError } from '../../src/core/errors.js';
import { CephBackend } from '../../src/storage/ceph/backend.js';
import { objectName } from '../../src/storage/ceph/layout.js';
import { HostMapper } from '../../src/storage/hostmap.js';
import { startCeph, type TestCeph } from '../harness/ceph.js';
import { CEPH, describeWith } from '../harness/requires.js';

const run = promisify(execFile);

interface OsdMap {
  pgid: string;
  raw_pgid: string;
  acting: number[];
  acting_primary: number;
}

describeWith([CEPH], 'Ceph backend against a real Ceph 16 cluster with fake hosts', () => {
  let cluster: TestCeph;
  let backend: CephBackend;
  const crushHost = new Map<number, string>();

  /** What Ceph itself says: `ceph osd map` then `ceph osd find` for each acting OSD. */
  async function cephSays(pool: string, object: string): Promise<{ pgid: string; hosts: string[]; acting: number[] }> {
    const m = (await cluster.cephJson(['osd', 'map', pool, object])) as OsdMap;
    const order = [m.acting_primary, ...m.acting.filter((o) => o !== m.acting_primary)];
    const hosts: string[] = [];
    for (const o of order) {
      if (!crushHost.has(o)) {
        const f = (await cluster.cephJson(['osd', 'find', String(o)])) as { crush_location: { host: string }; host: string };
        // The harness makes the OSD's own hostname and its CRUSH host agree.
        expect(f.host).toBe(f.crush_location.host);
        crushHost.set(o, f.crush_location.host);
      }
      hosts.push(crushHost.get(o) as string);
    }
    return { pgid: m.pgid, hosts, acting: m.acting };
  }

  beforeAll(async () => {
    cluster = await startCeph();
    backend = new CephBackend({ conf: cluster.conf, checkIntervalMs: 0, ...(cluster.mount === undefined ? {} : { cephfsMount: cluster.mount }) }, new HostMapper());
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  const NAMES = ['obj1', 'a', 'hello-world', 'x/y/z.txt', 'héllo', 'part-00000', 'part-00001', 'part-00002', '10000000000.00000000', 'k'.repeat(40), 'data.csv', 'z'];

  it('computes PG, acting OSDs and CRUSH hosts exactly as ceph osd map / osd find', async () => {
    const located = await backend.locateObjects(cluster.pool, NAMES);
    for (const [i, name] of NAMES.entries()) {
      const truth = await cephSays(cluster.pool, name);
      expect(located[i]?.pgid, name).toBe(truth.pgid);
      expect(located[i]?.osds, name).toEqual(truth.acting);
      expect(located[i]?.hosts, name).toEqual(truth.hosts);
      expect(new Set(located[i]?.hosts).size).toBe(2);
    }
  });

  it('resolves ceph://pool/object with the object size, and globs over rados ls', async () => {
    const tmp = join(cluster.dir, 'obj.bin');
    await writeFile(tmp, Buffer.alloc(12345, 1));
    for (const n of ['part-00000', 'part-00001']) await run('rados', ['--conf', cluster.conf, '-p', cluster.pool, 'put', n, tmp]);
    const [f] = await backend.resolve(`ceph://${cluster.pool}/part-00000`, { split: 'block' });
    expect(f?.size).toBe(12345);
    expect(f?.splits).toEqual([{ offset: 0, length: 12345, hosts: (await cephSays(cluster.pool, 'part-00000')).hosts, racks: [] }]);
    const globbed = await backend.resolve(`ceph://${cluster.pool}/part-*`, { split: 'file' });
    expect(globbed.map((x) => x.uri)).toEqual([`ceph://${cluster.pool}/part-00000`, `ceph://${cluster.pool}/part-00001`]);
    const missing = await backend.resolve(`ceph://${cluster.pool}/nope`, { split: 'file' }).catch((e: unknown) => e);
    expect((missing as LocusError).code).toBe('NOT_FOUND');
    expect((missing as LocusError).message).toContain(`ceph://${cluster.pool}/nope`);
    const noPool = await backend.resolve('ceph://nopool/x', { split: 'file' }).catch((e: unknown) => e);
    expect((noPool as LocusError).message).toMatch(/ceph:\/\/nopool\/x: no pool 'nopool'/);
  });

  /** Compare with Ceph at one epoch: both sides re-read until `ceph osd map` answers for the epoch our maps have. */
  async function agreeAtSameEpoch(names: readonly string[], accept: (osds: readonly number[][]) => boolean): Promise<number[][]> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      // The maps our answer came from: the same epoch before and after it (they are fetched again
      // whenever the epoch moved, and it moves often while PGs recover), else it is read again.
      const epochBefore = (await backend.cluster.maps()).epoch;
      const located = await backend.locateObjects(cluster.pool, names);
      const epoch = (await backend.cluster.maps()).epoch;
      const truths = [];
      let sameEpoch = epoch === epochBefore;
      for (const name of names) {
        const m = (await cluster.cephJson(['osd', 'map', cluster.pool, name])) as OsdMap & { epoch: number };
        if (m.epoch !== epoch) sameEpoch = false;
        truths.push(m);
      }
      const osds = located.map((l) => [...l.osds]);
      if (sameEpoch) {
        for (const [i, name] of names.entries()) expect(osds[i], name).toEqual(truths[i]?.acting);
        if (accept(osds)) return osds;
      }
      if (Date.now() > deadline) throw new Error(`no agreement on a settled epoch (ours ${epoch})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  it('follows the maps to a new epoch after an OSD is marked out, and back', async () => {
    const names = NAMES.slice(0, 6);
    const before = await agreeAtSameEpoch(names, () => true);
    expect(before.some((o) => o.includes(1))).toBe(true);
    const epochBefore = (await backend.cluster.maps()).epoch;
    await cluster.ceph(['osd', 'out', '1']);
    try {
      // Ceph may keep an out OSD acting (pg_temp) until backfill ends; once it
      // has, no object is on osd.1, and we agree with `ceph osd map` throughout.
      const after = await agreeAtSameEpoch(names, (osds) => osds.every((o) => !o.includes(1)));
      expect((await backend.cluster.maps()).epoch).toBeGreaterThan(epochBefore);
      const outHost = crushHost.get(1) as string;
      const hosts = await backend.locateObjects(cluster.pool, names);
      expect(hosts.every((l) => !l.hosts.includes(outHost))).toBe(true);
      expect(after).not.toEqual(before);
    } finally {
      await cluster.ceph(['osd', 'in', '1']);
    }
    const back = await agreeAtSameEpoch(names, (osds) => JSON.stringify(osds) === JSON.stringify(before));
    expect(back).toEqual(before);
  });

  it('maps CephFS files to their data-pool objects by inode and layout', async () => {
    const mount = cluster.mount as string;
    await mkdir(join(mount, 'data'), { recursive: true });
    const big = join(mount, 'data', 'big.bin');
    await writeFile(big, Buffer.alloc(10 * 1024 * 1024, 7));
    const [f] = await backend.resolve('cephfs:///data/big.bin', { split: 'block' });
    const ino = (await stat(big, { bigint: true })).ino;
    expect(f?.size).toBe(10 * 1024 * 1024);
    expect(f?.splits.map((s) => [s.offset, s.length])).toEqual([[0, 4194304], [4194304, 4194304], [8388608, 2097152]]);
    for (const [i, s] of (f?.splits ?? []).entries()) {
      expect(s.hosts).toEqual((await cephSays('cephfs_data', objectName(ino, i))).hosts);
    }
    // The objects really exist under those names.
    const { stdout } = await run('rados', ['--conf', cluster.conf, '-p', 'cephfs_data', 'ls']);
    for (let i = 0; i < 3; i++) expect(stdout).toContain(objectName(ino, i));

    // A striped layout: su=1M, sc=3, os=2M; a 7 MB file touches objects 0-3.
    const striped = join(mount, 'data', 'striped.bin');
    await writeFile(striped, '');
    await run('setfattr', ['-n', 'ceph.file.layout', '-v', 'stripe_unit=1048576 stripe_count=3 object_size=2097152', striped]);
    await writeFile(striped, Buffer.alloc(7 * 1000 * 1000, 3));
    const [g] = await backend.resolve('cephfs://data/striped.bin', { split: 'block' });
    const sino = (await stat(striped, { bigint: true })).ino;
    expect(g?.splits.map((s) => [s.offset, s.length])).toEqual([[0, 6291456], [6291456, 7000000 - 6291456]]);
    const set0 = new Set<string>();
    for (const idx of [0, 1, 2]) for (const h of (await cephSays('cephfs_data', objectName(sino, idx))).hosts) set0.add(h);
    expect(new Set(g?.splits[0]?.hosts)).toEqual(set0);
    expect(g?.splits[1]?.hosts).toEqual((await cephSays('cephfs_data', objectName(sino, 3))).hosts);
    const { stdout: ls2 } = await run('rados', ['--conf', cluster.conf, '-p', 'cephfs_data', 'ls']);
    expect(ls2.split('\n').filter((l) => l.startsWith(sino.toString(16))).sort()).toEqual([0, 1, 2, 3].map((i) => objectName(sino, i)));
  });

  it("says a cephx user without osd read is refused, for a listing as for one object", async () => {
    // mon 'allow r' alone reads the maps but not the pool: a stat said "permission denied",
    // a glob's listing said "rados failed: rados_nobjects_list_next2: Operation not permitted".
    const keyring = join(cluster.dir, 'monly.keyring');
    await cluster.ceph(['auth', 'get-or-create', 'client.monly', 'mon', 'allow r', '-o', keyring]);
    const monly = new CephBackend({ conf: cluster.conf, keyring, name: 'client.monly', checkIntervalMs: 0 }, new HostMapper());
    for (const uri of ['ceph://locality/obj1', 'ceph://locality/obj*']) {
      const err = await monly.resolve(uri, { split: 'file' }).catch((e: unknown) => e);
      expect(err, uri).toBeInstanceOf(LocusError);
      expect((err as LocusError).code, uri).toBe('FORBIDDEN');
      expect((err as LocusError).message, uri).toContain(`${uri}: permission denied (the cephx user needs osd 'allow r' on pool 'locality')`);
    }
  });

  it('reports an unreachable cluster clearly and quickly', async () => {
    const conf = join(cluster.dir, 'dead.conf');
    await writeFile(conf, `[global]\nmon_host = 127.0.0.1:1\nkeyring = ${cluster.dir}/keyring\n`);
    const dead = new CephBackend({ conf, timeoutMs: 3000 }, new HostMapper());
    const t0 = Date.now();
    const err = await dead.resolve('ceph://locality/x', { split: 'file' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocusError);
    expect(['TIMEOUT', 'UNAVAILABLE']).toContain((err as LocusError).code);
    expect((err as LocusError).message).toContain('ceph://locality/x');
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
});
