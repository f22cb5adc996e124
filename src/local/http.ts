/**
 * Small HTTP plumbing shared by the local master and agents: one server
 * factory (plain or TLS), body reading with a cap, answers in the shapes
 * libprocess uses (plain-text error bodies, empty 202s), RecordIO framing.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

/** TLS files for a server. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** A request handler. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** A listening server and how to stop it. */
export interface Listening {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

/** Create and start a server on host:port (0 = any free port). */
export async function listen(host: string, port: number, handler: Handler, tls?: TlsFiles): Promise<Listening> {
  const wrapped = (req: IncomingMessage, res: ServerResponse): void => {
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      if (!res.headersSent) text(res, 500, err instanceof Error ? err.message : String(err));
      else res.destroy();
    });
  };
  const server: Server = tls
    ? createHttpsServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, wrapped)
    : createHttpServer(wrapped);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return {
    server,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Read the whole request body (capped at 16 MiB). */
export async function readBody(req: IncomingMessage, limit = 16 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Answer with a plain-text body (libprocess error answers are text/plain). */
export function text(res: ServerResponse, status: number, body = '', headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...(body !== '' ? { 'Content-Type': 'text/plain; charset=utf-8' } : {}), 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

/** Answer with a JSON body. */
export function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** Frame one record as RecordIO: `<byte length>\n<bytes>`. */
export function recordio(value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  return Buffer.concat([Buffer.from(`${body.length}\n`, 'ascii'), body]);
}

/** The principal and secret of an HTTP Basic Authorization header, if any. */
export function basicAuth(req: IncomingMessage): { principal: string; secret: string } | undefined {
  const h = req.headers.authorization;
  if (h === undefined || !h.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(h.slice(6), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  return { principal: decoded.slice(0, i), secret: decoded.slice(i + 1) };
}
