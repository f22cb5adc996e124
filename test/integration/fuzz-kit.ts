/**
 * The shared parts of the fuzzing pass (issue 18 item 3): how many inputs a
 * run makes and with which seeds, the oracle every answer is held to, a raw
 * HTTP/1.1 client (so framing, headers and bytes are ours to break), and the
 * tally that becomes the run's JSON summary.
 *
 * Runs are replayable: every property has a fixed seed derived from
 * LOCUS_FUZZ_SEED (default below) and its name; a failure prints the seed,
 * the fast-check path and the counterexample.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import fc from 'fast-check';
import { ERROR_CATALOG } from '../../src/core/errors.js';

/** The default base seed: a run with no LOCUS_FUZZ_SEED replays exactly. */
export const DEFAULT_SEED = 20261205;

/** Inputs a bounded (CI) run makes across every surface. */
export const BOUNDED_TOTAL = 800;

/** The target number of inputs of this run: LOCUS_FUZZ_RUNS, or the bounded default. */
export function totalRuns(): number {
  const raw = process.env['LOCUS_FUZZ_RUNS'];
  if (raw === undefined || raw === '') return BOUNDED_TOTAL;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new Error(`LOCUS_FUZZ_RUNS must be an integer 1..1000000, got '${raw}'`);
  return n;
}

/** Whether this is the full (on-demand) run rather than the bounded one. */
export function isFullRun(): boolean {
  return totalRuns() > BOUNDED_TOTAL;
}

/** The base seed of this run. */
export function baseSeed(): number {
  const raw = process.env['LOCUS_FUZZ_SEED'];
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`LOCUS_FUZZ_SEED must be an integer, got '${raw}'`);
  return n;
}

/** A property's own seed: the base seed mixed with its name (FNV-1a), so properties do not share streams. */
export function seedFor(name: string): number {
  let h = 0x811c9dc5 ^ baseSeed();
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** Runs of one property: its share of the total, at least `min`. */
export function runsFor(share: number, min = 5): number {
  return Math.max(min, Math.round(totalRuns() * share));
}

/** What one input was answered with, in the summary's terms. */
export interface Outcome {
  /** HTTP status, `grpc:<STATUS_NAME>`, `exit:<n>`, `throw:<code>` or `closed`. */
  readonly status: string;
  /** The catalog code the answer carried, if any. */
  readonly code?: string;
}

interface PropertyTally {
  surface: string;
  seed: number;
  runs: number;
  inputs: number;
  failed: boolean;
  interrupted: boolean;
}

/** Collects every input's outcome; written as the run's JSON summary. */
export class FuzzTally {
  private readonly surfaces = new Map<string, { inputs: number; statuses: Map<string, number>; codes: Map<string, number> }>();
  private readonly properties = new Map<string, PropertyTally>();
  readonly failures: { property: string; surface: string; seed: number; message: string }[] = [];

  record(surface: string, o: Outcome): void {
    let s = this.surfaces.get(surface);
    if (!s) {
      s = { inputs: 0, statuses: new Map(), codes: new Map() };
      this.surfaces.set(surface, s);
    }
    s.inputs++;
    s.statuses.set(o.status, (s.statuses.get(o.status) ?? 0) + 1);
    if (o.code !== undefined) s.codes.set(o.code, (s.codes.get(o.code) ?? 0) + 1);
  }

  property(name: string, t: PropertyTally): void {
    this.properties.set(name, t);
  }

  fail(property: string, surface: string, seed: number, message: string): void {
    this.failures.push({ property, surface, seed, message });
  }

  /** Inputs recorded on every surface. */
  total(): number {
    let n = 0;
    for (const s of this.surfaces.values()) n += s.inputs;
    return n;
  }

  /** Answers in the 5xx range (HTTP) or gRPC's server-fault statuses. */
  serverFaults(): number {
    let n = 0;
    for (const s of this.surfaces.values()) {
      for (const [status, count] of s.statuses) if (isServerFault(status)) n += count;
    }
    return n;
  }

  summary(extra: Record<string, unknown> = {}): Record<string, unknown> {
    const obj = (m: Map<string, number>): Record<string, number> => Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)));
    return {
      ...extra,
      totalInputs: this.total(),
      serverFaults: this.serverFaults(),
      surfaces: Object.fromEntries([...this.surfaces].map(([k, s]) => [k, { inputs: s.inputs, statuses: obj(s.statuses), codes: obj(s.codes) }])),
      properties: Object.fromEntries(this.properties),
      failures: this.failures,
    };
  }

  /** Write the summary as JSON (directories made as needed). */
  write(path: string, extra: Record<string, unknown> = {}): void {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify(this.summary(extra), null, 2) + '\n');
  }
}

const GRPC_FAULTS = new Set(['grpc:INTERNAL', 'grpc:UNKNOWN', 'grpc:DATA_LOSS', 'grpc:UNIMPLEMENTED']);

/** Whether an outcome status is a server fault (what the pass must never see). */
export function isServerFault(status: string): boolean {
  if (/^[0-9]{3}$/.test(status)) return Number(status) >= 500;
  return GRPC_FAULTS.has(status);
}

/** The catalog codes. */
export const CATALOG_CODES: ReadonlySet<string> = new Set(Object.keys(ERROR_CATALOG));

