/**
 * A local agent as its own process (`locus agent --master URL`): the same
 * `LocalAgent` the embedded cluster runs in-process, registered with a
 * `locus local` master over the internal HTTP protocol
 * (../agent-protocol.ts). Status updates go to the master in order and are
 * retried until it takes them; heartbeats keep the agent alive in the
 * master's eyes and carry its executors; a master that restarted or
 * forgot the agent (401/404) is registered with again, reporting the tasks
 * still running. The master drives launches, kills and resource
 * conversions through the agent's `/local/v1/agent-control/*` endpoints.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../obs/log.js';
import type { IsolationMode, Isolator } from '../../executor/isolation/types.js';
import type { ExecutorInfo, FrameworkInfo, Resource, TaskInfo } from '../../mesos/types.js';
import { asObject, type JsonObject } from '../../core/decode.js';
import { AGENT_CONTROL_API, MASTER_AGENT_API, bearer, decodeRegistered, field, postJson, type AgentCredential, type RegisterRequest, type WireTask } from '../agent-protocol.js';
import { json, readBody, text } from '../http.js';
import { chooseIsolator } from '../isolator.js';
import { LocalAgent, type AgentSpec } from './agent.js';
import type { ExecutorSettings } from './executors.js';

/** How to run one agent process. */
export interface AgentProcessOptions {
  readonly masterUrl: string;
  readonly hostname: string;
  readonly rack: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly resources: readonly Resource[];
  /** Work directory: the agent's state lives in `<workDir>/agents/<hostname>`, as in the embedded cluster. */
  readonly workDir: string;
  /** Address to listen on and to advertise to the master. */
  readonly ip: string;
  /** Port of the agent's HTTP endpoints (0 = any free port). */
  readonly port: number;
  readonly isolation: IsolationMode;
  readonly logger: Logger;
  /** An isolator to use instead of choosing one (tests). */
  readonly isolator?: Isolator;
  /** What to register with when the master requires credentials. */
  readonly credential?: AgentCredential;
  /** How long the first registration may take before start() fails (default 60 s). */
  readonly registrationTimeoutMs?: number;
  readonly executorSettings?: Partial<ExecutorSettings>;
}

/** A running agent process. */
export interface AgentProcess {
  readonly id: string;
  readonly url: string;
  readonly agent: LocalAgent;
  /** Unregister (its tasks are lost at once), kill its containers, stop listening. */
  stop(): Promise<void>;
}

/** The master answered, and said no: retrying the same registration cannot help. */
class RegistrationRefused extends Error {}

interface Outgoing {
  readonly kind: 'status' | 'message';
  readonly body: Record<string, unknown>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Start an agent, register it with its master, and keep it registered. */
export async function startAgentProcess(o: AgentProcessOptions): Promise<AgentProcess> {
  const logger = o.logger;
  const master = o.masterUrl.replace(/\/+$/, '');
  const isolator = o.isolator ?? (await chooseIsolator(o.isolation, logger));
  const ownsIsolator = o.isolator === undefined;
  const spec: AgentSpec = { hostname: o.hostname, rack: o.rack, resources: o.resources, attributes: o.attributes };

  let token: string | undefined;
  let pingMs = 5000;
  let stopped = false;
  const outbox: Outgoing[] = [];
  let wake: (() => void) | undefined;
  const poke = (): void => { wake?.(); };

  const agent: LocalAgent = new LocalAgent(spec, o.workDir, o.ip, isolator, {
    onStatus: (frameworkId, status) => { outbox.push({ kind: 'status', body: { frameworkId, status } }); poke(); },
    onExecutorMessage: (frameworkId, executorId, data) => { outbox.push({ kind: 'message', body: { frameworkId, executorId, data } }); poke(); },
  }, logger, undefined, o.executorSettings ?? {});

  agent.extraRoutes = async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://agent').pathname;
    if (!path.startsWith(`${AGENT_CONTROL_API}/`)) return false;
    await control(agent, () => token, req, res, path.slice(AGENT_CONTROL_API.length + 1));
    return true;
  };

  // The id comes from the checkpoint, else from the master at the first registration.
  const orphaned: WireTask[] = await agent.start(() => '', o.port);

  const executors = (): { frameworkId: string; executorId: string }[] => {
    const out: { frameworkId: string; executorId: string }[] = [];
    const frameworks = new Set([...agent.containers.values()].map((c) => c.frameworkId));
    for (const fid of frameworks) for (const eid of agent.executorIds(fid)) out.push({ frameworkId: fid, executorId: eid });
    return out;
  };

  const register = async (lost: readonly WireTask[]): Promise<void> => {
    const body: RegisterRequest = {
      agentId: agent.id === '' ? undefined : agent.id,
      hostname: spec.hostname, rack: spec.rack, attributes: spec.attributes, resources: agent.total,
      ip: o.ip, port: agent.port, url: agent.url, dataDir: agent.dataDir,
      liveTasks: agent.liveTasks(), orphanedTasks: lost, executors: executors(),
    };
    const r = await postJson(`${master}${MASTER_AGENT_API}/register`, body, o.credential, 10_000);
    if (r.status !== 200) {
      const why = `master refused registration: ${r.status} ${typeof r.body === 'string' ? r.body : JSON.stringify(r.body)}`;
      throw r.status >= 400 && r.status < 500 ? new RegistrationRefused(why) : new Error(why);
    }
    const reg = decodeRegistered(r.body);
    if (agent.id !== reg.agentId) {
      agent.id = reg.agentId;
      agent.checkpoint();
    }
    token = reg.token;
    pingMs = reg.pingIntervalSeconds * 1000;
    logger.info({ agent: agent.id, master, url: agent.url }, 'registered with the master');
  };

