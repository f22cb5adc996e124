/**
 * The Redis store of holdings (volumes and capacity reservations). Every
 * write is one Lua script, so a transition is atomic; transitions are
 * compare-and-set on the record's version, so two writers never lose each
 * other's updates and a replayed event (which the pure handlers turn into
 * "no change") writes nothing.
 *
 * Keys (prefix P, default `locus`):
 *   P:holding:<id>                 STRING  the record as JSON (kind, state, version, ...)
 *   P:holdings                     SET     every record id, DELETED tombstones included until purged
 *   P:volnames:<tenant>            HASH    volume name → id, for volumes not DELETED (name uniqueness)
 *   P:volnames-deleted:<tenant>    HASH    volume name → id of the last DELETED volume of that name
 *   P:idem:<kind>:<tenant>:<sha>   STRING  `<fingerprint>|<id>` for an Idempotency-Key, expires after a day
 *   P:holdings:gen                 STRING  counter bumped by every write of a record (create, transition,
 *                                          purge), so readers can tell that nothing changed without a listing
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LocusError } from '../core/errors.js';
import { parseJson } from '../core/decode.js';
import { decodeHolding } from './codec.js';
import type { HoldingRecord, VolumeRecord } from './model.js';
import type { HoldingChange } from './planner.js';

/**
 * CREATE. KEYS: 1 record, 2 id set, 3 name hash, 4 idempotency key, 5 generation counter.
 * ARGV: 1 record JSON, 2 id, 3 name ('' for none), 4 fingerprint ('' for no key), 5 key TTL seconds.
 * Returns {status, id}: CREATED | REPLAY (same key, same request: the earlier id)
 * | IDEM_MISMATCH (same key, different request) | EXISTS (name taken: its id).
 */
const CREATE_LUA = `
if ARGV[4] ~= '' then
  local prev = redis.call('GET', KEYS[4])
  if prev then
    local sep = string.find(prev, '|', 1, true)
    local fp = string.sub(prev, 1, sep - 1)
    local id = string.sub(prev, sep + 1)
    if fp == ARGV[4] then return {'REPLAY', id} end
    return {'IDEM_MISMATCH', id}
  end
end
if ARGV[3] ~= '' then
  local existing = redis.call('HGET', KEYS[3], ARGV[3])
  if existing then return {'EXISTS', existing} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'EXISTS', ARGV[2]} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[3], ARGV[2]) end
if ARGV[4] ~= '' then redis.call('SET', KEYS[4], ARGV[4] .. '|' .. ARGV[2], 'EX', tonumber(ARGV[5])) end
redis.call('INCR', KEYS[5])
return {'CREATED', ARGV[2]}
`;

/**
 * TRANSITION (compare-and-set). KEYS: 1 record, 2 name hash, 3 deleted-name hash, 4 generation counter.
 * ARGV: 1 expected version, 2 new record JSON, 3 new state, 4 id, 5 name ('' for none).
 * Returns OK | CONFLICT (version moved on) | MISSING. Reaching DELETED frees the name.
 */
