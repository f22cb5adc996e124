/**
 * Real `locus executor` processes (the built binary) on a real Redis, each
 * with its own ACL user, fed by the real Dispatcher: isolation, limits,
 * timeouts, exactly-once output under duplicate delivery, contract checks,
 * idle exit. No agent here: the executor runs attempts through the
 * isolation port itself (the no-nested-container path).
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, QUEUE_PREFIX, SCHEDULER_INFO_KEY, decodeAttemptResult, executorQueueName, type AttemptResult } from '../../src/executor/contract.js';
import { planOutput } from '../../src/executor/output.js';
import type { ExecutorProvisioner } from '../../src/scheduler/executor-registry.js';
import type { TestRedis } from '../harness/redis.js';
import { LINUX_ISOLATION, ROOT, checkWith, itWith } from '../harness/requires.js';
import { RecordingDispatcher, payload, spawnExecutor, waitFor, waitRegistered, type ExecutorProc, startExecutorBed, type ExecutorBed } from './executor-harness.js';

let bed: ExecutorBed | undefined;
let redis: TestRedis;
let admin: Redis;
let prov: ExecutorProvisioner;
let rd: RecordingDispatcher;
let work: string;
// The isolation the executor is expected to pick: the host's, as detected once by the requirement helper.
const linux = LINUX_ISOLATION.missing === undefined;
const procs: ExecutorProc[] = [];

beforeAll(async () => {
  bed = await startExecutorBed('locus-exec-run-');
  ({ redis, admin, prov, rd, work } = bed);
});

afterAll(async () => {
  await bed?.dispose(procs);
});

/** The staging directories of the task whose output goes to `finalDir` (in the stage's shared staging directory, when it is there). */
async function stagedFor(finalDir: string): Promise<string[]> {
  const plan = planOutput(finalDir, 'any');
  return (await readdir(plan.stagingRoot).catch(() => [])).filter((f) => f.startsWith(plan.taskPrefix));
}

async function executor(id: string, args: readonly string[] = [], slots = 2): Promise<ExecutorProc> {
  const creds = await prov.create(id);
  const e = spawnExecutor({ redis, id, creds, sandbox: join(work, `sandbox-${id}`), slots, args });
  procs.push(e);
  await waitRegistered(admin, id).catch((err: Error) => {
    throw new Error(`${err.message}\n${e.stderr()}`);
  });
  await rd.dispatcher.watchExecutor(id);
  return e;
}

