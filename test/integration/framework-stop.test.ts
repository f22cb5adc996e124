/**
 * A stop of `locus framework` is bounded. With its Redis gone, BullMQ and
 * ioredis wait for a reconnection for ever; the framework used to wait with
 * them and ignore SIGTERM for many minutes. Now SIGTERM finishes what it can
 * within --stop-timeout, then exits 1 naming what it abandoned. A clean stop
 * (Redis up) still exits 0 and says nothing of the kind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBed, type Bed } from './framework-harness.js';
import { LOCUS_CLI, ensureBuilt } from '../harness/build.js';
import { freePort } from '../harness/ports.js';
import { startRedis, type TestRedis } from '../harness/redis.js';

let bed: Bed;

beforeAll(async () => {
  ensureBuilt();
  bed = await startBed({ agents: 1, files: 1 });
}, 180_000);

afterAll(async () => {
  await bed?.dispose();
});

interface Running {
  readonly proc: ChildProcess;
  readonly httpUrl: string;
  output(): string;
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `locus framework` on the bed's cluster and the given Redis, started and answering HTTP. */
async function startFrameworkProc(redisUrl: string): Promise<Running> {
  const port = await freePort();
  const flags = Object.entries(bed.settings({ redis: redisUrl, 'http-port': String(port), 'stop-timeout': '3s' })).flatMap(([k, v]) => [`--${k}`, v]);
  const proc = spawn(process.execPath, [LOCUS_CLI, 'framework', ...flags], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: 'warn' } });
  let out = '';
  proc.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  proc.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 30_000;
  while (!/http api:\s+(\S+)/.test(out)) {
    if (proc.exitCode !== null) throw new Error(`locus framework exited ${proc.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`locus framework did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, httpUrl: /http api:\s+(\S+)/.exec(out)?.[1] ?? '', output: () => out, exited: () => done };
}

async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${'a'.repeat(64)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('locus framework stops within its budget', () => {
  it('exits 1 within seconds of SIGTERM when its Redis is gone mid-job, naming what it abandoned', async () => {
    const redis: TestRedis = await startRedis();
    let fw: Running | undefined;
    try {
      fw = await startFrameworkProc(redis.url);
      // A running attempt puts an executor, its queue and its BullMQ connections in play:
      // those are what used to wait for Redis for ever.
      const submitted = await api(fw.httpUrl, 'POST', '/v1/jobs', {
        name: 'stop-bound', retries: 0,
        tasks: [{}],
        task: { command: ['sleep', '60'], resources: { cpus: 0.25, mem: '64MiB', disk: '16MiB' } },
      });
      expect(submitted.status).toBe(201);
      const id = String(submitted.json['id']);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const job = await api(fw.httpUrl, 'GET', `/v1/jobs/${id}`);
        if ((job.json['counts'] as { running: number }).running > 0) break;
        if (Date.now() > deadline) throw new Error(`the task never ran: ${JSON.stringify(job.json)}`);
        await new Promise((r) => setTimeout(r, 100));
      }

      await redis.crash();
      // Let the clients notice and settle into their reconnect loop, as in the reported case.
      await new Promise((r) => setTimeout(r, 2_000));
      const t0 = Date.now();
      fw.proc.kill('SIGTERM');
      const exit = await Promise.race([
        fw.exited(),
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000)),
      ]);
      const took = Date.now() - t0;
      expect(exit, `locus framework did not exit after SIGTERM: ${fw.output()}`).not.toBe('hung');
      expect(exit).toEqual({ code: 1, signal: null });
      expect(took).toBeLessThan(10_000);
      const out = fw.output();
      expect(out).toMatch(/locus framework: stopped uncleanly: .*Redis at 127\.0\.0\.1:\d+ is unreachable/);
      expect(out).toContain('Tasks keep running on Mesos; the next start reconciles them.');
    } finally {
      if (fw && fw.proc.exitCode === null && fw.proc.signalCode === null) fw.proc.kill('SIGKILL');
      await redis.dispose();
    }
  }, 120_000);

  it('exits 0 on SIGTERM when Redis is up, with no abandoned work reported', async () => {
    const redis = await startRedis();
    let fw: Running | undefined;
    try {
      fw = await startFrameworkProc(redis.url);
      fw.proc.kill('SIGTERM');
      const exit = await Promise.race([fw.exited(), new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
      expect(exit, fw.output()).toEqual({ code: 0, signal: null });
      expect(fw.output()).not.toContain('uncleanly');
    } finally {
      if (fw && fw.proc.exitCode === null && fw.proc.signalCode === null) fw.proc.kill('SIGKILL');
      await redis.dispose();
    }
  }, 60_000);
});
