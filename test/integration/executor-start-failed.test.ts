/**
 * Executors that cannot start, end to end on the embedded local cluster with a real Redis: the
 * framework's executor entry point exits at once (as a broken executor command or image would),
 * so every executor's Mesos task fails before it registers. The job must end FAILED, with
 * EXECUTOR_START_FAILED and the agent's status for the failed launch, within seconds (not be
 * relaunched for ever), and say so over HTTP (job view, explain) and in /metrics. Once executors
 * can start again, the next job runs as ever.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startBed, startInProcess, waitForJob, type Bed } from './framework-harness.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { LOCUS_EXECUTOR } from '../harness/build.js';

let bed: Bed;
let fw: RunningFramework;
/** While this file exists, executors exit 3 before they do anything. */
let brokenMarker: string;

beforeAll(async () => {
  bed = await startBed({ agents: 1, files: 1 });
  brokenMarker = join(bed.dir, 'executors-broken');
  writeFileSync(brokenMarker, '');
  // The executor entry point, behind a switch: broken while the marker exists, the real one after.
  const entry = join(bed.dir, 'switched-executor.mjs');
  writeFileSync(entry, [
    "import { existsSync } from 'node:fs';",
    `if (existsSync(${JSON.stringify(brokenMarker)})) {`,
    "  process.stderr.write('locus executor: cannot start (broken on purpose)\\n');",
    '  process.exit(3);',
    '}',
    `await import(${JSON.stringify(LOCUS_EXECUTOR)});`,
    '',
  ].join('\n'));
  fw = await startInProcess(bed, { 'executor-main': entry, 'executor-start-give-up': '0s' });
}, 120_000);

afterAll(async () => {
  await fw?.stop();
  await bed?.dispose();
});

const spec = (name: string): ReturnType<typeof validateJobSpec> => validateJobSpec({
  name, retries: 1, tasks: [{}, {}, {}],
  task: { command: ['sh', '-c', 'echo ok > {output}/ok'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
});

describe('executors that cannot start', () => {
  it('fail the job EXECUTOR_START_FAILED within seconds, saying what Mesos said', async () => {
    const started = Date.now();
    const job = await fw.jobs.submit('default', spec('never-starts'));
    const done = await waitForJob(() => fw.jobs.get(job.id), 30_000);
    // Three failed launch rounds, 1 + 2 s of holds between them, each executor a node start.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(done.state).toBe('FAILED');
    expect(done.message).toMatch(/^EXECUTOR_START_FAILED: no executor could be started for the job's tasks: 3 launches in a row on \S+ ended before the executor registered, the last with TASK_FAILED: Command exited with status 3$/);

    const view = await api(fw.httpUrl, fw.adminToken, 'GET', `/v1/jobs/${job.id}`);
    expect(view.json['state']).toBe('FAILED');
    expect(view.json['message']).toBe(done.message);
    const why = await api(fw.httpUrl, fw.adminToken, 'GET', `/v1/tasks/${job.id}.0.2/explain`);
    expect(why.status).toBe(200);
    expect(why.json['code']).toBe('EXECUTOR_START_FAILED');
    // Attempts given to the executors that never started were not counted against retries.
    for (const t of await fw.jobs.tasks(job.id)) {
      expect(t.failures).toBe(0);
      for (const a of t.attempts) expect([a.state, a.reason]).toEqual(['LOST', 'EXECUTOR_START_FAILED']);
    }
    const metrics = await (await fetch(`${fw.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/locus_executor_start_failures_total\{host="[^"]+"\} [3-9]/);
    expect(metrics).toMatch(/locus_jobs_executor_start_failed_total 1/);
  }, 60_000);

  it('runs the next job once executors can start again', async () => {
    rmSync(brokenMarker);
    const job = await fw.jobs.submit('default', spec('starts-again'));
    // It waits out what is left of the agent's hold (4 s after the third failure) at most.
    const done = await waitForJob(() => fw.jobs.get(job.id), 60_000);
    expect(done.state).toBe('SUCCEEDED');
    expect(done.counts.succeeded).toBe(3);
  }, 90_000);
});
