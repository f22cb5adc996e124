import { fileURLToPath } from 'node:url';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeEvent, decodeEventRecord } from '../../src/mesos/events.js';
import { calls, interpretCallResponse, ops } from '../../src/mesos/calls.js';
import { encodeJsonRecord, RecordIoDecoder } from '../../src/mesos/recordio.js';
import { DecodeError, asArray, asNumber, asObject, asString, isObject } from '../../src/core/decode.js';
import type { Event, Resource } from '../../src/mesos/types.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/mesos-1.12', import.meta.url));
const load = (name: string): unknown => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as unknown;

/** Every event object in the fixture directory, with where it came from. */
function fixtureEvents(): { where: string; raw: unknown }[] {
  const out: { where: string; raw: unknown }[] = [];
  for (const file of readdirSync(FIXTURES).filter((f) => f.startsWith('event'))) {
    const data = load(file);
    if (Array.isArray(data)) data.forEach((e, i) => out.push({ where: `${file}[${i}]`, raw: e }));
    else out.push({ where: file, raw: data });
  }
  asArray(load('transcript.json'), 'transcript', (x) => asObject(x, 'entry')).forEach((entry, i) => {
    if (entry['dir'] === 'event') out.push({ where: `transcript[${i}]`, raw: entry['event'] });
  });
  return out;
}

/** Every recorded call answer: type, status, body. */
function fixtureResponses(): { where: string; type: string; status: number; body: string; request: unknown }[] {
  const out: { where: string; type: string; status: number; body: string; request: unknown }[] = [];
  for (const file of readdirSync(FIXTURES).filter((f) => f.startsWith('call-'))) {
    const o = asObject(load(file), file);
    const request = o['request'];
    const type = isObject(request) && typeof request['type'] === 'string' ? request['type'] : 'CALL';
    out.push({ where: file, type, status: asNumber(o['status'], 'status'), body: asString(o['body'], 'body'), request });
  }
  asArray(load('transcript.json'), 'transcript', (x) => asObject(x, 'entry')).forEach((entry, i) => {
    if (entry['dir'] !== 'call') return;
    const body = asObject(entry['body'], 'body');
    out.push({ where: `transcript[${i}]`, type: asString(body['type'], 'type'), status: asNumber(entry['status'], 'status'), body: asString(entry['response'], 'response'), request: body });
  });
  return out;
}

describe('event decoding against a genuine Mesos 1.12 master', () => {
  const events = fixtureEvents();

  it('finds the recorded events', () => {
    expect(events.length).toBeGreaterThanOrEqual(20);
  });

  it('decodes every recorded event into a known type, losslessly', () => {
    for (const { where, raw } of events) {
      const ev = decodeEvent(raw);
      expect(ev.type, where).not.toBe('UNKNOWN');
      expect(ev.type, where).toBe(asObject(raw, where)['type']);
      // Decoding keeps every field the master sent (ids, container_status, url...).
      expect(JSON.parse(JSON.stringify(ev)), where).toEqual(raw);
    }
  });

  it('decodes through RecordIO exactly as it would arrive on the stream', () => {
    const stream = Buffer.concat(events.map((e) => encodeJsonRecord(e.raw)));
    const decoder = new RecordIoDecoder();
    const out: Event[] = [];
    for (let i = 0; i < stream.length; i += 97) out.push(...decoder.decode(stream.subarray(i, i + 97)).map((r) => decodeEventRecord(r)));
    expect(out.map((e) => e.type)).toEqual(events.map((e) => asObject(e.raw, 'e')['type']));
  });

  it('types the fields Locus relies on', () => {
    const sub = decodeEvent(load('event-subscribed.json'));
    if (sub.type !== 'SUBSCRIBED') throw new Error('expected SUBSCRIBED');
    expect(sub.subscribed.framework_id.value).toBe('b7072341-e820-45b7-b63b-36e54b536544-0000');
    expect(sub.subscribed.heartbeat_interval_seconds).toBe(15);
    expect(sub.subscribed.master_info?.address?.port).toBe(5050);

    const offers = decodeEvent(load('event-offers-with-volume.json'));
    if (offers.type !== 'OFFERS') throw new Error('expected OFFERS');
    const res = offers.offers.offers?.[0]?.resources ?? [];
    const vol = res.find((r: Resource) => r.disk?.persistence !== undefined);
    expect(vol?.disk?.persistence?.id).toBe('cap-vol-1');
    expect(vol?.reservations?.[0]?.labels?.labels[0]).toEqual({ key: 'locus.volume', value: 'cap-vol-1' });

    const op = decodeEvent(load('event-operation-status-1.json'));
    if (op.type !== 'UPDATE_OPERATION_STATUS') throw new Error('expected UPDATE_OPERATION_STATUS');
    expect(op.update_operation_status.status.state).toBe('OPERATION_FINISHED');
    expect(op.update_operation_status.status.operation_id?.value).toBe('op-reserve-1');
    expect(op.update_operation_status.status.uuid?.value).toBe('PxwZC2PxR36jpPAbdthHLA==');

    const updates = asArray(load('events-task-updates.json'), 'u', (x) => decodeEvent(x));
    const states = updates.map((u) => (u.type === 'UPDATE' ? u.update.status.state : u.type));
    expect(states).toEqual(['TASK_STARTING', 'TASK_RUNNING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_KILLED']);
    const reconciled = updates[2];
    if (reconciled?.type !== 'UPDATE') throw new Error('expected UPDATE');
    expect(reconciled.update.status.source).toBe('SOURCE_MASTER');
    expect(reconciled.update.status.uuid).toBeUndefined();
  });

  it('keeps unknown event types and tolerates extra fields', () => {
    const ev = decodeEvent({ type: 'SOMETHING_NEW', something_new: { x: 1 } });
    expect(ev).toEqual({ type: 'UNKNOWN', originalType: 'SOMETHING_NEW', raw: { type: 'SOMETHING_NEW', something_new: { x: 1 } } });
    const hb = decodeEvent({ type: 'HEARTBEAT', heartbeat: {}, future_field: [1, 2] });
    expect(hb.type).toBe('HEARTBEAT');
    const rescind = decodeEvent({ type: 'RESCIND', rescind: { offer_id: { value: 'o1', extra: true } } });
    expect(rescind).toMatchObject({ type: 'RESCIND', rescind: { offer_id: { value: 'o1' } } });
  });

  it('rejects known events that lack essential fields, naming the field', () => {
    expect(() => decodeEvent({ type: 'SUBSCRIBED', subscribed: {} })).toThrow(/event\.subscribed\.framework_id/);
    expect(() => decodeEvent({ type: 'UPDATE', update: { status: { task_id: { value: 't' }, state: 'TASK_BOGUS' } } })).toThrow(DecodeError);
    expect(() => decodeEvent({ type: 'OFFERS', offers: { offers: [{ id: { value: 'o' } }] } })).toThrow(/framework_id/);
    expect(() => decodeEvent({ type: 'OFFERS', offers: { offers: [] } })).not.toThrow();
    expect(() => decodeEventRecord('not json')).toThrow(/invalid JSON/);
    expect(() => decodeEvent(['HEARTBEAT'])).toThrow(/expected an object/);
  });
});

