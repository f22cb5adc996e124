import { fileURLToPath } from 'node:url';
/**
 * The pure volume planner and its handlers, driven through a small model of
 * a Mesos agent that applies RESERVE/CREATE/DESTROY/UNRESERVE to its
 * resources and offers them back in the shapes of the recorded Mesos 1.12
 * conversation.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeEvent } from '../../src/mesos/events.js';
import type * as types from '../../src/mesos/types.js';
import { applyOperationStatus, markAgentLost, markInUse, markReleased, requestDelete } from '../../src/volumes/feedback.js';
import type { HoldingRecord, ReservationRecord, VolumeRecord } from '../../src/volumes/model.js';
import {
  DEFAULT_PLANNER_OPTIONS, hasPendingWork, operationsToReconcile, planVolumeOperations, type OrphanSighting, type PlannerContext, type VolumePlan,
} from '../../src/volumes/planner.js';
import { tagOf } from '../../src/volumes/wire.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/mesos-1.12', import.meta.url));
const WHO = { framework: 'locus-test', principal: 'locus-capture' };

function fixtureOffer(name: string): types.Offer {
  const ev = decodeEvent(JSON.parse(readFileSync(`${FIXTURES}/${name}`, 'utf8')) as unknown);
  if (ev.type !== 'OFFERS' || !ev.offers.offers?.[0]) throw new Error('expected OFFERS');
  return ev.offers.offers[0];
}
const TEMPLATE = fixtureOffer('event-offers-unreserved.json');

const strip = (r: types.Resource): types.Resource => {
  const { allocation_info: _a, ...rest } = r;
  return rest;
};
const sameReservation = (a: types.Resource, b: types.Resource): boolean =>
  a.name === b.name && JSON.stringify(a.reservations) === JSON.stringify(b.reservations);

/** A model agent: applies operations like the master does and offers what is free. */
class Agent {
  resources: types.Resource[];
  private seq = 0;
  constructor(readonly agentId: string, readonly hostname: string, readonly role = 'locus', disk = 8192, readonly attributes: types.Attribute[] = []) {
    this.resources = TEMPLATE.resources.map(strip).map((r) => (r.name === 'disk' ? { ...r, scalar: { value: disk } } : r));
  }
  offer(): types.Offer {
    return {
      ...TEMPLATE,
      id: { value: `${this.agentId}-O${this.seq++}` },
      agent_id: { value: this.agentId },
      hostname: this.hostname,
      attributes: this.attributes,
      resources: this.resources.map((r) => ({ ...r, allocation_info: { role: this.role } })),
    };
  }
  private take(name: string, value: number): void {
    const r = this.resources.find((x) => x.name === name && !x.reservations && !x.disk);
    if (!r?.scalar || r.scalar.value < value - 1e-9) throw new Error(`agent ${this.hostname}: not enough ${name}`);
    this.resources = this.resources.map((x) => (x === r ? { ...x, scalar: { value: Math.round((r.scalar?.value ?? 0) * 1000 - value * 1000) / 1000 } } : x));
  }
  private give(name: string, value: number): void {
    this.resources = this.resources.map((x) => (x.name === name && !x.reservations && !x.disk ? { ...x, scalar: { value: (x.scalar?.value ?? 0) + value } } : x));
  }
  apply(ops: readonly types.Operation[]): void {
    for (const op of ops) {
      if (op.type === 'RESERVE') {
        for (const r of op.reserve.resources ?? []) {
          this.take(r.name, r.scalar?.value ?? 0);
          this.resources.push(strip(r));
        }
      } else if (op.type === 'CREATE') {
        for (const v of op.create.volumes) {
          const i = this.resources.findIndex((x) => sameReservation(x, v) && !x.disk);
          if (i < 0) throw new Error('CREATE without reserved disk');
          this.resources.splice(i, 1, strip(v));
        }
      } else if (op.type === 'DESTROY') {
        for (const v of op.destroy.volumes) {
          const i = this.resources.findIndex((x) => x.disk?.persistence?.id === v.disk?.persistence?.id);
          if (i < 0) throw new Error('DESTROY of an unknown volume');
          const { disk: _d, ...rest } = strip(v);
          this.resources.splice(i, 1, rest);
        }
      } else if (op.type === 'UNRESERVE') {
        for (const r of op.unreserve.resources) {
          const i = this.resources.findIndex((x) => sameReservation(x, r) && !x.disk);
          if (i < 0) throw new Error('UNRESERVE of unknown resources');
          this.resources.splice(i, 1);
          this.give(r.name, r.scalar?.value ?? 0);
        }
      }
    }
  }
  labelled(): types.Resource[] {
    return this.resources.filter((r) => tagOf(r) !== undefined);
  }
  unreservedDisk(): number {
    return this.resources.find((r) => r.name === 'disk' && !r.reservations)?.scalar?.value ?? 0;
  }
}

