/**
 * The local master: frameworks and their event streams, the allocation
 * loop, task status forwarding with acknowledgements, reconciliation,
 * failover and agent loss. Call decoding and HTTP live in scheduler-http.ts,
 * ACCEPT in operations.ts, the state endpoints in state-json.ts.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from '../../obs/log.js';
import type { Event, FrameworkInfo, MasterInfo, Offer, OperationStatus, Resource, TaskState, TaskStatus } from '../../mesos/types.js';
import { TERMINAL_TASK_STATES } from '../../mesos/types.js';
import { readCheckpoint, writeCheckpoint } from '../checkpoint.js';
import { recordio } from '../http.js';
import { add, unallocate, subtract, downgrade } from '../resources.js';
import { newUuid } from '../agent/agent.js';
import { allocatePass } from './allocator.js';
import { frameworkRoles, hasCapability, type AgentRecord, type AgentRuntime, type FrameworkRecord, type Stream, type TaskRecord } from './model.js';

/** Settings of the master. */
export interface MasterSettings {
  readonly workDir: string;
  readonly host: string;
  readonly heartbeatIntervalSeconds: number;
  readonly allocationIntervalMs: number;
  readonly offerTimeoutSeconds: number | undefined;
  readonly statusUpdateRetrySeconds: number;
  readonly logger: Logger;
}

interface MasterCheckpoint {
  readonly id: string;
  readonly nextFramework: number;
  readonly nextAgent: number;
  readonly completedFrameworks: readonly string[];
  /** The registry: ids of agent processes admitted and not unregistered (absent in older checkpoints). */
  readonly agents?: readonly string[];
}

/** The master's process-wide state and behaviour. */
export class Master {
  readonly id: string;
  port = 0;
  scheme = 'http';
  readonly agents = new Map<string, AgentRecord>();
  readonly frameworks = new Map<string, FrameworkRecord>();
  readonly completedFrameworks = new Set<string>();
  readonly offerIndex = new Map<string, { frameworkId: string; agentId: string }>();
  /** Resources taken out of offers whose operations are still being applied (operation delay). */
  readonly pending = new Map<string, Resource[]>();
  readonly startTime = Date.now() / 1000;
  operationDelayMs = 0;
  failSubscribes = 0;
  heartbeatsPausedUntil = 0;
  private nextFramework: number;
  private nextAgent: number;
  private nextOffer = 0;
  private allocationTimer: NodeJS.Timeout | undefined;
  private rotation = 0;
  private readonly checkpointPath: string;
  private closed = false;
  /** Agent processes admitted and not unregistered, checkpointed (the genuine master's registry). */
  private readonly registry: Set<string>;
  /**
   * Registry agents that have not re-registered since this master started: a
   * master that restarted answers no reconciliation for tasks on them until
   * they do (or the re-registration timeout marks them unreachable), as the
   * genuine master treats agents recovered from its registry. Without this a
   * scheduler that re-subscribes before the agents re-register hears
   * TASK_UNKNOWN for executors that still run, and gives them up.
   */
  readonly recoveringAgents = new Set<string>();
  /** Registry agents that did not re-register in time: unreachable since (seconds since the epoch). */
  readonly unreachableAfterFailover = new Map<string, number>();
  private reregisterTimer: NodeJS.Timeout | undefined;

  constructor(readonly settings: MasterSettings) {
    this.checkpointPath = join(settings.workDir, 'master.json');
    const cp = readCheckpoint(this.checkpointPath) as MasterCheckpoint | undefined;
    this.id = cp?.id ?? randomUUID();
    this.nextFramework = cp?.nextFramework ?? 0;
    this.nextAgent = cp?.nextAgent ?? 0;
    for (const f of cp?.completedFrameworks ?? []) this.completedFrameworks.add(f);
    this.registry = new Set(cp?.agents ?? []);
    for (const a of this.registry) this.recoveringAgents.add(a);
    this.persist();
  }

  get logger(): Logger {
    return this.settings.logger;
  }

