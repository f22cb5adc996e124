/**
 * Decoders for the Mesos wire types inside events: they check the fields
 * Locus relies on (ids, states, resource values) and keep every other field
 * as the master sent it, so a newer master's extra fields never break Locus.
 */
import {
  DecodeError, asArray, asBoolean, asEnum, asNumber, asObject, asString, isObject, optional, type JsonObject,
} from '../core/decode.js';
import type {
  AgentID, Attribute, FrameworkID, Id, InverseOffer, Label, Labels, MasterInfo, Offer, OperationStatus, Range,
  ReservationInfo, Resource, TaskStatus, ValueType,
} from './types.js';
import { OPERATION_STATES, TASK_STATES } from './types.js';

const VALUE_TYPES: readonly ValueType[] = ['SCALAR', 'RANGES', 'SET', 'TEXT'];

/** A proto `*ID`: `{ value: string }`. */
export function decodeId(v: unknown, path: string): Id {
  const o = asObject(v, path);
  return { ...o, value: asString(o['value'], `${path}.value`) };
}

/** Labels: `{ labels: [{ key, value? }] }`. */
export function decodeLabels(v: unknown, path: string): Labels {
  const o = asObject(v, path);
  const labels = optional(o['labels'], `${path}.labels`, (x, p) =>
    asArray(x, p, (l, lp): Label => {
      const lo = asObject(l, lp);
      const value = optional(lo['value'], `${lp}.value`, asString);
      return value === undefined ? { key: asString(lo['key'], `${lp}.key`) } : { key: asString(lo['key'], `${lp}.key`), value };
    }),
  );
  return { labels: labels ?? [] };
}

function decodeRanges(v: unknown, path: string): { range: Range[] } {
  const o = asObject(v, path);
  const range = optional(o['range'], `${path}.range`, (x, p) =>
    asArray(x, p, (r, rp) => {
      const ro = asObject(r, rp);
      return { begin: asNumber(ro['begin'], `${rp}.begin`), end: asNumber(ro['end'], `${rp}.end`) };
    }),
  );
  return { range: range ?? [] };
}

function decodeSet(v: unknown, path: string): { item: string[] } {
  const o = asObject(v, path);
  return { item: optional(o['item'], `${path}.item`, (x, p) => asArray(x, p, asString)) ?? [] };
}

function decodeScalar(v: unknown, path: string): { value: number } {
  const o = asObject(v, path);
  return { value: asNumber(o['value'], `${path}.value`) };
}

function decodeReservation(v: unknown, path: string): ReservationInfo {
  const o = asObject(v, path);
  const labels = optional(o['labels'], `${path}.labels`, decodeLabels);
  return {
    ...o,
    ...(o['type'] === undefined ? {} : { type: asEnum(o['type'], `${path}.type`, ['STATIC', 'DYNAMIC'] as const) }),
    ...(o['role'] === undefined ? {} : { role: asString(o['role'], `${path}.role`) }),
    ...(o['principal'] === undefined ? {} : { principal: asString(o['principal'], `${path}.principal`) }),
    ...(labels === undefined ? {} : { labels }),
  };
}

