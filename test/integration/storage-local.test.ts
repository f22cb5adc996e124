import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as runData } from '../../src/cli/commands/data.js';
import { run as runLocate } from '../../src/cli/commands/locate.js';
import { defaultLocalWorkDir } from '../../src/local/work-dir.js';
import { LocusError } from '../../src/core/errors.js';
import { putLocalDataset } from '../../src/storage/local/put.js';
import { createStorageRegistry, type StorageRegistry } from '../../src/storage/registry.js';
import { startWebHdfsServer, type WebHdfsServer } from '../harness/webhdfs-server.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const CLI = join(process.cwd(), 'dist/src/cli/main.js');

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed) % 256;
  return b;
}

describe('local:// datasets across the local cluster agents, and file://', () => {
  let work: string;
  let src: string;
  let registry: StorageRegistry;
  const agents = ['agent-1', 'agent-2', 'agent-3', 'agent-4'];
  const racks: Record<string, string> = { 'agent-1': 'rack-a', 'agent-2': 'rack-a', 'agent-3': 'rack-b', 'agent-4': 'rack-b' };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'locus-local-'));
    src = join(work, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'big.bin'), pattern(10 * MiB + 123, 1));
    await writeFile(join(src, 'sub', 'small.txt'), 'hello\n');
    await writeFile(join(src, 'empty'), '');
    await writeFile(join(work, 'topology.json'), JSON.stringify({
      masterUrl: 'http://127.0.0.1:5050',
      agents: agents.map((h, i) => ({ id: `id-${9 - i}`, hostname: h, rack: racks[h], url: `http://127.0.0.1:${5051 + i}`, dataDir: join(work, 'agents', h, 'data') })),
    }));
    registry = createStorageRegistry({ local: { workDir: work }, file: { splitSize: 4 * MiB } });
  });
  afterAll(async () => {
    await registry.close();
    await rm(work, { recursive: true, force: true });
  });

  it('lays blocks out evenly on distinct agents on different racks, readable locally from each replica', async () => {
    const result = await putLocalDataset({ workDir: work, source: src, dataset: 'ds', path: '/in', replicas: 2, blockSize: 2 * MiB });
    expect(result.files.map((f) => f.path)).toEqual(['/in/big.bin', '/in/empty', '/in/sub/small.txt']);
    const [big] = await registry.resolve('local://ds/in/big.bin', { split: 'block' });
    expect(big?.size).toBe(10 * MiB + 123);
    expect(big?.splits.map((s) => s.length)).toEqual([2 * MiB, 2 * MiB, 2 * MiB, 2 * MiB, 2 * MiB, 123]);
    const primaries = new Map<string, number>();
    const original = await readFile(join(src, 'big.bin'));
    for (const s of big?.splits ?? []) {
      expect(s.hosts).toHaveLength(2);
      expect(new Set(s.racks)).toEqual(new Set(['rack-a', 'rack-b']));
      primaries.set(s.hosts[0] as string, (primaries.get(s.hosts[0] as string) ?? 0) + 1);
      // Each replica host reads the split's bytes at the split's own offsets in its local path.
      for (const h of s.hosts) {
        const p = s.localPaths?.[h] as string;
        expect(p.startsWith(join(work, 'agents', h, 'data'))).toBe(true);
        const fh = await open(p, 'r');
        const buf = Buffer.alloc(s.length);
        await fh.read(buf, 0, s.length, s.offset);
        await fh.close();
        expect(buf.equals(original.subarray(s.offset, s.offset + s.length))).toBe(true);
      }
    }
    // Six blocks over four agents: primaries differ by at most one.
    expect(Math.max(...primaries.values()) - Math.min(...primaries.values())).toBeLessThanOrEqual(1);
    expect(primaries.size).toBe(4);
    // Sparse replicas: an agent holding few blocks stores few bytes.
    const st = await stat(big?.splits[0]?.localPaths?.[big.splits[0].hosts[0] as string] as string);
    expect(st.blocks * 512).toBeLessThan(st.size);
  });

  it('is deterministic and expands directories and globs in the dataset', async () => {
    const again = await putLocalDataset({ workDir: join(work), source: join(src, 'sub', 'small.txt'), dataset: 'ds2', replicas: 3, blockSize: 2 * MiB });
    const twice = await putLocalDataset({ workDir: join(work), source: join(src, 'sub', 'small.txt'), dataset: 'ds3', replicas: 3, blockSize: 2 * MiB });
    expect(again.files[0]?.blocks).toEqual(twice.files[0]?.blocks);
    expect(again.files[0]?.path).toBe('/small.txt');
    const all = await registry.resolve('local://ds/in', { split: 'file' });
    expect(all.map((f) => f.uri)).toEqual(['local://ds/in/big.bin', 'local://ds/in/empty', 'local://ds/in/sub/small.txt']);
    expect(all[1]?.splits).toEqual([]);
    const globbed = await registry.resolve('local://ds/in/*.bin', { split: 'file' });
    expect(globbed.map((f) => f.uri)).toEqual(['local://ds/in/big.bin']);
    // File mode ranks hosts by bytes held.
    expect(globbed[0]?.splits[0]?.hosts.length).toBe(4);
  });

  it('reads a byte range of a dataset file across blocks', async () => {
    const stream = await registry.read('local://ds/in/big.bin', 2 * MiB - 10, 30);
    const parts: Buffer[] = [];
    for await (const c of stream) parts.push(c as Buffer);
    expect(Buffer.concat(parts)).toEqual((await readFile(join(src, 'big.bin'))).subarray(2 * MiB - 10, 2 * MiB + 20));
  });

  it('gives clear errors naming the URI', async () => {
    const e1 = (await registry.resolve('local://nope/x', { split: 'file' }).catch((e: unknown) => e)) as LocusError;
    expect(e1.code).toBe('NOT_FOUND');
    expect(e1.message).toContain("local://nope/x: no dataset 'nope'");
    const e2 = (await registry.resolve('local://ds/in/missing', { split: 'file' }).catch((e: unknown) => e)) as LocusError;
    expect(e2.code).toBe('NOT_FOUND');
    expect(e2.message).toContain('local://ds/in/missing');
    const e3 = (await registry.resolve('s3://b/k', { split: 'file' }).catch((e: unknown) => e)) as LocusError;
    expect(e3.code).toBe('UNSUPPORTED');
    expect(e3.message).toContain('s3://b/k');
  });

  it('refuses a target that climbs out of the dataset, and writes nothing', async () => {
    const topology = await readFile(join(work, 'topology.json'), 'utf8');
    for (const path of ['/../../../../topology.json', '/a/../b', '/./x']) {
      const e = (await putLocalDataset({ workDir: work, source: join(src, 'sub', 'small.txt'), dataset: 'trav', path, replicas: 4 }).catch((x: unknown) => x)) as LocusError;
      expect(e).toBeInstanceOf(LocusError);
      expect(e.code).toBe('INVALID_FIELD');
      expect(e.field).toBe('path');
    }
    expect(await readFile(join(work, 'topology.json'), 'utf8')).toBe(topology);
    await expect(stat(join(work, 'agents', 'agent-1', 'data', 'trav'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses a put whose file and directory names clash with the dataset\'s, before touching any replica', async () => {
    const a = join(work, 'clash-a');
    await mkdir(a, { recursive: true });
    await writeFile(join(a, 'b1.txt'), pattern(3000, 2));
    await writeFile(join(a, 'b2.txt'), 'old\n');
    await putLocalDataset({ workDir: work, source: a, dataset: 'clash', replicas: 4 });
    const b = join(work, 'clash-b');
    await mkdir(join(b, 'b2.txt'), { recursive: true });
    await writeFile(join(b, 'b1.txt'), 'new\n');
    await writeFile(join(b, 'b2.txt', 'inner'), 'x\n');
    const e = (await putLocalDataset({ workDir: work, source: b, dataset: 'clash', replicas: 4 }).catch((x: unknown) => x)) as LocusError;
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toContain("'/b2.txt/inner'");
    // Every replica of b1.txt is still the first put's, as the manifest says.
    for (const agent of agents) expect(await readFile(join(work, 'agents', agent, 'data', 'clash', 'b1.txt'))).toEqual(pattern(3000, 2));
    // The other way round: a file over a directory of the dataset.
    const c = join(work, 'clash-c');
    await mkdir(join(c, 'd'), { recursive: true });
    await writeFile(join(c, 'd', 'x'), 'x\n');
    await putLocalDataset({ workDir: work, source: c, dataset: 'clash2', replicas: 1 });
    const e2 = (await putLocalDataset({ workDir: work, source: join(a, 'b2.txt'), dataset: 'clash2', path: '/d', replicas: 1 }).catch((x: unknown) => x)) as LocusError;
    expect(e2.code).toBe('CONFLICT');
    expect(e2.message).toContain("'/d/x'");
  });

  it('leaves the dataset as it was when writing fails half way, with no temporary file behind', async () => {
    const a = join(work, 'half-a');
    await mkdir(a, { recursive: true });
    await writeFile(join(a, 'one'), 'first one\n');
    await writeFile(join(a, 'two'), 'first two\n');
    await putLocalDataset({ workDir: work, source: a, dataset: 'half', replicas: 4 });
    // A directory on agent-3's disk where 'two' goes, unknown to the manifest: its replica cannot be written.
    await rm(join(work, 'agents', 'agent-3', 'data', 'half', 'two'));
    await mkdir(join(work, 'agents', 'agent-3', 'data', 'half', 'two', 'stray'), { recursive: true });
    await writeFile(join(a, 'one'), 'second one\n');
    await writeFile(join(a, 'two'), 'second two\n');
    const e = (await putLocalDataset({ workDir: work, source: a, dataset: 'half', replicas: 4 }).catch((x: unknown) => x)) as LocusError;
    expect(e).toBeInstanceOf(LocusError);
    expect(e.code).toBe('STORAGE');
    expect(e.message).toMatch(/agent-3.*two.*clash.*as it was before this put/);
    for (const agent of agents) {
      expect(await readFile(join(work, 'agents', agent, 'data', 'half', 'one'), 'utf8')).toBe('first one\n');
      expect((await readdir(join(work, 'agents', agent, 'data', 'half'))).filter((n) => n.startsWith('.lp'))).toEqual([]);
    }
  });

  it('stops when told to (Ctrl-C), removing what it wrote, and leaves the dataset as it was', async () => {
    const a = join(work, 'stop-a');
    await mkdir(a, { recursive: true });
    await writeFile(join(a, 'one'), 'first one\n');
    await putLocalDataset({ workDir: work, source: a, dataset: 'stop', replicas: 4 });
    await writeFile(join(a, 'one'), 'second one\n');
    const stop = new AbortController();
    stop.abort();
    const e = (await putLocalDataset({ workDir: work, source: a, dataset: 'stop', replicas: 4, signal: stop.signal }).catch((x: unknown) => x)) as LocusError;
    expect(e).toBeInstanceOf(LocusError);
    expect(e.message).toMatch(/stopped/);
    for (const agent of agents) {
      expect(await readFile(join(work, 'agents', agent, 'data', 'stop', 'one'), 'utf8')).toBe('first one\n');
      expect((await readdir(join(work, 'agents', agent, 'data', 'stop'))).filter((n) => n.startsWith('.lp'))).toEqual([]);
    }
  });

  it('puts a single file beneath a target ending in /, and records no more copies than agents', async () => {
    const result = await putLocalDataset({ workDir: work, source: join(src, 'sub', 'small.txt'), dataset: 'slash', path: '/sub/', replicas: 9 });
    expect(result.files.map((f) => f.path)).toEqual(['/sub/small.txt']);
    expect(result.files[0]?.blocks[0]?.hosts.length).toBe(4);
    const manifest = JSON.parse(await readFile(join(work, 'datasets', 'slash', 'manifest.json'), 'utf8')) as { replicas: number };
    expect(manifest.replicas).toBe(4);
    // Without the slash, the path is the file's own name.
    expect((await putLocalDataset({ workDir: work, source: join(src, 'sub', 'small.txt'), dataset: 'slash', path: '/renamed', replicas: 1 })).files.map((f) => f.path)).toEqual(['/renamed']);
  });

  it('locus data put says on stderr when --replicas asks for more copies than there are agents', async () => {
    const put = async (replicas: string, ...more: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = '';
      let err = '';
      const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
      const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { err += String(chunk); return true; });
      try {
        const code = await runData(['put', join(src, 'sub', 'small.txt'), 'local://few/', '--replicas', replicas, '--work-dir', work, ...more]);
        return { code, out, err };
      } finally {
        stdout.mockRestore();
        stderr.mockRestore();
      }
    };
    const over = await put('6');
    expect(over.code).toBe(0);
    expect(over.err).toBe('locus: warning: --replicas 6, but the local cluster has 4 agents: each block was written 4 times (one copy per agent)\n');
    expect(over.out).toMatch(/^put 1 file/);
    // --json keeps stdout the result alone, which says how many copies were written.
    const json = await put('5', '--json');
    expect(json.err).toContain('--replicas 5');
    expect((JSON.parse(json.out) as { replicas: number }).replicas).toBe(4);
    const enough = await put('4');
    expect(enough.err).toBe('');
  });

  it('locus data put and locus locate default to the work dir locus up and locus local use', async () => {
    // A new user runs `locus up`, then `locus data put ./books local://books/` without
    // --work-dir: the put must land where the cluster's agents read, or the job fails with
    // "no dataset". As root with a private home that is /var/lib/locus/local, not ~/.locus/local.
    const home = await mkdtemp(join(tmpdir(), 'locus-home-'));
    await chmod(home, 0o711); // reachable by workloads, so the cluster's work dir is <home>/local
    const cluster = join(home, 'local');
    await mkdir(cluster);
    await copyFile(join(work, 'topology.json'), join(cluster, 'topology.json'));
    vi.stubEnv('LOCUS_HOME', home);
    let out = '';
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
    try {
      expect(defaultLocalWorkDir().workDir).toBe(cluster);
      const dataset = `default-dir-${process.pid}`;
      expect(await runData(['put', join(src, 'sub', 'small.txt'), `local://${dataset}/`, '--replicas', '1'])).toBe(0);
      expect((await stat(join(cluster, 'datasets', dataset, 'manifest.json'))).isFile()).toBe(true);
      out = '';
      expect(await runLocate([`local://${dataset}/small.txt`, '--json'])).toBe(0);
      expect((JSON.parse(out) as { files: Array<{ uri: string }> }).files.map((f) => f.uri)).toEqual([`local://${dataset}/small.txt`]);
    } finally {
      stdout.mockRestore();
      vi.unstubAllEnvs();
      await rm(home, { recursive: true, force: true });
    }
  });

  it('file:// names this host and cuts by split size', async () => {
    const [f] = await registry.resolve(`file://${join(src, 'big.bin')}`, { split: 'block' });
    expect(f?.localPath).toBe(join(src, 'big.bin'));
    expect(f?.splits.map((s) => s.length)).toEqual([4 * MiB, 4 * MiB, 2 * MiB + 123]);
    expect(f?.splits.every((s) => s.hosts.length === 1 && s.hosts[0] === hostname())).toBe(true);
    const e = (await registry.resolve(`file://${join(src, 'nope')}`, { split: 'block' }).catch((x: unknown) => x)) as LocusError;
    expect(e.code).toBe('NOT_FOUND');
  });

  describe('the locus CLI', () => {
    let server: WebHdfsServer;
    beforeAll(async () => {
      server = await startWebHdfsServer({ files: [{ path: '/d/x.csv', size: 3 * 128 * MiB }, { path: '/d/y.csv', size: 10 }] });
    });
    afterAll(async () => {
      await server.close();
    });

    it('locus data put then locus locate --json prints only the documented shape', async () => {
      const put = await run('node', [CLI, 'data', 'put', join(src, 'sub'), 'local://cli/sub', '--work-dir', work, '--replicas', '2', '--block-size', '1MiB']);
      expect(put.stdout).toMatch(/put 1 file/);
      const { stdout, stderr } = await run('node', [CLI, 'locate', 'local://cli/sub', `hdfs://127.0.0.1:${server.port}/d`, '--json', '--work-dir', work, '--webhdfs-user', 'alice']);
      expect(stderr).toBe('');
      const doc = JSON.parse(stdout) as { files: Array<Record<string, unknown> & { splits: Array<Record<string, unknown>> }> };
      expect(Object.keys(doc)).toEqual(['files']);
      expect(doc.files.map((f) => f['uri'])).toEqual(['local://cli/sub/small.txt', `hdfs://127.0.0.1:${server.port}/d/x.csv`, `hdfs://127.0.0.1:${server.port}/d/y.csv`]);
      for (const f of doc.files) {
        expect(Object.keys(f)).toEqual(['uri', 'size', 'splits']);
        for (const s of f.splits) expect(Object.keys(s)).toEqual(['offset', 'length', 'hosts', 'racks']);
      }
      expect(doc.files[1]?.splits).toHaveLength(3);
      expect(doc.files[1]?.splits[0]?.['hosts']).toEqual(server.placement('/d/x.csv')[0]?.datanodes.map((d) => server.datanodes[d]?.hostName));
      expect(doc.files[0]?.splits[0]?.['hosts']).toHaveLength(2);
    });

    it('prints a summary of the spread over hosts, applies --host-map, and fails clearly', async () => {
      const map = join(work, 'hosts.yaml');
      await writeFile(map, 'hosts:\n  dn-a: agent-1\nracks:\n  agent-1: r9\n');
      const { stdout } = await run('node', [CLI, 'locate', `hdfs://127.0.0.1:${server.port}/d/x.csv`, '--host-map', map, '--splits', 'file']);
      expect(stdout).toMatch(/summary: 1 file, 384MiB, 1 split/);
      expect(stdout).toMatch(/agent-1\s+1\s+384MiB\s+100\.0%/);
      expect(stdout).not.toMatch(/dn-a/);
      const err = await run('node', [CLI, 'locate', `hdfs://127.0.0.1:${server.port}/nope`]).catch((e: { stderr: string; code: number }) => e);
      expect((err as { code: number }).code).toBe(1);
      expect((err as { stderr: string }).stderr).toMatch(new RegExp(`^locus: hdfs://127.0.0.1:${server.port}/nope: .*no such file`));
    });
  });
});
