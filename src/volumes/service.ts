/**
 * The volume service: the facade the API edges call (create, list, get,
 * delete of volumes and capacity reservations) and the scheduler's
 * coordinator drives (offer cycles, operation status, lost agents, executors
 * taking and releasing volumes). Decisions are made by the pure planner and
 * handlers; this class only reads the store, calls them, and writes back.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { LocusError } from '../core/errors.js';
import type { ResourceVector } from '../core/resources.js';
import type { Tenant } from '../core/tenants.js';
import { formatMiB } from '../core/units.js';
import type * as types from '../mesos/types.js';
import type { Logger } from '../obs/log.js';
import { applyOperationStatus, markAgentLost, markInUse, markReleased, requestDelete, type VolumeUse } from './feedback.js';
import type { HoldingBase, HoldingRecord, Placement, ReservationRecord, ReservationRequest, VolumeRecord, VolumeRequest } from './model.js';
import {
  DEFAULT_PLANNER_OPTIONS, hasPendingWork, operationsToReconcile, planVolumeOperations,
  type OrphanSighting, type PlannerOptions,
} from './planner.js';
import type { HoldingStore } from './store.js';
import { parseOperationId, type WireIdentity } from './wire.js';

/** How long hasPendingWork trusts a listing while the store's generation has not moved. */
const PENDING_WORK_MAX_AGE_MS = 30_000;

/**
 * How long hasPendingWork trusts its last read of the store's generation while this process has
 * written no record since: the writes of other processes (an instance that has just lost the
 * lead, a second service on the same Redis) are seen this much later at most.
 */
export const GENERATION_RECHECK_MS = 250;

/** An agent as the scheduler knows it (from offers / the master's state). */
export interface KnownAgent {
  readonly agentId: string;
  readonly hostname: string;
  /** Total resources of the agent (for "can never fit" checks). */
  readonly total: ResourceVector;
}

/** What the service needs. */
export interface VolumeServiceDeps {
  readonly store: HoldingStore;
  readonly clock: Clock;
  readonly who: WireIdentity;
  readonly logger?: Logger;
  /** `near: <uri>` → preferred host (storage port resolve → `chooseNearHost`). */
  readonly resolveNear?: (uri: string) => Promise<string | undefined>;
  /** Agents known to the scheduler; an empty list disables the "bigger than any agent" check. */
  readonly agents?: () => readonly KnownAgent[];
  /** Called when work appears that needs offers (the coordinator revives). */
  readonly onWork?: () => void;
  readonly planner?: Partial<PlannerOptions>;
  /**
   * What of the scheduler's jobs uses a volume (running attempts mounting it, pending tasks pinned
   * to it). With it, a delete of a volume an idle executor still holds is accepted and that
   * executor released; without it such a delete is refused IN_USE (see requestDelete).
   */
  readonly volumeUse?: (v: VolumeRecord) => VolumeUse;
}

/** One ACCEPT's worth of volume operations, ready to merge with the coordinator's LAUNCHes. */
export interface VolumeAccept {
  readonly offerId: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly operations: readonly types.Operation[];
  /** Unreserved resources the operations take from the offer. */
  readonly consumed: ResourceVector;
}

/** The result of creating a volume or reservation. */
export interface CreateResult<T> {
  readonly record: T;
  /** False when an Idempotency-Key replayed an earlier request. */
  readonly created: boolean;
}

/** Which tenant's records a caller may see: one tenant, or all (admin). */
export interface Scope {
  readonly tenant?: string;
}

const fingerprint = (x: unknown): string => createHash('sha256').update(JSON.stringify(x)).digest('hex');

/** The volume and reservation service. */
export class VolumeService {
  private readonly opts: PlannerOptions;
  private orphans: ReadonlyMap<string, OrphanSighting> = new Map();
  /**
   * hasPendingWork's answer for the records at one store generation (orphans are checked apart):
   * when it was listed (`at`), and when the generation was last read (`checkedAt`) with how many
   * writes this process had made by then (`writes`).
   */
  private pendingWork: { readonly generation: string; readonly value: boolean; readonly gone: ReadonlySet<string>; readonly at: number; checkedAt: number; writes: number } | undefined;

  constructor(private readonly deps: VolumeServiceDeps) {
    this.opts = { ...DEFAULT_PLANNER_OPTIONS, ...deps.planner };
  }

  // --- operator API ------------------------------------------------------

