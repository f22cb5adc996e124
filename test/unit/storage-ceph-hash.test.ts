import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { linuxDcacheHash, nameBytes, objectHash, pgNumMask, rjenkins, stableMod } from '../../src/storage/ceph/hash.js';

// Recorded from `ceph osd map locality <name> [<nspace>] -f json` on the Ceph 16
// testbed (pool 2, pg_num 16): raw_pgid carries the full 32-bit hash.
const RECORDED: Array<{ name: string; ns?: string; raw: number; pg: number }> = [
  { name: 'obj1', raw: 0x6cf8deff, pg: 0xf },
  { name: 'a', raw: 0x29eec818, pg: 0x8 },
  { name: '', raw: 0xbd49d10d, pg: 0xd },
  { name: 'abcdefghijkl', raw: 0x0b1b3ea5, pg: 0x5 },
  { name: 'abcdefghijklm', raw: 0x3122b031, pg: 0x1 },
  { name: '10000000001.00000000', raw: 0x0c9e0747, pg: 0x7 },
  { name: 'héllo wörld', raw: 0x45554f85, pg: 0x5 },
  { name: 'x/y/z.txt', raw: 0x2ed8be65, pg: 0x5 },
  { name: 'obj1', ns: 'ns1', raw: 0xf490d39d, pg: 0xd },
];

describe('ceph_str_hash_rjenkins and stable mod', () => {
  it.each(RECORDED)('hashes $name (ns $ns) like the cluster does', ({ name, ns, raw, pg }) => {
    const h = objectHash(2, name, ns);
    expect(h).toBe(raw);
    expect(stableMod(h, 16, pgNumMask(16))).toBe(pg);
  });

  it('computes the pg_num mask as Ceph does', () => {
    expect(pgNumMask(1)).toBe(0);
    expect(pgNumMask(8)).toBe(7);
    expect(pgNumMask(12)).toBe(15);
    expect(pgNumMask(16)).toBe(15);
    expect(pgNumMask(17)).toBe(31);
  });

  it('stable mod folds the upper half of a non-power-of-two pg_num down', () => {
    // pg_num 12, mask 15: 0..11 stay, 12..15 fold onto 4..7.
    expect([0, 5, 11, 12, 13, 15].map((x) => stableMod(x, 12, 15))).toEqual([0, 5, 11, 4, 5, 7]);
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 4096 }), (x, n) => {
      const pg = stableMod(x, n, pgNumMask(n));
      return pg >= 0 && pg < n;
    }));
  });

  it('returns unsigned 32-bit values for any input', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const h = rjenkins(bytes);
      const l = linuxDcacheHash(bytes);
      return Number.isInteger(h) && h >= 0 && h <= 0xffffffff && l >= 0 && l <= 0xffffffff;
    }));
  });

  it('encodes names as UTF-8', () => {
    expect([...nameBytes('é')]).toEqual([0xc3, 0xa9]);
    expect([...nameBytes('ab')]).toEqual([0x61, 0x62]);
  });
});
