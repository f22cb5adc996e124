/**
 * `locus data put`: copy a local file or directory into a local dataset,
 * cutting files into blocks and writing each block to `replicas` agents
 * (distinct agents, different racks when possible), then recording the
 * layout in the dataset's manifest. Deterministic for the same inputs.
 */
import { mkdir, open, readdir, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { LocusError } from '../../core/errors.js';
import { normalisePath } from '../uri.js';
import { checkDatasetName, chooseReplicas, manifestPath, readManifest, readTopology, replicaPathHere, type DatasetFile, type DatasetManifest, type LocalAgent } from './dataset.js';

/** What to put where. */
export interface PutLocalDatasetOptions {
  /** The local cluster's work directory (holds topology.json and datasets/). */
  readonly workDir: string;
  /** A local file or directory. */
  readonly source: string;
  readonly dataset: string;
  /** Destination path in the dataset ('/' or '' = the root; a directory source goes beneath it). */
  readonly path?: string;
  readonly replicas?: number;
  /** Bytes per block (default 8 MiB). */
  readonly blockSize?: number;
  /** Stops the put (Ctrl-C): what it wrote is removed, the dataset stays as it was. */
  readonly signal?: AbortSignal;
}

/** Puts begun by this process, for unique temporary names beside the replicas. */
let puts = 0;

/** The result: the manifest entries written. */
export interface PutResult {
  readonly dataset: string;
  readonly files: readonly DatasetFile[];
  readonly bytes: number;
  /**
   * Copies written of each block: the replicas asked for, or fewer when the cluster has fewer
   * agents (a block has at most one copy on an agent). The caller tells the user when it is fewer.
   */
  readonly replicas: number;
}

async function listSource(source: string): Promise<{ abs: string; rel: string }[]> {
  let s;
  try {
    s = await stat(source);
  } catch (err) {
    throw new LocusError('NOT_FOUND', `${source}: no such file or directory`, { cause: err });
  }
  if (!s.isDirectory()) return [{ abs: source, rel: '' }];
  const out: { abs: string; rel: string }[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push({ abs: p, rel: relative(source, p).split(sep).join('/') });
    }
  };
  await walk(source);
  return out;
}

/**
 * A path inside a dataset, normalised; `.` and `..` segments are refused: a replica's file is the
 * agent's data directory joined with it, and `..` would climb out of it (over the cluster's
 * topology, say).
 */
function datasetPath(path: string): string {
  const p = normalisePath(path);
  if (p.split('/').some((seg) => seg === '.' || seg === '..') || p.includes('\0')) {
    throw new LocusError('INVALID_FIELD', `path '${path}' must not contain '.' or '..' segments`, { field: 'path' });
  }
  return p;
}

/**
 * Refuse a put whose files would clash with the dataset's, or with each other, as file against
 * directory: a new `/a/b` under an existing file `/a`, or a new file `/a` over the directory of
 * an existing `/a/b`. Checked before anything is written; the file system would refuse it half
 * way through, after other replicas had been overwritten.
 */
function checkClashes(paths: readonly string[], existing: readonly string[]): void {
  const files = new Set([...existing, ...paths]);
  const dirs = new Map<string, string>();
  for (const f of files) {
    for (let i = f.indexOf('/', 1); i > 0; i = f.indexOf('/', i + 1)) if (!dirs.has(f.slice(0, i))) dirs.set(f.slice(0, i), f);
  }
  for (const p of paths) {
    const under = dirs.get(p);
    if (under !== undefined) throw new LocusError('CONFLICT', `'${p}' would be a file, but the dataset has '${under}' beneath it`, { field: 'path' });
    for (let i = p.indexOf('/', 1); i > 0; i = p.indexOf('/', i + 1)) {
      const parent = p.slice(0, i);
      if (files.has(parent)) throw new LocusError('CONFLICT', `'${p}' would go beneath '${parent}', which is a file of the dataset`, { field: 'path' });
    }
  }
}

/** A file-system failure while writing the dataset, as an error that names the file. */
function storageError(file: string, err: unknown, intact = true): LocusError {
  if (err instanceof LocusError) return err;
  const code = (err as { code?: unknown }).code;
  const why = code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR' ? 'a file and a directory of that name clash there' : err instanceof Error ? err.message : String(err);
  const state = intact ? 'the dataset is as it was before this put' : 'some of its files were replaced: put them again';
  return new LocusError('STORAGE', `writing ${file} failed: ${why}; ${state}`, { cause: err });
}

