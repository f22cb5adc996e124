import { fileURLToPath } from 'node:url';
/**
 * The volume service over real Redis, driven the way the scheduler's
 * coordinator will drive it: offer cycles against a model agent that applies
 * operations like the master (fixture shapes), operation status updates,
 * restarts of the service mid-operation (the kill -9 cases, at the service
 * level), concurrency, and the `locus volumes` CLI against a real HTTP server.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authenticator, hashToken } from '../../src/api/auth.js';
import { createHttpServer } from '../../src/api/http/server.js';
import { ManualClock, systemClock, type Clock } from '../../src/core/clock.js';
import { LocusError } from '../../src/core/errors.js';
import type { Tenant } from '../../src/core/tenants.js';
import { decodeEvent } from '../../src/mesos/events.js';
import type * as types from '../../src/mesos/types.js';
import { silentLogger } from '../../src/obs/log.js';
import { validateVolumeRequest } from '../../src/volumes/model.js';
import { GENERATION_RECHECK_MS, VolumeService, type VolumeAccept } from '../../src/volumes/service.js';
import { HoldingStore } from '../../src/volumes/store.js';
import { tagOf } from '../../src/volumes/wire.js';
import { freePort } from '../harness/ports.js';
import { suiteRedis } from '../harness/redis.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/mesos-1.12', import.meta.url));
const ev = decodeEvent(JSON.parse(readFileSync(`${FIXTURES}/event-offers-unreserved.json`, 'utf8')) as unknown);
if (ev.type !== 'OFFERS' || !ev.offers.offers?.[0]) throw new Error('fixture');
const TEMPLATE: types.Offer = ev.offers.offers[0];
const TENANT: Tenant = { name: 'default', role: 'locus', weight: 1, tokenSha256: '' };

const strip = (r: types.Resource): types.Resource => {
  const { allocation_info: _a, ...rest } = r;
  return rest;
};
const same = (a: types.Resource, b: types.Resource): boolean => a.name === b.name && JSON.stringify(a.reservations) === JSON.stringify(b.reservations);

/** A model agent applying operations like the master (see volumes-planner.test.ts for the full story). */
class Agent {
  resources: types.Resource[] = TEMPLATE.resources.map(strip);
  private seq = 0;
  constructor(readonly agentId = TEMPLATE.agent_id.value) {}
  offer(): types.Offer {
    return { ...TEMPLATE, id: { value: `${this.agentId}-O${this.seq++}` }, agent_id: { value: this.agentId }, resources: this.resources.map((r) => ({ ...r, allocation_info: { role: 'locus' } })) };
  }
  private adjust(name: string, delta: number): void {
    this.resources = this.resources.map((x) => (x.name === name && !x.reservations && !x.disk ? { ...x, scalar: { value: (x.scalar?.value ?? 0) + delta } } : x));
  }
  apply(ops: readonly types.Operation[]): void {
    for (const op of ops) {
      if (op.type === 'RESERVE') for (const r of op.reserve.resources ?? []) { this.adjust(r.name, -(r.scalar?.value ?? 0)); this.resources.push(strip(r)); }
      if (op.type === 'CREATE') for (const v of op.create.volumes) this.resources.splice(this.resources.findIndex((x) => same(x, v) && !x.disk), 1, strip(v));
      if (op.type === 'DESTROY') for (const v of op.destroy.volumes) {
        const { disk: _d, ...rest } = strip(v);
        this.resources.splice(this.resources.findIndex((x) => x.disk?.persistence?.id === v.disk?.persistence?.id), 1, rest);
      }
      if (op.type === 'UNRESERVE') for (const r of op.unreserve.resources) {
        this.resources.splice(this.resources.findIndex((x) => same(x, r) && !x.disk), 1);
        this.adjust(r.name, r.scalar?.value ?? 0);
      }
    }
  }
  labelled(): types.Resource[] {
    return this.resources.filter((r) => tagOf(r) !== undefined);
  }
}

