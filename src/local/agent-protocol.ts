/**
 * The small internal HTTP protocol between the local master and agents that
 * run as their own processes (`locus agent`). The genuine Mesos uses
 * libprocess messages for this (RegisterSlaveMessage, RunTaskMessage,
 * StatusUpdateMessage, pings); ours is JSON over HTTP:
 *
 * agent → master, `POST <master>/local/v1/agent-api/...`
 * - `register`: who the agent is, where it listens, its checkpointed
 *   resources and tasks → `{agentId, token, pingIntervalSeconds}`;
 * - `<agentId>/status`, `<agentId>/message`, `<agentId>/heartbeat`,
 *   `<agentId>/unregister`, each with `Authorization: Bearer <token>`;
 *   401/404 mean "register again" (the master restarted or forgot you).
 *
 * master → agent, `POST <agent url>/local/v1/agent-control/<op>` with the
 * same bearer token: launch, launch-group, kill, shutdown, message, convert,
 * kill-framework. Every body is one JSON object; bodies carry Mesos wire
 * types (TaskInfo, TaskStatus, Resource) as they are.
 */
import { asArray, asObject, asString, optional, type JsonObject } from '../core/decode.js';
import type { FrameworkInfo, Resource, TaskInfo } from '../mesos/types.js';

/** Where the master serves agents. */
export const MASTER_AGENT_API = '/local/v1/agent-api';
/** Where an agent process serves its master. */
export const AGENT_CONTROL_API = '/local/v1/agent-control';

/** A task an agent holds (live, or checkpointed before a restart). */
export interface WireTask {
  readonly frameworkId: string;
  readonly framework: FrameworkInfo;
  readonly task: TaskInfo;
  readonly containerId: string;
}

/** A custom executor running on an agent. */
export interface WireExecutor {
  readonly frameworkId: string;
  readonly executorId: string;
}

/**
 * The body of `register`. When the master requires credentials (`locus
 * local --credentials`), registration carries HTTP Basic authentication
 * with one of them, as the genuine master's `--authenticate_agents` asks
 * agents to authenticate from the same credentials file as frameworks.
 */
export interface RegisterRequest {
  /** The checkpointed id when the agent was registered before. */
  readonly agentId: string | undefined;
  readonly hostname: string;
  readonly rack: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** Total resources with reservations and volumes, as checkpointed by the agent. */
  readonly resources: readonly Resource[];
  readonly ip: string;
  readonly port: number;
  readonly url: string;
  readonly dataDir: string;
  /** Tasks whose containers still run (the master restarted, or the agent re-registers after a partition). */
  readonly liveTasks: readonly WireTask[];
  /** Tasks the agent held before it restarted: their containers are gone. */
  readonly orphanedTasks: readonly WireTask[];
  readonly executors: readonly WireExecutor[];
}

/** The answer to `register`. */
export interface RegisterResponse {
  readonly agentId: string;
  readonly token: string;
  readonly pingIntervalSeconds: number;
}

function wireTask(v: unknown, path: string): WireTask {
  const o = asObject(v, path);
  return {
    frameworkId: asString(o['frameworkId'], `${path}.frameworkId`),
    framework: asObject(o['framework'], `${path}.framework`) as unknown as FrameworkInfo,
    task: asObject(o['task'], `${path}.task`) as unknown as TaskInfo,
    containerId: asString(o['containerId'], `${path}.containerId`),
  };
}

/** Decode the executors list of a register or heartbeat body. */
export function decodeExecutors(v: unknown, path: string): WireExecutor[] {
  return asArray(v ?? [], path, (x, p) => {
    const o = asObject(x, p);
    return { frameworkId: asString(o['frameworkId'], `${p}.frameworkId`), executorId: asString(o['executorId'], `${p}.executorId`) };
  });
}

/** Decode a `register` body (the master trusts its shape, not its content). */
export function decodeRegister(doc: unknown): RegisterRequest {
  const o = asObject(doc, 'register');
  const id = optional(o['agentId'], 'agentId', asString);
  const attrs = asObject(o['attributes'] ?? {}, 'attributes');
  const port = o['port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error('port must be an integer in 1..65535');
  return {
    agentId: id === undefined || id === '' ? undefined : id,
    hostname: asString(o['hostname'], 'hostname'),
    rack: asString(o['rack'], 'rack'),
    attributes: Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, asString(v, `attributes.${k}`)])),
    resources: asArray(o['resources'], 'resources', asObject) as unknown as Resource[],
    ip: asString(o['ip'], 'ip'),
    port,
    url: asString(o['url'], 'url'),
    dataDir: asString(o['dataDir'], 'dataDir'),
    liveTasks: asArray(o['liveTasks'] ?? [], 'liveTasks', wireTask),
    orphanedTasks: asArray(o['orphanedTasks'] ?? [], 'orphanedTasks', wireTask),
    executors: decodeExecutors(o['executors'], 'executors'),
  };
}

/** Decode the answer to `register`. */
export function decodeRegistered(doc: unknown): RegisterResponse {
  const o = asObject(doc, 'registered');
  const ping = o['pingIntervalSeconds'];
  return {
    agentId: asString(o['agentId'], 'agentId'),
    token: asString(o['token'], 'token'),
    pingIntervalSeconds: typeof ping === 'number' && ping > 0 ? ping : 5,
  };
}

/** The bearer token of a request, if any. */
export function bearer(header: string | undefined): string | undefined {
  return header?.startsWith('Bearer ') === true ? header.slice(7) : undefined;
}

/** A string field of a control or update body. */
export function field(o: JsonObject, key: string): string {
  return asString(o[key], key);
}

/** A principal and secret an agent registers with when the master requires credentials. */
export interface AgentCredential {
  readonly principal: string;
  readonly secret: string;
}

/** The Authorization header for a bearer token, or for a credential (HTTP Basic, as frameworks authenticate). */
export function authorization(auth: string | AgentCredential | undefined): Record<string, string> {
  if (auth === undefined) return {};
  if (typeof auth === 'string') return { Authorization: `Bearer ${auth}` };
  return { Authorization: `Basic ${Buffer.from(`${auth.principal}:${auth.secret}`).toString('base64')}` };
}

/** POST one JSON body; resolves with the status and the parsed answer (if JSON). */
export async function postJson(url: string, body: unknown, auth: string | AgentCredential | undefined, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...authorization(auth) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) {
    try { parsed = JSON.parse(text) as unknown; } catch { /* keep the text */ }
  }
  return { status: res.status, body: parsed };
}
