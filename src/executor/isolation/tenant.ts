/**
 * Tenants kept apart on one host: every tenant's tasks run under a uid of
 * their own, taken from a configured range by a stable hash of the tenant's
 * name (the same uid on every host and after every restart, with no state to
 * keep), and a tenant's output directory belongs to that uid alone. File
 * permissions then hold even where a path leaks into another tenant's
 * container (the process fallback shows the whole host).
 *
 * Pure: no I/O, so the executor, the tests and `locus doctor` agree on a uid.
 */
import { invalidField } from '../../core/errors.js';

/** A range of host uids handed to tenants (inclusive); gid = uid. */
export interface TenantUidRange {
  readonly first: number;
  readonly last: number;
}

/**
 * The default range: above the ids distributions hand to people and services
 * and to the first user's subordinate ids (100000-165535 in /etc/subuid), below 2^31.
 */
export const DEFAULT_TENANT_UIDS: TenantUidRange = { first: 200_000, last: 265_535 };

/** Parse `FIRST-LAST` (or `off`, which gives undefined: every tenant runs as the default user). */
export function parseTenantUids(text: string, field = 'tenant-uids'): TenantUidRange | undefined {
  const t = text.trim();
  if (t === 'off') return undefined;
  const m = /^(\d+)-(\d+)$/.exec(t);
  if (!m) throw invalidField(field, `must be FIRST-LAST (e.g. 200000-265535) or off, got '${text}'`);
  const first = Number(m[1]);
  const last = Number(m[2]);
  // uid 0 is root and ids from 65534 (nobody) down are the host's own; 2^31 and above break tools.
  if (first < 1000 || last < first || last >= 2 ** 31 - 1) throw invalidField(field, `must satisfy 1000 <= FIRST <= LAST < 2147483647, got '${text}'`);
  return { first, last };
}

/** FNV-1a (32 bit) of a string's UTF-8 bytes: stable across processes and versions. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The uid of a tenant. Two tenants share a uid only if their hashes collide in
 * the range (about n²/2·size for n tenants: 1 in 1,300 for 10 tenants in the
 * default range); a wider range makes that rarer, and the mount namespace
 * still hides one tenant's files from the other's containers.
 */
export function tenantUid(tenant: string, range: TenantUidRange): number {
  const size = range.last - range.first + 1;
  return range.first + (fnv1a(tenant) % size);
}

/**
 * The tenant an output directory belongs to, from its path under the outputs
 * root (`<root>/<tenant>/<job>/...`, as the scheduler lays it out); undefined
 * when the path is not under the root or names no tenant.
 */
export function tenantOfOutput(relPath: string | undefined): string | undefined {
  if (relPath === undefined) return undefined;
  const first = relPath.split('/').find((s) => s !== '');
  if (first === undefined || first === '.' || first === '..' || first === '_other') return undefined;
  return first;
}
