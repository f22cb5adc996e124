/**
 * Listing a directory tree on a local or mounted file system (file://,
 * GlusterFS and CephFS mounts) for path expansion. Every call has a
 * deadline: a dead FUSE mount blocks stat() forever, and we must not.
 */
import type { Stats } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mountHolding, parseMountinfo } from '../core/mountinfo.js';
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

/** How mountinfo names the filesystem of a GlusterFS FUSE mount. */
export const GLUSTER_FS_TYPES: readonly string[] = ['fuse.glusterfs'];
/** How mountinfo names CephFS: the kernel client, ceph-fuse (and its name in some releases). */
export const CEPHFS_FS_TYPES: readonly string[] = ['ceph', 'fuse.ceph-fuse', 'fuse.ceph'];

/** The configured mount point does not exist (whyNotMounted): a setting's mistake, not the storage away. */
export class MissingMountPoint extends Error {
  constructor(readonly mountPoint: string) {
    super(`${mountPoint} does not exist: no mount point is there to mount on`);
    this.name = 'MissingMountPoint';
  }
}

/** Options of whyNotMounted. */
export interface MountCheckOptions {
  readonly signal?: AbortSignal;
  /** The mount table's text (default: /proc/self/mountinfo; undefined where there is none). */
  readonly mountinfo?: () => Promise<string | undefined>;
  /** stat(2) of the mount point (default: fs.promises.stat; tests stand in a hung one). */
  readonly stat?: (path: string) => Promise<Stats>;
}

/**
 * Mount points whose stat has not returned (since when, ms). A hung mount (a kernel CephFS
 * whose monitors are gone, a FUSE client stuck until its ping timeout) blocks stat(2) in the
 * kernel: the deadline stops the wait, not the call, which keeps one of libuv's four I/O threads
 * until the kernel gives up. A stage waiting for such a mount retries every 30 s; each look would
 * hold one more thread, and a few would stall every file, DNS and crypto call of the scheduler.
 * So a mount point is looked at again only once the last look returned: meanwhile it is reported
 * hung at once.
 */
const hungLooks = new Map<string, number>();

/** stat(2) of a mount point, at most one outstanding per path (hungLooks). */
function lookAtMountPoint(path: string, statOf: (path: string) => Promise<Stats>): Promise<Stats> {
  const since = hungLooks.get(path);
  if (since !== undefined) {
    const s = Math.round((Date.now() - since) / 1000);
    return Promise.reject(Object.assign(new Error(`${path} is hung: an earlier stat of it has not returned for ${s} s`), { code: 'ETIMEDOUT' }));
  }
  hungLooks.set(path, Date.now());
  const look = statOf(path);
  const done = (): void => void hungLooks.delete(path);
  look.then(done, done);
  return look;
}

async function readMountinfo(): Promise<string | undefined> {
  try {
    return await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Why the filesystem meant to be mounted at `mount` (a `gluster-mounts` entry, `cephfs-mount`) is
 * not there, or undefined when it is. An unmounted FUSE or kernel mount leaves its mount point
 * behind as a plain, empty directory: listed, a whole volume or a directory reads as "no files"
 * and a glob matches nothing, and the job failed at once although its storage was only away. So
 * the mount point is looked at before listing, and a mount found gone is reported by the caller
 * as UNAVAILABLE, which a stage's listing waits out (storage/errors.ts isTransientStorageError).
 *
 * Precise, so that working configurations keep working: a path on another device than its parent
 * is a mount point, whatever is mounted there (a wrong filesystem is told by the listing itself:
 * no pathinfo or layout attribute). On the same device as its parent (the classic "not a mount
 * point" test) it is still mounted when the mount table lists it as a mount point (a bind mount
 * of its own filesystem), or when the mount holding it is of one of `types` (the setting names a
 * directory inside a CephFS or GlusterFS mount). Anything else is a plain directory: not mounted.
 * Where there is no mount table (not Linux), the device test alone decides.
 *
 * A missing mount point is not mounted either; a mount point that cannot be looked at (a dead
 * FUSE client: ENOTCONN; a stat that hangs past timeoutMs) throws that error, itself transient.
 */
export async function whyNotMounted(mount: string, types: readonly string[], timeoutMs: number, options: MountCheckOptions = {}): Promise<string | undefined> {
  const root = mount.replace(/\/+$/, '');
  // The root directory is always mounted (and is its own parent).
  if (root === '') return undefined;
  const { signal } = options;
  let self: Stats;
  let parent: Stats;
  try {
    [self, parent] = await Promise.all([
      withTimeout(`stat ${root}`, timeoutMs, lookAtMountPoint(root, options.stat ?? ((p) => stat(p))), signal),
      withTimeout(`stat ${dirname(root)}`, timeoutMs, stat(dirname(root)), signal),
    ]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A mount point outlives its mount (unmounting leaves the directory): one that is not there
    // at all is a setting naming the wrong path, which no wait mends.
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new MissingMountPoint(root);
    throw err;
  }
  if (self.dev !== parent.dev) return undefined;
  const table = await (options.mountinfo ?? readMountinfo)();
  if (table === undefined) return `${root} is not mounted: it is on the same device as ${dirname(root)}`;
  // The table names mount points by their real paths: a symbolic link on the way is resolved.
  const real = await withTimeout(`realpath ${root}`, timeoutMs, realpath(root), signal);
  const mounts = parseMountinfo(table);
  if (mounts.some((m) => m.mountPoint === real)) return undefined;
  const holder = mountHolding(mounts, real);
  if (holder !== undefined && types.includes(holder.fsType)) return undefined;
  const on = holder === undefined ? `the filesystem of ${dirname(root)}` : `${holder.fsType} ${holder.mountPoint}`;
  return `${root} is not mounted: it is a plain directory on ${on}, not a mount of ${types.join(' or ')}`;
}