describe('call answers and call bodies against the recording', () => {
  const responses = fixtureResponses();

  it('classifies every recorded answer', () => {
    expect(responses.length).toBeGreaterThanOrEqual(10);
    const accepted = responses.filter((r) => r.status === 202);
    const refused = responses.filter((r) => r.status !== 202);
    // The recording has both kinds, so neither loop below can pass by having nothing to check.
    expect(accepted.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of accepted) expect(interpretCallResponse(r.type, r.status, r.body).kind, r.where).toBe('ok');
    for (const r of refused) {
      expect(interpretCallResponse(r.type, r.status, r.body), r.where).toMatchObject({
        kind: 'fail',
        error: { message: expect.stringContaining(r.body.slice(0, 40)), details: { status: r.status } },
      });
    }
    expect(interpretCallResponse('ACCEPT', 503, 'not ready').kind).toBe('retry');
    expect(interpretCallResponse('ACCEPT', 307, '', 'http://x:1/api/v1/scheduler')).toEqual({ kind: 'redirect', location: 'http://x:1/api/v1/scheduler' });
    const unauth = interpretCallResponse('SUBSCRIBE', 401, '');
    expect(unauth.kind === 'fail' && unauth.error.code).toBe('UNAUTHENTICATED');
  });

  it('builds the same bodies the recorded framework sent', () => {
    const byName = new Map<string, unknown>();
    for (const e of asArray(load('transcript.json'), 't', (x) => asObject(x, 'e'))) {
      if (e['dir'] === 'call') byName.set(asString(e['name'], 'name'), e['body']);
    }
    expect(calls.teardown()).toEqual(byName.get('teardown'));
    expect(calls.revive(['locus'])).toEqual(byName.get('revive'));
    const agent = { value: 'b7072341-e820-45b7-b63b-36e54b536544-S0' };
    const task = { value: 'capture-task-1' };
    expect(calls.kill(task, agent)).toEqual(byName.get('kill'));
    expect(calls.reconcile([{ task_id: task, agent_id: agent }])).toEqual(byName.get('reconcile'));

    // Rebuild the RESERVE + CREATE accept from its parts with the builders.
    const recorded = asObject(asObject(byName.get('accept-reserve-create'), 'b')['accept'], 'accept');
    const [reserveOp, createOp] = asArray(recorded['operations'], 'ops', (x) => asObject(x, 'op'));
    const reserveRes = asObject(reserveOp?.['reserve'], 'r')['resources'] as Resource[];
    const volumes = asObject(createOp?.['create'], 'c')['volumes'] as Resource[];
    const rebuilt = calls.accept(
      ['b7072341-e820-45b7-b63b-36e54b536544-O0'],
      [ops.reserve(reserveRes, 'op-reserve-1'), ops.create(volumes, 'op-create-1')],
      { refuse_seconds: 0 },
    );
    expect(rebuilt).toEqual(byName.get('accept-reserve-create'));
  });
});
