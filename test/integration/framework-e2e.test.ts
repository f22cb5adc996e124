/**
 * The framework end to end on the embedded local cluster with real Redis,
 * real executors and isolated task containers: locality, multi-stage jobs,
 * an executor lost mid-task, explain and cancel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startBed, startInProcess, waitForJob, type Bed } from './framework-harness.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { LocalityLevel } from '../../src/core/locality.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { hiddenEntriesSettled } from '../harness/staging.js';

let bed: Bed;
let fw: RunningFramework;

beforeAll(async () => {
  bed = await startBed();
  fw = await startInProcess(bed);
}, 120_000);

afterAll(async () => {
  await fw?.stop();
  await bed?.dispose();
});

const countSpec = (name: string, extra: Record<string, unknown> = {}): ReturnType<typeof validateJobSpec> => validateJobSpec({
  name,
  inputs: ['local://words/'],
  split: 'file',
  task: {
    command: ['sh', '-c', "test -r '{split.path}' || exit 66; wc -l < '{split.path}' > '{output}/lines'; hostname > '{output}/host'"],
    resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' },
  },
  ...extra,
});

describe('framework on the local cluster', () => {
  it('runs a job over a local:// dataset node-local, committing each output once', async () => {
    const job = await fw.jobs.submit('default', countSpec('count-lines'));
    const done = await waitForJob(() => fw.jobs.get(job.id));
    expect(done.state).toBe('SUCCEEDED');
    expect(done.counts.total).toBe(6);
    const tasks = await fw.jobs.tasks(job.id);
    expect(tasks).toHaveLength(6);
    const client = bed.redis.client();
    const splits = await new JobStore(client).getSplits(job.id, 0);
    client.disconnect();
    // Node-local means the attempt ran on an agent holding a replica of its split.
    const nodeLocalTasks = tasks.filter((t) => t.attempts[t.attempts.length - 1]?.locality === LocalityLevel.NODE_LOCAL);
    for (const t of nodeLocalTasks) expect(splits[t.index]?.hosts).toContain(t.attempts[t.attempts.length - 1]?.host);
    const nodeLocal = nodeLocalTasks.length;
    for (const t of tasks) {
      const last = t.attempts[t.attempts.length - 1];
      expect(t.state).toBe('SUCCEEDED');
      const out = join(done.outputDir, 'main', String(t.index).padStart(5, '0'));
      expect(readFileSync(join(out, 'lines'), 'utf8').trim()).toBe('1999');
      expect(JSON.parse(readFileSync(join(out, '_SUCCESS'), 'utf8')).attemptId).toBe(last?.attemptId);
    }
    // Every split has two replicas on three agents; with executors grown on data hosts,
    // (nearly) all tasks run node-local.
    expect(nodeLocal).toBeGreaterThanOrEqual(5);
    expect(done.counts.nodeLocal).toBe(nodeLocal);
    // No staging directories are left behind.
    expect(await hiddenEntriesSettled(join(done.outputDir, 'main'))).toEqual([]);
  }, 90_000);

  it('runs a two-stage job whose second stage reads the first stage outputs', async () => {
    const spec = validateJobSpec({
      name: 'map-reduce',
      stages: [
        {
          name: 'map', inputs: ['local://words/'], split: 'file',
          task: { command: ['sh', '-c', "grep -c word3 '{split.path}' > '{output}/n'"], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
        },
        {
          name: 'reduce', inputs: ['stage:map'],
          tasks: [{ command: ['sh', '-c', "cat {stages.map.output}/*/n | awk '{s+=$1} END {print s}' > '{output}/total'"] }],
          task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
        },
      ],
    });
    const job = await fw.jobs.submit('default', spec);
    const done = await waitForJob(() => fw.jobs.get(job.id));
    expect(done.state).toBe('SUCCEEDED');
    expect(done.counts.total).toBe(7);
    // word3 appears on lines 3, 10, ... of 2000 in each of the 6 files: 286 times each.
    expect(readFileSync(join(done.outputDir, 'reduce', '00000', 'total'), 'utf8').trim()).toBe(String(6 * 286));
  }, 90_000);

  it('retries the tasks of an executor killed mid-task without counting them', async () => {
    const marker = join(bed.dir, 'started');
    const spec = validateJobSpec({
      name: 'slow', retries: 0,
      tasks: [0, 1].map(() => ({ command: ['sh', '-c', `touch ${marker}-{task.index}-{attempt} 2>/dev/null; sleep 3; echo done > '{output}/ok'`] })),
      task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
    });
    const job = await fw.jobs.submit('default', spec);
    // Wait until both attempts run, then kill -9 one executor process.
    const deadline = Date.now() + 30_000;
    let running = 0;
    while (running < 2 && Date.now() < deadline) {
      running = (await fw.jobs.get(job.id)).counts.running;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(running).toBe(2);
    const task0 = await fw.jobs.getTaskRecord(`${job.id}.0.0`);
    const victim = task0?.attempts[0]?.executorId ?? '';
    expect(victim).not.toBe('');
    execFileSync('pkill', ['-KILL', '-f', `executor --executor-id ${victim} `]);
    const done = await waitForJob(() => fw.jobs.get(job.id), 90_000);
    expect(done.state).toBe('SUCCEEDED');
    const t0 = await fw.jobs.getTaskRecord(`${job.id}.0.0`);
    // The lost attempt did not count against retries (retries: 0 would have failed the job).
    expect(t0?.failures).toBe(0);
    expect(t0?.attempts[0]?.state).toBe('LOST');
    expect(t0?.attempts[t0.attempts.length - 1]?.state).toBe('SUCCEEDED');
    expect(existsSync(join(done.outputDir, 'main', '00000', 'ok'))).toBe(true);
  }, 120_000);

  it('explains a pending task and cancels a job', async () => {
    const spec = countSpec('never-fits', { task: { command: ['true'], resources: { cpus: 64, mem: '64MiB', disk: '16MiB' } } });
    const job = await fw.jobs.submit('default', spec);
    const deadline = Date.now() + 20_000;
    while ((await fw.jobs.get(job.id)).state !== 'RUNNING' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 600));
    const why = await fw.coordinator.explain(`${job.id}.0.0`);
    expect(why.state).toBe('PENDING');
    expect(why.code).not.toBe('RUNNING');
    expect(why.message.length).toBeGreaterThan(0);
    const { job: cancelled } = await fw.jobs.cancel(job.id);
    expect(cancelled.state).toBe('CANCELLED');
    expect(fw.jobs.index.size).toBe(0);
  }, 60_000);
});
