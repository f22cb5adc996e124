/**
 * Tenants: who may use Locus, under which Mesos role, with which weight and
 * quota. Pure: the config file's text is parsed by the caller (YAML or JSON)
 * and handed here as `unknown`; this module decodes and validates it.
 *
 * Tokens are never stored: a tenant carries the SHA-256 (hex) of its bearer
 * token, so a leaked config file does not leak credentials.
 */
import { DecodeError, asArray, asNumber, asObject, asString, isObject, optional } from './decode.js';
import { LocusError, invalidField } from './errors.js';
import { parseSizeMiB } from './units.js';

/** The tenant that admin requests land in when they name none. */
export const DEFAULT_TENANT = 'default';

/** The default Mesos role for tenants that do not name one. */
export const DEFAULT_ROLE = 'locus';

/** A tenant's upper bound on what it may hold (cpus in cores, mem and disk in MiB). */
export interface TenantQuota {
  readonly cpus?: number;
  readonly mem?: number;
  readonly disk?: number;
}

/** One tenant. */
export interface Tenant {
  readonly name: string;
  /** The Mesos role its reservations, volumes and tasks use. */
  readonly role: string;
  /** Fair-share weight (DRF), > 0. */
  readonly weight: number;
  readonly quota?: TenantQuota;
  /** SHA-256 of the tenant's bearer token, lowercase hex (64 chars). */
  readonly tokenSha256: string;
}

/** The decoded tenants file. */
export interface TenantsConfig {
  readonly tenants: readonly Tenant[];
  /** SHA-256 of the admin token, when the file names one. */
  readonly adminTokenSha256?: string;
  /** The role of the `default` tenant when the file does not name it (the framework's role; DEFAULT_ROLE when unset). */
  readonly defaultRole?: string;
}

const TENANT_NAME_RE = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/;
// Mesos role names: no leading `.` or `-`, no `/`-separated empty or dot
// components, no whitespace; we keep to a conservative subset.
const ROLE_COMPONENT_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;

/** Whether `name` is a valid tenant name (lowercase letters, digits, `-`, `_`). */
export function isTenantName(name: string): boolean {
  return TENANT_NAME_RE.test(name);
}

/** Whether `role` is a Mesos role name Locus accepts (hierarchical with `/`). */
export function isRoleName(role: string): boolean {
  if (role === '*' || role.length === 0 || role.length > 255) return false;
  return role.split('/').every((c) => ROLE_COMPONENT_RE.test(c) && c !== '.' && c !== '..');
}

function decodeQuota(v: unknown, path: string): TenantQuota {
  const o = asObject(v, path);
  const dim = (key: 'cpus' | 'mem' | 'disk'): number | undefined => {
    const n = optional(o[key], `${path}.${key}`, asNumber);
    if (n !== undefined && n < 0) throw new DecodeError(`${path}.${key}`, 'must be >= 0');
    return n;
  };
  // Memory and disk read like every other size in Locus: `8GiB`, or a bare number of MiB.
  const size = (key: 'mem' | 'disk'): number | undefined => {
    const v = o[key];
    if (typeof v !== 'string') return dim(key);
    try {
      return parseSizeMiB(v, `${path}.${key}`);
    } catch (err) {
      throw new DecodeError(`${path}.${key}`, err instanceof LocusError ? err.message.replace(/^[^:]*: /, '') : String(err));
    }
  };
  const cpus = dim('cpus');
  const mem = size('mem');
  const disk = size('disk');
  return { ...(cpus === undefined ? {} : { cpus }), ...(mem === undefined ? {} : { mem }), ...(disk === undefined ? {} : { disk }) };
}

function decodeSha(v: unknown, path: string): string {
  const s = asString(v, path).toLowerCase();
  if (!SHA256_RE.test(s)) throw new DecodeError(path, 'expected 64 hex digits (the SHA-256 of the token)');
  return s;
}

/** Decode one tenant entry. */
export function decodeTenant(v: unknown, path: string, defaultRole: string = DEFAULT_ROLE): Tenant {
  const o = asObject(v, path);
  const name = asString(o['name'], `${path}.name`);
  if (!isTenantName(name)) throw new DecodeError(`${path}.name`, `'${name}' is not a tenant name (lowercase letters, digits, '-', '_')`);
  const role = optional(o['role'], `${path}.role`, asString) ?? defaultRole;
  if (!isRoleName(role)) throw new DecodeError(`${path}.role`, `'${role}' is not a valid Mesos role`);
  const weight = optional(o['weight'], `${path}.weight`, asNumber) ?? 1;
  if (weight <= 0) throw new DecodeError(`${path}.weight`, 'must be > 0');
  const quota = optional(o['quota'], `${path}.quota`, decodeQuota);
  // Config files spell keys with dashes (token-sha256), as the guide and compose do; the other spellings stay accepted.
  const tokenSha256 = decodeSha(o['tokenSha256'] ?? o['token_sha256'] ?? o['token-sha256'], `${path}.tokenSha256`);
  return { name, role, weight, ...(quota === undefined ? {} : { quota }), tokenSha256 };
}

/**
 * Decode the tenants file (already parsed from YAML or JSON). Shape:
 * `{ adminTokenSha256?: hex, tenants: [{ name, role?, weight?, quota?, tokenSha256 }] }`
 * (also `token-sha256` / `admin-token-sha256`; quota mem and disk as sizes like `8GiB` or MiB).
 * Errors are INVALID_FIELD naming the offending path.
 */
export function decodeTenantsConfig(doc: unknown, defaultRole: string = DEFAULT_ROLE): TenantsConfig {
  try {
    const o = isObject(doc) ? doc : asObject(doc, '');
    const tenants = optional(o['tenants'], 'tenants', (v, p) => asArray(v, p, (x, q) => decodeTenant(x, q, defaultRole))) ?? [];
    const seenNames = new Set<string>();
    const seenTokens = new Set<string>();
    tenants.forEach((t, i) => {
      if (seenNames.has(t.name)) throw new DecodeError(`tenants[${i}].name`, `duplicate tenant '${t.name}'`);
      if (seenTokens.has(t.tokenSha256)) throw new DecodeError(`tenants[${i}].tokenSha256`, 'two tenants share one token');
      seenNames.add(t.name);
      seenTokens.add(t.tokenSha256);
    });
    const admin = optional(o['adminTokenSha256'] ?? o['admin_token_sha256'] ?? o['admin-token-sha256'], 'adminTokenSha256', decodeSha);
    if (admin !== undefined && seenTokens.has(admin)) throw new DecodeError('adminTokenSha256', 'the admin token is also a tenant token');
    return { tenants, ...(admin === undefined ? {} : { adminTokenSha256: admin }), ...(defaultRole === DEFAULT_ROLE ? {} : { defaultRole }) };
  } catch (err) {
    if (err instanceof DecodeError) throw invalidField(err.path || 'tenants', err.message.slice((err.path || '<root>').length + 2));
    throw err;
  }
}

/** The tenant named `name`, or the implicit default tenant (the framework's role, no token). */
export function tenantOrDefault(config: TenantsConfig, name: string): Tenant | undefined {
  const t = config.tenants.find((x) => x.name === name);
  if (t) return t;
  if (name === DEFAULT_TENANT) return { name: DEFAULT_TENANT, role: config.defaultRole ?? DEFAULT_ROLE, weight: 1, tokenSha256: '' };
  return undefined;
}
