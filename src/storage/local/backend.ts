/**
 * Backends for this machine: `local://dataset/path` (datasets laid out
 * across the local cluster's agents, see ./dataset.ts) and `file:///path`
 * (files on this host, every split held by this host).
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { PassThrough, type Readable } from 'node:stream';
import type { FileLocations } from '../../core/blocks.js';
import { storageError, wrapStorageError } from '../errors.js';
import { expandPath, type Entry, type Lister } from '../expand.js';
import { fsLister } from '../fs-lister.js';
import type { HostMapper, StorageReplica } from '../hostmap.js';
import type { ResolveOptions, StorageBackend } from '../port.js';
import { fileLocations, uniformBlocks } from '../splits.js';
import { normalisePath, parseStorageUri } from '../uri.js';
import { readManifest, readTopology, replicaPath, type DatasetManifest, type LocalAgent } from './dataset.js';

/** Settings for local:// datasets. */
export interface LocalDatasetConfig {
  /** The local cluster's work directory (default ~/.locus/local). */
  readonly workDir: string;
}

function manifestLister(manifest: DatasetManifest): Lister {
  const files = new Map(manifest.files.map((f) => [f.path, f]));
  const dirs = new Set<string>(['/']);
  for (const f of manifest.files) {
    const parts = f.path.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) dirs.add('/' + parts.slice(0, i).join('/'));
  }
  return {
    async stat(p) {
      const f = files.get(p);
      if (f !== undefined) return { path: p, type: 'file', size: f.size };
      return dirs.has(p) ? { path: p, type: 'dir', size: 0 } : undefined;
    },
    async list(dir) {
      const prefix = dir === '/' ? '/' : `${dir}/`;
      const out = new Map<string, Entry>();
      for (const f of manifest.files) {
        if (!f.path.startsWith(prefix)) continue;
        const rest = f.path.slice(prefix.length);
        const cut = rest.indexOf('/');
        const child = prefix + (cut < 0 ? rest : rest.slice(0, cut));
        if (!out.has(child)) out.set(child, cut < 0 ? { path: child, type: 'file', size: f.size } : { path: child, type: 'dir', size: 0 });
      }
      return [...out.values()];
    },
  };
}

/** The local-dataset backend. */
export class LocalDatasetBackend implements StorageBackend {
  readonly schemes = ['local'] as const;

  constructor(private readonly config: LocalDatasetConfig, private readonly mapper: HostMapper) {}

  async resolve(uri: string, options: ResolveOptions): Promise<FileLocations[]> {
    try {
      const u = parseStorageUri(uri);
      if (u.authority === '') throw storageError('INVALID_FIELD', uri, 'names no dataset (expected local://dataset/path)');
      const manifest = await readManifest(this.config.workDir, u.authority);
      if (manifest === undefined) throw storageError('NOT_FOUND', uri, `no dataset '${u.authority}' in ${this.config.workDir} (create it with: locus data put <file> local://${u.authority}/)`);
      const topology = await readTopology(this.config.workDir);
      const byHost = new Map<string, LocalAgent>(topology.agents.map((a) => [a.hostname, a]));
      const entries = await expandPath(normalisePath(u.path || '/'), manifestLister(manifest));
      if (entries === undefined) throw storageError('NOT_FOUND', uri, 'no such file or directory in the dataset');
      const files = new Map(manifest.files.map((f) => [f.path, f]));
      return entries.map((e) => {
        const f = files.get(e.path);
        const blocks = (f?.blocks ?? []).map((b) => ({
          offset: b.offset,
          length: b.length,
          replicas: b.hosts.map((h): StorageReplica => {
            const agent = byHost.get(h);
            const r: StorageReplica = { names: [h], ...(agent?.rack === undefined ? {} : { rack: agent.rack }) };
            return agent === undefined ? r : { ...r, path: replicaPath(agent, u.authority, e.path) };
          }),
        }));
        return fileLocations(`local://${u.authority}${e.path}`, e.size, blocks, options.split, this.mapper);
      });
    } catch (err) {
      throw wrapStorageError(uri, err);
    }
  }

  /** Read a byte range, block by block, from whichever agent holds each block. */
  async read(uri: string, offset: number, length: number): Promise<Readable> {
    const [file] = await this.resolve(uri, { split: 'block' });
    if (file === undefined) throw storageError('NOT_FOUND', uri, 'no such file');
    const out = new PassThrough();
    const end = Math.min(file.size, offset + length);
    void (async () => {
      for (const s of file.splits) {
        const from = Math.max(offset, s.offset);
        const to = Math.min(end, s.offset + s.length);
        if (from >= to) continue;
        const path = Object.values(s.localPaths ?? {})[0];
        if (path === undefined) throw storageError('UNAVAILABLE', uri, `no replica path for bytes ${s.offset}+${s.length}`);
        const h = await open(path, 'r');
        try {
          const buf = Buffer.alloc(to - from);
          await h.read(buf, 0, buf.length, from);
          if (!out.write(buf)) await new Promise((r) => out.once('drain', r));
        } finally {
          await h.close();
        }
      }
      out.end();
    })().catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
    return out;
  }
}

/** Settings for file:// URIs. */
export interface FileConfig {
  /** Host name reported for local files (default: this machine's hostname). */
  readonly hostname?: string;
  readonly splitSize?: number;
  readonly timeoutMs?: number;
}

/** The file:// backend: files on this host. */
export class FileBackend implements StorageBackend {
  readonly schemes = ['file'] as const;

  constructor(private readonly config: FileConfig, private readonly mapper: HostMapper) {}

  async resolve(uri: string, options: ResolveOptions): Promise<FileLocations[]> {
    try {
      const u = parseStorageUri(uri);
      if (u.authority !== '' && u.authority !== 'localhost') throw storageError('INVALID_FIELD', uri, `file:// URIs name this host only (file:///path), not '${u.authority}'`);
      const files = await expandPath(normalisePath(u.path || '/'), fsLister('/', this.config.timeoutMs ?? 30_000, options.signal));
      if (files === undefined) throw storageError('NOT_FOUND', uri, 'no such file or directory');
      const replicas: StorageReplica[] = [{ names: [this.config.hostname ?? hostname()] }];
      return files.map((f) => fileLocations(`file://${f.path}`, f.size, uniformBlocks(f.size, this.config.splitSize ?? 128 * 1024 * 1024, replicas), options.split, this.mapper, f.path));
    } catch (err) {
      throw wrapStorageError(uri, err);
    }
  }

  async read(uri: string, offset: number, length: number): Promise<Readable> {
    const u = parseStorageUri(uri);
    return createReadStream(normalisePath(u.path), { start: offset, end: Math.max(offset, offset + length - 1) });
  }
}
