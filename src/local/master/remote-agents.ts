/**
 * Agents that run as their own processes (`locus agent`), as the master
 * sees them: `RemoteAgent` stands for one behind the internal HTTP protocol
 * (../agent-protocol.ts) and `RemoteAgents` answers their registrations,
 * status updates and heartbeats and declares an agent lost when its
 * heartbeats stop, as the genuine master does when agent pings time out.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { asObject, asString } from '../../core/decode.js';
import type { Logger } from '../../obs/log.js';
import type { ExecutorInfo, FrameworkInfo, Resource, TaskInfo, TaskStatus } from '../../mesos/types.js';
import { AGENT_CONTROL_API, MASTER_AGENT_API, bearer, decodeExecutors, decodeRegister, field, postJson, type RegisterRequest, type WireExecutor } from '../agent-protocol.js';
import { basicAuth, json, readBody, text } from '../http.js';
import { add, subtract } from '../resources.js';
import { isCustomExecutor } from '../agent/executors.js';
import type { Master } from './master.js';
import type { AgentRuntime } from './model.js';

/** One agent process, driven over HTTP. */
export class RemoteAgent implements AgentRuntime {
  spec: { hostname: string; rack: string; attributes: Readonly<Record<string, string>> };
  ip: string;
  port: number;
  url: string;
  dataDir: string;
  total: Resource[];
  running = true;
  /** When the agent was last heard from (ms since the epoch). */
  lastSeen = Date.now();
  private executors: WireExecutor[];
  // Calls go out one at a time, in order: a KILL must never overtake its LAUNCH.
  private chain: Promise<void> = Promise.resolve();
  // Tasks whose launch call has not finished yet: a re-registration must not declare them unknown.
  private readonly launching = new Set<string>();
  // Update uuids already handed to the master: a retried POST (its answer was lost) is not a second update.
  private readonly seen = new Set<string>();
  private readonly seenOrder: string[] = [];

  constructor(readonly id: string, public token: string, reg: RegisterRequest, private readonly logger: Logger) {
    this.spec = { hostname: reg.hostname, rack: reg.rack, attributes: reg.attributes };
    this.ip = reg.ip;
    this.port = reg.port;
    this.url = reg.url;
    this.dataDir = reg.dataDir;
    this.total = add(reg.resources);
    this.executors = [...reg.executors];
  }

  /** A re-registration: the process may have moved or restarted, and its checkpoint is authoritative. */
  refresh(token: string, reg: RegisterRequest): void {
    this.token = token;
    this.spec = { hostname: reg.hostname, rack: reg.rack, attributes: reg.attributes };
    this.ip = reg.ip;
    this.port = reg.port;
    this.url = reg.url;
    this.dataDir = reg.dataDir;
    this.total = add(reg.resources);
    this.executors = [...reg.executors];
    this.running = true;
    this.lastSeen = Date.now();
  }

  /** The executors the agent reports (heartbeats carry them). */
  setExecutors(list: readonly WireExecutor[]): void {
    this.executors = [...list];
  }

  /** Whether an update with this uuid was already taken (and remember it). */
  duplicate(uuid: string | undefined): boolean {
    if (uuid === undefined) return false;
    if (this.seen.has(uuid)) return true;
    this.seen.add(uuid);
    this.seenOrder.push(uuid);
    if (this.seenOrder.length > 10_000) this.seen.delete(this.seenOrder.shift() ?? '');
    return false;
  }

  executorIds(frameworkId: string): string[] {
    return this.executors.filter((e) => e.frameworkId === frameworkId).map((e) => e.executorId);
  }

  hasExecutor(frameworkId: string, executorId: string): boolean {
    return this.executors.some((e) => e.frameworkId === frameworkId && e.executorId === executorId);
  }

  private noteExecutor(frameworkId: string, executor: ExecutorInfo | undefined): void {
    // Known at once, so a second task for the same executor in the next ACCEPT is not charged for it again.
    if (executor && isCustomExecutor(executor) && !this.hasExecutor(frameworkId, executor.executor_id.value)) {
      this.executors.push({ frameworkId, executorId: executor.executor_id.value });
    }
  }

  launchTask(frameworkId: string, framework: FrameworkInfo, task: TaskInfo): void {
    this.noteExecutor(frameworkId, task.executor);
    this.track(frameworkId, [task], this.call('launch', { frameworkId, framework, task }));
  }

  launchGroup(frameworkId: string, framework: FrameworkInfo, executor: ExecutorInfo, tasks: readonly TaskInfo[]): void {
    this.noteExecutor(frameworkId, executor);
    this.track(frameworkId, tasks, this.call('launch-group', { frameworkId, framework, executor, tasks }));
  }

