/**
 * getfattr saying a GlusterFS volume cannot be reached: a brick server away leaves the volume's
 * directory listing answered (DHT lists the subvolumes still up), while getfattr of pathinfo on a
 * file of the missing brick fails with "Transport endpoint is not connected". That is an outage a
 * stage's listing waits out, not a mount that is not GlusterFS (which fails at once).
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isTransientStorageError } from '../../src/storage/errors.js';
import { createStorageRegistry } from '../../src/storage/registry.js';
import { mountTmpfs, unmountAll } from '../harness/mounts.js';
import { ROOT, describeWith } from '../harness/requires.js';

let dir: string;
/** The volume's mount: a real mount (a tmpfs stands in for the FUSE client), since an unmounted one is refused before getfattr is asked. */
let mount: string;

/** A getfattr that prints `complaint` for its last file, as getfattr does, and exits 1. */
async function fakeGetfattr(name: string, complaint: string): Promise<string> {
  const bin = join(dir, name);
  await writeFile(bin, `#!/bin/sh\nfor last; do :; done\necho "getfattr: $last: ${complaint}" >&2\nexit 1\n`);
  await chmod(bin, 0o755);
  return bin;
}

describeWith([ROOT], 'GlusterFS pathinfo that getfattr cannot read', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'locus-gluster-getfattr-'));
    mount = join(dir, 'gv0');
    await mkdir(mount);
    mountTmpfs(mount);
    await writeFile(join(mount, 'a.txt'), 'x');
  });
  afterAll(async () => {
    unmountAll();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['the brick cannot be reached (ENOTCONN): transient, UNAVAILABLE', 'Transport endpoint is not connected', true, 'UNAVAILABLE'],
    ['the mount has no such attribute (not GlusterFS): permanent', 'No such attribute', false, 'STORAGE'],
  ])('%s', async (_what, complaint, transient, code) => {
    const getfattrBin = await fakeGetfattr(`getfattr-${code}`, complaint);
    const storage = createStorageRegistry({ cache: { ttlMs: 0 }, gluster: { mounts: { gv0: mount }, getfattrBin } });
    try {
      const err = await storage.resolve('glusterfs://gv0/a.txt', { split: 'file' }).catch((e: unknown) => e);
      expect(isTransientStorageError(err)).toBe(transient);
      expect(err).toMatchObject({ code });
      expect((err as Error).message).toContain(complaint);
    } finally {
      await storage.close();
    }
  });
});
