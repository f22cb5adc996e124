/**
 * The master's side of the agent protocol (src/local/agent-protocol.ts),
 * spoken by hand over real HTTP: registration and its refusals, tokens,
 * a status update retried after a lost answer taken once, and heartbeats
 * that keep an agent alive while silence loses it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ack, call, frameworkInfo, isUpdate, offersOf, statusOf, subscribe, subscribeCall, testCluster, type Sub } from './local-helpers.js';

const API = '/local/v1/agent-api';

async function post(url: string, body: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...(token !== undefined ? { Authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try { json = JSON.parse(text) as Record<string, unknown>; } catch { json = undefined; }
  return { status: res.status, json };
}

const registration = (hostname: string, agentId?: string): Record<string, unknown> => ({
  ...(agentId !== undefined ? { agentId } : {}),
  hostname, rack: 'r1', attributes: { zone: 'a' },
  resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 1 } }, { name: 'mem', type: 'SCALAR', scalar: { value: 256 } }],
  // Nothing listens there: the master's control calls fail, which this test does not need.
  ip: '127.0.0.1', port: 9, url: 'http://127.0.0.1:9', dataDir: '/nonexistent/data',
  liveTasks: [], orphanedTasks: [], executors: [],
});

describe('local master: the agent protocol by hand', () => {
  let bed: Awaited<ReturnType<typeof testCluster>>;
  let sub: Sub | undefined;

  beforeAll(async () => {
    bed = await testCluster({ agents: 0, agentPingIntervalSeconds: 1, agentPingTimeoutSeconds: 2 });
  });

  afterAll(async () => {
    sub?.close();
    await bed.dispose();
  });

  it('registers, refuses a second agent of the same name and stale tokens, takes a retried update once, and loses a silent agent', async () => {
    const base = bed.cluster.masterUrl;
    const reg = await post(`${base}${API}/register`, registration('fake-1'));
    expect(reg.status).toBe(200);
    const agentId = String(reg.json?.['agentId']);
    const token = String(reg.json?.['token']);
    expect(reg.json?.['pingIntervalSeconds']).toBe(1);
    expect((await post(`${base}${API}/register`, registration('fake-1'))).status).toBe(409);
    expect((await post(`${base}${API}/register`, { hostname: 'bad' })).status).toBe(400);
    expect((await post(`${base}${API}/${agentId}/heartbeat`, { executors: [] }, 'wrong')).status).toBe(401);
    expect((await post(`${base}${API}/no-such-agent/heartbeat`, { executors: [] }, token)).status).toBe(404);

    // Heartbeats keep it alive through several ping timeouts.
    const beat = setInterval(() => { void post(`${base}${API}/${agentId}/heartbeat`, { executors: [] }, token).catch(() => undefined); }, 300);
    try {
      sub = await subscribe(base, subscribeCall(frameworkInfo('protocol')));
      const s = sub;
      const offer = offersOf(await s.next((e) => e.type === 'OFFERS', 10_000, 'an offer'))[0];
      if (!offer) throw new Error('no offer');
      expect(offer.hostname).toBe('fake-1');
      expect(offer.url?.address.port).toBe(9);
      expect((await call(base, s.streamId, {
        type: 'ACCEPT', framework_id: { value: s.frameworkId },
        accept: { offer_ids: [offer.id], operations: [{ type: 'LAUNCH', launch: { task_infos: [{ name: 't', task_id: { value: 't' }, agent_id: offer.agent_id, resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 }, allocation_info: { role: 'locus' } }], command: { value: 'true' } }] } }] },
      })).status).toBe(202);

      // The agent's update, posted twice as after a lost answer: the framework hears it once.
      const uuid = Buffer.alloc(16, 7).toString('base64');
      const status = { task_id: { value: 't' }, state: 'TASK_RUNNING', source: 'SOURCE_EXECUTOR', agent_id: { value: agentId }, uuid, timestamp: Date.now() / 1000 };
      expect((await post(`${base}${API}/${agentId}/status`, { frameworkId: s.frameworkId, status }, token)).status).toBe(200);
      expect((await post(`${base}${API}/${agentId}/status`, { frameworkId: s.frameworkId, status }, token)).status).toBe(200);
      const first = await s.next(isUpdate('t', 'TASK_RUNNING'), 5000, 'the update');
      expect(statusOf(first).uuid).toBe(uuid);
      await ack(base, s, first);
      // A duplicate would be the next head and be sent within the 1 s retry interval.
      await new Promise((r) => setTimeout(r, 2500));
      expect(s.events.filter(isUpdate('t')).length).toBe(1);
    } finally {
      clearInterval(beat);
    }

    // Silence: lost after the ping timeout, and told to register again.
    const s = sub;
    await s.next(isUpdate('t', 'TASK_UNREACHABLE'), 10_000, 'the task unreachable');
    // The offers made before the agent returns; taken now, because the first offer after its
    // return can arrive before the next lines have run (it did under load).
    const used = new Set(s.events.filter((e) => e.type === 'OFFERS').flatMap((e) => offersOf(e).map((o) => o.id.value)));
    expect((await post(`${base}${API}/${agentId}/heartbeat`, { executors: [] }, token)).status).toBe(404);
    const again = await post(`${base}${API}/register`, registration('fake-1', agentId));
    expect(again.status).toBe(200);
    expect(again.json?.['agentId']).toBe(agentId);
    expect(again.json?.['token']).not.toBe(token);
    expect((await post(`${base}${API}/${agentId}/heartbeat`, { executors: [] }, token)).status).toBe(401);

    // A task whose launch never reached the agent is dropped when the agent registers without it.
    const token2 = String(again.json?.['token']);
    const beat2 = setInterval(() => { void post(`${base}${API}/${agentId}/heartbeat`, { executors: [] }, token2).catch(() => undefined); }, 300);
    try {
      const offer = offersOf(await s.next((e) => e.type === 'OFFERS' && offersOf(e).some((o) => !used.has(o.id.value)), 10_000, 'an offer after the return'))[0];
      if (!offer) throw new Error('no offer');
      expect((await call(base, s.streamId, {
        type: 'ACCEPT', framework_id: { value: s.frameworkId },
        accept: { offer_ids: [offer.id], operations: [{ type: 'LAUNCH', launch: { task_infos: [{ name: 't2', task_id: { value: 't2' }, agent_id: offer.agent_id, resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 }, allocation_info: { role: 'locus' } }], command: { value: 'true' } }] } }] },
      })).status).toBe(202);
      // The control call to port 9 fails after its retries (well under 3 s).
      await new Promise((r) => setTimeout(r, 3000));
      expect(s.events.filter(isUpdate('t2')).length).toBe(0);
      expect((await post(`${base}${API}/register`, registration('fake-1', agentId))).status).toBe(200);
      const dropped = statusOf(await s.next(isUpdate('t2', 'TASK_DROPPED'), 5000, 't2 dropped'));
      expect(dropped.message).toBe('Task is unknown to the agent');
    } finally {
      clearInterval(beat2);
    }
  }, 60_000);
});
