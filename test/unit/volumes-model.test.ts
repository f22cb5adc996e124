/** Volume validation, the state machines, stored-record decoding, `near` host choice and operation ids. */
import { describe, expect, it } from 'vitest';
import { LocusError } from '../../src/core/errors.js';
import { decodeHolding } from '../../src/volumes/codec.js';
import { applyOperationStatus, requestDelete } from '../../src/volumes/feedback.js';
import { holdingView, validateContainerPath, validateReservationRequest, validateVolumeRequest, type VolumeRecord } from '../../src/volumes/model.js';
import { chooseNearHost } from '../../src/volumes/near.js';
import { VOLUME_STATES, canTransition, transition, transitionTable } from '../../src/volumes/states.js';
import { operationId, parseOperationId } from '../../src/volumes/wire.js';

const fieldOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    if (err instanceof LocusError) return `${err.code}:${err.field ?? ''}`;
    throw err;
  }
  return undefined;
};

const base: VolumeRecord = {
  kind: 'volume', id: 'vol-1', tenant: 't', role: 'r', name: 'v', sizeMiB: 10, containerPath: 'data', mode: 'RW', usedBy: [],
  state: 'REQUESTED', ops: {}, attempt: 0, deleteRequested: false, placement: { constraints: [] }, labels: {}, createdAt: 1, updatedAt: 1, version: 1,
};

describe('volume request validation', () => {
  it('accepts a full request and fills defaults', () => {
    expect(validateVolumeRequest({ name: 'cache.v1_a-b', size: '10GiB' })).toEqual({
      name: 'cache.v1_a-b', sizeMiB: 10240, containerPath: 'data', mode: 'RW', placement: { constraints: [] }, labels: {},
    });
    const full = validateVolumeRequest({
      name: 'x', size: 1.5, containerPath: 'a/b/', mode: 'RW', near: 'hdfs://nn:8020/data', labels: { team: 'ml' },
      constraints: [{ attribute: 'rack', op: 'IN', value: 'r1,r2' }], tenant: 'alpha',
    });
    expect(full).toMatchObject({ sizeMiB: 2, containerPath: 'a/b', mode: 'RW', placement: { near: 'hdfs://nn:8020/data' }, tenant: 'alpha' });
  });
  it.each([
    [{ size: '1G' }, 'INVALID_FIELD:name'],
    // Mesos refuses CREATE of read-only persistent volumes.
    [{ name: 'v', size: '1G', mode: 'RO' }, 'INVALID_FIELD:mode'],
    [{ name: '..', size: '1G' }, 'INVALID_FIELD:name'],
    [{ name: '.', size: '1G' }, 'INVALID_FIELD:name'],
    [{ name: 'ünï', size: '1G' }, 'INVALID_FIELD:name'],
    [{ name: 'a b', size: '1G' }, 'INVALID_FIELD:name'],
    [{ name: 'v', size: '1 zettabyte' }, 'INVALID_FIELD:size'],
    [{ name: 'v', size: -1 }, 'INVALID_FIELD:size'],
    [{ name: 'v', size: '2PiB' }, 'INVALID_FIELD:size'],
    [{ name: 'v', size: true }, 'INVALID_FIELD:size'],
    [{ name: 'v', size: '1G', mode: 'rw' }, 'INVALID_FIELD:mode'],
    [{ name: 'v', size: '1G', agent: 'a', near: 'hdfs://x/y' }, 'INVALID_FIELD:near'],
    [{ name: 'v', size: '1G', constraints: [{ attribute: 'rack' }] }, 'INVALID_FIELD:constraints[0].value'],
    [{ name: 'v', size: '1G', labels: { 'locus.x': 'y' } }, 'INVALID_FIELD:labels.locus.x'],
    [{ name: 'v', size: '1G', extra: 1 }, 'INVALID_FIELD:extra'],
    ['nope', 'INVALID_FIELD:body'],
  ])('refuses %j', (body, expected) => {
    expect(fieldOf(() => validateVolumeRequest(body))).toBe(expected);
  });
  it.each(['../x', 'a/../../b', '/abs', 'a//b', './a', 'a/./b', 'dätä', 'a\u0000b', ''])('refuses container path %j', (p) => {
    expect(fieldOf(() => validateContainerPath(p))).toBe('INVALID_FIELD:containerPath');
  });
  it('validates capacity reservations', () => {
    expect(validateReservationRequest({ resources: { cpus: 2, mem: '4GiB', disk: 100 } }).resources).toEqual({ cpus: 2, mem: 4096, disk: 100 });
    expect(fieldOf(() => validateReservationRequest({ resources: {} }))).toBe('INVALID_FIELD:resources');
    expect(fieldOf(() => validateReservationRequest({ resources: { gpus: 1 } }))).toBe('INVALID_FIELD:resources.gpus');
    expect(fieldOf(() => validateReservationRequest({ resources: { cpus: -1 } }))).toBe('INVALID_FIELD:resources.cpus');
  });
});

