/**
 * The roles the framework subscribes with: its own (`--role`), which tenants that name none and
 * the default tenant take, and every role a live volume or reservation was made with (Mesos
 * offers a reservation to its role only: one made under an earlier role must still be offered,
 * used and torn down).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { HoldingStore } from '../../src/volumes/store.js';
import { VolumeService } from '../../src/volumes/service.js';
import { validateVolumeRequest } from '../../src/volumes/model.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { startBed, startInProcess, type Bed } from './framework-harness.js';
import { waitFor } from '../harness/wait.js';

let bed: Bed;
let fw: RunningFramework | undefined;

beforeAll(async () => {
  bed = await startBed({ agents: 1, files: 1 });
  // A volume of the default tenant made while it had another role.
  const client = bed.redis.client();
  try {
    const volumes = new VolumeService({ store: new HoldingStore(client), clock: systemClock, who: { framework: 'locus', principal: 'locus' } });
    await volumes.createVolume({ name: 'default', role: 'legacy', weight: 1, tokenSha256: '' }, validateVolumeRequest({ name: 'old', size: '16MiB' }));
  } finally {
    client.disconnect();
  }
  fw = await startInProcess(bed, { role: 'batch-fw' });
}, 120_000);

afterAll(async () => {
  await fw?.stop();
  await bed?.dispose();
});

describe('framework roles', () => {
  it('subscribes with its own role and the roles of live volumes, not locus', async () => {
    const roles = await waitFor('the framework subscribed', async () => {
      const state = (await (await fetch(`${bed.cluster.masterUrl}/state`)).json()) as { frameworks: { roles?: string[] }[] };
      return state.frameworks[0]?.roles;
    });
    expect([...roles].sort()).toEqual(['batch-fw', 'legacy']);
  });
});