  const stopAll = async (): Promise<void> => {
    stopped = true;
    poke();
    await agent.stop().catch(() => undefined);
    if (ownsIsolator) await isolator.close().catch(() => undefined);
  };

  // First registration: bounded, so a wrong --master fails the command instead of hanging.
  const deadline = Date.now() + (o.registrationTimeoutMs ?? 60_000);
  for (let attempt = 0; ; attempt++) {
    try {
      await register(orphaned);
      break;
    } catch (err) {
      if (err instanceof RegistrationRefused || Date.now() > deadline) {
        await stopAll();
        throw new Error(`agent ${spec.hostname} could not register with ${master}: ${err instanceof Error ? err.message : String(err)}`);
      }
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'registration failed; retrying');
      await sleep(Math.min(5000, 200 * 2 ** Math.min(attempt, 5)));
    }
  }

  // Later registrations (the master restarted or declared us lost): only one at a time.
  let registering: Promise<void> | undefined;
  const reregister = (): Promise<void> => {
    registering ??= (async () => {
      for (let attempt = 0; !stopped; attempt++) {
        try {
          await register([]);
          return;
        } catch (err) {
          logger.warn({ err: err instanceof Error ? err.message : String(err) }, 're-registration failed; retrying');
          await sleep(Math.min(5000, 200 * 2 ** Math.min(attempt, 5)));
        }
      }
    })().finally(() => { registering = undefined; });
    return registering;
  };

  const send = async (kind: string, body: unknown): Promise<number> => {
    const r = await postJson(`${master}${MASTER_AGENT_API}/${encodeURIComponent(agent.id)}/${kind}`, body, token, 10_000);
    if (r.status === 401 || r.status === 404) await reregister();
    return r.status;
  };

  // Updates leave in order; a status stays at the head until the master took it.
  const pump = (async () => {
    let failures = 0;
    while (!stopped) {
      const head = outbox[0];
      if (!head) {
        await new Promise<void>((r) => { wake = r; });
        wake = undefined;
        continue;
      }
      try {
        const status = await send(head.kind, head.body);
        if (status === 200 || head.kind === 'message') {
          // Messages are unreliable in Mesos too: one try.
          outbox.shift();
          failures = 0;
          continue;
        }
      } catch (err) {
        if (head.kind === 'message') { outbox.shift(); continue; }
        if (failures === 0) logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'master unreachable; status updates are held');
      }
      failures++;
      await sleep(Math.min(2000, 100 * failures));
    }
  })();

  const heartbeat = (async () => {
    while (!stopped) {
      await sleep(pingMs);
      if (stopped) break;
      try {
        await send('heartbeat', { executors: executors() });
      } catch (err) {
        logger.debug({ err: err instanceof Error ? err.message : String(err) }, 'heartbeat failed');
      }
    }
  })();

  let stopping: Promise<void> | undefined;
  return {
    get id() { return agent.id; },
    url: agent.url,
    agent,
    stop() {
      // Memoised; each step isolated so shutdown always finishes.
      stopping ??= (async () => {
        try {
          await postJson(`${master}${MASTER_AGENT_API}/${encodeURIComponent(agent.id)}/unregister`, {}, token, 3000);
        } catch { /* the master finds out from the missing heartbeats */ }
        await stopAll();
        await Promise.race([Promise.all([pump, heartbeat]), sleep(Math.max(pingMs, 2000))]);
      })();
      return stopping;
    },
  };
}

/** One control call from the master. */
async function control(agent: LocalAgent, token: () => string | undefined, req: IncomingMessage, res: ServerResponse, op: string): Promise<void> {
  if (req.method !== 'POST') return text(res, 405, '', { Allow: 'POST' });
  const expected = token();
  if (expected === undefined || bearer(req.headers.authorization) !== expected) return text(res, 401, 'not from this agent\'s master');
  let o: JsonObject;
  try {
    o = asObject(JSON.parse(await readBody(req)) as unknown, 'body');
  } catch (err) {
    return text(res, 400, err instanceof Error ? err.message : String(err));
  }
  try {
    const fid = (): string => field(o, 'frameworkId');
    switch (op) {
      case 'launch':
        agent.launchTask(fid(), o['framework'] as unknown as FrameworkInfo, asObject(o['task'], 'task') as unknown as TaskInfo);
        break;
      case 'launch-group':
        agent.launchGroup(fid(), o['framework'] as unknown as FrameworkInfo, asObject(o['executor'], 'executor') as unknown as ExecutorInfo, (o['tasks'] ?? []) as unknown as TaskInfo[]);
        break;
      case 'kill':
        agent.killTask(fid(), field(o, 'taskId'), o['killingState'] === true, typeof o['graceMs'] === 'number' ? o['graceMs'] : 3000);
        break;
      case 'shutdown':
        agent.shutdownExecutor(fid(), field(o, 'executorId'));
        break;
      case 'message':
        agent.messageExecutor(fid(), field(o, 'executorId'), field(o, 'data'));
        break;
      case 'convert':
        agent.applyConversion((o['consumed'] ?? []) as unknown as Resource[], (o['converted'] ?? []) as unknown as Resource[]);
        break;
      case 'kill-framework':
        await agent.killFrameworkTasks(fid());
        break;
      default:
        return text(res, 404);
    }
  } catch (err) {
    return text(res, 400, err instanceof Error ? err.message : String(err));
  }
  json(res, 200, {});
}