/** One Resource; the value matching its type must be present. */
export function decodeResource(v: unknown, path: string): Resource {
  const o = asObject(v, path);
  const type = asEnum(o['type'], `${path}.type`, VALUE_TYPES);
  const base: JsonObject = { ...o, name: asString(o['name'], `${path}.name`), type };
  const values: { scalar?: { value: number }; ranges?: { range: Range[] }; set?: { item: string[] } } = {};
  if (type === 'SCALAR') values.scalar = decodeScalar(o['scalar'], `${path}.scalar`);
  if (type === 'RANGES') values.ranges = decodeRanges(o['ranges'], `${path}.ranges`);
  if (type === 'SET') values.set = decodeSet(o['set'], `${path}.set`);
  const reservations = optional(o['reservations'], `${path}.reservations`, (x, p) => asArray(x, p, decodeReservation));
  const reservation = optional(o['reservation'], `${path}.reservation`, decodeReservation);
  const role = optional(o['role'], `${path}.role`, asString);
  const allocation = optional(o['allocation_info'], `${path}.allocation_info`, (x, p) => {
    const a = asObject(x, p);
    const r = optional(a['role'], `${p}.role`, asString);
    return r === undefined ? {} : { role: r };
  });
  const disk = optional(o['disk'], `${path}.disk`, (x, p) => {
    const d = asObject(x, p);
    const persistence = optional(d['persistence'], `${p}.persistence`, (y, pp) => {
      const po = asObject(y, pp);
      const principal = optional(po['principal'], `${pp}.principal`, asString);
      return { id: asString(po['id'], `${pp}.id`), ...(principal === undefined ? {} : { principal }) };
    });
    const volume = optional(d['volume'], `${p}.volume`, (y, vp) => {
      const vo = asObject(y, vp);
      const hostPath = optional(vo['host_path'], `${vp}.host_path`, asString);
      return {
        mode: asEnum(vo['mode'], `${vp}.mode`, ['RW', 'RO'] as const),
        container_path: asString(vo['container_path'], `${vp}.container_path`),
        ...(hostPath === undefined ? {} : { host_path: hostPath }),
      };
    });
    return { ...d, ...(persistence ? { persistence } : {}), ...(volume ? { volume } : {}) };
  });
  // Fields already checked are overlaid on the original so unknown ones survive.
  return {
    ...base,
    ...values,
    ...(reservations ? { reservations } : {}),
    ...(reservation ? { reservation } : {}),
    ...(role === undefined ? {} : { role }),
    ...(allocation ? { allocation_info: allocation } : {}),
    ...(disk ? { disk } : {}),
  } as Resource;
}

/** A list of resources. */
export function decodeResources(v: unknown, path: string): Resource[] {
  return optional(v, path, (x, p) => asArray(x, p, decodeResource)) ?? [];
}

function decodeAttribute(v: unknown, path: string): Attribute {
  const o = asObject(v, path);
  const type = asEnum(o['type'], `${path}.type`, VALUE_TYPES);
  if (type === 'SCALAR') return { ...o, name: asString(o['name'], `${path}.name`), type, scalar: decodeScalar(o['scalar'], `${path}.scalar`) } as Attribute;
  if (type === 'RANGES') return { ...o, name: asString(o['name'], `${path}.name`), type, ranges: decodeRanges(o['ranges'], `${path}.ranges`) } as Attribute;
  if (type === 'SET') return { ...o, name: asString(o['name'], `${path}.name`), type, set: decodeSet(o['set'], `${path}.set`) } as Attribute;
  const text = asObject(o['text'], `${path}.text`);
  return { ...o, name: asString(o['name'], `${path}.name`), type, text: { value: asString(text['value'], `${path}.text.value`) } } as Attribute;
}

function nanos(v: unknown, path: string): { nanoseconds: number } {
  const o = asObject(v, path);
  return { nanoseconds: asNumber(o['nanoseconds'], `${path}.nanoseconds`) };
}

function decodeUnavailability(v: unknown, path: string): InverseOffer['unavailability'] {
  const o = asObject(v, path);
  const duration = optional(o['duration'], `${path}.duration`, nanos);
  return { start: nanos(o['start'], `${path}.start`), ...(duration ? { duration } : {}) };
}

/** An Offer. */
export function decodeOffer(v: unknown, path: string): Offer {
  const o = asObject(v, path);
  const attributes = optional(o['attributes'], `${path}.attributes`, (x, p) => asArray(x, p, decodeAttribute));
  const executorIds = optional(o['executor_ids'], `${path}.executor_ids`, (x, p) => asArray(x, p, decodeId));
  const unavailability = optional(o['unavailability'], `${path}.unavailability`, decodeUnavailability);
  if (o['url'] !== undefined) {
    const u = asObject(o['url'], `${path}.url`);
    asString(u['scheme'], `${path}.url.scheme`);
    asObject(u['address'], `${path}.url.address`);
  }
  return {
    ...o,
    id: decodeId(o['id'], `${path}.id`),
    framework_id: decodeId(o['framework_id'], `${path}.framework_id`),
    agent_id: decodeId(o['agent_id'], `${path}.agent_id`),
    hostname: asString(o['hostname'], `${path}.hostname`),
    resources: decodeResources(o['resources'], `${path}.resources`),
    ...(attributes ? { attributes } : {}),
    ...(executorIds ? { executor_ids: executorIds } : {}),
    ...(unavailability ? { unavailability } : {}),
  } as Offer;
}