const applyAll = (agent: Agent, accepts: readonly VolumeAccept[]): void => {
  for (const a of accepts) agent.apply(a.operations);
};
const opsOf = (accepts: readonly VolumeAccept[]): types.Operation[] => accepts.flatMap((a) => a.operations);
const finished = (id: string | undefined): types.OperationStatus => ({ operation_id: { value: id ?? '' }, state: 'OPERATION_FINISHED', agent_id: { value: TEMPLATE.agent_id.value }, uuid: { value: 'dXVpZA==' } });

const redis = suiteRedis();
let prefixSeq = 0;

function service(clock: Clock, prefix: string, timeoutMs = 5000): VolumeService {
  return new VolumeService({
    store: new HoldingStore(redis.client(), { prefix }),
    clock,
    who: { framework: 'locus-it', principal: 'locus' },
    planner: { operationTimeoutMs: timeoutMs, orphanGraceMs: 60_000 },
  });
}

describe('volume lifecycle through offers and operation feedback', () => {
  it('reserves, creates, serves one executor, refuses delete while in use, then destroys and unreserves', async () => {
    const clock = new ManualClock(1_000_000);
    const svc = service(clock, `lc${prefixSeq++}`);
    const agent = new Agent();
    const { record } = await svc.createVolume(TENANT, validateVolumeRequest({ name: 'cache', size: '64MiB' }));
    expect(await svc.hasPendingWork()).toBe(true);
    const accepts = await svc.offerCycle([agent.offer()]);
    expect(opsOf(accepts).map((o) => o.type)).toEqual(['RESERVE', 'CREATE']);
    expect((await svc.getVolume('default', 'cache')).state).toBe('RESERVING');
    expect(await svc.operationsToReconcile()).toHaveLength(2);
    applyAll(agent, accepts);
    const [reserve, create] = opsOf(accepts);
    expect((await svc.onOperationStatus(finished(reserve?.id?.value)))?.state).toBe('CREATING');
    expect((await svc.onOperationStatus(finished(create?.id?.value)))?.state).toBe('READY');
    expect(await svc.onOperationStatus(finished(create?.id?.value))).toBeUndefined();
    expect(await svc.hasPendingWork()).toBe(false);

    expect((await svc.acquire(record.id, 'exec-1')).state).toBe('IN_USE');
    await expect(svc.acquire(record.id, 'exec-2')).rejects.toMatchObject({ code: 'IN_USE' });
    await expect(svc.deleteVolume('default', 'cache', true)).rejects.toMatchObject({ code: 'IN_USE' });
    await svc.release(record.id, 'exec-1');
    expect((await svc.deleteVolume('default', 'cache', false)).deleteRequested).toBe(true);
    clock.advance(10);
    const teardown = await svc.offerCycle([agent.offer()]);
    expect(opsOf(teardown).map((o) => o.type)).toEqual(['DESTROY', 'UNRESERVE']);
    applyAll(agent, teardown);
    clock.advance(10);
    expect(await svc.offerCycle([agent.offer()])).toEqual([]);
    expect((await svc.getVolume('default', 'cache')).state).toBe('DELETED');
    expect(agent.labelled()).toEqual([]);
  });

  it('marks volumes of a lost agent UNAVAILABLE and back READY when it offers again', async () => {
    const clock = new ManualClock(1_000_000);
    const svc = service(clock, `lc${prefixSeq++}`);
    const agent = new Agent();
    await svc.createVolume(TENANT, validateVolumeRequest({ name: 'keep', size: '64MiB' }));
    applyAll(agent, await svc.offerCycle([agent.offer()]));
    clock.advance(10);
    await svc.offerCycle([agent.offer()]);
    expect((await svc.getVolume('default', 'keep')).state).toBe('READY');
    const lost = await svc.onAgentLost(TEMPLATE.agent_id.value, 'agent removed');
    expect(lost.map((h) => h.state)).toEqual(['UNAVAILABLE']);
    await expect(svc.deleteVolume('default', 'keep', false)).rejects.toMatchObject({ code: 'CONFLICT' });
    clock.advance(10);
    await svc.offerCycle([agent.offer()]);
    expect((await svc.getVolume('default', 'keep')).state).toBe('READY');
    expect(agent.labelled()).toHaveLength(1);
  });
});

