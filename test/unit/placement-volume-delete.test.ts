/**
 * Placement while a volume's delete is asked for (Snapshot.goneVolumes): the
 * executor holding it takes nothing new and is released as soon as it is
 * idle, not after the idle timeout (Mesos gives the volume back only when
 * the executor ends); no executor is launched for it again; its waiting
 * tasks are told why they cannot run.
 */
import { describe, expect, it } from 'vitest';
import { explain, place } from '../../src/scheduler/placement/index.js';
import type { PlacementOptions } from '../../src/scheduler/placement/index.js';
import { exec, indexOf, offer, snap, task } from './placement-builders.js';

const size = { cpus: 0.2, mem: 64, disk: 16 };
// A long idle timeout: every release below is the delete's, not the timeout's.
const opts: Partial<PlacementOptions> = { idleTimeoutMs: 60_000, defaultLocality: { mode: 'wait', nodeWaitMs: 0, rackWaitMs: 0 } };
const holder = (over: Parameters<typeof exec>[1] = {}) => exec('r1-h1', {
  executorId: 'vx', volumes: ['vol-1'], tenant: 'a', slotResources: size, slots: 2, freeSlots: 2, freeSince: 9_000, idleSince: 9_000, ...over,
});

describe('placement with a volume being deleted', () => {
  it('releases the idle executor holding it at once', () => {
    const plan = place(snap(10_000, { executors: [holder()], goneVolumes: new Set(['vol-1']) }), indexOf([]), opts);
    expect(plan.releases).toEqual([{ executorId: 'vx', reason: 'volume-delete' }]);
    // Without the delete it idles on until the timeout.
    expect(place(snap(10_000, { executors: [holder()] }), indexOf([]), opts).releases).toEqual([]);
    // Still starting (not registered yet): released all the same, its kill ends it while it starts.
    expect(place(snap(10_000, { executors: [holder({ launching: true })], goneVolumes: new Set(['vol-1']) }), indexOf([]), opts).releases).toEqual([{ executorId: 'vx', reason: 'volume-delete' }]);
  });

  it('gives its holder no task, pinned or not, and keeps it while an attempt runs there', () => {
    const pinned = task({ taskId: 'p', volumeId: 'vol-1', resources: size });
    const plain = task({ taskId: 'q', resources: size });
    const busy = holder({ freeSlots: 1, idleSince: undefined });
    const plan = place(snap(10_000, { executors: [busy], goneVolumes: new Set(['vol-1']) }), indexOf([pinned, plain]), opts);
    expect(plan.assignments).toEqual([]);
    expect(plan.releases).toEqual([]);
    // Without the delete both would go to its free slot (the plain one is of its tenant).
    expect(place(snap(10_000, { executors: [busy] }), indexOf([pinned, plain]), opts).assignments.length).toBe(1);
  });

  it('launches no executor for it on an offer that shows it, and explains why its tasks wait', () => {
    const pinned = task({ taskId: 'p', volumeId: 'vol-1', resources: size });
    const s = snap(10_000, { offers: [offer('r1-h1', { volumes: ['vol-1'] })], goneVolumes: new Set(['vol-1']) });
    const plan = place(s, indexOf([pinned]), opts);
    expect(plan.launches).toEqual([]);
    expect(explain('p', s, indexOf([pinned]), opts)).toMatchObject({ code: 'VOLUME_DELETED' });
    expect(explain('p', s, indexOf([pinned]), opts).message).toMatch(/vol-1.*being deleted.*never run/);
    // Without the delete a volume executor is launched there.
    expect(place({ ...s, goneVolumes: new Set() }, indexOf([pinned]), opts).launches.map((l) => l.volumeId)).toEqual(['vol-1']);
  });
});