  private persist(): void {
    const cp: MasterCheckpoint = { id: this.id, nextFramework: this.nextFramework, nextAgent: this.nextAgent, completedFrameworks: [...this.completedFrameworks], agents: [...this.registry] };
    writeCheckpoint(this.checkpointPath, cp);
  }

  /**
   * An agent process (re-)registered: it is in the registry (checkpointed
   * before it is answered, so a restart right after still expects it) and no
   * longer recovering. In-process agents are not recorded: they cannot
   * outlive the master, and a restarted master registers them before it listens.
   */
  admitAgent(agentId: string): void {
    this.recoveringAgents.delete(agentId);
    this.unreachableAfterFailover.delete(agentId);
    if (this.registry.has(agentId)) return;
    this.registry.add(agentId);
    this.persist();
  }

  /** An agent process unregistered (it is stopping): a restarted master does not wait for it. */
  forgetAgent(agentId: string): void {
    this.recoveringAgents.delete(agentId);
    if (this.registry.delete(agentId)) this.persist();
  }

  /**
   * After `seconds` (Mesos: --agent_reregister_timeout, 10 minutes), registry
   * agents that did not re-register are unreachable: reconciliation answers
   * TASK_UNREACHABLE (TASK_LOST without PARTITION_AWARE) for their tasks.
   */
  expectRecoveredAgents(seconds: number): void {
    if (this.recoveringAgents.size === 0) return;
    this.logger.info({ agents: this.recoveringAgents.size, timeoutSeconds: seconds }, 'waiting for agents of the registry to re-register');
    this.reregisterTimer = setTimeout(() => {
      const now = Date.now() / 1000;
      for (const a of this.recoveringAgents) this.unreachableAfterFailover.set(a, now);
      if (this.recoveringAgents.size > 0) this.logger.warn({ agents: [...this.recoveringAgents] }, 'agents of the registry did not re-register in time; unreachable');
      this.recoveringAgents.clear();
    }, seconds * 1000);
    this.reregisterTimer.unref();
  }

  /** A new agent id (`<master>-S<n>`), checkpointed so it is never reused. */
  newAgentId(): string {
    const id = `${this.id}-S${this.nextAgent++}`;
    this.persist();
    return id;
  }

  /** Start the allocation loop. */
  startAllocator(): void {
    this.allocationTimer = setInterval(() => this.allocate(), this.settings.allocationIntervalMs);
    this.allocationTimer.unref();
  }

  // ---------------------------------------------------------------- events

  /** Write one event on the framework's stream (dropped when disconnected, as Mesos does). */
  send(fw: FrameworkRecord, event: Event | Record<string, unknown>): void {
    const s = fw.stream;
    if (!s || s.res.writableEnded || s.res.destroyed) return;
    s.res.write(recordio(event));
  }

  private heartbeat(fw: FrameworkRecord, s: Stream): void {
    if (Date.now() >= this.heartbeatsPausedUntil && fw.stream === s) this.send(fw, { type: 'HEARTBEAT' });
  }

  /** Close a stream (optionally with an ERROR event first). */
  closeStream(fw: FrameworkRecord, error?: string): void {
    const s = fw.stream;
    if (!s) return;
    if (error !== undefined) this.send(fw, { type: 'ERROR', error: { message: error } });
    clearInterval(s.heartbeat);
    fw.stream = undefined;
    s.res.end();
  }

  // ------------------------------------------------------------- subscribe

