/**
 * The local cluster's control API for failure tests, in-process and over
 * its HTTP routes (`POST /local/v1/...`): an operation delay holds RESERVE
 * and CREATE back — their UPDATE_OPERATION_STATUS comes after the delay and
 * `/slaves` shows the change only then — and a heartbeat pause silences
 * HEARTBEAT events for its length; plus the routes' error answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, frameworkInfo, nextNew, offersOf, subscribe, subscribeCall, testCluster, type Ev, type Offer, type Sub } from './local-helpers.js';

const reservation = [{ type: 'DYNAMIC', role: 'locus', principal: 'control-test' }];
const scalar = (name: string, value: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name, type: 'SCALAR', scalar: { value }, ...extra });

interface SlavesJson {
  slaves: { id: string; reserved_resources_full: Record<string, { name: string; scalar?: { value: number }; disk?: { persistence?: { id: string } } }[]> }[];
}

describe('local cluster: control API', () => {
  let env: Awaited<ReturnType<typeof testCluster>>;
  let sub: Sub;
  let url: string;
  let harvested = 0;
  const held = new Map<string, Offer>();

  const control = async (path: string, body?: unknown, method = 'POST'): Promise<{ status: number; body: string }> => {
    const r = await fetch(`${url}/local/v1/${path}`, { method, ...(body !== undefined ? { headers: { 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });
    return { status: r.status, body: await r.text() };
  };
  /** An offer matching pred (offers made while an operation was held back may lack its result). */
  async function offer(pred: (o: Offer) => boolean = () => true): Promise<Offer> {
    for (let i = 0; i < 20; i++) {
      for (; harvested < sub.events.length; harvested++) {
        const e = sub.events[harvested] as Ev;
        if (e.type === 'OFFERS') for (const o of offersOf(e)) held.set(o.id.value, o);
        if (e.type === 'RESCIND') held.delete((e['rescind'] as { offer_id: { value: string } }).offer_id.value);
      }
      const o = [...held.values()].find(pred);
      if (o) { held.delete(o.id.value); return o; }
      for (const x of held.values()) await call(url, sub.streamId, { type: 'DECLINE', framework_id: { value: sub.frameworkId }, decline: { offer_ids: [x.id], filters: { refuse_seconds: 0 } } });
      held.clear();
      await call(url, sub.streamId, { type: 'REVIVE', framework_id: { value: sub.frameworkId } });
      await nextNew(sub, (x) => x.type === 'OFFERS', 1000, 'offers').catch(() => undefined);
    }
    throw new Error('no offer');
  }
  const opStatus = (id: string, timeoutMs: number): Promise<Ev> =>
    sub.next((e) => e.type === 'UPDATE_OPERATION_STATUS' && (e['update_operation_status'] as { status: { operation_id: { value: string } } }).status.operation_id.value === id, timeoutMs, `operation ${id}`);
  const slaves = async (): Promise<SlavesJson> => (await (await fetch(`${url}/slaves`)).json()) as SlavesJson;
  const reservedCpus = (s: SlavesJson): number => (s.slaves[0]?.reserved_resources_full['locus'] ?? []).filter((r) => r.name === 'cpus').reduce((n, r) => n + (r.scalar?.value ?? 0), 0);
  const hasVolume = (s: SlavesJson): boolean => (s.slaves[0]?.reserved_resources_full['locus'] ?? []).some((r) => r.disk?.persistence?.id === 'ctl-vol');
  const accept = async (o: Offer, operations: unknown[]): Promise<void> => {
    const r = await call(url, sub.streamId, { type: 'ACCEPT', framework_id: { value: sub.frameworkId }, accept: { offer_ids: [o.id], operations, filters: { refuse_seconds: 0 } } });
    expect(r.status).toBe(202);
  };

  beforeAll(async () => {
    env = await testCluster({ agents: 1 });
    url = env.cluster.masterUrl;
    sub = await subscribe(url, subscribeCall(frameworkInfo('control', { principal: 'control-test' })));
  });
  afterAll(async () => {
    sub.close();
    await env.dispose();
  });

  it('delays RESERVE (set over HTTP): its status and /slaves change only after the delay', async () => {
    expect(await control('operation-delay', { ms: 800 })).toEqual({ status: 200, body: '{"ok":true}' });
    const o = await offer();
    const t0 = Date.now();
    await accept(o, [{ type: 'RESERVE', id: { value: 'ctl-reserve' }, reserve: { resources: [scalar('cpus', 0.5, { reservations: reservation }), scalar('disk', 32, { reservations: reservation })] } }]);
    // Well inside the delay nothing has happened yet.
    await new Promise((r) => setTimeout(r, 300));
    expect(sub.events.some((e) => e.type === 'UPDATE_OPERATION_STATUS')).toBe(false);
    expect(reservedCpus(await slaves())).toBe(0);
    const done = await opStatus('ctl-reserve', 3000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(750);
    expect((done['update_operation_status'] as { status: { state: string } }).status.state).toBe('OPERATION_FINISHED');
    expect(reservedCpus(await slaves())).toBe(0.5);
  });

  it('delays CREATE (set in-process), then applies operations at once when the delay is back to 0', async () => {
    env.cluster.control.setOperationDelay(600);
    const o = await offer((x) => x.resources.some((r) => r.name === 'disk' && (r.reservations ?? []).length > 0));
    const t0 = Date.now();
    await accept(o, [{ type: 'CREATE', id: { value: 'ctl-create' }, create: { volumes: [{ ...scalar('disk', 32, { reservations: reservation }), disk: { persistence: { id: 'ctl-vol', principal: 'control-test' }, volume: { mode: 'RW', container_path: 'data' } } }] } }]);
    await new Promise((r) => setTimeout(r, 200));
    expect(hasVolume(await slaves())).toBe(false);
    const done = await opStatus('ctl-create', 3000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
    expect((done['update_operation_status'] as { status: { state: string } }).status.state).toBe('OPERATION_FINISHED');
    expect(hasVolume(await slaves())).toBe(true);

    env.cluster.control.setOperationDelay(0);
    const o2 = await offer((x) => x.resources.some((r) => r.disk?.persistence?.id === 'ctl-vol'));
    const t1 = Date.now();
    await accept(o2, [{ type: 'DESTROY', id: { value: 'ctl-destroy' }, destroy: { volumes: [{ ...scalar('disk', 32, { reservations: reservation }), disk: { persistence: { id: 'ctl-vol', principal: 'control-test' }, volume: { mode: 'RW', container_path: 'data' } } }] } }]);
    await opStatus('ctl-destroy', 3000);
    expect(Date.now() - t1).toBeLessThan(500);
    expect(hasVolume(await slaves())).toBe(false);
  });

  it('pauses HEARTBEAT events for the pause, in-process and over HTTP, and resumes them', async () => {
    // Heartbeats flow every second (the test cluster's interval).
    await nextNew(sub, (e) => e.type === 'HEARTBEAT', 2500, 'a heartbeat before the pause');
    for (const pause of [() => { env.cluster.control.pauseHeartbeats(1500); return Promise.resolve(); }, async () => { expect((await control('pause-heartbeats', { ms: 1500 })).status).toBe(200); }]) {
      await pause();
      const from = sub.events.length;
      // Unpaused, a 1.3 s window always holds a heartbeat at a 1 s interval.
      await new Promise((r) => setTimeout(r, 1300));
      expect(sub.events.slice(from).filter((e) => e.type === 'HEARTBEAT')).toEqual([]);
      await nextNew(sub, (e) => e.type === 'HEARTBEAT', 2500, 'a heartbeat after the pause');
    }
  });

  it('answers bad control calls', async () => {
    expect((await control('operation-delay', undefined, 'GET')).status).toBe(405);
    expect(await control('operation-delay', '{')).toEqual({ status: 400, body: 'body must be JSON' });
    expect((await control('no-such-thing', {})).status).toBe(404);
    expect(await control('agents/agent-9/stop', {})).toEqual({ status: 404, body: "no agent named 'agent-9'" });
  });
});
