/**
 * Cancel keeps its promise end to end: on the real local cluster (real
 * executors, real containers, real Redis), a job of long `sleep` tasks is
 * cancelled over the HTTP API (DELETE /v1/jobs/:id); within seconds every workload process is
 * dead, each attempt is recorded KILLED (CANCELLED), the executors' slots
 * are free again (the coordinator's queue depth is back to zero), and the
 * next job runs to the end.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningFramework } from '../../src/app/framework.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { startBed, startInProcess, waitForJob, type Bed } from './framework-harness.js';

let bed: Bed;
let fw: RunningFramework;

beforeAll(async () => {
  bed = await startBed({ agents: 2, files: 1 });
  fw = await startInProcess(bed);
}, 120_000);

afterAll(async () => {
  await fw?.stop();
  await bed?.dispose();
});

/** Pids of processes whose whole command line is exactly `cmdline` (none: empty). */
function pidsOf(cmdline: string): number[] {
  try {
    return execFileSync('pgrep', ['-x', '-f', cmdline], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    // pgrep exits 1 when nothing matches.
    return [];
  }
}

async function poll<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The coordinator's busy-slot count per executor, as /metrics shows it. */
async function queueDepths(): Promise<number[]> {
  const text = await (await fetch(`${fw.httpUrl}/metrics`)).text();
  return [...text.matchAll(/^locus_queue_depth\{executor="[^"]+"\} (\S+)$/gm)].map((m) => Number(m[1]));
}

describe('cancelling a running job', () => {
  it('kills its running attempts within seconds, frees their slots, and the next job runs', async () => {
    // A sleep no other process on this machine runs: its command line identifies our workloads.
    const seconds = `${4000 + (process.pid % 1000)}.${Date.now() % 997}`;
    const cmdline = `sleep ${seconds}`;
    const tasks = 4;
    const job = await fw.jobs.submit('default', validateJobSpec({
      name: 'cancel-me', retries: 0,
      tasks: Array.from({ length: tasks }, () => ({ command: ['sleep', seconds] })),
      task: { command: ['true'], resources: { cpus: 0.2, mem: '32MiB', disk: '8MiB' } },
    }));
    // Every attempt runs: its workload process exists.
    await poll('all sleeps to run', () => (pidsOf(cmdline).length === tasks ? true : undefined), 90_000);
    expect((await fw.jobs.get(job.id)).counts.running).toBe(tasks);

    const cancelledAt = Date.now();
    // DELETE /v1/jobs/:id is the same cancel as POST /v1/jobs/:id/cancel, locus cancel and gRPC CancelJob.
    const res = await fetch(`${fw.httpUrl}/v1/jobs/${job.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${fw.adminToken}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: job.id, state: 'CANCELLED' });

    // The workloads die within seconds (executors read kill requests every 500 ms while attempts run).
    await poll('the sleeps to die', () => (pidsOf(cmdline).length === 0 ? true : undefined), 15000, 50);
    const killedWithinMs = Date.now() - cancelledAt;
    expect(killedWithinMs).toBeLessThan(8000);

    // Each attempt is recorded as killed because of the cancel, and the job runs nothing.
    await poll('every attempt to be settled', async () => ((await fw.jobs.get(job.id)).counts.running === 0 ? true : undefined), 5000);
    for (let i = 0; i < tasks; i++) {
      const rec = await fw.jobs.getTaskRecord(`${job.id}.0.${i}`);
      expect(rec?.state).toBe('CANCELLED');
      expect(rec?.attempts.at(-1)).toMatchObject({ state: 'KILLED', reason: 'CANCELLED' });
    }
    expect((await fw.jobs.get(job.id)).state).toBe('CANCELLED');

    // The slots are free: no executor has an attempt booked any more.
    const depths = await poll('queue depths of zero', async () => {
      const d = await queueDepths();
      return d.length > 0 && d.every((n) => n === 0) ? d : undefined;
    }, 10_000, 200);
    expect(depths.length).toBeGreaterThan(0);

    // And the next job runs to the end.
    const next = await fw.jobs.submit('default', validateJobSpec({
      name: 'after-cancel', retries: 0,
      tasks: Array.from({ length: tasks }, (_, i) => ({ command: ['sh', '-c', `echo ${i} > {output}/n`] })),
      task: { command: ['true'], resources: { cpus: 0.2, mem: '32MiB', disk: '8MiB' } },
    }));
    const done = await waitForJob(() => fw.jobs.get(next.id), 60_000);
    expect(done.state).toBe('SUCCEEDED');
    expect(done.counts.succeeded).toBe(tasks);
  }, 180_000);
});