  private track(frameworkId: string, tasks: readonly TaskInfo[], done: Promise<void>): void {
    const keys = tasks.map((t) => `${frameworkId}/${t.task_id.value}`);
    for (const k of keys) this.launching.add(k);
    void done.finally(() => { for (const k of keys) this.launching.delete(k); });
  }

  /** Whether a task's launch is still on its way to the agent. */
  isLaunching(frameworkId: string, taskId: string): boolean {
    return this.launching.has(`${frameworkId}/${taskId}`);
  }

  killTask(frameworkId: string, taskId: string, killingState: boolean, graceMs: number): void {
    void this.call('kill', { frameworkId, taskId, killingState, graceMs });
  }

  shutdownExecutor(frameworkId: string, executorId: string): boolean {
    if (!this.hasExecutor(frameworkId, executorId)) return false;
    void this.call('shutdown', { frameworkId, executorId });
    return true;
  }

  messageExecutor(frameworkId: string, executorId: string, data: string): void {
    void this.call('message', { frameworkId, executorId, data });
  }

  applyConversion(consumed: readonly Resource[], converted: readonly Resource[]): void {
    const next = subtract(this.total, consumed);
    if (!next) throw new Error('agent does not hold the consumed resources');
    // The master's view changes at once (offers are computed from it); the agent applies and checkpoints it in order.
    this.total = add(next, converted);
    void this.call('convert', { consumed, converted });
  }

  killFrameworkTasks(frameworkId: string): Promise<void> {
    this.executors = this.executors.filter((e) => e.frameworkId !== frameworkId);
    return this.call('kill-framework', { frameworkId });
  }

  /**
   * One control call, after the ones before it. A few quick retries cover a
   * busy agent; an agent that stays unreachable is declared lost by its
   * missing heartbeats, which accounts for the tasks the call was about.
   */
  private call(op: string, body: unknown): Promise<void> {
    const url = `${this.url}${AGENT_CONTROL_API}/${op}`;
    const attempt = async (): Promise<void> => {
      for (let i = 0; i < 3; i++) {
        try {
          const r = await postJson(url, body, this.token, 10_000);
          if (r.status >= 200 && r.status < 300) return;
          this.logger.warn({ agent: this.id, op, status: r.status, body: r.body }, 'agent refused a control call');
          return;
        } catch (err) {
          if (i === 2 || !this.running) {
            this.logger.warn({ agent: this.id, op, err: err instanceof Error ? err.message : String(err) }, 'agent unreachable for a control call');
            return;
          }
          await new Promise((r) => setTimeout(r, 200 * (i + 1)));
        }
      }
    };
    const next = this.chain.then(attempt);
    this.chain = next;
    return next;
  }
}

/** Settings of the remote-agent endpoints. */
export interface RemoteAgentSettings {
  /** How often agents send heartbeats. */
  readonly pingIntervalSeconds: number;
  /** Silence after which an agent is lost (Mesos: agent_ping_timeout × max_agent_ping_timeouts). */
  readonly pingTimeoutSeconds: number;
  /** The set of agents or their addresses changed (the topology file is rewritten). */
  readonly onChange: () => void;
  /** When set, agents must register with one of these (principal → secret). */
  readonly credentials?: ReadonlyMap<string, string>;
}

