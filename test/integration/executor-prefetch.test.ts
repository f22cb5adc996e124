/**
 * Prefetch on a real `locus executor` process (the built binary, its own Redis ACL user, real
 * Redis): with `--prefetch 1` an executor of one slot takes a second attempt while the first
 * runs, sets it up, and starts its container only once the first's has exited; one that finds
 * no slot within the hold (PREFETCH_HOLD_MS) is handed back unstarted (LOST, HANDED_BACK) with
 * its staging directory gone; one cancelled while it waits ends KILLED without running; the
 * registration says how many attempts the executor takes ahead.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HANDED_BACK, PREFETCH_HOLD_MS } from '../../src/executor/contract.js';
import { planOutput } from '../../src/executor/output.js';
import { readRegistration } from '../../src/scheduler/executor-registry.js';
import { payload, spawnExecutor, useExecutorBed, waitFor, waitRegistered, type ExecutorProc } from './executor-harness.js';

const suite = useExecutorBed('locus-exec-prefetch-');

/** An executor of one slot; `hold` (default the executors' own, PREFETCH_HOLD_MS) bounds a prepared attempt's wait. */
async function start(id: string, prefetch: number, hold?: string): Promise<ExecutorProc> {
  const { redis, admin, prov, rd, work } = suite.bed();
  const creds = await prov.create(id);
  const e = spawnExecutor({ redis, id, creds, sandbox: join(work, `sandbox-${id}`), slots: 1, args: ['--prefetch', String(prefetch), ...(hold === undefined ? [] : ['--prefetch-hold', hold])] });
  suite.procs.push(e);
  await waitRegistered(admin, id).catch((err: Error) => {
    throw new Error(`${err.message}\n${e.stderr()}`);
  });
  await rd.dispatcher.watchExecutor(id);
  return e;
}

/** A task whose output notes when its workload started and ended (ms since the epoch). */
function stamped(taskId: string, seconds: number): ReturnType<typeof payload> {
  return payload(taskId, 1, ['sh', '-c', `date +%s%3N > {output}/start; sleep ${seconds}; date +%s%3N > {output}/end`], { outputDir: join(suite.bed().work, 'out', taskId) });
}

/** A task that leaves an output only if it ran. */
function marking(taskId: string): ReturnType<typeof payload> {
  return payload(taskId, 1, ['sh', '-c', 'echo ran > {output}/ran'], { outputDir: join(suite.bed().work, 'out', taskId) });
}

async function stamp(file: string): Promise<number> {
  return Number((await readFile(file, 'utf8')).trim());
}

describe('executor prefetch', () => {
  it('registers its prefetch; a prepared attempt starts once the running container exits, never beside it', async () => {
    const { admin, rd, work } = suite.bed();
    const id = 'EP1';
    // A long hold: on a loaded machine the first container's start alone can take most of a second.
    await start(id, 1, '30s');
    expect((await readRegistration(admin, id))?.prefetch).toBe(1);
    const a = stamped('t-pa', 0.6);
    const b = stamped('t-pb', 0.1);
    await rd.dispatcher.dispatchMany([{ executorId: id, payload: a }, { executorId: id, payload: b }]);
    const [ra, rb] = await Promise.all([rd.result(a.attemptId, 30_000), rd.result(b.attemptId, 30_000)]);
    expect(ra, ra.message).toMatchObject({ state: 'SUCCEEDED' });
    expect(rb, rb.message).toMatchObject({ state: 'SUCCEEDED' });
    // One slot: one workload started after the other ended. Sent together, the two go out in one
    // batch and are set up side by side, so either may reach the slot first.
    const at = (task: string, file: string): Promise<number> => stamp(join(work, 'out', task, file));
    const a0 = await at('t-pa', 'start');
    const a1 = await at('t-pa', 'end');
    const b0 = await at('t-pb', 'start');
    const b1 = await at('t-pb', 'end');
    expect(b0 >= a1 || a0 >= b1, `runs overlap: a ${a0}-${a1}, b ${b0}-${b1}`).toBe(true);
    // And it was taken while the first ran (the queue reported it active before the first ended).
    const active = rd.events.find((ev) => ev.type === 'running' && ev.taskId === b.taskId);
    expect(active, 'the prefetched attempt was taken').toBeDefined();
  });

  it('hands a prepared attempt back when no slot frees within the hold, and a cancelled one ends unstarted', async () => {
    const { admin, rd, work } = suite.bed();
    const id = 'EP2';
    await start(id, 1);
    const long = payload('t-long', 1, ['sleep', '30']);
    const waiting = marking('t-wait');
    const t0 = Date.now();
    // The long one first and on its own: sent together, the two would go out in one batch, set up
    // side by side, and either could reach the slot first.
    await rd.dispatcher.dispatch(id, long);
    await waitFor('the long attempt to run', () => rd.events.some((ev) => ev.type === 'running' && ev.taskId === long.taskId), 10_000);
    await rd.dispatcher.dispatch(id, waiting);
    const r = await rd.result(waiting.attemptId, 30_000);
    expect(r).toMatchObject({ state: 'LOST', reason: HANDED_BACK });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(PREFETCH_HOLD_MS - 50);
    expect(existsSync(join(work, 'out', 't-wait')), 'the handed-back attempt never ran').toBe(false);
    // Its staging directory went with it.
    const staging = planOutput(join(work, 'out', 't-wait'), waiting.attemptId);
    expect(existsSync(staging.stagingRoot) ? readdirSync(staging.stagingRoot).filter((n) => n.startsWith(staging.taskPrefix)) : []).toEqual([]);

    // A second prepared attempt, cancelled while it waits: KILLED, never run.
    const cancelled = marking('t-cancel');
    await rd.dispatcher.dispatch(id, cancelled);
    await waitFor('the prepared attempt to be taken', () => rd.events.some((ev) => ev.type === 'running' && ev.taskId === cancelled.taskId), 10_000);
    expect(await rd.dispatcher.kill(id, cancelled.attemptId)).toBe('signalled');
    expect(await rd.result(cancelled.attemptId, 10_000)).toMatchObject({ state: 'KILLED', reason: 'CANCELLED' });
    expect(existsSync(join(work, 'out', 't-cancel'))).toBe(false);
    expect(await rd.dispatcher.kill(id, long.attemptId)).toBe('signalled');
    expect(await rd.result(long.attemptId, 10_000)).toMatchObject({ state: 'KILLED' });
  });

  it('without --prefetch takes no more than its slots: a second attempt waits in the queue and runs later', async () => {
    const { admin, rd, work } = suite.bed();
    const id = 'EP3';
    await start(id, 0);
    expect((await readRegistration(admin, id))?.prefetch).toBe(0);
    const a = payload('t-na', 1, ['sleep', '1.5']);
    const b = payload('t-nb', 1, ['true']);
    // One by one, as the scheduler sends an attempt beyond the slots: sent together they would
    // go out in one batch, which the executor takes whole.
    await rd.dispatcher.dispatch(id, a);
    await rd.dispatcher.dispatch(id, b);
    // Past the hold, the second is still queued (not taken, so not handed back) and then succeeds.
    expect(await rd.result(b.attemptId, 30_000)).toMatchObject({ state: 'SUCCEEDED' });
    expect(await rd.result(a.attemptId, 30_000)).toMatchObject({ state: 'SUCCEEDED' });
  });
});