/** In-memory "store" plus clock around the planner, like the service does. */
class World {
  now = 1_000_000;
  orphans: ReadonlyMap<string, OrphanSighting> = new Map();
  records = new Map<string, HoldingRecord>();
  inUse = new Set<string>();
  constructor(readonly options: Partial<PlannerContext> = {}) {}
  ctx(): PlannerContext {
    return { ...DEFAULT_PLANNER_OPTIONS, now: this.now, who: WHO, orphans: this.orphans, inUse: this.inUse, ...this.options };
  }
  add<T extends HoldingRecord>(r: T): T {
    this.records.set(r.id, r);
    return r;
  }
  get(id: string): HoldingRecord {
    const r = this.records.get(id);
    if (!r) throw new Error(`no ${id}`);
    return r;
  }
  put(next: HoldingRecord | undefined): boolean {
    if (!next) return false;
    const cur = this.get(next.id);
    this.records.set(next.id, { ...next, version: cur.version + 1 });
    return true;
  }
  cycle(agents: readonly Agent[], apply = true): VolumePlan {
    const offers = agents.map((a) => a.offer());
    const plan = planVolumeOperations([...this.records.values()], offers, this.ctx());
    for (const c of plan.changes) {
      expect(this.get(c.before.id).version).toBe(c.before.version);
      this.put(c.after);
    }
    this.orphans = plan.orphans;
    if (apply) {
      for (const o of plan.offers) agents.find((a) => a.agentId === o.agentId)?.apply(o.groups.flatMap((g) => g.operations));
    }
    return plan;
  }
  status(opId: string, state: types.OperationState, agentId = 'S0'): boolean {
    const holdingId = /^locus\.[a-z]+\.(.+)\.\d+$/.exec(opId)?.[1] ?? '';
    return this.put(applyOperationStatus(this.get(holdingId), { operation_id: { value: opId }, state, agent_id: { value: agentId }, uuid: { value: 'dXVpZA==' } }, this.now));
  }
}

let n = 0;
function volume(over: Partial<VolumeRecord> = {}): VolumeRecord {
  n++;
  return {
    kind: 'volume', id: `vol-${n}`, tenant: 'default', role: 'locus', name: `v${n}`, sizeMiB: 1024, containerPath: 'data', mode: 'RW', usedBy: [],
    state: 'REQUESTED', ops: {}, attempt: 0, deleteRequested: false, placement: { constraints: [] }, labels: {},
    createdAt: 1_000_000, updatedAt: 1_000_000, version: 1, ...over,
  };
}
function reservation(over: Partial<ReservationRecord> = {}): ReservationRecord {
  n++;
  return {
    kind: 'reservation', id: `res-${n}`, tenant: 'default', role: 'locus', resources: { cpus: 0.5, mem: 256, disk: 100 },
    state: 'REQUESTED', ops: {}, attempt: 0, deleteRequested: false, placement: { constraints: [] }, labels: {},
    createdAt: 1_000_000, updatedAt: 1_000_000, version: 1, ...over,
  };
}
const opsOf = (p: VolumePlan): types.Operation[] => p.offers.flatMap((o) => o.groups.flatMap((g) => g.operations));
const opTypes = (p: VolumePlan): string[] => opsOf(p).map((o) => o.type);
const opId = (p: VolumePlan, type: string): string => opsOf(p).find((o) => o.type === type)?.id?.value ?? '';

