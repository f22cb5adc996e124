/**
 * Pure builders for scheduler calls, offer operations and FrameworkInfo, and
 * the interpretation of a call's HTTP answer. The client sends what these
 * build; keeping them pure lets tests compare them with a real master's
 * recorded requests.
 */
import { LocusError, type ErrorCode } from '../core/errors.js';
import type {
  AgentID, CallBody, ExecutorID, ExecutorInfo, Filters, FrameworkCapabilityType, FrameworkInfo, Label, Labels,
  OfferID, Operation, OperationID, Resource, TaskID, TaskInfo,
} from './types.js';

/** Seven days: long enough that a Locus restart or a weekend outage keeps its tasks. */
export const DEFAULT_FAILOVER_TIMEOUT_SECONDS = 7 * 24 * 3600;

/** The capabilities Locus always declares. */
export const LOCUS_CAPABILITIES: readonly FrameworkCapabilityType[] = [
  'MULTI_ROLE', 'RESERVATION_REFINEMENT', 'PARTITION_AWARE', 'TASK_KILLING_STATE', 'SHARED_RESOURCES',
];

/** What a framework says about itself; everything but name and roles has a default. */
export interface FrameworkOptions {
  readonly name: string;
  readonly roles: readonly string[];
  readonly user?: string;
  readonly principal?: string;
  readonly id?: string;
  readonly failoverTimeoutSeconds?: number;
  readonly hostname?: string;
  readonly webuiUrl?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly extraCapabilities?: readonly FrameworkCapabilityType[];
}

/** Labels from a plain record (sorted by key so the wire form is stable). */
export function toLabels(record: Readonly<Record<string, string>>): Labels {
  const labels: Label[] = Object.keys(record).sort().map((key) => ({ key, value: record[key] ?? '' }));
  return { labels };
}

/** Build the FrameworkInfo Locus subscribes with: checkpointing, MULTI_ROLE and friends, a long failover timeout. */
export function buildFrameworkInfo(o: FrameworkOptions): FrameworkInfo {
  if (o.roles.length === 0) throw new LocusError('INVALID_FIELD', 'a framework needs at least one role', { field: 'roles' });
  const capabilities = [...new Set([...LOCUS_CAPABILITIES, ...(o.extraCapabilities ?? [])])].map((type) => ({ type }));
  return {
    user: o.user ?? process.env['USER'] ?? 'root',
    name: o.name,
    ...(o.id === undefined ? {} : { id: { value: o.id } }),
    failover_timeout: o.failoverTimeoutSeconds ?? DEFAULT_FAILOVER_TIMEOUT_SECONDS,
    checkpoint: true,
    roles: [...o.roles],
    ...(o.principal === undefined ? {} : { principal: o.principal }),
    ...(o.hostname === undefined ? {} : { hostname: o.hostname }),
    ...(o.webuiUrl === undefined ? {} : { webui_url: o.webuiUrl }),
    capabilities,
    ...(o.labels === undefined ? {} : { labels: toLabels(o.labels) }),
  };
}

const opId = (id: string | undefined): { id?: OperationID } => (id === undefined ? {} : { id: { value: id } });

/** Builders for `Offer.Operation`; pass an id to get operation feedback (UPDATE_OPERATION_STATUS). */
export const ops = {
  launch: (tasks: readonly TaskInfo[], id?: string): Operation => ({ type: 'LAUNCH', ...opId(id), launch: { task_infos: tasks } }),
  launchGroup: (executor: ExecutorInfo, tasks: readonly TaskInfo[], id?: string): Operation => ({
    type: 'LAUNCH_GROUP', ...opId(id), launch_group: { executor, task_group: { tasks } },
  }),
  reserve: (resources: readonly Resource[], id?: string): Operation => ({ type: 'RESERVE', ...opId(id), reserve: { resources } }),
  unreserve: (resources: readonly Resource[], id?: string): Operation => ({ type: 'UNRESERVE', ...opId(id), unreserve: { resources } }),
  create: (volumes: readonly Resource[], id?: string): Operation => ({ type: 'CREATE', ...opId(id), create: { volumes } }),
  destroy: (volumes: readonly Resource[], id?: string): Operation => ({ type: 'DESTROY', ...opId(id), destroy: { volumes } }),
} as const;

const ids = (values: readonly (string | OfferID)[]): OfferID[] => values.map((v) => (typeof v === 'string' ? { value: v } : v));
const filtersOf = (f: Filters | undefined): { filters?: Filters } => (f === undefined ? {} : { filters: f });

