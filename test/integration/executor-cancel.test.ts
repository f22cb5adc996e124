/**
 * The cancel channel between the dispatcher and a real `locus executor`
 * process (the built binary, its own Redis ACL user, real Redis): a running
 * attempt is killed by its executor and reported KILLED (CANCELLED); one
 * still waiting in the queue is taken off it and settled at once; one whose
 * kill request arrived before it did ends without running.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executorKillKey } from '../../src/executor/contract.js';
import type { ExecutorProvisioner } from '../../src/scheduler/executor-registry.js';
import type { TestRedis } from '../harness/redis.js';
import { RecordingDispatcher, payload, spawnExecutor, waitFor, waitRegistered, type ExecutorProc, startExecutorBed, type ExecutorBed } from './executor-harness.js';

let bed: ExecutorBed | undefined;
let redis: TestRedis;
let admin: Redis;
let prov: ExecutorProvisioner;
let rd: RecordingDispatcher;
let work: string;
const procs: ExecutorProc[] = [];

beforeAll(async () => {
  bed = await startExecutorBed('locus-exec-cancel-');
  ({ redis, admin, prov, rd, work } = bed);
});

afterAll(async () => {
  await bed?.dispose(procs);
});

/** Pids of processes whose whole command line is exactly `cmdline`. */
function pidsOf(cmdline: string): number[] {
  try {
    return execFileSync('pgrep', ['-x', '-f', cmdline], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('killing attempts of a cancelled job', () => {
  it('kills a running attempt, takes a queued one off the queue, and ends one whose kill came first', async () => {
    const id = 'EK1';
    const creds = await prov.create(id);
    // One slot: the second attempt waits in the queue behind the first.
    const e = spawnExecutor({ redis, id, creds, sandbox: join(work, `sandbox-${id}`), slots: 1 });
    procs.push(e);
    await waitRegistered(admin, id).catch((err: Error) => {
      throw new Error(`${err.message}\n${e.stderr()}`);
    });
    await rd.dispatcher.watchExecutor(id);

    const seconds = `${5000 + (process.pid % 1000)}.${Date.now() % 991}`;
    const running = payload('t-run', 1, ['sleep', seconds]);
    const queued = payload('t-queued', 1, ['sleep', seconds]);
    // One by one, as the scheduler sends an attempt beyond an executor's slots (later, on its own):
    // attempts sent together go out in one batch, which the executor takes whole.
    await rd.dispatcher.dispatch(id, running);
    await rd.dispatcher.dispatch(id, queued);
    await waitFor('the first attempt to run', () => pidsOf(`sleep ${seconds}`).length === 1, 30_000);

    // Still queued: taken off the queue and settled here, at once.
    expect(await rd.dispatcher.kill(id, queued.attemptId)).toBe('removed');
    expect(rd.results(queued.attemptId)[0]).toMatchObject({ state: 'KILLED', reason: 'CANCELLED' });

    // Running: the executor kills it (its heartbeat here is 200 ms) and says why.
    const asked = Date.now();
    expect(await rd.dispatcher.kill(id, running.attemptId)).toBe('signalled');
    const r = await rd.result(running.attemptId, 10_000);
    expect(r).toMatchObject({ state: 'KILLED', reason: 'CANCELLED' });
    expect(Date.now() - asked).toBeLessThan(5000);
    expect(pidsOf(`sleep ${seconds}`)).toEqual([]);
    // The executor took its request out of the kill set.
    expect(await admin.smembers(executorKillKey(id))).toEqual([]);

    // A kill that reaches the executor before its attempt does: the attempt ends without running.
    const late = payload('t-late', 1, ['sh', '-c', `echo ran > ${join(work, 'late-ran')}`]);
    expect(await rd.dispatcher.kill(id, late.attemptId)).toBe('signalled');
    await waitFor('the kill request to be read', async () => (await admin.scard(executorKillKey(id))) === 0, 5000);
    await rd.dispatcher.dispatch(id, late);
    expect(await rd.result(late.attemptId)).toMatchObject({ state: 'KILLED', reason: 'CANCELLED' });

    // The slot is free: the next attempt runs to the end.
    const next = payload('t-next', 1, ['true']);
    await rd.dispatcher.dispatch(id, next);
    expect(await rd.result(next.attemptId)).toMatchObject({ state: 'SUCCEEDED' });
  }, 90_000);
});