  /** Request a new volume for `tenant`. */
  async createVolume(tenant: Tenant, req: VolumeRequest, idempotencyKey?: string): Promise<CreateResult<VolumeRecord>> {
    this.checkFits({ cpus: 0, mem: 0, disk: req.sizeMiB }, req.placement.agent, 'size');
    await this.checkQuota(tenant, { cpus: 0, mem: 0, disk: req.sizeMiB });
    const rec: VolumeRecord = {
      ...(await this.newHolding('vol', tenant, req.placement, req.labels)),
      kind: 'volume',
      name: req.name,
      sizeMiB: req.sizeMiB,
      containerPath: req.containerPath,
      mode: req.mode,
      usedBy: [],
    };
    const idem = idempotencyKey === undefined ? undefined : { key: idempotencyKey, fingerprint: fingerprint({ kind: 'volume', req: { ...req, tenant: tenant.name } }) };
    const out = await this.deps.store.create(rec, idem);
    if (out.status === 'EXISTS' || out.status === 'IDEM_MISMATCH') {
      if (out.status === 'IDEM_MISMATCH') {
        throw new LocusError('CONFLICT', 'this Idempotency-Key was used with a different request', { field: 'Idempotency-Key' });
      }
      throw new LocusError('ALREADY_EXISTS', `a volume named '${req.name}' already exists for tenant ${tenant.name}`, { field: 'name' });
    }
    if (out.record.kind !== 'volume') throw new LocusError('CONFLICT', 'this Idempotency-Key belongs to a reservation', { field: 'Idempotency-Key' });
    if (out.status === 'CREATED') {
      this.deps.logger?.info({ volume: rec.id, name: rec.name, tenant: rec.tenant, sizeMiB: rec.sizeMiB }, 'volume requested');
      this.deps.onWork?.();
    }
    return { record: out.record, created: out.status === 'CREATED' };
  }

  /** Volumes visible in `scope` (DELETED ones only when asked). */
  async listVolumes(scope: Scope, includeDeleted = false): Promise<VolumeRecord[]> {
    const all = await this.deps.store.list({ kind: 'volume', includeDeleted, ...(scope.tenant === undefined ? {} : { tenant: scope.tenant }) });
    return all.filter((r): r is VolumeRecord => r.kind === 'volume');
  }

  /** One volume by tenant and name (the last deleted one if no live one); NOT_FOUND otherwise. */
  async getVolume(tenant: string, name: string): Promise<VolumeRecord> {
    const v = await this.deps.store.getVolumeByName(tenant, name);
    if (!v) throw new LocusError('NOT_FOUND', `no volume '${name}'`, { field: 'name' });
    return v;
  }

  /** Delete a volume: marks it for teardown (or removes it at once if it never reached an agent). */
  async deleteVolume(tenant: string, name: string, force: boolean): Promise<VolumeRecord> {
    const v = await this.deps.store.getVolumeByName(tenant, name, false);
    if (!v) {
      const gone = await this.deps.store.getVolumeByName(tenant, name, true);
      if (gone) return gone;
      throw new LocusError('NOT_FOUND', `no volume '${name}'`, { field: 'name' });
    }
    // Asked on the record being written (a retried write asks again). The scheduler that would
    // start a new use of the volume runs in this process and reads the delete flag at its next
    // pass (goneVolumes): only a task placed by a pass already under way can slip in; it runs,
    // and its executor is released once it has ended.
    const useOf = (cur: HoldingRecord): VolumeUse | undefined => (cur.kind === 'volume' && (cur.state === 'READY' || cur.state === 'IN_USE') ? this.deps.volumeUse?.(cur) : undefined);
    const { record } = await this.deps.store.update(v.id, (cur) => requestDelete(cur, force, this.deps.clock.now(), useOf(cur)));
    this.deps.onWork?.();
    if (record.kind !== 'volume') throw new LocusError('INTERNAL', 'volume turned into a reservation');
    return record;
  }

  /** The fields every new holding starts with; `near` is resolved to a target host here. */
  private async newHolding(prefix: 'vol' | 'res', tenant: Tenant, placement: Placement, labels: Readonly<Record<string, string>>): Promise<Omit<HoldingBase, 'reason' | 'agentId' | 'hostname' | 'resumeState'>> {
    const targetHost = placement.near === undefined ? undefined : await this.resolveNear(placement.near);
    const now = this.deps.clock.now();
    return {
      id: `${prefix}-${randomUUID()}`,
      tenant: tenant.name,
      role: tenant.role,
      state: 'REQUESTED',
      ops: {},
      attempt: 0,
      deleteRequested: false,
      placement: { ...placement, ...(targetHost === undefined ? {} : { targetHost }) },
      labels,
      createdAt: now,
      updatedAt: now,
      version: 1,
    };
  }

