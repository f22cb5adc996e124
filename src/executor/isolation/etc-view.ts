/**
 * The /etc a container sees, kept as one directory that each container binds
 * read-only at /etc, instead of one bind per file.
 *
 * Why: a container's root used to get each of the ~24 files of ETC_ENTRIES
 * as its own read-only bind: a mount point, a bind and a read-only remount
 * each, and as many mounts to tear down when the container ends. On this
 * 2-core VM that was about 0.8 ms of kernel time per container, an eighth
 * of what a short container costs in all (bench/results/isolated-*.md).
 *
 * The directory holds copies of the regular files (a symlink such as
 * /etc/localtime or /etc/resolv.conf is copied as the file it points to, which
 * is what a bind of it showed) and an empty mount point for each directory
 * entry (certificates, alternatives, ld.so.conf.d), which containers still
 * bind from the host. Copies are checked against their sources at most every
 * `ttlMs` and replaced by rename, so a container sees a file whole, old or
 * new, and running containers see the update too. Only the listed entries
 * are ever copied: secrets elsewhere in /etc never reach the directory.
 */
import { chmodSync, chownSync, copyFileSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';

/** What a container binds: the directory at /etc, then these entries of the host's /etc over it. */
export interface EtcBinds {
  readonly dir: string;
  readonly subdirs: readonly string[];
}

export class EtcView {
  private checkedAt = -Infinity;
  /** What each entry was copied from (file signature), or 'dir' for a mount point. */
  private readonly copied = new Map<string, string>();
  private subdirs: string[] = [];

  constructor(
    readonly dir: string,
    private readonly names: readonly string[],
    private readonly source = '/etc',
    private readonly ttlMs = 5000,
  ) {}

  /** The binds, refreshed first when the last check is older than ttlMs. Throws when the directory cannot be written. */
  current(now = Date.now()): EtcBinds {
    if (now - this.checkedAt >= this.ttlMs) {
      this.refresh();
      this.checkedAt = now;
    }
    return { dir: this.dir, subdirs: this.subdirs };
  }

  /** Bring the copies up to date with their sources. */
  refresh(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const subdirs: string[] = [];
    for (const name of this.names) {
      const src = join(this.source, name);
      const dst = join(this.dir, name);
      let st: Stats | undefined;
      try {
        // stat, not lstat: a symlinked entry is shown as what it points to.
        st = statSync(src);
      } catch {
        st = undefined;
      }
      if (st?.isDirectory()) {
        subdirs.push(name);
        if (this.copied.get(name) !== 'dir') {
          rmSync(dst, { recursive: true, force: true });
          mkdirSync(dst, { mode: 0o755 });
          this.copied.set(name, 'dir');
        }
        continue;
      }
      if (!st?.isFile()) {
        if (this.copied.delete(name)) rmSync(dst, { recursive: true, force: true });
        continue;
      }
      const signature = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.mode}:${st.uid}:${st.gid}`;
      if (this.copied.get(name) === signature) continue;
      const tmp = join(this.dir, `.${name}.new`);
      copyFileSync(src, tmp);
      chownSync(tmp, st.uid, st.gid);
      chmodSync(tmp, st.mode & 0o7777);
      if (this.copied.get(name) === 'dir') rmSync(dst, { recursive: true, force: true });
      renameSync(tmp, dst);
      this.copied.set(name, signature);
    }
    this.subdirs = subdirs;
  }

  /** Remove the directory (the isolator is closing), and its parent when no other copy is left there. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
    try {
      rmdirSync(dirname(this.dir));
    } catch {
      // Another isolator's copy is there, or it was never made.
    }
  }
}

/** Directories of dead owners under `parent` named `<prefix><owner tag>`: removed; returns their names. */
export function removeStaleViews(parent: string, prefix: string, alive: (owner: string) => boolean): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return removed;
  }
  for (const n of names) {
    if (!n.startsWith(prefix) || alive(n.slice(prefix.length))) continue;
    rmSync(join(parent, n), { recursive: true, force: true });
    removed.push(n);
  }
  return removed;
}
