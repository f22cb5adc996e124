/**
 * `POST /api/v1/scheduler` as the genuine master answers it
 * (`Master::Http::scheduler` and `validation::scheduler::call::validate`):
 * redirect when not leading, 503 while not ready, 401 without valid
 * credentials, the master's exact 400 messages, SUBSCRIBE as a chunked
 * RecordIO stream with Mesos-Stream-Id, every other call 202 (or 200/501).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { asArray, asObject, asString, isObject, optional, type JsonObject } from '../../core/decode.js';
import type { FrameworkInfo, TaskState } from '../../mesos/types.js';
import { basicAuth, readBody, text } from '../http.js';
import type { Master } from './master.js';
import { frameworkRoles, hasCapability, type FrameworkRecord } from './model.js';
import { accept, type AcceptCall } from './operations.js';

const CALL_TYPES = [
  'SUBSCRIBE', 'TEARDOWN', 'ACCEPT', 'DECLINE', 'ACCEPT_INVERSE_OFFERS', 'DECLINE_INVERSE_OFFERS', 'REVIVE', 'KILL', 'SHUTDOWN',
  'ACKNOWLEDGE', 'ACKNOWLEDGE_OPERATION_STATUS', 'RECONCILE', 'RECONCILE_OPERATIONS', 'MESSAGE', 'REQUEST', 'SUPPRESS', 'UPDATE_FRAMEWORK', 'UNKNOWN',
] as const;

/** Who may call, and where the leader is when this master is not it. */
export interface SchedulerHttpOptions {
  readonly credentials: ReadonlyMap<string, string> | undefined;
  readonly redirectTo: string | undefined;
}

const UUID_BYTES = 16;

function idValue(v: unknown, path: string): string | undefined {
  return optional(v, path, (x, p) => asString(asObject(x, p)['value'], `${p}.value`));
}

