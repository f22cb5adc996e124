import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocusError } from '../../src/core/errors.js';
import { WebHdfsBackend } from '../../src/storage/hdfs/backend.js';
import { HostMapper } from '../../src/storage/hostmap.js';
import { startWebHdfsServer, type WebHdfsServer } from '../harness/webhdfs-server.js';

const MiB = 1024 * 1024;
const FILES = [
  { path: '/data/a.csv', size: 300 * MiB },
  { path: '/data/b.csv', size: 10 * MiB, blockSize: 4 * MiB, replication: 2 },
  { path: '/data/sub/c.csv', size: 5 },
  { path: '/data/_SUCCESS', size: 0 },
  { path: '/data/empty.csv', size: 0 },
  { path: '/logs/x.log', size: 100 },
  { path: '/secret/s.bin', size: 10, owner: 'bob' },
];

async function errorOf(p: Promise<unknown>): Promise<LocusError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LocusError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

describe('WebHDFS backend against a loopback NameNode (GETFILEBLOCKLOCATIONS)', () => {
  let server: WebHdfsServer;
  let backend: WebHdfsBackend;
  beforeAll(async () => {
    server = await startWebHdfsServer({ files: FILES });
    backend = new WebHdfsBackend({ user: 'alice' }, new HostMapper());
  });
  afterAll(async () => {
    await backend.close();
    await server.close();
  });

  it('gives each block its offset, length, datanode hosts and racks', async () => {
    const [f] = await backend.resolve(`hdfs://127.0.0.1:${server.port}/data/a.csv`, { split: 'block' });
    expect(f?.size).toBe(300 * MiB);
    const expected = server.placement('/data/a.csv').map((b) => ({
      offset: b.offset,
      length: b.length,
      hosts: b.datanodes.map((d) => server.datanodes[d]?.hostName),
      racks: [...new Set(b.datanodes.map((d) => server.datanodes[d]?.rack))],
    }));
    expect(f?.splits).toEqual(expected);
    expect(f?.splits.map((s) => s.length)).toEqual([128 * MiB, 128 * MiB, 44 * MiB]);
    expect(server.counts.get('GETFILEBLOCKLOCATIONS')).toBeGreaterThan(0);
    expect(server.log.some((l) => l.includes('user.name=alice'))).toBe(true);
  });

  it('expands a directory recursively, skipping _ and . names, and keeps empty files without splits', async () => {
    const files = await backend.resolve(`hdfs://127.0.0.1:${server.port}/data`, { split: 'block' });
    expect(files.map((f) => f.uri)).toEqual([
      `hdfs://127.0.0.1:${server.port}/data/a.csv`,
      `hdfs://127.0.0.1:${server.port}/data/b.csv`,
      `hdfs://127.0.0.1:${server.port}/data/empty.csv`,
      `hdfs://127.0.0.1:${server.port}/data/sub/c.csv`,
    ]);
    const b = files[1];
    expect(b?.splits).toHaveLength(3);
    expect(b?.splits.every((s) => s.hosts.length === 2)).toBe(true);
    expect(files[2]?.splits).toEqual([]);
  });

  it('expands globs', async () => {
    const files = await backend.resolve(`hdfs://127.0.0.1:${server.port}/{data,logs}/*.{csv,log}`, { split: 'file' });
    expect(files.map((f) => f.uri.replace(/^hdfs:\/\/[^/]+/, ''))).toEqual(['/data/a.csv', '/data/b.csv', '/data/empty.csv', '/logs/x.log']);
  });

  it('file mode gives one split per file with hosts ranked by bytes held', async () => {
    const [f] = await backend.resolve(`hdfs://127.0.0.1:${server.port}/data/b.csv`, { split: 'file' });
    expect(f?.splits).toHaveLength(1);
    const bytes = new Map<string, number>();
    for (const b of server.placement('/data/b.csv')) for (const d of b.datanodes) bytes.set(server.datanodes[d]?.hostName ?? '', (bytes.get(server.datanodes[d]?.hostName ?? '') ?? 0) + b.length);
    const best = Math.max(...bytes.values());
    expect(bytes.get(f?.splits[0]?.hosts[0] ?? '')).toBe(best);
    expect(new Set(f?.splits[0]?.hosts)).toEqual(new Set(bytes.keys()));
  });

  it('maps datanode names and IPs to agent hosts and racks', async () => {
    const mapped = new WebHdfsBackend({ user: 'alice' }, new HostMapper({ hosts: { 'dn-a': 'agent-1', '127.0.0.3': 'agent-2' }, racks: { 'agent-1': 'r1' } }));
    try {
      const [f] = await mapped.resolve(`hdfs://127.0.0.1:${server.port}/data/b.csv`, { split: 'block' });
      const all = new Set(f?.splits.flatMap((s) => s.hosts));
      expect(all.has('agent-1')).toBe(true);
      expect(all.has('agent-2')).toBe(true);
      expect(all.has('dn-a')).toBe(false);
      const withA = f?.splits.find((s) => s.hosts.includes('agent-1'));
      expect(withA?.racks).toContain('r1');
    } finally {
      await mapped.close();
    }
  });

  it('reads a byte range through OPEN, following the 307 to the DataNode', async () => {
    const stream = await backend.read(`hdfs://127.0.0.1:${server.port}/data/b.csv`, 1000, 5000);
    const parts: Buffer[] = [];
    for await (const c of stream) parts.push(c as Buffer);
    expect(Buffer.concat(parts)).toEqual(server.content('/data/b.csv', 1000, 5000));
    expect(server.log.some((l) => l.startsWith('DN ') && l.includes('offset=1000') && l.includes('length=5000'))).toBe(true);
  });

  it('turns RemoteExceptions into clear coded errors naming the URI', async () => {
    const missing = await errorOf(backend.resolve(`hdfs://127.0.0.1:${server.port}/nope`, { split: 'block' }));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toContain(`hdfs://127.0.0.1:${server.port}/nope`);
    const denied = await errorOf(backend.resolve(`hdfs://127.0.0.1:${server.port}/secret/s.bin`, { split: 'block' }));
    expect(denied.code).toBe('FORBIDDEN');
    expect(denied.message).toMatch(/permission denied.*user=alice/i);
    expect(denied.message).toContain('/secret/s.bin');
  });

  it('reports an unreachable NameNode as UNAVAILABLE naming the URI', async () => {
    const dead = new WebHdfsBackend({ user: 'alice', usePackage: false }, new HostMapper());
    const err = await errorOf(dead.resolve('hdfs://127.0.0.1:1/x', { split: 'block' }));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toContain('hdfs://127.0.0.1:1/x');
    await dead.close();
  });
});

