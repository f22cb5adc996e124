/**
 * The `dispatch-window` setting reaches the scheduler: by default (on) the coordinator keeps a
 * window per executor it dispatches to (the /metrics gauge shows it, between the floor and the
 * slots) and jobs still run to the end; with `false` no executor has one. The controller itself is
 * test/unit/dispatch-window.test.ts's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBed, startInProcess, waitForJob, type Bed } from './framework-harness.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';

let bed: Bed;

beforeAll(async () => {
  bed = await startBed({ agents: 1, files: 1 });
}, 120_000);

afterAll(async () => {
  await bed?.dispose();
});

const job = (name: string): ReturnType<typeof validateJobSpec> => validateJobSpec({
  name, retries: 0,
  task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB' } },
  tasks: Array.from({ length: 12 }, () => ({})),
});

async function windows(fw: RunningFramework): Promise<number[]> {
  const text = await (await fetch(`${fw.httpUrl}/metrics`)).text();
  return [...text.matchAll(/^locus_dispatch_window\{executor="[^"]+"\} (\S+)$/gm)].map((m) => Number(m[1]));
}

async function runWith(extra: Record<string, string>): Promise<number[]> {
  const fw = await startInProcess(bed, { 'state-dir': `${bed.dir}/state-${Object.values(extra).join('-') || 'default'}`, ...extra });
  try {
    const submitted = await fw.jobs.submit('default', job(`window-${Object.values(extra).join('-') || 'default'}`));
    const done = await waitForJob(() => fw.jobs.get(submitted.id));
    expect(done.state).toBe('SUCCEEDED');
    expect(done.counts.succeeded).toBe(12);
    return await windows(fw);
  } finally {
    await fw.stop();
  }
}

describe('dispatch-window setting', () => {
  it('by default, the scheduler keeps a window for the executor it dispatched to; with false none', async () => {
    const on = await runWith({});
    expect(on.length).toBeGreaterThan(0);
    // Between the floor (8, or the slots when fewer) and the executor's slots: 4 cpus / 0.1 at most.
    for (const w of on) {
      expect(w).toBeGreaterThanOrEqual(1);
      expect(w).toBeLessThanOrEqual(40);
    }
    expect(await runWith({ 'dispatch-window': 'false' })).toEqual([]);
  }, 120_000);
});