describe('the pending-work check every placement pass makes', () => {
  it('lists the records only when one was written since, by this service or another on the same Redis', async () => {
    const clock = new ManualClock(1_000_000);
    const prefix = `lc${prefixSeq++}`;
    const store = new HoldingStore(redis.client(), { prefix });
    let listings = 0;
    let generationReads = 0;
    const list = store.list.bind(store);
    store.list = async (filter) => {
      listings++;
      return await list(filter);
    };
    const generation = store.generation.bind(store);
    store.generation = async () => {
      generationReads++;
      return await generation();
    };
    const svc = new VolumeService({ store, clock, who: { framework: 'locus-it', principal: 'locus' } });
    // Tombstones and settled volumes make a listing long; none of them is work.
    expect(await svc.hasPendingWork()).toBe(false);
    expect(await svc.hasPendingWork()).toBe(false);
    expect(listings).toBe(1);
    // Nor is the generation read by every check while this service writes nothing.
    expect(generationReads).toBe(1);
    clock.advance(GENERATION_RECHECK_MS);
    expect(await svc.hasPendingWork()).toBe(false);
    expect(generationReads).toBe(2);
    expect(listings).toBe(1);

    // Another process (here another service over its own store) asks for a volume: a check
    // GENERATION_RECHECK_MS later sees it.
    const other = service(clock, prefix);
    const { record } = await other.createVolume(TENANT, validateVolumeRequest({ name: 'late', size: '64MiB' }));
    clock.advance(GENERATION_RECHECK_MS);
    expect(await svc.hasPendingWork()).toBe(true);
    expect(listings).toBe(2);
    for (let i = 0; i < 5; i++) expect(await svc.hasPendingWork()).toBe(true);
    expect(listings).toBe(2);

    // Its reservation through offers, then READY: written by the other service, seen here.
    const agent = new Agent();
    const accepts = await other.offerCycle([agent.offer()]);
    applyAll(agent, accepts);
    for (const op of opsOf(accepts)) await other.onOperationStatus(finished(op.id?.value));
    expect((await other.getVolume('default', 'late')).state).toBe('READY');
    clock.advance(GENERATION_RECHECK_MS);
    expect(await svc.hasPendingWork()).toBe(false);
    expect(await svc.hasPendingWork()).toBe(false);
    expect(listings).toBe(3);

    // A delete request is work again; the teardown ends it, and purging the tombstone moves the generation too.
    await other.deleteVolume('default', record.name, false);
    clock.advance(GENERATION_RECHECK_MS);
    expect(await svc.hasPendingWork()).toBe(true);
    clock.advance(10);
    applyAll(agent, await other.offerCycle([agent.offer()]));
    clock.advance(10);
    expect(await other.offerCycle([agent.offer()])).toEqual([]);
    expect((await other.getVolume('default', record.name)).state).toBe('DELETED');
    clock.advance(GENERATION_RECHECK_MS);
    expect(await svc.hasPendingWork()).toBe(false);
    const before = await store.generation();
    expect(await store.purgeDeleted(Number.MAX_SAFE_INTEGER)).toBe(1);
    expect(await store.generation()).not.toBe(before);
    const listed = listings;
    expect(await svc.hasPendingWork()).toBe(false);
    expect(listings).toBe(listed + 1);
    // Unchanged, an answer is trusted for 30 s at most (a counter Redis rolled back could repeat).
    clock.advance(29_000);
    expect(await svc.hasPendingWork()).toBe(false);
    expect(listings).toBe(listed + 1);
    clock.advance(1_000);
    expect(await svc.hasPendingWork()).toBe(false);
    expect(listings).toBe(listed + 2);

    // What this service writes itself is seen by its next check, however soon.
    await svc.createVolume(TENANT, validateVolumeRequest({ name: 'mine', size: '64MiB' }));
    expect(await svc.hasPendingWork()).toBe(true);
    expect(listings).toBe(listed + 3);
  });
});

