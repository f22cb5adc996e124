/** Mesos resource arithmetic of the local cluster: merging, ranges, reservations, volumes. */
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../src/mesos/types.js';
import { add, contains, downgrade, formatRanges, parseResourceString, popReservation, stripVolume, subtract, summary, upgrade } from '../../src/local/resources.js';

const cpus = (v: number, extra: Partial<Resource> = {}): Resource => ({ name: 'cpus', type: 'SCALAR', scalar: { value: v }, ...extra });
const reserved = { reservations: [{ type: 'DYNAMIC' as const, role: 'r', principal: 'p', labels: { labels: [{ key: 'k', value: 'v' }] } }] };

describe('local resources', () => {
  it('parses the agent --resources syntax with ranges and sets', () => {
    const rs = parseResourceString('cpus:2;mem:4096;disk:20480;ports:[31000-32000, 33000-33001];zones:{a,b};gpus(r):1');
    expect(summary(rs)).toEqual({ cpus: 2, mem: 4096, disk: 20480, gpus: 1, ports: '[31000-32000, 33000-33001]' });
    expect(rs.find((r) => r.name === 'gpus')?.reservations).toEqual([{ type: 'STATIC', role: 'r' }]);
    expect(() => parseResourceString('cpus')).toThrow(/bad resource/);
    expect(() => parseResourceString('ports:[5-x]')).toThrow(/bad range/);
  });

  it('adds and subtracts scalars at three decimals and keeps reservations apart', () => {
    const total = add([cpus(1.9)], [cpus(0.1, reserved)], [cpus(0.2)]);
    expect(total).toHaveLength(2);
    expect(subtract(total, [cpus(2.1)])).toEqual([cpus(0.1, reserved)]);
    expect(subtract(total, [cpus(2.2)])).toBeUndefined();
    expect(contains(total, [cpus(0.1, reserved)])).toBe(true);
    expect(contains(total, [cpus(0.2, reserved)])).toBe(false);
    expect(subtract([cpus(0.3)], [cpus(0.1), cpus(0.2)])).toEqual([]);
  });

  it('splits and merges ranges', () => {
    const ports = (b: number, e: number): Resource => ({ name: 'ports', type: 'RANGES', ranges: { range: [{ begin: b, end: e }] } });
    const left = subtract([ports(31000, 32000)], [ports(31010, 31019)]);
    expect(left?.[0]?.ranges?.range).toEqual([{ begin: 31000, end: 31009 }, { begin: 31020, end: 32000 }]);
    expect(contains(left ?? [], [ports(31015, 31015)])).toBe(false);
    expect(add(left ?? [], [ports(31010, 31019)])[0]?.ranges?.range).toEqual([{ begin: 31000, end: 32000 }]);
    expect(formatRanges([{ begin: 3, end: 4 }, { begin: 1, end: 2 }])).toBe('[1-4]');
  });

  it('treats persistent volumes as atomic and converts reservations', () => {
    const disk: Resource = { name: 'disk', type: 'SCALAR', scalar: { value: 64 }, ...reserved };
    const vol: Resource = { ...disk, disk: { persistence: { id: 'v1' }, volume: { mode: 'RW', container_path: 'data' } } };
    expect(subtract([vol], [{ ...vol, scalar: { value: 32 } }])).toBeUndefined();
    expect(subtract([vol], [vol])).toEqual([]);
    expect(stripVolume(vol)).toEqual(disk);
    expect(popReservation(disk)).toEqual({ name: 'disk', type: 'SCALAR', scalar: { value: 64 } });
    expect(contains([disk], [vol])).toBe(false);
  });

  it('upgrades and downgrades the pre-refinement reservation format', () => {
    const legacy: Resource = { name: 'mem', type: 'SCALAR', scalar: { value: 1 }, role: 'r', reservation: { principal: 'p' } };
    const up = upgrade(legacy);
    expect(up).toEqual({ name: 'mem', type: 'SCALAR', scalar: { value: 1 }, reservations: [{ type: 'DYNAMIC', role: 'r', principal: 'p' }] });
    expect(downgrade(up)).toEqual(legacy);
    expect(downgrade({ name: 'mem', type: 'SCALAR', scalar: { value: 1 } })).toMatchObject({ role: '*' });
    expect(contains([up], [legacy])).toBe(true);
  });
});
