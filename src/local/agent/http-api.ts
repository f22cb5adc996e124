/**
 * The local agent's HTTP endpoints: the parts of the v1 operator API that
 * executors use for nested containers (LAUNCH_CONTAINER, WAIT_CONTAINER,
 * KILL_CONTAINER, GET_CONTAINERS), the executor API (executor-http.ts) and
 * the /files endpoints for sandboxes,
 * answering as the genuine agent does (`src/slave/http.cpp`, `src/files/`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { open, readdir, stat } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import { asArray, asObject, asString, isObject, optional, DecodeError, type JsonObject } from '../../core/decode.js';
import type { Resource } from '../../mesos/types.js';
import { json, readBody, text } from '../http.js';
import type { LocalAgent } from './agent.js';
import { waitStatus } from './status.js';
import { handleExecutorApi } from './executor-http.js';

/** Route one request to the agent. */
export async function handleAgentRequest(agent: LocalAgent, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://agent');
  if (agent.extraRoutes && (await agent.extraRoutes(req, res))) return;
  if (url.pathname === '/api/v1') return operatorApi(agent, req, res);
  if (url.pathname === '/api/v1/executor') return handleExecutorApi(agent, req, res);
  if (url.pathname === '/files/read' || url.pathname === '/files/read.json') return filesRead(agent, url, res);
  if (url.pathname === '/files/browse' || url.pathname === '/files/browse.json') return filesBrowse(agent, url, res);
  if (url.pathname === '/health') return text(res, 200);
  if (url.pathname === '/state' || url.pathname === '/slave(1)/state') {
    return json(res, 200, { id: agent.id, hostname: agent.spec.hostname, attributes: { rack: agent.spec.rack, ...agent.spec.attributes }, resources: agent.total, version: '1.12.0' });
  }
  text(res, 404);
}

/**
 * A container id as a genuine agent validates it (validateContainerId): not empty, and neither
 * `/` nor `.` (the separator of nested ids), so no id can name a path outside the sandbox
 * it is joined to, such as `..`.
 */
function containerIdValue(v: unknown, path: string): string {
  const id = asString(v, path);
  if (id === '' || /[/.\s\\]/.test(id) || /[\u0000-\u001f]/.test(id)) throw new ContainerIdError(`'${id}' is not a valid container id: it must not be empty nor contain '/', '.', whitespace or control characters`);
  return id;
}

/** An id the agent refuses (400, as the genuine one's validation). */
class ContainerIdError extends Error {}

function containerIdOf(v: unknown, path: string): { value: string; parent?: string } {
  const o = asObject(v, path);
  const parent = optional(o['parent'], `${path}.parent`, (x, p) => containerIdValue(asObject(x, p)['value'], `${p}.value`));
  return { value: containerIdValue(o['value'], `${path}.value`), ...(parent !== undefined ? { parent } : {}) };
}

