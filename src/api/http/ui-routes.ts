/**
 * The web dashboard at `/ui/`: one HTML shell, one stylesheet and the ES
 * modules `tsc` compiles from `./ui/*.ts` (served from beside this file, so
 * `dist/src/api/http/ui/` in a build). Nothing here needs a token: the shell
 * holds no data, and every page reads the API with the token the visitor
 * types in (kept in sessionStorage, sent as `Authorization: Bearer`). A
 * strict Content-Security-Policy lets the pages load only their own scripts
 * and talk only to this server — no CDN, no inline script.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LocusError } from '../../core/errors.js';
import type { HttpPlugin, HttpRouteContext } from './registry.js';
import { UI_CSS, uiShell } from './ui-page.js';

/** Options of the dashboard plugin. */
export interface UiRoutesOptions {
  /** Directory holding the compiled browser modules (default: `./ui/` beside this module). */
  readonly assetsDir?: string;
  readonly title?: string;
}

/** Names a module request may have: flat, lowercase, `.js` (or its source map). */
const ASSET_NAME = /^[a-z0-9-]{1,40}\.js(\.map)?$/;

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // The shell and modules change with every build; revalidating is cheap on loopback and LANs.
  'cache-control': 'no-cache',
};

/** The dashboard as a plugin. */
export function uiRoutes(options: UiRoutesOptions = {}): HttpPlugin {
  const dir = options.assetsDir ?? fileURLToPath(new URL('./ui/', import.meta.url));
  const html = uiShell(options.title ?? 'Locus');
  return {
    name: 'ui',
    register(ctx: HttpRouteContext) {
      // Plain fastify routes, not ctx.route: they are not API operations, so stay out of /openapi.json.
      const config = { locusPublic: true };
      ctx.app.get('/ui', { config }, async (_req, reply) => reply.redirect('/ui/', 302));
      ctx.app.get('/ui/', { config }, async (_req, reply) => reply.headers(SECURITY_HEADERS).type('text/html; charset=utf-8').send(html));
      ctx.app.get('/ui/app.css', { config }, async (_req, reply) => reply.headers(SECURITY_HEADERS).type('text/css; charset=utf-8').send(UI_CSS));
      ctx.app.get('/ui/js/:file', { config }, async (req, reply) => {
        const params = req.params as { file?: unknown };
        const file = typeof params.file === 'string' ? params.file : '';
        if (!ASSET_NAME.test(file)) throw new LocusError('NOT_FOUND', `no dashboard module '${file}'`);
        const path = `${dir}/${file}`;
        if (!existsSync(path)) {
          throw new LocusError('NOT_FOUND', `no dashboard module '${file}' (is the build complete? npm run build)`);
        }
        const body = await readFile(path);
        return reply.headers(SECURITY_HEADERS)
          .type(file.endsWith('.map') ? 'application/json; charset=utf-8' : 'text/javascript; charset=utf-8')
          .send(body);
      });
    },
  };
}
