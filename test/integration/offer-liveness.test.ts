/**
 * Liveness with mixed work, on the embedded local cluster over real HTTP with
 * a real redis-server: a volume that can never be placed, a job too large
 * for any agent, and ordinary jobs submitted after them all finish promptly;
 * a volume DELETE sent while the framework idles is carried out; a job
 * submitted to an idle (suppressed) framework starts at once. Each of these
 * once waited out a 120 s decline filter (or for ever) while agents sat idle.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBed, startInProcess, type Bed } from './framework-harness.js';
import type { RunningFramework } from '../../src/app/framework.js';

let bed: Bed;
let fw: RunningFramework;

beforeAll(async () => {
  bed = await startBed();
  // Executors go away soon after they idle, so the framework really reaches its idle state.
  fw = await startInProcess(bed, { 'executor-idle-timeout': '2s' });
}, 120_000);

afterAll(async () => {
  await fw?.stop();
  await bed?.dispose();
});

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${fw.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${fw.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function volumeState(name: string): Promise<string> {
  const v = await api('GET', `/v1/volumes/${name}`);
  return v.status === 404 ? 'GONE' : String(v.json['state']);
}

async function submit(spec: unknown): Promise<string> {
  const r = await api('POST', '/v1/jobs', spec);
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return String(r.json['id']);
}

async function jobDone(id: string, timeoutMs: number): Promise<string> {
  return waitFor(`job ${id} finishing`, timeoutMs, async () => {
    const j = await api('GET', `/v1/jobs/${id}`);
    const state = String(j.json['state']);
    return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(state) ? state : undefined;
  }).catch(async (err: unknown) => {
    const why = await api('GET', `/v1/tasks/${id}.0.0/explain`);
    throw new Error(`${String(err)}; task 0: ${JSON.stringify(why.json)}`);
  });
}

const ordinary = (name: string): unknown => ({
  name, tasks: [{ command: ['true'] }], task: { command: ['true'], resources: { cpus: 0.5, mem: '64MiB', disk: '16MiB' } },
});

describe('offer cycle liveness with mixed work', () => {
  it('an unplaceable volume and a job too large for any agent hold back no other work', async () => {
    // A volume placed before the trouble starts, to delete later while the framework idles.
    expect((await api('POST', '/v1/volumes', { name: 'keep', size: '32MiB', containerPath: 'data' })).status).toBe(201);
    await waitFor('volume keep READY', 30_000, async () => ((await volumeState('keep')) === 'READY' ? true : undefined));

    // No agent has this rack: the volume waits for ever, and keeps volume work pending.
    const stuck = await api('POST', '/v1/volumes', {
      name: 'noagent', size: '64MiB', containerPath: 'data', constraints: [{ attribute: 'rack', op: 'EQ', value: 'no-such-rack' }],
    });
    expect(stuck.status, JSON.stringify(stuck.json)).toBe(201);
    // Let the offers of every agent come and be declined while only unplaceable work waits.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await volumeState('noagent')).toBe('REQUESTED');

    // Agents have 4 cpus: 64 never fits anywhere.
    const huge = await submit({ name: 'huge', tasks: [{ command: ['true'] }], task: { command: ['true'], resources: { cpus: 64, mem: '64MiB', disk: '16MiB' } } });
    const started = Date.now();
    const ids = [await submit(ordinary('one')), await submit(ordinary('two')), await submit(ordinary('three'))];
    for (const id of ids) expect(await jobDone(id, 20_000)).toBe('SUCCEEDED');
    // Promptly: well inside the 120 s an idle decline filter lasts.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect((await api('GET', `/v1/jobs/${huge}`)).json['state']).toBe('RUNNING');

    // Idle: the executors are released (2 s) and offers are declined again; then a DELETE.
    await waitFor('executors released', 30_000, async () => {
      const c = await api('GET', '/v1/cluster');
      const ex = (c.json['executors'] as { state: string }[] | undefined) ?? [];
      return ex.every((e) => e.state === 'GONE') ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 1500));
    const del = await api('DELETE', '/v1/volumes/keep');
    expect(del.status, JSON.stringify(del.json)).toBeLessThan(300);
    const deletedAt = Date.now();
    await waitFor('volume keep deleted', 20_000, async () => (['DELETED', 'GONE'].includes(await volumeState('keep')) ? true : undefined));
    expect(Date.now() - deletedAt).toBeLessThan(20_000);

    // Clear the unplaceable work; then the framework has nothing at all to do (it suppresses).
    expect((await api('DELETE', '/v1/volumes/noagent')).status).toBeLessThan(300);
    expect((await api('POST', `/v1/jobs/${huge}/cancel`)).status).toBeLessThan(300);
    await new Promise((r) => setTimeout(r, 1500));
    const late = Date.now();
    expect(await jobDone(await submit(ordinary('after-idle')), 15_000)).toBe('SUCCEEDED');
    expect(Date.now() - late).toBeLessThan(15_000);
  }, 180_000);
});
