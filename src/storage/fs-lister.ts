/**
 * Listing a directory tree on a local or mounted file system (file://,
 * GlusterFS and CephFS mounts) for path expansion. Every call has a
 * deadline: a dead FUSE mount blocks stat() forever, and we must not.
 */
import { readdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { withTimeout } from './concurrency.js';
import type { Entry, Lister } from './expand.js';

/** A Lister over `root` + path; entry paths are relative to root (start with '/'). */
export function fsLister(root: string, timeoutMs: number, signal?: AbortSignal): Lister {
  const abs = (p: string): string => (root === '/' || root === '' ? p : root.replace(/\/$/, '') + p);
  const toEntry = (p: string, s: { isDirectory(): boolean; size: number }): Entry => ({ path: p, type: s.isDirectory() ? 'dir' : 'file', size: s.isDirectory() ? 0 : s.size });
  return {
    async stat(p) {
      try {
        return toEntry(p, await withTimeout(`stat ${abs(p)}`, timeoutMs, stat(abs(p)), signal));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
        throw err;
      }
    },
    async list(dir) {
      const names = await withTimeout(`readdir ${abs(dir)}`, timeoutMs, readdir(abs(dir)), signal);
      const out: Entry[] = [];
      for (const name of names.sort()) {
        const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
        try {
          out.push(toEntry(p, await withTimeout(`stat ${abs(p)}`, timeoutMs, stat(abs(p)), signal)));
        } catch (err) {
          // A file removed between readdir and stat is simply gone.
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      return out;
    },
  };
}

/**
 * Whether the file system meant to be mounted at `mount` is not there: the directory is on the
 * same device as its parent (unmounted: what is left is the empty mount point), or it cannot be
 * looked at at all. A path missing under such a mount is not "no such file": the storage is
 * away, and a stage listing it waits (storage/errors.ts isTransientStorageError). Only asked once
 * a path was found missing, so a healthy listing pays nothing for it.
 */
export async function mountGone(mount: string, timeoutMs: number): Promise<boolean> {
  const root = mount.replace(/\/+$/, '');
  if (root === '') return false;
  try {
    const [self, parent] = await Promise.all([
      withTimeout(`stat ${root}`, timeoutMs, stat(root)),
      withTimeout(`stat ${dirname(root)}`, timeoutMs, stat(dirname(root))),
    ]);
    return self.dev === parent.dev;
  } catch {
    return true;
  }
}