describe('restarts mid-operation (the service is rebuilt on the same Redis)', () => {
  it('crash after the write-ahead, before the ACCEPT: retried once after the timeout, no duplicate', async () => {
    const clock = new ManualClock(1_000_000);
    const prefix = `lc${prefixSeq++}`;
    const agent = new Agent();
    const first = service(clock, prefix);
    await first.createVolume(TENANT, validateVolumeRequest({ name: 'v', size: '64MiB' }));
    await first.offerCycle([agent.offer()]); // RESERVING written; the ACCEPT is never sent
    const second = service(clock, prefix);
    clock.advance(1000);
    expect(await second.offerCycle([agent.offer()])).toEqual([]);
    clock.advance(5000);
    await second.offerCycle([agent.offer()]);
    expect((await second.getVolume('default', 'v')).state).toBe('REQUESTED');
    applyAll(agent, await second.offerCycle([agent.offer()]));
    clock.advance(10);
    await second.offerCycle([agent.offer()]);
    expect((await second.getVolume('default', 'v')).state).toBe('READY');
    expect(agent.labelled()).toHaveLength(1);
  });

  it('crash after the ACCEPT, before any status: adopted from offers, no second RESERVE', async () => {
    const clock = new ManualClock(1_000_000);
    const prefix = `lc${prefixSeq++}`;
    const agent = new Agent();
    const first = service(clock, prefix);
    await first.createVolume(TENANT, validateVolumeRequest({ name: 'v', size: '64MiB' }));
    applyAll(agent, await first.offerCycle([agent.offer()]));
    const second = service(clock, prefix);
    clock.advance(60_000);
    expect(opsOf(await second.offerCycle([agent.offer()]))).toEqual([]);
    expect((await second.getVolume('default', 'v')).state).toBe('READY');
    expect(agent.labelled()).toHaveLength(1);
  });

  it('crash during DESTROYING: the restarted service finishes the teardown', async () => {
    const clock = new ManualClock(1_000_000);
    const prefix = `lc${prefixSeq++}`;
    const agent = new Agent();
    const first = service(clock, prefix);
    await first.createVolume(TENANT, validateVolumeRequest({ name: 'v', size: '64MiB' }));
    applyAll(agent, await first.offerCycle([agent.offer()]));
    clock.advance(10);
    await first.offerCycle([agent.offer()]);
    await first.deleteVolume('default', 'v', false);
    await first.offerCycle([agent.offer()]); // DESTROYING written, ACCEPT lost
    const second = service(clock, prefix);
    clock.advance(5000);
    applyAll(agent, await second.offerCycle([agent.offer()]));
    clock.advance(10);
    await second.offerCycle([agent.offer()]);
    expect((await second.getVolume('default', 'v')).state).toBe('DELETED');
    expect(agent.labelled()).toEqual([]);
  });
});