/**
 * Run one property with its fixed seed and record it. Returns the failure
 * text (seed, path, counterexample) or undefined; the caller asserts on it.
 * Shrinking is bounded in time so a failure on a real server still ends.
 */
export async function runProperty<T>(
  tally: FuzzTally, name: string, surface: string, runs: number,
  arb: fc.Arbitrary<T>, check: (input: T) => Promise<void>, timeLimitMs = 120_000,
): Promise<string | undefined> {
  const seed = seedFor(name);
  const details = await fc.check(fc.asyncProperty(arb, check), {
    seed, numRuns: runs, endOnFailure: !isFullRun(), interruptAfterTimeLimit: timeLimitMs, markInterruptAsFailure: false,
  });
  tally.property(name, { surface, seed, runs, inputs: details.numRuns, failed: details.failed, interrupted: details.interrupted });
  if (!details.failed) return undefined;
  const message = `fuzz property '${name}' failed — replay with LOCUS_FUZZ_SEED=${baseSeed()} (property seed ${seed}, path ${details.counterexamplePath ?? '?'}):\n`
    + `${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}\n`
    + (fc.defaultReportMessage(details) ?? '');
  tally.fail(name, surface, seed, message.slice(0, 4000));
  process.stderr.write(`${message.slice(0, 4000)}\n`);
  return message;
}

/** A raw HTTP answer. */
export interface RawAnswer {
  /** 0 when the connection closed without a status line. */
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Options of rawHttp. */
export interface RawOptions {
  /** Half-close our side this long after writing (for requests whose framing never ends). */
  readonly endAfterMs?: number;
  readonly timeoutMs?: number;
}

/**
 * Send bytes to a loopback HTTP server and read the first answer. The
 * request should carry `Connection: close` so the server ends the answer by
 * closing; otherwise the answer is read by its Content-Length.
 */
export function rawHttp(port: number, request: Buffer | string, options: RawOptions = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseAnswer(Buffer.concat(chunks)));
    };
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms to ${JSON.stringify(String(request).slice(0, 200))}`));
    }, options.timeoutMs ?? 10_000);
    socket.on('data', (b: Buffer) => {
      chunks.push(b);
      const a = parseAnswer(Buffer.concat(chunks));
      const len = Number(a.headers['content-length'] ?? NaN);
      if (a.status !== 0 && Number.isInteger(len) && Buffer.byteLength(a.body) >= len) finish();
    });
    socket.on('close', finish);
    // A reset after the answer (the server closing on unread bytes) still leaves the answer read.
    socket.on('error', () => finish());
    socket.write(request, () => {
      if (options.endAfterMs !== undefined) setTimeout(() => socket.end(), options.endAfterMs);
    });
  });
}

function parseAnswer(buf: Buffer): RawAnswer {
  const text = buf.toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd < 0) return { status: 0, headers: {}, body: '' };
  const [statusLine, ...lines] = text.slice(0, headEnd).split('\r\n');
  const m = /^HTTP\/1\.[01] ([0-9]{3})/.exec(statusLine ?? '');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = buf.subarray(Buffer.byteLength(text.slice(0, headEnd + 4), 'latin1'));
  if ((headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked') body = dechunk(body);
  return { status: m ? Number(m[1]) : 0, headers, body: body.toString('utf8') };
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let pos = 0;
  for (let guard = 0; guard < 100_000 && pos < b.length; guard++) {
    const nl = b.indexOf('\r\n', pos);
    if (nl < 0) break;
    const size = parseInt(b.subarray(pos, nl).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(b.subarray(nl + 2, nl + 2 + size));
    pos = nl + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** The catalog code of an error body `{ error: { code } }`, or undefined. */
export function catalogCodeOf(body: string): string | undefined {
  try {
    const o = JSON.parse(body) as unknown;
    if (typeof o !== 'object' || o === null) return undefined;
    const e = (o as Record<string, unknown>)['error'];
    if (typeof e !== 'object' || e === null) return undefined;
    const code = (e as Record<string, unknown>)['code'];
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The HTTP oracle. Never 5xx; every error answer is the catalog's
 * `{ error: { code } }` with the catalog's status for that code; and when the
 * input is known to be bad (`mustRefuse`) the answer is an error.
 */
export function checkHttpAnswer(a: RawAnswer, mustRefuse: boolean, what: string, head = false): Outcome {
  const where = `${what} → ${a.status} ${a.body.slice(0, 300)}`;
  if (a.status === 0) throw new Error(`no answer (connection closed): ${where}`);
  if (a.status >= 500) throw new Error(`server fault: ${where}`);
  if (a.status >= 400 && head) {
    // A HEAD answer has the headers of the GET answer and no body to carry a code.
    if (!(a.headers['content-type'] ?? '').startsWith('application/json')) throw new Error(`an error answer that is not JSON: ${where}`);
    return { status: String(a.status) };
  }
  if (a.status >= 400) {
    const code = catalogCodeOf(a.body);
    if (code === undefined || !CATALOG_CODES.has(code)) throw new Error(`an error answer without a catalog code: ${where}`);
    const spec = ERROR_CATALOG[code as keyof typeof ERROR_CATALOG];
    if (spec.httpStatus !== a.status) throw new Error(`code ${code} answered with ${a.status}, the catalog says ${spec.httpStatus}: ${where}`);
    return { status: String(a.status), code };
  }
  if (mustRefuse) throw new Error(`a bad input was accepted: ${where}`);
  return { status: String(a.status) };
}