describe('state machine', () => {
  it('allows the documented path and refuses jumps', () => {
    const path = ['RESERVING', 'CREATING', 'READY', 'IN_USE', 'READY', 'DESTROYING', 'UNRESERVING', 'DELETED'] as const;
    let rec: VolumeRecord = base;
    for (const s of path) rec = transition(rec, s, 2);
    expect(rec.state).toBe('DELETED');
    expect(() => transition(base, 'IN_USE', 2)).toThrow(LocusError);
    expect(canTransition('volume', 'READY', 'DELETED')).toBe(false);
    expect(canTransition('volume', 'IN_USE', 'DESTROYING')).toBe(false);
    expect(canTransition('reservation', 'RESERVING', 'CREATING')).toBe(false);
    expect(canTransition('reservation', 'RESERVING', 'READY')).toBe(true);
  });
  it('has no way out of DELETED and reaches DELETED from every state that holds something only via teardown', () => {
    for (const kind of ['volume', 'reservation'] as const) {
      expect(transitionTable(kind).DELETED).toEqual([]);
      for (const s of VOLUME_STATES) for (const t of transitionTable(kind)[s]) expect(VOLUME_STATES).toContain(t);
    }
    expect(canTransition('volume', 'UNAVAILABLE', 'DELETED')).toBe(true);
  });
  it('clears reason and resumeState when leaving, unless the patch sets them', () => {
    const r = transition({ ...base, state: 'UNAVAILABLE', reason: 'lost', resumeState: 'READY' }, 'READY', 5);
    expect(r.reason).toBeUndefined();
    expect(r.resumeState).toBeUndefined();
    expect(transition(base, 'FAILED', 5, { reason: 'x' }).reason).toBe('x');
  });
  it('makes deletes idempotent and immediate when nothing was placed', () => {
    expect(requestDelete(base, false, 2)?.state).toBe('DELETED');
    const ready = { ...base, state: 'READY' as const, agentId: 'S0' };
    const marked = requestDelete(ready, false, 2);
    expect(marked).toMatchObject({ state: 'READY', deleteRequested: true });
    expect(requestDelete({ ...ready, deleteRequested: true }, false, 3)).toBeUndefined();
    expect(requestDelete({ ...ready, state: 'DESTROYING' }, false, 3)).toBeUndefined();
  });
  it('ignores operation statuses for ids it did not send', () => {
    const r = { ...base, state: 'RESERVING' as const, attempt: 2, ops: { reserve: { id: operationId('reserve', 'vol-1', 2), sentAt: 1 } } };
    expect(applyOperationStatus(r, { operation_id: { value: operationId('reserve', 'vol-1', 1) }, state: 'OPERATION_FINISHED' }, 5)).toBeUndefined();
    expect(applyOperationStatus(r, { operation_id: { value: 'op-reserve-1' }, state: 'OPERATION_FINISHED' }, 5)).toBeUndefined();
    expect(applyOperationStatus(r, { operation_id: { value: operationId('reserve', 'vol-1', 2) }, state: 'OPERATION_PENDING' }, 5)).toBeUndefined();
    expect(applyOperationStatus(r, { operation_id: { value: operationId('reserve', 'vol-1', 2) }, state: 'OPERATION_FINISHED' }, 5)?.state).toBe('CREATING');
  });
});

describe('codec, ids, near', () => {
  it('round-trips a record through JSON and rejects a corrupt one', () => {
    const rec: VolumeRecord = { ...base, state: 'UNAVAILABLE', resumeState: 'READY', reason: 'lost', agentId: 'S0', hostname: 'h', ops: { create: { id: 'c', sentAt: 3 } }, labels: { a: 'b' }, placement: { near: 'hdfs://x/y', targetHost: 'h', constraints: [{ attribute: 'rack', op: 'EQ', value: 'r1' }] } };
    expect(decodeHolding(JSON.parse(JSON.stringify(rec)))).toEqual(rec);
    expect(() => decodeHolding({ ...rec, state: 'BOGUS' })).toThrow(/state/);
    expect(holdingView(rec)).toMatchObject({ state: 'UNAVAILABLE', name: 'v', sizeMiB: 10 });
  });
  it('encodes operation ids that parse back', () => {
    const id = operationId('unreserve', 'vol-6d1c-4', 12);
    expect(parseOperationId(id)).toEqual({ op: 'unreserve', holdingId: 'vol-6d1c-4', attempt: 12 });
    expect(parseOperationId('op-create-1')).toBeUndefined();
  });
  it('chooses the host with the most bytes', () => {
    const files = [
      { uri: 'a', size: 300, splits: [{ offset: 0, length: 200, hosts: ['h1', 'h2'], racks: [] }, { offset: 200, length: 100, hosts: ['h2', 'h3'], racks: [] }] },
      { uri: 'b', size: 50, splits: [{ offset: 0, length: 50, hosts: ['h3'], racks: [] }] },
    ];
    expect(chooseNearHost(files)).toBe('h2');
    expect(chooseNearHost([])).toBeUndefined();
  });
});
