/**
 * Adding files that already sit on agents to a local dataset's manifest: the
 * final outputs a job committed to `local://<dataset>/<path>`, each file whole
 * on the host that committed it. Once listed, a later job reads them as
 * `local://` input with the committing host as the replica (node-local there,
 * through that host's block server elsewhere).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LocusError } from '../../core/errors.js';
import { normalisePath } from '../uri.js';
import { checkDatasetName, manifestPath, readManifest, type DatasetFile, type DatasetManifest } from './dataset.js';

/** One file to list: its path in the dataset and the host holding all of it. */
export interface HeldFile {
  readonly path: string;
  readonly size: number;
  readonly host: string;
}

/** Block size of a dataset created by a job's output (as `locus data put`'s default). */
const DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024;

/** Manifest writes of this process, one at a time per dataset (read, merge, write). */
const chains = new Map<string, Promise<unknown>>();

/**
 * List files in a dataset's manifest (creating the dataset when it does not exist), cut into
 * the dataset's blocks, every block on the file's host. A path already listed is refused
 * (CONFLICT): a job's output never replaces data another put or job listed.
 */
export async function addHeldFiles(workDir: string, dataset: string, files: readonly HeldFile[]): Promise<void> {
  checkDatasetName(dataset);
  const key = `${workDir}\0${dataset}`;
  const run = (chains.get(key) ?? Promise.resolve()).catch(() => undefined).then(async () => {
    const existing = await readManifest(workDir, dataset);
    const blockSize = existing?.blockSize ?? DEFAULT_BLOCK_SIZE;
    const byPath = new Map((existing?.files ?? []).map((f) => [f.path, f]));
    for (const f of files) {
      const path = normalisePath(f.path);
      const had = byPath.get(path);
      if (had !== undefined) {
        // The same file listed again (a retried publish) is fine; anything else is a clash.
        if (had.size === f.size && had.blocks.every((b) => b.hosts.length === 1 && b.hosts[0] === f.host)) continue;
        throw new LocusError('CONFLICT', `local://${dataset}${path} is already in the dataset`);
      }
      const blocks: DatasetFile['blocks'][number][] = [];
      for (let off = 0; off < f.size; off += blockSize) blocks.push({ offset: off, length: Math.min(blockSize, f.size - off), hosts: [f.host] });
      byPath.set(path, { path, size: f.size, blocks });
    }
    const manifest: DatasetManifest = {
      version: 1, dataset, blockSize, replicas: existing?.replicas ?? 1,
      files: [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : 1)),
    };
    const file = manifestPath(workDir, dataset);
    await mkdir(dirname(file), { recursive: true });
    // Write then rename, so a reader never sees half a manifest.
    await writeFile(`${file}.tmp`, JSON.stringify(manifest, null, 1));
    await rename(`${file}.tmp`, file);
  });
  chains.set(key, run);
  try {
    await run;
  } finally {
    if (chains.get(key) === run) chains.delete(key);
  }
}
