/** Tenants' uids: a hash collision between two configured tenants is refused at start. */
import { describe, expect, it } from 'vitest';
import { checkTenantUids } from '../../src/app/tenant-isolation.js';
import { DEFAULT_TENANT_UIDS, tenantUid } from '../../src/executor/isolation/tenant.js';

/** Two names that hash to one uid of the default range (found by search, so never hard-coded wrong). */
function collidingPair(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; i < 100_000; i++) {
    const name = `team-${i}`;
    const uid = tenantUid(name, DEFAULT_TENANT_UIDS);
    const other = seen.get(uid);
    if (other !== undefined) return [other, name];
    seen.set(uid, name);
  }
  throw new Error('no collision among 100,000 names');
}

describe('tenant uids', () => {
  it('distinct uids for ordinary tenant sets, every uid inside the range', () => {
    const names = ['analytics', 'ml', 'etl', 'finance'];
    expect(() => checkTenantUids(names)).not.toThrow();
    for (const n of names) {
      const uid = tenantUid(n, DEFAULT_TENANT_UIDS);
      expect(uid).toBeGreaterThanOrEqual(DEFAULT_TENANT_UIDS.first);
      expect(uid).toBeLessThanOrEqual(DEFAULT_TENANT_UIDS.last);
    }
  });

  it('two tenants that would share a uid are refused, naming both and the field', () => {
    const [a, b] = collidingPair();
    expect(tenantUid(a, DEFAULT_TENANT_UIDS)).toBe(tenantUid(b, DEFAULT_TENANT_UIDS));
    let err: unknown;
    try {
      checkTenantUids(['etl', a, b]);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'INVALID_FIELD', field: 'tenants' });
    expect(String((err as Error).message)).toContain(`'${a}' and '${b}'`);
  });
});