  /** Attach a SUBSCRIBE stream; returns the framework (or undefined when refused with ERROR). */
  subscribe(res: Stream['res'], streamId: string, info0: FrameworkInfo, suppressedRoles: readonly string[]): FrameworkRecord | undefined {
    const requested = info0.id?.value;
    const stream: Stream = { id: streamId, res, heartbeat: undefined };
    const refuse = (message: string): undefined => {
      res.write(recordio({ type: 'ERROR', error: { message } }));
      res.end();
      return undefined;
    };
    if (requested !== undefined && requested !== '' && this.completedFrameworks.has(requested)) return refuse('Framework has been removed');
    const roles = frameworkRoles(info0);
    const multiRole = (info0.capabilities ?? []).some((c) => c.type === 'MULTI_ROLE');
    if (multiRole && info0.role !== undefined && info0.role !== '*') return refuse("'FrameworkInfo.role' must not be set when MULTI_ROLE capability is present");
    const badSuppressed = suppressedRoles.filter((r) => !roles.includes(r));
    if (badSuppressed.length > 0) return refuse(`Suppressed roles { ${badSuppressed.join(', ')} } are not contained in the list of roles`);
    const id = requested !== undefined && requested !== '' ? requested : `${this.id}-${String(this.nextFramework++).padStart(4, '0')}`;
    this.persist();
    const info: FrameworkInfo = { ...info0, id: { value: id } };
    const now = Date.now() / 1000;
    let fw = this.frameworks.get(id);
    if (fw) {
      // Failover (or a recovered framework subscribing): the old stream goes.
      if (fw.stream) this.closeStream(fw, 'Framework failed over');
      if (fw.failoverTimer) clearTimeout(fw.failoverTimer);
      fw.failoverTimer = undefined;
      for (const offerId of [...fw.offers.keys()]) this.removeOffer(offerId);
      fw.info = info;
      fw.roles = roles;
      fw.capabilities = new Set((info.capabilities ?? []).map((c) => c.type));
      fw.suppressed = new Set(suppressedRoles);
      fw.filters = [];
      if (fw.recovered) fw.registeredTime = now;
      else fw.reregisteredTime = now;
      fw.recovered = false;
    } else {
      fw = {
        id, info, roles, capabilities: new Set((info.capabilities ?? []).map((c) => c.type)), stream: undefined, recovered: false,
        suppressed: new Set(suppressedRoles), filters: [], offers: new Map(), tasks: new Map(), completedTasks: [],
        registeredTime: now, reregisteredTime: undefined, unregisteredTime: 0, failoverTimer: undefined,
        pendingOperationUpdates: new Map(), operations: new Map(),
      };
      this.frameworks.set(id, fw);
    }
    fw.stream = stream;
    const record = fw;
    res.on('close', () => this.disconnected(record, stream));
    this.send(fw, {
      type: 'SUBSCRIBED',
      subscribed: { framework_id: { value: id }, heartbeat_interval_seconds: this.settings.heartbeatIntervalSeconds, master_info: this.masterInfo() },
    });
    this.heartbeat(fw, stream);
    stream.heartbeat = setInterval(() => this.heartbeat(record, stream), this.settings.heartbeatIntervalSeconds * 1000);
    stream.heartbeat.unref();
    // Unacknowledged updates are retried at once on a new subscription.
    for (const t of fw.tasks.values()) this.sendHead(fw, t);
    for (const s of fw.pendingOperationUpdates.values()) this.send(fw, { type: 'UPDATE_OPERATION_STATUS', update_operation_status: { status: s } });
    this.logger.info({ framework: id, name: info.name }, 'framework subscribed');
    return fw;
  }

  /** MasterInfo as SUBSCRIBED carries it. */
  masterInfo(): MasterInfo {
    const ipNum = this.settings.host.split('.').map(Number).reduceRight((acc, octet) => acc * 256 + octet, 0);
    return {
      id: this.id, ip: ipNum, port: this.port, pid: `master@${this.settings.host}:${this.port}`, hostname: this.settings.host, version: '1.12.0',
      address: { hostname: this.settings.host, ip: this.settings.host, port: this.port },
      capabilities: [{ type: 'AGENT_UPDATE' }, { type: 'AGENT_DRAINING' }, { type: 'QUOTA_V2' }],
    };
  }

  private disconnected(fw: FrameworkRecord, stream: Stream): void {
    clearInterval(stream.heartbeat);
    if (fw.stream !== stream) return;
    fw.stream = undefined;
    fw.unregisteredTime = Date.now() / 1000;
    for (const offerId of [...fw.offers.keys()]) this.removeOffer(offerId);
    if (this.closed) return;
    const timeoutMs = Math.max(0, (fw.info.failover_timeout ?? 0) * 1000);
    this.logger.info({ framework: fw.id, timeoutMs }, 'framework disconnected; failover timeout started');
    fw.failoverTimer = setTimeout(() => this.removeFramework(fw, 'failover timeout'), Math.min(timeoutMs, 2_147_000_000));
    fw.failoverTimer.unref();
  }

