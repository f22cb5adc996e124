/**
 * Deleting a volume right after the job that mounted it ended, on the local
 * cluster with real Redis: the executor that ran the job keeps the volume
 * (Mesos attaches it to the executor's container) until executor-idle-timeout,
 * left long here (60 s). The delete is accepted at once, that executor is
 * released, and the volume is DESTROYed and UNRESERVEd within seconds. A
 * volume a running task mounts, or a waiting job is pinned to, is refused
 * 409 IN_USE saying which; a job naming a volume being deleted is refused.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBed, spawnFramework, type Bed, type FrameworkProc } from './framework-harness.js';
import { LOCUS_CLI } from '../harness/build.js';
import { freePort } from '../harness/ports.js';
import { waitFor } from '../harness/wait.js';

let bed: Bed;
let fw: FrameworkProc | undefined;

beforeAll(async () => {
  bed = await startBed({ agents: 1, files: 1 });
  // The default idle timeout: without the release a delete would wait a minute for it.
  fw = await spawnFramework(bed, await freePort(), { 'executor-idle-timeout': '60s' });
}, 120_000);

afterAll(async () => {
  await fw?.stop();
  await bed?.dispose();
});

interface Answer { status: number; json: Record<string, unknown> }

async function api(method: string, path: string, body?: unknown): Promise<Answer> {
  if (!fw) throw new Error('no framework');
  const res = await fetch(`${fw.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${fw.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> => waitFor(what, probe, timeoutMs, 100);

async function volumeIn(name: string, states: readonly string[], timeoutMs: number): Promise<Record<string, unknown>> {
  let last: unknown;
  try {
    return await until(`volume ${name} ${states.join('|')}`, async () => {
      const v = await api('GET', `/v1/volumes/${name}`);
      last = v.json;
      return states.includes(String(v.json['state'])) ? v.json : undefined;
    }, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

async function createVolume(name: string): Promise<string> {
  const created = await api('POST', '/v1/volumes', { name, size: '32MiB', containerPath: 'data' });
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  return String((await volumeIn(name, ['READY'], 30_000))['id']);
}

const spec = (name: string, volume: string, cmd: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name, ...extra, tasks: [{ command: ['sh', '-c', cmd] }],
  task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' }, volumes: [{ name: volume, path: 'v', mode: 'RW' }] },
});

async function submit(body: Record<string, unknown>): Promise<string> {
  const sub = await api('POST', '/v1/jobs', body);
  expect(sub.status, JSON.stringify(sub.json)).toBe(201);
  return String(sub.json['id']);
}

async function jobEnds(id: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  return await until(`job ${id} to end`, async () => {
    const j = await api('GET', `/v1/jobs/${id}`);
    return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(String(j.json['state'])) ? j.json : undefined;
  }, timeoutMs);
}

async function persistenceIdsInMaster(): Promise<string[]> {
  const s = (await (await fetch(`${bed.cluster.masterUrl}/slaves`)).json()) as { slaves: { reserved_resources_full?: Record<string, { disk?: { persistence?: { id: string } } }[]> }[] };
  return s.slaves.flatMap((a) => Object.values(a.reserved_resources_full ?? {}).flat()).map((r) => r.disk?.persistence?.id).filter((x): x is string => typeof x === 'string');
}

async function cli(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, [LOCUS_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
  p.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const status = await new Promise<number | null>((resolve) => p.once('close', (code) => resolve(code)));
  return { status, stdout, stderr };
}

const errorOf = (a: Answer): { code?: string; message?: string } => (a.json['error'] ?? {}) as { code?: string; message?: string };

describe('deleting a volume its idle executor still holds', () => {
  it('is accepted right after the job ended, and the volume is DELETED within seconds', async () => {
    const id = await createVolume('after-job');
    const job = await submit(spec('write-after-job', 'after-job', 'echo kept > v/file'));
    expect((await jobEnds(job))['state']).toBe('SUCCEEDED');
    // The executor that ran it idles and keeps the volume (60 s idle timeout).
    expect((await api('GET', '/v1/volumes/after-job')).json['state']).toBe('IN_USE');

    const asked = Date.now();
    const del = await api('DELETE', '/v1/volumes/after-job');
    // Answered as a delete of a READY volume is: 202, teardown under way.
    expect(del.status, JSON.stringify(del.json)).toBe(202);
    expect(del.json).toMatchObject({ deleteRequested: true });
    // A job naming it now is refused: its tasks could never run.
    const late = await api('POST', '/v1/jobs', spec('too-late', 'after-job', 'true'));
    expect(late.status, JSON.stringify(late.json)).toBe(400);
    expect(errorOf(late).message).toMatch(/after-job.*(being deleted|DESTROYING|UNRESERVING|DELETED)|no volume 'after-job'/);

    await volumeIn('after-job', ['DELETED'], 15_000);
    expect(Date.now() - asked).toBeLessThan(15_000);
    expect(await persistenceIdsInMaster()).not.toContain(id);
  }, 120_000);

  it('is refused IN_USE while a task that mounts it runs, and accepted once that job is cancelled', async () => {
    await createVolume('running');
    const job = await submit(spec('hold-running', 'running', 'echo started; sleep 60'));
    // Its command runs (not only its attempt queued on an executor still starting).
    await until('the task to run', async () => {
      const res = await fetch(`${fw?.httpUrl ?? ''}/v1/tasks/${job}.0.0/logs`, { headers: { authorization: `Bearer ${fw?.token ?? ''}` } });
      return res.status === 200 && (await res.text()).includes('started') ? true : undefined;
    }, 30_000);
    const busy = await api('DELETE', '/v1/volumes/running?force=true');
    expect(busy.status, JSON.stringify(busy.json)).toBe(409);
    expect(errorOf(busy).code).toBe('IN_USE');
    expect(errorOf(busy).message).toMatch(new RegExp(`task ${job.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.0\\.0 mounts it and is running`));
    expect((await api('GET', '/v1/volumes/running')).json).toMatchObject({ state: 'IN_USE', deleteRequested: false });

    expect((await api('POST', `/v1/jobs/${job}/cancel`)).status).toBeLessThan(300);
    await jobEnds(job);
    // The cancelled attempt's end is recorded a moment after the job's state: retry briefly.
    const accepted = await until('the delete to be accepted', async () => {
      const d = await api('DELETE', '/v1/volumes/running');
      return d.status === 202 || d.status === 200 ? d : undefined;
    }, 10_000);
    expect(accepted.json).toMatchObject({ deleteRequested: true });
    await volumeIn('running', ['DELETED'], 15_000);
  }, 120_000);

  it('is refused naming a job that waits for it; once that job is cancelled, `locus volumes rm` deletes it and waits', async () => {
    await createVolume('waited');
    const first = await submit(spec('use-waited', 'waited', 'true'));
    expect((await jobEnds(first))['state']).toBe('SUCCEEDED');
    // Pinned to the volume and to a host that does not exist: it waits (pending) for ever.
    const stuck = await submit(spec('stuck-on-waited', 'waited', 'true', { constraints: [{ hostname: 'no-such-host' }] }));
    await until('the stuck job to wait', async () => {
      const why = await api('GET', `/v1/tasks/${stuck}.0.0/explain`);
      return why.json['state'] === 'PENDING' ? true : undefined;
    }, 30_000);
    const refused = await api('DELETE', '/v1/volumes/waited');
    expect(refused.status, JSON.stringify(refused.json)).toBe(409);
    expect(errorOf(refused).code).toBe('IN_USE');
    expect(errorOf(refused).message).toContain(`job ${stuck} (1 task) waits to run tasks that mount it`);
    // Refused, so nothing changed: the job still waits, the volume still stands.
    expect((await api('GET', `/v1/jobs/${stuck}`)).json['state']).toBe('RUNNING');
    expect((await api('GET', '/v1/volumes/waited')).json).toMatchObject({ deleteRequested: false });

    expect((await api('POST', `/v1/jobs/${stuck}/cancel`)).status).toBeLessThan(300);
    const started = Date.now();
    // Not spawnSync: the local cluster's master runs in this process and must go on answering.
    const rm = await cli(['volumes', 'rm', 'waited', '--server', fw?.httpUrl ?? '', '--token', fw?.token ?? '', '--timeout', '30s']);
    expect(rm.status, `${rm.stdout}\n${rm.stderr}`).toBe(0);
    // It waited for the teardown, saying what it waited for, and did not wait out the idle timeout.
    expect(rm.stderr).toMatch(/volume waited: IN_USE .*releasing executor/);
    expect(rm.stderr).toMatch(/volume waited: DELETED/);
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 120_000);
});
