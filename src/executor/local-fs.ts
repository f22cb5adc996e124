/**
 * Which output directories are on a local filesystem. There the executor makes an attempt's
 * metadata calls (mkdir, chmod, readdir, open, write, close, rename, rmdir) synchronously and
 * only the fsyncs through libuv's thread pool: each call handed to the pool costs two thread
 * switches and a futex wake, which on a small VM cost more than the call. A profile of the
 * dispatch benchmark's executors (60,000 no-op attempts) had 19 of their 39 s of main-thread CPU
 * in handing such calls to the pool; made synchronously, the executors spent 22 % less CPU per
 * attempt (bench/results/dispatch-2026-12-06-g.md). On a network filesystem (NFS, CephFS, a
 * GlusterFS FUSE mount) a call can block for as long as the server takes, and a blocked event
 * loop stops the executor's heartbeat, so there every call stays asynchronous; so does any
 * filesystem not known to be local.
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import { parseMountinfo } from '../core/mountinfo.js';

/** statfs f_type values of local, disk- or memory-backed filesystems (linux/magic.h). */
const LOCAL_TYPES: ReadonlySet<number> = new Set([
  0xef53, // ext2, ext3, ext4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0x794c7630, // overlayfs
  0x2fc12fc2, // zfs
  0xf2f52010, // f2fs
]);

/** Whether a statfs type names a local filesystem. */
export function isLocalFsType(type: number): boolean {
  return LOCAL_TYPES.has(type);
}

/** The same filesystems by the names /proc/self/mountinfo gives them. */
const LOCAL_TYPE_NAMES: ReadonlySet<string> = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'tmpfs', 'overlay', 'zfs', 'f2fs']);

/** One mount of /proc/self/mountinfo: where, and whether its filesystem is local. */
export interface MountPoint {
  readonly point: string;
  readonly local: boolean;
}

/** The mounts of a mountinfo text (proc(5), parsed as the cgroup layout is), longest mount point first. */
export function localityOfMounts(text: string): MountPoint[] {
  // A mount over another at the same point hides it: the later line (mountinfo lists mounts in
  // the order they were made) is the one a path reaches.
  const byPoint = new Map<string, MountPoint>();
  for (const m of parseMountinfo(text)) byPoint.set(m.mountPoint, { point: m.mountPoint, local: LOCAL_TYPE_NAMES.has(m.fsType) });
  return [...byPoint.values()].sort((a, b) => b.point.length - a.point.length);
}

/** The mount holding `path` (an absolute, normalized path): the longest mount point it is under. */
function mountOf(mounts: readonly MountPoint[], path: string): MountPoint | undefined {
  for (const m of mounts) {
    if (path === m.point || m.point === '/' || path.startsWith(`${m.point}/`)) return m;
  }
  return undefined;
}

/**
 * Whether `dir` is on a local filesystem, told without a statfs (which must not block, so it goes
 * through the thread pool): from the mount table, walking the path down from the root with lstat
 * only where the mount table says the filesystem is local. A component that does not exist yet
 * will be made by mkdir on the filesystem of the one above it. Undefined when it cannot be told
 * so (a symbolic link on the way, something not a directory, no mount table): the statfs decides.
 *
 * Why: a new job's output directory was not known until a statfs had looked, so its first
 * attempts' set-up calls went through the pool, where under load they queued behind the commits'
 * fsyncs (53 ms at the median, 251 at p90, against 10 and 39 for later attempts: bench/results/
 * dispatch-2026-12-06-s8.notes.md).
 */
export function judgeLocalFs(dir: string, mountInfo?: string): boolean | undefined {
  let text = mountInfo;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return undefined;
    }
  }
  const mounts = localityOfMounts(text);
  if (!dir.startsWith('/') || dir.split('/').some((c) => c === '.' || c === '..')) return undefined;
  const parts = dir.split('/').filter((c) => c !== '');
  let path = '';
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) path += `/${parts[i - 1] as string}`;
    const at = path === '' ? '/' : path;
    const m = mountOf(mounts, at);
    if (m === undefined) return undefined;
    // Never look into a filesystem that is not local: a hung server would block the call.
    if (!m.local) return false;
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(at, { throwIfNoEntry: false });
    } catch {
      return undefined;
    }
    if (st === undefined) return true;
    if (!st.isDirectory()) return undefined;
  }
  return true;
}

/** Directories looked at so far (a stage's output directory each); cleared when it grows past this. */
const MAX_KNOWN = 512;
const known = new Map<string, boolean>();