describe('reserve → create → READY', () => {
  it('sends RESERVE + CREATE in the recorded shapes and confirms by operation status', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume({ sizeMiB: 64 }));
    const plan = w.cycle([a]);
    expect(opTypes(plan)).toEqual(['RESERVE', 'CREATE']);
    expect(plan.offers[0]?.consumed).toEqual({ cpus: 0, mem: 0, disk: 64 });
    expect(w.get(v.id)).toMatchObject({ state: 'RESERVING', agentId: 'S0', hostname: 'agent-a', attempt: 1 });

    // Same structure as the recorded ACCEPT, with Locus's labels added.
    const recorded = JSON.parse(readFileSync(`${FIXTURES}/call-accept-reserve-create.json`, 'utf8')) as {
      request: { accept: { operations: [{ reserve: { resources: types.Resource[] } }, { create: { volumes: types.Resource[] } }] } };
    };
    const [reserve, create] = opsOf(plan);
    if (reserve?.type !== 'RESERVE' || create?.type !== 'CREATE') throw new Error('shape');
    const recDisk = recorded.request.accept.operations[0].reserve.resources[0];
    const ourDisk = reserve.reserve.resources?.[0];
    expect(ourDisk).toMatchObject({ name: recDisk?.name, type: recDisk?.type, scalar: recDisk?.scalar, allocation_info: { role: 'locus' } });
    expect(ourDisk?.reservations?.[0]).toMatchObject({ type: 'DYNAMIC', role: 'locus', principal: 'locus-capture' });
    expect(ourDisk?.reservations?.[0]?.labels?.labels).toEqual([
      { key: 'locus.volume', value: v.id }, { key: 'locus.framework', value: 'locus-test' }, { key: 'locus.tenant', value: 'default' },
    ]);
    const recVol = recorded.request.accept.operations[1].create.volumes[0];
    expect(Object.keys(create.create.volumes[0]?.disk ?? {}).sort()).toEqual(Object.keys(recVol?.disk ?? {}).sort());
    expect(create.create.volumes[0]?.disk).toEqual({ persistence: { id: v.id, principal: 'locus-capture' }, volume: { container_path: 'data', mode: 'RW' } });

    expect(w.status(opId(plan, 'RESERVE'), 'OPERATION_FINISHED')).toBe(true);
    expect(w.get(v.id).state).toBe('CREATING');
    expect(w.status(opId(plan, 'CREATE'), 'OPERATION_FINISHED')).toBe(true);
    expect(w.get(v.id)).toMatchObject({ state: 'READY', ops: {} });
    // A replayed status changes nothing.
    expect(w.status(opId(plan, 'CREATE'), 'OPERATION_FINISHED')).toBe(false);
    // Offered back: recognised, nothing to do, and the volume's disk is not free capacity.
    const again = w.cycle([a]);
    expect(again.changes).toEqual([]);
    expect(opsOf(again)).toEqual([]);
    expect(a.unreservedDisk()).toBe(8192 - 64);
  });

  it('confirms from offers alone when the master sends no operation feedback', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume());
    w.cycle([a]);
    w.now += 1000;
    w.cycle([a]);
    expect(w.get(v.id).state).toBe('READY');
  });

  it('recognises the recorded offer with a volume (fixture labels)', () => {
    const offer = fixtureOffer('event-offers-with-volume.json');
    const w = new World();
    const v = w.add(volume({ id: 'cap-vol-1', sizeMiB: 64, state: 'RESERVING', agentId: offer.agent_id.value, attempt: 1, ops: { reserve: { id: 'op-reserve-1', sentAt: w.now } } }));
    const plan = planVolumeOperations([v], [offer], w.ctx());
    expect(plan.changes[0]?.after).toMatchObject({ state: 'READY' });
    // Reserved cpus/mem under the same label belong to the holding, not to anyone's orphan list.
    expect(plan.orphans.size).toBe(0);
  });

  it('never books one offer twice within a cycle', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a', 'locus', 8192);
    const v1 = w.add(volume({ sizeMiB: 5000 }));
    const v2 = w.add(volume({ sizeMiB: 5000, createdAt: 1_000_001 }));
    const plan = w.cycle([a]);
    expect(opTypes(plan)).toEqual(['RESERVE', 'CREATE']);
    expect(w.get(v1.id).state).toBe('RESERVING');
    expect(w.get(v2.id)).toMatchObject({ state: 'REQUESTED', reason: expect.stringContaining('waiting for an offer') });
  });

  it('retries a failed RESERVE and gives up on an invalid one', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume());
    const p1 = w.cycle([a], false);
    w.status(opId(p1, 'RESERVE'), 'OPERATION_FAILED');
    expect(w.get(v.id)).toMatchObject({ state: 'REQUESTED', attempt: 1, reason: expect.stringContaining('OPERATION_FAILED') });
    const p2 = w.cycle([a], false);
    expect(opId(p2, 'RESERVE')).toBe(`locus.reserve.${v.id}.2`);
    // A late status for attempt 1 is stale.
    expect(w.status(opId(p1, 'RESERVE'), 'OPERATION_FINISHED')).toBe(false);
    w.status(opId(p2, 'RESERVE'), 'OPERATION_UNSUPPORTED');
    expect(w.get(v.id).state).toBe('FAILED');
  });

  it('retries after OPERATION_ERROR (a genuine master\'s answer for an offer that was no longer valid)', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume());
    const p1 = w.cycle([a], false);
    w.status(opId(p1, 'RESERVE'), 'OPERATION_ERROR');
    expect(w.get(v.id)).toMatchObject({ state: 'REQUESTED', attempt: 1, reason: expect.stringContaining('OPERATION_ERROR') });
    const p2 = w.cycle([a], false);
    expect(opId(p2, 'RESERVE')).toBe(`locus.reserve.${v.id}.2`);
  });
});