describe('concurrency and idempotency in the store', () => {
  it('lets exactly one of many concurrent creates of a name win', async () => {
    const svc = service(systemClock, `lc${prefixSeq++}`);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => svc.createVolume(TENANT, validateVolumeRequest({ name: 'race', size: '1GiB' }))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const codes = results.flatMap((r) => (r.status === 'rejected' && r.reason instanceof LocusError ? [r.reason.code] : []));
    expect(codes).toEqual(Array(9).fill('ALREADY_EXISTS'));
    expect(await svc.listVolumes({})).toHaveLength(1);
  });
  it('answers concurrent requests with one Idempotency-Key with one volume', async () => {
    const svc = service(systemClock, `lc${prefixSeq++}`);
    const results = await Promise.all(Array.from({ length: 8 }, () => svc.createVolume(TENANT, validateVolumeRequest({ name: 'once', size: '1GiB' }), 'key-1')));
    expect(new Set(results.map((r) => r.record.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
  });
  it('refuses a stale compare-and-set', async () => {
    const store = new HoldingStore(redis.client(), { prefix: `lc${prefixSeq++}` });
    const svc = new VolumeService({ store, clock: systemClock, who: { framework: 'x' } });
    const { record } = await svc.createVolume(TENANT, validateVolumeRequest({ name: 'cas', size: '1GiB' }));
    const a = await store.compareAndSet(record, { ...record, reason: 'first' });
    expect(a?.version).toBe(2);
    expect(await store.compareAndSet(record, { ...record, reason: 'second' })).toBeUndefined();
    expect((await store.get(record.id))?.reason).toBe('first');
    const { conflicted } = await store.applyChanges([{ before: record, after: { ...record, reason: 'third' } }]);
    expect([...conflicted]).toEqual([record.id]);
  });
});

describe('locus volumes (CLI) against a real HTTP server', () => {
  const TOKEN = 'cli-token-abcdef';
  let app: FastifyInstance;
  let url = '';
  let timer: NodeJS.Timeout | undefined;
  const agent = new Agent();

  beforeAll(async () => {
    const svc = service(systemClock, `lc${prefixSeq++}`, 2000);
    const auth = new Authenticator({ config: { tenants: [{ name: 'ops', role: 'locus', weight: 1, tokenSha256: hashToken(TOKEN) }] } });
    app = await createHttpServer({ services: { volumes: svc, health: { ready: () => ({ subscribed: true, redis: true }) } }, auth, logger: silentLogger() });
    const port = await freePort();
    await app.listen({ host: '127.0.0.1', port });
    url = `http://127.0.0.1:${port}`;
    // A stand-in coordinator: one offer cycle every 150 ms, the master applying what it accepts.
    let busy = false;
    timer = setInterval(() => {
      if (busy) return;
      busy = true;
      svc.offerCycle([agent.offer()]).then((a) => applyAll(agent, a)).catch(() => undefined).finally(() => { busy = false; });
    }, 150);
  });
  afterAll(async () => {
    if (timer) clearInterval(timer);
    await app?.close();
  });

  const locus = (args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, ['dist/src/cli/main.js', 'volumes', ...args], { env: { ...process.env, HOME: '/nonexistent', LOCUS_SERVER: url, ...env } });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  it('reserves and waits until READY, lists, shows, removes and waits until DELETED', async () => {
    const r = await locus(['reserve', 'scratch', '--size', '64MiB', '--path', 'work', '--token', TOKEN]);
    // Progress lines on stderr: at least the first state and the final one.
    expect(r.stderr).toMatch(/locus: volume scratch: (REQUESTED|RESERVING|CREATING)/);
    expect(r.stderr).toContain('locus: volume scratch: READY');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/state\s+READY/);
    expect(agent.labelled().length).toBe(1);
    const ls = await locus(['ls'], { LOCUS_TOKEN: TOKEN });
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/scratch\s+READY\s+64MiB/);
    const show = await locus(['show', 'scratch', '--json'], { LOCUS_TOKEN: TOKEN });
    expect(JSON.parse(show.stdout)).toMatchObject({ name: 'scratch', state: 'READY', containerPath: 'work' });
    const rm = await locus(['rm', 'scratch'], { LOCUS_TOKEN: TOKEN });
    expect(rm.code).toBe(0);
    expect(rm.stderr).toContain('DELETED');
    expect(agent.labelled()).toEqual([]);
  });

  it('returns at once with --no-wait and reports errors with their field', async () => {
    const r = await locus(['reserve', 'quick', '--size', '64MiB', '--no-wait', '--json'], { LOCUS_TOKEN: TOKEN });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'quick', state: 'REQUESTED' });
    const bad = await locus(['reserve', 'bad', '--size', 'lots'], { LOCUS_TOKEN: TOKEN });
    expect(bad.code).toBe(1);
    // Named by the flag the user typed.
    expect(bad.stderr).toContain('locus: --size:');
    const badPath = await locus(['reserve', 'bad', '--size', '64MiB', '--path', '/etc'], { LOCUS_TOKEN: TOKEN });
    expect(badPath.code).toBe(1);
    expect(badPath.stderr).toContain('locus: --path: must be relative to the sandbox');
    expect(badPath.stderr).not.toContain('containerPath');
    const badLabel = await locus(['reserve', 'bad', '--size', '64MiB', '--label', 'locus.x=1'], { LOCUS_TOKEN: TOKEN });
    expect(badLabel.code).toBe(1);
    expect(badLabel.stderr).toMatch(/locus: --label locus\.x: /);
    const unauth = await locus(['ls'], { LOCUS_TOKEN: 'wrong' });
    expect(unauth.code).toBe(1);
    expect(unauth.stderr).toContain('bearer token');
    const usage = await locus(['reserve', 'nosize'], { LOCUS_TOKEN: TOKEN });
    expect(usage.code).toBe(2);
  });
});
