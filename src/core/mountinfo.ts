/**
 * Parsing /proc/self/mountinfo (proc(5)). Shared by the executor (cgroup hierarchies, which
 * output directories are local) and storage (whether a configured GlusterFS or CephFS mount
 * point is mounted at all): both read the same table, and must agree on how it is parsed.
 */

/** One line of /proc/self/mountinfo that matters here. */
export interface MountLine {
  /** Where it is mounted, in this process's view (octal escapes such as `\040` undone). */
  readonly mountPoint: string;
  /** The directory of the filesystem mounted there (`/` unless a bind mount of a subtree). */
  readonly root: string;
  readonly fsType: string;
  /** The mount source (`/dev/sda1`, `localhost:/gv0`, `ceph-fuse`). */
  readonly source: string;
  readonly superOptions: readonly string[];
}

/** Parse /proc/self/mountinfo text into mount points, roots, types, sources and super options. */
export function parseMountinfo(text: string): MountLine[] {
  const out: MountLine[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    // Fields: id parent major:minor root mountpoint options [optional…] - fstype source superopts
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    out.push({
      mountPoint: unescapeMount(left[4] ?? ''),
      root: unescapeMount(left[3] ?? ''),
      fsType: right[0] ?? '',
      source: unescapeMount(right[1] ?? ''),
      superOptions: (right[2] ?? '').split(','),
    });
  }
  return out;
}

/** The kernel writes space, tab, newline and backslash in paths as `\ooo`. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * The mount a path is on: the last-made mount whose mount point is the path or one of its
 * ancestors, the longest such point winning (a later mount over the same point hides the earlier,
 * and mountinfo lists mounts in the order they were made). `path` is absolute and normalised.
 */
export function mountHolding(mounts: readonly MountLine[], path: string): MountLine | undefined {
  let best: MountLine | undefined;
  for (const m of mounts) {
    const under = path === m.mountPoint || m.mountPoint === '/' || path.startsWith(`${m.mountPoint}/`);
    if (under && (best === undefined || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}