describe('crash recovery', () => {
  it('retries a RESERVE that never reached the master, after the timeout only', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume());
    w.cycle([a], false); // written RESERVING, crashed before ACCEPT
    w.now += 1000;
    expect(w.cycle([a]).changes).toEqual([]);
    w.now += DEFAULT_PLANNER_OPTIONS.operationTimeoutMs;
    w.cycle([a]);
    expect(w.get(v.id)).toMatchObject({ state: 'REQUESTED', reason: expect.stringContaining('not confirmed') });
    const p = w.cycle([a]);
    expect(opTypes(p)).toEqual(['RESERVE', 'CREATE']);
    w.now += 1;
    w.cycle([a]);
    expect(w.get(v.id).state).toBe('READY');
    expect(a.labelled()).toHaveLength(1);
  });

  it('adopts a reservation made before a crash instead of reserving twice', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const b = new Agent('S1', 'agent-b');
    const v = w.add(volume());
    const p = w.cycle([a], false);
    // Only the RESERVE happened; the record was then reset to REQUESTED (timeout while the agent was busy).
    a.apply(opsOf(p).filter((o) => o.type === 'RESERVE'));
    w.records.set(v.id, { ...w.get(v.id), state: 'REQUESTED', ops: {}, agentId: undefined, hostname: undefined });
    w.orphans = new Map(); // a restarted process remembers no sightings
    w.now += 1000;
    const p2 = w.cycle([b, a]);
    expect(w.get(v.id)).toMatchObject({ state: 'CREATING', agentId: 'S0' });
    expect(opTypes(p2)).toEqual([]);
    w.now += DEFAULT_PLANNER_OPTIONS.operationTimeoutMs;
    const p3 = w.cycle([b, a]);
    expect(opTypes(p3)).toEqual(['CREATE']);
    expect(p3.offers[0]?.agentId).toBe('S0');
    w.now += 1;
    w.cycle([b, a]);
    expect(w.get(v.id).state).toBe('READY');
    expect(b.labelled()).toHaveLength(0);
  });

  it('finishes a teardown interrupted by a crash during DESTROYING', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume());
    w.cycle([a]);
    w.now += 1;
    w.cycle([a]);
    w.put(requestDelete(w.get(v.id), false, w.now));
    const p = w.cycle([a], false);
    expect(opTypes(p)).toEqual(['DESTROY', 'UNRESERVE']);
    expect(w.get(v.id).state).toBe('DESTROYING');
    // Crash: only DESTROY reached the agent.
    a.apply(opsOf(p).filter((o) => o.type === 'DESTROY'));
    w.now += 1000;
    w.cycle([a]);
    expect(w.get(v.id).state).toBe('UNRESERVING');
    w.now += DEFAULT_PLANNER_OPTIONS.operationTimeoutMs;
    const p2 = w.cycle([a]);
    expect(opTypes(p2)).toEqual(['UNRESERVE']);
    w.now += 1;
    w.cycle([a]);
    expect(w.get(v.id).state).toBe('DELETED');
    expect(a.labelled()).toEqual([]);
    expect(a.unreservedDisk()).toBe(8192);
  });
});

