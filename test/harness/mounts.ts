/**
 * Real mounts for tests of a storage mount that goes away (root only): a small tmpfs mounted on a
 * directory stands for a GlusterFS or CephFS mount, and unmounting it leaves what an unmounted
 * FUSE or kernel mount leaves, the plain mount point directory. Each test unmounts what it
 * mounted (unmountAll in a finally or afterEach): a mount left behind outlives the test run.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const mounted: string[] = [];

/** Mount a 4 MiB tmpfs at `at` (an existing directory). */
export function mountTmpfs(at: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'locus-test', at]);
  mounted.push(at);
}

/** Bind-mount `at` onto itself: a mount point on the same device as its parent. */
export function bindOntoItself(at: string): void {
  execFileSync('mount', ['--bind', at, at]);
  mounted.push(at);
}

/** Unmount `at` (lazily if busy). */
export function unmount(at: string): void {
  try {
    execFileSync('umount', [at], { stdio: 'ignore' });
  } catch {
    execFileSync('umount', ['-l', at], { stdio: 'ignore' });
  }
  const i = mounted.lastIndexOf(at);
  if (i >= 0) mounted.splice(i, 1);
}

/** Unmount everything still mounted by this module, the latest first. */
export function unmountAll(): void {
  for (const at of [...mounted].reverse()) unmount(at);
}

/**
 * Write a `getfattr` into `dir` that answers the pathinfo of a distributed GlusterFS volume
 * `volume` with one brick on `host`, for any file (the real one asks the GlusterFS client, which a
 * tmpfs has not). Returns its path, for GlusterConfig.getfattrBin.
 */
export function fakeGlusterGetfattr(dir: string, volume: string, host: string): string {
  const bin = join(dir, 'getfattr');
  writeFileSync(bin, [
    '#!/bin/sh',
    'while [ "$1" != "--" ]; do shift; done; shift',
    `for f in "$@"; do printf '# file: %s\\ntrusted.glusterfs.pathinfo="(<DISTRIBUTE:${volume}-dht> <POSIX(/bricks/b1):${host}:/bricks/b1%s>)"\\n\\n' "$f" "$f"; done`,
    '',
  ].join('\n'), { mode: 0o755 });
  return bin;
}
