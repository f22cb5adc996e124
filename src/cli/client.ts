/**
 * A small HTTP client for the Locus API that CLI commands share. The server
 * URL and token come from flags, then LOCUS_SERVER / LOCUS_TOKEN, then
 * `~/.locus/config` (YAML or JSON: `server: http://127.0.0.1:8080`,
 * `token: <hex>`), then the default local server.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { isObject } from '../core/decode.js';
import { ERROR_CATALOG, LocusError, type ErrorCode } from '../core/errors.js';
import { CliUsageError } from './args.js';

/** Where the API is and how to authenticate. */
export interface ClientConfig {
  readonly server: string;
  readonly token?: string;
}

/** The server used when nothing names one. */
export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** The path of the per-user config file. */
export function configPath(home = homedir()): string {
  return join(home, '.locus', 'config');
}

function readConfigFile(path: string): { server?: string; token?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 10 }) as unknown;
  } catch (err) {
    throw new LocusError('INVALID_BODY', `${path}: ${(err as Error).message}`);
  }
  if (!isObject(doc)) return {};
  const server = typeof doc['server'] === 'string' ? doc['server'] : undefined;
  const token = typeof doc['token'] === 'string' ? doc['token'] : undefined;
  return { ...(server === undefined ? {} : { server }), ...(token === undefined ? {} : { token }) };
}

/** Resolve server and token: flags, then environment, then ~/.locus/config, then defaults. */
export function resolveClientConfig(
  flags: { readonly server?: string | undefined; readonly token?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
  file = configPath(),
): ClientConfig {
  const fromFile = readConfigFile(file);
  const pick = (...xs: (string | undefined)[]): string | undefined => xs.find((x) => x !== undefined && x !== '');
  const server = pick(flags.server, env['LOCUS_SERVER'], fromFile.server) ?? DEFAULT_SERVER;
  const token = pick(flags.token, env['LOCUS_TOKEN'], fromFile.token);
  // A bad server address is a usage error (exit 2 naming the flag), like any other bad flag value.
  if (!/^https?:\/\//.test(server)) throw new CliUsageError(`--server (or LOCUS_SERVER, ~/.locus/config): '${server}' must start with http:// or https://`, 'server');
  return { server: server.replace(/\/+$/, ''), ...(token === undefined ? {} : { token }) };
}

/** An API answer. */
export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Headers;
}

/** Options of one request. */
export interface RequestOptions {
  readonly body?: unknown;
  readonly query?: Readonly<Record<string, string | undefined>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  /** A body sent as-is with its own content type (e.g. a YAML job spec); instead of `body`. */
  readonly rawBody?: { readonly text: string; readonly contentType: string };
}

const CODES = new Set(Object.keys(ERROR_CATALOG));
const isCode = (s: unknown): s is ErrorCode => typeof s === 'string' && CODES.has(s);

/** Derive a catalog code from an HTTP status when the body carries none. */
function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return 'INVALID_FIELD';
    case 401: return 'UNAUTHENTICATED';
    case 403: return 'FORBIDDEN';
    case 404: return 'NOT_FOUND';
    case 409: return 'CONFLICT';
    case 413: return 'TOO_LARGE';
    case 422: return 'UNSATISFIABLE';
    case 429: return 'QUOTA_EXCEEDED';
    case 503: return 'NOT_READY';
    default: return status >= 500 ? 'UNAVAILABLE' : 'INTERNAL';
  }
}

/**
 * The error for an API that did not answer. fetch says only "fetch failed", its reason being in
 * `cause` (ECONNREFUSED, ENOTFOUND…): the reason is named, and what to check, since the usual one
 * is a framework that is not running there or a --server/LOCUS_SERVER that names the wrong port.
 */
function unreachable(server: string, err: unknown): LocusError {
  const e = err as Error & { cause?: { code?: unknown; message?: unknown } };
  const code = typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  const reason = code === 'ECONNREFUSED' ? 'connection refused'
    : e.name === 'TimeoutError' ? 'no answer in time'
    : code ?? (typeof e.cause?.message === 'string' ? e.cause.message : e.message);
  return new LocusError('UNAVAILABLE', `cannot reach the Locus API at ${server} (${reason}): is the framework running there ('locus up' or 'locus framework')? --server or LOCUS_SERVER names another address`, { cause: err });
}

/** The client. Non-2xx answers throw a LocusError with the server's code, message and field. */
export class LocusClient {
  constructor(readonly config: ClientConfig, private readonly fetchImpl: typeof fetch = fetch) {}

  /** Send one request; resolves for 2xx, throws LocusError otherwise. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    const url = new URL(this.config.server + path);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (this.config.token !== undefined) headers['authorization'] = `Bearer ${this.config.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.rawBody !== undefined) headers['content-type'] = options.rawBody.contentType;
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method,
        headers,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        ...(options.rawBody === undefined ? {} : { body: options.rawBody.text }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw unreachable(this.config.server, err);
    }
    const text = await res.text();
    let body: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text.length > 0) {
      try {
        body = JSON.parse(text) as unknown;
      } catch {
        body = text;
      }
    }
    if (res.status >= 200 && res.status < 300) return { status: res.status, body, headers: res.headers };
    const err = isObject(body) && isObject(body['error']) ? body['error'] : undefined;
    const code = isCode(err?.['code']) ? err['code'] : codeForStatus(res.status);
    const message = typeof err?.['message'] === 'string' ? err['message'] : `${method} ${path}: HTTP ${res.status}`;
    const field = typeof err?.['field'] === 'string' ? err['field'] : undefined;
    throw new LocusError(code, message, { ...(field === undefined ? {} : { field }), details: { status: res.status } });
  }

  /** GET and return the JSON body. */
  async get(path: string, query?: RequestOptions['query']): Promise<unknown> {
    return (await this.request('GET', path, query === undefined ? {} : { query })).body;
  }

  /**
   * Open a long-lived GET (server-sent events, followed logs): resolves with
   * the live response for 2xx, throws LocusError otherwise. Aborting `signal` closes it.
   */
  async stream(path: string, query?: RequestOptions['query'], accept = 'text/event-stream', signal?: AbortSignal): Promise<Response> {
    const url = new URL(this.config.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept };
    if (this.config.token !== undefined) headers['authorization'] = `Bearer ${this.config.token}`;
    let res: Response;
    try {
      res = await this.fetchImpl(url, { method: 'GET', headers, ...(signal === undefined ? {} : { signal }) });
    } catch (err) {
      throw unreachable(this.config.server, err);
    }
    if (res.status >= 200 && res.status < 300) return res;
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      body = text;
    }
    const err = isObject(body) && isObject(body['error']) ? body['error'] : undefined;
    const code = isCode(err?.['code']) ? err['code'] : codeForStatus(res.status);
    const message = typeof err?.['message'] === 'string' ? err['message'] : `GET ${path}: HTTP ${res.status}`;
    const field = typeof err?.['field'] === 'string' ? err['field'] : undefined;
    throw new LocusError(code, message, { ...(field === undefined ? {} : { field }), details: { status: res.status } });
  }
}
