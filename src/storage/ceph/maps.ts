/**
 * A snapshot of a Ceph cluster's maps — pools, PG → acting OSDs, OSD → CRUSH
 * host and rack — and the pure per-object computation over it:
 * name → hash → PG (stable mod onto pg_num) → acting OSDs → hosts.
 * Decoders accept `osd dump` / `osd tree` JSON (from `ceph` or `osdmaptool`),
 * `osdmaptool --test-map-pgs-dump-all` text, and `pg dump pgs_brief` JSON.
 */
import { asArray, asNumber, asObject, asString, isObject, optional } from '../../core/decode.js';
import type { StorageReplica } from '../hostmap.js';
import { objectHash, pgNumMask, stableMod } from './hash.js';

/** One pool, as placement needs it. */
export interface CephPool {
  readonly id: number;
  readonly name: string;
  readonly pgNum: number;
  readonly pgNumMask: number;
  readonly objectHash: number;
  readonly size: number;
}

/** One OSD: its CRUSH host and rack, and its public IP. */
export interface CephOsd {
  readonly id: number;
  readonly host?: string;
  readonly rack?: string;
  readonly ip?: string;
  readonly up: boolean;
  readonly in: boolean;
}

/** Where an object lives. */
export interface ObjectPlacement {
  readonly pool: number;
  readonly pgid: string;
  /** The object's full 32-bit hash (`raw_pgid` in `ceph osd map`). */
  readonly rawHash: number;
  readonly acting: readonly number[];
  readonly actingPrimary: number;
}

/** Acting set of one PG. */
export interface PgMapping {
  readonly up: readonly number[];
  readonly acting: readonly number[];
  readonly actingPrimary: number;
}

// CRUSH_ITEM_NONE: a hole in an erasure-coded acting set.
const ITEM_NONE = 0x7fffffff;

/** `osd dump` JSON → epoch, pools, OSD up/in and IPs. */
export function decodeOsdDump(doc: unknown): { epoch: number; pools: CephPool[]; osds: Map<number, { up: boolean; in: boolean; ip?: string }> } {
  const o = asObject(doc, '');
  const pools = asArray(o['pools'], 'pools', (v, path) => {
    const p = asObject(v, path);
    const pgNum = asNumber(p['pg_num'], `${path}.pg_num`);
    return {
      id: asNumber(p['pool'], `${path}.pool`),
      name: asString(p['pool_name'], `${path}.pool_name`),
      pgNum,
      pgNumMask: pgNumMask(pgNum),
      objectHash: optional(p['object_hash'], `${path}.object_hash`, asNumber) ?? 2,
      size: optional(p['size'], `${path}.size`, asNumber) ?? 0,
    };
  });
  const osds = new Map<number, { up: boolean; in: boolean; ip?: string }>();
  for (const [i, v] of asArray(o['osds'] ?? [], 'osds', (x) => x).entries()) {
    const d = asObject(v, `osds[${i}]`);
    const id = asNumber(d['osd'], `osds[${i}].osd`);
    const addr = typeof d['public_addr'] === 'string' ? d['public_addr'] : '';
    const ip = addr.replace(/^\[?v\d:/, '').replace(/:\d+\/\d+$/, '').replace(/^\[|\]$/g, '');
    osds.set(id, { up: d['up'] === 1, in: d['in'] === 1, ...(ip === '' || ip === '-' ? {} : { ip }) });
  }
  return { epoch: asNumber(o['epoch'], 'epoch'), pools, osds };
}

/** `osd tree` JSON → OSD id → its CRUSH host and rack (nearest ancestors of those types). */
export function decodeOsdTree(doc: unknown): Map<number, { host?: string; rack?: string }> {
  const nodes = asArray(asObject(doc, '')['nodes'], 'nodes', (v, path) => {
    const n = asObject(v, path);
    return {
      id: asNumber(n['id'], `${path}.id`),
      name: asString(n['name'], `${path}.name`),
      type: asString(n['type'], `${path}.type`),
      children: optional(n['children'], `${path}.children`, (c, p) => asArray(c, p, asNumber)) ?? [],
    };
  });
  const parent = new Map<number, number>();
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const n of nodes) for (const c of n.children) parent.set(c, n.id);
  const out = new Map<number, { host?: string; rack?: string }>();
  for (const n of nodes) {
    if (n.type !== 'osd') continue;
    let host: string | undefined;
    let rack: string | undefined;
    for (let p = parent.get(n.id); p !== undefined; p = parent.get(p)) {
      const a = byId.get(p);
      if (a === undefined) break;
      if (a.type === 'host' && host === undefined) host = a.name;
      if (a.type === 'rack' && rack === undefined) rack = a.name;
    }
    out.set(n.id, { ...(host === undefined ? {} : { host }), ...(rack === undefined ? {} : { rack }) });
  }
  return out;
}

const parseOsdList = (s: string): number[] => (s.trim() === '' ? [] : s.split(',').map((x) => Number(x.trim())));

/** `osdmaptool --test-map-pgs-dump-all` text: `2.f raw ([2,1], p2) up ([2,1], p2) acting ([2,1], p2)`. */
export function decodePgDumpAll(text: string): Map<string, PgMapping> {
  const out = new Map<string, PgMapping>();
  const re = /^(\d+\.[0-9a-f]+)\s+raw \(\[([^\]]*)\], p(-?\d+)\)\s+up \(\[([^\]]*)\], p(-?\d+)\)\s+acting \(\[([^\]]*)\], p(-?\d+)\)/gm;
  for (const m of text.matchAll(re)) {
    out.set(m[1] ?? '', { up: parseOsdList(m[4] ?? ''), acting: parseOsdList(m[6] ?? ''), actingPrimary: Number(m[7]) });
  }
  return out;
}