describe('WebHDFS backend: old NameNodes, tokens, timeouts, redirects', () => {
  it('falls back to GET_BLOCK_LOCATIONS once and gives the same answer', async () => {
    const server = await startWebHdfsServer({ files: FILES, locationOps: 'old' });
    const backend = new WebHdfsBackend({ user: 'alice' }, new HostMapper());
    try {
      const files = await backend.resolve(`hdfs://127.0.0.1:${server.port}/data`, { split: 'block' });
      const a = files.find((f) => f.uri.endsWith('/a.csv'));
      expect(a?.splits.map((s) => [s.offset, s.length, s.hosts, s.racks])).toEqual(
        server.placement('/data/a.csv').map((b) => [b.offset, b.length, b.datanodes.map((d) => server.datanodes[d]?.hostName), [...new Set(b.datanodes.map((d) => server.datanodes[d]?.rack))]]),
      );
      // The unknown op is tried once; after that only the old op is used.
      expect(server.counts.get('GETFILEBLOCKLOCATIONS')).toBe(1);
      expect(server.counts.get('GET_BLOCK_LOCATIONS')).toBe(3);
    } finally {
      await backend.close();
      await server.close();
    }
  });

  it('sends the delegation token instead of user.name, and explains a rejected one', async () => {
    const server = await startWebHdfsServer({ files: FILES, delegationToken: 'tok-123' });
    const good = new WebHdfsBackend({ user: 'alice', delegationToken: 'tok-123' }, new HostMapper());
    const bad = new WebHdfsBackend({ delegationToken: 'wrong' }, new HostMapper());
    const none = new WebHdfsBackend({ usePackage: false }, new HostMapper());
    try {
      const [f] = await good.resolve(`hdfs://127.0.0.1:${server.port}/logs/x.log`, { split: 'block' });
      expect(f?.size).toBe(100);
      expect(server.log.every((l) => !l.startsWith('NN') || (l.includes('delegation=tok-123') && !l.includes('user.name')))).toBe(true);
      const e1 = await errorOf(bad.resolve(`hdfs://127.0.0.1:${server.port}/logs/x.log`, { split: 'block' }));
      expect(e1.code).toBe('FORBIDDEN');
      expect(e1.message).toMatch(/delegation token was rejected/);
      const e2 = await errorOf(none.resolve(`hdfs://127.0.0.1:${server.port}/logs/x.log`, { split: 'block' }));
      expect(e2.code).toBe('FORBIDDEN');
      expect(e2.message).toMatch(/authentication required/);
    } finally {
      await Promise.all([good.close(), bad.close(), none.close()]);
      await server.close();
    }
  });

  it('times out instead of hanging on a NameNode that does not answer', async () => {
    const server = await startWebHdfsServer({ files: FILES, slowPrefix: { prefix: '/logs', delayMs: 5_000 } });
    const backend = new WebHdfsBackend({ user: 'alice', timeoutMs: 300, usePackage: false }, new HostMapper());
    try {
      const t0 = Date.now();
      const err = await errorOf(backend.resolve(`hdfs://127.0.0.1:${server.port}/logs/x.log`, { split: 'block' }));
      expect(err.code).toBe('TIMEOUT');
      expect(err.message).toContain('/logs/x.log');
      expect(Date.now() - t0).toBeLessThan(3_000);
    } finally {
      await backend.close();
      await server.close();
    }
  });

  it('lists through the webhdfs package with user.name, directly with a token', async () => {
    const server = await startWebHdfsServer({ files: FILES });
    const viaPackage = new WebHdfsBackend({ user: 'alice' }, new HostMapper());
    const direct = new WebHdfsBackend({ user: 'alice', usePackage: false }, new HostMapper());
    try {
      expect(viaPackage.clientFor(`hdfs://127.0.0.1:${server.port}/`).client.listsWithPackage).toBe(true);
      expect(direct.clientFor(`hdfs://127.0.0.1:${server.port}/`).client.listsWithPackage).toBe(false);
      const a = await viaPackage.resolve(`hdfs://127.0.0.1:${server.port}/data`, { split: 'block' });
      const b = await direct.resolve(`hdfs://127.0.0.1:${server.port}/data`, { split: 'block' });
      expect(a).toEqual(b);
      // The package sends ops in lower case; the direct client in upper case.
      expect(server.log.some((l) => l.includes('op=liststatus'))).toBe(true);
      expect(server.log.some((l) => l.includes('op=LISTSTATUS'))).toBe(true);
    } finally {
      await Promise.all([viaPackage.close(), direct.close()]);
      await server.close();
    }
  });
});
