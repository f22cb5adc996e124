/**
 * The start gate of held starts, with a real shell and a real FIFO: the workload runs only once
 * the gate opens, with its own argv; a gate closed without a `go` (the executor gone, the attempt
 * handed back) ends the shell with GATE_CLOSED_EXIT and the workload never runs; StartOrder lets
 * starts with a slot go first.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROOT, itWith } from '../harness/requires.js';
import { FIFO_BATCH, FifoStock, GATE_CLOSED_EXIT, StartGate, StartOrder } from '../../src/executor/start-gate.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'locus-gate-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Start the gated argv as a container would, and resolve its exit code. */
function run(argv: readonly string[]): { exited: Promise<number | null> } {
  const [file, ...args] = argv;
  const p = spawn(file ?? '', args, { stdio: 'ignore' });
  return { exited: new Promise((r) => p.once('exit', (code) => r(code))) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('start gate', () => {
  it('holds the workload until it opens, then runs it with its own arguments', async () => {
    const gate = await StartGate.create(join(dir, 'c1.start'), undefined);
    expect(statSync(gate.path).isFIFO()).toBe(true);
    expect(statSync(gate.path).mode & 0o777).toBe(0o444);
    expect(gate.volume).toEqual({ hostPath: gate.path, containerPath: gate.path, readOnly: true });
    const out = join(dir, 'ran');
    const c = run(gate.wrap(['sh', '-c', 'printf "%s|%s" "$1" "$2" > "$0"', out, 'a b', '$HOME']));
    await sleep(300);
    expect(existsSync(out), 'the workload ran before the gate opened').toBe(false);
    await gate.open();
    expect(await c.exited).toBe(0);
    // Each argument reaches the workload as it was, spaces and dollars included.
    expect(readFileSync(out, 'utf8')).toBe('a b|$HOME');
    await gate.close();
    expect(existsSync(gate.path)).toBe(false);
  });

  it('closed without a go, the shell exits with GATE_CLOSED_EXIT and the workload never runs', async () => {
    const gate = await StartGate.create(join(dir, 'c2.start'), undefined);
    const out = join(dir, 'ran');
    const c = run(gate.wrap(['sh', '-c', 'echo ran > "$0"', out]));
    await sleep(200);
    await gate.close();
    expect(await c.exited).toBe(GATE_CLOSED_EXIT);
    expect(existsSync(out)).toBe(false);
    // Opening after the close does nothing, and a second close is harmless.
    await gate.open();
    await gate.close();
  });

  it('releases a workload whose shell reaches the gate only after the go', async () => {
    const gate = await StartGate.create(join(dir, 'c3.start'), undefined);
    await gate.open();
    const out = join(dir, 'ran');
    const c = run(gate.wrap(['sh', '-c', 'echo ran > "$0"', out]));
    expect(await c.exited).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('ran\n');
    await gate.close();
  });

  itWith([ROOT], 'gives the FIFO to the workload\'s uid alone when asked (needs root to give it away)', async () => {
    const gate = await StartGate.create(join(dir, 'c4.start'), 4242);
    const st = statSync(gate.path);
    expect(st.uid).toBe(4242);
    expect(st.mode & 0o777).toBe(0o400);
    await gate.close();
  });

  it('a path that is taken is refused and left as it was', async () => {
    const taken = join(dir, 'c5.start');
    writeFileSync(taken, 'mine');
    await expect(StartGate.create(taken, undefined)).rejects.toThrow();
    expect(readFileSync(taken, 'utf8')).toBe('mine');
  });

  it('takes its FIFOs from a stock made a batch at a time, in a directory of its own; a taken path keeps its FIFO in the stock', async () => {
    const stock = new FifoStock(join(dir, '.gate-stock'), 8);
    for (let i = 0; i < 20; i++) {
      await stock.take(join(dir, `s${i}.start`));
      expect(statSync(join(dir, `s${i}.start`)).isFIFO()).toBe(true);
      expect(statSync(join(dir, `s${i}.start`)).mode & 0o777).toBe(0o600);
    }
    // 20 FIFOs, refilled when half empty: a handful of mkfifo runs, not one per FIFO.
    expect(stock.fills).toBeGreaterThanOrEqual(3);
    expect(stock.fills).toBeLessThanOrEqual(5);
    expect(statSync(join(dir, '.gate-stock')).mode & 0o777).toBe(0o700);
    const left = readdirSync(join(dir, '.gate-stock')).length;
    writeFileSync(join(dir, 'taken.start'), 'mine');
    await expect(stock.take(join(dir, 'taken.start'))).rejects.toThrow(/EEXIST/);
    expect(readFileSync(join(dir, 'taken.start'), 'utf8')).toBe('mine');
    await new Promise((r) => setTimeout(r, 100));
    expect(readdirSync(join(dir, '.gate-stock')).length).toBeGreaterThanOrEqual(left);
    await stock.clear();
    expect(existsSync(join(dir, '.gate-stock'))).toBe(false);
    expect(FIFO_BATCH).toBeGreaterThan(1);
    // Cleared (the executor ends): a late gate is still made, without a stock coming back.
    await stock.take(join(dir, 'late.start'));
    expect(statSync(join(dir, 'late.start')).isFIFO()).toBe(true);
    expect(existsSync(join(dir, '.gate-stock'))).toBe(false);
  });

  it('makes each gate on its own when the stock directory is not its private one', async () => {
    mkdirSync(join(dir, 'open-stock'), { mode: 0o755 });
    chmodSync(join(dir, 'open-stock'), 0o755);
    const stock = new FifoStock(join(dir, 'open-stock'), 4);
    await stock.take(join(dir, 'g1.start'));
    await stock.take(join(dir, 'g2.start'));
    expect(statSync(join(dir, 'g1.start')).isFIFO()).toBe(true);
    expect(statSync(join(dir, 'g2.start')).isFIFO()).toBe(true);
    expect(stock.working).toBe(false);
    expect(readdirSync(join(dir, 'open-stock'))).toEqual([]);
  });
});

describe('start order', () => {
  it('lets held starts wait until no start with a slot is under way', async () => {
    const order = new StartOrder();
    await order.whenIdle();
    const seen: string[] = [];
    let finish!: () => void;
    const direct = order.now(() => new Promise<void>((r) => (finish = r)).then(() => seen.push('direct')));
    const held = order.whenIdle().then(() => seen.push('held'));
    await sleep(50);
    expect(seen).toEqual([]);
    finish();
    await Promise.all([direct, held]);
    expect(seen).toEqual(['direct', 'held']);
    // A failed start counts down as well.
    await expect(order.now(() => Promise.reject(new Error('no')))).rejects.toThrow('no');
    await order.whenIdle();
  });
});
