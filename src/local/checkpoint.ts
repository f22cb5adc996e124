/**
 * Atomic JSON checkpoints: write a temporary file, fsync it, rename it over
 * the old one. A crash leaves either the old or the new file, never half of
 * one — the way the Mesos agent checkpoints its id and resources.
 */
import { mkdirSync, openSync, writeSync, fsyncSync, closeSync, renameSync, readFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';

/** Write `value` as JSON to `path` atomically (temp + fsync + rename). */
export function writeCheckpoint(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, JSON.stringify(value, null, 2) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Read a checkpoint, or undefined when there is none yet. Corrupt JSON throws. */
export function readCheckpoint(path: string): unknown {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as unknown;
}