describe('locus executor (no agent: isolated children)', () => {
  it('runs an attempt isolated (own pid namespace), commits its output and keeps its logs in the sandbox', async () => {
    await executor('E1');
    const runner = await admin.hget('locus:executor:E1', 'runner');
    expect(runner).toBe(linux ? 'isolator:linux' : 'isolator:process');
    const out = join(work, 'out', 'iso');
    const pl = payload('t-iso', 1, ['sh', '-c', 'ls /proc | grep -c "^[0-9]"; echo hello > {output}/part-0'], { outputDir: out });
    await rd.dispatcher.dispatch('E1', pl);
    const r = await rd.result(pl.attemptId);
    expect(r).toMatchObject({ state: 'SUCCEEDED' });
    expect(r.reason).toBe('COMMITTED');
    expect(r.outputPath).toBe(out);
    expect(await readFile(join(out, 'part-0'), 'utf8')).toBe('hello\n');
    expect(JSON.parse(await readFile(join(out, '_SUCCESS'), 'utf8'))).toMatchObject({ attemptId: pl.attemptId });
    expect(r.sandboxDir).toBeDefined();
    const visiblePids = Number((await readFile(join(r.sandboxDir ?? '', 'stdout'), 'utf8')).trim());
    await checkWith([LINUX_ISOLATION], 'executor-run: the attempt has its own pid namespace', () => {
      // In its own pid namespace the workload sees only a handful of processes.
      expect(visiblePids).toBeGreaterThan(0);
      expect(visiblePids).toBeLessThan(10);
    });
    expect(rd.events.some((e) => e.type === 'running' && e.progress.attemptId === pl.attemptId)).toBe(true);
  });

  itWith([ROOT], 'enforces the memory limit: an attempt over it fails with OOM', async () => {
    const pl = payload('t-oom', 1, ['sh', '-c', 'head -c 300m /dev/zero | tail > /dev/null'], { resources: { cpus: 0.5, memMiB: 48, diskMiB: 0 } });
    await rd.dispatcher.dispatch('E1', pl);
    const r = await rd.result(pl.attemptId);
    expect(r.state).toBe('FAILED');
    // Only the cgroup memory controller can tell an OOM kill from any other failure.
    await checkWith([LINUX_ISOLATION], 'executor-run: the failure is reported as OOM', () => {
      expect(r.reason).toBe('OOM');
    });
  });

  it('a timeout kills the whole task tree', async () => {
    const pl = payload('t-timeout', 1, ['sh', '-c', 'sleep 1234 & sleep 1235 & wait'], { timeoutMs: 800 });
    await rd.dispatcher.dispatch('E1', pl);
    const r = await rd.result(pl.attemptId);
    expect(r.state).toBe('TIMED_OUT');
    expect(r.reason).toBe('TIMEOUT');
    await waitFor('the sleeps to be gone', () => {
      try {
        execFileSync('pgrep', ['-f', 'sleep 123[45]']);
        return false;
      } catch {
        return true;
      }
    }, 5000);
  });

  it('commits output exactly once under forced duplicate delivery and concurrent retries', async () => {
    await executor('E2');
    const out = join(work, 'out', 'dup');
    const argv = ['sh', '-c', 'sleep 0.4; echo "$LOCUS_ATTEMPT_ID" > {output}/part-0; date +%N > {output}/extra-$(date +%N)'];
    const a1 = payload('t-dup', 1, argv, { outputDir: out });
    const a2 = payload('t-dup', 2, argv, { outputDir: out });
    await rd.dispatcher.dispatch('E1', a1);
    // The same attempt delivered a second time (another BullMQ job), on another executor.
    const q2 = new Queue(executorQueueName('E2'), { connection: redis.client(), prefix: QUEUE_PREFIX });
    await q2.add('attempt', a1, { jobId: `${a1.attemptId}-dup` });
    await rd.dispatcher.dispatch('E2', a2);
    // The duplicate runs on E2 (and finds the output committed or commits it), but its result
    // is not E2's to report: the dispatcher drops a result whose queue entry names another attempt.
    const dupDone = async (): Promise<AttemptResult | undefined> => {
      const j = await q2.getJob(`${a1.attemptId}-dup`);
      return j?.finishedOn ? decodeAttemptResult(j.returnvalue) : undefined;
    };
    await waitFor('three results', async () => rd.results('t-dup.a1', true).length >= 1 && rd.results('t-dup.a2', true).length >= 1 && (await dupDone()) !== undefined ? true : undefined);
    expect(rd.results('t-dup.a1', true)).toHaveLength(1);
    const dup = await dupDone();
    const all = [...rd.results('t-dup.a1', true), ...rd.results('t-dup.a2', true), ...(dup ? [dup] : [])];
    expect(all.every((r) => r.state === 'SUCCEEDED')).toBe(true);
    expect(all.filter((r) => r.reason === 'COMMITTED')).toHaveLength(1);
    expect(all.filter((r) => r.reason === 'ALREADY_COMMITTED')).toHaveLength(2);
    const winner = all.find((r) => r.reason === 'COMMITTED');
    // When its workload exited crosses the wire with the result (contract 2.1).
    expect(winner?.exitedAt).toBeGreaterThanOrEqual(winner?.startedAt ?? Infinity);
    expect(winner?.exitedAt).toBeLessThanOrEqual(winner?.finishedAt ?? -Infinity);
    const files = (await readdir(out)).sort();
    // One attempt's files only: part-0, one extra-*, the marker.
    expect(files.filter((f) => f.startsWith('extra-'))).toHaveLength(1);
    expect(files).toContain('_SUCCESS');
    expect((await readFile(join(out, 'part-0'), 'utf8')).trim()).toBe(winner?.attemptId);
    expect(JSON.parse(await readFile(join(out, '_SUCCESS'), 'utf8'))).toMatchObject({ attemptId: winner?.attemptId });
    // Losers' staging directories are gone.
    expect(await stagedFor(out)).toEqual([]);
    // A later attempt of a committed task does not run at all.
    const a3 = payload('t-dup', 3, ['sh', '-c', 'echo ran > {output}/part-0'], { outputDir: out });
    await rd.dispatcher.dispatch('E2', a3);
    const r3 = await rd.result(a3.attemptId);
    expect(r3.reason).toBe('ALREADY_COMMITTED');
    expect((await readFile(join(out, 'part-0'), 'utf8')).trim()).toBe(winner?.attemptId);
    await q2.close();
  });

  it('reports a failing attempt with its exit status and removes its output', async () => {
    const out = join(work, 'out', 'fail');
    const pl = payload('t-fail', 1, ['sh', '-c', 'echo partial > {output}/part-0; echo oops >&2; exit 3'], { outputDir: out });
    await rd.dispatcher.dispatch('E1', pl);
    const r = await rd.result(pl.attemptId);
    expect(r).toMatchObject({ state: 'FAILED', reason: 'EXIT_NONZERO', exitCode: 3 });
    expect(await readFile(join(r.sandboxDir ?? '', 'stderr'), 'utf8')).toContain('oops');
    await expect(readdir(out)).rejects.toThrow();
    expect(await stagedFor(out)).toEqual([]);
  });

  it('reads a non-local split through the storage reader', async () => {
    const data = join(work, 'input.txt');
    await writeFile(data, '0123456789abcdef');
    const out = join(work, 'out', 'split');
    const pl = payload('t-split', 1, ['sh', '-c', 'cat {split.path} > {output}/part-0'], { outputDir: out, split: { uri: `file://${data}`, offset: 4, length: 6 } });
    await rd.dispatcher.dispatch('E1', pl);
    const r = await rd.result(pl.attemptId);
    expect(r).toMatchObject({ state: 'SUCCEEDED' });
    expect(await readFile(join(out, 'part-0'), 'utf8')).toBe('456789');
  });

  it('fills {split.path} with nothing for a task without a split, as {split.uri} is', async () => {
    const out = join(work, 'out', 'no-split');
    const pl = payload('t-nosplit', 1, ['sh', '-c', 'printf "[%s][%s]" "{split.path}" "$LOCUS_SPLIT_PATH" > {output}/part-0'], { outputDir: out });
    await rd.dispatcher.dispatch('E1', pl);
    expect(await rd.result(pl.attemptId)).toMatchObject({ state: 'SUCCEEDED' });
    expect(await readFile(join(out, 'part-0'), 'utf8')).toBe('[][]');
  });

  it('turns {{name}} into the text {name}, {{output}} included, after filling {output}', async () => {
    const out = join(work, 'out', 'escaped');
    const pl = payload('t-escaped', 1, ['sh', '-c', 'printf "%s %s" "{{output}}" "{{print}}" > {output}/part-0'], { outputDir: out });
    await rd.dispatcher.dispatch('E1', pl);
    expect(await rd.result(pl.attemptId)).toMatchObject({ state: 'SUCCEEDED' });
    expect(await readFile(join(out, 'part-0'), 'utf8')).toBe('{output} {print}');
  });

  it('refuses a scheduler of a different contract major, and the dispatcher refuses such an executor', async () => {
    const major = Number(CONTRACT_VERSION.split('.')[0]);
    await admin.hset(SCHEDULER_INFO_KEY, 'contract', `${major + 1}.0`);
    try {
      const creds = await prov.create('E-old');
      const e = spawnExecutor({ redis, id: 'E-old', creds, sandbox: join(work, 'sandbox-old') });
      procs.push(e);
      expect(await e.exited).toBe(1);
      expect(e.stderr()).toMatch(new RegExp(`queue contract ${major + 1}\\.0.*major versions differ`));
    } finally {
      await admin.hset(SCHEDULER_INFO_KEY, 'contract', CONTRACT_VERSION);
    }
    // An executor of major 1 stages in a directory per task and, rolling a record forward, removes
    // the staged path's parent (now a stage's shared staging directory): it is refused.
    expect(major).toBeGreaterThanOrEqual(2);
    await admin.hset('locus:executor:E-old-major', { contract: '1.9', state: 'running', hb: '1', hostname: 'h', slots: '1', agentId: 'a' });
    await expect(rd.dispatcher.watchExecutor('E-old-major')).rejects.toThrow(/queue contract 1\.9.*major versions differ/);
    await admin.hset('locus:executor:E-future', { contract: `${major + 1}.1`, state: 'running', hb: '1', hostname: 'h', slots: '1', agentId: 'a' });
    await expect(rd.dispatcher.watchExecutor('E-future')).rejects.toThrow(new RegExp(`queue contract ${major + 1}\\.1.*major versions differ`));
  });

  it('exits when idle, marks itself exited, and the dispatcher notices', async () => {
    const e = await executor('E-idle', ['--idle-timeout', '600ms'], 1);
    expect(await e.exited).toBe(0);
    expect(await admin.hget('locus:executor:E-idle', 'state')).toBe('exited');
    expect(await admin.hget('locus:executor:E-idle', 'exitReason')).toBe('idle');
    await waitFor('executor-lost EXITED', () => rd.events.some((ev) => ev.type === 'executor-lost' && ev.executorId === 'E-idle' && ev.reason === 'EXITED') || undefined, 5000);
  });

  it('exits when the scheduler asks', async () => {
    const e = await executor('E-ask', [], 1);
    await rd.dispatcher.requestStop('E-ask');
    expect(await e.exited).toBe(0);
    expect(await admin.hget('locus:executor:E-ask', 'exitReason')).toBe('stop-requested');
  });
});
