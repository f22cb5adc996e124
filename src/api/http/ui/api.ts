/**
 * The dashboard's only way to the server: the HTTP API with the session's
 * token in an `Authorization: Bearer` header. The token is kept in
 * sessionStorage (gone when the tab closes, never in a URL or a cookie).
 *
 * Event streams: `EventSource` cannot send headers, and putting the token in
 * the query string would leak it into logs and history, so streams are read
 * with `fetch()` and a streaming body, parsed as server-sent events here.
 */
import { browser } from './dom.js';

const TOKEN_KEY = 'locus.token';

/** The session's token, if one was entered. */
export function token(): string | undefined {
  return browser.sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** Keep the token for this browser session. */
export function setToken(t: string): void {
  browser.sessionStorage.setItem(TOKEN_KEY, t);
}

/** Forget the token (sign out, or the server refused it). */
export function clearToken(): void {
  browser.sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the API (its catalog code), or a network failure (code NETWORK). */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string) {
    super(message);
  }
}

/** Called when the server refuses the token (401): the app shows the token form again. */
let onUnauthenticated: (e: ApiError) => void = () => undefined;
export function whenUnauthenticated(fn: (e: ApiError) => void): void {
  onUnauthenticated = fn;
}

type Json = unknown;

function headers(extra: Readonly<Record<string, string>> = {}, explicitToken?: string): Record<string, string> {
  const t = explicitToken ?? token();
  return { accept: 'application/json', ...(t ? { authorization: `Bearer ${t}` } : {}), ...extra };
}

async function errorOf(res: Response): Promise<ApiError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const err = obj(obj(body)['error']);
  const code = typeof err['code'] === 'string' ? err['code'] : `HTTP_${res.status}`;
  const message = typeof err['message'] === 'string' ? err['message'] : `${res.status} ${res.statusText}`;
  return new ApiError(res.status, code, message, typeof err['field'] === 'string' ? err['field'] : undefined);
}

async function send(method: string, path: string, body?: Json, extra: Readonly<Record<string, string>> = {}, signal?: AbortSignal, explicitToken?: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: headers(body === undefined ? extra : { 'content-type': 'application/json', ...extra }, explicitToken),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new ApiError(0, 'NETWORK', `the server did not answer: ${String(err)}`);
  }
  if (!res.ok) {
    const e = await errorOf(res);
    if (res.status === 401 && explicitToken === undefined) onUnauthenticated(e);
    throw e;
  }
  return res;
}

/** GET a JSON resource. */
export async function get(path: string, signal?: AbortSignal): Promise<unknown> {
  return (await send('GET', path, undefined, {}, signal)).json() as Promise<unknown>;
}

/** GET with a given token (the token form checks a token before keeping it). */
export async function getWithToken(path: string, t: string): Promise<unknown> {
  return (await send('GET', path, undefined, {}, undefined, t)).json() as Promise<unknown>;
}

/** POST/DELETE with an optional JSON body; answers the JSON body. */
export async function call(method: 'POST' | 'DELETE', path: string, body?: Json, extra: Readonly<Record<string, string>> = {}): Promise<unknown> {
  return (await send(method, path, body, extra)).json() as Promise<unknown>;
}

/** Read a streaming body chunk by chunk until it ends or `signal` aborts. */
export async function streamText(path: string, signal: AbortSignal, onText: (text: string) => void): Promise<void> {
  const res = await send('GET', path, undefined, { accept: 'text/plain, text/event-stream' }, signal);
  const reader = res.body?.getReader();
  if (!reader) return;
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      if (text !== '') onText(text);
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}

/** One server-sent event. */
export interface SseEvent {
  readonly event: string;
  readonly data: unknown;
}

/**
 * Follow a server-sent event stream (fetch + Authorization header). Lines are
 * split on the bytes as decoded; an event ends at a blank line (WHATWG HTML
 * §9.2.6). Comments (heartbeats) are skipped; data is JSON as the API sends it.
 */
