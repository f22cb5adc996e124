/**
 * What storage configuration executors are launched with follows the framework's own: any one
 * Ceph option configures Ceph on both sides, so a cephx user given alone (`ceph-id`) is the user
 * executors read `ceph://` with, not `client.admin`.
 */
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/app/config.js';
import { cephSettings, executorStorageConfig } from '../../src/app/data-plane.js';
import { decodeExecutorStorageConfig, registryConfigFor } from '../../src/storage/executor-config.js';

const base = { master: 'http://m:5050', redis: 'redis://r:6379', 'state-dir': '/tmp/locus-storage-config' };

describe('executor storage configuration', () => {
  it.each([
    { flags: { 'ceph-id': 'locus' }, ceph: { name: 'client.locus' } },
    { flags: { 'ceph-conf': '/etc/ceph/x.conf' }, ceph: { conf: '/etc/ceph/x.conf' } },
    { flags: { 'cephfs-mount': '/mnt/cephfs', 'ceph-id': 'reader' }, ceph: { name: 'client.reader', cephfsMount: '/mnt/cephfs' } },
  ])('carries the Ceph options the framework uses ($flags)', async ({ flags, ceph }) => {
    const settings = resolveSettings({ ...base, ...flags });
    expect(cephSettings(settings)).toEqual(ceph);
    const config = await executorStorageConfig(settings, 'agent-1', '/tmp/locus-storage-config/out');
    expect(config.ceph).toEqual(ceph);
    // As the executor reads it back from its TaskInfo and builds its storage registry from it.
    expect(registryConfigFor(decodeExecutorStorageConfig(JSON.stringify(config))).ceph).toEqual(ceph);
  });

  it('has no Ceph section when no Ceph option is set', async () => {
    const settings = resolveSettings(base);
    expect(cephSettings(settings)).toBeUndefined();
    expect((await executorStorageConfig(settings, 'agent-1', '/tmp/locus-storage-config/out')).ceph).toBeUndefined();
  });
});
