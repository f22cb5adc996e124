import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeEvent } from '../../src/mesos/events.js';
import {
  countPorts, formatRanges, isDynamicallyReserved, isReservedTo, persistentVolumes, portRanges, reservationLabels, reservedTo,
  scalar, takePorts, toVector, unreserved, usableVector, volumeId, withReservation, withVolume, stripAllocation, mergeRanges,
} from '../../src/mesos/resources.js';
import type { Offer, Resource } from '../../src/mesos/types.js';

function fixtureOffer(name: string): Offer {
  const ev = decodeEvent(JSON.parse(readFileSync(fileURLToPath(new URL(`../fixtures/mesos-1.12/${name}`, import.meta.url)), 'utf8')) as unknown);
  if (ev.type !== 'OFFERS') throw new Error('expected OFFERS');
  const offer = ev.offers.offers?.[0];
  if (!offer) throw new Error('no offer');
  return offer;
}

describe('resource helpers', () => {
  it('sums an unreserved offer into a ResourceVector and reads its ports', () => {
    const offer = fixtureOffer('event-offers-unreserved.json');
    const v = toVector(offer.resources);
    expect(v.cpus).toBeGreaterThan(0);
    expect(v.mem).toBeGreaterThan(0);
    expect(portRanges(offer.resources)).toEqual([{ begin: 31000, end: 32000 }]);
    expect(countPorts(portRanges(offer.resources))).toBe(1001);
  });

  it('separates reserved resources, labels and persistent volumes (offer with a volume)', () => {
    const offer = fixtureOffer('event-offers-with-volume.json');
    const mine = reservedTo(offer.resources, 'locus', { 'locus.volume': 'cap-vol-1' });
    expect(mine.map((r) => r.name).sort()).toEqual(['cpus', 'disk', 'mem']);
    expect(mine.every(isDynamicallyReserved)).toBe(true);
    expect(reservationLabels(mine[0] as Resource)).toEqual({ 'locus.volume': 'cap-vol-1' });
    expect(reservedTo(offer.resources, 'other')).toEqual([]);
    expect(toVector(unreserved(offer.resources))).toEqual({ cpus: 1.9, mem: 4064, disk: 8128 });
    const vols = persistentVolumes(offer.resources);
    expect([...vols.keys()]).toEqual(['cap-vol-1']);
    // The volume's 64 MiB of disk is not free capacity; the reserved cpus and mem are.
    expect(usableVector(offer.resources, 'locus')).toEqual({ cpus: 2, mem: 4096, disk: 8128 });
  });

  it('builds RESERVE and CREATE resources the way the recorded framework did', () => {
    const disk = withReservation(scalar('disk', 64), { role: 'locus', principal: 'locus-capture', labels: { 'locus.volume': 'cap-vol-1' } });
    const recorded = JSON.parse(readFileSync(fileURLToPath(new URL('../fixtures/mesos-1.12/call-accept-reserve-create.json', import.meta.url)), 'utf8')) as {
      request: { accept: { operations: [{ reserve: { resources: Resource[] } }, { create: { volumes: Resource[] } }] } };
    };
    expect(disk).toEqual(recorded.request.accept.operations[0].reserve.resources[0]);
    const vol = withVolume(disk, { id: 'cap-vol-1', containerPath: 'data', principal: 'locus-capture' });
    expect(vol).toEqual(recorded.request.accept.operations[1].create.volumes[0]);
    expect(volumeId(vol)).toBe('cap-vol-1');
    expect(isReservedTo(vol, 'locus')).toBe(true);
    expect(isReservedTo(vol, 'loc')).toBe(false);
    expect(stripAllocation({ ...vol, allocation_info: { role: 'locus' } })).toEqual(vol);
  });

  it('handles legacy role-based reservations and port arithmetic', () => {
    const legacy: Resource = { name: 'cpus', type: 'SCALAR', scalar: { value: 2 }, role: 'locus' };
    const star: Resource = { name: 'cpus', type: 'SCALAR', scalar: { value: 1 }, role: '*' };
    expect(isReservedTo(legacy, 'locus')).toBe(true);
    expect(unreserved([legacy, star])).toEqual([star]);
    const ranges = mergeRanges([{ begin: 10, end: 12 }, { begin: 13, end: 13 }, { begin: 20, end: 21 }]);
    expect(ranges).toEqual([{ begin: 10, end: 13 }, { begin: 20, end: 21 }]);
    expect(takePorts(ranges, 5)).toEqual([10, 11, 12, 13, 20]);
    expect(takePorts(ranges, 7)).toBeUndefined();
    expect(formatRanges(ranges)).toBe('10-13,20-21');
  });
});