const CAS_LUA = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 'MISSING' end
local rec = cjson.decode(cur)
if tostring(rec['version']) ~= ARGV[1] then return 'CONFLICT' end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] == 'DELETED' and ARGV[5] ~= '' then
  if redis.call('HGET', KEYS[2], ARGV[5]) == ARGV[4] then redis.call('HDEL', KEYS[2], ARGV[5]) end
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[4])
end
redis.call('INCR', KEYS[4])
return 'OK'
`;

/** Outcome of a create. */
export type CreateOutcome =
  | { readonly status: 'CREATED'; readonly record: HoldingRecord }
  | { readonly status: 'REPLAY'; readonly record: HoldingRecord }
  | { readonly status: 'EXISTS'; readonly existingId: string }
  | { readonly status: 'IDEM_MISMATCH'; readonly existingId: string };

/** An Idempotency-Key with the fingerprint of the request it came with. */
export interface IdempotencyInput {
  readonly key: string;
  readonly fingerprint: string;
}

/** Options for the store. */
export interface HoldingStoreOptions {
  readonly prefix?: string;
  readonly idempotencyTtlSeconds?: number;
}

/** Filter for listing. */
export interface ListFilter {
  readonly kind?: HoldingRecord['kind'];
  readonly tenant?: string;
  readonly includeDeleted?: boolean;
}

/** The Redis-backed holding store. */
export class HoldingStore {
  private readonly p: string;
  private readonly ttl: number;
  /**
   * Writes this process made or attempted (counted when each ends, however it ended: one that
   * failed may still have reached Redis). What this process writes it knows without reading the
   * generation; writes of other processes are seen only through it.
   */
  private writes = 0;

  constructor(private readonly redis: Redis, options: HoldingStoreOptions = {}) {
    this.p = options.prefix ?? 'locus';
    this.ttl = options.idempotencyTtlSeconds ?? 86_400;
  }

  private get genKey(): string {
    return `${this.p}:holdings:gen`;
  }
  private recKey(id: string): string {
    return `${this.p}:holding:${id}`;
  }
  private namesKey(tenant: string): string {
    return `${this.p}:volnames:${tenant}`;
  }
  private deletedNamesKey(tenant: string): string {
    return `${this.p}:volnames-deleted:${tenant}`;
  }
  private idemKey(kind: string, tenant: string, key: string): string {
    return `${this.p}:idem:${kind}:${tenant}:${createHash('sha256').update(key).digest('hex')}`;
  }

  /** How many writes of records this process has made or attempted (see `writes`). */
  get localWrites(): number {
    return this.writes;
  }

  /** Run one write, counted in localWrites when it ends. */
  private async written<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } finally {
      this.writes++;
    }
  }

  /** Create a record (version 1), enforcing volume-name uniqueness and the idempotency key atomically. */
  async create(rec: HoldingRecord, idem?: IdempotencyInput): Promise<CreateOutcome> {
    const name = rec.kind === 'volume' ? rec.name : '';
    const record = { ...rec, version: 1 };
    const res = (await this.written(() => this.redis.eval(
      CREATE_LUA, 5,
      this.recKey(rec.id), `${this.p}:holdings`, this.namesKey(rec.tenant), idem ? this.idemKey(rec.kind, rec.tenant, idem.key) : `${this.p}:idem:none`, this.genKey,
      JSON.stringify(record), rec.id, name, idem?.fingerprint ?? '', String(this.ttl),
    ))) as unknown;
    if (!Array.isArray(res) || typeof res[0] !== 'string' || typeof res[1] !== 'string') {
      throw new LocusError('INTERNAL', 'unexpected answer from the create script');
    }
    const [status, id] = res as [string, string];
    if (status === 'CREATED') return { status: 'CREATED', record };
    if (status === 'REPLAY') {
      const earlier = await this.get(id);
      if (!earlier) throw new LocusError('NOT_FOUND', `the request with this Idempotency-Key created ${id}, which no longer exists`);
      return { status: 'REPLAY', record: earlier };
    }
    if (status === 'EXISTS' || status === 'IDEM_MISMATCH') return { status, existingId: id };
    throw new LocusError('INTERNAL', `unexpected create status ${status}`);
  }

  /** One record by id. */
  async get(id: string): Promise<HoldingRecord | undefined> {
    const text = await this.redis.get(this.recKey(id));
    return text === null ? undefined : decodeHolding(parseJson(text, id));
  }

  /** A volume by tenant and name: the live one, else (if asked) the last deleted one. */
  async getVolumeByName(tenant: string, name: string, includeDeleted = true): Promise<VolumeRecord | undefined> {
    let id = await this.redis.hget(this.namesKey(tenant), name);
    if (id === null && includeDeleted) id = await this.redis.hget(this.deletedNamesKey(tenant), name);
    if (id === null) return undefined;
    const rec = await this.get(id);
    return rec?.kind === 'volume' ? rec : undefined;
  }

  /**
   * Where the records stand: a value that changes with every write of a record, by this process or
   * any other (the counter is bumped by the write scripts themselves). Equal values read at two
   * times mean no record was written in between, so what was derived from a listing still holds.
   */
  async generation(): Promise<string> {
    return (await this.redis.get(this.genKey)) ?? '0';
  }

  /** All records matching the filter, oldest first. */
  async list(filter: ListFilter = {}): Promise<HoldingRecord[]> {
    const ids = await this.redis.smembers(`${this.p}:holdings`);
    const out: HoldingRecord[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const texts = await this.redis.mget(chunk.map((id) => this.recKey(id)));
      texts.forEach((t, j) => {
        if (t === null) return;
        const rec = decodeHolding(parseJson(t, chunk[j] ?? ''));
        if (filter.kind !== undefined && rec.kind !== filter.kind) return;
        if (filter.tenant !== undefined && rec.tenant !== filter.tenant) return;
        if (!filter.includeDeleted && rec.state === 'DELETED') return;
        out.push(rec);
      });
    }
    return out.sort((a, z) => a.createdAt - z.createdAt || a.id.localeCompare(z.id));
  }

  /** Write `after` if the stored record still has `before.version`. Returns the written record, or undefined on conflict. */
  async compareAndSet(before: HoldingRecord, after: HoldingRecord): Promise<HoldingRecord | undefined> {
    const next = { ...after, version: before.version + 1 };
    const name = next.kind === 'volume' ? next.name : '';
    const res = await this.written(() => this.redis.eval(
      CAS_LUA, 4,
      this.recKey(before.id), this.namesKey(before.tenant), this.deletedNamesKey(before.tenant), this.genKey,
      String(before.version), JSON.stringify(next), next.state, next.id, name,
    ));
    if (res === 'OK') return next;
    if (res === 'MISSING') throw new LocusError('NOT_FOUND', `no ${before.kind} ${before.id}`);
    return undefined;
  }

  /**
   * Read-modify-write with retries: `fn` gets the current record and returns
   * the next one, or undefined for "no change" (nothing is written).
   */
  async update(id: string, fn: (rec: HoldingRecord) => HoldingRecord | undefined): Promise<{ record: HoldingRecord; changed: boolean }> {
    for (let i = 0; i < 20; i++) {
      const cur = await this.get(id);
      if (!cur) throw new LocusError('NOT_FOUND', `no holding ${id}`);
      const next = fn(cur);
      if (next === undefined) return { record: cur, changed: false };
      const written = await this.compareAndSet(cur, next);
      if (written) return { record: written, changed: true };
    }
    throw new LocusError('CONFLICT', `holding ${id} is changing too fast; try again`);
  }

  /** Write a plan's changes; returns the ids whose change lost a race (their operations must not be sent). */
  async applyChanges(changes: readonly HoldingChange[]): Promise<{ written: HoldingRecord[]; conflicted: Set<string> }> {
    const written: HoldingRecord[] = [];
    const conflicted = new Set<string>();
    for (const c of changes) {
      if (conflicted.has(c.before.id)) continue;
      const ok = await this.compareAndSet(c.before, c.after);
      if (ok) written.push(ok);
      else conflicted.add(c.before.id);
    }
    return { written, conflicted };
  }

  /** Remove DELETED tombstones last updated before `before` (ms). Returns how many. */
  async purgeDeleted(before: number): Promise<number> {
    const all = await this.list({ includeDeleted: true });
    let n = 0;
    for (const rec of all) {
      if (rec.state !== 'DELETED' || rec.updatedAt >= before) continue;
      const multi = this.redis.multi().del(this.recKey(rec.id)).srem(`${this.p}:holdings`, rec.id).incr(this.genKey);
      await this.written(() => multi.exec());
      if (rec.kind === 'volume') {
        const last = await this.redis.hget(this.deletedNamesKey(rec.tenant), rec.name);
        if (last === rec.id) await this.redis.hdel(this.deletedNamesKey(rec.tenant), rec.name);
      }
      n++;
    }
    return n;
  }
}
