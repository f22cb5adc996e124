/**
 * Decoding of stored holding records (JSON from Redis) back into typed
 * records, so nothing untyped travels inward from the store.
 */
import { asArray, asBoolean, asEnum, asNumber, asObject, asString, optional, type JsonObject } from '../core/decode.js';
import type { Constraint, HoldingOps, HoldingRecord, OperationRef, Placement } from './model.js';
import { VOLUME_STATES } from './states.js';

function opRef(v: unknown, path: string): OperationRef {
  const o = asObject(v, path);
  return { id: asString(o['id'], `${path}.id`), sentAt: asNumber(o['sentAt'], `${path}.sentAt`) };
}

function ops(v: unknown, path: string): HoldingOps {
  const o = asObject(v ?? {}, path);
  const out: { -readonly [K in keyof HoldingOps]: HoldingOps[K] } = {};
  for (const k of ['reserve', 'create', 'destroy', 'unreserve'] as const) {
    const r = optional(o[k], `${path}.${k}`, opRef);
    if (r) out[k] = r;
  }
  return out;
}

function constraint(v: unknown, path: string): Constraint {
  const o = asObject(v, path);
  return {
    attribute: asString(o['attribute'], `${path}.attribute`),
    op: asEnum(o['op'], `${path}.op`, ['EQ', 'NEQ', 'IN'] as const),
    value: asString(o['value'], `${path}.value`),
  };
}

function placement(v: unknown, path: string): Placement {
  const o = asObject(v, path);
  const agent = optional(o['agent'], `${path}.agent`, asString);
  const near = optional(o['near'], `${path}.near`, asString);
  const targetHost = optional(o['targetHost'], `${path}.targetHost`, asString);
  return {
    ...(agent === undefined ? {} : { agent }),
    ...(near === undefined ? {} : { near }),
    ...(targetHost === undefined ? {} : { targetHost }),
    constraints: optional(o['constraints'], `${path}.constraints`, (x, p) => asArray(x, p, constraint)) ?? [],
  };
}

function labels(v: unknown, path: string): Record<string, string> {
  const o = asObject(v ?? {}, path);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) out[k] = asString(x, `${path}.${k}`);
  return out;
}

function optStr(o: JsonObject, k: string): Record<string, string> {
  const v = optional(o[k], k, asString);
  return v === undefined ? {} : { [k]: v };
}

/** Decode one stored record; throws DecodeError naming the bad field. */
export function decodeHolding(v: unknown): HoldingRecord {
  const o = asObject(v, 'holding');
  const state = asEnum(o['state'], 'state', VOLUME_STATES);
  const resume = optional(o['resumeState'], 'resumeState', (x, p) => asEnum(x, p, VOLUME_STATES));
  const base = {
    id: asString(o['id'], 'id'),
    tenant: asString(o['tenant'], 'tenant'),
    role: asString(o['role'], 'role'),
    state,
    ...optStr(o, 'reason'),
    ...optStr(o, 'agentId'),
    ...optStr(o, 'hostname'),
    ops: ops(o['ops'], 'ops'),
    attempt: asNumber(o['attempt'], 'attempt'),
    deleteRequested: asBoolean(o['deleteRequested'], 'deleteRequested'),
    ...(resume === undefined ? {} : { resumeState: resume }),
    placement: placement(o['placement'], 'placement'),
    labels: labels(o['labels'], 'labels'),
    createdAt: asNumber(o['createdAt'], 'createdAt'),
    updatedAt: asNumber(o['updatedAt'], 'updatedAt'),
    version: asNumber(o['version'], 'version'),
  };
  const kind = asEnum(o['kind'], 'kind', ['volume', 'reservation'] as const);
  if (kind === 'volume') {
    return {
      ...base,
      kind,
      name: asString(o['name'], 'name'),
      sizeMiB: asNumber(o['sizeMiB'], 'sizeMiB'),
      containerPath: asString(o['containerPath'], 'containerPath'),
      mode: asEnum(o['mode'], 'mode', ['RW', 'RO'] as const),
      usedBy: asArray(o['usedBy'] ?? [], 'usedBy', asString),
    };
  }
  const r = asObject(o['resources'], 'resources');
  return {
    ...base,
    kind,
    resources: { cpus: asNumber(r['cpus'], 'resources.cpus'), mem: asNumber(r['mem'], 'resources.mem'), disk: asNumber(r['disk'], 'resources.disk') },
  };
}