  /** Remove a framework: kill its tasks, forget its offers, never accept its id again. */
  removeFramework(fw: FrameworkRecord, why: string): void {
    this.logger.info({ framework: fw.id, why }, 'removing framework');
    if (fw.failoverTimer) clearTimeout(fw.failoverTimer);
    for (const offerId of [...fw.offers.keys()]) this.removeOffer(offerId);
    for (const t of fw.tasks.values()) {
      if (t.resendTimer) clearTimeout(t.resendTimer);
      if (!TERMINAL_TASK_STATES.has(t.state)) t.state = 'TASK_KILLED';
      fw.completedTasks.push(t);
    }
    fw.tasks.clear();
    for (const a of this.agents.values()) void a.runtime.killFrameworkTasks(fw.id);
    this.closeStream(fw);
    this.frameworks.delete(fw.id);
    this.completedFrameworks.add(fw.id);
    this.persist();
  }

  // ------------------------------------------------------------ allocation

  /** Unallocated resources of an agent that are neither used, offered nor pending. */
  available(agentId: string): Resource[] {
    const a = this.agents.get(agentId);
    if (!a || !a.connected) return [];
    let avail: Resource[] = add(a.runtime.total);
    const take = (rs: readonly Resource[]): void => { avail = subtract(avail, unallocate(rs)) ?? avail; };
    for (const fw of this.frameworks.values()) {
      for (const t of fw.tasks.values()) if (t.agentId === agentId && !TERMINAL_TASK_STATES.has(t.state) && !t.unreachable) take(t.resources);
      for (const o of fw.offers.values()) if (o.agent_id.value === agentId) take(o.resources);
    }
    take(this.pending.get(agentId) ?? []);
    return avail;
  }

  /** Resources in use on an agent (unallocated), for volume-in-use checks. */
  usedOn(agentId: string): Resource[] {
    const used: Resource[][] = [];
    for (const fw of this.frameworks.values()) for (const t of fw.tasks.values()) if (t.agentId === agentId && !TERMINAL_TASK_STATES.has(t.state)) used.push(unallocate(t.resources));
    return add(...used);
  }

  /** One allocation pass: DRF over subscribed frameworks, one OFFERS event per framework. */
  allocate(): void {
    if (this.closed) return;
    const now = Date.now();
    const frameworks = [...this.frameworks.values()].filter((f) => f.stream !== undefined);
    if (frameworks.length === 0) return;
    const agents = [...this.agents.entries()].filter(([, a]) => a.connected).map(([id]) => ({ id, available: this.available(id) }));
    const total = add(...[...this.agents.values()].filter((a) => a.connected).map((a) => a.runtime.total));
    const views = frameworks.map((f) => ({
      id: f.id, roles: f.roles, suppressed: f.suppressed, filters: f.filters,
      allocated: add(...[...f.tasks.values()].filter((t) => !TERMINAL_TASK_STATES.has(t.state)).map((t) => unallocate(t.resources)), ...[...f.offers.values()].map((o) => unallocate(o.resources))),
    }));
    const grants = allocatePass(agents, views, total, now, this.rotation++);
    const byFramework = new Map<string, Offer[]>();
    for (const g of grants) {
      const fw = this.frameworks.get(g.frameworkId);
      const agent = this.agents.get(g.agentId);
      if (!fw || !agent) continue;
      const offer = this.makeOffer(fw, agent.runtime, g.role, g.resources);
      byFramework.set(fw.id, [...(byFramework.get(fw.id) ?? []), offer]);
    }
    for (const [fid, offers] of byFramework) {
      const fw = this.frameworks.get(fid);
      if (fw) this.send(fw, { type: 'OFFERS', offers: { offers: offers.map((o) => this.offerForWire(fw, o)) } });
    }
    for (const f of frameworks) f.filters = f.filters.filter((x) => x.until > now);
  }

