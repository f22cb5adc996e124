/**
 * Held starts in runAttempt (start-gate.ts), with a runner that records its launches and runs the
 * gated argv as a real process: an attempt with a slot free starts directly; one that waits for
 * its slot starts held, its workload released only when the slot comes and its run timed from
 * then; one handed back while held has its container stopped and never runs; a held start that
 * fails, or a held container that ends before its release, is no failure (the container starts
 * when the slot frees); a slot that comes while the held start waits its turn is used at once; a
 * command that cannot be found is started directly, so its launch failure is reported as before.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAttempt, type AttemptContext, type AttemptControl } from '../../src/executor/attempt.js';
import type { AttemptResult } from '../../src/executor/contract.js';
import type { GateWait } from '../../src/executor/fair-gate.js';
import { StartOrder } from '../../src/executor/start-gate.js';
import type { AttemptRunner, RunExit, RunHandle, RunSpec } from '../../src/executor/runner.js';
import { attemptContext, attemptPayload, memoryLedger } from './attempt-fixture.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-held-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs each spec's argv as a plain child process; `failHeld` refuses gated launches. */
class ProcessRunner implements AttemptRunner {
  readonly kind = 'test';
  readonly heldStarts = true;
  readonly launched: string[][] = [];
  kills = 0;
  /** Kill the next held container's shell right after its launch (it ends before its release). */
  dieHeld = false;
  constructor(private readonly failHeld = false) {}

  async launch(spec: RunSpec): Promise<RunHandle> {
    this.launched.push([...spec.argv]);
    if (this.failHeld && spec.argv[0] === '/bin/sh') throw new Error('no held starts here');
    const [file, ...args] = spec.argv;
    const p = spawn(file ?? '', args, { stdio: 'ignore' });
    const exit = new Promise<RunExit>((r) => {
      p.once('exit', (code, signal) => r({ exitCode: code, signal, reason: signal !== null ? 'KILLED' : 'EXITED', message: `exited ${String(code)}` }));
      p.once('error', (err) => r({ exitCode: 127, signal: null, reason: 'LAUNCH_FAILED', message: err.message }));
    });
    if (this.dieHeld && spec.argv[0] === '/bin/sh') {
      this.dieHeld = false;
      p.kill('SIGKILL');
    }
    return { sandboxDir: join(dir, 'sb', spec.containerId), wait: () => exit, kill: async () => { this.kills++; p.kill('SIGKILL'); } };
  }

  async close(): Promise<void> {}
}