/**
 * Look at `dir`'s filesystem once (asynchronously: statfs of a hung network mount must not block)
 * and remember the answer. A directory that cannot be looked at counts as not local.
 */
export async function learnLocalFs(dir: string): Promise<boolean> {
  const seen = known.get(dir);
  if (seen !== undefined) return seen;
  let local: boolean;
  try {
    local = isLocalFsType((await fsp.statfs(dir)).type);
  } catch {
    return false;
  }
  remember(dir, local);
  return local;
}

/**
 * Whether `dir` is known to be on a local filesystem: judged from the mount table the first time
 * it is asked (judgeLocalFs), else false until learnLocalFs has looked.
 */
export function knownLocalFs(dir: string): boolean {
  const seen = known.get(dir);
  if (seen !== undefined) return seen;
  // Judged once: a directory the mount table cannot tell about waits for learnLocalFs.
  if (unjudgeable.has(dir)) return false;
  const judged = judgeLocalFs(dir);
  if (judged === undefined) {
    if (unjudgeable.size >= MAX_KNOWN) unjudgeable.clear();
    unjudgeable.add(dir);
    return false;
  }
  remember(dir, judged);
  return judged;
}

/** Directories the mount table could not tell about (a symbolic link on the way, ...). */
const unjudgeable = new Set<string>();

function remember(dir: string, local: boolean): void {
  if (known.size >= MAX_KNOWN) known.clear();
  known.set(dir, local);
}

/**
 * The metadata calls an attempt's output makes, each returning its value or a promise of it (the
 * caller awaits either): synchronous on a local filesystem, through the thread pool elsewhere.
 */
export interface MetaCalls {
  mkdirp(path: string): string | undefined | Promise<string | undefined>;
  chmod(path: string, mode: number): void | Promise<void>;
  readdir(path: string): fs.Dirent[] | Promise<fs.Dirent[]>;
  open(path: string, flags: string): number | Promise<number>;
  write(fd: number, text: string): unknown;
  close(fd: number): void | Promise<void>;
  rename(from: string, to: string): void | Promise<void>;
  rmdir(path: string): void | Promise<void>;
  /** Whether `path` exists (lstat: a dangling symlink exists). */
  exists(path: string): boolean | Promise<boolean>;
  /** fsync a file or directory by path: the flush always through the thread pool, only the open and close differ. */
  fsync(path: string): Promise<void>;
  /** fsync an open descriptor (through the thread pool). */
  fsyncFd(fd: number): Promise<void>;
}

const fsyncFd = (fd: number): Promise<void> => new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));

const SYNC_CALLS: MetaCalls = {
  mkdirp: (path) => fs.mkdirSync(path, { recursive: true }),
  chmod: (path, mode) => fs.chmodSync(path, mode),
  readdir: (path) => fs.readdirSync(path, { withFileTypes: true }),
  open: (path, flags) => fs.openSync(path, flags),
  write: (fd, text) => fs.writeSync(fd, text),
  close: (fd) => fs.closeSync(fd),
  rename: (from, to) => fs.renameSync(from, to),
  rmdir: (path) => fs.rmdirSync(path),
  exists: (path) => fs.lstatSync(path, { throwIfNoEntry: false }) !== undefined,
  fsync: async (path) => {
    const fd = fs.openSync(path, 'r');
    try {
      await fsyncFd(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
  fsyncFd,
};

/** The thread pool's calls (any filesystem not known to be local). */
export const POOLED_CALLS: MetaCalls = {
  mkdirp: (path) => fsp.mkdir(path, { recursive: true }),
  chmod: (path, mode) => fsp.chmod(path, mode),
  readdir: (path) => fsp.readdir(path, { withFileTypes: true }),
  open: (path, flags) => new Promise((resolve, reject) => fs.open(path, flags, (err, fd) => (err ? reject(err) : resolve(fd)))),
  write: (fd, text) => new Promise((resolve, reject) => fs.write(fd, text, (err) => (err ? reject(err) : resolve(undefined)))),
  close: (fd) => new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve()))),
  rename: (from, to) => fsp.rename(from, to),
  rmdir: (path) => fsp.rmdir(path),
  exists: (path) => fsp.lstat(path).then(() => true, () => false),
  fsync: async (path) => {
    const fh = await fsp.open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  fsyncFd,
};

/** The calls for an output under `dir` (a stage's output directory). */
export function metaCallsFor(dir: string): MetaCalls {
  return knownLocalFs(dir) ? SYNC_CALLS : POOLED_CALLS;
}
