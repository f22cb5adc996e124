/**
 * TalliedMap keeps per-group counts exact through every way a Map changes (set of a new key,
 * set over an existing key whose group differs, delete of a present and an absent key, clear),
 * and hands out copies, so a caller's edits never reach the counts.
 */
import { describe, expect, it } from 'vitest';
import { TalliedMap } from '../../src/core/tallied-map.js';

interface Item { readonly tenant: string; readonly job: string }

const walkCount = (m: Map<string, Item>, by: keyof Item): Map<string, number> => {
  const out = new Map<string, number>();
  for (const v of m.values()) out.set(v[by], (out.get(v[by]) ?? 0) + 1);
  return out;
};

describe('TalliedMap', () => {
  it('counts each grouping as a walk over the values would', () => {
    const m = new TalliedMap<string, Item, 'tenant' | 'job'>({ tenant: (v) => v.tenant, job: (v) => v.job });
    m.set('a', { tenant: 't1', job: 'j1' });
    m.set('b', { tenant: 't1', job: 'j2' });
    m.set('c', { tenant: 't2', job: 'j2' });
    expect(m.tally('tenant')).toEqual(new Map([['t1', 2], ['t2', 1]]));
    expect(m.tally('job')).toEqual(new Map([['j1', 1], ['j2', 2]]));
    expect(m.countOf('tenant', 't1')).toBe(2);
    expect(m.countOf('tenant', 'nobody')).toBe(0);

    // Replacing a value moves its count to the new value's groups.
    m.set('a', { tenant: 't2', job: 'j2' });
    expect(m.tally('tenant')).toEqual(new Map([['t1', 1], ['t2', 2]]));
    expect(m.tally('job')).toEqual(new Map([['j2', 3]]));

    expect(m.delete('missing')).toBe(false);
    expect(m.delete('b')).toBe(true);
    expect(m.tally('tenant')).toEqual(new Map([['t2', 2]]));
    expect(m.size).toBe(2);

    m.clear();
    expect(m.tally('tenant').size).toBe(0);
    expect(m.countOf('job', 'j2')).toBe(0);
  });

  it('hands out copies', () => {
    const m = new TalliedMap<string, Item, 'tenant'>({ tenant: (v) => v.tenant });
    m.set('a', { tenant: 't', job: 'j' });
    const t = m.tally('tenant');
    t.set('t', 99);
    expect(m.countOf('tenant', 't')).toBe(1);
  });

  it('stays exact through a long random run of sets and deletes', () => {
    const m = new TalliedMap<string, Item, 'tenant' | 'job'>({ tenant: (v) => v.tenant, job: (v) => v.job });
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let i = 0; i < 5000; i++) {
      const key = `k${next(200)}`;
      if (next(3) === 0) m.delete(key);
      else m.set(key, { tenant: `t${next(4)}`, job: `j${next(9)}` });
    }
    expect(m.tally('tenant')).toEqual(walkCount(m, 'tenant'));
    expect(m.tally('job')).toEqual(walkCount(m, 'job'));
  });
});
