/**
 * Batched dispatch under failure (issue 16): attempts of one stage go to an
 * executor several per queue job. Here `locus framework` (a child process) and
 * one executor holding batches are both killed with SIGKILL while batches run;
 * a new framework process takes over. Every task must end SUCCEEDED with one
 * succeeded attempt, one commit record naming that attempt and one committed
 * output written by it; the batched attempts of the surviving executors must
 * be adopted (each its task's succeeded attempt), the killed executor's lost
 * and retried, and no attempt may run twice (a marker each run leaves in its
 * sandbox is counted).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { api, startBed, spawnFramework, waitForJobOverHttp, type Bed, type FrameworkProc } from './framework-harness.js';
import { freePort } from '../harness/ports.js';
import { commitKey, decodeCommittedOutput, executorBatchIndexKey, EXECUTOR_KEY_PREFIX, HANDED_BACK } from '../../src/executor/contract.js';

let bed: Bed;
let fw: FrameworkProc | undefined;
let admin: Redis | undefined;

beforeAll(async () => {
  bed = await startBed();
  admin = new Redis(bed.redis.url);
}, 120_000);

afterAll(async () => {
  await fw?.stop();
  admin?.disconnect();
  await bed?.dispose();
});

/** Host pids of the process running `locus executor --executor-id <id>` (read from /proc: the executor may sit in its own pid namespace). */
function executorPids(executorId: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const i = argv.indexOf('--executor-id');
    if (argv.includes('executor') && i >= 0 && argv[i + 1] === executorId) out.push(Number(d));
  }
  return out;
}

/** How many times each `ran-<index>-<attempt>` marker was written, over every sandbox under `dir`. */
function runMarkers(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory() && !e.isSymbolicLink()) walk(join(d, e.name));
      else if (e.isFile() && /^ran-\d+-\d+$/.test(e.name)) out.set(e.name, (out.get(e.name) ?? 0) + 1);
    }
  };
  walk(dir);
  return out;
}

/** Executor id -> the number of its attempts sent in batches (from the batch index), and the batch job ids. */
async function batchIndex(redis: Redis): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  const ids = (await redis.keys(`${EXECUTOR_KEY_PREFIX}*`)).map((k) => k.slice(EXECUTOR_KEY_PREFIX.length)).filter((id) => !id.includes(':'));
  for (const id of ids) {
    const h = await redis.hgetall(executorBatchIndexKey(id));
    if (Object.keys(h).length > 0) out.set(id, new Map(Object.entries(h)));
  }
  return out;
}

