/**
 * JSON Schemas of the volume and reservation routes. Fastify validates with
 * them before a handler runs, and /openapi.json is generated from them, so
 * the documentation and the validation never disagree.
 */
import { LABEL_KEY_PATTERN, LIMITS, VOLUME_NAME_PATTERN } from '../../volumes/model.js';
import { VOLUME_STATES } from '../../volumes/states.js';

/** A JSON Schema object (kept loose: it is data for ajv and OpenAPI). */
export type JsonSchema = Readonly<Record<string, unknown>>;

const SIZE: JsonSchema = {
  description: 'a size such as "10GiB", "512MiB", or a number of MiB',
  oneOf: [
    { type: 'string', minLength: 1, maxLength: 32 },
    { type: 'number', minimum: 0 },
  ],
};

const TENANT: JsonSchema = { type: 'string', minLength: 1, maxLength: 63, pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'admin only: the tenant to act for' };

const LABELS: JsonSchema = {
  type: 'object',
  maxProperties: LIMITS.labelsMax,
  propertyNames: { pattern: LABEL_KEY_PATTERN },
  additionalProperties: { type: 'string', maxLength: LIMITS.labelValueMax },
};

const CONSTRAINTS: JsonSchema = {
  type: 'array',
  maxItems: LIMITS.constraintsMax,
  items: {
    type: 'object',
    required: ['attribute', 'value'],
    additionalProperties: false,
    properties: {
      attribute: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,63}$' },
      op: { type: 'string', enum: ['EQ', 'NEQ', 'IN'] },
      value: { type: 'string', minLength: 1, maxLength: 255 },
    },
  },
};

const PLACEMENT_PROPS = {
  agent: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9._:-]+$', description: 'an agent hostname or id: only there' },
  near: { type: 'string', minLength: 3, maxLength: 2048, description: 'a storage URI: on the agent holding most of its data' },
  constraints: CONSTRAINTS,
};

/** POST /v1/volumes body. */
export const VOLUME_REQUEST: JsonSchema = {
  type: 'object',
  required: ['name', 'size'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: VOLUME_NAME_PATTERN, description: "letters, digits, '-', '_', '.'; unique per tenant" },
    size: SIZE,
    containerPath: { type: 'string', minLength: 1, maxLength: LIMITS.pathMax, description: 'relative to the sandbox; default "data"' },
    mode: { type: 'string', enum: ['RW', 'RO'] },
    ...PLACEMENT_PROPS,
    labels: LABELS,
    tenant: TENANT,
  },
};

/** POST /v1/reservations body. */
export const RESERVATION_REQUEST: JsonSchema = {
  type: 'object',
  required: ['resources'],
  additionalProperties: false,
  properties: {
    resources: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: { cpus: { type: 'number', minimum: 0, maximum: LIMITS.cpusMax }, mem: SIZE, disk: SIZE },
    },
    ...PLACEMENT_PROPS,
    labels: LABELS,
    tenant: TENANT,
  },
};

/** `:name` of a volume. */
export const VOLUME_PARAMS: JsonSchema = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: VOLUME_NAME_PATTERN } },
};

/** `:id` of a reservation. */
export const RESERVATION_PARAMS: JsonSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^res-[0-9a-f-]{36}$' } },
};

/** Query of list routes. */
export const LIST_QUERY: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { tenant: TENANT, all: { type: 'string', enum: ['true', 'false'], description: 'include DELETED ones' } },
};

/** Query of single-resource routes. */
export const ONE_QUERY: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { tenant: TENANT },
};

/** Query of delete routes. */
export const DELETE_QUERY: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { tenant: TENANT, force: { type: 'string', enum: ['true', 'false', '1', '0'] } },
};

/** What a job or task id may be, on every surface. */
export const RECORD_ID = { maxLength: 160, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } as const;

/** A job or task id in a path. */
export const ID: JsonSchema = { type: 'string', minLength: 1, ...RECORD_ID };

/** What an idempotency key may be, on every surface: 1-200 printable ASCII characters, no space. */
export const IDEMPOTENCY_KEY = { maxLength: 200, pattern: '^[\\x21-\\x7e]+$' } as const;

/** The Idempotency-Key header. */
export const IDEMPOTENCY_HEADERS: JsonSchema = {
  type: 'object',
  properties: { 'idempotency-key': { type: 'string', minLength: 1, ...IDEMPOTENCY_KEY } },
};

const HOLDING_COMMON = {
  id: { type: 'string' },
  tenant: { type: 'string' },
  role: { type: 'string' },
  state: { type: 'string', enum: [...VOLUME_STATES] },
  reason: { type: 'string' },
  agentId: { type: 'string' },
  hostname: { type: 'string' },
  deleteRequested: { type: 'boolean' },
  labels: { type: 'object', additionalProperties: { type: 'string' } },
  createdAt: { type: 'string', format: 'date-time' },
  updatedAt: { type: 'string', format: 'date-time' },
};

/** A volume as answered (documentation only). */
export const VOLUME_VIEW: JsonSchema = {
  type: 'object',
  properties: {
    ...HOLDING_COMMON,
    name: { type: 'string' },
    sizeMiB: { type: 'number' },
    containerPath: { type: 'string' },
    mode: { type: 'string', enum: ['RW', 'RO'] },
    usedBy: { type: 'array', items: { type: 'string' } },
  },
};

/** A reservation as answered (documentation only). */
export const RESERVATION_VIEW: JsonSchema = {
  type: 'object',
  properties: {
    ...HOLDING_COMMON,
    resources: { type: 'object', properties: { cpus: { type: 'number' }, mem: { type: 'number' }, disk: { type: 'number' } } },
  },
};

/** The error body every route answers errors with. */
export const ERROR_BODY: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' }, details: { type: 'object' } },
    },
  },
};
