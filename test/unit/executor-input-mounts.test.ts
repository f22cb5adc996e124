/**
 * The executor's look at the GlusterFS or CephFS mount an attempt's split is read through
 * (executor/input-mounts.ts): which mount a split is read through, and the brief cache of a good
 * look, so that a busy executor does not stat its mount points for every attempt it starts.
 */
import { describe, expect, it } from 'vitest';
import { InputMounts, OK_FOR_MS, type MountCheck } from '../../src/executor/input-mounts.js';
import { MissingMountPoint } from '../../src/storage/fs-lister.js';

/** A check that answers `answer()` and records the mount point of each call. */
function counted(answer: () => Promise<string | undefined>): { check: MountCheck; calls: string[] } {
  const calls: string[] = [];
  return { calls, check: async (m) => { calls.push(m); return await answer(); } };
}

const config = { gluster: { mounts: { gv0: '/mnt/gv0/', gv1: '/mnt/gv1' } }, ceph: { cephfsMount: '/mnt/cephfs' } };

describe('which mount a split is read through', () => {
  const mounts = InputMounts.fromConfig(config) as InputMounts;

  it('its local path\'s: the deepest configured mount holding it, none for a path outside every mount', () => {
    expect(mounts.mountOf({ uri: 'glusterfs://gv0/a', localPath: '/mnt/gv0/a' })?.mountPoint).toBe('/mnt/gv0');
    expect(mounts.mountOf({ uri: 'cephfs:///a', localPath: '/mnt/cephfs/a/b' })?.mountPoint).toBe('/mnt/cephfs');
    // A neighbour whose name begins like the mount point is not inside it.
    expect(mounts.mountOf({ uri: 'file:///mnt/gv0x/a', localPath: '/mnt/gv0x/a' })).toBeUndefined();
    expect(mounts.mountOf({ uri: 'local://ds/a', localPath: '/srv/locus/data/ds/a' })).toBeUndefined();
    const nested = InputMounts.fromConfig({ gluster: { mounts: { outer: '/mnt/g', inner: '/mnt/g/inner' } } }) as InputMounts;
    expect(nested.mountOf({ uri: 'glusterfs://inner/x', localPath: '/mnt/g/inner/x' })?.label).toContain('\'inner\'');
  });

  it('without one, the mount its URI names (what the storage read opens), unless block servers serve it', () => {
    expect(mounts.mountOf({ uri: 'glusterfs://gv1/a/b' })?.mountPoint).toBe('/mnt/gv1');
    expect(mounts.mountOf({ uri: 'cephfs:///a/b' })?.mountPoint).toBe('/mnt/cephfs');
    expect(mounts.mountOf({ uri: 'glusterfs://unknown/a' })).toBeUndefined();
    expect(mounts.mountOf({ uri: 'glusterfs://gv1/a', sources: [{}] })).toBeUndefined();
    expect(mounts.mountOf({ uri: 'hdfs://nn:8020/a' })).toBeUndefined();
    expect(mounts.mountOf({ uri: 'ceph://pool/object' })).toBeUndefined();
    expect(mounts.mountOf({ uri: 'not a uri' })).toBeUndefined();
  });

  it('none configured: no look at all', () => {
    expect(InputMounts.fromConfig({})).toBeUndefined();
    expect(InputMounts.fromConfig({ gluster: { mounts: {} } })).toBeUndefined();
  });
});

describe('the cache of a good look', () => {
  const split = { uri: 'glusterfs://gv0/a', localPath: '/mnt/gv0/a' };

  it('a mount found mounted is not looked at again for OK_FOR_MS; then it is', async () => {
    let t = 1_000;
    const { check, calls } = counted(async () => undefined);
    const mounts = InputMounts.fromConfig(config, { check, now: () => t }) as InputMounts;
    expect(await mounts.whyUnreadable(split, 'h1')).toBeUndefined();
    t += OK_FOR_MS - 1;
    expect(await mounts.whyUnreadable(split, 'h1')).toBeUndefined();
    expect(await mounts.whyUnreadable({ uri: 'glusterfs://gv0/b' }, 'h1')).toBeUndefined();
    expect(calls).toEqual(['/mnt/gv0']);
    t += 1;
    expect(await mounts.whyUnreadable(split, 'h1')).toBeUndefined();
    expect(calls).toEqual(['/mnt/gv0', '/mnt/gv0']);
    // Each mount has its own.
    expect(await mounts.whyUnreadable({ uri: 'cephfs:///a' }, 'h1')).toBeUndefined();
    expect(calls).toEqual(['/mnt/gv0', '/mnt/gv0', '/mnt/cephfs']);
  });

  it('attempts set up at once share one look', async () => {
    const answers: ((why: string | undefined) => void)[] = [];
    const { check, calls } = counted(() => new Promise((r) => answers.push(r)));
    const mounts = InputMounts.fromConfig(config, { check }) as InputMounts;
    const looks = Array.from({ length: 5 }, () => mounts.whyUnreadable(split, 'h1'));
    await new Promise((r) => setImmediate(r));
    for (const answer of answers) answer(undefined);
    expect(await Promise.all(looks)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(calls).toHaveLength(1);
  });

  it('a mount found gone is not remembered: the next attempt looks again, and one found back is good again', async () => {
    let why: string | undefined = '/mnt/gv0 is not mounted: it is a plain directory';
    const { check, calls } = counted(async () => why);
    const mounts = InputMounts.fromConfig(config, { check, now: () => 5 }) as InputMounts;
    const gone = await mounts.whyUnreadable(split, 'agent-3');
    expect(gone).toBe('glusterfs://gv0/a is read through the GlusterFS mount of volume \'gv0\' (gluster-mounts) at /mnt/gv0, which is not usable on agent-3: /mnt/gv0 is not mounted: it is a plain directory');
    expect(await mounts.whyUnreadable(split, 'agent-3')).toBe(gone);
    why = undefined;
    expect(await mounts.whyUnreadable(split, 'agent-3')).toBeUndefined();
    expect(await mounts.whyUnreadable(split, 'agent-3')).toBeUndefined();
    expect(calls).toHaveLength(3);
  });

  it('a look that fails or times out is the mount\'s trouble too; a missing mount point is the host\'s configuration', async () => {
    let fail: Error = Object.assign(new Error('stat /mnt/gv0: no answer within 10000 ms'), { code: 'TIMEOUT' });
    const mounts = InputMounts.fromConfig(config, { check: async () => { throw fail; } }) as InputMounts;
    expect(await mounts.whyUnreadable(split, 'agent-3')).toContain('/mnt/gv0 on agent-3 cannot be looked at: stat /mnt/gv0: no answer within 10000 ms');
    fail = new MissingMountPoint('/mnt/gv0');
    const missing = await mounts.whyUnreadable(split, 'agent-3');
    expect(missing).toContain('not usable on agent-3: /mnt/gv0 does not exist');
    expect(missing).toContain('configuration error of this host');
  });
});
