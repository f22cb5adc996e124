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
  if (known.size >= MAX_KNOWN) known.clear();
  known.set(dir, local);
  return local;
}

/** Whether `dir` is known to be on a local filesystem (false until learnLocalFs has looked). */
export function knownLocalFs(dir: string): boolean {
  return known.get(dir) === true;
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
