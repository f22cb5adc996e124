/**
 * Atomic JSON checkpoints: write a temporary file, fsync it, rename it over
 * the old one. A crash leaves either the old or the new file, never half of
 * one — the way the Mesos agent checkpoints its id and resources.
 */
import { fchmodSync, mkdirSync, openSync, writeSync, fsyncSync, closeSync, renameSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Write `value` as JSON to `path` atomically (temp + fsync + rename), readable by its owner
 * only unless `mode` says otherwise: a checkpoint holds the cluster's state (task infos with
 * their environments), and a task without a mount namespace could otherwise read it.
 */
export function writeCheckpoint(path: string, value: unknown, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    // A temporary file a crash left behind keeps its old mode through open(2): set it.
    fchmodSync(fd, mode);
    writeSync(fd, JSON.stringify(value, null, 2) + '\n');
    fsyncSync(fd);
  } catch (err) {
    // A full disk: the half-written file goes, the checkpoint in place stays as it was.
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/** Read a checkpoint, or undefined when there is none yet. Corrupt JSON throws. */
export function readCheckpoint(path: string): unknown {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as unknown;
}
