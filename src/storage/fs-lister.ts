/**
 * Listing a directory tree on a local or mounted file system (file://,
 * GlusterFS and CephFS mounts) for path expansion. Every call has a
 * deadline: a dead FUSE mount blocks stat() forever, and we must not.
 */
import { readdir, stat } from 'node:fs/promises';
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