  /** Request a capacity reservation for `tenant`. */
  async createReservation(tenant: Tenant, req: ReservationRequest, idempotencyKey?: string): Promise<CreateResult<ReservationRecord>> {
    this.checkFits(req.resources, req.placement.agent, 'resources');
    await this.checkQuota(tenant, req.resources);
    const rec: ReservationRecord = {
      ...(await this.newHolding('res', tenant, req.placement, req.labels)),
      kind: 'reservation',
      resources: req.resources,
    };
    const idem = idempotencyKey === undefined ? undefined : { key: idempotencyKey, fingerprint: fingerprint({ kind: 'reservation', req: { ...req, tenant: tenant.name } }) };
    const out = await this.deps.store.create(rec, idem);
    if (out.status === 'EXISTS' || out.status === 'IDEM_MISMATCH') {
      if (out.status === 'EXISTS') throw new LocusError('ALREADY_EXISTS', `reservation ${rec.id} exists`, { field: 'id' });
      throw new LocusError('CONFLICT', 'this Idempotency-Key was used with a different request', { field: 'Idempotency-Key' });
    }
    if (out.record.kind !== 'reservation') throw new LocusError('CONFLICT', 'this Idempotency-Key belongs to a volume', { field: 'Idempotency-Key' });
    if (out.status === 'CREATED') this.deps.onWork?.();
    return { record: out.record, created: out.status === 'CREATED' };
  }

  /** Capacity reservations visible in `scope`. */
  async listReservations(scope: Scope, includeDeleted = false): Promise<ReservationRecord[]> {
    const all = await this.deps.store.list({ kind: 'reservation', includeDeleted, ...(scope.tenant === undefined ? {} : { tenant: scope.tenant }) });
    return all.filter((r): r is ReservationRecord => r.kind === 'reservation');
  }

  /** One reservation; NOT_FOUND when absent or outside `scope` (existence is not revealed). */
  async getReservation(id: string, scope: Scope): Promise<ReservationRecord> {
    const r = await this.deps.store.get(id);
    if (!r || r.kind !== 'reservation' || (scope.tenant !== undefined && r.tenant !== scope.tenant)) {
      throw new LocusError('NOT_FOUND', `no reservation '${id}'`, { field: 'id' });
    }
    return r;
  }

  /** Delete a reservation (teardown through offers). */
  async deleteReservation(id: string, scope: Scope, force: boolean): Promise<ReservationRecord> {
    const r = await this.getReservation(id, scope);
    const { record } = await this.deps.store.update(r.id, (cur) => requestDelete(cur, force, this.deps.clock.now()));
    this.deps.onWork?.();
    if (record.kind !== 'reservation') throw new LocusError('INTERNAL', 'reservation turned into a volume');
    return record;
  }

  // --- coordinator API ---------------------------------------------------

  /**
   * One offer cycle: plan, write the planned record changes (write-ahead),
   * and return the operations to ACCEPT per offer. Operations of holdings
   * whose write lost a race are left out. Offers not listed are free for the
   * coordinator (minus nothing); listed ones lose `consumed`.
   */
  async offerCycle(offers: readonly types.Offer[], inUse?: ReadonlySet<string>): Promise<VolumeAccept[]> {
    const holdings = await this.deps.store.list();
    const plan = planVolumeOperations(holdings, offers, {
      ...this.opts,
      now: this.deps.clock.now(),
      who: this.deps.who,
      orphans: this.orphans,
      ...(inUse === undefined ? {} : { inUse }),
    });
    const { conflicted, written } = await this.deps.store.applyChanges(plan.changes);
    this.orphans = plan.orphans;
    for (const w of written) this.deps.logger?.info({ holding: w.id, kind: w.kind, state: w.state, agent: w.hostname }, 'holding state');
    for (const o of plan.collected) this.deps.logger?.warn({ holding: o.holdingId, agent: o.agentId }, 'collecting orphaned Locus reservation');
    const out: VolumeAccept[] = [];
    for (const o of plan.offers) {
      const groups = o.groups.filter((g) => !conflicted.has(g.owner));
      if (groups.length === 0) continue;
      out.push({ offerId: o.offerId, agentId: o.agentId, hostname: o.hostname, operations: groups.flatMap((g) => g.operations), consumed: o.consumed });
    }
    return out;
  }