/** A slot that is busy until `free()` (or that ends as `outcome`). */
function busySlot(): { control: Pick<AttemptControl, 'slot' | 'slotNow'>; free(outcome?: GateWait): void } {
  let grant!: (g: GateWait) => void;
  const got = new Promise<GateWait>((r) => (grant = r));
  return { control: { slotNow: () => undefined, slot: () => got }, free: (outcome) => grant(outcome ?? { release: () => undefined }) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An attempt context over `runner` whose containers may start held. */
function heldContext(runner: AttemptRunner, order = new StartOrder()): AttemptContext {
  return { ...attemptContext(dir, memoryLedger().ledger, runner), startOrder: order };
}

/** Wait (polling, up to 10 s) until `ok` holds. */
async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
const base = { delivery: 'd', drain: new AbortController().signal, onRunning: () => undefined };

/** Attempt `n` running `touch <dir>/ran`, set up while its slot is busy: resolves once it is held. */
async function heldTouch(n: number): Promise<{ runner: ProcessRunner; mark: string; slot: ReturnType<typeof busySlot>; done: Promise<AttemptResult>; held: () => number }> {
  const runner = new ProcessRunner();
  const mark = join(dir, 'ran');
  const slot = busySlot();
  let held = 0;
  const done = runAttempt({ ...attemptPayload(dir, n), argv: ['sh', '-c', `touch ${mark}`] }, heldContext(runner), { ...base, ...slot.control, onHeld: () => void held++ });
  await until('the held start', () => held === 1);
  return { runner, mark, slot, done, held: () => held };
}

describe('held starts', () => {
  it('an attempt whose slot is free starts directly, its argv as given', async () => {
    const runner = new ProcessRunner();
    const ctx = heldContext(runner);
    const r = await runAttempt(attemptPayload(dir, 0), ctx, { ...base, slotNow: () => ({ release: () => undefined }), slot: () => Promise.reject(new Error('not asked')) });
    expect(r.state, r.message).toBe('SUCCEEDED');
    expect(runner.launched).toEqual([['true']]);
  });

  it('one that waits for its slot starts held, and its workload runs only once the slot comes', async () => {
    const { runner, mark, slot, done, held } = await heldTouch(1);
    // Given time to run, were it not held.
    await sleep(200);
    expect(runner.launched).toHaveLength(1);
    expect(runner.launched[0]?.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(runner.launched[0]?.slice(-3)).toEqual(['sh', '-c', `touch ${mark}`]);
    expect(held()).toBe(1);
    expect(existsSync(mark), 'the workload ran before its slot came').toBe(false);
    const freedAt = Date.now();
    slot.free();
    const r = await done;
    expect(r.state, r.message).toBe('SUCCEEDED');
    expect(existsSync(mark)).toBe(true);
    // Its run is timed from the release, not from the container's start.
    expect(r.startedAt).toBeGreaterThanOrEqual(freedAt);
    // The gate went with the container.
    // No gate left behind (the FIFO stock the gates are taken from stays for the next ones).
    expect(existsSync(join(dir, 'scratch')) ? readdirSync(join(dir, 'scratch')).filter((n) => n !== '.gate-stock') : []).toEqual([]);
  });

  it('one handed back while held is stopped, and its workload never runs', async () => {
    const { runner, mark, slot, done } = await heldTouch(2);
    expect(runner.launched).toHaveLength(1);
    slot.free('timeout');
    const r = await done;
    expect(r).toMatchObject({ state: 'LOST', reason: 'HANDED_BACK' });
    // Stopped, not left to end by itself, and its gate gone.
    expect(runner.kills).toBe(1);
    // No gate left behind (the FIFO stock the gates are taken from stays for the next ones).
    expect(existsSync(join(dir, 'scratch')) ? readdirSync(join(dir, 'scratch')).filter((n) => n !== '.gate-stock') : []).toEqual([]);
    await sleep(200);
    expect(existsSync(mark)).toBe(false);
  });

  it.each([
    { name: 'a held start that fails', failHeld: true, dieHeld: false },
    { name: 'a held container that ends before its release', failHeld: false, dieHeld: true },
  ])('$name is no failure: the container starts (again) when its slot frees', async ({ failHeld, dieHeld }) => {
    const runner = new ProcessRunner(failHeld);
    runner.dieHeld = dieHeld;
    const slot = busySlot();
    const done = runAttempt(attemptPayload(dir, 3), heldContext(runner), { ...base, ...slot.control });
    await until('the held start tried', () => runner.launched.length === 1);
    // A held container's end is seen before the slot comes.
    await sleep(200);
    slot.free();
    const r = await done;
    expect(r.state, r.message).toBe('SUCCEEDED');
    expect(runner.launched.map((a) => a[0])).toEqual(['/bin/sh', 'true']);
  });

  it('an attempt whose slot comes while its held start waits its turn starts directly', async () => {
    const runner = new ProcessRunner();
    const order = new StartOrder();
    const ctx = heldContext(runner, order);
    // A start that has its slot is under way: held starts wait for it.
    let finishDirect!: () => void;
    const direct = order.now(() => new Promise<void>((r) => (finishDirect = r)));
    const slot = busySlot();
    const done = runAttempt(attemptPayload(dir, 6), ctx, { ...base, ...slot.control });
    await sleep(100);
    slot.free();
    const r = await done;
    finishDirect();
    await direct;
    expect(r.state, r.message).toBe('SUCCEEDED');
    expect(runner.launched).toEqual([['true']]);
  });

  it('a command that cannot be found, held starts off, or held starts that the host\'s CPU says not to make now (auto), starts directly once the slot frees', async () => {
    let asked = 0;
    const notNow = (): boolean => {
      asked++;
      return false;
    };
    for (const [n, argv, startOrder, holdStarts] of [[4, ['no-such-command-locus'], new StartOrder(), undefined], [6, ['true'], undefined, undefined], [7, ['true'], new StartOrder(), notNow]] as const) {
      const runner = new ProcessRunner();
      const ctx = { ...attemptContext(dir, memoryLedger().ledger, runner), ...(startOrder ? { startOrder } : {}), ...(holdStarts ? { holdStarts } : {}) };
      const slot = busySlot();
      const done = runAttempt({ ...attemptPayload(dir, n), argv: [...argv] }, ctx, { ...base, ...slot.control });
      await sleep(100);
      expect(runner.launched).toEqual([]);
      slot.free();
      const r = await done;
      expect(runner.launched).toEqual([[...argv]]);
      expect(r.reason).toBe(argv[0] === 'true' ? 'COMMITTED' : 'LAUNCH_FAILED');
    }
    expect(asked).toBe(1);
  });

  it('held starts that the host\'s CPU allows (auto) start held as with held starts on', async () => {
    const runner = new ProcessRunner();
    const slot = busySlot();
    let held = 0;
    const ctx = { ...heldContext(runner), holdStarts: () => true };
    const done = runAttempt(attemptPayload(dir, 5), ctx, { ...base, ...slot.control, onHeld: () => void held++ });
    await until('the held start', () => held === 1);
    expect(runner.launched[0]?.[0]).toBe('/bin/sh');
    slot.free();
    expect((await done).state).toBe('SUCCEEDED');
  });
});
