import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { summarizeOffer } from '../../src/cli/commands/mesos.js';
import { decodeEvent } from '../../src/mesos/events.js';

describe('probe offer summary', () => {
  it('reports totals, the unreserved part, reservations with labels, and volumes', () => {
    const ev = decodeEvent(JSON.parse(readFileSync(fileURLToPath(new URL('../fixtures/mesos-1.12/event-offers-with-volume.json', import.meta.url)), 'utf8')) as unknown);
    if (ev.type !== 'OFFERS') throw new Error('expected OFFERS');
    const offer = ev.offers.offers?.[0];
    if (!offer) throw new Error('no offer');
    const s = summarizeOffer(offer);
    expect(s.hostname).toBe('127.0.0.1');
    expect(s.agent_id).toBe('b7072341-e820-45b7-b63b-36e54b536544-S0');
    expect(s.resources).toEqual({ cpus: 2, mem: 4096, disk: 8192, ports: '31000-32000' });
    expect(s.unreserved).toEqual({ cpus: 1.9, mem: 4064, disk: 8128 });
    expect(s.reservations).toEqual([{ role: 'locus', principal: 'locus-capture', labels: { 'locus.volume': 'cap-vol-1' }, cpus: 0.1, mem: 32, disk: 0 }]);
    expect(s.volumes).toEqual([{ id: 'cap-vol-1', disk: 64, role: 'locus', container_path: 'data' }]);
  });
});