  /** Apply an UPDATE_OPERATION_STATUS. Returns the changed record, if any. (Acknowledging it is the coordinator's job.) */
  async onOperationStatus(status: types.OperationStatus): Promise<HoldingRecord | undefined> {
    const id = status.operation_id?.value;
    const parsed = id === undefined ? undefined : parseOperationId(id);
    if (!parsed) return undefined;
    const cur = await this.deps.store.get(parsed.holdingId);
    if (!cur) return undefined;
    const { record, changed } = await this.deps.store.update(cur.id, (r) => applyOperationStatus(r, status, this.deps.clock.now(), this.opts.maxAttempts));
    if (changed) {
      this.deps.logger?.info({ holding: record.id, state: record.state, operation: id, status: status.state }, 'operation status');
      this.deps.onWork?.();
    }
    return changed ? record : undefined;
  }

  /** An agent was lost (removed or unreachable): its holdings become UNAVAILABLE. */
  async onAgentLost(agentId: string, reason = 'agent lost'): Promise<HoldingRecord[]> {
    const changed: HoldingRecord[] = [];
    for (const h of await this.deps.store.list()) {
      if (h.agentId !== agentId) continue;
      const r = await this.deps.store.update(h.id, (cur) => markAgentLost(cur, agentId, reason, this.deps.clock.now()));
      if (r.changed) changed.push(r.record);
    }
    if (changed.length > 0) this.deps.onWork?.();
    return changed;
  }

  /** An executor is launched with the volume (call before LAUNCH). Throws IN_USE / WRONG_STATE. */
  async acquire(volumeId: string, executorId: string): Promise<VolumeRecord> {
    const { record } = await this.deps.store.update(volumeId, (cur) => {
      if (cur.kind !== 'volume') throw new LocusError('NOT_FOUND', `no volume ${volumeId}`);
      return markInUse(cur, executorId, this.deps.clock.now());
    });
    if (record.kind !== 'volume') throw new LocusError('INTERNAL', 'not a volume');
    return record;
  }

  /** The executor ended, failed to launch, or was lost. Idempotent. */
  async release(volumeId: string, executorId: string): Promise<void> {
    const cur = await this.deps.store.get(volumeId);
    if (!cur || cur.kind !== 'volume') return;
    const { changed } = await this.deps.store.update(volumeId, (r) => (r.kind === 'volume' ? markReleased(r, executorId, this.deps.clock.now()) : undefined));
    // Only a real release is new work (a delete may now go ahead): a replayed one must not
    // count as new work, or every executor's end would REVIVE offers for nothing.
    if (changed) this.deps.onWork?.();
  }

  /** A READY volume by tenant and name, for jobs that name it (NOT_FOUND / WRONG_STATE otherwise). */
  async volumeForJob(tenant: string, name: string): Promise<VolumeRecord> {
    const v = await this.getVolume(tenant, name);
    if (v.state !== 'READY' && v.state !== 'IN_USE') throw new LocusError('WRONG_STATE', `volume '${name}' is ${v.state}`, { field: 'volume' });
    // Its tasks could never run: placement gives them no executor for a volume being deleted.
    if (v.deleteRequested) throw new LocusError('WRONG_STATE', `volume '${name}' is being deleted`, { field: 'volume' });
    return v;
  }

  /** Whether holdings need offers: the coordinator revives while true. */
  async hasPendingWork(): Promise<boolean> {
    if (this.orphans.size > 0) return true;
    const value = (await this.recordsState()).value;
    return value || this.orphans.size > 0;
  }

  /**
   * Ids of volumes whose delete was asked for (or done): placement starts nothing new for them,
   * and jobs pinned to them fail. Read like hasPendingWork, from the same listing.
   */
  async goneVolumes(): Promise<ReadonlySet<string>> {
    return (await this.recordsState()).gone;
  }

  /** What hasPendingWork and goneVolumes read from the records, listed again only when a record was written since. */
  private async recordsState(): Promise<{ value: boolean; gone: ReadonlySet<string> }> {
    // Asked by every placement pass. A listing reads every record ever made (tombstones too, until
    // purged): one small read of the store's generation instead, and a listing only when a record
    // was written since the last one. The generation is read before the listing, so a write that
    // lands during it makes the next call list again.
    // The answer is kept at most PENDING_WORK_MAX_AGE_MS: a counter rolled back with the records
    // (Redis losing its last writes) could come back to a value it had for other records.
    // Nor is the generation read by every pass: under load that round trip was about a twelfth of
    // the time passes took (bench:dispatch, 2 cores: 8 of 108 s, p90 3.6 ms a pass), each task
    // submitted meanwhile waiting it out. While this process has written nothing since the last
    // read, that read stands for GENERATION_RECHECK_MS.
    const writes = this.deps.store.localWrites;
    const before = this.deps.clock.now();
    const last = this.pendingWork;
    if (last !== undefined && last.writes === writes && before - last.checkedAt < GENERATION_RECHECK_MS && before - last.at < PENDING_WORK_MAX_AGE_MS) return last;
    const generation = await this.deps.store.generation();
    const now = this.deps.clock.now();
    const known = this.pendingWork;
    if (known !== undefined && known.generation === generation && now - known.at < PENDING_WORK_MAX_AGE_MS) {
      // Writes counted before the read: one that ends during it is read again next time.
      known.checkedAt = before;
      known.writes = writes;
      return known;
    }
    // The holdings alone (orphans are checked by the caller, and may change during the listing).
    // Tombstones too: a volume deleted at once (forced while UNAVAILABLE) is as gone for its jobs.
    const all = await this.deps.store.list({ includeDeleted: true });
    const value = hasPendingWork(all.filter((h) => h.state !== 'DELETED'));
    const gone = new Set(all.filter((h) => h.kind === 'volume' && (h.deleteRequested || h.state === 'DELETED')).map((h) => h.id));
    this.pendingWork = { generation, value, gone, at: now, checkedAt: before, writes };
    return this.pendingWork;
  }