/** `pg dump pgs_brief` JSON (Pacific wraps it in `pg_stats`; older releases answer the bare array). */
export function decodePgsBrief(doc: unknown): Map<string, PgMapping> {
  const list = isObject(doc) ? doc['pg_stats'] : doc;
  const out = new Map<string, PgMapping>();
  for (const [i, v] of asArray(list, 'pg_stats', (x) => x).entries()) {
    const p = asObject(v, `pg_stats[${i}]`);
    const acting = asArray(p['acting'], `pg_stats[${i}].acting`, asNumber);
    out.set(asString(p['pgid'], `pg_stats[${i}].pgid`), {
      up: asArray(p['up'] ?? [], `pg_stats[${i}].up`, asNumber),
      acting,
      actingPrimary: optional(p['acting_primary'], `pg_stats[${i}].acting_primary`, asNumber) ?? acting[0] ?? -1,
    });
  }
  return out;
}

/** An immutable snapshot of the cluster's maps with the pure lookups placement needs. */
export class CephClusterMap {
  private readonly poolsByName: Map<string, CephPool>;
  private readonly poolsById: Map<number, CephPool>;
  /** pool id → PG mappings indexed by placement seed (the PG number). */
  private readonly pgs = new Map<number, PgMapping[]>();
  private readonly replicaCache = new Map<number, StorageReplica>();

  constructor(
    readonly epoch: number,
    pools: readonly CephPool[],
    pgs: ReadonlyMap<string, PgMapping>,
    readonly osds: ReadonlyMap<number, CephOsd>,
  ) {
    this.poolsByName = new Map(pools.map((p) => [p.name, p]));
    this.poolsById = new Map(pools.map((p) => [p.id, p]));
    for (const [pgid, m] of pgs) {
      const dot = pgid.indexOf('.');
      const pool = Number(pgid.slice(0, dot));
      const seed = parseInt(pgid.slice(dot + 1), 16);
      let arr = this.pgs.get(pool);
      if (arr === undefined) this.pgs.set(pool, (arr = []));
      arr[seed] = m;
    }
  }

  /** A pool by name (or by numeric id written as a string). */
  pool(nameOrId: string): CephPool | undefined {
    return this.poolsByName.get(nameOrId) ?? (/^\d+$/.test(nameOrId) ? this.poolsById.get(Number(nameOrId)) : undefined);
  }

  /** All pool names. */
  poolNames(): string[] {
    return [...this.poolsByName.keys()];
  }

  /** Object → PG → acting OSDs; undefined when the pool's PG map is missing that PG. */
  place(pool: CephPool, name: string, namespace = ''): ObjectPlacement | undefined {
    const raw = objectHash(pool.objectHash, name, namespace);
    const seed = stableMod(raw, pool.pgNum, pool.pgNumMask);
    const m = this.pgs.get(pool.id)?.[seed];
    if (m === undefined) return undefined;
    return { pool: pool.id, pgid: `${pool.id}.${seed.toString(16)}`, rawHash: raw, acting: m.acting, actingPrimary: m.actingPrimary };
  }

  /** The replica (CRUSH host, IP, rack) of an OSD, as storage names. */
  replica(osd: number): StorageReplica | undefined {
    if (osd === ITEM_NONE || osd < 0) return undefined;
    const hit = this.replicaCache.get(osd);
    if (hit !== undefined) return hit;
    const o = this.osds.get(osd);
    const names = [o?.host, o?.ip].filter((x): x is string => x !== undefined && x !== '');
    if (names.length === 0) names.push(`osd.${osd}`);
    const r: StorageReplica = o?.rack === undefined ? { names } : { names, rack: o.rack };
    this.replicaCache.set(osd, r);
    return r;
  }

  /** The replicas holding an object, primary first. */
  replicas(p: ObjectPlacement): StorageReplica[] {
    const order = p.acting.includes(p.actingPrimary) ? [p.actingPrimary, ...p.acting.filter((o) => o !== p.actingPrimary)] : [...p.acting];
    const out: StorageReplica[] = [];
    for (const o of order) {
      const r = this.replica(o);
      if (r !== undefined) out.push(r);
    }
    return out;
  }
}

/** Assemble a snapshot from decoded parts. */
export function buildClusterMap(dump: ReturnType<typeof decodeOsdDump>, tree: ReturnType<typeof decodeOsdTree>, pgs: ReadonlyMap<string, PgMapping>): CephClusterMap {
  const osds = new Map<number, CephOsd>();
  const ids = new Set([...dump.osds.keys(), ...tree.keys()]);
  for (const id of ids) {
    const d = dump.osds.get(id);
    const t = tree.get(id);
    osds.set(id, {
      id,
      up: d?.up ?? false,
      in: d?.in ?? false,
      ...(t?.host === undefined ? {} : { host: t.host }),
      ...(t?.rack === undefined ? {} : { rack: t.rack }),
      ...(d?.ip === undefined ? {} : { ip: d.ip }),
    });
  }
  return new CephClusterMap(dump.epoch, dump.pools, pgs, osds);
}