describe('destroy → unreserve', () => {
  it('tears down with feedback and with offers', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume());
    w.cycle([a]);
    w.now += 1;
    w.cycle([a]);
    expect(w.get(v.id).state).toBe('READY');
    w.put(requestDelete(w.get(v.id), false, w.now));
    expect(hasPendingWork([...w.records.values()])).toBe(true);
    const p = w.cycle([a]);
    expect(opTypes(p)).toEqual(['DESTROY', 'UNRESERVE']);
    const destroy = opsOf(p)[0];
    const unreserve = opsOf(p)[1];
    if (destroy?.type !== 'DESTROY' || unreserve?.type !== 'UNRESERVE') throw new Error('shape');
    expect(destroy.destroy.volumes[0]?.disk?.persistence?.id).toBe(v.id);
    expect(unreserve.unreserve.resources[0]?.disk).toBeUndefined();
    expect(w.status(opId(p, 'DESTROY'), 'OPERATION_FINISHED')).toBe(true);
    expect(w.get(v.id).state).toBe('UNRESERVING');
    expect(w.status(opId(p, 'UNRESERVE'), 'OPERATION_FINISHED')).toBe(true);
    expect(w.get(v.id).state).toBe('DELETED');
    expect(a.unreservedDisk()).toBe(8192);
    expect(hasPendingWork([...w.records.values()])).toBe(false);
  });

  it('accepts deleting a volume an idle executor holds, tears it down once that executor is gone, and refuses one a job uses', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume());
    w.cycle([a]);
    w.now += 1;
    w.cycle([a]);
    w.put(markInUse(w.get(v.id) as VolumeRecord, 'exec-1', w.now));
    // A task that mounts it runs: refused, even with force, naming the task.
    const running = { running: ['job-1.0.0'], waiting: [] };
    expect(() => requestDelete(w.get(v.id), true, w.now, running)).toThrow(expect.objectContaining({ code: 'IN_USE' }));
    expect(() => requestDelete(w.get(v.id), false, w.now, running)).toThrow(/task job-1\.0\.0 mounts it and is running in executor exec-1/);
    // A job waits to run tasks on it: refused, naming the job.
    expect(() => requestDelete(w.get(v.id), false, w.now, { running: [], waiting: [{ jobId: 'job-2', tasks: 3 }] })).toThrow(/job job-2 \(3 tasks\) waits/);
    // Nothing uses it, the executor only idles: accepted, still IN_USE (Mesos holds it in the
    // executor's container) with a reason saying what the delete waits for.
    const idle = { running: [], waiting: [] };
    w.put(requestDelete(w.get(v.id), false, w.now, idle));
    expect(w.get(v.id)).toMatchObject({ state: 'IN_USE', deleteRequested: true, usedBy: ['exec-1'] });
    expect(w.get(v.id).reason).toMatch(/releasing executor exec-1/);
    // Asked again: nothing changes; no acquisition by another executor.
    expect(requestDelete(w.get(v.id), false, w.now, idle)).toBeUndefined();
    w.inUse.add(v.id);
    expect(opTypes(w.cycle([a]))).toEqual([]);
    // The executor is gone: READY with the delete still asked for, torn down at the next offer.
    w.put(markReleased(w.get(v.id) as VolumeRecord, 'exec-1', w.now));
    w.inUse.delete(v.id);
    expect(w.get(v.id)).toMatchObject({ state: 'READY', deleteRequested: true });
    expect(w.get(v.id).reason).toBeUndefined();
    expect(() => markInUse(w.get(v.id) as VolumeRecord, 'exec-2', w.now)).toThrow(/being deleted/);
    expect(hasPendingWork([...w.records.values()])).toBe(true);
    expect(opTypes(w.cycle([a]))).toEqual(['DESTROY', 'UNRESERVE']);
  });

  it('refuses deleting a READY volume jobs wait for, and accepts it when none does', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume());
    w.cycle([a]);
    w.now += 1;
    w.cycle([a]);
    expect(w.get(v.id).state).toBe('READY');
    expect(() => requestDelete(w.get(v.id), true, w.now, { running: [], waiting: [{ jobId: 'job-9', tasks: 1 }] })).toThrow(/job job-9 \(1 task\) waits.*cancel the job/);
    w.put(requestDelete(w.get(v.id), false, w.now, { running: [], waiting: [] }));
    expect(w.get(v.id)).toMatchObject({ state: 'READY', deleteRequested: true });
  });

  it('refuses to delete a volume in use and tears down after release', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume());
    w.cycle([a]);
    w.now += 1;
    w.cycle([a]);
    w.put(markInUse(w.get(v.id) as VolumeRecord, 'exec-1', w.now));
    expect(w.get(v.id).state).toBe('IN_USE');
    expect(() => markInUse(w.get(v.id) as VolumeRecord, 'exec-2', w.now)).toThrow(/in use/);
    expect(() => requestDelete(w.get(v.id), true, w.now)).toThrow(expect.objectContaining({ code: 'IN_USE' }));
    // The refusal names the executor and says when the volume comes free, not only "stop the job".
    expect(() => requestDelete(w.get(v.id), false, w.now)).toThrow(/executor exec-1.*executor-idle-timeout/);
    w.put(markReleased(w.get(v.id) as VolumeRecord, 'exec-1', w.now));
    expect(markReleased(w.get(v.id) as VolumeRecord, 'exec-1', w.now)).toBeUndefined();
    expect(w.get(v.id).state).toBe('READY');
    w.put(requestDelete(w.get(v.id), false, w.now));
    // Still guarded by the coordinator's in-use set.
    w.inUse.add(v.id);
    expect(opTypes(w.cycle([a]))).toEqual([]);
    w.inUse.delete(v.id);
    expect(opTypes(w.cycle([a]))).toEqual(['DESTROY', 'UNRESERVE']);
  });
});

