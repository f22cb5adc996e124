/** Tenants file decoding, bearer-token authentication, tenant scoping, and the CLI client's config resolution. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Authenticator, hashToken, parseTenantsText } from '../../src/api/auth.js';
import { LocusError } from '../../src/core/errors.js';
import { decodeTenantsConfig } from '../../src/core/tenants.js';
import { resolveClientConfig, DEFAULT_SERVER } from '../../src/cli/client.js';

const A = hashToken('token-a');
const B = hashToken('token-b');

describe('tenants file', () => {
  it('decodes YAML and JSON with defaults', () => {
    const yaml = `adminTokenSha256: ${hashToken('root')}\ntenants:\n  - name: analytics\n    role: analytics/batch\n    weight: 2\n    quota: { disk: 10240 }\n    tokenSha256: ${A}\n  - name: ml\n    tokenSha256: ${B}\n`;
    const cfg = parseTenantsText(yaml);
    expect(cfg.tenants).toEqual([
      { name: 'analytics', role: 'analytics/batch', weight: 2, quota: { disk: 10240 }, tokenSha256: A },
      { name: 'ml', role: 'locus', weight: 1, tokenSha256: B },
    ]);
    expect(parseTenantsText(JSON.stringify({ tenants: [{ name: 'x', tokenSha256: A }] })).tenants).toHaveLength(1);
  });
  it('gives tenants without a role, and the default tenant, the framework\'s role', () => {
    const yaml = `tenants:\n  - name: analytics\n    role: analytics/batch\n    tokenSha256: ${A}\n  - name: ml\n    tokenSha256: ${B}\n`;
    const auth = new Authenticator({ config: parseTenantsText(yaml, 'batch-fw') });
    expect(auth.tenants().map((t) => [t.name, t.role])).toEqual([['analytics', 'analytics/batch'], ['ml', 'batch-fw'], ['default', 'batch-fw']]);
    // With no tenants file the framework passes its role the same way; without one, `locus`.
    expect(new Authenticator({ config: { tenants: [], defaultRole: 'batch-fw' } }).tenants().map((t) => t.role)).toEqual(['batch-fw']);
    expect(new Authenticator({ config: parseTenantsText(yaml) }).tenants().map((t) => t.role)).toEqual(['analytics/batch', 'locus', 'locus']);
  });
  it.each([
    [{ tenants: [{ name: 'Bad Name', tokenSha256: A }] }, 'tenants[0].name'],
    [{ tenants: [{ name: 'a', tokenSha256: 'abc' }] }, 'tenants[0].tokenSha256'],
    [{ tenants: [{ name: 'a', role: '../x', tokenSha256: A }] }, 'tenants[0].role'],
    [{ tenants: [{ name: 'a', weight: 0, tokenSha256: A }] }, 'tenants[0].weight'],
    [{ tenants: [{ name: 'a', tokenSha256: A }, { name: 'a', tokenSha256: B }] }, 'tenants[1].name'],
    [{ tenants: [{ name: 'a', tokenSha256: A }, { name: 'b', tokenSha256: A }] }, 'tenants[1].tokenSha256'],
    [{ adminTokenSha256: A, tenants: [{ name: 'a', tokenSha256: A }] }, 'adminTokenSha256'],
  ])('refuses %j naming %s', (doc, field) => {
    try {
      decodeTenantsConfig(doc);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(LocusError);
      expect((err as LocusError).field).toBe(field);
    }
  });
  it('bounds YAML aliases', () => {
    const bomb = 'a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n';
    expect(() => parseTenantsText(bomb)).toThrow(expect.objectContaining({ code: 'INVALID_BODY', message: expect.stringMatching(/alias/i) }));
  });
});

describe('Authenticator', () => {
  const auth = new Authenticator({
    config: { tenants: [{ name: 'a', role: 'ra', weight: 1, tokenSha256: A }, { name: 'b', role: 'rb', weight: 1, tokenSha256: B }] },
    adminToken: 'root-token',
  });
  it('maps tokens to principals and refuses everything else with UNAUTHENTICATED', () => {
    expect(auth.authenticateHeader('Bearer token-a')).toMatchObject({ kind: 'tenant', tenant: { name: 'a' } });
    expect(auth.authenticateHeader('bearer   root-token')).toEqual({ kind: 'admin' });
    for (const h of [undefined, '', 'Bearer', 'Bearer token-c', 'Basic dG9rZW4tYQ==', 'token-a', `Bearer ${A}`]) {
      expect(() => auth.authenticateHeader(h)).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
    }
  });
  it('scopes tenants: own only, 403 for another, admin anywhere (default when unnamed)', () => {
    const a = auth.authenticateToken('token-a');
    const admin = auth.authenticateToken('root-token');
    expect(auth.actingTenant(a).name).toBe('a');
    expect(auth.actingTenant(a, 'a').name).toBe('a');
    expect(() => auth.actingTenant(a, 'b')).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
    expect(auth.actingTenant(admin)).toMatchObject({ name: 'default', role: 'locus' });
    expect(auth.actingTenant(admin, 'b')).toMatchObject({ name: 'b', role: 'rb' });
    expect(() => auth.actingTenant(admin, 'zzz')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(auth.canSee(a, 'b')).toBe(false);
    expect(auth.canSee(admin, 'b')).toBe(true);
    expect(auth.listScope(a)).toBe('a');
    expect(auth.listScope(admin)).toBeUndefined();
    expect(auth.tenants().map((t) => t.name)).toEqual(['a', 'b', 'default']);
  });
});

describe('CLI client config', () => {
  it('prefers flags, then env, then ~/.locus/config, then the default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'locus-cfg-'));
    try {
      const file = join(dir, 'config');
      writeFileSync(file, 'server: http://127.0.0.1:9999/\ntoken: from-file\n');
      expect(resolveClientConfig({}, {}, file)).toEqual({ server: 'http://127.0.0.1:9999', token: 'from-file' });
      expect(resolveClientConfig({}, { LOCUS_SERVER: 'http://127.0.0.1:7', LOCUS_TOKEN: 'env' }, file)).toEqual({ server: 'http://127.0.0.1:7', token: 'env' });
      expect(resolveClientConfig({ server: 'http://127.0.0.1:1', token: 'flag' }, { LOCUS_TOKEN: 'env' }, file)).toEqual({ server: 'http://127.0.0.1:1', token: 'flag' });
      expect(resolveClientConfig({}, {}, join(dir, 'missing'))).toEqual({ server: DEFAULT_SERVER });
      expect(() => resolveClientConfig({ server: 'ftp://x' }, {}, file)).toThrow(expect.objectContaining({ field: 'server' }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
