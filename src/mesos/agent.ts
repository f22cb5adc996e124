/**
 * A small client for the agent's v1 operator API (`POST /api/v1`) as an
 * executor uses it: launch a nested container under its own container, wait
 * for it, kill it, and read sandbox files through `/files/read`. Shapes follow
 * `include/mesos/v1/agent/agent.proto` (LaunchContainer, WaitContainer,
 * KillContainer) in their JSON encoding.
 *
 * It uses node:http rather than fetch because WAIT_CONTAINER is a long poll
 * that lasts as long as the task: fetch's header timeout would cut it.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { asNumber, asObject, asString, isObject, optional, parseJson } from '../core/decode.js';
import { LocusError } from '../core/errors.js';
import type { Resource, Volume } from './types.js';

/** What a nested container gets. */
export interface NestedContainerSpec {
  readonly containerId: string;
  readonly parentId: string;
  /** argv; argv[0] is the program (looked up on PATH by the agent). */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly resources: { readonly cpus: number; readonly memMiB: number; readonly diskMiB: number };
  readonly volumes: readonly Volume[];
  /** CommandInfo.user: who the agent runs the container as (default: the parent's user). */
  readonly user?: string;
}

/** The answer to WAIT_CONTAINER. */
export interface ContainerWaitResult {
  /** The wait(2) status of the container's main process, when it has one. */
  readonly exitStatus: number | undefined;
  /** TaskState when the agent terminated the container itself (e.g. `TASK_FAILED`). */
  readonly state: string | undefined;
  /** TaskStatus.Reason when set (e.g. `REASON_CONTAINER_LIMITATION_MEMORY`). */
  readonly reason: string | undefined;
  readonly message: string | undefined;
}

/** Options of the agent client. */
export interface AgentClientOptions {
  /** HTTP basic credentials when the agent authenticates operators. */
  readonly principal?: string;
  readonly secret?: string;
  /**
   * An executor's token (MESOS_EXECUTOR_AUTHENTICATION_TOKEN), sent as `Authorization: Bearer`:
   * an agent started with `--authenticate_http_executors` accepts an executor's calls only with it.
   */
  readonly bearerToken?: string;
  /** Deadline for the short calls (launch, kill, read); WAIT has none. */
  readonly timeoutMs?: number;
}

interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** Decode a wait(2) status into exit code or signal number. */
export function decodeWaitStatus(status: number): { exitCode: number | null; signal: number | null } {
  const sig = status & 0x7f;
  if (sig === 0) return { exitCode: (status >> 8) & 0xff, signal: null };
  return { exitCode: null, signal: sig };
}

/** The operator-API client of one agent. */
export class AgentClient {
  private readonly base: URL;