/** The master's endpoints for agent processes, and their liveness. */
export class RemoteAgents {
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly master: Master, private readonly settings: RemoteAgentSettings) {
    this.timer = setInterval(() => this.checkPings(), Math.max(100, Math.min(1000, settings.pingIntervalSeconds * 500)));
    this.timer.unref();
  }

  private get logger(): Logger {
    return this.master.logger;
  }

  private remote(agentId: string): RemoteAgent | undefined {
    const rt = this.master.agents.get(agentId)?.runtime;
    return rt instanceof RemoteAgent ? rt : undefined;
  }

  /** Declare agents whose heartbeats stopped lost (their tasks become unreachable or lost). */
  private checkPings(): void {
    const now = Date.now();
    for (const [id, rec] of this.master.agents) {
      const rt = rec.runtime;
      if (!(rt instanceof RemoteAgent) || !rec.connected) continue;
      if (now - rt.lastSeen > this.settings.pingTimeoutSeconds * 1000) {
        this.logger.warn({ agent: id, hostname: rt.spec.hostname }, 'agent heartbeats timed out; agent lost');
        rt.running = false;
        this.master.agentLost(id);
      }
    }
  }

  /** Route one request under MASTER_AGENT_API. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method !== 'POST') return text(res, 405, '', { Allow: 'POST' });
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req)) as unknown;
    } catch (err) {
      return text(res, 400, `body must be JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    const rest = path.slice(MASTER_AGENT_API.length + 1);
    try {
      if (rest === 'register') {
        if (this.settings.credentials) {
          // An unauthenticated agent would be handed tasks, their environments and their secrets.
          const c = basicAuth(req);
          if (!c || this.settings.credentials.get(c.principal) !== c.secret) return text(res, 401, 'agent authentication failed', { 'WWW-Authenticate': 'Basic realm="mesos"' });
        }
        return this.register(body, res);
      }
      const m = /^([^/]+)\/(status|message|heartbeat|unregister)$/.exec(rest);
      if (!m) return text(res, 404);
      const rt = this.remote(decodeURIComponent(m[1] ?? ''));
      // 404 and 401 both tell the agent to register again: the master restarted, or the agent was replaced.
      if (!rt) return text(res, 404, 'unknown agent');
      if (bearer(req.headers.authorization) !== rt.token) return text(res, 401, 'stale or missing agent token');
      const rec = this.master.agents.get(rt.id);
      if (!rec?.connected) return text(res, 404, 'agent was declared lost; register again');
      rt.lastSeen = Date.now();
      const o = asObject(body, 'body');
      switch (m[2]) {
        case 'status': {
          const status = asObject(o['status'], 'status') as unknown as TaskStatus;
          if (!rt.duplicate(status.uuid)) this.master.onAgentStatus(field(o, 'frameworkId'), status);
          return json(res, 200, {});
        }
        case 'message':
          this.master.onExecutorMessage(field(o, 'frameworkId'), rt.id, field(o, 'executorId'), asString(o['data'], 'data'));
          return json(res, 200, {});
        case 'heartbeat':
          rt.setExecutors(decodeExecutors(o['executors'], 'executors'));
          return json(res, 200, {});
        default:
          // The agent is stopping: its tasks are lost now rather than after the ping timeout.
          rt.running = false;
          this.master.forgetAgent(rt.id);
          this.master.agentLost(rt.id);
          return json(res, 200, {});
      }
    } catch (err) {
      return text(res, 400, err instanceof Error ? err.message : String(err));
    }
  }

  private register(body: unknown, res: ServerResponse): void {
    const reg = decodeRegister(body);
    const id = reg.agentId ?? this.master.newAgentId();
    const clash = [...this.master.agents.entries()].find(([other, a]) => other !== id && a.connected && a.runtime.spec.hostname === reg.hostname);
    if (clash) return text(res, 409, `an agent with hostname '${reg.hostname}' is registered already (${clash[0]})`);
    const token = randomBytes(24).toString('hex');
    const known = this.master.agents.get(id);
    let rt: RemoteAgent;
    if (known) {
      if (!(known.runtime instanceof RemoteAgent)) return text(res, 409, `agent id ${id} belongs to an agent inside the master`);
      rt = known.runtime;
      rt.refresh(token, reg);
    } else {
      rt = new RemoteAgent(id, token, reg, this.logger.child({ agent: reg.hostname }));
      this.master.agents.set(id, { runtime: rt, connected: true, registeredTime: Date.now() / 1000, reregisteredTime: undefined, unreachableTime: undefined });
    }
    this.master.admitAgent(id);
    // Live tasks first, so agentBack's sweep of unreachable tasks keeps them.
    for (const t of reg.liveTasks) this.master.adoptTask(id, t);
    if (known) {
      const reported = new Set([...reg.liveTasks, ...reg.orphanedTasks].map((t) => `${t.frameworkId}/${t.task.task_id.value}`));
      this.master.dropUnreported(id, reported, (fid, tid) => rt.isLaunching(fid, tid));
    }
    const rec = this.master.agents.get(id);
    if (known || reg.orphanedTasks.length > 0) this.master.agentBack(id, reg.orphanedTasks);
    else if (rec) rec.connected = true;
    this.logger.info({ agent: id, hostname: reg.hostname, url: reg.url, live: reg.liveTasks.length, orphaned: reg.orphanedTasks.length }, known ? 'agent re-registered' : 'agent registered');
    this.settings.onChange();
    json(res, 200, { agentId: id, token, pingIntervalSeconds: this.settings.pingIntervalSeconds });
  }

  /** Stop the liveness check. */
  close(): void {
    clearInterval(this.timer);
  }
}