/** An InverseOffer. */
export function decodeInverseOffer(v: unknown, path: string): InverseOffer {
  const o = asObject(v, path);
  const agentId = optional(o['agent_id'], `${path}.agent_id`, decodeId);
  return {
    ...o,
    id: decodeId(o['id'], `${path}.id`),
    framework_id: decodeId(o['framework_id'], `${path}.framework_id`),
    ...(agentId ? { agent_id: agentId } : {}),
    unavailability: decodeUnavailability(o['unavailability'], `${path}.unavailability`),
  } as InverseOffer;
}

/** A TaskStatus. `uuid` stays base64 text, exactly what ACKNOWLEDGE must echo. */
export function decodeTaskStatus(v: unknown, path: string): TaskStatus {
  const o = asObject(v, path);
  const agentId = optional(o['agent_id'], `${path}.agent_id`, decodeId);
  const executorId = optional(o['executor_id'], `${path}.executor_id`, decodeId);
  const labels = optional(o['labels'], `${path}.labels`, decodeLabels);
  const fields: Record<string, unknown> = {};
  for (const k of ['message', 'source', 'reason', 'data', 'uuid'] as const) {
    const s = optional(o[k], `${path}.${k}`, asString);
    if (s !== undefined) fields[k] = s;
  }
  const timestamp = optional(o['timestamp'], `${path}.timestamp`, asNumber);
  const healthy = optional(o['healthy'], `${path}.healthy`, asBoolean);
  if (o['container_status'] !== undefined) asObject(o['container_status'], `${path}.container_status`);
  return {
    ...o,
    ...fields,
    task_id: decodeId(o['task_id'], `${path}.task_id`),
    state: asEnum(o['state'], `${path}.state`, TASK_STATES),
    ...(agentId ? { agent_id: agentId } : {}),
    ...(executorId ? { executor_id: executorId } : {}),
    ...(labels ? { labels } : {}),
    ...(timestamp === undefined ? {} : { timestamp }),
    ...(healthy === undefined ? {} : { healthy }),
  } as TaskStatus;
}

/** An OperationStatus (operation feedback). */
export function decodeOperationStatus(v: unknown, path: string): OperationStatus {
  const o = asObject(v, path);
  const operationId = optional(o['operation_id'], `${path}.operation_id`, decodeId);
  const uuid = optional(o['uuid'], `${path}.uuid`, decodeId);
  const agentId = optional(o['agent_id'], `${path}.agent_id`, decodeId);
  const providerId = optional(o['resource_provider_id'], `${path}.resource_provider_id`, decodeId);
  const message = optional(o['message'], `${path}.message`, asString);
  const converted = optional(o['converted_resources'], `${path}.converted_resources`, (x, p) => asArray(x, p, decodeResource));
  return {
    ...o,
    state: asEnum(o['state'], `${path}.state`, OPERATION_STATES),
    ...(operationId ? { operation_id: operationId } : {}),
    ...(uuid ? { uuid } : {}),
    ...(agentId ? { agent_id: agentId } : {}),
    ...(providerId ? { resource_provider_id: providerId } : {}),
    ...(message === undefined ? {} : { message }),
    ...(converted ? { converted_resources: converted } : {}),
  } as OperationStatus;
}

/** MasterInfo, as in SUBSCRIBED and in ZooKeeper's `json.info_*` nodes. */
export function decodeMasterInfo(v: unknown, path: string): MasterInfo {
  const o = asObject(v, path);
  const address = optional(o['address'], `${path}.address`, (x, p) => {
    const a = asObject(x, p);
    const hostname = optional(a['hostname'], `${p}.hostname`, asString);
    const ip = optional(a['ip'], `${p}.ip`, asString);
    return { ...(hostname === undefined ? {} : { hostname }), ...(ip === undefined ? {} : { ip }), port: asNumber(a['port'], `${p}.port`) };
  });
  const hostname = optional(o['hostname'], `${path}.hostname`, asString);
  const ip = optional(o['ip'], `${path}.ip`, asNumber);
  return {
    ...o,
    id: asString(o['id'], `${path}.id`),
    port: asNumber(o['port'], `${path}.port`),
    ...(hostname === undefined ? {} : { hostname }),
    ...(ip === undefined ? {} : { ip }),
    ...(address ? { address } : {}),
  } as MasterInfo;
}

/** A FrameworkID or AgentID where the field is required. */
export function decodeRequiredId(o: JsonObject, key: string, path: string): FrameworkID | AgentID {
  if (!isObject(o[key])) throw new DecodeError(`${path}.${key}`, 'is required');
  return decodeId(o[key], `${path}.${key}`);
}
