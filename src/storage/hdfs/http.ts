/**
 * A small HTTP GET with keep-alive, a deadline and safe redirect following,
 * for WebHDFS. Redirects are followed by hand: only http(s) targets, never
 * from https down to http, at most `maxRedirects` hops, always as a fresh GET
 * of the Location (the NameNode puts the DataNode and any token there).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { LocusError } from '../../core/errors.js';
import { PERMANENT_DETAIL } from '../errors.js';

/** Per-request settings. */
export interface GetOptions {
  readonly timeoutMs: number;
  readonly maxRedirects: number;
  readonly signal?: AbortSignal;
}

/** A buffered answer. */
export interface HttpAnswer {
  readonly status: number;
  readonly url: string;
  readonly body: Buffer;
  readonly contentType: string;
}

/** Keep-alive agents shared by one client (WebHDFS makes many small calls). */
export interface Agents {
  readonly http: HttpAgent;
  readonly https: HttpsAgent;
}

/** New keep-alive agents with at most `maxSockets` connections per host. */
export function createAgents(maxSockets: number): Agents {
  return {
    http: new HttpAgent({ keepAlive: true, maxSockets }),
    https: new HttpsAgent({ keepAlive: true, maxSockets }),
  };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** TLS failures: the handshake or a certificate (Node's and OpenSSL's codes and texts). */
const TLS_FAILURE_CODE = /^(EPROTO|ERR_TLS_|ERR_SSL_)|CERT|UNABLE_TO_(GET|VERIFY)/;
const TLS_FAILURE_TEXT = /wrong version number|SSL routines|certificate/i;

/**
 * Thrown for transport failures (refused, reset, timeout) with the URL's host named. Most say
 * the NameNode is away just now (UNAVAILABLE, TIMEOUT: a stage's listing waits them out). Those
 * that are configuration mistakes, which asking again answers the same, are marked permanent
 * (storage/errors.ts PERMANENT_DETAIL), so the job fails at once saying what to correct:
 * - ENOTFOUND: DNS says the host does not exist (a typo in the URI). A name briefly absent from
 *   DNS during a restart fails the job at once too; that is rarer than a typo, which would
 *   otherwise hold the job for all of input-storage-give-up. EAI_AGAIN (DNS not answering)
 *   stays transient.
 * - TLS failures (EPROTO, "wrong version number", certificate errors): swebhdfs:// to a plain
 *   HTTP port, or a certificate this host does not trust.
 * - HTTP parse errors (HPE_*): the port answers, but not in HTTP (another service's port).
 */
function transportError(url: URL, err: unknown): LocusError {
  const e = err as NodeJS.ErrnoException;
  const where = `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
  const permanent = { cause: err, details: { [PERMANENT_DETAIL]: true } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new LocusError('TIMEOUT', `no answer from ${where} in time`, { cause: err });
  }
  if (e.code === 'ENOTFOUND') {
    return new LocusError('STORAGE', `the host ${url.hostname} is not known to DNS (ENOTFOUND): check the host in the URI`, permanent);
  }
  if (e.code === 'ECONNREFUSED' || e.code === 'EHOSTUNREACH' || e.code === 'EAI_AGAIN') {
    return new LocusError('UNAVAILABLE', `cannot reach ${where} (${e.code})`, { cause: err });
  }
  const code = typeof e.code === 'string' ? e.code : '';
  if (TLS_FAILURE_CODE.test(code) || (code !== 'ECONNRESET' && TLS_FAILURE_TEXT.test(e.message))) {
    const hint = url.protocol === 'https:' ? ' (is it an HTTPS port? swebhdfs:// needs one; webhdfs:// and hdfs:// speak plain HTTP)' : '';
    // OpenSSL's text names its source file; its reason ("wrong version number") is what tells.
    const reason = /SSL routines:[^:]*:([^:]+)/.exec(e.message)?.[1] ?? e.message;
    return new LocusError('PROTOCOL', `TLS with ${where} failed${hint}: ${reason}`, permanent);
  }
  if (code.startsWith('HPE_')) {
    return new LocusError('PROTOCOL', `${where} does not answer in HTTP (is the port WebHDFS's HTTP port?): ${e.message}`, permanent);
  }
  return new LocusError('UNAVAILABLE', `request to ${where} failed: ${e.message}`, { cause: err });
}

/** Open a GET and hand back the response head (body unread), following redirects safely. */
export async function openGet(start: string, agents: Agents, options: GetOptions): Promise<{ res: IncomingMessage; url: URL }> {
  let url = new URL(start);
  const signal = options.signal === undefined ? AbortSignal.timeout(options.timeoutMs) : AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]);
  for (let hop = 0; ; hop++) {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        url,
        { method: 'GET', agent: url.protocol === 'https:' ? agents.https : agents.http, signal, headers: { accept: 'application/json' } },
        resolve,
      );
      req.on('error', (err) => reject(transportError(url, err)));
      req.end();
    });
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode ?? 0) || location === undefined) return { res, url };
    res.resume();
    if (hop >= options.maxRedirects) {
      throw new LocusError('PROTOCOL', `more than ${options.maxRedirects} redirects (last to ${location})`);
    }
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new LocusError('PROTOCOL', `redirect to an invalid URL '${location}'`);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new LocusError('PROTOCOL', `refusing to follow a redirect to ${next.protocol} URL`);
    }
    if (url.protocol === 'https:' && next.protocol === 'http:') {
      throw new LocusError('PROTOCOL', `refusing to follow a redirect from https to http (${next.host})`);
    }
    url = next;
  }
}

