/**
 * `locus framework --ha` instances as child processes, for the standby tests
 * and the chaos suite: start one, find the leader among several, pause,
 * resume and kill them, and read the job through any of them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { LOCUS_CLI } from '../harness/build.js';
import { freePort } from '../harness/ports.js';
import type { Bed } from './framework-harness.js';

/** One `locus framework --ha` process. */
export interface HaInstance {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly httpUrl: string;
  readonly grpcAddress: string;
  /** Everything it printed (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name) once it has exited. */
  readonly exited: Promise<number | string>;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** What /readyz says. */
export interface Readiness {
  readonly status: number;
  readonly role: string | undefined;
  readonly leader: string | undefined;
}

export const TOKEN = 'a'.repeat(64);

/** Start one instance; resolves once its API answers (as a standby or, if elected at once, as the leader). */
export async function spawnHa(bed: Bed, name: string, zkUrl: string, extra: Record<string, string> = {}): Promise<HaInstance> {
  const [http, grpc] = [await freePort(), await freePort()];
  const flags = Object.entries(bed.settings({
    'http-port': String(http), 'grpc-port': String(grpc), ha: zkUrl, 'ha-session-timeout': '5s', ...extra,
  })).flatMap(([k, v]) => [`--${k}`, v]);
  const proc = spawn(process.execPath, [LOCUS_CLI, 'framework', ...flags], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: 'warn' } });
  let out = '';
  proc.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  proc.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const deadline = Date.now() + 30_000;
  while (!/grpc api:\s+(\S+)/.test(out)) {
    if (proc.exitCode !== null) throw new Error(`${name} exited ${proc.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`${name} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const done = (): boolean => proc.exitCode !== null || proc.signalCode !== null;
  return {
    name, proc,
    httpUrl: /http api:\s+(\S+)/.exec(out)?.[1] ?? '',
    grpcAddress: /grpc api:\s+(\S+)/.exec(out)?.[1] ?? '',
    output: () => out,
    exited,
    async kill9() {
      if (!done()) {
        proc.kill('SIGCONT');
        proc.kill('SIGKILL');
      }
      await exited;
    },
    async stop() {
      if (done()) return;
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** /readyz of one instance (status 0 when it does not answer). */
export async function readiness(i: HaInstance): Promise<Readiness> {
  try {
    const res = await fetch(`${i.httpUrl}/readyz`, { signal: AbortSignal.timeout(2_000) });
    const body = (await res.json()) as { role?: string; leader?: string };
    return { status: res.status, role: body.role, leader: body.leader };
  } catch {
    return { status: 0, role: undefined, leader: undefined };
  }
}

/** Wait until one of `instances` is a ready leader; returns it. */
export async function waitForLeader(instances: readonly HaInstance[], timeoutMs: number): Promise<HaInstance> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const i of instances) {
      if (i.proc.exitCode !== null || i.proc.signalCode !== null) continue;
      const r = await readiness(i);
      if (r.status === 200 && r.role === 'leader') return i;
    }
    if (Date.now() > deadline) {
      throw new Error(`no ready leader within ${timeoutMs} ms:\n${instances.map((i) => `--- ${i.name}\n${i.output().slice(-2_000)}`).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A JSON API call with the admin token. */
export async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: res.status, json, headers: res.headers };
}

/** Wait until `standby` knows `leader` (its /readyz names it); returns what it said. */
export async function waitForStandbyOf(standby: HaInstance, leader: HaInstance, timeoutMs: number): Promise<Readiness> {
  const deadline = Date.now() + timeoutMs;
  let r = await readiness(standby);
  while (r.leader !== leader.httpUrl && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 100));
    r = await readiness(standby);
  }
  return r;
}