/** Lay a file or directory out as (part of) a local dataset. */
export async function putLocalDataset(options: PutLocalDatasetOptions): Promise<PutResult> {
  checkDatasetName(options.dataset);
  const replicas = options.replicas ?? 2;
  const blockSize = options.blockSize ?? 8 * 1024 * 1024;
  if (!Number.isInteger(replicas) || replicas < 1) throw new LocusError('INVALID_FIELD', `replicas must be an integer >= 1, got ${replicas}`, { field: 'replicas' });
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new LocusError('INVALID_FIELD', `block size must be a positive number of bytes, got ${blockSize}`, { field: 'blockSize' });
  const topology = await readTopology(options.workDir);
  // Sorted by hostname (stable across restarts, unlike agent ids) so the
  // layout does not depend on the order agents registered in.
  const agents = [...topology.agents].sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  if (agents.length === 0) throw new LocusError('UNSATISFIABLE', 'the local cluster has no agents');
  const existing = await readManifest(options.workDir, options.dataset);
  if (existing !== undefined && existing.blockSize !== blockSize) {
    throw new LocusError('CONFLICT', `dataset '${options.dataset}' uses block size ${existing.blockSize}; put with the same block size`);
  }
  const sources = await listSource(options.source);
  // A target ending in '/' names a directory: a single file goes beneath it under its own name.
  const intoDir = (options.path ?? '/').endsWith('/');
  const dest = datasetPath(options.path ?? '/');
  const isDirSource = sources.length !== 1 || sources[0]?.rel !== '';
  const planned = sources.map((src) => ({
    src,
    path: datasetPath(isDirSource || intoDir || dest === '/' ? `${dest}/${isDirSource ? src.rel : basename(src.abs) || 'data'}` : dest),
  }));
  checkClashes(planned.map((p) => p.path), existing?.files.map((f) => f.path) ?? []);
  // Continue the rotation where the dataset left off, so repeated puts stay even.
  let counter = existing?.files.reduce((n, f) => n + f.blocks.length, 0) ?? 0;
  const written: DatasetFile[] = [];
  let bytes = 0;
  const buf = Buffer.alloc(Math.min(blockSize, 16 * 1024 * 1024));
  // Every replica is written beside its place under a temporary name and renamed over it only
  // once the whole put is written: a put that fails half way leaves the dataset as it was.
  // Short: the replica's own name follows, and the whole must stay within NAME_MAX (255).
  const temp = `.lp${process.pid}.${puts++}`;
  const renames: { from: string; to: string }[] = [];
  const stopped = (): void => {
    if (options.signal?.aborted === true) throw new LocusError('UNAVAILABLE', 'the put was stopped; the dataset is as it was before it');
  };
  try {
    for (const { src, path } of planned) {
      stopped();
      const size = (await stat(src.abs).catch((err: unknown) => { throw storageError(src.abs, err); })).size;
      const blocks: { offset: number; length: number; agents: LocalAgent[] }[] = [];
      for (let off = 0; off < size; off += blockSize) blocks.push({ offset: off, length: Math.min(blockSize, size - off), agents: chooseReplicas(agents, counter++, replicas) });
      const holders = [...new Set(blocks.flatMap((b) => b.agents))];
      const handles = new Map<LocalAgent, FileHandle>();
      const input = await open(src.abs, 'r').catch((err: unknown) => { throw storageError(src.abs, err); });
      try {
        for (const a of holders) {
          const p = replicaPathHere(a, options.dataset, path);
          const t = join(dirname(p), `${temp}-${basename(p)}`);
          try {
            await mkdir(dirname(p), { recursive: true });
            renames.push({ from: t, to: p });
            const h = await open(t, 'w');
            handles.set(a, h);
            // Full size, sparse: bytes of blocks this agent does not hold stay holes.
            await h.truncate(size);
          } catch (err) {
            throw storageError(p, err);
          }
        }
        try {
          for (const b of blocks) {
            stopped();
            for (let done = 0; done < b.length; ) {
              const n = Math.min(buf.length, b.length - done);
              const { bytesRead } = await input.read(buf, 0, n, b.offset + done);
              if (bytesRead === 0) throw new LocusError('STORAGE', `${src.abs} shrank while being copied`);
              for (const a of b.agents) await handles.get(a)?.write(buf, 0, bytesRead, b.offset + done);
              done += bytesRead;
            }
          }
        } catch (err) {
          // A full disk, an I/O error: named, and the dataset left as it was (no stack trace).
          throw storageError(`${src.abs} → ${path}`, err);
        }
      } finally {
        await input.close();
        for (const h of handles.values()) await h.close();
      }
      bytes += size;
      written.push({ path, size, blocks: blocks.map((b) => ({ offset: b.offset, length: b.length, hosts: b.agents.map((a) => a.hostname) })) });
    }
    stopped();
    // A directory where a replica goes (left on disk, unknown to the manifest) would fail its
    // rename after others were done: found before any is.
    for (const r of renames) {
      const there = await stat(r.to).catch(() => undefined);
      if (there?.isDirectory() === true) throw storageError(r.to, Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
    }
    for (const r of renames) {
      try {
        await rename(r.from, r.to);
      } catch (err) {
        throw storageError(r.to, err, false);
      }
    }
    renames.length = 0;
  } finally {
    // Whatever was not renamed into place (a failed put) goes.
    for (const r of renames) await rm(r.from, { force: true }).catch(() => undefined);
  }
  const byPath = new Map((existing?.files ?? []).map((f) => [f.path, f]));
  for (const f of written) byPath.set(f.path, f);
  const manifest: DatasetManifest = {
    version: 1,
    dataset: options.dataset,
    blockSize,
    // What the dataset holds: no block has more copies than there are agents.
    replicas: Math.max(Math.min(replicas, agents.length), existing?.replicas ?? 0),
    files: [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : 1)),
  };
  const file = manifestPath(options.workDir, options.dataset);
  await mkdir(dirname(file), { recursive: true });
  // Write then rename, so a reader never sees half a manifest.
  try {
    await writeFile(`${file}.tmp`, JSON.stringify(manifest, null, 1));
    await rename(`${file}.tmp`, file);
  } catch (err) {
    throw storageError(file, err, false);
  }
  return { dataset: options.dataset, files: written, bytes, replicas: Math.min(replicas, agents.length) };
}
