/**
 * Scheduler failover: `locus framework` is killed with SIGKILL in the middle
 * of a job and started again. It re-subscribes with its stored FrameworkID,
 * reconciles, adopts its executors and in-flight attempts, and finishes the
 * job with every task done exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, startBed, spawnFramework, waitForJobOverHttp, type Bed, type FrameworkProc } from './framework-harness.js';
import { freePort } from '../harness/ports.js';

let bed: Bed;
let fw: FrameworkProc | undefined;

beforeAll(async () => {
  bed = await startBed();
}, 120_000);

afterAll(async () => {
  await fw?.stop();
  await bed?.dispose();
});

describe('scheduler failover', () => {
  it('finishes a job after kill -9 and restart with every task done exactly once', async () => {
    const port = await freePort();
    fw = await spawnFramework(bed, port);
    const tasks = 10;
    const spec = {
      name: 'failover', retries: 0,
      tasks: Array.from({ length: tasks }, () => ({
        // 1.0 to 1.9 s, one task ending every 100 ms: identical tasks started together ended
        // within a few milliseconds of each other on a quick machine, and the moment below
        // (some done, some running) was often missed.
        command: ['sh', '-c', `sleep 1.{task.index}; echo {task.index} {attempt} > '{output}/v'`],
      })),
      task: { command: ['true'], resources: { cpus: 0.25, mem: '64MiB', disk: '16MiB' } },
    };
    const submitted = await api(fw.httpUrl, fw.token, 'POST', '/v1/jobs', spec);
    expect(submitted.status).toBe(201);
    const id = String(submitted.json['id']);

    // Kill the scheduler while some tasks are done and others still run.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const job = await api(fw.httpUrl, fw.token, 'GET', `/v1/jobs/${id}`);
      const counts = job.json['counts'] as { succeeded: number; running: number };
      if (counts.running > 0 && counts.succeeded > 0) break;
      if (Date.now() > deadline) throw new Error(`job never got going: ${JSON.stringify(job.json)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await fw.kill9();

    // Same state, same port: the new process finds the FrameworkID and the job in Redis.
    fw = await spawnFramework(bed, port);
    const { state, job: last } = await waitForJobOverHttp(fw, id, 90_000);
    expect(state, JSON.stringify(last)).toBe('SUCCEEDED');

    // Exactly once: every task ran one attempt (the ones in flight during the crash were adopted,
    // not re-run), and each has one committed output, written by that attempt.
    const listed = (await api(fw.httpUrl, fw.token, 'GET', `/v1/jobs/${id}/tasks`)).json['tasks'] as { index: number; state: string; attempts: unknown[] }[];
    expect(listed).toHaveLength(tasks);
    for (const t of listed) {
      expect(t.state).toBe('SUCCEEDED');
      expect(t.attempts, JSON.stringify(t)).toHaveLength(1);
    }
    const outputDir = String(last['outputDir']);
    const committed = readdirSync(join(outputDir, 'main')).filter((n) => !n.startsWith('.'));
    expect(committed).toHaveLength(tasks);
    for (const d of committed) expect(readFileSync(join(outputDir, 'main', d, 'v'), 'utf8').trim()).toBe(`${Number(d)} 1`);

    // The framework re-registered under the same id: the master knows one Locus framework.
    const state2 = (await (await fetch(`${bed.cluster.masterUrl}/state`)).json()) as { frameworks: { name: string; active?: boolean }[] };
    expect(state2.frameworks.filter((f) => f.name === 'locus')).toHaveLength(1);
  }, 180_000);
});