  private makeOffer(fw: FrameworkRecord, agent: AgentRuntime, role: string, resources: readonly Resource[]): Offer {
    const id = `${this.id}-O${this.nextOffer++}`;
    const offer: Offer = {
      id: { value: id },
      framework_id: { value: fw.id },
      agent_id: { value: agent.id },
      hostname: agent.spec.hostname,
      url: { scheme: this.scheme, address: { hostname: agent.ip, ip: agent.ip, port: agent.port }, path: '/slave(1)' },
      resources,
      attributes: [{ name: 'rack', type: 'TEXT', text: { value: agent.spec.rack } }, ...Object.entries(agent.spec.attributes).map(([name, value]) => ({ name, type: 'TEXT' as const, text: { value } }))],
      allocation_info: { role },
    };
    const executorIds = agent.executorIds(fw.id);
    if (executorIds.length > 0) Object.assign(offer, { executor_ids: executorIds.map((value) => ({ value })) });
    fw.offers.set(id, offer);
    this.offerIndex.set(id, { frameworkId: fw.id, agentId: agent.id });
    const timeout = this.settings.offerTimeoutSeconds;
    if (timeout !== undefined && timeout > 0) {
      setTimeout(() => { if (this.offerIndex.has(id)) this.rescindOffer(id); }, timeout * 1000).unref();
    }
    return offer;
  }

  /** Offers as a given framework understands them (legacy frameworks: no allocation info, old reservation format). */
  offerForWire(fw: FrameworkRecord, o: Offer): Offer {
    if (hasCapability(fw, 'MULTI_ROLE') && hasCapability(fw, 'RESERVATION_REFINEMENT')) return o;
    let resources = o.resources;
    if (!hasCapability(fw, 'RESERVATION_REFINEMENT')) resources = resources.map(downgrade);
    if (!hasCapability(fw, 'MULTI_ROLE')) {
      resources = resources.map((r) => { const { allocation_info: _a, ...rest } = r; void _a; return rest; });
      const { allocation_info: _b, ...rest } = o;
      void _b;
      return { ...rest, resources };
    }
    return { ...o, resources };
  }

  /** Forget an offer (accepted, declined, or its framework gone). */
  removeOffer(offerId: string): Offer | undefined {
    const idx = this.offerIndex.get(offerId);
    if (!idx) return undefined;
    this.offerIndex.delete(offerId);
    const fw = this.frameworks.get(idx.frameworkId);
    const offer = fw?.offers.get(offerId);
    fw?.offers.delete(offerId);
    return offer;
  }

  /** Take an offer back and tell the framework (RESCIND). */
  rescindOffer(offerId: string): void {
    const idx = this.offerIndex.get(offerId);
    if (!idx) return;
    this.removeOffer(offerId);
    const fw = this.frameworks.get(idx.frameworkId);
    if (fw) this.send(fw, { type: 'RESCIND', rescind: { offer_id: { value: offerId } } });
  }

  // ---------------------------------------------------------- task updates

  /** A status update produced by an agent (reliable: carries a uuid). */
  onAgentStatus(frameworkId: string, status: TaskStatus): void {
    const fw = this.frameworks.get(frameworkId);
    const task = fw?.tasks.get(status.task_id.value);
    if (!fw || !task) return;
    this.recordStatus(task, status);
    task.pending.push(status);
    if (task.pending.length === 1) this.sendHead(fw, task);
  }

  /** An executor's MESSAGE call, forwarded to its framework (no delivery guarantee). */
  onExecutorMessage(frameworkId: string, agentId: string, executorId: string, data: string): void {
    const fw = this.frameworks.get(frameworkId);
    if (fw) this.send(fw, { type: 'MESSAGE', message: { agent_id: { value: agentId }, executor_id: { value: executorId }, data } });
  }

  /** A status update the master itself produces (not acknowledged, no uuid). */
  masterUpdate(fw: FrameworkRecord, status: TaskStatus, task?: TaskRecord): void {
    if (task) this.recordStatus(task, status);
    this.send(fw, { type: 'UPDATE', update: { status } });
  }

  private recordStatus(task: TaskRecord, status: TaskStatus): void {
    task.state = status.state;
    const { uuid: _u, ...rest } = status;
    void _u;
    task.statuses.push(rest);
    if (status.container_status) task.lastStatus = status;
  }

