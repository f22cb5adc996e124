/**
 * HTTP plumbing for the scheduler API: one request per connection (no shared
 * agent, so a call never queues behind the long-lived subscription and a dead
 * master cannot hold a pooled socket), HTTP Basic authentication, TLS with an
 * optional private CA, and endpoint URL handling.
 */
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { LocusError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';

/** Framework credentials (sent as HTTP Basic). */
export interface Credentials {
  readonly principal: string;
  readonly secret: string;
}

/** How to reach masters: credentials and TLS trust. */
export interface TransportOptions {
  readonly credentials?: Credentials;
  /** PEM text of the CA(s) that sign the master's certificate. */
  readonly ca?: string | Buffer;
}

/** The scheduler endpoint path under a master's base URL. */
export const SCHEDULER_PATH = '/api/v1/scheduler';

/**
 * Turn what a user typed (`http://host:5050`, `host:5050`, `https://h/prefix`)
 * into the scheduler endpoint URL. Throws INVALID_FIELD for anything else.
 */
export function schedulerEndpoint(master: string): URL {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(master) ? master : `http://${master}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new LocusError('INVALID_FIELD', `master: '${master}' is not a URL (example: http://127.0.0.1:5050)`, { field: 'master' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new LocusError('INVALID_FIELD', `master: unsupported scheme '${url.protocol}' (use http://, https:// or zk://)`, { field: 'master' });
  }
  if (!url.pathname.endsWith(SCHEDULER_PATH)) url.pathname = url.pathname.replace(/\/+$/, '') + SCHEDULER_PATH;
  url.search = '';
  url.hash = '';
  return url;
}

/** A master's base URL (scheme, host, port) for messages and summaries. */
export function masterBase(endpoint: URL): string {
  const prefix = endpoint.pathname.endsWith(SCHEDULER_PATH) ? endpoint.pathname.slice(0, -SCHEDULER_PATH.length) : '';
  return `${endpoint.protocol}//${endpoint.host}${prefix}`;
}

/**
 * Resolve a 307 `Location` against the URL that answered. Mesos sends a
 * scheme-relative `//host:port/...` (so the scheme of the request is kept),
 * others send absolute or path-only locations.
 */
export function resolveRedirect(location: string, from: URL): URL {
  const url = new URL(location, from);
  if (!url.pathname.endsWith(SCHEDULER_PATH)) url.pathname = url.pathname.replace(/\/+$/, '') + SCHEDULER_PATH;
  return url;
}

/** Read a CA file for https masters; a missing file is the user's error. */
export function readCaFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new LocusError('INVALID_FIELD', `ca-file: cannot read '${path}': ${(err as Error).message}`, { field: 'ca-file', cause: err });
  }
}

/** The headers every scheduler request carries. */
export function requestHeaders(transport: TransportOptions, body: string, streamId?: string): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    Accept: 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
  };
  if (streamId !== undefined) headers['Mesos-Stream-Id'] = streamId;
  if (transport.credentials) {
    const token = Buffer.from(`${transport.credentials.principal}:${transport.credentials.secret}`, 'utf8').toString('base64');
    headers['Authorization'] = `Basic ${token}`;
  }
  return headers;
}

/** Start a POST on its own connection (the caller handles response and errors). */
export function startPost(url: URL, transport: TransportOptions, body: string, streamId?: string): ClientRequest {
  const headers = requestHeaders(transport, body, streamId);
  const options = { method: 'POST', headers, agent: false as const };
  const req = url.protocol === 'https:'
    ? httpsRequest(url, { ...options, ...(transport.ca === undefined ? {} : { ca: transport.ca }) })
    : httpRequest(url, options);
  req.end(body);
  return req;
}

/** A complete (small) HTTP answer. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** Largest call answer read into memory; answers to calls are short texts. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/**
 * POST one call and read the whole answer. Connection failures reject with
 * UNAVAILABLE, a missing answer within `timeoutMs` (measured on `clock`) with TIMEOUT.
 */
export function postOnce(url: URL, transport: TransportOptions, body: string, streamId: string | undefined, timeoutMs: number, clock: Clock): Promise<HttpAnswer> {
  return new Promise<HttpAnswer>((resolve, reject) => {
    let settled = false;
    const req = startPost(url, transport, body, streamId);
    const timer = clock.setTimer(timeoutMs, () => {
      finish(new LocusError('TIMEOUT', `no answer from ${url.host} within ${timeoutMs} ms`));
      req.destroy();
    });
    const finish = (result: HttpAnswer | LocusError): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      if (result instanceof LocusError) reject(result);
      else resolve(result);
    };
    req.on('error', (err) => finish(connectionError(url, err)));
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_ANSWER_BYTES) chunks.push(c);
      });
      res.on('error', (err) => finish(connectionError(url, err)));
      res.on('end', () => finish({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
  });
}

/** A LocusError for a failed connection, keeping the system error text (ECONNREFUSED...). */
export function connectionError(url: URL, err: unknown): LocusError {
  const message = err instanceof Error ? err.message : String(err);
  return new LocusError('UNAVAILABLE', `cannot reach ${url.protocol}//${url.host}: ${message}`, { cause: err });
}
