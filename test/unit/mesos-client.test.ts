/**
 * Unit tests of the scheduler client against a tiny in-test HTTP peer that
 * plays the master, with a ManualClock for backoff and the heartbeat watchdog.
 * (The client against the real local cluster is in test/integration.)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { LocusError } from '../../src/core/errors.js';
import { SchedulerClient, type ConnectionState, type DisconnectInfo } from '../../src/mesos/client.js';
import { buildFrameworkInfo } from '../../src/mesos/calls.js';
import { encodeJsonRecord } from '../../src/mesos/recordio.js';
import { StaticDetector } from '../../src/mesos/detector.js';
import type { Event } from '../../src/mesos/types.js';

interface Seen {
  readonly headers: IncomingMessage['headers'];
  readonly body: Record<string, unknown>;
  readonly remotePort: number | undefined;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>) => void;

/** A scripted peer speaking just enough of the scheduler API. */
class FakeMaster {
  readonly subscribes: Seen[] = [];
  readonly calls: Seen[] = [];
  readonly streams: ServerResponse[] = [];
  onSubscribe: Handler = (_req, res) => this.accept(res);
  onCall: Handler = (_req, res) => {
    res.writeHead(202);
    res.end();
  };
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        const seen = { headers: req.headers, body, remotePort: req.socket.remotePort };
        if (body['type'] === 'SUBSCRIBE') {
          this.subscribes.push(seen);
          this.onSubscribe(req, res, body);
        } else {
          this.calls.push(seen);
          this.onCall(req, res, body);
        }
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}`;
    return this;
  }

  /** Answer a SUBSCRIBE with a stream and SUBSCRIBED. */
  accept(res: ServerResponse, opts: { frameworkId?: string; heartbeat?: number; streamId?: string } = {}): void {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Mesos-Stream-Id': opts.streamId ?? `stream-${this.subscribes.length}` });
    this.streams.push(res);
    res.write(encodeJsonRecord({ type: 'SUBSCRIBED', subscribed: { framework_id: { value: opts.frameworkId ?? 'fw-1' }, heartbeat_interval_seconds: opts.heartbeat ?? 15 } }));
  }

  /** Send an event on the latest stream, one byte per chunk (worst-case framing). */
  async send(event: unknown, stream = this.streams[this.streams.length - 1]): Promise<void> {
    for (const b of encodeJsonRecord(event)) {
      stream?.write(Uint8Array.of(b));
    }
    await new Promise((r) => setImmediate(r));
  }

  async stop(): Promise<void> {
    for (const s of this.streams) s.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }
}

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const framework = buildFrameworkInfo({ name: 'unit', roles: ['locus'], user: 'tester', principal: 'p1' });
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: { clock?: ManualClock; credentials?: { principal: string; secret: string }; onFrameworkId?: (id: string) => void } = {}) {
  const master = await new FakeMaster().start();
  const clock = opts.clock ?? new ManualClock(1_000_000);
  const client = new SchedulerClient({
    master: master.url, framework, clock, random: () => 0.5,
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    ...(opts.onFrameworkId ? { onFrameworkId: opts.onFrameworkId } : {}),
  });
  const states: ConnectionState[] = [];
  const disconnects: DisconnectInfo[] = [];
  const events: Event[] = [];
  client.on('state', (s) => states.push(s));
  client.on('disconnected', (d) => disconnects.push(d));
  client.on('event', (e) => events.push(e));
  cleanups.push(async () => {
    await client.stop();
    await master.stop();
  });
  return { master, clock, client, states, disconnects, events };
}

describe('SchedulerClient', () => {
  it('walks DISCONNECTED → CONNECTING → SUBSCRIBING → SUBSCRIBED and emits typed events', async () => {
    const { master, client, states, events } = await setup();
    const offers: string[] = [];
    client.on('OFFERS', (e) => offers.push(...(e.offers.offers ?? []).map((o) => o.hostname)));
    await client.start();
    const info = await client.waitForSubscribed(3000);
    expect(states).toEqual(['CONNECTING', 'SUBSCRIBING', 'SUBSCRIBED']);
    expect(info.frameworkId).toBe('fw-1');
    expect(info.streamId).toBe('stream-1');
    expect(client.frameworkId).toBe('fw-1');

    const sub = master.subscribes[0];
    expect(sub?.headers['accept']).toBe('application/json');
    expect(sub?.headers['content-type']).toBe('application/json');
    const fi = (sub?.body['subscribe'] as { framework_info: Record<string, unknown> }).framework_info;
    expect(fi['checkpoint']).toBe(true);
    expect(fi['failover_timeout']).toBe(7 * 24 * 3600);
    expect(fi['capabilities']).toEqual(expect.arrayContaining([{ type: 'MULTI_ROLE' }, { type: 'RESERVATION_REFINEMENT' }, { type: 'PARTITION_AWARE' }, { type: 'TASK_KILLING_STATE' }, { type: 'SHARED_RESOURCES' }]));

    await master.send({
      type: 'OFFERS',
      offers: { offers: [{ id: { value: 'o1' }, framework_id: { value: 'fw-1' }, agent_id: { value: 'a1' }, hostname: 'höst-1', resources: [] }] },
    });
    await master.send({ type: 'BRAND_NEW', brand_new: {} });
    await waitFor(() => events.length >= 3, 'events');
    expect(offers).toEqual(['höst-1']);
    expect(events.map((e) => e.type)).toEqual(['SUBSCRIBED', 'OFFERS', 'UNKNOWN']);
  });

  it('refuses calls unless SUBSCRIBED', async () => {
    const { client } = await setup();
    await expect(client.decline(['o1'])).rejects.toMatchObject({ code: 'WRONG_STATE' });
  });

  it('sends every call on its own connection with Mesos-Stream-Id, framework_id and Basic auth', async () => {
    const { master, client } = await setup({ credentials: { principal: 'p1', secret: 's3cret' } });
    await client.start();
    await client.waitForSubscribed(3000);
    await client.decline(['o1', 'o2'], { refuse_seconds: 30 });
    await client.acknowledge('a1', 't1', 'dXVpZA==');
    await client.revive(['locus']);
    expect(master.calls).toHaveLength(3);
    for (const c of master.calls) {
      expect(c.headers['mesos-stream-id']).toBe('stream-1');
      expect(c.headers['authorization']).toBe(`Basic ${Buffer.from('p1:s3cret').toString('base64')}`);
      expect(c.body['framework_id']).toEqual({ value: 'fw-1' });
    }
    expect(master.subscribes[0]?.headers['authorization']).toBe(`Basic ${Buffer.from('p1:s3cret').toString('base64')}`);
    // Distinct client ports: no call shares a socket with the subscription or another call.
    const ports = new Set([master.subscribes[0]?.remotePort, ...master.calls.map((c) => c.remotePort)]);
    expect(ports.size).toBe(4);
    expect(master.calls[0]?.body).toEqual({ framework_id: { value: 'fw-1' }, type: 'DECLINE', decline: { offer_ids: [{ value: 'o1' }, { value: 'o2' }], filters: { refuse_seconds: 30 } } });
  });

  it("fails a 4xx call with the master's message and retries a 503 with backoff", async () => {
    const { master, client, clock } = await setup();
    await client.start();
    await client.waitForSubscribed(3000);
    master.onCall = (_req, res) => {
      res.writeHead(400);
      res.end("The stream ID 'x' included in this request didn't match");
    };
    const err = await client.kill('t1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocusError);
    expect((err as LocusError).message).toContain("didn't match");
    expect((err as LocusError).message).toContain('KILL (400)');

    let n = 0;
    master.onCall = (_req, res) => {
      n++;
      res.writeHead(n < 3 ? 503 : 202);
      res.end(n < 3 ? 'not ready' : '');
    };
    const pending = client.suppress(['locus']);
    for (let i = 1; i <= 2; i++) {
      await waitFor(() => n === i, `attempt ${i}`);
      await new Promise((r) => setTimeout(r, 20));
      expect(n).toBe(i); // no retry before the clock moves
      clock.advance(2_000); // more than the backoff, less than the heartbeat watchdog
    }
    await expect(pending).resolves.toMatchObject({ status: 202 });
    expect(n).toBe(3);
  });

  it('backs off after 503 on SUBSCRIBE and retries when the clock says so', async () => {
    const { master, client, clock, disconnects } = await setup();
    let n = 0;
    master.onSubscribe = (_req, res) => {
      n++;
      if (n <= 2) {
        res.writeHead(503);
        res.end('Master is not ready');
        return;
      }
      master.accept(res);
    };
    await client.start();
    await waitFor(() => disconnects.length === 1, 'first 503');
    expect(disconnects[0]?.error?.code).toBe('NOT_READY');
    expect(disconnects[0]?.error?.message).toContain('Master is not ready');
    expect(client.state).toBe('DISCONNECTED');
    // Nothing happens until the backoff timer fires.
    await new Promise((r) => setTimeout(r, 50));
    expect(n).toBe(1);
    clock.advance(499); // attempt 1 with random 0.5 waits 0.75 × 500 = 375 ms
    await waitFor(() => disconnects.length === 2, 'second 503');
    expect(n).toBe(2);
    clock.advance(749); // attempt 2 waits 0.75 × 1000 = 750 ms
    await new Promise((r) => setTimeout(r, 30));
    expect(n).toBe(2);
    clock.advance(1);
    await client.waitForSubscribed(3000);
    expect(n).toBe(3);
  });

  it('follows a 307 (scheme-relative Location) to the leader and subscribes there', async () => {
    const { master: follower, client } = await setup();
    const leader = await new FakeMaster().start();
    cleanups.push(() => leader.stop());
    follower.onSubscribe = (_req, res) => {
      res.writeHead(307, { Location: `//${new URL(leader.url).host}/api/v1/scheduler` });
      res.end();
    };
    await client.start();
    const info = await client.waitForSubscribed(3000);
    expect(info.master).toBe(leader.url);
    expect(leader.subscribes).toHaveLength(1);
    await client.decline(['o1']);
    // The call itself went to the leader, on the leader's stream: what it received, not only that it was called.
    expect(leader.calls.map((c) => c.body)).toEqual([{ framework_id: { value: 'fw-1' }, type: 'DECLINE', decline: { offer_ids: [{ value: 'o1' }] } }]);
    expect(leader.calls[0]?.headers['mesos-stream-id']).toBe('stream-1');
    expect(follower.calls).toHaveLength(0);
  });

  it('reconnects after missed heartbeats, re-subscribing with the same FrameworkID, ignoring the dead stream', async () => {
    const ids: string[] = [];
    const { master, client, clock, events, disconnects } = await setup({ onFrameworkId: (id) => ids.push(id) });
    master.onSubscribe = (_req, res) => master.accept(res, { heartbeat: 1, frameworkId: 'fw-77' });
    await client.start();
    await client.waitForSubscribed(3000);
    await master.send({ type: 'HEARTBEAT' });
    await waitFor(() => events.length === 2, 'heartbeat');
    clock.advance(2_999); // three heartbeats of 1 s may be missed
    expect(client.state).toBe('SUBSCRIBED');
    clock.advance(2);
    expect(client.state).toBe('DISCONNECTED');
    expect(disconnects[0]?.reason).toBe('missed heartbeats');
    const oldStream = master.streams[0];
    clock.advance(1000);
    await waitFor(() => master.subscribes.length === 2 && client.state === 'SUBSCRIBED', 're-subscription');
    const fi = (master.subscribes[1]?.body['subscribe'] as { framework_info: { id?: { value: string } } }).framework_info;
    expect(fi.id).toEqual({ value: 'fw-77' });
    expect(master.subscribes[1]?.body['framework_id']).toEqual({ value: 'fw-77' });
    expect(master.subscribes[0]?.body['framework_id']).toBeUndefined();
    expect(client.subscription?.resubscribed).toBe(true);
    expect(ids).toEqual(['fw-77']);
    // Whatever the abandoned stream still says never reaches listeners.
    const before = events.length;
    if (oldStream) await master.send({ type: 'RESCIND', rescind: { offer_id: { value: 'stale' } } }, oldStream);
    await new Promise((r) => setTimeout(r, 30));
    expect(events.slice(before).some((e) => e.type === 'RESCIND')).toBe(false);
  });

  it('treats a non-Mesos answer and a malformed RecordIO stream as protocol failures and retries', async () => {
    const { master, client, disconnects, clock } = await setup();
    let n = 0;
    master.onSubscribe = (_req, res) => {
      n++;
      if (n === 1) {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end('<html>hello</html>');
      } else if (n === 2) {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Mesos-Stream-Id': 's' });
        res.write('12x\n{"type":"HEARTBEAT"}');
      } else master.accept(res);
    };
    await client.start();
    await waitFor(() => disconnects.length === 1, 'garbage');
    expect(disconnects[0]?.error?.code).toBe('PROTOCOL');
    expect(disconnects[0]?.error?.message).toContain('not a Mesos master');
    clock.advance(1000);
    await waitFor(() => disconnects.length === 2, 'bad framing');
    expect(disconnects[1]?.error?.message).toContain('malformed RecordIO stream');
    clock.advance(2000);
    await client.waitForSubscribed(3000);
  });

  it('stops for good when authentication is refused', async () => {
    const { master, client, clock } = await setup({ credentials: { principal: 'p', secret: 'wrong' } });
    master.onSubscribe = (_req, res) => {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="mesos"' });
      res.end('Unauthorized');
    };
    const errors: LocusError[] = [];
    client.on('error', (e) => errors.push(e));
    await client.start();
    await expect(client.waitForSubscribed(3000)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(errors).toHaveLength(1);
    clock.advance(120_000);
    await new Promise((r) => setTimeout(r, 30));
    expect(master.subscribes).toHaveLength(1);
    expect(client.state).toBe('DISCONNECTED');
  });

  it('stops on an ERROR event', async () => {
    const { master, client } = await setup();
    const errors: LocusError[] = [];
    client.on('error', (e) => errors.push(e));
    await client.start();
    await client.waitForSubscribed(3000);
    await master.send({ type: 'ERROR', error: { message: 'Framework has been removed' } });
    await waitFor(() => errors.length === 1, 'error');
    expect(errors[0]?.message).toContain('Framework has been removed');
    expect(client.state).toBe('DISCONNECTED');
    await expect(client.revive()).rejects.toMatchObject({ code: 'WRONG_STATE' });
  });

  it('moves to a new leader when the detector says so', async () => {
    const a = await new FakeMaster().start();
    const b = await new FakeMaster().start();
    class MovableDetector extends StaticDetector {
      move(url: string): void {
        this.setLeader(url, undefined);
      }
    }
    const detector = new MovableDetector(a.url);
    const client = new SchedulerClient({ master: detector, framework, clock: new ManualClock() });
    cleanups.push(async () => {
      await client.stop();
      await a.stop();
      await b.stop();
    });
    await client.start();
    await client.waitForSubscribed(3000);
    detector.move(b.url);
    await waitFor(() => b.subscribes.length === 1 && client.state === 'SUBSCRIBED', 'subscribed at b');
    expect(client.subscription?.master).toBe(b.url);
    expect((b.subscribes[0]?.body['subscribe'] as { framework_info: { id?: unknown } }).framework_info.id).toEqual({ value: 'fw-1' });
  });
});