/** Builders for every call body a framework sends (framework_id is added by the client). */
export const calls = {
  subscribe: (frameworkInfo: FrameworkInfo, suppressedRoles?: readonly string[]): CallBody => ({
    type: 'SUBSCRIBE', subscribe: { framework_info: frameworkInfo, ...(suppressedRoles && suppressedRoles.length > 0 ? { suppressed_roles: suppressedRoles } : {}) },
  }),
  teardown: (): CallBody => ({ type: 'TEARDOWN' }),
  accept: (offerIds: readonly (string | OfferID)[], operations: readonly Operation[], filters?: Filters): CallBody => ({
    type: 'ACCEPT', accept: { offer_ids: ids(offerIds), operations, ...filtersOf(filters) },
  }),
  decline: (offerIds: readonly (string | OfferID)[], filters?: Filters): CallBody => ({
    type: 'DECLINE', decline: { offer_ids: ids(offerIds), ...filtersOf(filters) },
  }),
  revive: (roles?: readonly string[]): CallBody => ({ type: 'REVIVE', ...(roles && roles.length > 0 ? { revive: { roles } } : {}) }),
  suppress: (roles?: readonly string[]): CallBody => ({ type: 'SUPPRESS', ...(roles && roles.length > 0 ? { suppress: { roles } } : {}) }),
  kill: (taskId: TaskID, agentId?: AgentID): CallBody => ({ type: 'KILL', kill: { task_id: taskId, ...(agentId ? { agent_id: agentId } : {}) } }),
  shutdown: (executorId: ExecutorID, agentId: AgentID): CallBody => ({ type: 'SHUTDOWN', shutdown: { executor_id: executorId, agent_id: agentId } }),
  acknowledge: (agentId: AgentID, taskId: TaskID, uuid: string): CallBody => ({ type: 'ACKNOWLEDGE', acknowledge: { agent_id: agentId, task_id: taskId, uuid } }),
  acknowledgeOperationStatus: (operationId: OperationID, uuid: string, agentId?: AgentID): CallBody => ({
    type: 'ACKNOWLEDGE_OPERATION_STATUS',
    acknowledge_operation_status: { ...(agentId ? { agent_id: agentId } : {}), uuid, operation_id: operationId },
  }),
  /** Explicit reconciliation for the given tasks; an empty list asks for implicit reconciliation (all tasks). */
  reconcile: (tasks: readonly { task_id: TaskID; agent_id?: AgentID }[]): CallBody => ({ type: 'RECONCILE', reconcile: { tasks } }),
  reconcileOperations: (operations: readonly { operation_id: OperationID; agent_id?: AgentID }[]): CallBody => ({
    type: 'RECONCILE_OPERATIONS', reconcile_operations: { operations },
  }),
  message: (agentId: AgentID, executorId: ExecutorID, data: Uint8Array | string): CallBody => ({
    type: 'MESSAGE',
    message: { agent_id: agentId, executor_id: executorId, data: Buffer.from(data).toString('base64') },
  }),
  updateFramework: (frameworkInfo: FrameworkInfo, suppressedRoles?: readonly string[]): CallBody => ({
    type: 'UPDATE_FRAMEWORK',
    update_framework: { framework_info: frameworkInfo, ...(suppressedRoles && suppressedRoles.length > 0 ? { suppressed_roles: suppressedRoles } : {}) },
  }),
} as const;

/** A call the master accepted: 202 (no body) or 200 (with a body, e.g. for RECONCILE_OPERATIONS). */
export interface CallResult {
  readonly status: number;
  readonly body: string;
}

/** What a call's answer means for the caller. */
export type CallOutcome =
  | { readonly kind: 'ok'; readonly result: CallResult }
  | { readonly kind: 'redirect'; readonly location: string | undefined }
  | { readonly kind: 'retry'; readonly reason: string }
  | { readonly kind: 'fail'; readonly error: LocusError };

function codeFor(status: number): ErrorCode {
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'CONFLICT';
  if (status === 413) return 'TOO_LARGE';
  return 'INVALID_BODY';
}

/**
 * Classify a master's answer to a call: 200/202 succeed, 307 points at the
 * leader, 5xx (503 above all: "not ready yet") may be retried, and any other
 * 4xx fails with the master's own message, which is the useful part.
 */
export function interpretCallResponse(callType: string, status: number, body: string, location?: string): CallOutcome {
  if (status === 200 || status === 202) return { kind: 'ok', result: { status, body } };
  if (status === 307) return { kind: 'redirect', location };
  // An HTML error page says "this is not a Mesos master" better than its markup does.
  const text = /^\s*<(!doctype|html)/i.test(body) ? '(an HTML page, not a Mesos answer)' : body.trim().slice(0, 500);
  if (status >= 500) return { kind: 'retry', reason: `master answered ${status}${text ? `: ${text}` : ''}` };
  const message = `master rejected ${callType} (${status})${text ? `: ${text}` : ''}`;
  return { kind: 'fail', error: new LocusError(status >= 400 && status < 500 ? codeFor(status) : 'PROTOCOL', message, { details: { status, callType } }) };
}
