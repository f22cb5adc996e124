/**
 * The volume and capacity-reservation model, and the validation of requests
 * for them. Validation decodes `unknown` (HTTP bodies, gRPC messages) and
 * throws INVALID_FIELD naming the field, so every edge answers alike.
 *
 * Both kinds are "holdings": things Locus holds on one agent through a
 * labelled dynamic reservation. A volume adds a persistent volume (CREATE)
 * on its reserved disk; a capacity reservation is cpus/mem/disk only.
 */
import { DecodeError, asArray, asEnum, asObject, asString, isObject, optional } from '../core/decode.js';
import { invalidField } from '../core/errors.js';
import type { ResourceVector } from '../core/resources.js';
import { parseWholeMiB } from '../core/units.js';
import type { VolumeState } from './states.js';

/** Access mode of a volume as mounted in the container. */
export type VolumeMode = 'RW' | 'RO';

/** An agent-attribute constraint (`hostname` is a pseudo-attribute). */
export interface Constraint {
  readonly attribute: string;
  readonly op: 'EQ' | 'NEQ' | 'IN';
  /** For IN: a comma-separated list. */
  readonly value: string;
}

/** Where a holding may go. */
export interface Placement {
  /** An agent hostname or agent id: only there. */
  readonly agent?: string;
  /** A storage URI: preferably on the host holding most of its bytes. */
  readonly near?: string;
  /** The host `near` resolved to at request time (preferred, not required). */
  readonly targetHost?: string;
  readonly constraints: readonly Constraint[];
}

/** A Mesos operation Locus sent for a holding, by its id. */
export interface OperationRef {
  readonly id: string;
  readonly sentAt: number;
}

/** The operations outstanding for a holding, one slot per kind. */
export interface HoldingOps {
  readonly reserve?: OperationRef;
  readonly create?: OperationRef;
  readonly destroy?: OperationRef;
  readonly unreserve?: OperationRef;
}

/** Which operation slot. */
export type OpKind = keyof HoldingOps;

/** Fields common to volumes and capacity reservations. */
export interface HoldingBase {
  /** Globally unique; the value of the `locus.volume` / `locus.reservation` label and the persistence id. */
  readonly id: string;
  readonly tenant: string;
  /** The Mesos role the reservation is made for (the tenant's role). */
  readonly role: string;
  readonly state: VolumeState;
  /** Why the holding is UNAVAILABLE, FAILED or waiting. */
  readonly reason?: string;
  readonly agentId?: string;
  readonly hostname?: string;
  readonly ops: HoldingOps;
  /** How many times a RESERVE (or CREATE) was attempted; part of operation ids. */
  readonly attempt: number;
  /** An explicit delete was requested; the planner tears down. */
  readonly deleteRequested: boolean;
  /** The state to return to when an UNAVAILABLE holding's agent comes back. */
  readonly resumeState?: VolumeState;
  readonly placement: Placement;
  readonly labels: Readonly<Record<string, string>>;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Bumped by every write; the store compares it (optimistic concurrency). */
  readonly version: number;
}

/** A persistent volume. */
export interface VolumeRecord extends HoldingBase {
  readonly kind: 'volume';
  /** Unique per tenant among volumes that are not DELETED. */
  readonly name: string;
  readonly sizeMiB: number;
  readonly containerPath: string;
  readonly mode: VolumeMode;
  /** Executors currently using the volume (one at a time: volumes are not shared). */
  readonly usedBy: readonly string[];
}

/** A capacity reservation for a tenant. */
export interface ReservationRecord extends HoldingBase {
  readonly kind: 'reservation';
  readonly resources: ResourceVector;
}

/** Either kind. */
export type HoldingRecord = VolumeRecord | ReservationRecord;

/** A validated request for a volume. */
export interface VolumeRequest {
  readonly name: string;
  readonly sizeMiB: number;
  readonly containerPath: string;
  readonly mode: VolumeMode;
  readonly placement: Omit<Placement, 'targetHost'>;
  readonly labels: Readonly<Record<string, string>>;
  /** Only the admin may name a tenant other than its own. */
  readonly tenant?: string;
}