  /** `endpoint` is `host:port` (as in MESOS_AGENT_ENDPOINT) or a full http(s) URL. */
  constructor(endpoint: string, private readonly options: AgentClientOptions = {}) {
    this.base = new URL(/^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}`);
  }

  /** The agent's base URL. */
  get url(): string {
    return this.base.toString();
  }

  /**
   * LAUNCH_CONTAINER with a parent: 'launched' (200) or 'exists' (202: the id is
   * in use, which makes a retried launch idempotent). An agent that cannot run
   * nested containers answers UNSUPPORTED.
   */
  async launchNested(spec: NestedContainerSpec): Promise<'launched' | 'exists'> {
    const [program, ...rest] = spec.argv;
    if (program === undefined) throw new LocusError('INVALID_FIELD', 'argv is empty', { field: 'argv' });
    const resources: Resource[] = [
      { name: 'cpus', type: 'SCALAR', scalar: { value: spec.resources.cpus } },
      { name: 'mem', type: 'SCALAR', scalar: { value: spec.resources.memMiB } },
      ...(spec.resources.diskMiB > 0 ? [{ name: 'disk', type: 'SCALAR' as const, scalar: { value: spec.resources.diskMiB } }] : []),
    ];
    const call = {
      type: 'LAUNCH_CONTAINER',
      launch_container: {
        container_id: { value: spec.containerId, parent: { value: spec.parentId } },
        // shell=false: `value` is exec'd with `arguments` as the whole argv.
        command: {
          shell: false,
          value: program,
          arguments: [program, ...rest],
          environment: { variables: Object.entries(spec.env).map(([name, value]) => ({ name, type: 'VALUE', value })) },
          ...(spec.user !== undefined ? { user: spec.user } : {}),
        },
        resources,
        container: { type: 'MESOS', volumes: spec.volumes },
      },
    };
    const a = await this.call(call, this.options.timeoutMs ?? 30_000);
    if (a.status === 200) return 'launched';
    if (a.status === 202) return 'exists';
    throw this.failure('LAUNCH_CONTAINER', a);
  }

  /** WAIT_CONTAINER: resolves when the container has ended (a long poll). */
  async waitNested(containerId: string, parentId: string): Promise<ContainerWaitResult> {
    const a = await this.call({ type: 'WAIT_CONTAINER', wait_container: { container_id: { value: containerId, parent: { value: parentId } } } }, 0);
    if (a.status === 404) throw new LocusError('NOT_FOUND', `agent does not know container ${containerId}: ${a.body.trim()}`);
    if (a.status !== 200) throw this.failure('WAIT_CONTAINER', a);
    const body = asObject(parseJson(a.body, 'wait'), 'wait');
    const w = isObject(body['wait_container']) ? body['wait_container'] : {};
    return {
      exitStatus: optional(w['exit_status'], 'wait_container.exit_status', asNumber),
      state: optional(w['state'], 'wait_container.state', asString),
      reason: optional(w['reason'], 'wait_container.reason', asString),
      message: optional(w['message'], 'wait_container.message', asString),
    };
  }

  /** KILL_CONTAINER with a signal (default SIGKILL); false when the container is already gone. */
  async killNested(containerId: string, parentId: string, signal = 9): Promise<boolean> {
    const a = await this.call({ type: 'KILL_CONTAINER', kill_container: { container_id: { value: containerId, parent: { value: parentId } }, signal } }, this.options.timeoutMs ?? 30_000);
    if (a.status === 200) return true;
    if (a.status === 404) return false;
    throw this.failure('KILL_CONTAINER', a);
  }

  /**
   * REMOVE_CONTAINER of an ended nested container: the agent removes its sandbox and runtime
   * directories. A genuine agent answers 200 also for a container it no longer knows, and 500
   * for one that has not ended yet.
   */
  async removeNested(containerId: string, parentId: string): Promise<void> {
    const a = await this.call({ type: 'REMOVE_CONTAINER', remove_container: { container_id: { value: containerId, parent: { value: parentId } } } }, this.options.timeoutMs ?? 30_000);
    if (a.status !== 200) throw this.failure('REMOVE_CONTAINER', a);
  }

  /**
   * The container that runs a framework's executor (GET_CONTAINERS). A genuine agent never tells a
   * command task its own container id (no MESOS_CONTAINER_ID), yet nested containers need it as
   * their parent; the executor id of a command task is its task id.
   */
  async findExecutorContainer(frameworkId: string, executorId: string): Promise<string | undefined> {
    const a = await this.call({ type: 'GET_CONTAINERS' }, this.options.timeoutMs ?? 30_000);
    if (a.status !== 200) throw this.failure('GET_CONTAINERS', a);
    const body = asObject(parseJson(a.body, 'containers'), 'containers');
    const gc = isObject(body['get_containers']) ? body['get_containers'] : {};
    const list = Array.isArray(gc['containers']) ? gc['containers'] : [];
    for (const c of list) {
      if (!isObject(c)) continue;
      const fid = isObject(c['framework_id']) ? c['framework_id']['value'] : undefined;
      const eid = isObject(c['executor_id']) ? c['executor_id']['value'] : undefined;
      const cid = isObject(c['container_id']) ? c['container_id'] : undefined;
      // Top-level containers only: a nested one names its parent.
      if (fid === frameworkId && eid === executorId && cid && cid['parent'] === undefined && typeof cid['value'] === 'string') return cid['value'];
    }
    return undefined;
  }

  /** The agent's command-line flags (GET_FLAGS), e.g. `isolation`. */
  async flags(): Promise<Record<string, string>> {
    const a = await this.call({ type: 'GET_FLAGS' }, this.options.timeoutMs ?? 30_000);
    if (a.status !== 200) throw this.failure('GET_FLAGS', a);
    const body = asObject(parseJson(a.body, 'flags'), 'flags');
    const gf = isObject(body['get_flags']) ? body['get_flags'] : {};
    const out: Record<string, string> = {};
    for (const f of Array.isArray(gf['flags']) ? gf['flags'] : []) {
      if (isObject(f) && typeof f['name'] === 'string' && typeof f['value'] === 'string') out[f['name']] = f['value'];
    }
    return out;
  }

  /** `/files/read`: up to `length` bytes of a sandbox file from `offset` (UTF-8 text, as the agent answers). */
  async readFile(path: string, offset: number, length: number): Promise<{ data: string; offset: number }> {
    const q = new URLSearchParams({ path, offset: String(offset), length: String(length) });
    const a = await this.send('GET', `/files/read?${q.toString()}`, undefined, this.options.timeoutMs ?? 30_000);
    if (a.status === 404) throw new LocusError('NOT_FOUND', `agent has no file ${path}`);
    if (a.status !== 200) throw this.failure('/files/read', a);
    const o = asObject(parseJson(a.body, 'files'), 'files');
    return { data: asString(o['data'], 'data'), offset: asNumber(o['offset'], 'offset') };
  }

  private failure(what: string, a: HttpAnswer): LocusError {
    const body = a.body.trim().slice(0, 300);
    // 404 on /api/v1, 405 and 501 mean this agent has no such call; an agent
    // without nested-container support rejects the call with 400 and says so.
    if (a.status === 404 || a.status === 405 || a.status === 501 || (a.status === 400 && /not supported|unsupported|standalone|nested/i.test(body))) {
      return new LocusError('UNSUPPORTED', `agent ${this.base.host} cannot ${what}: ${a.status} ${body}`, { details: { status: a.status } });
    }
    if (a.status === 401 || a.status === 403) {
      return new LocusError(a.status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN', `agent ${this.base.host} refused ${what}: ${a.status} ${body}`, { details: { status: a.status } });
    }
    return new LocusError(a.status >= 500 ? 'UNAVAILABLE' : 'PROTOCOL', `agent ${this.base.host} answered ${what} with ${a.status}: ${body}`, { details: { status: a.status } });
  }

  private call(body: unknown, timeoutMs: number): Promise<HttpAnswer> {
    return this.send('POST', '/api/v1', JSON.stringify(body), timeoutMs);
  }

  private send(method: string, path: string, body: string | undefined, timeoutMs: number): Promise<HttpAnswer> {
    const url = new URL(path, this.base);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.options.bearerToken !== undefined) {
      headers['Authorization'] = `Bearer ${this.options.bearerToken}`;
    } else if (this.options.principal !== undefined) {
      headers['Authorization'] = `Basic ${Buffer.from(`${this.options.principal}:${this.options.secret ?? ''}`).toString('base64')}`;
    }
    const req = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<HttpAnswer>((resolve, reject) => {
      const r = req(url, { method, headers }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      if (timeoutMs > 0) {
        r.setTimeout(timeoutMs, () => r.destroy(new LocusError('TIMEOUT', `agent ${this.base.host}: ${method} ${path} took longer than ${timeoutMs} ms`)));
      }
      r.on('error', (err: Error) => {
        reject(err instanceof LocusError ? err : new LocusError('UNAVAILABLE', `agent ${this.base.host} unreachable: ${err.message}`, { cause: err }));
      });
      r.end(body);
    });
  }
}
