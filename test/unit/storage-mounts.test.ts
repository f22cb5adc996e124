/**
 * A GlusterFS or CephFS mount point whose mount is gone is a plain, empty directory: listed, a
 * whole volume or a directory is "no files" and a glob matches nothing, and the job failed at once.
 * The backends ask first whether the configured mount point is mounted (whyNotMounted) and report
 * a mount gone as UNAVAILABLE, which a stage's listing waits out. Real mounts where the machine
 * allows (root: a tmpfs mounted in a temp directory, unmounted in `finally`), and a mount table
 * given by the test where only the table can say it (a directory inside a GlusterFS mount).
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LocusError } from '../../src/core/errors.js';
import { parseMountinfo } from '../../src/core/mountinfo.js';
import { CephBackend } from '../../src/storage/ceph/backend.js';
import { isTransientStorageError } from '../../src/storage/errors.js';
import { CEPHFS_FS_TYPES, GLUSTER_FS_TYPES, MissingMountPoint, whyNotMounted } from '../../src/storage/fs-lister.js';
import { GlusterBackend } from '../../src/storage/gluster/backend.js';
import { HostMapper } from '../../src/storage/hostmap.js';
import { bindOntoItself, fakeGlusterGetfattr, mountTmpfs, unmount, unmountAll } from '../harness/mounts.js';
import { ROOT, itWith } from '../harness/requires.js';

const dirs: string[] = [];
afterEach(() => {
  // A failed assertion must not leave a mount behind on a shared machine.
  unmountAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = realpathSync(mkdtempSync(join(tmpdir(), 'locus-mounts-')));
  dirs.push(d);
  return d;
}

const failure = async (p: Promise<unknown>): Promise<LocusError> => (await p.then(() => { throw new Error('resolved'); }, (e: unknown) => e)) as LocusError;

describe('a configured mount point that does not exist', () => {
  it('fails the listing at once, naming the setting: no wait mends a path that is not there', async () => {
    const dir = tempDir();
    const gluster = new GlusterBackend({ mounts: { gv0: join(dir, 'mnt-gv0-typo') }, getfattrBin: fakeGlusterGetfattr(dir, 'gv0', 'host-a'), timeoutMs: 5_000 }, new HostMapper());
    const g = await failure(gluster.resolve('glusterfs://gv0/', { split: 'file' }));
    expect(g.code).toBe('STORAGE');
    expect(isTransientStorageError(g)).toBe(false);
    expect(g.message).toBe(`glusterfs://gv0/: ${dir}/mnt-gv0-typo does not exist: no mount point is there to mount on (gluster-mounts names it for volume 'gv0')`);
    const ceph = new CephBackend({ conf: join(dir, 'no-ceph.conf'), cephfsMount: join(dir, 'cephfs-typo'), timeoutMs: 5_000 }, new HostMapper());
    const c = await failure(ceph.resolve('cephfs:///data/', { split: 'file' }));
    expect(isTransientStorageError(c)).toBe(false);
    expect(c.message).toContain(`${dir}/cephfs-typo does not exist: no mount point is there to mount on (cephfs-mount names it)`);
  });
});

describe('whyNotMounted on a hung mount', () => {
  it('keeps at most one stat of a mount point outstanding: a retry while it hangs is told so at once, and looks again once it returned', async () => {
    const dir = tempDir();
    const mount = join(dir, 'hung');
    mkdirSync(mount);
    let release: () => void = () => undefined;
    const calls: string[] = [];
    const hung = (path: string): Promise<Stats> => {
      calls.push(path);
      return calls.length === 1 ? new Promise<Stats>((resolve) => { release = () => resolve(statSync(path)); }) : Promise.resolve(statSync(path));
    };
    // The first look times out (the kernel still holds the call, and with it an I/O thread).
    const first = await failure(whyNotMounted(mount, GLUSTER_FS_TYPES, 50, { stat: hung }));
    expect(isTransientStorageError(first)).toBe(true);
    // The next, while it hangs: no second stat, an answer at once, still the storage away.
    const second = await failure(whyNotMounted(mount, GLUSTER_FS_TYPES, 5_000, { stat: hung }));
    expect(second.message).toMatch(new RegExp(`^${mount} is hung: an earlier stat of it has not returned for \\d+ s$`));
    expect(isTransientStorageError(second)).toBe(true);
    expect(calls).toEqual([mount]);
    // Returned: looked at again.
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(await whyNotMounted(mount, GLUSTER_FS_TYPES, 5_000, { stat: hung })).toMatch(/is not mounted: it is a plain directory/);
    expect(calls).toEqual([mount, mount]);
  });
});

describe('whyNotMounted', () => {
  it('says a plain directory (a mount point left behind) is not mounted, and refuses a missing one as a setting\'s mistake; the root and /proc are mounted', async () => {
    const dir = tempDir();
    expect(await whyNotMounted(dir, GLUSTER_FS_TYPES, 5_000)).toMatch(new RegExp(`^${dir} is not mounted: it is a plain directory on \\S+ /\\S*, not a mount of fuse\\.glusterfs$`));
    expect(await whyNotMounted(`${dir}/`, CEPHFS_FS_TYPES, 5_000)).toMatch(/not a mount of ceph or fuse\.ceph-fuse/);
    await expect(whyNotMounted(join(dir, 'missing'), GLUSTER_FS_TYPES, 5_000)).rejects.toBeInstanceOf(MissingMountPoint);
    expect(await whyNotMounted('/', GLUSTER_FS_TYPES, 5_000)).toBeUndefined();
    expect(await whyNotMounted('/proc', GLUSTER_FS_TYPES, 5_000)).toBeUndefined();
  });

  it('takes a directory inside a mount of the expected type as mounted, and decides by the device alone without a mount table', async () => {
    const dir = tempDir();
    const sub = join(dir, 'data');
    mkdirSync(sub);
    // The setting names a subtree of a GlusterFS mount: on the same device as its parent, yet mounted.
    const table = (fsType: string): (() => Promise<string>) => async () => [
      '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
      `90 22 0:50 / ${dir.replace(/ /g, '\\040')} rw,relatime shared:40 - ${fsType} localhost:/gv0 rw,user_id=0`,
    ].join('\n');
    expect(await whyNotMounted(sub, GLUSTER_FS_TYPES, 5_000, { mountinfo: table('fuse.glusterfs') })).toBeUndefined();
    expect(await whyNotMounted(sub, CEPHFS_FS_TYPES, 5_000, { mountinfo: table('fuse.glusterfs') })).toBe(`${sub} is not mounted: it is a plain directory on fuse.glusterfs ${dir}, not a mount of ceph or fuse.ceph-fuse or fuse.ceph`);
    expect(await whyNotMounted(sub, CEPHFS_FS_TYPES, 5_000, { mountinfo: table('ceph') })).toBeUndefined();
    // No /proc/self/mountinfo (not Linux): the classic test, the same device as the parent.
    expect(await whyNotMounted(sub, GLUSTER_FS_TYPES, 5_000, { mountinfo: async () => undefined })).toBe(`${sub} is not mounted: it is on the same device as ${dir}`);
  });

  it('parses the mount table with roots, sources and escaped spaces', () => {
    expect(parseMountinfo('90 22 0:50 /vol\\040a /mnt/my\\040gv0 rw shared:40 - fuse.glusterfs host:/gv0 rw,user_id=0\n')).toEqual([
      { mountPoint: '/mnt/my gv0', root: '/vol a', fsType: 'fuse.glusterfs', source: 'host:/gv0', superOptions: ['rw', 'user_id=0'] },
    ]);
  });

  itWith([ROOT], 'a real mount point is mounted; the same directory unmounted is not; a bind mount onto itself is', async () => {
    const dir = tempDir();
    const at = join(dir, 'mnt');
    mkdirSync(at);
    mountTmpfs(at);
    // Any filesystem mounted there is a mount point: a wrong one is told by the listing (no pathinfo, no layout).
    expect(await whyNotMounted(at, GLUSTER_FS_TYPES, 5_000)).toBeUndefined();
    unmount(at);
    expect(await whyNotMounted(at, GLUSTER_FS_TYPES, 5_000)).toMatch(new RegExp(`^${at} is not mounted: it is a plain directory on `));
    // On the same device as its parent, but the mount table lists it as a mount point.
    bindOntoItself(at);
    expect(await whyNotMounted(at, GLUSTER_FS_TYPES, 5_000)).toBeUndefined();
  });
});

describe('a GlusterFS mount gone', () => {
  it('a whole volume on a plain directory is UNAVAILABLE (not mounted), transient, not "no files"', async () => {
    const dir = tempDir();
    const mount = join(dir, 'gv0');
    mkdirSync(mount);
    const backend = new GlusterBackend({ mounts: { gv0: mount }, getfattrBin: fakeGlusterGetfattr(dir, 'gv0', 'host-a'), timeoutMs: 5_000 }, new HostMapper());
    for (const uri of ['glusterfs://gv0/', 'glusterfs://gv0/logs/*.txt', 'glusterfs://gv0/data/a.txt']) {
      const err = await failure(backend.resolve(uri, { split: 'file' }));
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.message).toMatch(new RegExp(`^${uri.replace(/[*.]/g, '\\$&')}: ${mount} is not mounted: it is a plain directory on .*, not a mount of fuse\\.glusterfs \\(the GlusterFS mount of volume 'gv0' is gone\\)$`));
      expect(isTransientStorageError(err)).toBe(true);
    }
  });

  itWith([ROOT], 'mounted, the volume is listed; the same directory unmounted is UNAVAILABLE, naming the mount point', async () => {
    const dir = tempDir();
    const mount = join(dir, 'gv0');
    mkdirSync(mount);
    mountTmpfs(mount);
    mkdirSync(join(mount, 'data'));
    writeFileSync(join(mount, 'data', 'a.txt'), 'a'.repeat(100));
    writeFileSync(join(mount, 'data', 'b.txt'), 'b'.repeat(200));
    const backend = new GlusterBackend({ mounts: { gv0: mount }, getfattrBin: fakeGlusterGetfattr(dir, 'gv0', 'host-a'), timeoutMs: 5_000 }, new HostMapper());
    const listed = await backend.resolve('glusterfs://gv0/', { split: 'file' });
    expect(listed.map((f) => [f.uri, f.size])).toEqual([['glusterfs://gv0/data/a.txt', 100], ['glusterfs://gv0/data/b.txt', 200]]);
    expect((await backend.resolve('glusterfs://gv0/data/*.txt', { split: 'file' })).length).toBe(2);

    unmount(mount);
    for (const uri of ['glusterfs://gv0/', 'glusterfs://gv0/data/', 'glusterfs://gv0/data/*.txt', 'glusterfs://gv0/data/a.txt']) {
      const err = await failure(backend.resolve(uri, { split: 'file' }));
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.message).toContain(`${mount} is not mounted`);
      expect(err.message).toContain("the GlusterFS mount of volume 'gv0' is gone");
      expect(isTransientStorageError(err)).toBe(true);
    }
  });
});

describe('a CephFS mount gone', () => {
  it('is UNAVAILABLE (not mounted) before the cluster is asked, for a directory and a glob alike', async () => {
    const dir = tempDir();
    const mount = join(dir, 'cephfs');
    mkdirSync(join(mount, 'data'), { recursive: true });
    // No cluster here: a listing that reached the cluster's maps would fail otherwise.
    const backend = new CephBackend({ conf: join(dir, 'no-ceph.conf'), cephfsMount: mount, timeoutMs: 5_000 }, new HostMapper());
    for (const uri of ['cephfs:///', 'cephfs:///data/', 'cephfs:///data/*.csv']) {
      const err = await failure(backend.resolve(uri, { split: 'file' }));
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.message).toMatch(new RegExp(`^${uri.replace(/[*.]/g, '\\$&')}: ${mount} is not mounted: it is a plain directory on .*, not a mount of ceph or fuse\\.ceph-fuse or fuse\\.ceph \\(the CephFS mount is gone\\)$`));
      expect(isTransientStorageError(err)).toBe(true);
    }
  });
});