/** Handle one scheduler API request. */
export async function handleScheduler(m: Master, o: SchedulerHttpOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (o.redirectTo !== undefined) {
    const leader = new URL(o.redirectTo);
    return text(res, 307, '', { Location: `//${leader.host}${req.url ?? '/api/v1/scheduler'}` });
  }
  let principal: string | undefined;
  if (o.credentials) {
    const auth = basicAuth(req);
    if (!auth || o.credentials.get(auth.principal) !== auth.secret) return text(res, 401, '', { 'WWW-Authenticate': 'Basic realm="mesos"' });
    principal = auth.principal;
  }
  if (req.method !== 'POST') return text(res, 405, '', { Allow: 'POST' });
  const contentType = req.headers['content-type'];
  if (contentType === undefined) return text(res, 400, "Expecting 'Content-Type' to be present");
  if (contentType.split(';')[0]?.trim() !== 'application/json') {
    return text(res, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf");
  }
  const body = await readBody(req);
  let value: unknown;
  try {
    value = JSON.parse(body) as unknown;
  } catch {
    return text(res, 400, `Failed to parse body into JSON: syntax error at line 1 near: ${body.slice(0, 40)}`);
  }
  // The genuine master's JSON-to-protobuf conversion reads `null` as an absent field, at any depth
  // (clients written in JavaScript often send `"executor": null`).
  value = withoutNulls(value);
  if (!isObject(value)) return text(res, 400, 'Failed to convert JSON into Call protobuf: Expecting a JSON object');
  const call = value;
  const type = call['type'];
  if (type !== undefined && (typeof type !== 'string' || !(CALL_TYPES as readonly string[]).includes(type))) {
    return text(res, 400, `Failed to convert JSON into Call protobuf: Failed to find enum for '${String(type)}'`);
  }
  const invalid = (msg: string): void => text(res, 400, `Failed to validate scheduler::Call: ${msg}`);
  if (type === undefined) return invalid("Expecting 'type' to be present");
  if (type === 'SUBSCRIBE') return subscribe(m, call, principal, req, res);
  if (call['framework_id'] === undefined) return invalid("Expecting 'framework_id' to be present");
  const key = type.toLowerCase();
  const needsBody = !['TEARDOWN', 'REVIVE', 'SUPPRESS', 'UNKNOWN'].includes(type);
  if (needsBody && call[key] === undefined) return invalid(`Expecting '${key}' to be present`);
  // 1.12 has no operations on external resource providers: an acknowledgement names its agent.
  if (type === 'ACKNOWLEDGE_OPERATION_STATUS' && isObject(call[key]) && call[key]['agent_id'] === undefined) return invalid("Expecting 'agent_id' to be present");
  const fid = idValue(call['framework_id'], 'framework_id') ?? '';
  const fw = m.frameworks.get(fid);
  if (!fw) return text(res, 400, 'Framework cannot be found');
  if (principal !== undefined && fw.info.principal !== undefined && principal !== fw.info.principal) {
    return text(res, 400, `Authenticated principal '${principal}' does not match principal '${fw.info.principal}' set in \`FrameworkInfo\``);
  }
  if (!fw.stream) return text(res, 403, 'Framework is not subscribed');
  const streamId = req.headers['mesos-stream-id'];
  if (streamId === undefined) return text(res, 400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header");
  if (streamId !== fw.stream.id) {
    return text(res, 400, `The stream ID '${String(streamId)}' included in this request didn't match the stream ID currently associated with framework ID ${fw.id}`);
  }
  try {
    const status = dispatch(m, fw, type, call);
    text(res, status);
  } catch (err) {
    text(res, 400, `Failed to convert JSON into Call protobuf: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function subscribe(m: Master, call: JsonObject, principal: string | undefined, req: IncomingMessage, res: ServerResponse): void {
  const invalid = (msg: string): void => text(res, 400, `Failed to validate scheduler::Call: ${msg}`);
  if (!isObject(call['subscribe'])) return invalid("Expecting 'subscribe' to be present");
  const sub = call['subscribe'];
  if (!isObject(sub['framework_info'])) return invalid("Not initialized: subscribe.framework_info");
  const fi = sub['framework_info'];
  if (typeof fi['user'] !== 'string' || typeof fi['name'] !== 'string') return invalid('Not initialized: subscribe.framework_info.user, subscribe.framework_info.name');
  const info = fi as unknown as FrameworkInfo;
  const callFid = idValue(call['framework_id'], 'framework_id');
  if (callFid !== info.id?.value) return invalid("'framework_id' differs from 'subscribe.framework_info.id'");
  if (principal !== undefined && info.principal !== undefined && principal !== info.principal) {
    return invalid(`Authenticated principal '${principal}' does not match principal '${info.principal}' set in \`FrameworkInfo\``);
  }
  const accepts = req.headers.accept;
  if (accepts !== undefined && !/application\/json|\*\/\*|application\/\*/.test(accepts)) {
    return text(res, 406, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'");
  }
  if (req.headers['mesos-stream-id'] !== undefined) return text(res, 400, "Subscribe calls should not include the 'Mesos-Stream-Id' header");
  if (m.failSubscribes > 0) {
    m.failSubscribes--;
    return text(res, 503, 'Master has not finished recovery');
  }
  const suppressed = optional(sub['suppressed_roles'], 'suppressed_roles', (x, p) => asArray(x, p, asString)) ?? [];
  const streamId = randomUUID();
  res.writeHead(200, { 'Content-Type': 'application/json', 'Mesos-Stream-Id': streamId });
  res.flushHeaders();
  m.subscribe(res, streamId, principal !== undefined && info.principal === undefined ? { ...info, principal } : info, suppressed);
}

function rolesOf(fw: FrameworkRecord, v: unknown): string[] {
  const roles = isObject(v) ? optional(v['roles'], 'roles', (x, p) => asArray(x, p, asString)) : undefined;
  return roles === undefined || roles.length === 0 ? fw.roles : roles.filter((r) => fw.roles.includes(r));
}

/** Execute a validated call; returns the HTTP status. */
function dispatch(m: Master, fw: FrameworkRecord, type: string, call: JsonObject): number {
  switch (type) {
    case 'TEARDOWN':
      m.removeFramework(fw, 'TEARDOWN');
      return 202;
    case 'ACCEPT':
      accept(m, fw, call['accept'] as AcceptCall);
      return 202;
    case 'DECLINE': {
      const d = asObject(call['decline'], 'decline');
      const ids = asArray(d['offer_ids'] ?? [], 'decline.offer_ids', (x, p) => asString(asObject(x, p)['value'], `${p}.value`));
      const refuse = isObject(d['filters']) && typeof d['filters']['refuse_seconds'] === 'number' ? d['filters']['refuse_seconds'] : 5;
      for (const id of ids) {
        const offer = fw.offers.get(id);
        if (!offer) continue;
        m.removeOffer(id);
        if (refuse > 0) fw.filters.push({ agentId: offer.agent_id.value, role: offer.allocation_info?.role ?? '*', resources: offer.resources.map((r) => { const { allocation_info: _a, ...rest } = r; void _a; return rest; }), until: Date.now() + refuse * 1000 });
      }
      return 202;
    }
    case 'REVIVE': {
      const roles = rolesOf(fw, call['revive']);
      for (const r of roles) fw.suppressed.delete(r);
      fw.filters = fw.filters.filter((f) => !roles.includes(f.role));
      setImmediate(() => m.allocate());
      return 202;
    }
    case 'SUPPRESS': {
      for (const r of rolesOf(fw, call['suppress'])) fw.suppressed.add(r);
      return 202;
    }
    case 'KILL': {
      const k = asObject(call['kill'], 'kill');
      const taskId = idValue(k['task_id'], 'kill.task_id') ?? '';
      const agentId = idValue(k['agent_id'], 'kill.agent_id');
      const t = fw.tasks.get(taskId);
      if (!t) {
        reconcileTasks(m, fw, [{ taskId, agentId }]);
        return 202;
      }
      const agent = m.agents.get(t.agentId);
      const graceNs = t.info.kill_policy?.grace_period?.nanoseconds;
      const graceMs = graceNs !== undefined ? Math.round(graceNs / 1e6) : 3000;
      agent?.runtime.killTask(fw.id, taskId, hasCapability(fw, 'TASK_KILLING_STATE'), graceMs);
      return 202;
    }
    case 'SHUTDOWN': {
      const s = asObject(call['shutdown'], 'shutdown');
      const executorId = idValue(s['executor_id'], 'shutdown.executor_id') ?? '';
      const agentId = idValue(s['agent_id'], 'shutdown.agent_id');
      // A custom executor gets a SHUTDOWN event; the built-in executors are their tasks.
      let custom = false;
      for (const [id, a] of m.agents) if ((agentId === undefined || agentId === id) && a.runtime.shutdownExecutor(fw.id, executorId)) custom = true;
      if (custom) return 202;
      for (const t of fw.tasks.values()) {
        if ((t.info.executor?.executor_id.value ?? t.info.task_id.value) === executorId) m.agents.get(t.agentId)?.runtime.killTask(fw.id, t.info.task_id.value, false, 3000);
      }
      return 202;
    }
    case 'ACKNOWLEDGE': {
      const a = asObject(call['acknowledge'], 'acknowledge');
      const uuid = asString(a['uuid'], 'acknowledge.uuid');
      if (Buffer.from(uuid, 'base64').length !== UUID_BYTES) throw new Error(`Invalid UUID: ${uuid}`);
      m.acknowledge(fw, idValue(a['task_id'], 'acknowledge.task_id') ?? '', uuid);
      return 202;
    }
    case 'ACKNOWLEDGE_OPERATION_STATUS': {
      const a = asObject(call['acknowledge_operation_status'], 'acknowledge_operation_status');
      fw.pendingOperationUpdates.delete(asString(a['uuid'], 'acknowledge_operation_status.uuid'));
      return 202;
    }
    case 'RECONCILE': {
      const r = asObject(call['reconcile'], 'reconcile');
      const tasks = asArray(r['tasks'] ?? [], 'reconcile.tasks', (x, p) => {
        const o = asObject(x, p);
        return { taskId: idValue(o['task_id'], `${p}.task_id`) ?? '', agentId: idValue(o['agent_id'], `${p}.agent_id`) };
      });
      reconcileTasks(m, fw, tasks);
      return 202;
    }
    case 'RECONCILE_OPERATIONS': {
      const r = asObject(call['reconcile_operations'], 'reconcile_operations');
      const ops = asArray(r['operations'] ?? [], 'reconcile_operations.operations', (x, p) => idValue(asObject(x, p)['operation_id'], `${p}.operation_id`) ?? '');
      const wanted = ops.length > 0 ? ops : [...fw.operations.keys()];
      for (const id of wanted) {
        const s = fw.operations.get(id);
        const { uuid: _u, ...status } = s ?? { operation_id: { value: id }, state: 'OPERATION_UNKNOWN' as const, message: 'Reconciliation: Operation is unknown' };
        void _u;
        m.send(fw, { type: 'UPDATE_OPERATION_STATUS', update_operation_status: { status } });
      }
      return 202;
    }
    case 'UPDATE_FRAMEWORK': {
      const u = asObject(call['update_framework'], 'update_framework');
      const info = asObject(u['framework_info'], 'update_framework.framework_info') as unknown as FrameworkInfo;
      if (info.id?.value !== fw.id) throw new Error("'framework_id' differs from 'update_framework.framework_info.id'");
      fw.info = info;
      fw.roles = frameworkRoles(info);
      fw.capabilities = new Set((info.capabilities ?? []).map((c) => c.type));
      const suppressed = optional(u['suppressed_roles'], 'suppressed_roles', (x, p) => asArray(x, p, asString));
      if (suppressed) fw.suppressed = new Set(suppressed);
      return 200;
    }
    case 'MESSAGE': {
      // Framework → executor, unreliable as in Mesos: dropped when the agent or executor is not there.
      const msg = asObject(call['message'], 'message');
      const agentId = idValue(msg['agent_id'], 'message.agent_id') ?? '';
      const executorId = idValue(msg['executor_id'], 'message.executor_id') ?? '';
      const data = asString(msg['data'], 'message.data');
      m.agents.get(agentId)?.runtime.messageExecutor(fw.id, executorId, data);
      return 202;
    }
    case 'ACCEPT_INVERSE_OFFERS':
    case 'DECLINE_INVERSE_OFFERS':
    case 'REQUEST':
      // No inverse offers and no requests: accepted and dropped, like the master does for stale ids.
      return 202;
    default:
      return 501;
  }
}

/** RECONCILE (explicit with tasks, implicit without), with the master's cases. */
export function reconcileTasks(m: Master, fw: FrameworkRecord, tasks: readonly { taskId: string; agentId: string | undefined }[]): void {
  const now = Date.now() / 1000;
  if (tasks.length === 0) {
    for (const t of fw.tasks.values()) m.send(fw, { type: 'UPDATE', update: { status: m.reconciliationStatus(fw, t) } });
    return;
  }
  const partitionAware = hasCapability(fw, 'PARTITION_AWARE');
  for (const { taskId, agentId } of tasks) {
    const t = fw.tasks.get(taskId);
    if (t) {
      m.send(fw, { type: 'UPDATE', update: { status: m.reconciliationStatus(fw, t) } });
      continue;
    }
    // The agent is in the registry of a master that restarted and has not re-registered yet: no
    // answer, as from Mesos (the task may well be running there); the scheduler asks again later.
    if (agentId !== undefined && m.recoveringAgents.has(agentId)) continue;
    const agent = agentId !== undefined ? m.agents.get(agentId) : undefined;
    const unreachableTime = agent ? agent.unreachableTime : agentId !== undefined ? m.unreachableAfterFailover.get(agentId) : undefined;
    let state: TaskState;
    let message: string;
    let extra: Record<string, unknown> = {};
    if (agent && agent.connected) { state = partitionAware ? 'TASK_GONE' : 'TASK_LOST'; message = 'Reconciliation: Task is unknown to the agent'; }
    else if (unreachableTime !== undefined) {
      state = partitionAware ? 'TASK_UNREACHABLE' : 'TASK_LOST'; message = 'Reconciliation: Task is unreachable';
      extra = { unreachable_time: { nanoseconds: Math.round(unreachableTime * 1e9) } };
    } else { state = partitionAware ? 'TASK_UNKNOWN' : 'TASK_LOST'; message = 'Reconciliation: Task is unknown'; }
    m.send(fw, {
      type: 'UPDATE',
      update: { status: { task_id: { value: taskId }, state, message, source: 'SOURCE_MASTER', reason: 'REASON_RECONCILIATION', ...(agentId !== undefined ? { agent_id: { value: agentId } } : {}), timestamp: now, ...extra } },
    });
  }
}

/** A JSON value with every object member whose value is `null` removed, recursively. */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== null) out[k] = withoutNulls(x);
    return out;
  }
  return v;
}