/** GET a URL and buffer the body (capped at maxBytes). */
export async function getBuffered(start: string, agents: Agents, options: GetOptions, maxBytes = 64 * 1024 * 1024): Promise<HttpAnswer> {
  const { res, url } = await openGet(start, agents, options);
  const body = await readCapped(res, url, maxBytes, `${maxBytes} bytes`);
  return { status: res.statusCode ?? 0, url: url.toString(), body, contentType: String(res.headers['content-type'] ?? '') };
}

/** An answer's whole body, refused (PROTOCOL) past `maxBytes`; transport errors name the host. */
async function readCapped(res: IncomingMessage, url: URL, maxBytes: number, limit: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res) {
      const b = chunk as Buffer;
      total += b.length;
      if (total > maxBytes) {
        res.destroy();
        throw new LocusError('PROTOCOL', `answer from ${url.host} larger than ${limit}`);
      }
      parts.push(b);
    }
  } catch (err) {
    if (err instanceof LocusError) throw err;
    throw transportError(url, err);
  }
  return Buffer.concat(parts);
}

/** A request body: a stream of known length (WebHDFS DataNodes want Content-Length). */
export interface RequestBody {
  readonly stream: NodeJS.ReadableStream;
  readonly length: number;
}

/** A buffered answer to a request that may not be followed (a redirect is handed back). */
export interface SentAnswer extends HttpAnswer {
  readonly location?: string;
}

/**
 * Send one PUT/POST/DELETE and buffer the answer (capped at 1 MiB: WebHDFS answers these with
 * small JSON). Redirects are not followed: a WebHDFS CREATE's 307 must be followed by the caller
 * with the bytes, and only after checking where it points (see `checkRedirect`).
 */
export async function sendRequest(method: 'PUT' | 'POST' | 'DELETE', target: string, agents: Agents, options: { readonly timeoutMs: number; readonly signal?: AbortSignal }, body?: RequestBody): Promise<SentAnswer> {
  const url = new URL(target);
  const signal = options.signal === undefined ? AbortSignal.timeout(options.timeoutMs) : AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = body.length;
    } else if (method !== 'DELETE') {
      headers['content-length'] = 0;
    }
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url, { method, agent: url.protocol === 'https:' ? agents.https : agents.http, signal, headers }, resolve,
    );
    req.on('error', (err) => reject(transportError(url, err)));
    if (body === undefined) {
      req.end();
      return;
    }
    body.stream.on('error', (err) => req.destroy(err));
    body.stream.pipe(req);
  });
  const answer = await readCapped(res, url, 1024 * 1024, '1 MiB');
  const location = res.headers.location;
  return {
    status: res.statusCode ?? 0, url: url.toString(), body: answer, contentType: String(res.headers['content-type'] ?? ''),
    ...(location === undefined ? {} : { location }),
  };
}

/** The URL a redirect points to, refused unless http(s) and never from https down to http. */
export function checkRedirect(from: string, location: string): URL {
  const base = new URL(from);
  let next: URL;
  try {
    next = new URL(location, base);
  } catch {
    throw new LocusError('PROTOCOL', `redirect to an invalid URL '${location}'`);
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new LocusError('PROTOCOL', `refusing to follow a redirect to ${next.protocol} URL`);
  if (base.protocol === 'https:' && next.protocol === 'http:') throw new LocusError('PROTOCOL', `refusing to follow a redirect from https to http (${next.host})`);
  return next;
}