describe('batched dispatch failover', () => {
  it('runs and commits every task exactly once when the framework and an executor die mid-batch', async () => {
    const redis = admin as Redis;
    const port = await freePort();
    fw = await spawnFramework(bed, port);
    const tasks = 36;
    const spec = {
      name: 'batch-failover', retries: 0,
      tasks: Array.from({ length: tasks }, () => ({
        // The marker in the sandbox (the working directory, kept by the agent) counts runs: a second
        // run of one attempt would be a second container with a sandbox of its own.
        command: ['sh', '-c', `: > ran-{task.index}-{attempt}; sleep 10; echo {task.index} {attempt} > '{output}/v'`],
      })),
      task: { command: ['true'], resources: { cpus: 0.5, mem: '64MiB', disk: '16MiB' } },
    };
    const submitted = await api(fw.httpUrl, fw.token, 'POST', '/v1/jobs', spec);
    expect(submitted.status).toBe(201);
    const id = String(submitted.json['id']);

    // Wait until attempts run in batches (a batch job id holds two or more of them) on two
    // executors or more (0.5-cpu tasks fill three 4-cpu agents in the first wave), then kill.
    const deadline = Date.now() + 90_000;
    let victim = '';
    for (;;) {
      const job = await api(fw.httpUrl, fw.token, 'GET', `/v1/jobs/${id}`);
      const counts = job.json['counts'] as { succeeded: number; running: number };
      const index = await batchIndex(redis);
      for (const [executorId, members] of index) {
        const perBatch = new Map<string, number>();
        for (const b of members.values()) perBatch.set(b, (perBatch.get(b) ?? 0) + 1);
        if ([...perBatch.values()].some((n) => n >= 2) && executorPids(executorId).length > 0) victim = executorId;
      }
      // Two executors with batches at least: one to kill, one whose batches the new framework adopts.
      if (victim !== '' && index.size >= 2 && counts.running > 0 && counts.succeeded === 0) break;
      if (Date.now() > deadline) throw new Error(`no batch ever ran: ${JSON.stringify(job.json)} index ${JSON.stringify([...index.keys()])}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const before = await batchIndex(redis);
    const victimAttempts = new Set(before.get(victim)?.keys() ?? []);
    expect(victimAttempts.size).toBeGreaterThanOrEqual(2);
    await fw.kill9();
    for (const pid of executorPids(victim)) process.kill(pid, 'SIGKILL');

    // A new process on the same state and port takes over while the surviving batches still run
    // (10 s tasks): its first reconcile must find each adopted attempt in its batch's queue job
    // through the batch index, not take it for a job Redis lost and queue it a second time.
    fw = await spawnFramework(bed, port);
    const { state, job: last } = await waitForJobOverHttp(fw, id, 150_000);
    expect(state, JSON.stringify(last)).toBe('SUCCEEDED');
    expect(last['counts']).toMatchObject({ total: tasks, succeeded: tasks, running: 0, pending: 0, failed: 0 });

    type Attempt = { attempt: number; attemptId: string; executorId: string; state: string; reason?: string };
    const listed = (await api(fw.httpUrl, fw.token, 'GET', `/v1/jobs/${id}/tasks`)).json['tasks'] as { id: string; index: number; state: string; attempts: Attempt[] }[];
    expect(listed).toHaveLength(tasks);
    const outputDir = String(last['outputDir']);
    const winners = new Map<number, number>();
    const byAttempt = new Map<string, Attempt>();
    for (const t of listed) {
      expect(t.state).toBe('SUCCEEDED');
      const won = t.attempts.filter((a) => a.state === 'SUCCEEDED');
      expect(won, JSON.stringify(t)).toHaveLength(1);
      const winner = won[0] as Attempt;
      // An attempt before the last one was lost (the killed executor's, or one the dead framework
      // still held in memory for an executor that had not registered): retried, never counted.
      for (const a of t.attempts.slice(0, -1)) expect(a.state, JSON.stringify(t)).toBe('LOST');
      for (const a of t.attempts) byAttempt.set(a.attemptId, a);
      // One commit record per task, naming the attempt that succeeded; its output is that attempt's.
      const raw = await redis.get(commitKey(t.id));
      expect(raw, t.id).not.toBeNull();
      expect(decodeCommittedOutput(JSON.parse(raw ?? 'null') as unknown).attemptId).toBe(winner.attemptId);
      winners.set(t.index, winner.attempt);
    }
    // Batched attempts on the executors that lived were adopted by the new framework and settled
    // from their batches' results: each is its task's one succeeded attempt, never started again,
    // or (prefetched beyond the slots of a new executor, behind 10 s tasks) handed back unrun
    // after waiting PREFETCH_HOLD_MS for a slot, and its task placed again.
    let adopted = 0;
    for (const [executorId, members] of before) {
      if (executorId === victim) continue;
      for (const attemptId of members.keys()) {
        const a = byAttempt.get(attemptId);
        if (a?.state === 'LOST') {
          expect(a.reason, attemptId).toBe(HANDED_BACK);
          continue;
        }
        expect(a?.state, attemptId).toBe('SUCCEEDED');
        adopted++;
      }
    }
    expect(adopted).toBeGreaterThan(0);
    // The killed executor's batched attempts that had not finished were lost and ran again elsewhere.
    expect([...victimAttempts].some((a) => byAttempt.get(a)?.state === 'LOST')).toBe(true);
    // Runs: every succeeded attempt ran once (one sandbox marker), and no attempt ran twice.
    const runs = runMarkers(join(bed.dir, 'local'));
    for (const [index, attempt] of winners) expect(runs.get(`ran-${index}-${attempt}`), `ran-${index}-${attempt}`).toBe(1);
    for (const [marker, n] of runs) expect(n, marker).toBe(1);
    const committed = readdirSync(join(outputDir, 'main')).filter((n) => !n.startsWith('.'));
    expect(committed).toHaveLength(tasks);
    for (const d of committed) expect(readFileSync(join(outputDir, 'main', d, 'v'), 'utf8').trim()).toBe(`${Number(d)} ${winners.get(Number(d))}`);
  }, 300_000);
});
