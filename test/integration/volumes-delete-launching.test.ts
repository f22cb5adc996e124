/**
 * Deleting a volume whose executor is still starting, on the local cluster with real Redis and
 * real processes: its job was cancelled while the executor's process, launched with the volume,
 * had not registered yet. Placement releases that executor for the delete like any other, and
 * the kill reaches it although it is still starting: the volume is DESTROYed and UNRESERVEd
 * within seconds, and the executor's process is gone. The executor here takes 20 s to start
 * (a wrapper that waits before loading the real one, with no SIGTERM handler meanwhile, as a
 * process that is still loading has none), so the whole scenario happens while it starts.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBed, spawnFramework, api as callApi, type Bed, type FrameworkProc } from './framework-harness.js';
import { LOCUS_EXECUTOR } from '../harness/build.js';
import { freePort } from '../harness/ports.js';
import { waitFor } from '../harness/wait.js';

/** How long the executor takes to start: longer than the test waits for the volume to go. */
const START_DELAY_MS = 20_000;

let bed: Bed;
let fw: FrameworkProc | undefined;

beforeAll(async () => {
  bed = await startBed({ agents: 1, files: 1 });
  const slow = join(bed.dir, 'slow-executor.mjs');
  writeFileSync(slow, `setTimeout(() => { void import(${JSON.stringify(LOCUS_EXECUTOR)}); }, ${START_DELAY_MS});\n`);
  fw = await spawnFramework(bed, await freePort(), { 'executor-idle-timeout': '60s', 'executor-main': slow });
}, 120_000);

afterAll(async () => {
  await fw?.stop();
  await bed?.dispose();
});

const api = (method: string, path: string, body?: unknown): ReturnType<typeof callApi> => {
  if (!fw) throw new Error('no framework');
  return callApi(fw.httpUrl, fw.token, method, path, body);
};

const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> => waitFor(what, probe, timeoutMs, 100);

interface MasterTask { id: string; name: string; state: string }

async function executorTasks(): Promise<MasterTask[]> {
  const st = (await (await fetch(`${bed.cluster.masterUrl}/state`)).json()) as { frameworks?: { tasks?: MasterTask[]; completed_tasks?: MasterTask[] }[] };
  return (st.frameworks ?? []).flatMap((f) => [...(f.tasks ?? []), ...(f.completed_tasks ?? [])]).filter((t) => t.name.startsWith('locus executor'));
}

/** Host pids whose command line names the executor (its --executor-id flag). */
function processesOf(executorId: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(executorId);
    } catch {
      return false;
    }
  }).map(Number);
}

describe('deleting a volume whose executor is still starting', () => {
  it('releases that executor, and the volume is DELETED within seconds, the executor process gone', async () => {
    const created = await api('POST', '/v1/volumes', { name: 'starting', size: '32MiB', containerPath: 'data' });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    await until('the volume to be READY', async () => ((await api('GET', '/v1/volumes/starting')).json['state'] === 'READY' ? true : undefined), 30_000);

    const sub = await api('POST', '/v1/jobs', {
      name: 'on-starting', tasks: [{ command: ['sh', '-c', 'echo ran > v/file'] }],
      task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' }, volumes: [{ name: 'starting', path: 'v', mode: 'RW' }] },
    });
    expect(sub.status, JSON.stringify(sub.json)).toBe(201);
    const job = String(sub.json['id']);
    // Its executor is launched with the volume, and runs (for Mesos) while it has not registered.
    const launched = Date.now();
    const executor = await until('the executor task to run', async () => (await executorTasks()).find((t) => t.state === 'TASK_RUNNING'), 15_000);
    await until('the executor process', async () => (processesOf(executor.id).length > 0 ? true : undefined), 5_000);

    expect((await api('POST', `/v1/jobs/${job}/cancel`)).status).toBeLessThan(300);
    const asked = Date.now();
    // The cancelled attempt (held for the executor that has not registered) ends a moment after the job.
    const del = await until('the delete to be accepted', async () => {
      const d = await api('DELETE', '/v1/volumes/starting');
      return d.status === 202 || d.status === 200 ? d : undefined;
    }, 5_000);
    expect(del.json).toMatchObject({ deleteRequested: true });

    await until('the volume to be DELETED', async () => ((await api('GET', '/v1/volumes/starting')).json['state'] === 'DELETED' ? true : undefined), 10_000)
      .catch(async (err: unknown) => {
        throw new Error(`${String(err)}; volume: ${JSON.stringify((await api('GET', '/v1/volumes/starting')).json)}; executor tasks: ${JSON.stringify(await executorTasks())}`);
      });
    expect(Date.now() - asked).toBeLessThan(10_000);
    // All of it while the executor was still starting: it never registered, and never ran the task.
    expect(Date.now() - launched).toBeLessThan(START_DELAY_MS);
    expect((await executorTasks()).find((t) => t.id === executor.id)?.state).toBe('TASK_KILLED');
    expect(await until('the executor process to end', async () => (processesOf(executor.id).length === 0 ? true : undefined), 5_000)).toBe(true);
  }, 90_000);
});