describe('lost agents', () => {
  it('marks volumes UNAVAILABLE, never destroys them, and resumes when the agent returns', () => {
    const w = new World({ orphanGraceMs: 1000 });
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume());
    w.cycle([a]);
    w.now += 1;
    w.cycle([a]);
    w.put(markInUse(w.get(v.id) as VolumeRecord, 'exec-1', w.now));
    w.put(markAgentLost(w.get(v.id), 'S0', 'agent removed', w.now));
    expect(w.get(v.id)).toMatchObject({ state: 'UNAVAILABLE', reason: 'agent removed', resumeState: 'IN_USE', usedBy: [] });
    for (let i = 0; i < 5; i++) {
      w.now += 10_000;
      const p = w.cycle([new Agent('S9', 'other')]);
      expect(opTypes(p)).toEqual([]);
    }
    expect(() => requestDelete(w.get(v.id), false, w.now)).toThrow(expect.objectContaining({ code: 'CONFLICT' }));
    w.cycle([a]);
    expect(w.get(v.id)).toMatchObject({ state: 'READY' });
    expect(w.get(v.id).resumeState).toBeUndefined();
    expect(a.labelled()).toHaveLength(1);
  });

  it('forgets a force-deleted unavailable volume and collects it as an orphan when the agent returns', () => {
    const w = new World({ orphanGraceMs: 5000 });
    const a = new Agent('S0', 'agent-a');
    const v = w.add(volume());
    w.cycle([a]);
    w.now += 1;
    w.cycle([a]);
    w.put(markAgentLost(w.get(v.id), 'S0', 'agent removed', w.now));
    w.put(requestDelete(w.get(v.id), true, w.now));
    expect(w.get(v.id).state).toBe('DELETED');
    w.now += 1000;
    expect(opTypes(w.cycle([a]))).toEqual([]);
    expect(w.orphans.size).toBe(1);
    w.now += 5000;
    expect(opTypes(w.cycle([a]))).toEqual(['DESTROY', 'UNRESERVE']);
    expect(a.labelled()).toEqual([]);
  });
});