  private sendHead(fw: FrameworkRecord, task: TaskRecord): void {
    const head = task.pending[0];
    if (task.resendTimer) clearTimeout(task.resendTimer);
    task.resendTimer = undefined;
    if (!head) return;
    this.send(fw, { type: 'UPDATE', update: { status: head } });
    task.resendTimer = setTimeout(() => this.sendHead(fw, task), this.settings.statusUpdateRetrySeconds * 1000);
    task.resendTimer.unref();
  }

  /** ACKNOWLEDGE: pop the head update; a terminal one completes the task. */
  acknowledge(fw: FrameworkRecord, taskId: string, uuid: string): void {
    const task = fw.tasks.get(taskId);
    const head = task?.pending[0];
    if (!task || !head || head.uuid !== uuid) return;
    task.pending.shift();
    if (TERMINAL_TASK_STATES.has(head.state) && task.pending.length === 0) {
      if (task.resendTimer) clearTimeout(task.resendTimer);
      fw.tasks.delete(taskId);
      fw.completedTasks.push(task);
      if (fw.completedTasks.length > 1000) fw.completedTasks.shift();
      return;
    }
    this.sendHead(fw, task);
  }

  /** Operation feedback for an operation with an id (OPERATION_FINISHED needs an ack). */
  operationUpdate(fw: FrameworkRecord, operationId: string | undefined, state: OperationStatus['state'], agentId: string | undefined, message?: string): void {
    if (operationId === undefined) return;
    const reliable = state === 'OPERATION_FINISHED' || state === 'OPERATION_FAILED';
    const status: OperationStatus = {
      operation_id: { value: operationId },
      state,
      ...(message !== undefined ? { message } : {}),
      ...(reliable ? { uuid: { value: newUuid() } } : {}),
      ...(agentId !== undefined ? { agent_id: { value: agentId } } : {}),
    };
    fw.operations.set(operationId, status);
    if (status.uuid) fw.pendingOperationUpdates.set(status.uuid.value, status);
    this.send(fw, { type: 'UPDATE_OPERATION_STATUS', update_operation_status: { status } });
  }

  /** A new task launched on an agent. */
  addTask(fw: FrameworkRecord, agentId: string, role: string, task: TaskRecord['info'], resources: readonly Resource[]): TaskRecord {
    const record: TaskRecord = { info: task, frameworkId: fw.id, agentId, role, resources, state: 'TASK_STAGING', statuses: [], lastStatus: undefined, pending: [], resendTimer: undefined, unreachable: false };
    fw.tasks.set(task.task_id.value, record);
    return record;
  }

  /** The state reconciliation reports: the unacknowledged head, else the latest. */
  reconcileState(t: TaskRecord): TaskState {
    return t.pending[0]?.state ?? t.state;
  }

  /** A reconciliation answer for a known task. */
  reconciliationStatus(fw: FrameworkRecord, t: TaskRecord): TaskStatus {
    const cs = t.lastStatus?.container_status;
    return {
      task_id: t.info.task_id, state: this.reconcileState(t), message: 'Reconciliation: Latest task state', source: 'SOURCE_MASTER',
      // A genuine 1.12 master answers without executor_id (see the recorded transcript).
      reason: 'REASON_RECONCILIATION', agent_id: { value: t.agentId }, timestamp: Date.now() / 1000,
      ...(cs ? { container_status: cs } : {}),
    };
  }

  // ----------------------------------------------------------- agent loss

