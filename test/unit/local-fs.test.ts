/**
 * Which output directories count as local (metadata calls made synchronously there): only
 * filesystems known to be disk- or memory-backed; network and FUSE mounts, and anything that
 * cannot be looked at, stay asynchronous.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLocalFsType, judgeLocalFs, knownLocalFs, learnLocalFs, localityOfMounts } from '../../src/executor/local-fs.js';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'locus-localfs-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('local filesystems', () => {
  it('knows ext4, xfs, btrfs, tmpfs and overlayfs as local; NFS, CephFS and FUSE (GlusterFS) are not', () => {
    for (const t of [0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630]) expect(isLocalFsType(t), t.toString(16)).toBe(true);
    for (const t of [0x6969, 0x00c36400, 0x65735546, 0xff534d42, 0]) expect(isLocalFsType(t), t.toString(16)).toBe(false);
  });

  it('learns a directory once, from its statfs type', async () => {
    const d = join(dir, 'learnt');
    mkdirSync(d);
    const expected = isLocalFsType(statfsSync(d).type);
    expect(await learnLocalFs(d)).toBe(expected);
    expect(knownLocalFs(d)).toBe(expected);
  });

  it('counts a directory it cannot look at as not local, and does not remember that', async () => {
    const missing = join(dir, 'not-yet');
    expect(await learnLocalFs(missing)).toBe(false);
    // Not remembered as not local: asked again, it is judged from the mount table (made by mkdir,
    // it would be on the filesystem of the directory above it).
    expect(knownLocalFs(missing)).toBe(isLocalFsType(statfsSync(dir).type));
  });

  it('knows a new output directory at once from the mount table, without a statfs', () => {
    // What a new job's first attempt asks: its directory does not exist yet.
    const fresh = join(dir, 'job-1', 'stage-0');
    expect(judgeLocalFs(fresh)).toBe(isLocalFsType(statfsSync(dir).type));
    expect(knownLocalFs(fresh)).toBe(isLocalFsType(statfsSync(dir).type));
  });

  it('never looks into a filesystem the mount table says is not local', () => {
    // A made-up table around this test's own directory (which exists and holds no link).
    const table = [
      '22 1 0:21 / / rw,relatime - ext4 /dev/vda rw',
      `40 22 0:50 / ${dir}/nfs rw,relatime - nfs4 server:/export rw`,
      `41 22 0:51 / ${dir}/glu rw,relatime - fuse.glusterfs host:/vol rw`,
      `42 22 0:52 / ${dir}/my\\040disk rw,relatime - xfs /dev/vdb rw`,
      // NFS mounted over a tmpfs at the same point: the later mount is the one paths reach.
      `43 22 0:53 / ${dir}/stacked rw,relatime - tmpfs tmpfs rw`,
      `44 22 0:54 / ${dir}/stacked rw,relatime - nfs4 server:/other rw`,
    ].join('\n');
    const mounts = localityOfMounts(table);
    expect(mounts.map((m) => [m.point, m.local])).toEqual([[`${dir}/my disk`, true], [`${dir}/stacked`, false], [`${dir}/nfs`, false], [`${dir}/glu`, false], ['/', true]]);
    expect(judgeLocalFs(`${dir}/nfs/out/job-1`, table)).toBe(false);
    expect(judgeLocalFs(`${dir}/nfs`, table)).toBe(false);
    expect(judgeLocalFs(`${dir}/glu/x`, table)).toBe(false);
    expect(judgeLocalFs(`${dir}/stacked/x`, table)).toBe(false);
    // A name that merely begins like a mount point is not under it.
    expect(judgeLocalFs(`${dir}/nfsx/out`, table)).toBe(true);
    // Not absolute or not normalized: left to the statfs.
    expect(judgeLocalFs('out/job-1', table)).toBeUndefined();
    expect(judgeLocalFs(`${dir}/../x/nfs`, table)).toBeUndefined();
  });

  it('leaves a path through a symbolic link to the statfs', () => {
    const target = join(dir, 'target');
    mkdirSync(target);
    const link = join(dir, 'link');
    symlinkSync(target, link);
    expect(judgeLocalFs(join(link, 'stage-0'))).toBeUndefined();
    // The link as the last component too, and a regular file on the way.
    expect(judgeLocalFs(link)).toBeUndefined();
    writeFileSync(join(dir, 'file'), '');
    expect(judgeLocalFs(join(dir, 'file', 'stage-0'))).toBeUndefined();
    // A path made only of directories (and names still to be made) is told at once.
    expect(judgeLocalFs(join(target, 'stage-0'))).toBe(isLocalFsType(statfsSync(target).type));
  });
});
