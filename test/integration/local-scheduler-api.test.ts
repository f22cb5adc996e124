import { fileURLToPath } from 'node:url';
/**
 * The local master's scheduler API over raw HTTP with hand-written JSON,
 * checked against the recorded genuine Mesos 1.12 conversation: the
 * SUBSCRIBE stream, heartbeats, the master's answers to bad calls, offers
 * with allocation info, decline filters, SUPPRESS / REVIVE, rescinds, DRF.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, frameworkInfo, nextNew, offersOf, scalarOf, subscribe, subscribeCall, testCluster, type Ev, type Sub } from './local-helpers.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/mesos-1.12', import.meta.url));
const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(`${FIXTURES}/${name}`, 'utf8')) as Record<string, unknown>;

/** The key structure of a JSON value: every path to a leaf, without values. */
function shape(v: unknown, path = ''): string[] {
  if (Array.isArray(v)) return v.length === 0 ? [`${path}[]`] : [...new Set(v.flatMap((x) => shape(x, `${path}[]`)))];
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => shape(x, path === '' ? k : `${path}.${k}`));
  return [`${path}:${typeof v}`];
}

describe('local master: scheduler API', () => {
  let env: Awaited<ReturnType<typeof testCluster>>;
  const subs: Sub[] = [];
  beforeAll(async () => {
    env = await testCluster({ agents: 3, racks: 2, offerTimeoutSeconds: undefined });
  });
  afterAll(async () => {
    for (const s of subs) s.close();
    await env.dispose();
  });

  it('answers SUBSCRIBE with a chunked RecordIO stream shaped like the genuine master', async () => {
    const t0 = Date.now();
    const sub = await subscribe(env.cluster.masterUrl, subscribeCall(frameworkInfo('wire')));
    subs.push(sub);
    expect(sub.status).toBe(200);
    expect(sub.headers['content-type']).toBe('application/json');
    expect(sub.headers['transfer-encoding']).toBe('chunked');
    expect(sub.streamId).toMatch(/^[0-9a-f-]{36}$/);
    const subscribed = sub.events[0] as Ev;
    expect(shape(subscribed).sort()).toEqual(shape(fixture('event-subscribed.json')).sort());
    expect((subscribed['subscribed'] as { heartbeat_interval_seconds: number }).heartbeat_interval_seconds).toBe(1);
    // Heartbeat right after SUBSCRIBED, then every interval.
    await sub.next((e) => e.type === 'HEARTBEAT', 2000, 'first heartbeat');
    const offers = await sub.next((e) => e.type === 'OFFERS', 3000, 'offers');
    expect(Date.now() - t0).toBeLessThan(1500);
    const got = offersOf(offers);
    // Three agents, one offer each, within one allocation pass (or a couple).
    const all = [...got];
    while (new Set(all.map((o) => o.agent_id.value)).size < 3) all.push(...offersOf(await nextNew(sub, (e) => e.type === 'OFFERS', 2000)));
    const first = all[0];
    expect(first).toBeDefined();
    const genuine = (fixture('event-offers-unreserved.json')['offers'] as { offers: unknown[] }).offers[0];
    expect(shape(first).filter((p) => !p.startsWith('attributes')).sort()).toEqual(shape(genuine).sort());
    expect(new Set(all.map((o) => o.hostname))).toEqual(new Set(['agent-1', 'agent-2', 'agent-3']));
    for (const o of all) {
      expect(o.allocation_info).toEqual({ role: 'locus' });
      expect(o.resources.every((r) => r.allocation_info?.role === 'locus')).toBe(true);
      expect(scalarOf(o.resources, 'cpus')).toBe(2);
      expect(scalarOf(o.resources, 'mem')).toBe(4096);
      expect(o.resources.find((r) => r.name === 'ports')?.ranges?.range).toEqual([{ begin: 31000, end: 32000 }]);
      expect(o.url?.address.port).toBe(Number(new URL(env.cluster.agents.find((a) => a.hostname === o.hostname)?.url ?? '').port));
    }
    const racks = new Map(all.map((o) => [o.hostname, o.attributes?.find((a) => a.name === 'rack')?.text?.value]));
    expect(racks.get('agent-1')).toBe('r1');
    expect(racks.get('agent-2')).toBe('r2');
    expect(racks.get('agent-3')).toBe('r1');
    // Each record arrives in its own chunk.
    const firstChunk = sub.chunks[0]?.toString('utf8') ?? '';
    expect(firstChunk).toMatch(/^\d+\n\{"type":"SUBSCRIBED"/);
    const len = Number(firstChunk.split('\n')[0]);
    expect(Buffer.byteLength(firstChunk) - firstChunk.indexOf('\n') - 1).toBe(len);
    // Heartbeats keep coming.
    await nextNew(sub, (e) => e.type === 'HEARTBEAT', 2500, 'second heartbeat');
    // Decline everything for a long time so later tests see a quiet framework.
    for (const o of all) {
      const r = await call(env.cluster.masterUrl, sub.streamId, { type: 'DECLINE', framework_id: { value: sub.frameworkId }, decline: { offer_ids: [o.id], filters: { refuse_seconds: 600 } } });
      expect(r.status).toBe(202);
    }
  });

  it('answers bad calls with the genuine status codes and messages', async () => {
    const url = env.cluster.masterUrl;
    const sub = subs[0] as Sub;
    const fid = sub.frameworkId;
    const wrong = await call(url, 'not-the-stream-id', { type: 'REVIVE', framework_id: { value: fid } });
    expect(wrong).toEqual({ status: 400, body: (fixture('call-wrong-stream-id.json')['body'] as string).replace('b7072341-e820-45b7-b63b-36e54b536544-0000', fid) });
    const malformed = await call(url, sub.streamId, 'not json');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toBe(fixture('call-malformed-json.json')['body']);
    const unknownFw = await call(url, sub.streamId, { type: 'REVIVE', framework_id: { value: 'nope' } });
    expect(unknownFw).toEqual({ status: 400, body: 'Framework cannot be found' });
    const noFid = await call(url, sub.streamId, { type: 'REVIVE' });
    expect(noFid).toEqual({ status: 400, body: "Failed to validate scheduler::Call: Expecting 'framework_id' to be present" });
    const noStream = await call(url, undefined, { type: 'REVIVE', framework_id: { value: fid } });
    expect(noStream).toEqual({ status: 400, body: "All non-subscribe calls should include the 'Mesos-Stream-Id' header" });
    const badType = await call(url, sub.streamId, { type: 'FROBNICATE', framework_id: { value: fid } });
    expect(badType.status).toBe(400);
    expect(badType.body).toMatch(/^Failed to convert JSON into Call protobuf: /);
    const unsupported = await call(url, sub.streamId, { type: 'UNKNOWN', framework_id: { value: fid } });
    expect(unsupported.status).toBe(501);
    const noBody = await call(url, sub.streamId, { type: 'ACCEPT', framework_id: { value: fid } });
    expect(noBody).toEqual({ status: 400, body: "Failed to validate scheduler::Call: Expecting 'accept' to be present" });
    const get = await fetch(new URL('/api/v1/scheduler', url));
    expect(get.status).toBe(405);
    const unknownOffer = await call(url, sub.streamId, { type: 'ACCEPT', framework_id: { value: fid }, accept: { offer_ids: [{ value: 'no-such-offer' }], operations: [] } });
    expect(unknownOffer).toEqual({ status: 202, body: '' });
  });

  it('drops launches on unknown offers with TASK_DROPPED from the master', async () => {
    const sub = subs[0] as Sub;
    const agentId = env.cluster.agents[0]?.id ?? '';
    const r = await call(env.cluster.masterUrl, sub.streamId, {
      type: 'ACCEPT', framework_id: { value: sub.frameworkId },
      accept: { offer_ids: [{ value: 'gone-offer' }], operations: [{ type: 'LAUNCH', launch: { task_infos: [{ name: 't', task_id: { value: 'dropped-1' }, agent_id: { value: agentId }, resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 } }], command: { value: 'true' } }] } }] },
    });
    expect(r.status).toBe(202);
    const u = await sub.next((e) => e.type === 'UPDATE', 3000, 'TASK_DROPPED');
    const s = (u['update'] as { status: Record<string, unknown> }).status;
    expect(s).toMatchObject({ task_id: { value: 'dropped-1' }, state: 'TASK_DROPPED', source: 'SOURCE_MASTER', reason: 'REASON_INVALID_OFFERS', message: 'Task launched with invalid offers: Offer gone-offer is no longer valid' });
    expect(s['uuid']).toBeUndefined();
  });

  it('refuses a removed framework id with an ERROR event and reuses no ids', async () => {
    const url = env.cluster.masterUrl;
    const sub = await subscribe(url, subscribeCall(frameworkInfo('teardown')));
    const fid = sub.frameworkId;
    expect(fid).not.toBe((subs[0] as Sub).frameworkId);
    expect((await call(url, sub.streamId, { type: 'TEARDOWN', framework_id: { value: fid } })).status).toBe(202);
    await sub.ended();
    const again = await subscribe(url, subscribeCall(frameworkInfo('teardown'), fid));
    expect(again.events[0]).toEqual({ type: 'ERROR', error: { message: 'Framework has been removed' } });
    await again.ended();
    const mismatch = await call(url, undefined, { type: 'SUBSCRIBE', framework_id: { value: 'a' }, subscribe: { framework_info: frameworkInfo('x') } });
    expect(mismatch).toEqual({ status: 400, body: "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'" });
  });

  it('shares agents between two frameworks by DRF and honours SUPPRESS, REVIVE and refuse filters', async () => {
    const url = env.cluster.masterUrl;
    // Framework A still holds nothing; give B a fresh start on every agent.
    const a = subs[0] as Sub;
    const b = await subscribe(url, subscribeCall(frameworkInfo('drf-b')));
    subs.push(b);
    const firstB = await b.next((e) => e.type === 'OFFERS', 2000, 'offers for B');
    // A declined for 600s, so B gets every agent.
    const bOffers = [...offersOf(firstB)];
    while (bOffers.length < 3) bOffers.push(...offersOf(await nextNew(b, (e) => e.type === 'OFFERS', 2000)));
    expect(bOffers.length).toBe(3);
    // B suppresses and declines; then A revives and gets everything back at once.
    expect((await call(url, b.streamId, { type: 'SUPPRESS', framework_id: { value: b.frameworkId }, suppress: { roles: ['locus'] } })).status).toBe(202);
    for (const o of bOffers) await call(url, b.streamId, { type: 'DECLINE', framework_id: { value: b.frameworkId }, decline: { offer_ids: [o.id], filters: { refuse_seconds: 0 } } });
    const aRevived = nextNew(a, (e) => e.type === 'OFFERS', 3000, 'offers after REVIVE');
    expect((await call(url, a.streamId, { type: 'REVIVE', framework_id: { value: a.frameworkId }, revive: { roles: ['locus'] } })).status).toBe(202);
    const aOffers = offersOf(await aRevived);
    expect(aOffers.length).toBeGreaterThan(0);
    // B is suppressed: nothing for it while A declines briefly.
    const bCount = b.events.filter((e) => e.type === 'OFFERS').length;
    const declined = new Set(aOffers.map((o) => o.id.value));
    for (const o of aOffers) await call(url, a.streamId, { type: 'DECLINE', framework_id: { value: a.frameworkId }, decline: { offer_ids: [o.id], filters: { refuse_seconds: 1 } } });
    await new Promise((r) => setTimeout(r, 400));
    expect(b.events.filter((e) => e.type === 'OFFERS').length).toBe(bCount);
    // refuse_seconds: 1 — A gets them again after the filter expires, not before.
    const again = await nextNew(a, (e) => e.type === 'OFFERS' && offersOf(e).some((o) => !declined.has(o.id.value)), 3000, 'offers after the filter expired');
    expect(offersOf(again).length).toBeGreaterThan(0);
    // Now both active: DRF alternates agents between A and B.
    for (const o of a.events.filter((e) => e.type === 'OFFERS').flatMap(offersOf)) {
      await call(url, a.streamId, { type: 'DECLINE', framework_id: { value: a.frameworkId }, decline: { offer_ids: [o.id], filters: { refuse_seconds: 0 } } });
    }
    const bNext = nextNew(b, (e) => e.type === 'OFFERS', 3000, 'B offers after REVIVE');
    await call(url, b.streamId, { type: 'REVIVE', framework_id: { value: b.frameworkId } });
    expect(offersOf(await bNext).length).toBeGreaterThan(0);
    await call(url, a.streamId, { type: 'SUPPRESS', framework_id: { value: a.frameworkId } });
    await call(url, b.streamId, { type: 'SUPPRESS', framework_id: { value: b.frameworkId } });
  });
});

