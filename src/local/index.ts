/**
 * The embedded local cluster: one master and N agents in this process,
 * speaking the Mesos v1 HTTP APIs on loopback, so the framework's code path
 * is the same locally and on a real cluster. `startLocalCluster` is the only
 * entry point; it writes `<workDir>/topology.json` for the `local://`
 * storage backend and exposes a control API for failure tests.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { silentLogger, type Logger } from '../obs/log.js';
import type { Isolator } from '../executor/isolation/types.js';
import { LocalAgent } from './agent/agent.js';
import { writeCheckpoint } from './checkpoint.js';
import { json, listen, readBody, text, type Listening } from './http.js';
import { Master } from './master/master.js';
import { handleScheduler } from './master/scheduler-http.js';
import { slavesJson, stateJson } from './master/state-json.js';
import { DEFAULT_AGENT_RESOURCES, topologyFromFile, uniformTopology } from './topology.js';
import { MASTER_AGENT_API } from './agent-protocol.js';
import { RemoteAgents } from './master/remote-agents.js';
import { chooseIsolator } from './isolator.js';
import { closeStateDirLogged } from './work-dir.js';
import { join } from 'node:path';

/** Options of the local cluster. */
export interface LocalClusterOptions {
  workDir: string;
  agents?: number;
  racks?: number;
  host?: string;
  /** Master port; 0 = any free port. Default 5050. */
  port?: number;
  resources?: string;
  /** YAML/JSON file describing heterogeneous agents. */
  topologyFile?: string;
  /**
   * Where this machine sees an agent's data directory when not at the agent's own path (an agent
   * on a `--hosts netns` host): written to topology.json as `dataDirHere` for `locus data put`.
   */
  dataDirHere?: (hostname: string, dataDir: string) => string | undefined;
  credentials?: { principal: string; secret: string }[];
  tls?: { certFile: string; keyFile: string };
  heartbeatIntervalSeconds?: number;
  allocationIntervalMs?: number;
  offerTimeoutSeconds?: number;
  isolation?: 'auto' | 'linux' | 'process';
  /**
   * How often agents measure the disk use of containers with a disk limit (Mesos:
   * --container_disk_watch_interval, default 15 seconds; see DISK_WATCH_INTERVAL_SECONDS).
   */
  diskWatchIntervalSeconds?: number;
  logger?: Logger;
  /** Act as a non-leading master: answer 307 with Location to this URL. */
  redirectTo?: string;
  /** How often an unacknowledged status update is resent (Mesos: 10s). */
  statusUpdateRetrySeconds?: number;
  /** An isolator to use instead of choosing one (tests). */
  isolator?: Isolator;
  /** How long a custom executor has to SUBSCRIBE (Mesos: 1 minute). */
  executorRegistrationTimeoutSeconds?: number;
  /** How long a custom executor has to exit after SHUTDOWN (Mesos: 5 seconds). */
  executorShutdownGraceSeconds?: number;
  /** Which Mesos filesystem isolator the agents behave as (see ExecutorSettings.filesystem). */
  filesystemIsolation?: 'posix' | 'linux';
  /** Agents demand executor tokens on their operator API (see ExecutorSettings.authenticateExecutors). */
  authenticateExecutors?: boolean | 'reject-all';
  /** How often `locus agent` processes send heartbeats (default 5 seconds). */
  agentPingIntervalSeconds?: number;
  /** Heartbeat silence after which an agent process is lost (default 15 seconds). */
  agentPingTimeoutSeconds?: number;
  /**
   * After a restart, how long the master waits for the agent processes of its
   * registry to re-register before they are unreachable (Mesos:
   * --agent_reregister_timeout, default 10 minutes).
   */
  agentReregisterTimeoutSeconds?: number;
}

/** One agent as published to callers. */
export interface LocalAgentInfo {
  readonly id: string;
  readonly hostname: string;
  readonly rack: string;
  readonly url: string;
}

/** A running local cluster. */
export interface LocalCluster {
  readonly masterUrl: string;
  readonly agents: readonly LocalAgentInfo[];
  readonly control: LocalControl;
  stop(): Promise<void>;
}

/** Failure injection for tests and demos. */
export interface LocalControl {
  stopAgent(hostname: string): Promise<void>;
  startAgent(hostname: string): Promise<void>;
  setOperationDelay(ms: number): void;
  /** Answer the next n SUBSCRIBE calls with 503. */
  failNextSubscribes(n: number): void;
  pauseHeartbeats(ms: number): void;
  /** Close all event streams. */
  dropSubscriptions(): void;
}