async function operatorApi(agent: LocalAgent, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') return text(res, 405, '', { Allow: 'POST' });
  // `--authenticate_http_executors`: a call must carry a token the agent issued to one of its
  // executors (`Authorization: Bearer $MESOS_EXECUTOR_AUTHENTICATION_TOKEN`).
  if (!agent.authorizesExecutorCall(req.headers.authorization)) return text(res, 401, '', { 'WWW-Authenticate': 'Bearer realm="mesos-agent-executor"' });
  const ct = req.headers['content-type'];
  if (ct === undefined) return text(res, 400, "Expecting 'Content-Type' to be present");
  if (!ct.startsWith('application/json')) return text(res, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf");
  const body = await readBody(req);
  let call: JsonObject;
  try {
    call = asObject(JSON.parse(body) as unknown, 'call');
  } catch (err) {
    return text(res, 400, `Failed to parse body into JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    const type = asString(call['type'], 'type');
    switch (type) {
      case 'LAUNCH_CONTAINER':
      case 'LAUNCH_NESTED_CONTAINER': {
        const lc = asObject(call[type === 'LAUNCH_CONTAINER' ? 'launch_container' : 'launch_nested_container'], 'launch_container');
        const id = containerIdOf(lc['container_id'], 'launch_container.container_id');
        if (id.parent === undefined) return text(res, 400, 'Failed to validate agent::Call: Standalone containers are not supported by the local agent');
        const command = asObject(lc['command'] ?? {}, 'launch_container.command');
        const value = optional(command['value'], 'command.value', asString);
        const args = optional(command['arguments'], 'command.arguments', (x, p) => asArray(x, p, asString)) ?? [];
        const shell = command['shell'] !== false;
        // As Mesos: shell=false execs `value` with `arguments` as the whole argv (arguments[0] is argv[0]).
        const argv = value === undefined ? args : shell ? ['sh', '-c', value] : [value, ...args.slice(1)];
        if (argv.length === 0) return text(res, 400, "Failed to validate agent::Call: Expecting 'command.value' to be present");
        const env: Record<string, string> = {};
        const envObj = isObject(command['environment']) ? command['environment'] : {};
        for (const v of optional(envObj['variables'], 'command.environment.variables', (x, p) => asArray(x, p, asObject)) ?? []) {
          if (typeof v['name'] === 'string' && typeof v['value'] === 'string') env[v['name']] = v['value'];
        }
        const resources = (Array.isArray(lc['resources']) ? lc['resources'] : []) as Resource[];
        const container = isObject(lc['container']) ? lc['container'] : {};
        const volumes = (Array.isArray(container['volumes']) ? container['volumes'] : []) as { container_path: string; host_path?: string; mode: string }[];
        const user = optional(command['user'], 'command.user', asString);
        const r = await agent.launchNested({ containerId: id.value, parentId: id.parent, argv, env, resources, volumes, ...(user !== undefined ? { user } : {}) });
        if (r === 'exists') return text(res, 202);
        if (r === 'no-parent') return text(res, 400, `Parent container ${id.parent} does not exist`);
        return text(res, 200);
      }
      case 'WAIT_CONTAINER':
      case 'WAIT_NESTED_CONTAINER': {
        const key = type === 'WAIT_CONTAINER' ? 'wait_container' : 'wait_nested_container';
        const id = containerIdOf(asObject(call[key], key)['container_id'], `${key}.container_id`);
        const live = agent.containers.get(id.value);
        const exit = live ? await live.exit : agent.finished.get(id.value);
        if (!exit) return text(res, 404, `Container ${id.parent !== undefined ? `${id.parent}.` : ''}${id.value} cannot be found`);
        const status = waitStatus(exit);
        const limited = exit.reason === 'OOM' ? 'REASON_CONTAINER_LIMITATION_MEMORY' : exit.reason === 'DISK_LIMIT' ? 'REASON_CONTAINER_LIMITATION_DISK' : exit.reason === 'LAUNCH_FAILED' ? 'REASON_CONTAINER_LAUNCH_FAILED' : undefined;
        return json(res, 200, {
          type,
          [key]: {
            ...(status !== undefined ? { exit_status: status } : {}),
            ...(limited !== undefined ? { state: 'TASK_FAILED', reason: limited } : {}),
            message: exit.message,
          },
        });
      }
      case 'KILL_CONTAINER':
      case 'KILL_NESTED_CONTAINER': {
        const key = type === 'KILL_CONTAINER' ? 'kill_container' : 'kill_nested_container';
        const kc = asObject(call[key], key);
        const id = containerIdOf(kc['container_id'], `${key}.container_id`);
        const live = agent.containers.get(id.value);
        if (!live) return text(res, 404, `Container '${id.parent !== undefined ? `${id.parent}.` : ''}${id.value}' cannot be found (or is already killed)`);
        live.killRequested = true;
        // The genuine default signal is SIGKILL; SIGTERM (15) asks for a graceful stop.
        const signal = typeof kc['signal'] === 'number' ? kc['signal'] : 9;
        void live.container.kill(signal === 9 ? 0 : 3000);
        return text(res, 200);
      }
      case 'REMOVE_CONTAINER':
      case 'REMOVE_NESTED_CONTAINER': {
        const key = type === 'REMOVE_CONTAINER' ? 'remove_container' : 'remove_nested_container';
        const id = containerIdOf(asObject(call[key], key)['container_id'], `${key}.container_id`);
        if (id.parent === undefined) return text(res, 400, 'Failed to validate agent::Call: Standalone containers are not supported by the local agent');
        // As a genuine agent (MesosContainerizer::remove): a container still running is an error.
        if ((await agent.removeNested(id.value, id.parent)) === 'running') return text(res, 500, 'Nested container has not terminated yet');
        return text(res, 200);
      }
      case 'GET_CONTAINERS':
        return json(res, 200, {
          type: 'GET_CONTAINERS',
          get_containers: {
            containers: [...agent.containers.values()].map((c) => ({
              framework_id: { value: c.frameworkId },
              executor_id: { value: c.executorId },
              container_id: { value: c.containerId, ...(c.parentId !== undefined ? { parent: { value: c.parentId } } : {}) },
              ...(c.container.pid !== undefined ? { container_status: { executor_pid: c.container.pid } } : {}),
            })),
          },
        });
      case 'GET_HEALTH':
        return json(res, 200, { type: 'GET_HEALTH', get_health: { healthy: true } });
      case 'GET_FLAGS':
        // Only the flags a program may reasonably look at; `isolation` tells an executor whether
        // nested containers get their own filesystem (filesystem/linux) or the host's (posix).
        return json(res, 200, {
          type: 'GET_FLAGS',
          get_flags: { flags: [
            { name: 'isolation', value: agent.isolationFlag },
            { name: 'hostname', value: agent.spec.hostname },
            { name: 'work_dir', value: agent.root },
            // Not a genuine agent's flag: tells an executor this agent runs containers as bare numeric uids.
            { name: 'locus_local', value: 'true' },
          ] },
        });
      default:
        return text(res, 501);
    }
  } catch (err) {
    if (err instanceof DecodeError) return text(res, 400, `Failed to convert JSON into Call protobuf: ${err.message}`);
    if (err instanceof ContainerIdError) return text(res, 400, `Failed to validate agent::Call: ${err.message}`);
    return text(res, 400, err instanceof Error ? err.message : String(err));
  }
}

// /files serves only paths inside the agent's own directory.
function resolvePath(agent: LocalAgent, raw: string | null): string | undefined {
  if (raw === null || raw === '') return undefined;
  const p = resolve(raw);
  return p === agent.root || p.startsWith(agent.root + '/') ? p : undefined;
}

async function filesRead(agent: LocalAgent, url: URL, res: ServerResponse): Promise<void> {
  const raw = url.searchParams.get('path');
  if (raw === null) return text(res, 400, "Expecting 'path' query parameter");
  const path = resolvePath(agent, raw);
  if (path === undefined) return text(res, 404, 'File not found');
  let size: number;
  try {
    const st = await stat(path);
    if (st.isDirectory()) return text(res, 400, 'Cannot read a directory');
    size = st.size;
  } catch {
    return text(res, 404, 'File not found');
  }
  const offsetParam = Number(url.searchParams.get('offset') ?? '-1');
  const lengthParam = url.searchParams.has('length') ? Number(url.searchParams.get('length')) : -1;
  if (!Number.isInteger(offsetParam) || !Number.isInteger(lengthParam)) return text(res, 400, 'Failed to parse offset/length');
  // offset -1 asks for the size only (how the web UI tails a file).
  if (offsetParam < 0) return json(res, 200, { data: '', offset: size });
  const offset = Math.min(offsetParam, size);
  const length = lengthParam < 0 ? Math.min(size - offset, 16 * 1024 * 1024) : Math.min(lengthParam, size - offset, 16 * 1024 * 1024);
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    json(res, 200, { data: buf.subarray(0, bytesRead).toString('utf8'), offset });
  } finally {
    await fh.close();
  }
}

async function filesBrowse(agent: LocalAgent, url: URL, res: ServerResponse): Promise<void> {
  const path = resolvePath(agent, url.searchParams.get('path'));
  if (path === undefined) return text(res, 404);
  try {
    const names = await readdir(path);
    const entries = await Promise.all(names.sort().map(async (name) => {
      const p = join(path, name);
      const st = await stat(p).catch(() => undefined);
      if (!st) return undefined;
      return { path: p, nlink: st.nlink, size: st.size, mtime: Math.floor(st.mtimeMs / 1000), mode: modeString(st.mode, st.isDirectory()), uid: String(st.uid), gid: String(st.gid) };
    }));
    json(res, 200, entries.filter((e) => e !== undefined));
  } catch {
    text(res, 404);
  }
}

function modeString(mode: number, dir: boolean): string {
  const bits = 'rwxrwxrwx';
  let s = dir ? 'd' : '-';
  for (let i = 0; i < 9; i++) s += mode & (1 << (8 - i)) ? bits[i] : '-';
  return s;
}


