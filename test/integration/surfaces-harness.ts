/**
 * Shared parts of the user-surface tests (demo, surfaces-*, grpc-*): the
 * built `locus` binary (rebuilt when older than its sources), state
 * directories unprivileged workloads can reach, `locus up` as a child
 * process with its printed URLs and token, a gRPC client from the real
 * proto, and a server-sent events reader.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { loadLocusProto } from '../../src/api/grpc/server.js';

/** The built CLI. */
export const BIN = 'dist/src/cli/main.js';

function sourcesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourcesUnder(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Build dist/ when any source under src/ has no compiled file or a newer one. */
export function buildIfStale(): void {
  const stale = sourcesUnder('src').some((s) => {
    const js = join('dist', s.replace(/\.ts$/, '.js'));
    return !existsSync(js) || statSync(js).mtimeMs < statSync(s).mtimeMs;
  });
  // Other modules' type errors must not stop the build: tsc emits anyway.
  if (stale) spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'ignore' });
}

/**
 * A fresh state directory under /tmp that unprivileged workloads can reach
 * (mode 755), so sandboxes, datasets and outputs stay inside it instead of
 * falling back to the shared /var/lib/locus.
 */
export function tempStateDir(prefix: string): string {
  const dir = mkdtempSync(join('/tmp', prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** What a finished CLI run printed. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run the built CLI to its end (killed after timeoutMs). */
export function runCli(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliRun> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A running `locus up` child and what it printed. */
export interface UpProcess {
  readonly child: ChildProcess;
  readonly masterUrl: string;
  readonly redisUrl: string;
  readonly httpUrl: string;
  readonly grpcAddress: string;
  readonly adminToken: string;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Send `signal` and wait for the exit (SIGKILL after a deadline); resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** The end of a test: stop (SIGTERM) if still running, then make sure its Redis is gone too. */
  dispose(): Promise<void>;
}

/** Spawn `locus up` on free ports and wait for its URLs and `admin token:` line. */
export async function startUpProcess(stateDir: string, extraArgs: readonly string[] = [], timeoutMs = 60_000): Promise<UpProcess> {
  const child = spawn(process.execPath, [
    BIN, 'up', '--state-dir', stateDir, '--http-port', '0', '--grpc-port', '0', '--master-port', '0', ...extraArgs,
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: stateDir } });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  const field = (name: string): string | undefined => new RegExp(`^${name}:\\s+(\\S+)`, 'm').exec(stdout)?.[1];
  const deadline = Date.now() + timeoutMs;
  while (field('admin token') === undefined) {
    if (done) throw new Error(`locus up exited early:\n${stdout}\n${stderr.slice(-3000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`locus up printed no admin token within ${timeoutMs} ms:\n${stdout}\n${stderr.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const need = (name: string): string => {
    const v = field(name);
    if (v === undefined) throw new Error(`locus up did not print '${name}:'\n${stdout}`);
    return v;
  };
  let stopping: Promise<number | null> | undefined;
  const redisUrl = need('redis');
  const handle: UpProcess = {
    child,
    masterUrl: need('master'),
    redisUrl,
    httpUrl: need('http api'),
    grpcAddress: need('grpc api'),
    adminToken: need('admin token'),
    stdout: () => stdout,
    stderr: () => stderr,
    stop(signal: NodeJS.Signals = 'SIGTERM') {
      stopping ??= (async () => {
        if (!done) child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      })();
      return stopping;
    },
    async dispose() {
      await handle.stop('SIGTERM');
      // A crashed `locus up` leaves its managed redis-server behind: shut that one down.
      await shutdownRedis(redisUrl);
    },
  };
  return handle;
}

/** Pids of processes whose working directory is under dir (e.g. a managed redis-server left behind). */
export function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${name}/cwd`).replace(/ \(deleted\)$/, '');
      if (cwd === dir || cwd.startsWith(dir + '/')) out.push(Number(name));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return out;
}

/** SHUTDOWN NOSAVE the Redis at url if something still answers there. */
async function shutdownRedis(url: string): Promise<void> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
  } catch {
    // Nothing there: the clean case.
  } finally {
    r.disconnect();
  }
}

/** Poll until fn returns a value (not undefined), or throw naming what was awaited. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Wait until /readyz says the framework is subscribed and connected to Redis. */
export async function waitReady(httpUrl: string, timeoutMs = 30_000): Promise<void> {
  await until('the framework to be ready', async () => ((await fetch(`${httpUrl}/readyz`)).status === 200 ? true : undefined), timeoutMs);
}

/** Small text files with a known word count: `files` files of a fixed vocabulary. */
export function writeWords(dir: string, files = 4): void {
  mkdirSync(dir, { recursive: true });
  const words = ['mesos', 'locus', 'block', 'rack', 'node', 'offer'];
  for (let f = 0; f < files; f++) {
    const lines: string[] = [];
    for (let l = 0; l < 50; l++) lines.push(words.slice(0, 1 + ((f + l) % words.length)).join(' '));
    writeFileSync(join(dir, `part-${f}.txt`), lines.join('\n') + '\n');
  }
}

/** A two-stage word count over `local://<dataset>/` (map per file, then one reduce). */
export function wordCountYaml(dataset: string, name = 'surfaces-wc'): string {
  return `name: ${name}
retries: 1
timeout: 2m
locality:
  wait: { node: 2s, rack: 1s }
stages:
  - name: map
    inputs: [local://${dataset}/]
    split: file
    task:
      command: [sh, -c, "tr -cs 'A-Za-z' '\\\\n' < '{split.path}' | grep -v '^$' | sort | uniq -c > '{output}/counts'"]
      resources: { cpus: 0.2, mem: 64MiB, disk: 16MiB }
  - name: reduce
    inputs: [stage:map]
    tasks:
      - command: [sh, -c, "cat {stages.map.output}/*/counts | awk '{c[$2]+=$1} END {for (w in c) print c[w], w}' | sort -k2 > '{output}/words'"]
    task:
      command: ['true']
      resources: { cpus: 0.2, mem: 64MiB, disk: 16MiB }
`;
}

/** One server-sent event. */
export interface SseEvent {
  readonly event: string;
  readonly data: unknown;
}

/** Read an SSE response to its end (the server closes it when the job ends) and return its events. */
export async function readSseToEnd(url: string, token: string, timeoutMs = 60_000): Promise<SseEvent[]> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200 || !res.body) throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text()}`);
  expectContentType(res.headers.get('content-type'));
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body) buf += decoder.decode(chunk as Uint8Array, { stream: true });
  const events: SseEvent[] = [];
  for (const block of buf.split('\n\n')) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    if (data.length > 0) events.push({ event, data: JSON.parse(data.join('\n')) as unknown });
  }
  return events;
}

function expectContentType(ct: string | null): void {
  if (!ct?.startsWith('text/event-stream')) throw new Error(`not an event stream: ${ct ?? '(none)'}`);
}

/** A gRPC client of locus.v1.Locus from the real proto, with promise helpers. */
export interface LocusGrpc {
  readonly raw: grpc.Client;
  /** Call a unary method; rejects with the grpc ServiceError. */
  unary(method: string, request: Record<string, unknown>, token?: string): Promise<Record<string, unknown>>;
  /** Call WatchJob and collect every streamed message until the server ends the stream. */
  watch(id: string, token?: string, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  close(): void;
}

/** Metadata carrying `authorization: Bearer <token>` (none when token is undefined). */
export function authMetadata(token: string | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  return md;
}

type UnaryFn = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;
type StreamFn = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;

/** Connect a gRPC client to `address` (host:port). */
export function grpcClient(address: string): LocusGrpc {
  const pkg = loadLocusProto();
  const v1 = (pkg['locus'] as grpc.GrpcObject)['v1'] as grpc.GrpcObject;
  const Ctor = v1['Locus'] as grpc.ServiceClientConstructor;
  const client = new Ctor(address, grpc.credentials.createInsecure());
  const unaryMethods = client as unknown as Record<string, UnaryFn | undefined>;
  const streamMethods = client as unknown as Record<string, StreamFn | undefined>;
  return {
    raw: client,
    unary(method, request, token) {
      const fn = unaryMethods[method];
      if (!fn) throw new Error(`no method ${method}`);
      return new Promise((resolve, reject) => {
        fn.call(client, request, authMetadata(token), { deadline: Date.now() + 15_000 }, (err, res) => {
          if (err) reject(err);
          else resolve(res as Record<string, unknown>);
        });
      });
    },
    watch(id, token, timeoutMs = 60_000) {
      const fn = streamMethods['WatchJob'];
      if (!fn) throw new Error('no WatchJob');
      const stream = fn.call(client, { id }, authMetadata(token), { deadline: Date.now() + timeoutMs });
      const got: Record<string, unknown>[] = [];
      return new Promise((resolve, reject) => {
        stream.on('data', (m: unknown) => got.push(m as Record<string, unknown>));
        stream.on('error', reject);
        stream.on('end', () => resolve(got));
      });
    },
    close: () => client.close(),
  };
}

/** The gRPC status of a rejected call (throws if it resolved). */
export async function grpcError(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}