/** A validated request for a capacity reservation. */
export interface ReservationRequest {
  readonly resources: ResourceVector;
  readonly placement: Omit<Placement, 'targetHost'>;
  readonly labels: Readonly<Record<string, string>>;
  readonly tenant?: string;
}

/** Limits the validation enforces (also used in the JSON Schemas). */
export const LIMITS = {
  nameMax: 63,
  pathMax: 255,
  labelsMax: 32,
  labelKeyMax: 63,
  labelValueMax: 255,
  constraintsMax: 16,
  /** 1 PiB in MiB: anything larger is a typo. */
  sizeMaxMiB: 1024 * 1024 * 1024,
  cpusMax: 4096,
} as const;

/** Volume names: letters, digits, `-`, `_`, `.`; not `.` or `..`. */
export const VOLUME_NAME_PATTERN = '^[A-Za-z0-9._-]{1,63}$';
const NAME_RE = new RegExp(VOLUME_NAME_PATTERN);
/** One component of a container path. */
const PATH_COMPONENT_RE = /^[A-Za-z0-9._-]+$/;
/** Label keys; the `locus.` prefix is reserved for Locus's own labels. */
export const LABEL_KEY_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$';
const LABEL_KEY_RE = new RegExp(LABEL_KEY_PATTERN);
const URI_RE = /^[a-z][a-z0-9+.-]*:\/?\/?[^\s]*$/;

/** Throw INVALID_FIELD unless `name` is a valid volume name. */
export function validateVolumeName(name: string, field = 'name'): string {
  if (!NAME_RE.test(name)) {
    throw invalidField(field, `'${name.slice(0, 80)}' is not a volume name (1-63 of letters, digits, '-', '_', '.')`);
  }
  if (name === '.' || name === '..') throw invalidField(field, `'${name}' is not allowed as a volume name`);
  return name;
}

/**
 * What a sandbox holds of its own at its top. A task's: its logs. An executor's (where a volume is
 * mounted at its containerPath): its logs, its nested containers' sandboxes and its scratch. A
 * volume mounted over one of them cannot be (`stdout` is a file: the bind fails, and so did every
 * launch of an executor for the volume's jobs, without end), or would hide what the executor
 * needs (its scratch would be written into the volume).
 */
export const TASK_SANDBOX_ENTRIES: ReadonlySet<string> = new Set(['stdout', 'stderr']);
const EXECUTOR_SANDBOX_ENTRIES: ReadonlySet<string> = new Set([...TASK_SANDBOX_ENTRIES, 'containers', 'scratch']);

/** Throw INVALID_FIELD when `path`'s first component is one of `entries` (a sandbox's own). */
export function checkNotSandboxEntry(path: string, field: string, entries: ReadonlySet<string> = TASK_SANDBOX_ENTRIES): void {
  const first = path.replace(/^\/+/, '').split('/')[0] ?? '';
  if (entries.has(first)) {
    throw invalidField(field, `'${first}' is the sandbox's own (${[...entries].join(', ')}): choose another path`);
  }
}

/** Throw INVALID_FIELD unless `path` is relative, without `..`, of plain components, and not the sandbox's own. */
export function validateContainerPath(path: string, field = 'containerPath'): string {
  if (path.length === 0 || path.length > LIMITS.pathMax) throw invalidField(field, `must be 1-${LIMITS.pathMax} characters`);
  if (path.startsWith('/')) throw invalidField(field, 'must be relative to the sandbox, not absolute');
  const parts = path.split('/').filter((p, i, all) => !(p === '' && i === all.length - 1));
  for (const p of parts) {
    if (p === '..') throw invalidField(field, "must not contain '..'");
    if (p === '' || p === '.') throw invalidField(field, "must not contain empty or '.' components");
    if (!PATH_COMPONENT_RE.test(p)) throw invalidField(field, `component '${p.slice(0, 40)}' may only use letters, digits, '-', '_', '.'`);
  }
  checkNotSandboxEntry(path, field, EXECUTOR_SANDBOX_ENTRIES);
  return parts.join('/');
}