export async function streamEvents(path: string, signal: AbortSignal, onEvent: (e: SseEvent) => void): Promise<void> {
  let buf = '';
  let event = 'message';
  let data: string[] = [];
  await streamText(path, signal, (text) => {
    buf += text;
    let nl: number;
    while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(buf[nl] === '\r' && buf[nl + 1] === '\n' ? nl + 2 : nl + 1);
      if (line === '') {
        if (data.length > 0) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(data.join('\n')) as unknown;
          } catch {
            parsed = data.join('\n');
          }
          onEvent({ event, data: parsed });
        }
        event = 'message';
        data = [];
      } else if (line.startsWith(':')) {
        continue;
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    }
  });
}

/** A fresh Idempotency-Key (randomUUID needs a secure context; loopback is one, a LAN address is not). */
export function idempotencyKey(): string {
  const uuid = browser.crypto?.randomUUID?.();
  return uuid ?? `ui-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

// Decoding what the API answers: every field is checked for its type and given a safe default,
// so a page never renders `undefined` or trusts a shape it did not check.

/** An object, or an empty one. */
export function obj(v: unknown): Readonly<Record<string, unknown>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
/** A string field, or `d`. */
export function str(o: unknown, k: string, d = ''): string {
  const v = obj(o)[k];
  return typeof v === 'string' ? v : d;
}
/** A string field, or undefined. */
export function optStr(o: unknown, k: string): string | undefined {
  const v = obj(o)[k];
  return typeof v === 'string' ? v : undefined;
}
/** A finite number field, or `d`. */
export function num(o: unknown, k: string, d = 0): number {
  const v = obj(o)[k];
  return typeof v === 'number' && Number.isFinite(v) ? v : d;
}
/** A number field, or null. */
export function optNum(o: unknown, k: string): number | null {
  const v = obj(o)[k];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
/** An array field, or []. */
export function arr(o: unknown, k: string): readonly unknown[] {
  const v = obj(o)[k];
  return Array.isArray(v) ? v : [];
}
/** A string array field. */
export function strs(o: unknown, k: string): string[] {
  return arr(o, k).filter((x): x is string => typeof x === 'string');
}
/** A map of strings. */
export function strMap(o: unknown, k: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(obj(obj(o)[k]))) if (typeof v === 'string') out[key] = v;
  return out;
}

/** Resources as the API answers them (cpus in cores, mem/disk in MiB). */
export interface Res {
  readonly cpus: number;
  readonly mem: number;
  readonly disk: number;
}
/** A resource vector field. */
export function res(o: unknown, k: string): Res {
  const r = obj(o)[k];
  return { cpus: num(r, 'cpus'), mem: num(r, 'mem'), disk: num(r, 'disk') };
}

/** A job's counters. */
export interface Counts {
  readonly total: number; readonly pending: number; readonly running: number; readonly succeeded: number; readonly failed: number;
  readonly nodeLocal: number; readonly rackLocal: number; readonly any: number;
}
/** One stage. */
export interface Stage { readonly index: number; readonly name: string; readonly tasks: number | null }
/** A job as the pages use it. */
export interface Job {
  readonly id: string; readonly name: string; readonly tenant: string; state: string; readonly stage: number;
  readonly stages: readonly Stage[]; counts: Counts; readonly createdAt: number; finishedAt: number | undefined;
  readonly message: string | undefined; readonly labels: Record<string, string>;
}

const time = (v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
};

/** Counts from a job or an event. */
export function decodeCounts(v: unknown): Counts {
  const loc = obj(obj(v)['locality']);
  return {
    total: num(v, 'total'), pending: num(v, 'pending'), running: num(v, 'running'), succeeded: num(v, 'succeeded'), failed: num(v, 'failed'),
    nodeLocal: num(loc, 'nodeLocal'), rackLocal: num(loc, 'rackLocal'), any: num(loc, 'any'),
  };
}

/** A JobView. */
export function decodeJob(v: unknown): Job {
  return {
    id: str(v, 'id'), name: str(v, 'name'), tenant: str(v, 'tenant'), state: str(v, 'state', 'UNKNOWN'), stage: num(v, 'stage'),
    stages: arr(v, 'stages').map((st, i) => ({ index: num(st, 'index', i), name: str(st, 'name', `stage ${i}`), tasks: optNum(st, 'tasks') })),
    counts: decodeCounts(obj(v)['counts']),
    createdAt: time(optStr(v, 'createdAt')) ?? Date.now(),
    finishedAt: time(optStr(v, 'finishedAt')),
    message: optStr(v, 'message'),
    labels: strMap(v, 'labels'),
  };
}

/** One attempt. */
export interface Attempt {
  readonly attempt: number; readonly attemptId: string; readonly host: string; readonly locality: string; readonly state: string;
  readonly startedAt: number; readonly finishedAt: number | undefined; readonly reason: string | undefined; readonly message: string | undefined;
}
/** One task. */
export interface Task {
  readonly id: string; readonly stage: number; readonly index: number; readonly state: string; readonly failures: number; readonly attempts: readonly Attempt[];
}

/** A TaskView. */
export function decodeTask(v: unknown): Task {
  return {
    id: str(v, 'id'), stage: num(v, 'stage'), index: num(v, 'index'), state: str(v, 'state', 'UNKNOWN'), failures: num(v, 'failures'),
    attempts: arr(v, 'attempts').map((a) => ({
      attempt: num(a, 'attempt'), attemptId: str(a, 'attemptId'), host: str(a, 'host'), locality: str(a, 'locality', 'any'), state: str(a, 'state'),
      startedAt: time(optStr(a, 'startedAt')) ?? 0, finishedAt: time(optStr(a, 'finishedAt')),
      reason: optStr(a, 'reason'), message: optStr(a, 'message'),
    })),
  };
}

/** One split of the locality view. */
export interface Split {
  readonly task: string; readonly index: number; readonly uri: string; readonly length: number; readonly hosts: string[]; readonly racks: string[];
  readonly state: string; readonly ranOn: string | undefined; readonly locality: string | undefined; readonly bytesLocal: number; readonly bytesNetwork: number;
}
/** The answer of /v1/jobs/:id/splits. */
export interface Splits {
  readonly stage: number; readonly stageName: string; readonly total: number; readonly bytesLocal: number; readonly bytesNetwork: number; readonly splits: Split[];
}
/** Decode /v1/jobs/:id/splits. */
export function decodeSplits(v: unknown): Splits {
  return {
    stage: num(v, 'stage'), stageName: str(v, 'stageName'), total: num(v, 'total'), bytesLocal: num(v, 'bytesLocal'), bytesNetwork: num(v, 'bytesNetwork'),
    splits: arr(v, 'splits').map((x) => ({
      task: str(x, 'task'), index: num(x, 'index'), uri: str(x, 'uri'), length: num(x, 'length'), hosts: strs(x, 'hosts'), racks: strs(x, 'racks'),
      state: str(x, 'state'), ranOn: optStr(x, 'ranOn'), locality: optStr(x, 'locality'), bytesLocal: num(x, 'bytesLocal'), bytesNetwork: num(x, 'bytesNetwork'),
    })),
  };
}

/** An agent of /v1/cluster. */
export interface Agent { readonly id: string; readonly hostname: string; readonly rack: string }
/** Agents of /v1/cluster, with '-' for an unknown rack. */
export function decodeAgents(cluster: unknown): Agent[] {
  return arr(cluster, 'agents').map((a) => ({ id: str(a, 'id'), hostname: str(a, 'hostname'), rack: str(a, 'rack', '-') }));
}

// Formatting.

/** `1h 02m`, `3m 05s`, `4.2s`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const sec = Math.round(ms / 1000);
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const ss = sec % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(ss).padStart(2, '0')}s`;
  return `${ss}s`;
}

/** `1.5 MiB`. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i] ?? 'TiB'}`;
}

/** A size in MiB as a person reads it. */
export function mib(n: number): string {
  return n >= 1024 ? `${(n / 1024).toFixed(n % 1024 === 0 ? 0 : 1)} GiB` : `${Math.round(n)} MiB`;
}

/** `42%`, or '-' for null. */
export function pct(x: number | null): string {
  return x === null || !Number.isFinite(x) ? '-' : `${Math.round(x * 100)}%`;
}

/** Whether a job state is final. */
export function terminal(state: string): boolean {
  return state === 'SUCCEEDED' || state === 'FAILED' || state === 'CANCELLED';
}

/**
 * For a followed stream that ended with an error (network gone, page left):
 * nothing to show, because the page re-reads its data and follows again.
 */
export function ignoreEnded(_err: unknown): void {
  // Deliberately empty: see above.
}
