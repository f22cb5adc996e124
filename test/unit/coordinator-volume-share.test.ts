/**
 * What an offer keeps for executors once the volume operations riding on it
 * have run (one ACCEPT per offer): a RESERVE's share of unreserved scalars is
 * gone, the holding it creates is not offered to a LAUNCH, and other
 * holdings' volumes on the same agent stay usable.
 */
import { describe, expect, it } from 'vitest';
import { afterVolumeOperations } from '../../src/scheduler/coordinator.js';
import type { Offer, Operation, Resource } from '../../src/mesos/types.js';

const labelled = (holdingId: string, name: 'cpus' | 'mem' | 'disk', value: number, persistence?: string): Resource => ({
  name, type: 'SCALAR', scalar: { value }, allocation_info: { role: 'locus' },
  reservations: [{ type: 'DYNAMIC', role: 'locus', labels: { labels: [{ key: 'locus.volume', value: holdingId }, { key: 'locus.framework', value: 'locus' }] } }],
  ...(persistence === undefined ? {} : { disk: { persistence: { id: persistence }, volume: { container_path: 'data', mode: 'RW' as const } } }),
});

const unreserved = (name: 'cpus' | 'mem' | 'disk', value: number): Resource => ({ name, type: 'SCALAR', scalar: { value }, allocation_info: { role: 'locus' } });

const offer: Offer = {
  id: { value: 'o1' }, framework_id: { value: 'fw' }, agent_id: { value: 'S1' }, hostname: 'agent-1',
  resources: [unreserved('cpus', 2), unreserved('mem', 4096), unreserved('disk', 1000), labelled('vol-ready', 'disk', 64, 'vol-ready'), labelled('vol-gone', 'disk', 32, 'vol-gone')],
  allocation_info: { role: 'locus' },
};

const scalar = (rs: readonly Resource[], name: string, reserved: boolean): number =>
  rs.filter((r) => r.name === name && ((r.reservations?.length ?? 0) > 0) === reserved).reduce((a, r) => a + (r.scalar?.value ?? 0), 0);

describe('an offer after its volume operations', () => {
  it('loses what RESERVE takes and the holdings the operations touch, keeps other volumes', () => {
    const ops: Operation[] = [
      { type: 'RESERVE', reserve: { resources: [labelled('vol-new', 'disk', 100)] } },
      { type: 'CREATE', create: { volumes: [labelled('vol-new', 'disk', 100, 'vol-new')] } },
      { type: 'DESTROY', destroy: { volumes: [labelled('vol-gone', 'disk', 32, 'vol-gone')] } },
      { type: 'UNRESERVE', unreserve: { resources: [labelled('vol-gone', 'disk', 32)] } },
    ];
    const after = afterVolumeOperations(offer, ops);
    expect(scalar(after.resources, 'disk', false)).toBe(900);
    expect(scalar(after.resources, 'cpus', false)).toBe(2);
    expect(scalar(after.resources, 'mem', false)).toBe(4096);
    const volumes = after.resources.map((r) => r.disk?.persistence?.id).filter((x) => x !== undefined);
    expect(volumes).toEqual(['vol-ready']);
    // The offer it was given is left as it was.
    expect(scalar(offer.resources, 'disk', false)).toBe(1000);
  });

  it('changes nothing without operations', () => {
    expect(afterVolumeOperations(offer, []).resources).toEqual(offer.resources);
  });
});