  /** The agent went away: its offers are rescinded, its tasks unreachable (or lost). */
  agentLost(agentId: string): void {
    const a = this.agents.get(agentId);
    if (!a) return;
    a.connected = false;
    a.unreachableTime = Date.now() / 1000;
    for (const [offerId, idx] of [...this.offerIndex]) if (idx.agentId === agentId) this.rescindOffer(offerId);
    for (const fw of this.frameworks.values()) {
      for (const t of [...fw.tasks.values()]) {
        if (t.agentId !== agentId || TERMINAL_TASK_STATES.has(t.state)) continue;
        const partitionAware = hasCapability(fw, 'PARTITION_AWARE');
        const nanos = Math.round(a.unreachableTime * 1e9);
        t.pending = [];
        if (t.resendTimer) clearTimeout(t.resendTimer);
        t.unreachable = true;
        this.masterUpdate(fw, {
          task_id: t.info.task_id, state: partitionAware ? 'TASK_UNREACHABLE' : 'TASK_LOST', message: 'health check timed out', source: 'SOURCE_MASTER',
          reason: 'REASON_SLAVE_REMOVED', agent_id: { value: agentId }, timestamp: Date.now() / 1000,
          ...(t.statuses.some((s) => s.executor_id) ? { executor_id: { value: t.info.executor?.executor_id.value ?? t.info.task_id.value } } : {}),
          unreachable_time: { nanoseconds: nanos },
        }, t);
        if (!partitionAware) {
          fw.tasks.delete(t.info.task_id.value);
          fw.completedTasks.push(t);
        }
      }
    }
    // As the genuine master does when it removes an agent: every framework hears of it
    // (FAILURE with the agent id and no executor id), tasks there or not.
    for (const fw of this.frameworks.values()) {
      if (fw.stream) this.send(fw, { type: 'FAILURE', failure: { agent_id: { value: agentId } } });
    }
  }

  /** The agent is back with the same id: tasks it lost are re-added, then fail as the agent reports them. */
  agentBack(agentId: string, orphaned: readonly { frameworkId: string; framework: FrameworkInfo; task: TaskRecord['info']; containerId: string }[]): void {
    const a = this.agents.get(agentId);
    if (!a) return;
    a.connected = true;
    a.reregisteredTime = Date.now() / 1000;
    a.unreachableTime = undefined;
    for (const o of orphaned) {
      const fw = this.knownFramework(o.frameworkId, o.framework);
      if (!fw) continue;
      let t = fw.tasks.get(o.task.task_id.value);
      if (!t && fw.completedTasks.some((c) => c.info.task_id.value === o.task.task_id.value)) continue;
      if (t) {
        t.unreachable = false;
        if (hasCapability(fw, 'PARTITION_AWARE')) {
          this.masterUpdate(fw, { task_id: t.info.task_id, state: 'TASK_RUNNING', message: 'Unreachable agent re-reregistered', source: 'SOURCE_MASTER', reason: 'REASON_SLAVE_REREGISTERED', agent_id: { value: agentId }, timestamp: Date.now() / 1000 }, t);
        }
      } else {
        const role = o.task.resources.find((r) => r.allocation_info?.role !== undefined)?.allocation_info?.role ?? frameworkRoles(o.framework)[0] ?? '*';
        t = this.addTask(fw, agentId, role, o.task, o.task.resources);
        t.state = 'TASK_RUNNING';
      }
      // The container did not survive: the agent reports it as Mesos's agent recovery does.
      this.onAgentStatus(fw.id, {
        task_id: o.task.task_id, state: 'TASK_FAILED', source: 'SOURCE_AGENT', reason: 'REASON_EXECUTOR_TERMINATED',
        message: 'Abnormal executor termination: unknown container', agent_id: { value: agentId }, executor_id: { value: o.task.executor?.executor_id.value ?? o.task.task_id.value },
        timestamp: Date.now() / 1000, uuid: newUuid(),
      });
    }
    // Unreachable tasks the agent no longer knows about are gone for good.
    for (const fw of this.frameworks.values()) {
      for (const t of [...fw.tasks.values()]) {
        if (t.agentId === agentId && t.unreachable) {
          fw.tasks.delete(t.info.task_id.value);
          fw.completedTasks.push(t);
        }
      }
    }
  }

  /** A framework by id, recreated from an agent's knowledge when the master does not have it (it restarted); undefined when it was removed. */
  private knownFramework(frameworkId: string, framework: FrameworkInfo): FrameworkRecord | undefined {
    const known = this.frameworks.get(frameworkId);
    if (known) return known;
    if (this.completedFrameworks.has(frameworkId)) return undefined;
    const fw: FrameworkRecord = {
      id: frameworkId, info: { ...framework, id: { value: frameworkId } }, roles: frameworkRoles(framework),
      capabilities: new Set((framework.capabilities ?? []).map((c) => c.type)), stream: undefined, recovered: true,
      suppressed: new Set(), filters: [], offers: new Map(), tasks: new Map(), completedTasks: [],
      registeredTime: Date.now() / 1000, reregisteredTime: undefined, unregisteredTime: 0, failoverTimer: undefined,
      pendingOperationUpdates: new Map(), operations: new Map(),
    };
    this.frameworks.set(frameworkId, fw);
    return fw;
  }

