/**
 * The fuzzing pass over every surface that takes input (issue 18 item 3):
 * `locus up` runs for real (its own Redis, the local cluster, the HTTP and
 * gRPC APIs) and receives generated bad inputs — every HTTP route declared in
 * its /openapi.json (so routes added later, such as /ui/, are included), with
 * random and structure-aware bodies, headers, paths and queries, and broken
 * framing; every gRPC method with bad messages, metadata and raw bytes; job
 * specs in JSON and YAML through the spec parser and every submit path; and
 * the real `locus` binary with bad command lines.
 *
 * The oracle: no answer in the 5xx range (nor gRPC INTERNAL/UNKNOWN), every
 * refusal carries a catalog code with the catalog's status, the CLI exits 2
 * naming the flag (1 with the catalog code when the server refused), and
 * afterwards the process is alive, answers /healthz and logged no unhandled
 * rejection.
 *
 * Bounded by default (~800 inputs, well under a minute of fuzzing); the full
 * run is `npm run fuzz` (LOCUS_FUZZ_RUNS, default 6000) and writes its summary
 * to bench/results/fuzz-<date>.json (or LOCUS_FUZZ_REPORT). Replay a failure
 * with the LOCUS_FUZZ_SEED it prints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOG, LocusError } from '../../src/core/errors.js';
import { parseJobSpecText, validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import {
  GRPC_METHODS, anyJson, authProbe, badSpecObject, badSpecText, bodyProbe, cliInput, framingProbe, grpcBadAuth, grpcMessage,
  junkSpecText, pathProbe, routeProbe, uiProbe, routesOf, serialise, specProbe, volumeProbe, type CliInput, type GrpcInput, type HttpInput, type RouteInfo,
} from './fuzz-arbs.js';
import {
  CATALOG_CODES, FuzzTally, baseSeed, checkHttpAnswer, isFullRun, rawHttp, runProperty, runsFor, totalRuns, type Outcome,
} from './fuzz-kit.js';
import { BIN, authMetadata, grpcClient, startUpProcess, tempStateDir, waitReady, type LocusGrpc, type UpProcess } from './surfaces-harness.js';

const ADMIN = 'fuzz-admin-token-0123456789';
const tally = new FuzzTally();
let stateDir: string;
let up: UpProcess;
let rpc: LocusGrpc;
let raw: grpc.Client;
let routes: RouteInfo[];
let port: number;
const started = Date.now();
// Recorded with the results, as every benchmark here records the load it ran under.
const loadAtStart = loadavg().map((l) => Math.round(l * 10) / 10);

/** The process must still be running and answer /healthz. */
async function assertAlive(after: string): Promise<void> {
  expect(up.child.exitCode, `locus up exited after ${after}:\n${up.stderr().slice(-3000)}`).toBeNull();
  const res = await fetch(`${up.httpUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
  expect(res.status, `/healthz after ${after}`).toBe(200);
}

async function sendHttp(surface: string, input: HttpInput): Promise<void> {
  const a = await rawHttp(port, serialise(input));
  const o = checkHttpAnswer(a, input.mustRefuse, `${input.label}: ${input.method} ${input.target.slice(0, 200)}`, input.method === 'HEAD');
  tally.record(surface, o);
}

beforeAll(async () => {
  // The global set-up has built dist/ (once per run; a second build here would double the wait).
  stateDir = tempStateDir('locus-fuzz-');
  up = await startUpProcess(stateDir, ['--agents', '1', '--admin-token', ADMIN]);
  await waitReady(up.httpUrl);
  port = Number(new URL(up.httpUrl).port);
  const doc = (await (await fetch(`${up.httpUrl}/openapi.json`)).json()) as unknown;
  routes = routesOf(doc);
  rpc = grpcClient(up.grpcAddress);
  raw = new grpc.Client(up.grpcAddress, grpc.credentials.createInsecure());
}, 180_000);

afterAll(async () => {
  rpc?.close();
  raw?.close();
  const code = await up?.stop('SIGINT');
  await up?.dispose();
  const report = process.env['LOCUS_FUZZ_REPORT'];
  if (report !== undefined && report !== '') {
    const date = new Date().toISOString().slice(0, 10);
    const path = report === '1' ? `bench/results/fuzz-${date}.json` : report;
    tally.write(path, {
      date: new Date().toISOString(), loadAverageAtStart: loadAtStart, seed: baseSeed(), targetInputs: totalRuns(), seconds: Math.round((Date.now() - started) / 1000),
      server: 'locus up --agents 1 (own Redis, local cluster, HTTP and gRPC APIs)', routes: routes?.map((r) => `${r.method} ${r.path}`) ?? [],
      stopExitCode: code ?? null,
    });
    process.stderr.write(`fuzz summary written to ${path}\n`);
  }
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  // A stop that was never checked is not a pass: Ctrl-C after the pass is a clean exit.
  expect(code, up?.stderr().slice(-3000)).toBe(0);
}, 60_000);

describe('job specs (in process): parseJobSpecText and validateJobSpec', () => {
  const expectRefused = (err: unknown, what: string): Outcome => {
    if (!(err instanceof LocusError)) throw new Error(`${what}: threw a non-LocusError: ${String(err)}`);
    if (err.spec.httpStatus >= 500) throw new Error(`${what}: ${err.code} is a server fault: ${err.message}`);
    return { status: 'throw', code: err.code };
  };

  it('bad specs as JSON or YAML text are refused with a 4xx catalog code naming the field', async () => {
    const failure = await runProperty(tally, 'spec.text', 'spec', runsFor(0.08), badSpecText, async (s) => {
      let o: Outcome | undefined;
      try {
        parseJobSpecText(s.text, s.contentType);
      } catch (err) {
        o = expectRefused(err, `spec (${s.fields.join(',')})`);
        if (err instanceof LocusError && err.code === 'INVALID_FIELD' && err.field === undefined) throw new Error(`INVALID_FIELD without a field: ${err.message}`);
      }
      if (!o) throw new Error(`a bad spec was accepted (${s.fields.join(',')}): ${s.text.slice(0, 500)}`);
      tally.record('spec', o);
    });
    expect(failure).toBeUndefined();
  });

  it('junk text and arbitrary JSON values are refused, never thrown as anything else', async () => {
    const failure = await runProperty(tally, 'spec.junk', 'spec', runsFor(0.05), fc.oneof(
      junkSpecText.map((t) => ({ kind: 'text' as const, t })),
      anyJson.map((v) => ({ kind: 'value' as const, v })),
      badSpecObject.map((b) => ({ kind: 'value' as const, v: b.spec as unknown })),
    ), async (input) => {
      let o: Outcome | undefined;
      try {
        if (input.kind === 'text') parseJobSpecText(input.t);
        else validateJobSpec(input.v);
      } catch (err) {
        o = expectRefused(err, 'junk');
      }
      if (!o) throw new Error(`junk was accepted as a job spec: ${JSON.stringify(input).slice(0, 500)}`);
      tally.record('spec', o);
    });
    expect(failure).toBeUndefined();
  });
});

describe('HTTP: every route of the running server', () => {
  it('the routes come from the server itself (so routes added later are fuzzed too)', () => {
    const declared = routes.map((r) => `${r.method} ${r.path}`);
    expect(declared).toEqual(expect.arrayContaining(['POST /v1/jobs', 'GET /v1/jobs/:id', 'POST /v1/volumes', 'DELETE /v1/reservations/:id', 'GET /healthz']));
  });

  const cases: readonly [string, number, (r: RouteInfo[]) => fc.Arbitrary<HttpInput>][] = [
    ['http.routes', 0.2, (r) => routeProbe(r, ADMIN)],
    ['http.auth', 0.06, (r) => authProbe(r)],
    ['http.bodies', 0.12, (r) => bodyProbe(r, ADMIN)],
    ['http.specs', 0.12, () => specProbe(ADMIN)],
    ['http.volumes', 0.08, () => volumeProbe(ADMIN)],
    ['http.paths', 0.05, () => pathProbe(ADMIN)],
  ];
  for (const [name, share, arb] of cases) {
    it(`${name}: never 5xx, every refusal a catalog code with its status`, async () => {
      const failure = await runProperty(tally, name, 'http', runsFor(share), arb(routes), async (input) => sendHttp('http', input));
      expect(failure).toBeUndefined();
      await assertAlive(name);
    }, 600_000);
  }

  it('http.ui: the dashboard\'s plain routes (not in /openapi.json) refuse module names that are not modules and unknown paths', async () => {
    // The dashboard has landed (issue 17): a server that stopped serving it is a finding too.
    expect((await fetch(`${up.httpUrl}/ui/`)).status).toBe(200);
    const failure = await runProperty(tally, 'http.ui', 'http', runsFor(0.03), uiProbe(), async (input) => sendHttp('http', input));
    expect(failure).toBeUndefined();
  }, 600_000);

  it('http.framing: Content-Length lies, bad chunking, bad request lines and headers are refused with a catalog code', async () => {
    const failure = await runProperty(tally, 'http.framing', 'http-framing', runsFor(0.07), framingProbe(ADMIN), async (input) => {
      const a = await rawHttp(port, input.bytes, input.endAfterMs === undefined ? {} : { endAfterMs: input.endAfterMs });
      tally.record('http-framing', checkHttpAnswer(a, input.mustRefuse ?? true, `${input.label}: ${JSON.stringify(input.bytes.toString('latin1').slice(0, 160))}`));
    });
    expect(failure).toBeUndefined();
    await assertAlive('http.framing');
  }, 600_000);
});

/** The outcome of a gRPC call that should have been refused, checked against the catalog. */
function checkGrpcError(err: grpc.ServiceError | null, mustRefuse: boolean, what: string): Outcome {
  if (err === null) {
    if (mustRefuse) throw new Error(`a bad gRPC request was accepted: ${what}`);
    return { status: 'grpc:OK' };
  }
  const name = grpc.status[err.code] ?? String(err.code);
  const where = `${what} → ${name} ${err.details}`;
  if (['INTERNAL', 'UNKNOWN', 'DATA_LOSS', 'UNIMPLEMENTED'].includes(name)) throw new Error(`server fault: ${where}`);
  const code = /^([A-Z_]+): /.exec(err.details ?? '')?.[1];
  if (code === undefined || !CATALOG_CODES.has(code)) throw new Error(`a status without a catalog code in its details: ${where}`);
  const spec = ERROR_CATALOG[code as keyof typeof ERROR_CATALOG];
  if (spec.grpcCode !== err.code) throw new Error(`code ${code} answered with ${name}, the catalog says ${grpc.status[spec.grpcCode] ?? spec.grpcCode}: ${where}`);
  if (spec.httpStatus >= 500) throw new Error(`a bad request answered as a server-side failure: ${where}`);
  const meta = err.metadata?.get('locus-error-code')[0];
  if (meta !== code) throw new Error(`metadata locus-error-code '${String(meta)}' differs from the details' '${code}': ${where}`);
  return { status: `grpc:${name}`, code };
}

function callGrpc(method: string, request: Record<string, unknown>, token: string | undefined): Promise<grpc.ServiceError | null> {
  if (method === 'WatchJob') {
    return new Promise((resolve) => {
      const fn = (rpc.raw as unknown as Record<string, (req: unknown, md: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientReadableStream<unknown>>)['WatchJob'];
      if (!fn) throw new Error('no WatchJob');
      const stream = fn.call(rpc.raw, request, authMetadata(token), { deadline: Date.now() + 10_000 });
      let got = false;
      stream.on('data', () => {
        got = true;
        stream.cancel();
      });
      stream.on('error', (e: grpc.ServiceError) => resolve(got ? null : e));
      stream.on('end', () => resolve(null));
    });
  }
  return rpc.unary(method, request, token).then(() => null, (e: unknown) => e as grpc.ServiceError);
}

describe('gRPC: every method of locus.v1.Locus', () => {
  it('grpc.messages: structure-aware bad requests are refused with the catalog code in details and metadata', async () => {
    const failure = await runProperty(tally, 'grpc.messages', 'grpc', runsFor(0.1), grpcMessage, async (input: GrpcInput) => {
      const err = await callGrpc(input.method, input.request, ADMIN);
      tally.record('grpc', checkGrpcError(err, input.mustRefuse, `${input.method} ${JSON.stringify(input.request).slice(0, 300)}`));
    });
    expect(failure).toBeUndefined();
    await assertAlive('grpc.messages');
  }, 600_000);

  it('grpc.auth: bad authorization metadata is UNAUTHENTICATED on every method', async () => {
    const failure = await runProperty(tally, 'grpc.auth', 'grpc', runsFor(0.04), fc.tuple(fc.constantFrom(...GRPC_METHODS), grpcBadAuth), async ([method, auth]) => {
      const md = new grpc.Metadata();
      if (auth !== undefined) md.set('authorization', auth);
      const err = await new Promise<grpc.ServiceError | null>((resolve) => {
        raw.makeUnaryRequest(`/locus.v1.Locus/${method}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), md, { deadline: Date.now() + 10_000 }, (e) => resolve(e));
      });
      const o = checkGrpcError(err, true, `${method} with authorization ${JSON.stringify(auth?.slice(0, 40))}`);
      if (o.code !== 'UNAUTHENTICATED') throw new Error(`${method}: expected UNAUTHENTICATED, got ${o.code ?? o.status}`);
      tally.record('grpc', o);
    });
    expect(failure).toBeUndefined();
  }, 600_000);

  it('grpc.bytes: request bytes that are not the method\'s message are refused, not INTERNAL', async () => {
    const refusing: readonly string[] = GRPC_METHODS.filter((m) => m !== 'ListJobs' && m !== 'ListVolumes');
    const failure = await runProperty(tally, 'grpc.bytes', 'grpc', runsFor(0.05), fc.tuple(
      fc.constantFrom(...GRPC_METHODS),
      fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.constantFrom(Uint8Array.of(0x0a, 0xff), Uint8Array.of(0x08), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), Uint8Array.of(0x0a, 0x05, 0x61))),
    ), async ([method, bytes]) => {
      const err = await new Promise<grpc.ServiceError | null>((resolve) => {
        if (method === 'WatchJob') {
          const s = raw.makeServerStreamRequest(`/locus.v1.Locus/${method}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), authMetadata(ADMIN), { deadline: Date.now() + 10_000 });
          let got = false;
          s.on('data', () => {
            got = true;
            s.cancel();
          });
          s.on('error', (e: grpc.ServiceError) => resolve(got ? null : e));
          s.on('end', () => resolve(null));
          return;
        }
        raw.makeUnaryRequest(`/locus.v1.Locus/${method}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), authMetadata(ADMIN), { deadline: Date.now() + 10_000 }, (e) => resolve(e));
      });
      // Bytes that happen to decode into a harmless listing may be answered; nothing may be a server fault.
      tally.record('grpc', checkGrpcError(err, refusing.includes(method) && err !== null ? true : false, `${method} bytes ${Buffer.from(bytes).toString('hex').slice(0, 120)}`));
    });
    expect(failure).toBeUndefined();
    await assertAlive('grpc.bytes');
  }, 600_000);
});

function runCli(input: CliInput, dir: string): Promise<{ code: number | null; stderr: string }> {
  const args = input.args.map((a) => (a === '{file}' ? join(dir, 'spec.yaml') : a));
  if (input.file !== undefined) writeFileSync(join(dir, 'spec.yaml'), input.file);
  // LOCUS_* variables are flag defaults: none may leak in from the shell running the suite.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('LOCUS_')) env[k] = v;
  Object.assign(env, { HOME: dir, LOCUS_SERVER: up.httpUrl, LOCUS_TOKEN: ADMIN });
  const child = spawn(process.execPath, [join(cliRoot, BIN), ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  cliChildren.add(child);
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  // SIGTERM first: a command that wrongly started (`locus up` on a bad flag) stops its own Redis.
  const term = setTimeout(() => child.kill('SIGTERM'), 20_000);
  const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(term);
      clearTimeout(kill);
      cliChildren.delete(child);
      resolve({ code, stderr });
    });
  });
}

/** CLI children still running (a property interrupted or failed mid-pair); stopped when the CLI test ends. */
const cliChildren = new Set<ChildProcess>();
async function stopCliChildren(): Promise<void> {
  const left = [...cliChildren];
  for (const c of left) c.kill('SIGTERM');
  const deadline = Date.now() + 10_000;
  while (cliChildren.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const c of cliChildren) c.kill('SIGKILL');
}

/**
 * The CLI runs from a copy of dist/ taken when its fuzzing starts: other
 * engineers rebuild dist/ while this runs, and a half-written build is not
 * the binary under test. The copy sits beside links to node_modules/ and
 * proto/, so it resolves its packages and the proto as the original does.
 */
let cliRoot = '.';
function snapshotCli(): string {
  const root = mkdtempSync(join(tmpdir(), 'locus-fuzz-bin-'));
  cpSync('dist', join(root, 'dist'), { recursive: true });
  for (const name of ['node_modules', 'proto']) symlinkSync(resolve(name), join(root, name));
  copyFileSync('package.json', join(root, 'package.json'));
  return root;
}

describe('CLI: the real locus binary', () => {
  it('cli.args: bad command lines exit 2 naming the flag; bad requests exit 1 with the server\'s catalog code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'locus-fuzz-cli-'));
    cliRoot = snapshotCli();
    try {
      // Two command lines at a time (each spawn is mostly Node starting up), in directories of their own.
      const dirs = [join(dir, 'a'), join(dir, 'b')];
      for (const d of dirs) mkdirSync(d);
      const one = async (input: CliInput, own: string): Promise<void> => {
        const r = await runCli(input, own);
        const what = `locus ${input.args.join(' ')} → exit ${String(r.code)}: ${r.stderr.slice(0, 400)}`;
        if (/\n\s+at /.test(r.stderr)) throw new Error(`a stack trace: ${what}`);
        if (!r.stderr.startsWith('locus: ')) throw new Error(`no 'locus: ' message: ${what}`);
        if (input.kind === 'usage') {
          if (r.code !== 2) throw new Error(`expected exit 2: ${what}`);
          if (!r.stderr.includes(input.names)) throw new Error(`the message does not name ${input.names}: ${what}`);
          tally.record('cli', { status: 'exit:2' });
        } else {
          const code = /^locus: ([A-Z_]+): /.exec(r.stderr)?.[1];
          if (r.code !== 1 || code === undefined || !CATALOG_CODES.has(code)) throw new Error(`expected exit 1 with a catalog code: ${what}`);
          if (!code.includes(input.names) && !r.stderr.includes(input.names)) throw new Error(`expected ${input.names}: ${what}`);
          if (ERROR_CATALOG[code as keyof typeof ERROR_CATALOG].httpStatus >= 500) throw new Error(`a server fault: ${what}`);
          tally.record('cli', { status: 'exit:1', code });
        }
      };
      const pairs = Math.ceil(runsFor(isFullRun() ? 0.03 : 0.02) / 2);
      // Each spawn loads Node and the command's modules (seconds under load): the full run gets the time it needs.
      const failure = await runProperty(tally, 'cli.args', 'cli', pairs, fc.tuple(cliInput, cliInput), async ([a, b]) => {
        await Promise.all([one(a, dirs[0] ?? dir), one(b, dirs[1] ?? dir)]);
      }, isFullRun() ? 840_000 : 120_000);
      expect(failure).toBeUndefined();
    } finally {
      await stopCliChildren();
      rmSync(dir, { recursive: true, force: true });
      rmSync(cliRoot, { recursive: true, force: true });
    }
  }, 900_000);
});

describe('after the pass', () => {
  it('the server is alive, answers /healthz, logged no unhandled rejection; at least 500 bad inputs, 0 server faults', async () => {
    await assertAlive('the whole pass');
    expect(up.stderr()).not.toMatch(/unhandled ?rejection|uncaught ?exception/i);
    expect(tally.serverFaults()).toBe(0);
    expect(tally.failures).toEqual([]);
    expect(tally.total()).toBeGreaterThanOrEqual(Math.min(500, totalRuns()));
  });
});