/** Start a master and its agents; resolves once everything listens. */
export async function startLocalCluster(o: LocalClusterOptions): Promise<LocalCluster> {
  const host = o.host ?? '127.0.0.1';
  const logger = o.logger ?? silentLogger();
  // Others (executors and tasks running unprivileged) pass through the work dir to their
  // sandboxes and the agents' data, but may not list it; an older, open one is tightened.
  closeStateDirLogged(o.workDir, { privateFiles: false }, logger, 'work dir');
  // agents: 0 is a master alone, for agents that run as their own processes (`locus agent`).
  const specs = o.topologyFile !== undefined
    ? topologyFromFile(o.topologyFile, o.racks ?? 2, o.resources ?? DEFAULT_AGENT_RESOURCES)
    : o.agents === 0 ? [] : uniformTopology(o.agents ?? 3, o.racks ?? 2, o.resources ?? DEFAULT_AGENT_RESOURCES);
  const master = new Master({
    workDir: o.workDir,
    host,
    heartbeatIntervalSeconds: o.heartbeatIntervalSeconds ?? 15,
    allocationIntervalMs: o.allocationIntervalMs ?? 1000,
    offerTimeoutSeconds: o.offerTimeoutSeconds,
    statusUpdateRetrySeconds: o.statusUpdateRetrySeconds ?? 10,
    logger,
  });
  master.scheme = o.tls ? 'https' : 'http';
  const isolator = o.isolator ?? (await chooseIsolator(o.isolation ?? 'auto', logger, { ...(o.diskWatchIntervalSeconds !== undefined ? { diskWatchIntervalSeconds: o.diskWatchIntervalSeconds } : {}) }));
  const ownsIsolator = o.isolator === undefined;
  const credentials = o.credentials ? new Map(o.credentials.map((c) => [c.principal, c.secret])) : undefined;
  const schedulerOptions = { credentials, redirectTo: o.redirectTo };

  const executorSettings = {
    ...(o.executorRegistrationTimeoutSeconds !== undefined ? { registrationTimeoutMs: o.executorRegistrationTimeoutSeconds * 1000 } : {}),
    ...(o.executorShutdownGraceSeconds !== undefined ? { shutdownGraceMs: o.executorShutdownGraceSeconds * 1000 } : {}),
    ...(o.filesystemIsolation !== undefined ? { filesystem: o.filesystemIsolation } : {}),
    ...(o.authenticateExecutors !== undefined ? { authenticateExecutors: o.authenticateExecutors } : {}),
  };
  const agents: LocalAgent[] = specs.map((spec) => {
    const agent: LocalAgent = new LocalAgent(spec, o.workDir, host, isolator, {
      onStatus: (fid, s) => master.onAgentStatus(fid, s),
      onExecutorMessage: (fid, eid, data) => master.onExecutorMessage(fid, agent.id, eid, data),
    }, logger.child({ agent: spec.hostname }), o.tls, executorSettings);
    return agent;
  });
  const byHost = new Map(agents.map((a) => [a.spec.hostname, a]));

  // Every agent the master knows, in-process or its own process; data dirs as each agent's host sees them.
  const writeTopology = (): void => {
    // Readable by all (0644): executors, running unprivileged, find the agents' data
    // directories in it; it names hosts and paths, no secrets.
    writeCheckpoint(join(o.workDir, 'topology.json'), {
      masterUrl: `${master.scheme}://${host}:${master.port}`,
      agents: [...master.agents.values()].map(({ runtime: a }) => {
        const here = o.dataDirHere?.(a.spec.hostname, a.dataDir);
        return { id: a.id, hostname: a.spec.hostname, rack: a.spec.rack, url: a.url, dataDir: a.dataDir, ...(here === undefined ? {} : { dataDirHere: here }) };
      }),
    }, 0o644);
  };
  const pingInterval = o.agentPingIntervalSeconds ?? 5;
  const remoteAgents = new RemoteAgents(master, {
    pingIntervalSeconds: pingInterval,
    pingTimeoutSeconds: o.agentPingTimeoutSeconds ?? Math.max(3 * pingInterval, 1),
    onChange: () => { if (master.port !== 0) writeTopology(); },
    ...(credentials ? { credentials } : {}),
  });

  const startAgent = async (a: LocalAgent): Promise<void> => {
    if (a.running) return;
    const orphaned = await a.start(() => master.newAgentId(), 0);
    const known = master.agents.get(a.id);
    if (known) {
      master.agentBack(a.id, orphaned);
    } else {
      master.agents.set(a.id, { runtime: a, connected: true, registeredTime: Date.now() / 1000, reregisteredTime: undefined, unreachableTime: undefined });
      if (orphaned.length > 0) master.agentBack(a.id, orphaned);
    }
  };
  const stopAgent = async (a: LocalAgent): Promise<void> => {
    if (!a.running) return;
    master.agentLost(a.id);
    await a.stop();
  };
  const agentNamed = (hostname: string): LocalAgent => {
    const a = byHost.get(hostname);
    if (!a) throw new Error(`no agent named '${hostname}'`);
    return a;
  };

  const control: LocalControl = {
    stopAgent: (h) => stopAgent(agentNamed(h)),
    startAgent: (h) => startAgent(agentNamed(h)),
    setOperationDelay: (ms) => { master.operationDelayMs = Math.max(0, ms); },
    failNextSubscribes: (n) => { master.failSubscribes = Math.max(0, n); },
    pauseHeartbeats: (ms) => { master.heartbeatsPausedUntil = Date.now() + ms; },
    dropSubscriptions: () => { for (const fw of master.frameworks.values()) if (fw.stream) fw.stream.res.destroy(); },
  };

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://master');
    const path = url.pathname;
    if (path === '/api/v1/scheduler') return handleScheduler(master, schedulerOptions, req, res);
    if (path === '/state' || path === '/master/state' || path === '/state.json' || path === '/master/state.json') return json(res, 200, stateJson(master));
    if (path === '/slaves' || path === '/master/slaves') return json(res, 200, slavesJson(master));
    if (path === '/frameworks' || path === '/master/frameworks') return json(res, 200, { frameworks: stateJson(master)['frameworks'] });
    if (path === '/health' || path === '/master/health') return text(res, 200);
    if (path === '/teardown' || path === '/master/teardown') return teardownHttp(master, req, res);
    if (path === '/version') return json(res, 200, { version: '1.12.0', build_user: 'locus' });
    if (path.startsWith(`${MASTER_AGENT_API}/`)) return remoteAgents.handle(req, res, path);
    if (path.startsWith('/local/v1/')) return controlHttp(control, req, res, path);
    text(res, 404);
  };

  let server: Listening;
  try {
    server = await listen(host, o.port ?? 5050, handler, o.tls);
  } catch (err) {
    remoteAgents.close();
    if (ownsIsolator) await isolator.close();
    throw err;
  }
  master.port = server.port;
  for (const a of agents) await startAgent(a);
  writeTopology();
  master.startAllocator();
  master.expectRecoveredAgents(o.agentReregisterTimeoutSeconds ?? 600);
  logger.info({ masterUrl: `${master.scheme}://${host}:${master.port}`, agents: agents.length, isolation: isolator.report.kind }, 'local cluster started');

  let stopping: Promise<void> | undefined;
  return {
    masterUrl: `${master.scheme}://${host}:${master.port}`,
    get agents() {
      return [...master.agents.values()].map(({ runtime: a }) => ({ id: a.id, hostname: a.spec.hostname, rack: a.spec.rack, url: a.url }));
    },
    control,
    stop() {
      // Memoised; each step isolated so shutdown always finishes.
      stopping ??= (async () => {
        remoteAgents.close();
        master.close();
        for (const a of agents) await a.stop().catch((err: unknown) => logger.warn({ err }, 'agent stop failed'));
        await server.close().catch(() => undefined);
        if (ownsIsolator) await isolator.close().catch(() => undefined);
      })();
      return stopping;
    },
  };
}