  /**
   * A task an agent process reports still running when it (re-)registers:
   * after a master restart the master learns it again; after a partition an
   * unreachable task is reachable again (partition-aware frameworks hear
   * TASK_RUNNING, as from Mesos). A task the master already declared lost
   * is killed on the agent, as the genuine master asks a re-registering
   * agent to kill tasks of non-partition-aware frameworks.
   */
  adoptTask(agentId: string, o: { frameworkId: string; framework: FrameworkInfo; task: TaskRecord['info'] }): void {
    const fw = this.knownFramework(o.frameworkId, o.framework);
    const taskId = o.task.task_id.value;
    const t = fw?.tasks.get(taskId);
    if (!fw || (!t && fw.completedTasks.some((c) => c.info.task_id.value === taskId))) {
      this.agents.get(agentId)?.runtime.killTask(o.frameworkId, taskId, false, 0);
      return;
    }
    if (t) {
      if (!t.unreachable) return;
      t.unreachable = false;
      if (hasCapability(fw, 'PARTITION_AWARE')) {
        this.masterUpdate(fw, { task_id: t.info.task_id, state: 'TASK_RUNNING', message: 'Unreachable agent re-reregistered', source: 'SOURCE_MASTER', reason: 'REASON_SLAVE_REREGISTERED', agent_id: { value: agentId }, timestamp: Date.now() / 1000 }, t);
      }
      return;
    }
    const role = o.task.resources.find((r) => r.allocation_info?.role !== undefined)?.allocation_info?.role ?? frameworkRoles(o.framework)[0] ?? '*';
    this.addTask(fw, agentId, role, o.task, o.task.resources).state = 'TASK_RUNNING';
  }

  /**
   * An agent re-registered without tasks the master placed there (their
   * launch never reached it, or it restarted and lost them): they are gone,
   * TASK_DROPPED for partition-aware frameworks and TASK_LOST for the rest,
   * as the genuine master reports tasks unknown to a re-registering agent.
   * `keep` says which tasks are still on their way to the agent.
   */
  dropUnreported(agentId: string, reported: ReadonlySet<string>, keep: (frameworkId: string, taskId: string) => boolean): void {
    for (const fw of this.frameworks.values()) {
      for (const t of [...fw.tasks.values()]) {
        const id = t.info.task_id.value;
        if (t.agentId !== agentId || TERMINAL_TASK_STATES.has(t.state) || t.unreachable || reported.has(`${fw.id}/${id}`) || keep(fw.id, id)) continue;
        t.pending = [];
        if (t.resendTimer) clearTimeout(t.resendTimer);
        this.masterUpdate(fw, {
          task_id: t.info.task_id, state: hasCapability(fw, 'PARTITION_AWARE') ? 'TASK_DROPPED' : 'TASK_LOST', source: 'SOURCE_MASTER',
          reason: 'REASON_RECONCILIATION', message: 'Task is unknown to the agent', agent_id: { value: agentId }, timestamp: Date.now() / 1000,
        }, t);
        fw.tasks.delete(id);
        fw.completedTasks.push(t);
      }
    }
  }

  /** Stop timers and streams (the cluster is shutting down). */
  close(): void {
    this.closed = true;
    if (this.allocationTimer) clearInterval(this.allocationTimer);
    if (this.reregisterTimer) clearTimeout(this.reregisterTimer);
    for (const fw of this.frameworks.values()) {
      if (fw.failoverTimer) clearTimeout(fw.failoverTimer);
      for (const t of fw.tasks.values()) if (t.resendTimer) clearTimeout(t.resendTimer);
      this.closeStream(fw);
    }
  }
}
