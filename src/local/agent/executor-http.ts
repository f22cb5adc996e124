/**
 * `POST /api/v1/executor` as the genuine agent answers it
 * (`Http::executor` in src/slave/http.cpp and `validateExecutorCall` in
 * src/common/validation.cpp): SUBSCRIBE opens a chunked RecordIO JSON event
 * stream, UPDATE and MESSAGE are answered 202, HEARTBEAT 202 without
 * lookups, with the agent's exact 4xx messages. JSON only: a protobuf body
 * cannot be parsed here and is refused as unparsable.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { asObject, asString, isObject, type JsonObject } from '../../core/decode.js';
import { TASK_STATES, type TaskStatus } from '../../mesos/types.js';
import { readBody, text } from '../http.js';
import type { LocalAgent } from './agent.js';

const CALL_TYPES = ['UNKNOWN', 'SUBSCRIBE', 'UPDATE', 'MESSAGE', 'HEARTBEAT'] as const;

function idOf(v: unknown): string | undefined {
  return isObject(v) && typeof v['value'] === 'string' ? v['value'] : undefined;
}

/** Why a status in an UPDATE call is invalid, in the agent's words, or undefined. */
function statusError(executorId: string, frameworkId: string, s: JsonObject): string | undefined {
  if (idOf(s['task_id']) === undefined || typeof s['state'] !== 'string') return 'Not initialized: update.status.task_id, update.status.state';
  if (!(TASK_STATES as readonly string[]).includes(s['state'])) return `Failed to find enum for '${s['state']}'`;
  if (typeof s['uuid'] !== 'string') return "Expecting 'uuid' to be present";
  if (Buffer.from(s['uuid'], 'base64').length !== 16) return 'Not a valid UUID';
  const sid = idOf(s['executor_id']);
  if (sid !== undefined && sid !== executorId) return `ExecutorID in Call: ${executorId} does not match ExecutorID in TaskStatus: ${sid}`;
  if (s['source'] !== 'SOURCE_EXECUTOR') return `Received Call from executor ${executorId} of framework ${frameworkId} with invalid source, expecting 'SOURCE_EXECUTOR'`;
  if (s['state'] === 'TASK_STAGING') return `Received TASK_STAGING from executor ${executorId} of framework ${frameworkId} which is not allowed`;
  return undefined;
}

/** Handle one executor API request. */
export async function handleExecutorApi(agent: LocalAgent, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') return text(res, 405, '', { Allow: 'POST' });
  const contentType = req.headers['content-type'];
  if (contentType === undefined) return text(res, 400, "Expecting 'Content-Type' to be present");
  const media = contentType.split(';')[0]?.trim();
  const body = await readBody(req);
  if (media === 'application/x-protobuf') return text(res, 400, 'Failed to parse body into Call protobuf');
  if (media !== 'application/json') return text(res, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf");
  let value: unknown;
  try {
    value = JSON.parse(body) as unknown;
  } catch (err) {
    return text(res, 400, `Failed to parse body into JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isObject(value)) return text(res, 400, 'Failed to convert JSON into Call protobuf: Expecting a JSON object');
  const call = value;
  const type = call['type'];
  if (type !== undefined && (typeof type !== 'string' || !(CALL_TYPES as readonly string[]).includes(type))) {
    return text(res, 400, `Failed to convert JSON into Call protobuf: Failed to find enum for '${String(type)}'`);
  }
  const invalid = (msg: string): void => text(res, 400, `Failed to validate Executor::Call: ${msg}`);
  const executorId = idOf(call['executor_id']);
  const frameworkId = idOf(call['framework_id']);
  if (executorId === undefined || frameworkId === undefined) {
    return invalid(`Not initialized: ${[executorId === undefined ? 'executor_id' : '', frameworkId === undefined ? 'framework_id' : ''].filter((x) => x !== '').join(', ')}`);
  }
  if (type === undefined) return invalid("Expecting 'type' to be present");
  let status: JsonObject | undefined;
  switch (type) {
    case 'SUBSCRIBE':
      if (!isObject(call['subscribe'])) return invalid("Expecting 'subscribe' to be present");
      break;
    case 'UPDATE': {
      if (!isObject(call['update'])) return invalid("Expecting 'update' to be present");
      if (!isObject(call['update']['status'])) return invalid('Not initialized: update.status');
      status = call['update']['status'];
      const err = statusError(executorId, frameworkId, status);
      if (err !== undefined) return invalid(err);
      break;
    }
    case 'MESSAGE':
      // The HTTP API document shows a top-level `data`; executor.proto has `message.data`.
      if (!isObject(call['message']) && typeof call['data'] !== 'string') return invalid("Expecting 'message' to be present");
      if (isObject(call['message']) && typeof call['message']['data'] !== 'string') return invalid('Not initialized: message.data');
      break;
    case 'HEARTBEAT':
      return text(res, 202);
    default:
      break;
  }
  if (type === 'SUBSCRIBE') {
    const accept = req.headers.accept;
    if (accept !== undefined && !/application\/json|\*\/\*|application\/\*/.test(accept)) {
      return text(res, 406, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'");
    }
  }
  if (!agent.executors.knowsFramework(frameworkId)) return text(res, 400, 'Framework cannot be found');
  const run = agent.executors.get(frameworkId, executorId);
  if (!run) return text(res, 400, 'Executor cannot be found');
  if (run.state === 'REGISTERING' && type !== 'SUBSCRIBE') return text(res, 403, 'Executor is not subscribed');
  switch (type) {
    case 'SUBSCRIBE': {
      const sub = asObject(call['subscribe'], 'subscribe');
      const updates = Array.isArray(sub['unacknowledged_updates']) ? sub['unacknowledged_updates'] : [];
      const resend: TaskStatus[] = [];
      for (const u of updates) {
        const s = isObject(u) && isObject(u['status']) ? u['status'] : undefined;
        if (s && statusError(executorId, frameworkId, s) === undefined) resend.push(s as unknown as TaskStatus);
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      agent.executors.subscribe(run, res, resend);
      return;
    }
    case 'UPDATE':
      text(res, 202);
      agent.executors.update(run, status as unknown as TaskStatus);
      return;
    case 'MESSAGE': {
      const data = isObject(call['message']) ? asString(call['message']['data'], 'message.data') : asString(call['data'], 'data');
      text(res, 202);
      agent.hooks.onExecutorMessage?.(frameworkId, executorId, data);
      return;
    }
    default:
      return text(res, 501);
  }
}
