/**
 * Whether the configured isolation keeps tenants apart. The plain-process
 * fallback has no mount or pid namespace: a task sees every world-readable
 * path of its host and every process, so with more than one tenant it could
 * read another tenant's inputs and Locus's own files. Locus refuses that
 * combination unless the operator says, in `allow-unisolated-tenants`, that
 * the tenants trust each other.
 */
import { LocusError } from '../core/errors.js';
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
