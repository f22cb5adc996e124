/**
 * Prefetch on a real `locus executor` process (the built binary, its own Redis ACL user, real
 * Redis): with `--prefetch 1` an executor of one slot takes a second attempt while the first
 * runs, sets it up, and starts its container only once the first's has exited; one that finds
 * no slot within the hold (PREFETCH_HOLD_MS) is handed back unstarted (LOST, HANDED_BACK) with
 * its staging directory gone; one cancelled while it waits ends KILLED without running; the
 * registration says how many attempts the executor takes ahead. A prepared attempt's container
 * starts held at its start gate while the slot is busy (and not with `--held-starts off`), and
 * no gate or held container outlives its attempt.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HANDED_BACK, PREFETCH_HOLD_MS } from '../../src/executor/contract.js';
import { planOutput } from '../../src/executor/output.js';
import { readRegistration } from '../../src/scheduler/executor-registry.js';
import { payload, spawnExecutor, useExecutorBed, waitFor, waitRegistered, type ExecutorProc } from './executor-harness.js';

const suite = useExecutorBed('locus-exec-prefetch-');

/** An executor of one slot; `hold` (default the executors' own, PREFETCH_HOLD_MS) bounds a prepared attempt's wait. */
async function start(id: string, prefetch: number, hold?: string, extra: readonly string[] = []): Promise<ExecutorProc> {
  const { redis, admin, prov, rd, work } = suite.bed();
  const creds = await prov.create(id);
  const e = spawnExecutor({ redis, id, creds, sandbox: join(work, `sandbox-${id}`), slots: 1, args: ['--prefetch', String(prefetch), ...(hold === undefined ? [] : ['--prefetch-hold', hold]), ...extra] });
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

/** The start gates (FIFOs) in an executor's scratch directory. */
function gatesOf(id: string): string[] {
  const scratch = join(suite.bed().work, `sandbox-${id}`, 'scratch');
  if (!existsSync(scratch)) return [];
  return readdirSync(scratch).filter((n) => n.endsWith('.start') && statSync(join(scratch, n)).isFIFO());
}

/** Processes held at one of an executor's start gates (the gate script, with a gate of its sandbox). */
function heldProcesses(id: string): number[] {
  const pids: number[] = [];
  const sandbox = join(suite.bed().work, `sandbox-${id}`, 'scratch');
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.includes('IFS= read -r g <') && cmd.includes(sandbox)) pids.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
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

  it.each([
    { id: 'EP2', held: false },
    { id: 'EP2H', held: true },
  ])('hands a prepared attempt back when no slot frees within the hold, and a cancelled one ends unstarted (held starts: $held)', async ({ id, held }) => {
    const { rd, work } = suite.bed();
    await start(id, 1, undefined, ['--held-starts', held ? 'on' : 'off']);
    const long = payload(`${id}-long`, 1, ['sleep', '30']);
    const waiting = marking(`${id}-wait`);
    const t0 = Date.now();
    // The long one first and on its own: sent together, the two would go out in one batch, set up
    // side by side, and either could reach the slot first.
    await rd.dispatcher.dispatch(id, long);
    await waitFor('the long attempt to run', () => rd.events.some((ev) => ev.type === 'running' && ev.taskId === long.taskId), 10_000);
    await rd.dispatcher.dispatch(id, waiting);
    // With held starts, its container is there, held, while it waits.
    if (held) await waitFor('the waiting attempt held', () => gatesOf(id).length === 1 && heldProcesses(id).length > 0, 10_000);
    const r = await rd.result(waiting.attemptId, 30_000);
    expect(r).toMatchObject({ state: 'LOST', reason: HANDED_BACK });
    expect(Date.now() - t0, JSON.stringify(r)).toBeGreaterThanOrEqual(PREFETCH_HOLD_MS - 50);
    expect(existsSync(join(work, 'out', `${id}-wait`)), 'the handed-back attempt never ran').toBe(false);
    // Its staging directory went with it.
    const staging = planOutput(join(work, 'out', `${id}-wait`), waiting.attemptId);
    expect(existsSync(staging.stagingRoot) ? readdirSync(staging.stagingRoot).filter((n) => n.startsWith(staging.taskPrefix)) : []).toEqual([]);

    // A second prepared attempt, cancelled while it waits: KILLED, never run.
    const cancelled = marking(`${id}-cancel`);
    await rd.dispatcher.dispatch(id, cancelled);
    await waitFor('the prepared attempt to be taken', () => rd.events.some((ev) => ev.type === 'running' && ev.taskId === cancelled.taskId), 10_000);
    expect(await rd.dispatcher.kill(id, cancelled.attemptId)).toBe('signalled');
    expect(await rd.result(cancelled.attemptId, 10_000)).toMatchObject({ state: 'KILLED', reason: 'CANCELLED' });
    expect(existsSync(join(work, 'out', `${id}-cancel`))).toBe(false);
    expect(await rd.dispatcher.kill(id, long.attemptId)).toBe('signalled');
    expect(await rd.result(long.attemptId, 10_000)).toMatchObject({ state: 'KILLED' });
    // Their held containers went with them, and so did their gates.
    expect(gatesOf(id)).toEqual([]);
    await waitFor('no container held at a gate', () => heldProcesses(id).length === 0, 5000);
  });

  it('starts a prepared attempt\'s container held while the slot is busy, and releases it when the slot frees', async () => {
    const { rd, work } = suite.bed();
    const id = 'EP4';
    await start(id, 1, '30s', ['--held-starts', 'on']);
    const a = stamped('t-ha', 1.5);
    const b = stamped('t-hb', 0.1);
    await rd.dispatcher.dispatch(id, a);
    await waitFor('the first attempt to run', () => rd.events.some((ev) => ev.type === 'running' && ev.taskId === a.taskId), 10_000);
    await rd.dispatcher.dispatch(id, b);
    // While the first runs, the second's container is there, held at its gate.
    await waitFor('a held container', () => gatesOf(id).length === 1 && heldProcesses(id).length > 0, 10_000);
    expect(rd.results(a.attemptId, true), 'the first ended before the check').toEqual([]);
    expect(existsSync(join(work, 'out', 't-hb', 'start')), 'the held workload ran beside the first').toBe(false);
    const [ra, rb] = await Promise.all([rd.result(a.attemptId, 30_000), rd.result(b.attemptId, 30_000)]);
    expect(ra, ra.message).toMatchObject({ state: 'SUCCEEDED' });
    expect(rb, rb.message).toMatchObject({ state: 'SUCCEEDED' });
    const a1 = await stamp(join(work, 'out', 't-ha', 'end'));
    const b0 = await stamp(join(work, 'out', 't-hb', 'start'));
    expect(b0, 'the held workload started before the first ended').toBeGreaterThanOrEqual(a1);
    // Its run is timed from its release (after the first's workload ended), not from its
    // container's start (while the first ran).
    expect(rb.startedAt).toBeGreaterThanOrEqual(a1);
    expect(gatesOf(id)).toEqual([]);
  });

  it('without held starts (--held-starts off), a prepared attempt\'s container starts only when its slot frees', async () => {
    const { rd, work } = suite.bed();
    const id = 'EP5';
    const { admin, prov } = suite.bed();
    const creds = await prov.create(id);
    const e = spawnExecutor({ redis: suite.bed().redis, id, creds, sandbox: join(work, `sandbox-${id}`), slots: 1, args: ['--prefetch', '1', '--prefetch-hold', '30s', '--held-starts', 'off'] });
    suite.procs.push(e);
    await waitRegistered(admin, id);
    await rd.dispatcher.watchExecutor(id);
    const a = stamped('t-oa', 1.2);
    const b = stamped('t-ob', 0.1);
    await rd.dispatcher.dispatch(id, a);
    await waitFor('the first attempt to run', () => rd.events.some((ev) => ev.type === 'running' && ev.taskId === a.taskId), 10_000);
    await rd.dispatcher.dispatch(id, b);
    await waitFor('the second attempt to be taken', () => rd.events.some((ev) => ev.type === 'running' && ev.taskId === b.taskId), 10_000);
    const deadline = Date.now() + 600;
    while (Date.now() < deadline && rd.results(a.attemptId, true).length === 0) {
      expect(gatesOf(id)).toEqual([]);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await rd.result(b.attemptId, 30_000)).toMatchObject({ state: 'SUCCEEDED' });
    expect(await stamp(join(work, 'out', 't-ob', 'start'))).toBeGreaterThanOrEqual(await stamp(join(work, 'out', 't-oa', 'end')));
  });

  it('keeps a quarter of the prefetch it is asked for when its containers cannot start held', async () => {
    const { redis, admin, prov, work } = suite.bed();
    for (const [id, extra, want] of [['EP7', ['--held-starts', 'off'], 2], ['EP8', ['--runner', 'noop', '--held-starts', 'on'], 2], ['EP9', ['--held-starts', 'on'], 8], ['EP10', [], 8]] as const) {
      const creds = await prov.create(id);
      const e = spawnExecutor({ redis, id, creds, sandbox: join(work, `sandbox-${id}`), slots: 8, args: ['--prefetch', '8', ...extra] });
      suite.procs.push(e);
      await waitRegistered(admin, id).catch((err: Error) => {
        throw new Error(`${err.message}\n${e.stderr()}`);
      });
      expect((await readRegistration(admin, id))?.prefetch, id).toBe(want);
    }
  });

  it('refuses a --held-starts that is not on, off or auto, naming the flag', async () => {
    const { redis, prov, work } = suite.bed();
    const id = 'EP6';
    const creds = await prov.create(id);
    const e = spawnExecutor({ redis, id, creds, sandbox: join(work, `sandbox-${id}`), slots: 1, args: ['--held-starts', 'maybe'] });
    suite.procs.push(e);
    expect(await e.exited).not.toBe(0);
    expect(e.stderr()).toContain('--held-starts must be on, off or auto');
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
