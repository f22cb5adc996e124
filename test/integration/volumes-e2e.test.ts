/**
 * Persistent volumes end to end: the operator's HTTP API, the framework's
 * offer cycle on the embedded local cluster (RESERVE + CREATE, DESTROY +
 * UNRESERVE), jobs that write into a volume and read it back on its agent,
 * and failures (in-use delete, an agent stopped, a framework killed mid-operation).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBed, spawnFramework, type Bed, type FrameworkProc } from './framework-harness.js';
import { freePort } from '../harness/ports.js';

let bed: Bed;
let fw: FrameworkProc | undefined;
const FAST = { 'executor-idle-timeout': '2s' };

beforeAll(async () => {
  bed = await startBed();
  // Executors holding a volume are released soon after they idle, so the volume is free again.
  fw = await spawnFramework(bed, await freePort(), FAST);
}, 120_000);

afterAll(async () => {
  await fw?.stop();
  await bed?.dispose();
});

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  if (!fw) throw new Error('no framework');
  const res = await fetch(`${fw.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${fw.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function waitVolume(name: string, states: readonly string[], timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await api('GET', `/v1/volumes/${name}`);
    if (states.includes(String(v.json['state']))) return v.json;
    if (Date.now() > deadline) throw new Error(`volume ${name} is ${JSON.stringify(v.json)}, wanted ${states.join('|')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function runJob(spec: unknown): Promise<Record<string, unknown>> {
  const sub = await api('POST', '/v1/jobs', spec);
  expect(sub.status, JSON.stringify(sub.json)).toBe(201);
  const id = String(sub.json['id']);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const j = await api('GET', `/v1/jobs/${id}`);
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(String(j.json['state']))) return j.json;
    if (Date.now() > deadline) {
      const why = await api('GET', `/v1/tasks/${id}.0.0/explain`);
      throw new Error(`job ${id}: ${JSON.stringify(j.json)}; task 0: ${JSON.stringify(why.json)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface SlaveState { slaves: { id: string; hostname: string; reserved_resources_full?: Record<string, { name: string; disk?: { persistence?: { id: string } } }[]> }[] }

async function persistenceIdsInMaster(): Promise<string[]> {
  const s = (await (await fetch(`${bed.cluster.masterUrl}/slaves`)).json()) as SlaveState;
  return s.slaves.flatMap((a) => Object.values(a.reserved_resources_full ?? {}).flat()).map((r) => r.disk?.persistence?.id).filter((x): x is string => typeof x === 'string');
}

async function reservedDiskInMaster(): Promise<number> {
  const s = (await (await fetch(`${bed.cluster.masterUrl}/slaves`)).json()) as SlaveState;
  return s.slaves.flatMap((a) => Object.values(a.reserved_resources_full ?? {}).flat()).filter((r) => r.name === 'disk').length;
}

const task = (cmd: string): Record<string, unknown> => ({
  command: ['sh', '-c', cmd], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' }, volumes: [{ name: 'cache', path: 'cache', mode: 'RW' }],
});

describe('persistent volumes on the local cluster', () => {
  it('reserves a volume, lets one job write it and another read it back, refuses deleting it in use, then deletes it', async () => {
    const created = await api('POST', '/v1/volumes', { name: 'cache', size: '64MiB', containerPath: 'data' });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const ready = await waitVolume('cache', ['READY']);
    const id = String(ready['id']);
    // The master shows it as the genuine one does: reserved disk with a persistence id.
    expect(await persistenceIdsInMaster()).toContain(id);

    const writer = await runJob({ name: 'write-cache', tasks: [{ command: ['sh', '-c', 'echo hello-volume > cache/greeting && hostname > cache/host'] }], task: task('true') });
    expect(writer['state'], JSON.stringify(writer)).toBe('SUCCEEDED');
    const reader = await runJob({ name: 'read-cache', tasks: [{ command: ['sh', '-c', "cat cache/greeting > '{output}/got'; test -s '{output}/got'"] }], task: task('true') });
    expect(reader['state'], JSON.stringify(reader)).toBe('SUCCEEDED');
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(`${String(reader['outputDir'])}/main/00000/got`, 'utf8').trim()).toBe('hello-volume');
    // A task that mounts it read-only can write it neither where it asked for it nor at the path
    // the volume was reserved with (the executor's own mount of it): a task gets the volumes it
    // names, in the mode it names, and no other.
    const ro = { ...task('true'), volumes: [{ name: 'cache', path: 'cache', mode: 'RO' }] };
    const tamper = "for p in cache data; do echo tampered > $p/greeting 2>/dev/null && echo $p >> '{output}/wrote'; done; cat cache/greeting > '{output}/got'; true";
    const roReader = await runJob({ name: 'read-only-cache', tasks: [{ command: ['sh', '-c', tamper] }], task: ro });
    expect(roReader['state'], JSON.stringify(roReader)).toBe('SUCCEEDED');
    const { existsSync } = await import('node:fs');
    const roOut = `${String(roReader['outputDir'])}/main/00000`;
    expect(existsSync(`${roOut}/wrote`) ? readFileSync(`${roOut}/wrote`, 'utf8') : '').toBe('');
    expect(readFileSync(`${roOut}/got`, 'utf8').trim()).toBe('hello-volume');

    // In use while a job holds it.
    const sub = await api('POST', '/v1/jobs', { name: 'hold-cache', tasks: [{ command: ['sh', '-c', 'sleep 4'] }], task: task('true') });
    expect(sub.status).toBe(201);
    await waitVolume('cache', ['IN_USE']);
    const busy = await api('DELETE', '/v1/volumes/cache');
    expect(busy.status).toBe(409);
    expect((busy.json['error'] as { code: string }).code).toMatch(/IN_USE|CONFLICT/);

    // Once the job is done and its executor released, delete goes through DESTROY + UNRESERVE.
    await waitVolume('cache', ['READY'], 90_000);
    const del = await api('DELETE', '/v1/volumes/cache');
    expect(del.status).toBeLessThan(300);
    await waitVolume('cache', ['DELETED'], 60_000).catch(async () => {
      // A deleted volume may also simply be gone from the listing.
      const gone = await api('GET', '/v1/volumes/cache');
      expect(gone.status).toBe(404);
    });
    expect(await persistenceIdsInMaster()).not.toContain(id);
    expect(await reservedDiskInMaster()).toBe(0);
  }, 180_000);

  it('keeps a volume UNAVAILABLE while its agent is down and intact when it returns', async () => {
    const created = await api('POST', '/v1/volumes', { name: 'sticky', size: '32MiB', containerPath: 'data' });
    expect(created.status).toBe(201);
    const ready = await waitVolume('sticky', ['READY']);
    const host = String(ready['hostname'] ?? ready['agent'] ?? '');
    expect(host).toMatch(/^agent-/);
    const w = await runJob({ name: 'write-sticky', tasks: [{ command: ['sh', '-c', 'echo kept > v/file'] }], task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' }, volumes: [{ name: 'sticky', path: 'v', mode: 'RW' }] } });
    expect(w['state']).toBe('SUCCEEDED');
    await bed.cluster.control.stopAgent(host);
    await waitVolume('sticky', ['UNAVAILABLE'], 60_000);
    await bed.cluster.control.startAgent(host);
    await waitVolume('sticky', ['READY'], 60_000);
    const r = await runJob({ name: 'read-sticky', tasks: [{ command: ['sh', '-c', "cp v/file '{output}/file'"] }], task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' }, volumes: [{ name: 'sticky', path: 'v', mode: 'RO' }] } });
    expect(r['state'], JSON.stringify(r)).toBe('SUCCEEDED');
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(`${String(r['outputDir'])}/main/00000/file`, 'utf8').trim()).toBe('kept');
  }, 180_000);

  it('converges after the framework is killed during RESERVING and during DESTROYING', async () => {
    const port = Number(new URL(fw?.httpUrl ?? 'http://x:1').port);
    bed.cluster.control.setOperationDelay(1500);
    const created = await api('POST', '/v1/volumes', { name: 'crashy', size: '32MiB', containerPath: 'data' });
    expect(created.status).toBe(201);
    await waitVolume('crashy', ['RESERVING', 'CREATING']);
    await fw?.kill9();
    fw = await spawnFramework(bed, port, FAST);
    const ready = await waitVolume('crashy', ['READY'], 60_000);
    // One volume, one reservation: nothing duplicated by the crash.
    expect((await persistenceIdsInMaster()).filter((x) => x === ready['id'])).toHaveLength(1);

    const del = await api('DELETE', '/v1/volumes/crashy');
    expect(del.status).toBeLessThan(300);
    await waitVolume('crashy', ['DESTROYING', 'UNRESERVING', 'DELETED']);
    await fw?.kill9();
    fw = await spawnFramework(bed, port, FAST);
    bed.cluster.control.setOperationDelay(0);
    await waitVolume('crashy', ['DELETED'], 60_000).catch(async () => {
      expect((await api('GET', '/v1/volumes/crashy')).status).toBe(404);
    });
    expect(await persistenceIdsInMaster()).not.toContain(ready['id']);
  }, 180_000);
});