describe('orphans', () => {
  function orphanAgent(framework: string): Agent {
    const a = new Agent('S0', 'agent-a');
    const w = new World();
    const v = w.add(volume({ id: 'vol-ghost' }));
    const p = planVolumeOperations([v], [a.offer()], { ...w.ctx(), who: { framework, principal: 'p' } });
    a.apply(opsOf(p));
    return a;
  }
  it('collects our orphans only after the grace period', () => {
    const w = new World({ orphanGraceMs: 60_000 });
    const a = orphanAgent('locus-test');
    expect(opTypes(w.cycle([a]))).toEqual([]);
    expect([...w.orphans.values()]).toEqual([expect.objectContaining({ holdingId: 'vol-ghost', agentId: 'S0' })]);
    expect(hasPendingWork([], w.orphans)).toBe(true);
    w.now += 59_999;
    expect(opTypes(w.cycle([a]))).toEqual([]);
    w.now += 1;
    const p = w.cycle([a]);
    expect(opTypes(p)).toEqual(['DESTROY', 'UNRESERVE']);
    expect(p.collected).toHaveLength(1);
    expect(a.labelled()).toEqual([]);
  });
  it('never collects while in use, nor another framework\'s resources', () => {
    const w = new World({ orphanGraceMs: 1000 });
    const mine = orphanAgent('locus-test');
    w.inUse.add('vol-ghost');
    w.cycle([mine]);
    w.now += 10_000;
    expect(opTypes(w.cycle([mine]))).toEqual([]);
    const w2 = new World({ orphanGraceMs: 1000 });
    const theirs = orphanAgent('someone-else');
    w2.cycle([theirs]);
    w2.now += 10_000;
    expect(opTypes(w2.cycle([theirs]))).toEqual([]);
    // The recorded fixture (no framework label) is not provably ours either.
    const plan = planVolumeOperations([], [fixtureOffer('event-offers-with-volume.json')], { ...w2.ctx(), orphanGraceMs: 0 });
    expect(opsOf(plan)).toEqual([]);
  });
  it('remembers sightings across cycles on other agents and forgets when the agent offers without it', () => {
    const w = new World({ orphanGraceMs: 60_000 });
    const a = orphanAgent('locus-test');
    const b = new Agent('S1', 'agent-b');
    w.cycle([a]);
    w.now += 30_000;
    w.cycle([b]);
    expect(w.orphans.size).toBe(1);
    w.now += 30_000;
    expect(opTypes(w.cycle([a]))).toEqual(['DESTROY', 'UNRESERVE']);
  });
});

