import { fileURLToPath } from 'node:url';
/**
 * Reservations and persistent volumes on the local cluster over raw HTTP:
 * RESERVE + CREATE with operation feedback, the volume offered back like
 * the genuine master, a task writing into it, the genuine master's rules
 * (no volume on unreserved disk, no unreserve under a volume, no destroy
 * while in use), DESTROY + UNRESERVE, /slaves, and a restart with the same
 * work dir keeping agent ids, reservations and volume data.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ack, call, eventually, frameworkInfo, isUpdate, nextNew, offersOf, scalarOf, statusOf, subscribe, subscribeCall, testCluster, type Ev, type Offer, type Res, type Sub } from './local-helpers.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/mesos-1.12', import.meta.url));
const label = { labels: [{ key: 'locus.volume', value: 'vol-1' }] };
const reservation = [{ type: 'DYNAMIC', role: 'locus', principal: 'locus-test', labels: label }];
const scalar = (name: string, value: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name, type: 'SCALAR', scalar: { value }, ...extra });
const volume = { ...scalar('disk', 64, { reservations: reservation }), disk: { persistence: { id: 'vol-1', principal: 'locus-test' }, volume: { mode: 'RW', container_path: 'data' } } };

function shape(v: unknown, path = ''): string[] {
  if (Array.isArray(v)) return v.length === 0 ? [`${path}[]`] : [...new Set(v.flatMap((x) => shape(x, `${path}[]`)))];
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => shape(x, path === '' ? k : `${path}.${k}`));
  return [`${path}:${typeof v}`];
}

describe('local cluster: reservations and volumes', () => {
  let env: Awaited<ReturnType<typeof testCluster>>;
  let sub: Sub;
  let url: string;
  afterAll(async () => {
    sub?.close();
    await env?.dispose();
  });

  let harvested = 0;
  let held = new Map<string, Offer>();
  const harvest = (): void => {
    for (; harvested < sub.events.length; harvested++) {
      const e = sub.events[harvested] as Ev;
      if (e.type === 'OFFERS') for (const o of offersOf(e)) held.set(o.id.value, o);
      if (e.type === 'RESCIND') held.delete((e['rescind'] as { offer_id: { value: string } }).offer_id.value);
    }
  };
  /** An offer matching pred; offers that do not match are declined so the resources come back. */
  async function freshOffer(pred: (o: Offer) => boolean = () => true): Promise<Offer> {
    for (let i = 0; i < 30; i++) {
      harvest();
      const o = [...held.values()].find(pred);
      if (o) { held.delete(o.id.value); return o; }
      for (const x of held.values()) await call(url, sub.streamId, { type: 'DECLINE', framework_id: { value: sub.frameworkId }, decline: { offer_ids: [x.id], filters: { refuse_seconds: 0 } } });
      held.clear();
      const start = sub.events.length;
      await call(url, sub.streamId, { type: 'REVIVE', framework_id: { value: sub.frameworkId } });
      await sub.next((x) => sub.events.indexOf(x) >= start && x.type === 'OFFERS', 1500, 'offers').catch(() => undefined);
    }
    throw new Error('no matching offer');
  }
  const resetOffers = (): void => { harvested = 0; held = new Map(); };
  const accept = (o: Offer, operations: unknown[]): Promise<{ status: number }> =>
    call(url, sub.streamId, { type: 'ACCEPT', framework_id: { value: sub.frameworkId }, accept: { offer_ids: [o.id], operations, filters: { refuse_seconds: 0 } } });
  const opStatus = (id: string): Promise<Ev> => sub.next((e) => e.type === 'UPDATE_OPERATION_STATUS' && (e['update_operation_status'] as { status: { operation_id: { value: string } } }).status.operation_id.value === id, 4000, `operation ${id}`);
  const statusBody = (e: Ev): { state: string; message?: string; uuid?: { value: string }; agent_id?: { value: string } } => (e['update_operation_status'] as { status: { state: string; message?: string; uuid?: { value: string }; agent_id?: { value: string } } }).status;
  const hasVolume = (o: Offer): boolean => o.resources.some((r) => r.disk?.persistence?.id === 'vol-1');

  it('reserves and creates a volume with operation feedback, offered back as the genuine master does', async () => {
    env = await testCluster({ agents: 1 });
    url = env.cluster.masterUrl;
    sub = await subscribe(url, subscribeCall(frameworkInfo('volumes', { principal: 'locus-test' })));
    const o = await freshOffer();
    // Allocation info left out, as in the recorded genuine call: the master injects it.
    expect((await accept(o, [
      { type: 'RESERVE', id: { value: 'op-reserve-1' }, reserve: { resources: [scalar('disk', 64, { reservations: reservation }), scalar('cpus', 0.1, { reservations: reservation }), scalar('mem', 32, { reservations: reservation })] } },
      { type: 'CREATE', id: { value: 'op-create-1' }, create: { volumes: [volume] } },
    ])).status).toBe(202);
    const r1 = await opStatus('op-reserve-1');
    expect(shape(r1).sort()).toEqual(shape(JSON.parse(readFileSync(`${FIXTURES}/event-operation-status-1.json`, 'utf8'))).sort());
    expect(statusBody(r1)).toMatchObject({ state: 'OPERATION_FINISHED', agent_id: o.agent_id });
    const c1 = await opStatus('op-create-1');
    expect(statusBody(c1).state).toBe('OPERATION_FINISHED');
    for (const e of [r1, c1]) {
      const s = statusBody(e);
      expect((await call(url, sub.streamId, { type: 'ACKNOWLEDGE_OPERATION_STATUS', framework_id: { value: sub.frameworkId }, acknowledge_operation_status: { agent_id: s.agent_id, uuid: s.uuid?.value, operation_id: { value: 'x' } } })).status).toBe(202);
    }
    const volDir = `${env.workDir}/agents/agent-1/volumes/roles/locus/vol-1`;
    expect(existsSync(volDir)).toBe(true);
    const back = await freshOffer(hasVolume);
    const genuine = (JSON.parse(readFileSync(`${FIXTURES}/event-offers-with-volume.json`, 'utf8')) as { offers: { offers: { resources: unknown[] }[] } }).offers.offers[0];
    expect(shape(back.resources).sort()).toEqual(shape(genuine?.resources).sort());
    expect(back.resources.find((r) => r.disk?.persistence)).toEqual({ ...volume, allocation_info: { role: 'locus' } });
    expect(scalarOf(back.resources, 'cpus', (r) => r.reservations === undefined)).toBe(1.9);
    expect(scalarOf(back.resources, 'mem', (r) => r.reservations !== undefined)).toBe(32);
    const slaves = (await (await fetch(`${url}/slaves`)).json()) as { slaves: { reserved_resources_full: Record<string, Res[]>; reserved_resources: Record<string, Record<string, number>> }[] };
    expect(slaves.slaves[0]?.reserved_resources_full['locus']?.some((r) => r.disk?.persistence?.id === 'vol-1')).toBe(true);
    expect(slaves.slaves[0]?.reserved_resources['locus']).toMatchObject({ cpus: 0.1, mem: 32, disk: 64 });
    await call(url, sub.streamId, { type: 'DECLINE', framework_id: { value: sub.frameworkId }, decline: { offer_ids: [back.id], filters: { refuse_seconds: 0 } } });
  });

  it('applies the genuine rules: no volume on unreserved disk, no unreserve under a volume, no destroy in use', async () => {
    const o = await freshOffer(hasVolume);
    const plainVolume = { ...scalar('disk', 10), disk: { persistence: { id: 'bad' }, volume: { mode: 'RW', container_path: 'x' } } };
    await accept(o, [
      { type: 'CREATE', id: { value: 'op-bad-create' }, create: { volumes: [plainVolume] } },
      { type: 'UNRESERVE', id: { value: 'op-bad-unreserve' }, unreserve: { resources: [volume] } },
      { type: 'UNRESERVE', id: { value: 'op-bad-unreserve-2' }, unreserve: { resources: [scalar('disk', 64, { reservations: reservation })] } },
    ]);
    expect(statusBody(await opStatus('op-bad-create'))).toMatchObject({ state: 'OPERATION_ERROR', message: expect.stringContaining('Persistent volumes cannot be created from unreserved resources') as unknown });
    expect(statusBody(await opStatus('op-bad-unreserve')).message).toContain('cannot be unreserved directly. Please destroy the persistent volume first');
    expect(statusBody(await opStatus('op-bad-unreserve-2')).message).toContain('does not contain');
    // Launch a task on the volume; while it runs the volume cannot be destroyed.
    const o2 = await freshOffer(hasVolume);
    const taskRes = [scalar('cpus', 0.1, { reservations: reservation }), scalar('mem', 32, { reservations: reservation }), volume];
    await accept(o2, [{ type: 'LAUNCH', launch: { task_infos: [{ name: 'writer', task_id: { value: 'writer-1' }, agent_id: o2.agent_id, resources: taskRes, command: { shell: true, value: 'echo hello > data/hello.txt && sleep 30' } }] } }]);
    await ack(url, sub, await sub.next(isUpdate('writer-1', 'TASK_STARTING'), 5000));
    await ack(url, sub, await sub.next(isUpdate('writer-1', 'TASK_RUNNING'), 5000));
    const volFile = `${env.workDir}/agents/agent-1/volumes/roles/locus/vol-1/hello.txt`;
    await eventually(() => existsSync(volFile), 5000, 'the task to write into its volume');
    expect(readFileSync(volFile, 'utf8')).toBe('hello\n');
    const o3 = await freshOffer();
    await accept(o3, [{ type: 'DESTROY', id: { value: 'op-destroy-busy' }, destroy: { volumes: [volume] } }]);
    expect(statusBody(await opStatus('op-destroy-busy'))).toMatchObject({ state: 'OPERATION_ERROR', message: expect.stringContaining('Persistent volumes in use') as unknown });
    await call(url, sub.streamId, { type: 'KILL', framework_id: { value: sub.frameworkId }, kill: { task_id: { value: 'writer-1' } } });
    for (const st of ['TASK_KILLING', 'TASK_KILLED']) await ack(url, sub, await sub.next(isUpdate('writer-1', st), 5000));
  });

  it('keeps agent ids, reservations and volume data across a restart with the same work dir', async () => {
    const agentId = env.cluster.agents[0]?.id;
    const fid = sub.frameworkId;
    sub.close();
    const workDir = env.workDir;
    await env.cluster.stop();
    env = await testCluster({ agents: 1, workDir });
    url = env.cluster.masterUrl;
    expect(env.cluster.agents[0]?.id).toBe(agentId);
    const topo = JSON.parse(readFileSync(`${workDir}/topology.json`, 'utf8')) as { masterUrl: string; agents: { id: string; hostname: string; rack: string; url: string; dataDir: string }[] };
    expect(topo.masterUrl).toBe(url);
    expect(topo.agents[0]).toEqual({ id: agentId, hostname: 'agent-1', rack: 'r1', url: env.cluster.agents[0]?.url, dataDir: `${workDir}/agents/agent-1/data` });
    expect(existsSync(topo.agents[0]?.dataDir ?? '')).toBe(true);
    sub = await subscribe(url, subscribeCall(frameworkInfo('volumes', { principal: 'locus-test' }), fid));
    resetOffers();
    expect(sub.frameworkId).toBe(fid);
    const o = await freshOffer(hasVolume);
    expect(o.agent_id.value).toBe(agentId);
    expect(readFileSync(`${workDir}/agents/agent-1/volumes/roles/locus/vol-1/hello.txt`, 'utf8')).toBe('hello\n');
    // Destroy + unreserve (the recorded genuine call's shape): plain resources in the next offers.
    await accept(o, [
      { type: 'DESTROY', id: { value: 'op-destroy' }, destroy: { volumes: [{ ...volume, allocation_info: { role: 'locus' } }] } },
      { type: 'UNRESERVE', id: { value: 'op-unreserve' }, unreserve: { resources: [scalar('disk', 64, { reservations: reservation, allocation_info: { role: 'locus' } }), scalar('mem', 32, { reservations: reservation }), scalar('cpus', 0.1, { reservations: reservation })] } },
    ]);
    expect(statusBody(await opStatus('op-destroy')).state).toBe('OPERATION_FINISHED');
    expect(statusBody(await opStatus('op-unreserve')).state).toBe('OPERATION_FINISHED');
    expect(existsSync(`${workDir}/agents/agent-1/volumes/roles/locus/vol-1`)).toBe(false);
    const plain = await freshOffer();
    expect(plain.resources.some((r) => r.reservations !== undefined)).toBe(false);
    expect(scalarOf(plain.resources, 'cpus')).toBe(2);
    void nextNew;
    void statusOf;
  });
});
