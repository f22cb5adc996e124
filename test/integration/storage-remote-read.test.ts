/**
 * The readers an executor builds from the framework's storage configuration
 * (`--storage-config`), against a real Ceph 16 cluster on loopback: byte
 * ranges of RADOS objects through `rados get` (no extra service), CephFS
 * files through the mount the configuration names, and the classification a
 * task's retry depends on (a missing object is the task's fault, an
 * unreachable cluster the host's).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocusError } from '../../src/core/errors.js';
import { isHostCause } from '../../src/executor/data-plane.js';
import { decodeExecutorStorageConfig, registryConfigFor } from '../../src/storage/executor-config.js';
import { createStorageRegistry, type StorageRegistry } from '../../src/storage/registry.js';
import { startCeph, type TestCeph } from '../harness/ceph.js';
import { CEPH, describeWith } from '../harness/requires.js';

const run = promisify(execFile);

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describeWith([CEPH], 'executor storage readers on a real Ceph cluster', () => {
  let cluster: TestCeph;
  let registry: StorageRegistry;
  let dir: string;
  const object = randomBytes(3 * 1024 * 1024 + 17);

  beforeAll(async () => {
    cluster = await startCeph();
    dir = await mkdtemp(join(tmpdir(), 'locus-remote-read-'));
    const f = join(dir, 'obj');
    await writeFile(f, object);
    await run('rados', ['--conf', cluster.conf, '-p', cluster.pool, 'put', 'big-object', f]);
    // What the framework would send: no secrets, the conf and the mount of this host.
    const config = decodeExecutorStorageConfig(JSON.stringify({ version: 1, ceph: { conf: cluster.conf, ...(cluster.mount === undefined ? {} : { cephfsMount: cluster.mount }) } }));
    registry = createStorageRegistry(registryConfigFor(config));
  }, 300_000);

  afterAll(async () => {
    await registry?.close();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads byte ranges of a RADOS object with rados get (start, middle across chunks, past the end)', async () => {
    const uri = `ceph://${cluster.pool}/big-object`;
    expect((await readAll(await registry.read(uri, 0, 1000))).equals(object.subarray(0, 1000))).toBe(true);
    const mid = await readAll(await registry.read(uri, 1_000_000, 2_000_000));
    expect(mid.equals(object.subarray(1_000_000, 3_000_000))).toBe(true);
    const tail = await readAll(await registry.read(uri, object.length - 10, 100));
    expect(tail.equals(object.subarray(object.length - 10))).toBe(true);
  });

  it('a missing object is the task\'s fault; a cluster that cannot be reached is the host\'s', async () => {
    const missing = await readAll(await registry.read(`ceph://${cluster.pool}/no-such-object`, 0, 10)).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(LocusError);
    expect((missing as LocusError).code).toBe('NOT_FOUND');
    expect(isHostCause(missing)).toBe(false);
    // A conf naming a monitor nobody listens on: the host cannot reach the cluster.
    const badConf = join(dir, 'bad.conf');
    await writeFile(badConf, '[global]\nmon_host = 127.0.0.1:1\nauth_supported = none\nclient_mount_timeout = 2\nrados_mon_op_timeout = 2\n');
    const bad = createStorageRegistry(registryConfigFor({ version: 1, ceph: { conf: badConf } }));
    try {
      const err = await readAll(await bad.read(`ceph://${cluster.pool}/big-object`, 0, 10)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LocusError);
      expect(isHostCause(err)).toBe(true);
    } finally {
      await bad.close();
    }
  }, 60_000);

  it('reads a CephFS file through the configured mount', async () => {
    if (cluster.mount === undefined) throw new Error('the test cluster has no CephFS mount');
    const data = randomBytes(200_000);
    await writeFile(join(cluster.mount, 'remote-read.bin'), data);
    const got = await readAll(await registry.read('cephfs:///remote-read.bin', 50_000, 100_000));
    expect(got.equals(data.subarray(50_000, 150_000))).toBe(true);
  });
});