function decodeLabels(v: unknown, field: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw invalidField(field, 'must be an object of string values');
  const entries = Object.entries(v);
  if (entries.length > LIMITS.labelsMax) throw invalidField(field, `at most ${LIMITS.labelsMax} labels`);
  const out: Record<string, string> = {};
  for (const [k, val] of entries) {
    if (!LABEL_KEY_RE.test(k)) throw invalidField(`${field}.${k.slice(0, 40)}`, 'label keys use letters, digits, . _ / - (max 63)');
    if (k.startsWith('locus.')) throw invalidField(`${field}.${k}`, "the 'locus.' prefix is reserved");
    if (typeof val !== 'string') throw invalidField(`${field}.${k}`, 'label values must be strings');
    if (val.length > LIMITS.labelValueMax) throw invalidField(`${field}.${k}`, `at most ${LIMITS.labelValueMax} characters`);
    out[k] = val;
  }
  return out;
}

function decodeConstraint(v: unknown, path: string): Constraint {
  const o = asObject(v, path);
  const attribute = asString(o['attribute'], `${path}.attribute`);
  if (!/^[A-Za-z0-9._-]{1,63}$/.test(attribute)) throw new DecodeError(`${path}.attribute`, 'not an attribute name');
  const op = optional(o['op'], `${path}.op`, (x, p) => asEnum(x, p, ['EQ', 'NEQ', 'IN'] as const)) ?? 'EQ';
  const value = asString(o['value'], `${path}.value`);
  if (value.length === 0 || value.length > 255) throw new DecodeError(`${path}.value`, 'must be 1-255 characters');
  return { attribute, op, value };
}

function decodePlacement(o: Readonly<Record<string, unknown>>): Omit<Placement, 'targetHost'> {
  const agent = optional(o['agent'], 'agent', asString);
  const near = optional(o['near'], 'near', asString);
  if (agent !== undefined && near !== undefined) throw invalidField('near', "give either 'agent' or 'near', not both");
  if (agent !== undefined && !/^[A-Za-z0-9._:-]{1,255}$/.test(agent)) throw invalidField('agent', 'not a hostname or agent id');
  if (near !== undefined && (near.length > 2048 || !URI_RE.test(near))) throw invalidField('near', 'must be a storage URI such as hdfs://nn/path');
  const constraints = optional(o['constraints'], 'constraints', (v, p) => asArray(v, p, decodeConstraint)) ?? [];
  if (constraints.length > LIMITS.constraintsMax) throw invalidField('constraints', `at most ${LIMITS.constraintsMax} constraints`);
  return { ...(agent === undefined ? {} : { agent }), ...(near === undefined ? {} : { near }), constraints };
}

function decodeTenantField(o: Readonly<Record<string, unknown>>): string | undefined {
  return optional(o['tenant'], 'tenant', asString);
}

function sizeField(v: unknown, field: string, required: boolean): number {
  if (v === undefined || v === null) {
    if (required) throw invalidField(field, 'is required (e.g. "10GiB")');
    return 0;
  }
  if (typeof v !== 'string' && typeof v !== 'number') throw invalidField(field, 'must be a size such as "10GiB" or a number of MiB');
  const mib = parseWholeMiB(v, field);
  if (mib > LIMITS.sizeMaxMiB) throw invalidField(field, 'is larger than 1PiB');
  return mib;
}

// Decoder failures carry a path; turn them into the catalog's INVALID_FIELD.
function withFields<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof DecodeError) {
      const raw = err.message.slice((err.path || '<root>').length + 2);
      throw invalidField(err.path || 'body', raw);
    }
    throw err;
  }
}

const VOLUME_KEYS = new Set(['name', 'size', 'containerPath', 'mode', 'agent', 'near', 'constraints', 'labels', 'tenant']);
const RESERVATION_KEYS = new Set(['resources', 'agent', 'near', 'constraints', 'labels', 'tenant']);

function rejectUnknown(o: Readonly<Record<string, unknown>>, known: ReadonlySet<string>): void {
  for (const k of Object.keys(o)) if (!known.has(k)) throw invalidField(k.slice(0, 64), 'unknown field');
}