  /** Operations to list in RECONCILE_OPERATIONS after (re)subscribing. */
  async operationsToReconcile(): Promise<{ operation_id: types.OperationID; agent_id?: types.AgentID }[]> {
    return operationsToReconcile(await this.deps.store.list());
  }

  // --- checks -----------------------------------------------------------

  private checkFits(need: ResourceVector, agent: string | undefined, field: string): void {
    const agents = this.deps.agents?.() ?? [];
    if (agents.length === 0) return;
    const pool = agent === undefined ? agents : agents.filter((a) => a.hostname === agent || a.agentId === agent);
    if (pool.length === 0) return; // an unknown agent may still register
    const ok = pool.some((a) => need.cpus <= a.total.cpus && need.mem <= a.total.mem && need.disk <= a.total.disk);
    if (!ok) {
      // Name what does not fit (a reservation too large in cpus was told about disk).
      const shown = (k: keyof ResourceVector, v: number): string => (k === 'cpus' ? `${v} cpus` : `${formatMiB(v)} of ${k === 'mem' ? 'memory' : 'disk'}`);
      const short = (['cpus', 'mem', 'disk'] as const).filter((k) => need[k] > Math.max(...pool.map((a) => a.total[k])));
      const why = short.length > 0
        ? short.map((k) => `it asks ${shown(k, need[k])}, the largest has ${shown(k, Math.max(...pool.map((a) => a.total[k])))}`).join('; ')
        : 'no one of them holds all it asks';
      throw new LocusError('UNSATISFIABLE', `${field}: no ${agent === undefined ? 'agent' : `agent ${agent}`} is large enough: ${why}`, { field });
    }
  }

  private async checkQuota(tenant: Tenant, need: ResourceVector): Promise<void> {
    const q = tenant.quota;
    if (!q) return;
    const held = (await this.deps.store.list({ tenant: tenant.name })).reduce(
      (acc, h) => {
        const n = h.kind === 'volume' ? { cpus: 0, mem: 0, disk: h.sizeMiB } : h.resources;
        return { cpus: acc.cpus + n.cpus, mem: acc.mem + n.mem, disk: acc.disk + n.disk };
      },
      { cpus: 0, mem: 0, disk: 0 },
    );
    for (const k of ['cpus', 'mem', 'disk'] as const) {
      const limit = q[k];
      if (limit !== undefined && held[k] + need[k] > limit) {
        throw new LocusError('QUOTA_EXCEEDED', `tenant ${tenant.name} would hold ${held[k] + need[k]} ${k}, over its quota of ${limit}`, { field: k === 'disk' ? 'size' : `resources.${k}` });
      }
    }
  }

  private async resolveNear(uri: string): Promise<string | undefined> {
    if (!this.deps.resolveNear) return undefined;
    try {
      return await this.deps.resolveNear(uri);
    } catch (err) {
      // A scheme no backend serves is the request's mistake (400), as for a job's inputs; the
      // registry says UNSUPPORTED (501), which told the client to wait for a server that can.
      if (err instanceof LocusError && err.code === 'UNSUPPORTED' && /no storage backend for/.test(err.message)) {
        const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase() ?? '';
        throw new LocusError('UNKNOWN_SCHEME', `near: ${err.message}`, { field: 'near', details: { scheme }, cause: err });
      }
      if (err instanceof LocusError) throw new LocusError(err.code, `near: ${err.message}`, { field: 'near', cause: err });
      throw new LocusError('STORAGE', `near: cannot locate ${uri}: ${(err as Error).message}`, { field: 'near', cause: err });
    }
  }
}