describe('placement', () => {
  it('prefers the near host, waits a bounded time for it, then takes any agent', () => {
    const w = new World({ nearWaitMs: 10_000 });
    const a = new Agent('S0', 'agent-a');
    const b = new Agent('S1', 'agent-b');
    const v = w.add(volume({ placement: { near: 'hdfs://nn/data', targetHost: 'agent-b', constraints: [] } }));
    w.cycle([a]);
    expect(w.get(v.id)).toMatchObject({ state: 'REQUESTED', reason: expect.stringContaining('agent-b') });
    const v2 = w.add(volume({ placement: { near: 'hdfs://nn/data', targetHost: 'agent-b', constraints: [] } }));
    w.cycle([a, b]);
    expect(w.get(v.id)).toMatchObject({ state: 'RESERVING', hostname: 'agent-b' });
    w.now += 10_000;
    w.cycle([a]);
    expect(w.get(v2.id)).toMatchObject({ state: 'RESERVING', hostname: 'agent-b' });
    const v3 = w.add(volume({ placement: { near: 'hdfs://nn/data', targetHost: 'agent-b', constraints: [] } }));
    w.cycle([a]);
    expect(w.get(v3.id)).toMatchObject({ state: 'RESERVING', hostname: 'agent-a' });
  });
  it('honours agent pinning, constraints and the tenant role', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a', 'locus', 8192, [{ name: 'rack', type: 'TEXT', text: { value: 'r1' } }]);
    const b = new Agent('S1', 'agent-b', 'locus', 9000, [{ name: 'rack', type: 'TEXT', text: { value: 'r2' } }]);
    const pinned = w.add(volume({ placement: { agent: 'agent-a', constraints: [] } }));
    const racked = w.add(volume({ placement: { constraints: [{ attribute: 'rack', op: 'EQ', value: 'r2' }] } }));
    const otherRole = w.add(volume({ role: 'analytics' }));
    w.cycle([a, b]);
    expect(w.get(pinned.id)).toMatchObject({ hostname: 'agent-a' });
    expect(w.get(racked.id)).toMatchObject({ hostname: 'agent-b' });
    expect(w.get(otherRole.id)).toMatchObject({ state: 'REQUESTED', reason: expect.stringContaining('role analytics') });
  });
});

describe('capacity reservations', () => {
  it('reserves cpus/mem/disk, confirms from offers, and releases', () => {
    const w = new World();
    const a = new Agent('S0', 'agent-a');
    const r = w.add(reservation());
    const p = w.cycle([a]);
    expect(opTypes(p)).toEqual(['RESERVE']);
    const op = opsOf(p)[0];
    if (op?.type !== 'RESERVE') throw new Error('shape');
    expect(op.reserve.resources?.map((x) => [x.name, x.scalar?.value])).toEqual([['disk', 100], ['cpus', 0.5], ['mem', 256]]);
    expect(op.reserve.resources?.[0]?.reservations?.[0]?.labels?.labels?.[0]).toEqual({ key: 'locus.reservation', value: r.id });
    w.now += 1;
    w.cycle([a]);
    expect(w.get(r.id).state).toBe('READY');
    expect(operationsToReconcile([...w.records.values()])).toEqual([]);
    w.put(requestDelete(w.get(r.id), false, w.now));
    const p2 = w.cycle([a]);
    expect(opTypes(p2)).toEqual(['UNRESERVE']);
    expect(w.get(r.id).state).toBe('UNRESERVING');
    expect(operationsToReconcile([...w.records.values()])).toEqual([{ operation_id: { value: opId(p2, 'UNRESERVE') }, agent_id: { value: 'S0' } }]);
    w.now += 1;
    w.cycle([a]);
    expect(w.get(r.id).state).toBe('DELETED');
    expect(a.labelled()).toEqual([]);
  });
});

describe('pending work', () => {
  it('counts states that need offers', () => {
    expect(hasPendingWork([volume()])).toBe(true);
    expect(hasPendingWork([volume({ state: 'READY' })])).toBe(false);
    expect(hasPendingWork([volume({ state: 'READY', deleteRequested: true })])).toBe(true);
    expect(hasPendingWork([volume({ state: 'IN_USE' }), volume({ state: 'DELETED' })])).toBe(false);
    expect(hasPendingWork([volume({ state: 'UNAVAILABLE' })])).toBe(true);
  });
});
