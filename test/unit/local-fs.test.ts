/**
 * Which output directories count as local (metadata calls made synchronously there): only
 * filesystems known to be disk- or memory-backed; network and FUSE mounts, and anything that
 * cannot be looked at, stay asynchronous.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLocalFsType, knownLocalFs, learnLocalFs } from '../../src/executor/local-fs.js';

const dir = mkdtempSync(join(tmpdir(), 'locus-localfs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('local filesystems', () => {
  it('knows ext4, xfs, btrfs, tmpfs and overlayfs as local; NFS, CephFS and FUSE (GlusterFS) are not', () => {
    for (const t of [0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630]) expect(isLocalFsType(t), t.toString(16)).toBe(true);
    for (const t of [0x6969, 0x00c36400, 0x65735546, 0xff534d42, 0]) expect(isLocalFsType(t), t.toString(16)).toBe(false);
  });

  it('learns a directory once, from its statfs type', async () => {
    const expected = isLocalFsType(statfsSync(dir).type);
    expect(knownLocalFs(dir)).toBe(false);
    expect(await learnLocalFs(dir)).toBe(expected);
    expect(knownLocalFs(dir)).toBe(expected);
  });

  it('counts a directory it cannot look at as not local, and does not remember that', async () => {
    const missing = join(dir, 'not-yet');
    expect(await learnLocalFs(missing)).toBe(false);
    expect(knownLocalFs(missing)).toBe(false);
  });
});