describe('local master: options', () => {
  it('rescinds offers after the offer timeout and refuses wrong credentials with 401', async () => {
    const env = await testCluster({ agents: 1, offerTimeoutSeconds: 0.5, credentials: [{ principal: 'p', secret: 's' }] });
    try {
      const url = env.cluster.masterUrl;
      const bad = await call(url, undefined, subscribeCall(frameworkInfo('x')));
      expect(bad.status).toBe(401);
      const wrong = await call(url, undefined, subscribeCall(frameworkInfo('x')), { Authorization: `Basic ${Buffer.from('p:nope').toString('base64')}` });
      expect(wrong.status).toBe(401);
      const auth = { Authorization: `Basic ${Buffer.from('p:s').toString('base64')}` };
      const sub = await subscribe(url, subscribeCall(frameworkInfo('rescind', { principal: 'p' })), auth);
      const offers = offersOf(await sub.next((e) => e.type === 'OFFERS', 2000));
      const offerId = offers[0]?.id.value;
      const rescind = await sub.next((e) => e.type === 'RESCIND', 2000, 'RESCIND');
      expect(rescind).toEqual({ type: 'RESCIND', rescind: { offer_id: { value: offerId } } });
      sub.close();
    } finally {
      await env.dispose();
    }
  });

  it('serves legacy single-role frameworks without allocation info, and redirects when not leading', async () => {
    const env = await testCluster({ agents: 1 });
    try {
      const sub = await subscribe(env.cluster.masterUrl, subscribeCall({ user: 'root', name: 'legacy', role: 'old' }));
      const o = offersOf(await sub.next((e) => e.type === 'OFFERS', 2000))[0];
      expect(o?.allocation_info).toBeUndefined();
      expect(o?.resources.some((r) => r.allocation_info !== undefined)).toBe(false);
      expect(o?.resources.every((r) => r.role === '*')).toBe(true);
      sub.close();
    } finally {
      await env.dispose();
    }
    const follower = await testCluster({ agents: 1, redirectTo: 'http://127.0.0.1:5999' });
    try {
      const r = await fetch(new URL('/api/v1/scheduler', follower.cluster.masterUrl), { method: 'POST', body: '{}', redirect: 'manual', headers: { 'Content-Type': 'application/json' } });
      expect(r.status).toBe(307);
      expect(r.headers.get('location')).toBe('//127.0.0.1:5999/api/v1/scheduler');
    } finally {
      await follower.dispose();
    }
  });

  it('serves the scheduler API and agents over TLS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'locus-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    const env = await testCluster({ agents: 1, tls: { certFile: `${dir}/cert.pem`, keyFile: `${dir}/key.pem` } });
    try {
      expect(env.cluster.masterUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(env.cluster.agents[0]?.url).toMatch(/^https:/);
      const sub = await subscribe(env.cluster.masterUrl, subscribeCall(frameworkInfo('tls')));
      expect(sub.status).toBe(200);
      const o = offersOf(await sub.next((e) => e.type === 'OFFERS', 2000))[0];
      expect(o?.url?.scheme).toBe('https');
      sub.close();
    } finally {
      await env.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers 503 to SUBSCRIBE while told to fail, then subscribes', async () => {
    const env = await testCluster({ agents: 1 });
    try {
      env.cluster.control.failNextSubscribes(1);
      const r = await call(env.cluster.masterUrl, undefined, subscribeCall(frameworkInfo('retry')));
      expect(r.status).toBe(503);
      const sub = await subscribe(env.cluster.masterUrl, subscribeCall(frameworkInfo('retry')));
      expect(sub.status).toBe(200);
      sub.close();
    } finally {
      await env.dispose();
    }
  });
});
