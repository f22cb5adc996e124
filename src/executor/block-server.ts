/**
 * The block server every executor runs: HTTP range reads of the files under
 * its roots (`datasets`: this host's local:// dataset replicas; `outputs`:
 * the stage outputs committed on this host), so a task on another host can
 * read them. It is what makes a task placed away from its data, or a reduce
 * reading map outputs from every host, work when agents share no disk.
 *
 *   GET /v1/blocks/<root>/<path>   Authorization: Bearer <token>   Range: bytes=a-b
 *   → 206 (or 200 without Range), 401 bad token, 403 outside the root,
 *     404 no such file, 416 unsatisfiable range.
 *
 * Every request must carry the framework's data-plane token (read from
 * Redis, never from argv or the environment). Paths are resolved with
 * realpath and must stay inside their root after symlinks are followed, so a
 * workload that planted a symlink in its output cannot make the server read
 * anything else of the host.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sep } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from '../obs/log.js';

/** What a block server serves and who may read it. */
export interface BlockServerOptions {
  /** Root name → directory. A root whose directory does not exist answers 404. */
  readonly roots: Readonly<Record<string, string>>;
  /** Returns the accepted bearer token (read per request so a rotated token takes effect). */
  readonly token: () => string | undefined;
  readonly bind?: string;
  readonly port?: number;
  readonly logger?: Logger;
}

/** A running block server. */
export interface BlockServer {
  /** host:port it listens on. */
  readonly address: string;
  readonly port: number;
  /** Bytes served so far (for metrics and tests). */
  bytesServed(): number;
  close(): Promise<void>;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function answer(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(message) });
  res.end(message);
}

/** Parse `bytes=a-b` / `bytes=a-` / `bytes=-n` for a file of `size`; undefined = unsatisfiable, null = no range. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined | null {
  if (header === undefined || header === '') return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return undefined;
  const [a, b] = [m[1] ?? '', m[2] ?? ''];
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return undefined;
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || end < start) return undefined;
  return { start, end };
}

/** Start a block server. */
export async function startBlockServer(o: BlockServerOptions): Promise<BlockServer> {
  let served = 0;
  const realRoots = new Map<string, string>();
  const rootOf = async (name: string): Promise<string | undefined> => {
    const dir = o.roots[name];
    if (dir === undefined) return undefined;
    const known = realRoots.get(name);
    if (known !== undefined) return known;
    try {
      const real = await fsp.realpath(dir);
      realRoots.set(name, real);
      return real;
    } catch {
      return undefined;
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'only GET and HEAD');
    const expected = o.token();
    const auth = req.headers.authorization ?? '';
    const given = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (expected === undefined || expected === '' || !sameSecret(given, expected)) return answer(res, 401, 'a valid data-plane token is required');
    // The raw request path, not a WHATWG URL's: that would resolve `..` before we could refuse it.
    const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
    const m = /^\/v1\/blocks\/([^/]+)\/(.+)$/.exec(rawPath);
    if (m === null) return answer(res, 404, 'expected /v1/blocks/<root>/<path>');
    let rel: string;
    let rootName: string;
    try {
      rootName = decodeURIComponent(m[1] ?? '');
      rel = (m[2] ?? '').split('/').map(decodeURIComponent).join('/');
    } catch {
      return answer(res, 400, 'bad path encoding');
    }
    // Refuse traversal outright, before touching the filesystem.
    if (rel.split('/').some((seg) => seg === '..' || seg === '.' || seg.includes('\0'))) return answer(res, 403, 'path outside the root');
    const root = await rootOf(rootName);
    if (root === undefined) return answer(res, 404, `no root '${rootName}' on this host`);
    let real: string;
    try {
      real = await fsp.realpath(`${root}/${rel}`);
    } catch {
      return answer(res, 404, 'no such file');
    }
    // Symlinks are followed by realpath: what they point at must still be inside the root.
    if (!real.startsWith(root + sep)) return answer(res, 403, 'path outside the root');
    let size: number;
    try {
      const st = await fsp.stat(real);
      if (!st.isFile()) return answer(res, 404, 'not a file');
      size = st.size;
    } catch {
      return answer(res, 404, 'no such file');
    }
    const range = parseRange(req.headers.range, size);
    if (range === undefined) {
      res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-length': 0 });
      res.end();
      return;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const length = size === 0 ? 0 : end - start + 1;
    res.writeHead(range === null ? 200 : 206, {
      'content-type': 'application/octet-stream',
      'content-length': length,
      'accept-ranges': 'bytes',
      ...(range === null ? {} : { 'content-range': `bytes ${start}-${end}/${size}` }),
    });
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    const stream = createReadStream(real, { start, end });
    stream.on('data', (c: Buffer | string) => { served += c.length; });
    stream.on('error', (err) => {
      o.logger?.warn({ err: err.message, path: real }, 'block server read failed');
      res.destroy(err);
    });
    stream.pipe(res);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      o.logger?.warn({ err: String(err) }, 'block server request failed');
      if (!res.headersSent) answer(res, 500, 'internal error');
      else res.destroy();
    });
  });
  // Keep-alive connections from readers must not hold close() up.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.bind ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    address: `${host}:${addr.port}`,
    port: addr.port,
    bytesServed: () => served,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
