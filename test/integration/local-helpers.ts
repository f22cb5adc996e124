/**
 * Raw-protocol helpers for the local-cluster tests: a SUBSCRIBE stream read
 * with node:http and a small RecordIO reader written here (not the
 * project's Mesos client, so the two cannot share a misunderstanding), and
 * plain fetch calls with hand-written JSON.
 */
import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalCluster, type LocalCluster, type LocalClusterOptions } from '../../src/local/index.js';

/** A decoded event: plain JSON. */
export type Ev = { type: string } & Record<string, unknown>;

/** Byte-level RecordIO reader: `<len>\n<bytes>`, records may split anywhere. */
export class RawRecordIo {
  private buf = Buffer.alloc(0);
  feed(chunk: Buffer): string[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: string[] = [];
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) break;
      const len = Number(this.buf.subarray(0, nl).toString('ascii'));
      if (!Number.isInteger(len)) throw new Error(`bad RecordIO header '${this.buf.subarray(0, nl).toString()}'`);
      if (this.buf.length < nl + 1 + len) break;
      out.push(this.buf.subarray(nl + 1, nl + 1 + len).toString('utf8'));
      this.buf = this.buf.subarray(nl + 1 + len);
    }
    return out;
  }
}

/** A subscription: its headers, its events, and a way to wait for one. */
export interface Sub {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly streamId: string;
  readonly frameworkId: string;
  readonly events: Ev[];
  /** Raw chunks as they arrived (one record per chunk is a wire property). */
  readonly chunks: Buffer[];
  next(pred: (e: Ev) => boolean, timeoutMs?: number, what?: string): Promise<Ev>;
  /** Wait until the stream has ended. */
  ended(timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Open a SUBSCRIBE stream with a hand-written body. Resolves after SUBSCRIBED (or the refusal). */
export async function subscribe(masterUrl: string, body: unknown, headers: Record<string, string> = {}): Promise<Sub> {
  const url = new URL('/api/v1/scheduler', masterUrl);
  const events: Ev[] = [];
  const chunks: Buffer[] = [];
  const waiters: { pred: (e: Ev) => boolean; resolve: (e: Ev) => void; from: number }[] = [];
  let endedResolve!: () => void;
  const endedP = new Promise<void>((r) => { endedResolve = r; });
  const reader = new RawRecordIo();
  let req!: ClientRequest;
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const make = url.protocol === 'https:' ? httpsRequest : httpRequest;
    req = make(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...headers }, rejectUnauthorized: false }, resolve);
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
  const deliver = (e: Ev): void => {
    events.push(e);
    for (const w of [...waiters]) {
      if (w.pred(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  };
  res.on('data', (c: Buffer) => {
    chunks.push(c);
    if (res.statusCode !== 200) return;
    for (const rec of reader.feed(c)) deliver(JSON.parse(rec) as Ev);
  });
  res.on('end', () => endedResolve());
  res.on('close', () => endedResolve());
  res.on('error', () => endedResolve());
  const sub: Sub = {
    status: res.statusCode ?? 0,
    headers: res.headers,
    streamId: String(res.headers['mesos-stream-id'] ?? ''),
    get frameworkId() {
      const s = events.find((e) => e.type === 'SUBSCRIBED') as { subscribed?: { framework_id?: { value?: string } } } | undefined;
      return s?.subscribed?.framework_id?.value ?? '';
    },
    events,
    chunks,
    next(pred, timeoutMs = 5000, what = 'event') {
      const found = events.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise<Ev>((resolve, reject) => {
        const w = { pred, resolve: (e: Ev) => { clearTimeout(t); resolve(e); }, from: events.length };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out waiting for ${what}; got: ${events.map((e) => e.type).join(',')}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    ended: (timeoutMs = 5000) => Promise.race([endedP, new Promise<void>((_, rej) => setTimeout(() => rej(new Error('stream did not end')), timeoutMs))]),
    close() {
      req.destroy();
      res.destroy();
    },
  };
  if (sub.status === 200) await sub.next((e) => e.type === 'SUBSCRIBED' || e.type === 'ERROR', 5000, 'SUBSCRIBED');
  return sub;
}

/** Wait for the next event matching pred that arrives after the current end of the list. */
export async function nextNew(sub: Sub, pred: (e: Ev) => boolean, timeoutMs = 5000, what = 'event'): Promise<Ev> {
  const start = sub.events.length;
  return await sub.next((e) => sub.events.indexOf(e) >= start && pred(e), timeoutMs, what);
}

/** POST one call with a hand-written body. */
export async function call(masterUrl: string, streamId: string | undefined, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(new URL('/api/v1/scheduler', masterUrl), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(streamId !== undefined ? { 'Mesos-Stream-Id': streamId } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.text() };
}

/** A hand-written FrameworkInfo for a MULTI_ROLE, refinement-aware framework. */
export function frameworkInfo(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    user: 'root',
    name,
    roles: ['locus'],
    failover_timeout: 60,
    capabilities: [{ type: 'MULTI_ROLE' }, { type: 'RESERVATION_REFINEMENT' }, { type: 'PARTITION_AWARE' }, { type: 'TASK_KILLING_STATE' }],
    ...extra,
  };
}

/** The SUBSCRIBE call body. */
export function subscribeCall(info: Record<string, unknown>, frameworkId?: string): Record<string, unknown> {
  return { type: 'SUBSCRIBE', ...(frameworkId !== undefined ? { framework_id: { value: frameworkId } } : {}), subscribe: { framework_info: { ...info, ...(frameworkId !== undefined ? { id: { value: frameworkId } } : {}) } } };
}

/** A temporary work dir and a cluster on it with test-friendly timings. */
export async function testCluster(extra: Partial<LocalClusterOptions> = {}): Promise<{ cluster: LocalCluster; workDir: string; dispose(): Promise<void> }> {
  const workDir = extra.workDir ?? (await mkdtemp(join(tmpdir(), 'locus-local-')));
  // Containers may run as an unprivileged user; they must reach their volumes.
  await chmod(workDir, 0o755);
  const cluster = await startLocalCluster({ port: 0, allocationIntervalMs: 100, heartbeatIntervalSeconds: 1, isolation: 'process', statusUpdateRetrySeconds: 1, ...extra, workDir });
  return {
    cluster,
    workDir,
    async dispose() {
      await cluster.stop();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** Offers of an OFFERS event. */
export function offersOf(e: Ev): Offer[] {
  return ((e as { offers?: { offers?: Offer[] } }).offers?.offers ?? []);
}

/** The parts of an offer the tests read. */
export interface Offer {
  id: { value: string };
  agent_id: { value: string };
  hostname: string;
  resources: Res[];
  allocation_info?: { role: string };
  url?: { scheme: string; address: { hostname: string; ip: string; port: number }; path: string };
  attributes?: { name: string; text?: { value: string } }[];
}

/** A resource as the tests read it. */
export interface Res {
  name: string;
  type: string;
  scalar?: { value: number };
  ranges?: { range: { begin: number; end: number }[] };
  allocation_info?: { role: string };
  reservations?: { type: string; role: string; principal?: string; labels?: { labels: { key: string; value: string }[] } }[];
  role?: string;
  disk?: { persistence?: { id: string; principal?: string }; volume?: { mode: string; container_path: string } };
}

/** Status of an UPDATE event. */
export function statusOf(e: Ev): Record<string, unknown> & { state: string; task_id: { value: string }; uuid?: string; source?: string; reason?: string; message?: string; agent_id?: { value: string } } {
  return (e as unknown as { update: { status: ReturnType<typeof statusOf> } }).update.status;
}

/** A predicate for the UPDATE of a task in a state. */
export function isUpdate(taskId: string, state?: string, pred: (s: ReturnType<typeof statusOf>) => boolean = () => true): (e: Ev) => boolean {
  return (e) => e.type === 'UPDATE' && statusOf(e).task_id.value === taskId && (state === undefined || statusOf(e).state === state) && pred(statusOf(e));
}

/** Acknowledge an update with a uuid. */
export async function ack(masterUrl: string, sub: Sub, e: Ev): Promise<void> {
  const s = statusOf(e);
  if (s.uuid === undefined) return;
  const r = await call(masterUrl, sub.streamId, { type: 'ACKNOWLEDGE', framework_id: { value: sub.frameworkId }, acknowledge: { agent_id: s.agent_id, task_id: s.task_id, uuid: s.uuid } });
  if (r.status !== 202) throw new Error(`ack answered ${r.status} ${r.body}`);
}

/** Scalar sum of a resource name in a resource list. */
export function scalarOf(rs: readonly Res[], name: string, pred: (r: Res) => boolean = () => true): number {
  return Math.round(rs.filter((r) => r.name === name && pred(r)).reduce((s, r) => s + (r.scalar?.value ?? 0), 0) * 1000) / 1000;
}

/** Poll until fn returns true or the deadline passes. */
export async function eventually(fn: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
