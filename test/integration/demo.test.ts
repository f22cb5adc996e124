/**
 * `locus demo` end to end through the built binary: real redis-server, the
 * embedded local cluster, executors and containers, the two-stage word
 * count. Run twice on one fresh state directory: the second run must also
 * succeed (restart on existing Redis data, framework id, outputs).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIfStale, processesUnder, runCli, tempStateDir, type CliRun } from './surfaces-harness.js';

let stateDir: string;

beforeAll(() => {
  buildIfStale();
  stateDir = tempStateDir('locus-demo-');
});

afterAll(() => {
  if (!stateDir) return;
  // Only if a run crashed: its managed redis-server (cwd in the state dir) would outlive it.
  for (const pid of processesUnder(stateDir)) process.kill(pid, 'SIGKILL');
  rmSync(stateDir, { recursive: true, force: true });
});

/** What every successful demo run must print. */
function expectDemoOutput(r: CliRun): void {
  expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
  const lines = r.stdout.split('\n');
  const top = lines.indexOf('top words:');
  expect(top).toBeGreaterThan(0);
  // Ten "<count>  <word>" lines, counts non-increasing; 'the' is the most frequent word of the sample.
  const words = lines.slice(top + 1, top + 11).map((l) => /^\s+(\d+)\s+([a-z]+)$/.exec(l));
  expect(words.every((m) => m !== null), lines.slice(top, top + 11).join('\n')).toBe(true);
  const counts = words.map((m) => Number(m?.[1]));
  for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeLessThanOrEqual(counts[i - 1] ?? 0);
  expect(words[0]?.[2]).toBe('the');
  const local = /^node-local: (\d+)\/(\d+) map tasks \((\d+)%\)$/m.exec(r.stdout);
  expect(local, r.stdout).not.toBeNull();
  expect(Number(local?.[2])).toBe(12);
  expect(Number(local?.[1])).toBeGreaterThan(0);
  expect(r.stdout).toMatch(/^elapsed: \d+(\.\d)?s$/m);
  expect(r.stdout).toMatch(/SUCCEEDED stage reduce: 13\/13 done/);
}

/** Everything the demo started (Redis, agents, executors, containers) stops with it. */
async function expectNothingLeft(): Promise<void> {
  const deadline = Date.now() + 5000;
  while (processesUnder(stateDir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(processesUnder(stateDir)).toEqual([]);
}

describe('locus demo', () => {
  let first: CliRun | undefined;
  const top = (s: string): string => s.slice(s.indexOf('top words:'), s.indexOf('node-local:'));

  it('runs the word count end to end and prints top words, node-local fraction and elapsed', async () => {
    first = await runCli(['demo', '--state-dir', stateDir], { HOME: stateDir }, 120_000);
    expectDemoOutput(first);
    await expectNothingLeft();
  }, 130_000);

  it('a second run on the same state directory succeeds with the same top words', async () => {
    expect(first?.code).toBe(0);
    const again = await runCli(['demo', '--state-dir', stateDir], { HOME: stateDir }, 120_000);
    expectDemoOutput(again);
    await expectNothingLeft();
    // Same seeded input text, so the same answer: nothing of the first run leaked into the second.
    expect(top(again.stdout)).toBe(top(first?.stdout ?? ''));
  }, 130_000);
});
