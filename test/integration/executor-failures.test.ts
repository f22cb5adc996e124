/**
 * Failure handling with real executor processes and a real Redis: an
 * executor SIGKILLed mid-task has its attempt reported LOST and re-run
 * elsewhere; SIGTERM drains; Redis restarted mid-job (gracefully and with
 * kill -9, AOF everysec) loses no task and commits every output once.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AttemptPayload } from '../../src/executor/contract.js';
import type { ExecutorProvisioner } from '../../src/scheduler/executor-registry.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { outputsAndStagingSwept } from '../harness/staging.js';
import { RecordingDispatcher, payload, provisioner, requireBuild, spawnExecutor, stopProc, waitFor, waitRegistered, type ExecutorProc } from './executor-harness.js';

let work: string;
const procs: ExecutorProc[] = [];

beforeAll(async () => {
  requireBuild();
  // Not under /tmp: the linux isolator mounts a fresh /tmp for workloads.
  work = await mkdtemp(join('/var/tmp', 'locus-exec-fail-'));
  await chmod(work, 0o755);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Env {
  redis: TestRedis;
  admin: Redis;
  prov: ExecutorProvisioner;
  rd: RecordingDispatcher;
}
let env: Env | undefined;

async function setup(name: string): Promise<Env> {
  const aclFile = join(work, `${name}.acl`);
  await writeFile(aclFile, '');
  const redis = await startRedis({ extraArgs: ['--aclfile', aclFile] });
  const { admin, prov } = provisioner(redis);
  const rd = new RecordingDispatcher(redis, { heartbeatTimeoutMs: 1500, reconcileIntervalMs: 1000 });
  await rd.dispatcher.start();
  env = { redis, admin, prov, rd };
  return env;
}

afterEach(async () => {
  for (const p of procs.splice(0)) await stopProc(p);
  if (env) {
    await env.rd.close();
    env.admin.disconnect();
    await env.redis.dispose();
    env = undefined;
  }
});

async function executor(e: Env, id: string, args: readonly string[] = [], slots = 2): Promise<ExecutorProc> {
  const creds = await e.prov.create(id);
  const proc = spawnExecutor({ redis: e.redis, id, creds, sandbox: join(work, `sandbox-${id}`), slots, args });
  procs.push(proc);
  await waitRegistered(e.admin, id).catch((err: Error) => {
    throw new Error(`${err.message}\n${proc.stderr()}`);
  });
  await e.rd.dispatcher.watchExecutor(id);
  return proc;
}

function running(e: Env, attemptId: string): Promise<true> {
  return waitFor(`${attemptId} running`, () => e.rd.events.some((ev) => ev.type === 'running' && ev.progress.attemptId === attemptId) || undefined);
}

function noProcess(pattern: string): boolean {
  try {
    execFileSync('pgrep', ['-f', pattern]);
    return false;
  } catch {
    return true;
  }
}

async function marker(dir: string): Promise<string> {
  return (JSON.parse(await readFile(join(dir, '_SUCCESS'), 'utf8')) as { attemptId: string }).attemptId;
}

describe('executor failures', () => {
  it('an executor SIGKILLed mid-task: its attempt is reported LOST and finishes elsewhere, output once', async () => {
    const e = await setup('kill');
    const ea = await executor(e, 'EA');
    await executor(e, 'EB');
    const out = join(work, 'out-kill');
    const argv = ['sh', '-c', 'sleep 2.5 && echo "$LOCUS_ATTEMPT_ID" > {output}/part-0'];
    const a1 = payload('t-kill', 1, argv, { outputDir: out });
    await e.rd.dispatcher.dispatch('EA', a1);
    await running(e, a1.attemptId);
    ea.proc.kill('SIGKILL');
    const r1 = await e.rd.result(a1.attemptId, 10_000);
    expect(r1).toMatchObject({ state: 'LOST', reason: 'EXECUTOR_LOST' });
    expect(e.rd.events.some((ev) => ev.type === 'executor-lost' && ev.executorId === 'EA' && ev.reason === 'HEARTBEAT_TIMEOUT')).toBe(true);
    // The coordinator's move: a new attempt on another executor (not counted).
    const a2 = payload('t-kill', 2, argv, { outputDir: out });
    await e.rd.dispatcher.dispatch('EB', a2);
    const r2 = await e.rd.result(a2.attemptId);
    expect(r2).toMatchObject({ state: 'SUCCEEDED', reason: 'COMMITTED' });
    expect(await marker(out)).toBe(a2.attemptId);
    expect((await readFile(join(out, 'part-0'), 'utf8')).trim()).toBe(a2.attemptId);
    // The killed executor's workload died with it.
    await waitFor('orphan gone', () => noProcess('sleep 2.5 && echo') || undefined, 5000);
  });

  it('SIGTERM drains: the running attempt finishes, queued ones are handed back, exit 0', async () => {
    const e = await setup('drain');
    const ed = await executor(e, 'ED', ['--drain-grace', '20s'], 1);
    const out = join(work, 'out-drain');
    const a = payload('t-d1', 1, ['sh', '-c', 'sleep 1 && echo done > {output}/part-0'], { outputDir: out });
    const b = payload('t-d2', 1, ['sh', '-c', 'echo should-not-run'], {});
    // One by one: attempts sent together go out in one batch, which the executor takes whole.
    await e.rd.dispatcher.dispatch('ED', a);
    await e.rd.dispatcher.dispatch('ED', b);
    await running(e, a.attemptId);
    ed.proc.kill('SIGTERM');
    expect(await ed.exited).toBe(0);
    expect(await e.rd.result(a.attemptId)).toMatchObject({ state: 'SUCCEEDED', reason: 'COMMITTED' });
    expect(await readFile(join(out, 'part-0'), 'utf8')).toBe('done\n');
    // The queued attempt never ran and comes back LOST (not counted).
    expect(await e.rd.result(b.attemptId)).toMatchObject({ state: 'LOST', reason: 'EXECUTOR_LOST' });
    expect(e.rd.events.some((ev) => ev.type === 'running' && ev.progress.attemptId === b.attemptId)).toBe(false);
  });

  it('SIGTERM past the drain grace hands the running attempt back as LOST/DRAINED', async () => {
    const e = await setup('grace');
    const eg = await executor(e, 'EG', ['--drain-grace', '300ms'], 1);
    const out = join(work, 'out-grace');
    const a = payload('t-g', 1, ['sh', '-c', 'sleep 30; echo x > {output}/part-0'], { outputDir: out });
    await e.rd.dispatcher.dispatch('EG', a);
    await running(e, a.attemptId);
    const t0 = Date.now();
    eg.proc.kill('SIGTERM');
    expect(await eg.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await e.rd.result(a.attemptId)).toMatchObject({ state: 'LOST', reason: 'DRAINED' });
    await expect(readdir(out)).rejects.toThrow();
  });

  it('a delivery handed out again while it runs (the queue forgot it was taken) shares the run: one workload, one SUCCEEDED', async () => {
    const e = await setup('redeliver');
    // Plain processes: the workload counts its runs in a file outside any sandbox.
    await executor(e, 'EV', ['--isolation', 'process'], 4);
    const out = join(work, 'out-redeliver');
    const count = join(work, 'redeliver-runs');
    // Workloads run unprivileged: the count file must be theirs to append to.
    await writeFile(count, '');
    await chmod(count, 0o666);
    const a = payload('t-v', 1, ['sh', '-c', `echo run >> ${count} && sleep 2 && echo "$LOCUS_ATTEMPT_ID" > {output}/part-0`], { outputDir: out });
    await e.rd.dispatcher.dispatch('EV', a);
    await running(e, a.attemptId);
    // What a Redis that lost its last second of writes looks like to BullMQ: the job is waiting
    // again and nobody holds its lock, so a free slot of the same worker takes it a second time.
    const q = 'locus:q:locus-exec-EV';
    await e.admin.multi().lrem(`${q}:active`, 0, a.attemptId).del(`${q}:${a.attemptId}:lock`).rpush(`${q}:wait`, a.attemptId).zadd(`${q}:marker`, 0, '0').exec();
    await waitFor('second delivery taken', async () => (await e.admin.lpos(`${q}:active`, a.attemptId)) !== null && (await e.admin.llen(`${q}:wait`)) === 0 || undefined, 5000);
    const r = await e.rd.result(a.attemptId, 20_000);
    expect(r, `${r.reason} ${r.message}`).toMatchObject({ state: 'SUCCEEDED', reason: 'COMMITTED' });
    // Give a second, separate run the time it would need to show itself.
    await new Promise((res) => setTimeout(res, 2500));
    expect((await readFile(count, 'utf8')).trim().split('\n')).toEqual(['run']);
    expect(e.rd.results(a.attemptId, true).every((x) => x.state === 'SUCCEEDED')).toBe(true);
    expect(await marker(out)).toBe(a.attemptId);
  });

  for (const mode of ['graceful', 'kill -9'] as const) {
    it(`Redis restarted mid-job (${mode}) loses no task; outputs are committed exactly once`, async () => {
      const e = await setup(mode === 'graceful' ? 'restart' : 'crash');
      await executor(e, 'ER', ['--lock-duration', '2s', '--stalled-interval', '1s'], 4);
      const out = join(work, `out-${mode === 'graceful' ? 'restart' : 'crash'}`);
      const tasks: AttemptPayload[] = [];
      for (let i = 0; i < 8; i++) {
        tasks.push(payload(`t-r${i}`, 1, ['sh', '-c', `sleep ${i < 4 ? 1 : 0.2} && echo "$LOCUS_ATTEMPT_ID" > {output}/part-0`], { outputDir: join(out, `t${i}`) }));
      }
      // One by one, twice the slots: the scheduler never sends an executor more than it can hold at
      // once (attempts sent together go out in one batch, which the executor takes whole).
      for (const t of tasks) await e.rd.dispatcher.dispatch('ER', t);
      await running(e, tasks[0]?.attemptId ?? '');
      if (mode === 'graceful') await e.redis.stop();
      else await e.redis.crash();
      await new Promise((r) => setTimeout(r, 700));
      await e.redis.restart();
      for (const t of tasks) {
        const r = await e.rd.result(t.attemptId, 40_000);
        expect(r.state, `${t.attemptId}: ${r.reason} ${r.message}`).toBe('SUCCEEDED');
        expect(await marker(join(out, t.taskId.replace('t-r', 't')))).toBe(t.attemptId);
      }
      // No staging leftovers: every output promoted once, losers cleaned.
      expect(await outputsAndStagingSwept(out)).toEqual({ entries: tasks.map((_, i) => `t${i}`).sort(), staging: [] });
      // The executor survived the restart and is still heartbeating.
      expect(e.rd.events.some((ev) => ev.type === 'executor-lost')).toBe(false);
    });
  }
});
