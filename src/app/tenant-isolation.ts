/**
 * Whether the configured isolation keeps tenants apart. The plain-process
 * fallback has no mount or pid namespace: a task sees every process of its
 * host and every path file modes allow. Locus's own directories are closed to
 * it (src/local/work-dir.ts closeStateDir) and each tenant has its own uid,
 * but only a root executor can give it; an unprivileged one runs every
 * tenant's tasks as itself. Locus refuses several tenants on it unless the
 * operator says, in `allow-unisolated-tenants`, that they trust each other.
 */
import { LocusError } from '../core/errors.js';
import { DEFAULT_TENANT } from '../core/tenants.js';
import { DEFAULT_TENANT_UIDS, tenantUid, type TenantUidRange } from '../executor/isolation/tenant.js';
import type { IsolationMode } from '../executor/isolation/types.js';

/** Throws UNSUPPORTED when several tenants would run without namespaces and that was not allowed. */
export function checkTenantIsolation(o: { readonly isolation: IsolationMode; readonly allowUnisolatedTenants: boolean; readonly tenants: number }): void {
  if (o.isolation !== 'process' || o.tenants <= 1 || o.allowUnisolatedTenants) return;
  throw new LocusError(
    'UNSUPPORTED',
    `isolation: process cannot keep ${o.tenants} tenants apart (no mount or pid namespace: a task sees the host's world-readable files and processes); ` +
      'use isolation: linux or auto on hosts that support it, or set allow-unisolated-tenants: true if the tenants trust each other',
    { field: 'isolation' },
  );
}

/**
 * Throws INVALID_FIELD when two tenants would share a uid. Executors hash a tenant's name into
 * a uid range (the same on every host, with no state to keep); a collision is rare but would
 * put two tenants' files under one owner, so it is refused at start, where the operator can
 * still rename a tenant, rather than discovered in a breach.
 */
export function checkTenantUids(names: readonly string[], range: TenantUidRange = DEFAULT_TENANT_UIDS): void {
  const owner = new Map<number, string>();
  for (const name of new Set([DEFAULT_TENANT, ...names])) {
    const uid = tenantUid(name, range);
    const other = owner.get(uid);
    if (other !== undefined) {
      throw new LocusError(
        'INVALID_FIELD',
        `tenants '${other}' and '${name}' would run under the same uid ${uid} (their names hash to one id of the range ${range.first}-${range.last}); rename one of them`,
        { field: 'tenants' },
      );
    }
    owner.set(uid, name);
  }
}