/** Validate a volume request body. */
export function validateVolumeRequest(body: unknown): VolumeRequest {
  return withFields(() => {
    const o = asObject(body, 'body');
    rejectUnknown(o, VOLUME_KEYS);
    const name = validateVolumeName(asString(o['name'], 'name'));
    const sizeMiB = sizeField(o['size'], 'size', true);
    if (sizeMiB < 1) throw invalidField('size', 'must be at least 1MiB');
    const containerPath = validateContainerPath(optional(o['containerPath'], 'containerPath', asString) ?? 'data');
    const mode = optional(o['mode'], 'mode', (v, p) => asEnum(v, p, ['RW', 'RO'] as const)) ?? 'RW';
    // A genuine master refuses CREATE of a read-only persistent volume ("Read-only persistent
    // volume not supported"); reading it read-only is a task's choice (a task volume's mode).
    if (mode === 'RO') throw invalidField('mode', "Mesos cannot create read-only persistent volumes; create it RW and mount it read-only from the job spec (task volumes: [{ name, mode: RO }])");
    const placement = decodePlacement(o);
    const labels = decodeLabels(o['labels'], 'labels');
    const tenant = decodeTenantField(o);
    return { name, sizeMiB, containerPath, mode, placement, labels, ...(tenant === undefined ? {} : { tenant }) };
  });
}

/** Validate a capacity-reservation request body. */
export function validateReservationRequest(body: unknown): ReservationRequest {
  return withFields(() => {
    const o = asObject(body, 'body');
    rejectUnknown(o, RESERVATION_KEYS);
    const r = asObject(o['resources'], 'resources');
    for (const k of Object.keys(r)) if (!['cpus', 'mem', 'disk'].includes(k)) throw invalidField(`resources.${k.slice(0, 40)}`, 'unknown resource (use cpus, mem, disk)');
    const cpusRaw = r['cpus'];
    if (cpusRaw !== undefined && (typeof cpusRaw !== 'number' || !Number.isFinite(cpusRaw) || cpusRaw < 0 || cpusRaw > LIMITS.cpusMax)) {
      throw invalidField('resources.cpus', `must be a number of cores between 0 and ${LIMITS.cpusMax}`);
    }
    const cpus = Math.round((cpusRaw ?? 0) * 1000) / 1000;
    const mem = sizeField(r['mem'], 'resources.mem', false);
    const disk = sizeField(r['disk'], 'resources.disk', false);
    if (cpus <= 0 && mem <= 0 && disk <= 0) throw invalidField('resources', 'reserve at least one of cpus, mem, disk');
    const placement = decodePlacement(o);
    const labels = decodeLabels(o['labels'], 'labels');
    const tenant = decodeTenantField(o);
    return { resources: { cpus, mem, disk }, placement, labels, ...(tenant === undefined ? {} : { tenant }) };
  });
}

/** What a holding needs from one agent, as a resource vector. */
export function holdingNeeds(h: HoldingRecord): ResourceVector {
  return h.kind === 'volume' ? { cpus: 0, mem: 0, disk: h.sizeMiB } : h.resources;
}

/** The public JSON view of a holding (what the API answers). */
export function holdingView(h: HoldingRecord): Record<string, unknown> {
  const common = {
    id: h.id,
    tenant: h.tenant,
    role: h.role,
    state: h.state,
    ...(h.reason === undefined ? {} : { reason: h.reason }),
    ...(h.agentId === undefined ? {} : { agentId: h.agentId }),
    ...(h.hostname === undefined ? {} : { hostname: h.hostname }),
    placement: h.placement,
    labels: h.labels,
    deleteRequested: h.deleteRequested,
    createdAt: new Date(h.createdAt).toISOString(),
    updatedAt: new Date(h.updatedAt).toISOString(),
  };
  if (h.kind === 'volume') {
    return { ...common, name: h.name, sizeMiB: h.sizeMiB, containerPath: h.containerPath, mode: h.mode, usedBy: h.usedBy };
  }
  return { ...common, resources: h.resources };
}