async function controlHttp(control: LocalControl, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  if (req.method !== 'POST') return text(res, 405, '', { Allow: 'POST' });
  const body = await readBody(req);
  let payload: Record<string, unknown> = {};
  try {
    const v = body === '' ? {} : (JSON.parse(body) as unknown);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) payload = v as Record<string, unknown>;
  } catch {
    return text(res, 400, 'body must be JSON');
  }
  const num = (k: string): number => (typeof payload[k] === 'number' ? payload[k] : 0);
  const m = /^\/local\/v1\/agents\/([^/]+)\/(stop|start)$/.exec(path);
  try {
    if (m) {
      const hostname = decodeURIComponent(m[1] ?? '');
      await (m[2] === 'stop' ? control.stopAgent(hostname) : control.startAgent(hostname));
      return json(res, 200, { ok: true });
    }
    switch (path) {
      case '/local/v1/operation-delay': control.setOperationDelay(num('ms')); break;
      case '/local/v1/fail-subscribes': control.failNextSubscribes(num('n')); break;
      case '/local/v1/pause-heartbeats': control.pauseHeartbeats(num('ms')); break;
      case '/local/v1/drop-subscriptions': control.dropSubscriptions(); break;
      default: return text(res, 404);
    }
    json(res, 200, { ok: true });
  } catch (err) {
    text(res, 404, err instanceof Error ? err.message : String(err));
  }
}

/**
 * The master's `/teardown` operator endpoint: `POST frameworkId=<id>` (form or query) removes the
 * framework for good, as the genuine master does; its stream ends, and a later SUBSCRIBE with that
 * id gets ERROR "Framework has been removed".
 */
async function teardownHttp(master: Master, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') return text(res, 405, '', { Allow: 'POST' });
  const body = await readBody(req);
  const q = new URL(req.url ?? '/', 'http://master').searchParams;
  const id = new URLSearchParams(body).get('frameworkId') ?? q.get('frameworkId');
  if (id === null || id === '') return text(res, 400, "Missing 'frameworkId' query parameter in the request body");
  const fw = master.frameworks.get(id);
  if (!fw) return text(res, 400, `No framework found with specified ID: ${id}`);
  master.removeFramework(fw, 'torn down by an operator');
  return text(res, 200);
}
