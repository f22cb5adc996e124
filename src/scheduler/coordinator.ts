/**
 * The coordinator: the one place where placement decisions become actions.
 * It keeps the offer book and the executor book, turns Mesos events into
 * state changes, runs placement passes (coalesced: many events, one pass)
 * and applies each Plan — ACCEPT/DECLINE, executor launches, queue writes and
 * state writes. Everything it talks to is a port, so tests can hand it real
 * local implementations.
 */
import type { TimerHandle } from '../core/clock.js';
import { LOCALITY_NAMES, type LocalityLevel } from '../core/locality.js';
import type { Logger } from '../obs/log.js';
import { HANDED_BACK, type AttemptPayload, type AttemptResult } from '../executor/contract.js';
import type { Event, Offer, Operation, Resource, TaskInfo, TaskStatus } from '../mesos/types.js';
import { TERMINAL_TASK_STATES } from '../mesos/types.js';
import {
  explain as explainPlacement, offerCouldRun, place, resolveOptions, type ExecutorLaunch, type ExecutorView, type OfferView,
  type PendingTask, type Plan, type Reason, type Snapshot, type TenantView,
} from './placement/index.js';
import type { ResourceVector } from '../core/resources.js';
import { offerRole, subtractTaken, summarizeOffer, takeResources, type OfferSummary } from './offers.js';
import type { CoordinatorOptions, Explanation } from './ports.js';
import { DispatchWindows, workloadMs } from './dispatch-window.js';
import { PrefetchPolicy, dispatchableSlots } from './prefetch.js';
import { tagOf } from '../volumes/wire.js';
import { EXECUTOR_START_BACKOFF, EXECUTOR_START_FAILED, ExecutorStarts, crashOf, endedBefore, startFailureOf, type AgentStartFailures } from './executor-starts.js';
import { INPUT_STORAGE_UNAVAILABLE, WAITING_FOR_INPUT_STORAGE } from './jobs/input-waits.js';
import { parseTaskId, type JobRecord } from './jobs/model.js';
import type { JobService } from './jobs/service.js';
import type { ExecutorRecord } from './executors.js';
import { LocusError } from '../core/errors.js';

/** Placement reasons that mean "waiting for an offer": offers held back by a start-failure hold are why. */
/** The prefix of the message of a job failed because the volume its tasks mount is being deleted. */
export const VOLUME_DELETED = 'VOLUME_DELETED';

const OFFER_WAITS: ReadonlySet<string> = new Set(['NO_CAPACITY', 'NO_OFFER_FROM_DATA_HOSTS', 'NO_OFFER_FROM_VOLUME_AGENT', 'WAITING_FOR_LOCALITY']);

/**
 * What explain knows of an agent whose launches are held: its last offer while held (declined,
 * so no pass keeps it), else the executor that failed there. `free` is unknown until such an offer.
 */
interface HeldAgent {
  readonly hostname: string;
  readonly rack: string | undefined;
  readonly attributes: Readonly<Record<string, string>>;
  readonly volumes: readonly string[];
  readonly free: ResourceVector | undefined;
}

/** Whether the job ended because no executor could be started for it (its message starts with the code). */
function gaveUpOnStarts(job: JobRecord): boolean {
  return job.state === 'FAILED' && job.message?.startsWith(`${EXECUTOR_START_FAILED}:`) === true;
}

// The ports live in ports.ts; they are re-exported here for callers that wire a coordinator.
export type {
  AttemptDispatch, CoordinatorOptions, Explanation, ExecutorLauncher, MesosDriver, OfferOperationPlanner, TenantSetting,
} from './ports.js';

/** The coordinator. */
export class Coordinator {
  private readonly offers = new Map<string, Offer>();
  private readonly busy = new Map<string, number>();
  private readonly unreachable = new Map<string, TimerHandle>();
  private lastSnapshot: Snapshot | undefined;
  /** Volumes being deleted (or deleted), as the last pass read them: nothing new starts for them. */
  private goneVolumes: ReadonlySet<string> = new Set();
  private lastReasons = new Map<string, Reason>();
  private suppressed = false;
  private lastReviveAt: number | undefined;
  /**
   * Offer flow bookkeeping. Every time work appears (pending tasks, volume
   * operations) the generation goes up. A SUPPRESS or a decline filter is
   * decided with the generation the pass started from; while any such
   * decision predates the newest work, offers are parked for a reason that no
   * longer holds and the next pass REVIVEs at once. This is what keeps a
   * volume created during a pass (or a job submitted while a 120 s idle
   * filter runs) from waiting out a filter set before it existed.
   */
  private workGen = 0;
  /** Oldest generation an outstanding SUPPRESS or filter was decided with (undefined: none). */
  private parkedGen: number | undefined;
  /** When the longest decline filter since the last REVIVE runs out (ms). */
  private parkedUntil = 0;
  private subscribed = false;
  private passing = false;
  private again = false;
  private scheduled = false;
  private tick: TimerHandle | undefined;
  private closed = false;
  private unreconciled = new Map<string, string>();
  private reconcileTimer: TimerHandle | undefined;
  private readonly log: Logger;
  /** How many attempts each executor may have in flight (dispatch-window.ts). */
  private readonly windows: DispatchWindows;
  /** Which executors are sent attempts beyond their slots (prefetch.ts). */
  private readonly prefetch = new PrefetchPolicy();
  /** Each executor's prefetch as the last pass allowed it (the locus_executor_prefetch gauge). */
  private readonly aheadNow = new Map<string, number>();
  /** Executors that failed to start: per-agent launch holds, and jobs that give up (executor-starts.ts). */
  private readonly starts: ExecutorStarts;
  /** Executors killed because they never registered their queue, with why (their TASK_KILLED is a start failure). */
  private readonly unregistered = new Map<string, string>();
  /** Agents whose launches are or were held, as explain matches them against a waiting task. */
  private readonly heldAgents = new Map<string, HeldAgent>();
  /**
   * Executors that finished an attempt (its workload ran to an end): one that registered and then
   * fails while running its first attempts is a start failure too (executor-starts.ts).
   */
  private readonly worked = new Set<string>();

  constructor(private readonly o: CoordinatorOptions) {
    this.log = o.logger.child({ component: 'coordinator' });
    this.windows = new DispatchWindows(o.dispatchWindow);
    this.windows.onChange = (c) => this.log.debug({ ...c }, 'dispatch window changed');
    this.starts = new ExecutorStarts(o.executorStarts);
    o.jobs.on('work', () => this.noteWork());
    o.jobs.on('event', (e) => {
      if (e.kind === 'job' && (e.state === 'SUCCEEDED' || e.state === 'FAILED' || e.state === 'CANCELLED')) this.starts.forgetJob(e.jobId);
    });
  }

  /** Load executors and jobs after a (re)start. Call before subscribing. */
  async recover(): Promise<void> {
    const executors = await this.o.executors.load();
    const { jobs, pending, running } = await this.o.jobs.recover();
    for (const t of running) {
      const last = t.attempts[t.attempts.length - 1];
      if (last) this.busy.set(last.executorId, (this.busy.get(last.executorId) ?? 0) + 1);
    }
    // Attempts dispatched before the restart: their executors may still be running them, or
    // may have finished them while no scheduler listened. Adopt each so its result is read;
    // an attempt whose executor is gone is retried, uncounted.
    const known = new Set(executors.map((e) => e.executorId));
    // Whether their tasks were short died with the old scheduler: they prefetch again only after
    // a run of short results, not as a new executor does (every executor of a long-task cluster
    // would hand back what it was sent ahead once more).
    for (const id of known) this.prefetch.unknown(id);
    // Nor is it known whether they finished attempts: a crash of one is never counted as a start
    // failure (an executor that served for hours before the failover is not one that cannot start).
    for (const id of known) this.worked.add(id);
    for (const t of running) {
      const last = t.attempts[t.attempts.length - 1];
      if (!last) continue;
      const payload = known.has(last.executorId) ? await this.o.jobs.payloadFor(t) : undefined;
      try {
        if (!payload) throw new Error('executor not on record');
        await this.o.dispatch.adopt(last.executorId, payload);
      } catch (err) {
        this.log.info({ taskId: t.id, executorId: last.executorId, err: String(err) }, 'attempt from before the restart cannot be adopted; retrying it');
        this.release(last.executorId);
        await this.loseAttempt(t.id, last.attemptId, last.executorId, 'EXECUTOR_LOST');
      }
    }
    this.log.info({ executors: executors.length, jobs, pending, running: running.length }, 'recovered state');
    this.startTicker();
  }

  /** Feed one Mesos event. */
  async handleEvent(event: Event): Promise<void> {
    switch (event.type) {
      case 'SUBSCRIBED':
        this.subscribed = true;
        this.suppressed = false;
        this.o.metrics?.masterConnected.set(1);
        await this.reconcile();
        this.requestPass();
        return;
      case 'OFFERS':
        for (const offer of event.offers.offers ?? []) {
          this.offers.set(offer.id.value, offer);
          this.starts.offered(offer.agent_id.value, this.o.clock.now());
        }
        this.o.metrics?.offersReceived.inc(event.offers.offers?.length ?? 0);
        if (event.offers.offers && this.o.volumes?.onOffersSeen) await this.o.volumes.onOffersSeen(event.offers.offers);
        if (event.offers.inverse_offers?.length) await this.handleInverseOffers(event.offers.inverse_offers.map((i) => ({ id: i.id.value, agentId: i.agent_id?.value })));
        this.requestPass();
        return;
      case 'INVERSE_OFFERS':
        await this.handleInverseOffers(event.inverse_offers.inverse_offers.map((i) => ({ id: i.id.value, agentId: i.agent_id?.value })));
        return;
      case 'RESCIND':
        this.offers.delete(event.rescind.offer_id.value);
        return;
      case 'UPDATE':
        await this.handleStatus(event.update.status);
        return;
      case 'UPDATE_OPERATION_STATUS': {
        const status = event.update_operation_status.status;
        if (this.o.volumes) await this.o.volumes.onOperationStatus(status);
        if (status.uuid && status.operation_id) {
          await this.o.driver.acknowledgeOperationStatus(status.agent_id?.value, status.operation_id.value, status.uuid.value).catch((err: unknown) => {
            this.log.warn({ err: String(err) }, 'acknowledging an operation status failed');
          });
        }
        this.requestPass();
        return;
      }
      case 'FAILURE':
        if (event.failure.agent_id && !event.failure.executor_id) {
          const agentId = event.failure.agent_id.value;
          this.log.warn({ agentId }, 'agent lost');
          const onIt = this.o.executors.onAgent(agentId);
          for (const ex of onIt) await this.executorGone(ex.executorId, 'AGENT_LOST', 'agent lost');
          // The agent is gone with its disk: outputs committed there are recomputed.
          for (const host of new Set(onIt.map((e) => e.hostname))) await this.o.jobs.hostLost(host, 'agent removed');
          await this.o.volumes?.onAgentLost?.(agentId);
          this.starts.agentLost(agentId);
          this.heldAgents.delete(agentId);
        }
        return;
      case 'ERROR':
        this.log.error({ message: event.error.message }, 'the master reported an error for this framework');
        return;
      case 'HEARTBEAT':
      case 'MESSAGE':
      case 'RESCIND_INVERSE_OFFER':
      case 'UNKNOWN':
        return;
    }
  }

  /** The connection to the master dropped: offers are void, passes wait for the next subscription. */
  disconnected(): void {
    this.subscribed = false;
    this.offers.clear();
    this.o.metrics?.masterConnected.set(0);
  }

  /** Whether a master subscription is live (for /readyz). */
  get isSubscribed(): boolean {
    return this.subscribed;
  }

  /** An attempt's result arrived from its executor. */
  async onAttemptResult(result: AttemptResult, executorId: string): Promise<void> {
    const outcome = await this.o.jobs.finishAttempt(result);
    // The start time of an attempt that ran is the dispatch window's signal; synthetic results
    // (lost, cancelled before it started) carry no start worth measuring.
    const ran = outcome !== 'STALE' && (result.state === 'SUCCEEDED' || result.state === 'FAILED' || result.state === 'TIMED_OUT');
    const runMs = result.finishedAt - result.startedAt;
    // The window samples only attempts whose workload ran: their result says when it exited. One
    // that ended before (found committed, failed to set up or launch, the executor's own error)
    // has a "start" from before its set-up: a delay that short would lower the window's baseline
    // for a minute and make every prompt start after it look congested. (An executor of contract
    // 2.0 says no exit time: during a rolling upgrade its window keeps every slot.)
    const sampled = ran && result.exitedAt !== undefined;
    this.windows.finished(executorId, result.attemptId, sampled ? result.startedAt : undefined, this.o.clock.now(), workloadMs(result));
    // Only for an executor still in service: a late result must not bring a dropped one back.
    const ex = this.o.executors.get(executorId);
    if (ex !== undefined && ex.state !== 'GONE') this.prefetch.finished(executorId, ran ? runMs : undefined, result.reason === HANDED_BACK);
    // A workload ran to its end on it (stale or not: that is the executor's doing either way):
    // executors start and serve on that agent, which clears its start failures.
    const workloadEnded = result.state === 'SUCCEEDED' || result.state === 'FAILED' || result.state === 'TIMED_OUT';
    if (workloadEnded && ex !== undefined && ex.state !== 'GONE' && !this.worked.has(executorId)) {
      this.worked.add(executorId);
      this.starts.worked(ex.agentId);
    }
    if (outcome === 'STALE') {
      this.log.debug({ attemptId: result.attemptId }, 'stale attempt result ignored');
      return;
    }
    this.release(executorId);
    if (result.reason === HANDED_BACK) this.o.metrics?.attemptsHandedBack.inc();
    this.o.metrics?.taskDuration.observe({ outcome: result.state }, Math.max(0, runMs / 1000));
    this.requestPass();
  }

  /** An executor stopped heartbeating (or its queue reports it dead). */
  async onExecutorLost(executorId: string, message: string): Promise<void> {
    // Its heartbeats stopped but its Mesos task may live on (a stall, a partition from Redis):
    // kill it so it neither holds resources nor finishes attempts that are retried elsewhere.
    const ex = this.o.executors.get(executorId);
    if (ex) await this.o.driver.kill(ex.taskId, ex.agentId).catch((err: unknown) => this.log.warn({ err: String(err), executorId }, 'killing a lost executor failed'));
    await this.executorGone(executorId, 'EXECUTOR_LOST', message);
  }

  /** Kill the running attempts of a cancelled job. */
  async cancelAttempts(kill: readonly { taskId: string; executorId: string; attemptId: string }[]): Promise<void> {
    for (const k of kill) {
      await this.o.dispatch.cancel(k.executorId, k.attemptId).catch((err: unknown) => {
        this.log.warn({ err: String(err), attemptId: k.attemptId }, 'cancelling an attempt failed');
      });
    }
  }

  /** Why a task is not running (or what it is doing). */
  async explain(taskId: string, tenant?: string): Promise<Explanation> {
    let found: Awaited<ReturnType<JobService['task']>>;
    try {
      found = await this.o.jobs.task(taskId, tenant);
    } catch (err) {
      // A task never attempted is known only while pending; once its job gave up for want of an
      // executor, that is still the answer to why it did not run.
      const gaveUp = err instanceof LocusError && err.code === 'NOT_FOUND' ? await this.gaveUpFor(taskId, tenant) : undefined;
      if (gaveUp) return gaveUp;
      // Nor are the tasks of a stage whose inputs are not listed yet: its storage may be away.
      const waiting = err instanceof LocusError && err.code === 'NOT_FOUND' ? await this.inputsFor(taskId, tenant) : undefined;
      if (waiting) return waiting;
      throw err;
    }
    const { record, pending, job } = found;
    if (pending) {
      const snapshot = this.lastSnapshot ?? this.snapshot([]);
      const reason = this.lastReasons.get(taskId) ?? explainPlacement(taskId, { ...snapshot, now: this.o.clock.now() }, this.o.jobs.index, this.o.placement);
      if (!this.subscribed) {
        return { taskId, state: 'PENDING', code: 'NOT_SUBSCRIBED', message: 'Locus is not subscribed to a Mesos master yet, so no offers arrive' };
      }
      const task = this.o.jobs.index.get(taskId);
      const held = OFFER_WAITS.has(reason.code) && task !== undefined ? this.heldLaunches(task, reason) : undefined;
      if (held) return { taskId, state: 'PENDING', ...held };
      return { taskId, state: 'PENDING', code: reason.code, message: reason.message, ...(reason.until === undefined ? {} : { until: reason.until }) };
    }
    const state = record?.state ?? 'UNKNOWN';
    const last = record?.attempts[record.attempts.length - 1];
    if (state === 'RUNNING' && last) {
      return { taskId, state, code: 'RUNNING', message: `running on ${last.host} (${LOCALITY_NAMES[last.locality]}) as ${last.attemptId}` };
    }
    if (job.state === 'CANCELLED') return { taskId, state, code: 'CANCELLED', message: 'the job was cancelled' };
    if (gaveUpOnStarts(job) && state !== 'SUCCEEDED') return { taskId, state, code: EXECUTOR_START_FAILED, message: job.message ?? EXECUTOR_START_FAILED };
    return { taskId, state, code: state, message: last?.message ?? `task is ${state}` };
  }

  /** Why a never-attempted task of a job that gave up on executor starts did not run (undefined: not such a task). */
  private async gaveUpFor(taskId: string, tenant: string | undefined): Promise<Explanation | undefined> {
    const id = parseTaskId(taskId);
    if (id === undefined) return undefined;
    // The job is read as its tenant sees it: another tenant's job stays NOT_FOUND.
    const job = await this.o.jobs.get(id.jobId, tenant).catch(() => undefined);
    const stage = job?.stages[id.stage];
    if (job === undefined || !gaveUpOnStarts(job) || stage === undefined || id.index >= stage.taskCount) return undefined;
    return { taskId, state: 'PENDING', code: EXECUTOR_START_FAILED, message: job.message ?? EXECUTOR_START_FAILED };
  }

  /**
   * Why a task of a stage whose inputs are not listed did not run: the stage waits for the
   * storage of its inputs (with the last error and when it is tried next), or its job failed
   * because that storage stayed unreachable. Undefined: not such a task.
   */
  private async inputsFor(taskId: string, tenant: string | undefined): Promise<Explanation | undefined> {
    const wait = await this.o.jobs.stageInputWait(taskId, tenant).catch(() => undefined);
    if (wait !== undefined) {
      return {
        taskId, state: 'PENDING', code: WAITING_FOR_INPUT_STORAGE,
        message: `stage '${wait.stageName}' waits for the storage of its input ${wait.input}, whose listing failed ${wait.tries} time(s) since ${new Date(wait.since).toISOString()}, last with: ${wait.lastError}; `
          + `tried again at ${new Date(wait.nextTryAt).toISOString()}, the job fails at ${new Date(wait.giveUpAt).toISOString()} if it is still unreachable (input-storage-give-up)`,
        until: wait.nextTryAt,
      };
    }
    const id = parseTaskId(taskId);
    if (id === undefined) return undefined;
    const job = await this.o.jobs.get(id.jobId, tenant).catch(() => undefined);
    const stage = job?.stages[id.stage];
    if (job === undefined || stage === undefined || stage.taskCount >= 0 || job.state !== 'FAILED' || job.message?.startsWith(`${INPUT_STORAGE_UNAVAILABLE}:`) !== true) return undefined;
    return { taskId, state: 'FAILED', code: INPUT_STORAGE_UNAVAILABLE, message: job.message };
  }

  /**
   * A pending task waits for offers while launches are held on agents where executors failed to
   * start: say so (those agents' offers are declined until their hold ends), with placement's
   * own reason after it. Undefined when no agent the task could run on is held: a task pinned
   * elsewhere (a constraint, a volume, its data's hosts) waits for placement's reason alone.
   */
  private heldLaunches(task: PendingTask, placement: Reason): { code: string; message: string; until: number } | undefined {
    const held = this.starts.holding(this.o.clock.now()).filter((a) => this.heldFor(task, a, placement));
    const first = held[0];
    if (first === undefined) return undefined;
    const others = held.length > 1 ? ` (and on ${held.length - 1} more agent(s))` : '';
    return {
      code: EXECUTOR_START_BACKOFF,
      message: `executors failed to start on ${first.hostname}${others}: ${first.failures} launch(es) in a row ${endedBefore(first)}, the last with ${first.lastMessage}; no executor is launched there until ${new Date(first.heldUntil).toISOString()} (placement: ${placement.message})`,
      until: first.heldUntil,
    };
  }

  /**
   * Whether the hold on an agent is what keeps the task waiting: its job lost attempts there, or
   * the agent, as last seen, passes the checks placement would make of its offer for the task
   * (constraints, avoided hosts, volume, the data's hosts when it waits for them, and the offer's
   * size once one was seen).
   */
  private heldFor(task: PendingTask, agent: AgentStartFailures, placement: Reason): boolean {
    if (agent.jobs.has(task.jobId)) return true;
    const seen = this.heldAgents.get(agent.agentId);
    if (seen === undefined) return false;
    if (task.avoidHosts?.includes(seen.hostname) === true) return false;
    if (task.volumeId !== undefined && !seen.volumes.includes(task.volumeId)) return false;
    if (placement.code === 'NO_OFFER_FROM_DATA_HOSTS' && !task.preferredHosts.includes(seen.hostname)) return false;
    if (placement.code === 'WAITING_FOR_LOCALITY' && !task.preferredHosts.includes(seen.hostname)
      && (seen.rack === undefined || !task.preferredRacks.includes(seen.rack))) return false;
    // Without an offer seen, only the constraints can be judged: its size is taken to fit.
    const free = seen.free ?? { cpus: Number.POSITIVE_INFINITY, mem: Number.POSITIVE_INFINITY, disk: Number.POSITIVE_INFINITY };
    return offerCouldRun(task, { offerId: '', agentId: agent.agentId, hostname: seen.hostname, attributes: seen.attributes, free }, resolveOptions(this.o.placement));
  }

  /** Stop timers. In-flight work is left to the stores; nothing is killed. */
  close(): void {
    this.closed = true;
    this.tick?.cancel();
    this.reconcileTimer?.cancel();
    for (const t of this.unreachable.values()) t.cancel();
  }

  /** New work appeared (tasks or volume operations): offers parked before it come back, and a pass runs. */
  noteWork(): void {
    this.workGen++;
    this.requestPass();
  }

  /** Ask for a placement pass soon; many requests coalesce into one pass. */
  requestPass(): void {
    if (this.closed) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.runPasses();
    });
  }

  private startTicker(): void {
    const every = this.o.tickMs ?? 500;
    const loop = (): void => {
      if (this.closed) return;
      if (this.o.jobs.index.size > 0 || this.offers.size > 0 || this.idleExecutors() > 0) this.requestPass();
      this.tick = this.o.clock.setTimer(every, loop);
    };
    this.tick = this.o.clock.setTimer(every, loop);
  }

  private idleExecutors(): number {
    return this.o.executors.all().filter((e) => (this.busy.get(e.executorId) ?? 0) === 0).length;
  }

  private async runPasses(): Promise<void> {
    if (this.passing || this.closed) return;
    this.passing = true;
    try {
      do {
        this.again = false;
        await this.passOnce();
      } while (this.again && !this.closed);
    } catch (err) {
      this.log.error({ err: err instanceof Error ? err.stack : String(err) }, 'placement pass failed');
    } finally {
      this.passing = false;
    }
  }

  private snapshot(offers: readonly OfferSummary[], otherWork = false): Snapshot {
    const now = this.o.clock.now();
    const pendingWork = this.o.jobs.index.size > 0;
    const executors: ExecutorView[] = this.o.executors.all()
      .filter((e) => e.state === 'LAUNCHING' || e.state === 'RUNNING' || e.state === 'DRAINING')
      .map((e) => {
        const busy = this.busy.get(e.executorId) ?? 0;
        // A launching executor takes attempts already: they wait in the runtime until it has
        // registered its queue, so placement never launches a second executor for the same work.
        const free = Math.max(0, e.slots - busy);
        // A running executor's window may hold some free slots back from tasks (not from growth).
        const window = e.state === 'RUNNING' ? this.windows.dispatchable(e.executorId, e.slots, free, now, pendingWork) : free;
        const ahead = e.state === 'RUNNING' ? this.prefetch.extra(e.executorId, e.slots, this.o.dispatch.prefetch?.(e.executorId) ?? 0) : 0;
        this.aheadNow.set(e.executorId, ahead);
        const dispatchable = dispatchableSlots({ slots: e.slots, busy, windowed: window, window: this.windows.window(e.executorId), ahead });
        return {
          executorId: e.executorId, agentId: e.agentId, hostname: e.hostname,
          ...(e.rack ? { rack: e.rack } : {}), attributes: e.attributes,
          slotResources: e.slotResources, slots: e.slots, freeSlots: free,
          ...(dispatchable !== free ? { dispatchSlots: dispatchable } : {}),
          volumes: e.volumes, ...(e.tenant ? { tenant: e.tenant } : {}),
          freeSince: e.idleSince ?? now, ...(e.idleSince === undefined ? {} : { idleSince: e.idleSince }),
          draining: e.state === 'DRAINING', ...(e.state === 'LAUNCHING' ? { launching: true } : {}),
        };
      });
    // Per job too: between the jobs of one tenant, the one running fewer tasks goes first
    // (Pass.before). Without the counts every job ran "none", and an older job's backlog went
    // before a newer job's first task.
    const { byTenant: runningByTenant, byJob: runningByJob } = this.o.jobs.runningCounts();
    // Usage: what busy slots hold (each executor's slot shape × its running attempts), shared
    // between tenants by their running attempts. Exact when tenants run one shape each, which is
    // what DRF ordering and quotas need; a fixed 1-cpu unit per attempt would count a 0.1-cpu
    // task ten times over against a quota.
    const held = { cpus: 0, mem: 0, disk: 0 };
    let runningAll = 0;
    for (const e of executors) {
      const n = Math.min(e.slots, this.busy.get(e.executorId) ?? 0);
      held.cpus += e.slotResources.cpus * n;
      held.mem += e.slotResources.mem * n;
      held.disk += e.slotResources.disk * n;
    }
    for (const n of runningByTenant.values()) runningAll += n;
    const tenants: TenantView[] = this.o.tenants().map((t) => {
      const share = runningAll > 0 ? (runningByTenant.get(t.name) ?? 0) / runningAll : 0;
      return { name: t.name, weight: t.weight, ...(t.quota ? { quota: t.quota } : {}), usage: { cpus: held.cpus * share, mem: held.mem * share, disk: held.disk * share } };
    });
    const offerViews: OfferView[] = offers.map((s) => ({
      offerId: s.offerId, agentId: s.agentId, hostname: s.hostname, ...(s.rack ? { rack: s.rack } : {}),
      attributes: s.attributes, free: s.free, volumes: s.volumeIds,
      ...(s.unavailableAt === undefined ? {} : { unavailability: { start: s.unavailableAt } }),
    }));
    const offersParked = this.parkedGen !== undefined && this.parkedGen < this.workGen && (this.suppressed || now < this.parkedUntil);
    return {
      now, offers: offerViews, executors, tenants, suppressed: this.suppressed,
      ...(this.lastReviveAt === undefined ? {} : { lastReviveAt: this.lastReviveAt }),
      otherWork, offersParked, outputHosts: this.o.jobs.outputHosts(), runningByJob,
      ...(this.goneVolumes.size === 0 ? {} : { goneVolumes: this.goneVolumes }),
    };
  }

  private async passOnce(): Promise<void> {
    if (!this.subscribed && this.offers.size === 0 && this.o.jobs.index.size === 0) return;
    // Taken before any state is read: work that appears from here on has a later generation,
    // so whatever this pass parks (suppress, filters) is revived by the next pass.
    const gen = this.workGen;
    const now = this.o.clock.now();
    const offers = [...this.offers.values()];
    this.offers.clear();
    // Offers are never held: whatever this pass did not accept or decline (a failure midway)
    // is declined at the end, with a short filter so it comes back soon.
    const answered = new Set<string>();
    let launchable = offers;
    const volumeOps = new Map<string, Operation[]>();
    try {
      // Volume operations are planned first and take their share of an offer before placement
      // sees it (a reservation never loses its disk to an executor); the rest of that offer
      // stays open to executors, and each offer gets one ACCEPT with both.
      if (this.o.volumes && offers.length > 0) {
        for (const p of await this.o.volumes.plan(offers, now)) if (p.operations.length > 0) volumeOps.set(p.offerId, p.operations);
        if (volumeOps.size > 0) launchable = offers.map((o) => { const ops = volumeOps.get(o.id.value); return ops ? afterVolumeOperations(o, ops) : o; });
      }

      // Agents where executors just failed to start get no launch until their hold ends: their
      // offers are kept from placement and declined for the rest of the hold (their volume
      // operations, if any, still go through).
      const held: { offerId: string; refuseSeconds: number }[] = [];
      launchable = launchable.filter((o) => {
        const until = this.starts.heldUntil(o.agent_id.value, now);
        if (until === undefined) {
          this.heldAgents.delete(o.agent_id.value);
          return true;
        }
        held.push({ offerId: o.id.value, refuseSeconds: Math.max(1, Math.ceil((until - now) / 1000)) });
        // Kept for explain: whether a waiting task could use this agent once its hold ends.
        const s = summarizeOffer(o, offerRole(o, this.o.role));
        this.heldAgents.set(o.agent_id.value, { hostname: s.hostname, rack: s.rack, attributes: s.attributes, volumes: s.volumeIds, free: s.free });
        return false;
      });
      // Read fresh each pass, after the volume plan moved its holdings on.
      const volumeWork = (await this.o.volumes?.hasPendingWork()) ?? false;
      this.goneVolumes = (await this.o.volumes?.goneVolumes?.()) ?? new Set<string>();
      await this.failJobsOfGoneVolumes();
      // Under MULTI_ROLE each offer is allocated to one role; read it from the offer itself.
      const summaries = launchable.map((offer) => summarizeOffer(offer, offerRole(offer, this.o.role)));
      const snapshot = this.snapshot(summaries, volumeWork);
      this.lastSnapshot = snapshot;
      const plan = place(snapshot, this.o.jobs.index, this.o.placement);
      await this.apply(plan, launchable, summaries, answered, gen, volumeOps, held);
    } finally {
      const left = [...offers.map((o) => o.id.value)].filter((id) => !answered.has(id));
      if (left.length > 0 && this.subscribed) {
        await this.o.driver.decline(left, 1).catch((err: unknown) => this.log.warn({ err: String(err) }, 'declining left-over offers failed'));
        this.park(gen, 1);
      }
    }
  }

  /**
   * Jobs whose pending tasks are pinned to a volume being deleted can never run them (placement
   * gives them nothing, and the volume will not come back): they fail, saying why, rather than
   * wait for ever. A delete is refused while such jobs wait (VolumeService.deleteVolume); this
   * is for those that slipped in (a stage that opened meanwhile, a volume forced away while
   * UNAVAILABLE). A job with an attempt still running is tried again at the next pass.
   */
  private async failJobsOfGoneVolumes(): Promise<void> {
    if (this.goneVolumes.size === 0) return;
    for (const v of this.goneVolumes) {
      for (const jobId of this.o.jobs.jobsPinnedTo(v)) {
        const message = `${VOLUME_DELETED}: volume ${v}, which its tasks mount, is being deleted (or was) while they waited to run`;
        await this.o.jobs.giveUp(jobId, message, 'its volume is being deleted').catch((err: unknown) => {
          this.log.warn({ err: String(err), jobId, volumeId: v }, 'failing a job whose volume is being deleted failed; the next pass tries again');
        });
      }
    }
  }

  /** Offers were filtered (refuse_seconds) or suppressed by a pass that started at generation `gen`. */
  private park(gen: number, refuseSeconds: number): void {
    this.parkedGen = this.parkedGen === undefined ? gen : Math.min(this.parkedGen, gen);
    this.parkedUntil = Math.max(this.parkedUntil, this.o.clock.now() + refuseSeconds * 1000);
  }

  private async apply(
    plan: Plan, offers: readonly Offer[], summaries: readonly OfferSummary[], answered: Set<string>, gen: number,
    volumeOps: ReadonlyMap<string, readonly Operation[]>, held: readonly { offerId: string; refuseSeconds: number }[],
  ): Promise<void> {
    const byId = new Map(offers.map((o) => [o.id.value, o]));
    const summaryById = new Map(summaries.map((s) => [s.offerId, s]));

    // 1. Launch executors, one ACCEPT per offer (with the offer's volume operations first).
    const launchesByOffer = new Map<string, ExecutorLaunch[]>();
    for (const l of plan.launches) launchesByOffer.set(l.offerId, [...(launchesByOffer.get(l.offerId) ?? []), l]);
    const declined: { offerId: string; refuseSeconds: number }[] = [...plan.declines, ...held];
    for (const [offerId, launches] of launchesByOffer) {
      const offer = byId.get(offerId);
      const summary = summaryById.get(offerId);
      if (!offer || !summary) continue;
      const infos: TaskInfo[] = [];
      let remaining: readonly Resource[] = offer.resources;
      for (const l of launches) {
        const taken = takeResources(remaining, l.resources, offerRole(offer, this.o.role), l.volumeId);
        if (!taken) {
          this.log.warn({ offerId, executorId: l.executorId }, 'offer too small for the planned executor; skipped');
          continue;
        }
        remaining = subtractTaken(remaining, taken);
        if (l.volumeId !== undefined && this.o.volumes?.acquire) {
          try {
            await this.o.volumes.acquire(l.volumeId, l.executorId);
          } catch (err) {
            this.log.warn({ err: String(err), volumeId: l.volumeId }, 'volume not available for an executor; launch skipped');
            continue;
          }
        }
        const info = await this.o.launcher.taskInfo(l, summary, taken);
        await this.o.executors.put({
          executorId: l.executorId, taskId: info.task_id.value, agentId: l.agentId, hostname: l.hostname,
          rack: summary.rack, attributes: summary.attributes, agentUrl: summary.agentUrl,
          slots: l.slots, slotResources: l.slotResources, volumes: l.volumeId ? [l.volumeId] : [],
          tenant: l.tenant, state: 'LAUNCHING', launchedAt: plan.now, idleSince: plan.now,
        });
        infos.push(info);
      }
      const ops: Operation[] = [...(volumeOps.get(offerId) ?? [])];
      if (infos.length > 0) ops.push({ type: 'LAUNCH', launch: { task_infos: infos } });
      if (ops.length === 0) {
        declined.push({ offerId, refuseSeconds: 1 });
        continue;
      }
      answered.add(offerId);
      try {
        await this.o.driver.accept([offerId], ops, 1);
      } catch (err) {
        // The master never got the launch: these executors will not exist.
        this.log.warn({ err: String(err), offerId }, 'ACCEPT failed; the planned executors are dropped');
        for (const i of infos) await this.executorGone(i.task_id.value, 'LAUNCH_FAILED', `ACCEPT failed: ${String(err)}`);
        continue;
      }
      this.o.metrics?.offersAccepted.inc();
      // What the launches left of the offer is filtered for a second.
      this.park(gen, 1);
      this.log.info({ offerId, executors: infos.map((i) => i.task_id.value), host: summary.hostname }, 'launching executors');
    }

    // 2. Offers with volume operations and no launch: ACCEPT the operations alone.
    for (const [offerId, ops] of volumeOps) {
      if (answered.has(offerId) || launchesByOffer.has(offerId)) continue;
      try {
        await this.o.driver.accept([offerId], ops, 1);
        answered.add(offerId);
        this.park(gen, 1);
        this.o.metrics?.offersAccepted.inc();
      } catch (err) {
        // Left unanswered: declined at the end of the pass; the planner retries the operations.
        this.log.warn({ err: String(err), offerId }, 'ACCEPT of volume operations failed');
      }
    }

    // 3. Decline the rest, grouped by filter length.
    const groups = new Map<number, string[]>();
    for (const d of declined) {
      if (answered.has(d.offerId) || volumeOps.has(d.offerId)) continue;
      groups.set(d.refuseSeconds, [...(groups.get(d.refuseSeconds) ?? []), d.offerId]);
    }
    for (const [seconds, ids] of groups) {
      for (const id of ids) answered.add(id);
      await this.o.driver.decline(ids, seconds);
      this.park(gen, seconds);
      this.o.metrics?.offersDeclined.inc(ids.length);
    }

    // 4. Hand tasks to executors: every attempt of the pass is recorded concurrently (the
    // store calls pipeline), then each executor's attempts go onto its queue in one batch.
    // The plan's columns, read field by field (Plan.assignments would build an object per task).
    const assigned = plan.assigned;
    const starts: Promise<{ executorId: string; payload: AttemptPayload; level: LocalityLevel } | undefined>[] = [];
    for (let k = 0; k < assigned.length; k++) {
      const taskId = assigned.taskId(k);
      const level = assigned.level(k);
      const executorId = assigned.executorId(k);
      starts.push((async () => {
        const ex = this.o.executors.get(executorId);
        // One being declared gone (GONE until the book's write ends) takes no new attempt.
        if (!ex || ex.state === 'GONE') return undefined;
        const payload = await this.o.jobs.startAttempt(taskId, { id: ex.executorId, host: ex.hostname, ...(ex.agentUrl ? { agentUrl: ex.agentUrl } : {}) }, level);
        if (!payload) return undefined;
        // Declared gone while this start was being recorded: executorGone's scan of its attempts
        // may have run before this one was among them, and then nothing ever settled it (it stayed
        // RUNNING for good; chaos lose-agent, CI run 99). Given back, uncounted; if the scan did
        // see it, this second end is stale.
        const now = this.o.executors.get(executorId);
        if (!now || now.state === 'GONE') {
          await this.o.jobs.abandonAttempt(taskId, payload.attemptId, 'EXECUTOR_LOST');
          return undefined;
        }
        this.occupy(ex.executorId);
        return { executorId: ex.executorId, payload, level };
      })());
    }
    const settled = await Promise.allSettled(starts);
    const started = settled.map((r, i) => {
      if (r.status === 'fulfilled') return r.value;
      // The start was not recorded: the task goes back to pending for the next pass.
      const taskId = assigned.taskId(i);
      this.log.warn({ err: String(r.reason), taskId }, 'starting an attempt failed');
      this.o.jobs.requeue(taskId);
      return undefined;
    });
    const byExecutor = new Map<string, { payload: AttemptPayload; level: LocalityLevel }[]>();
    for (const s of started) {
      if (!s) continue;
      const list = byExecutor.get(s.executorId);
      if (list) list.push(s);
      else byExecutor.set(s.executorId, [s]);
    }
    // The executors' queues are filled side by side: each executor's attempts still go out in
    // one enqueue, after their starts were recorded, and fail or succeed together. One after the
    // other, a pass's enqueue took the sum of every executor's round trips (the batch index, then
    // the queue add): under load 150-450 ms for a pass of 100-300 attempts on 5 executors, which
    // every attempt of the pass, and every task submitted meanwhile, waited out.
    await Promise.all([...byExecutor].map(async ([executorId, items]) => {
      // Noted before the queue write, so a fast result finds its dispatch time. Attempts handed
      // to a launching executor wait for its registration: their start says nothing of its queue.
      const ex = this.o.executors.get(executorId);
      this.windows.dispatched(executorId, ex?.slots ?? items.length, items.map((i) => i.payload.attemptId), this.o.clock.now(), ex?.state === 'RUNNING');
      try {
        await this.o.dispatch.enqueueMany(executorId, items.map((i) => i.payload));
        for (const i of items) this.o.metrics?.placements.inc({ locality: LOCALITY_NAMES[i.level] });
      } catch (err) {
        this.log.warn({ err: String(err), executorId, attempts: items.length }, 'enqueue failed; the tasks go back to pending');
        for (const i of items) {
          this.release(executorId);
          this.windows.forget(executorId, i.payload.attemptId);
          await this.o.jobs.abandonAttempt(i.payload.taskId, i.payload.attemptId, 'ENQUEUE_FAILED');
        }
      }
    }));

    // 5. Release idle or drained executors: killing the Mesos task makes the executor drain and exit.
    for (const r of plan.releases) {
      const ex = this.o.executors.get(r.executorId);
      if (!ex || ex.state === 'DRAINING' && r.reason === 'drained' && (this.busy.get(ex.executorId) ?? 0) > 0) continue;
      await this.o.executors.update(r.executorId, { state: 'DRAINING', message: `released: ${r.reason}` });
      await this.o.driver.kill(ex.taskId, ex.agentId).catch((err: unknown) => this.log.warn({ err: String(err) }, 'kill failed'));
      this.log.info({ executorId: r.executorId, reason: r.reason }, 'releasing executor');
    }

    // 6. Offer flow: suppress when nothing (tasks or volume work) needs offers; revive when
    // placement says so (offers parked before the newest work, or work waiting while suppressed).
    if (plan.suppress && !this.suppressed && this.subscribed) {
      await this.o.driver.suppress();
      this.suppressed = true;
      this.park(gen, 0);
    } else if (plan.revive && this.subscribed) {
      await this.o.driver.revive();
      this.suppressed = false;
      this.lastReviveAt = plan.now;
      // A REVIVE clears every filter: nothing is parked any more.
      this.parkedGen = undefined;
      this.parkedUntil = 0;
    }
    // New executors take their tasks in the next pass (a launching executor queues attempts
    // until it registers): run it now rather than at the next tick.
    if (plan.launches.length > 0) this.requestPass();

    this.lastReasons = new Map(plan.reasons.map((r) => [r.taskId, r]));
    this.updateGauges();
  }

  private occupy(executorId: string): void {
    this.busy.set(executorId, (this.busy.get(executorId) ?? 0) + 1);
    const ex = this.o.executors.get(executorId);
    if (ex && ex.idleSince !== undefined) void this.o.executors.update(executorId, { idleSince: undefined });
  }

  private release(executorId: string): void {
    const n = Math.max(0, (this.busy.get(executorId) ?? 0) - 1);
    this.busy.set(executorId, n);
    if (n === 0) void this.o.executors.update(executorId, { idleSince: this.o.clock.now() });
  }

  private updateGauges(): void {
    const m = this.o.metrics;
    if (!m) return;
    // Every known tenant gets a value (0 when idle), so a series drops to zero rather than vanishing.
    const pending = this.o.jobs.pendingByTenant();
    const running = this.o.jobs.runningByTenant();
    const tenants = new Set([...this.o.tenants().map((t) => t.name), ...pending.keys(), ...running.keys()]);
    for (const tenant of tenants) {
      m.pendingTasks.set({ tenant }, pending.get(tenant) ?? 0);
      m.runningTasks.set({ tenant }, running.get(tenant) ?? 0);
    }
    m.executors.reset();
    m.queueDepth.reset();
    m.dispatchWindow.reset();
    m.executorPrefetch.reset();
    for (const e of this.o.executors.all()) {
      m.executors.inc({ state: e.state });
      m.queueDepth.set({ executor: e.executorId }, this.busy.get(e.executorId) ?? 0);
      if (e.state !== 'GONE') m.executorPrefetch.set({ executor: e.executorId }, this.aheadNow.get(e.executorId) ?? 0);
    }
    for (const [executor, window] of this.windows.entries()) m.dispatchWindow.set({ executor }, window);
  }

  private async reconcile(): Promise<void> {
    const tasks = this.o.executors.all().map((e) => ({ taskId: e.taskId, agentId: e.agentId }));
    // Explicit first (the executors we know), then implicit (anything else the master has for us).
    this.unreconciled = new Map(tasks.map((t) => [t.taskId, t.agentId]));
    this.reconcileTimer?.cancel();
    if (tasks.length > 0) {
      await this.o.driver.reconcile(tasks);
      this.scheduleReconcileRetry(1);
    }
    await this.o.driver.reconcile([]);
    const ops = (await this.o.volumes?.operationsToReconcile?.()) ?? [];
    if (ops.length > 0 && this.o.driver.reconcileOperations) await this.o.driver.reconcileOperations(ops);
  }

  /**
   * Explicit reconciliation is retried, with backoff, for the executors the master has not answered
   * for yet: after a master failover, agents re-register over minutes and the master answers for
   * a task on a not-yet-registered agent only later, or not at all (docs/reconciliation.md).
   */
  private scheduleReconcileRetry(round: number): void {
    if (this.closed || round > 8) return;
    const delay = Math.min(30_000, 1000 * 2 ** (round - 1));
    this.reconcileTimer = this.o.clock.setTimer(delay, () => {
      this.reconcileTimer = undefined;
      if (!this.subscribed || this.unreconciled.size === 0) return;
      const left = [...this.unreconciled].map(([taskId, agentId]) => ({ taskId, agentId }));
      this.log.info({ tasks: left.length, round }, 'reconciling executors the master has not answered for yet');
      void this.o.driver.reconcile(left).catch((err: unknown) => this.log.warn({ err: String(err) }, 'reconciliation retry failed'));
      this.scheduleReconcileRetry(round + 1);
    });
  }

  private async handleStatus(status: TaskStatus): Promise<void> {
    const taskId = status.task_id.value;
    this.unreconciled.delete(taskId);
    let handled = false;
    try {
      const ex = this.o.executors.get(taskId);
      if (!ex) {
        // An executor we have no record of (a crash between ACCEPT and the record, or another
        // incarnation's): kill it rather than leave it orphaned.
        if (!TERMINAL_TASK_STATES.has(status.state) && taskId.startsWith('locus-exec-')) {
          this.log.warn({ taskId }, 'unknown Locus executor reported by the master; killing it');
          await this.o.driver.kill(taskId, status.agent_id?.value);
        }
        // Untracked updates (the TASK_KILLED of an executor already given up, a resend after a lost
        // acknowledgement) are acknowledged too: a genuine agent resends an unacknowledged update
        // for ever and holds back every later update of that task behind it.
        handled = true;
        return;
      }
      switch (status.state) {
        case 'TASK_RUNNING': {
          const timer = this.unreachable.get(taskId);
          if (timer) {
            timer.cancel();
            this.unreachable.delete(taskId);
          }
          if (ex.state === 'LAUNCHING') {
            // Mesos says the process runs; it takes attempts once it registered its queue.
            // Waiting here would stall the event stream, so readiness is awaited on the side.
            void this.o.launcher.ready(taskId).then(async () => {
              // Registered. Its agent's start failures are cleared only once it finished an attempt
              // (onAttemptResult): one that dies on its first attempts would clear them every round.
              const cur = this.o.executors.get(taskId);
              if (cur?.state === 'LAUNCHING') await this.o.executors.update(taskId, { state: 'RUNNING' });
              this.requestPass();
            }, (err: unknown) => {
              // Gone meanwhile (its task ended while the registration was awaited, and its record
              // is GONE or removed): settled already, and its wait was stopped by its retirement.
              if (this.o.executors.get(taskId)?.state !== 'LAUNCHING') return;
              this.log.warn({ executorId: taskId, err: String(err) }, 'executor never registered; killing it');
              // Its process ran but never took work: the TASK_KILLED this kill brings is a start failure.
              this.unregistered.set(taskId, `registered no queue (${String(err)})`);
              void this.o.driver.kill(taskId, ex.agentId).catch(() => undefined);
            }).catch((err: unknown) => {
              // Recording it RUNNING failed (the store is gone, as when the framework stops meanwhile):
              // the next reconciliation finds the executor again; nothing may escape unhandled.
              this.log.warn({ executorId: taskId, err: String(err) }, 'could not record the executor as running');
            });
          }
          break;
        }
        case 'TASK_UNREACHABLE': {
          // Outputs on an unreachable host cannot be read while it is: recompute them now rather
          // than stall the stages that read them for as long as the partition lasts.
          void this.o.jobs.hostLost(ex.hostname, 'agent unreachable').catch((err: unknown) => this.log.warn({ err: String(err) }, 'recomputing lost outputs failed'));
          // Partition-aware: the agent may come back; wait a bounded time before retrying elsewhere.
          if (!this.unreachable.has(taskId)) {
            const grace = this.o.unreachableGraceMs ?? 60_000;
            this.unreachable.set(taskId, this.o.clock.setTimer(grace, () => {
              this.unreachable.delete(taskId);
              void this.executorGone(taskId, 'EXECUTOR_LOST', `unreachable for ${grace} ms`);
            }));
          }
          break;
        }
        default:
          // TASK_UNKNOWN is the master's answer for a task it does not know (after agent loss).
          if (TERMINAL_TASK_STATES.has(status.state) || status.state === 'TASK_UNKNOWN') {
            const said = `${status.state}${status.reason ? ` (${status.reason})` : ''}${status.message ? `: ${status.message}` : ''}`;
            // Ended before it ever registered, by its own doing (not stopped by Locus, not lost with
            // its agent): a start failure, which holds launches on its agent (executor-starts.ts).
            const never = this.unregistered.get(taskId);
            const startFailed = ex.state === 'LAUNCHING' && (status.state === 'TASK_KILLED' ? never !== undefined : startFailureOf(status));
            // Registered, handed attempts, and failed before it finished any: one that dies whenever
            // it runs work (a broken runner, a crash on the payload) is relaunched for ever too.
            // Not one draining or released (DRAINING), killed (TASK_KILLED, or GONE already when
            // Locus declared it lost), lost with its agent, or idle when it died.
            const crashedUnproven = !startFailed && ex.state === 'RUNNING' && !this.worked.has(taskId) && crashOf(status)
              && this.o.jobs.attemptsOnExecutor(taskId).length > 0;
            if (startFailed) await this.executorGone(taskId, EXECUTOR_START_FAILED, never === undefined ? said : `${said} after it ${never}`);
            else if (crashedUnproven) await this.executorGone(taskId, EXECUTOR_START_FAILED, `${said} after it registered, before it finished any attempt`);
            else await this.executorGone(taskId, status.state === 'TASK_FINISHED' || status.state === 'TASK_KILLED' ? 'EXECUTOR_EXITED' : 'EXECUTOR_LOST', said);
          }
      }
      handled = true;
    } finally {
      // Acknowledged only once handled: an update whose effects were not recorded (Redis down)
      // stays unacknowledged, so the master sends it again.
      if (handled && status.uuid && status.agent_id) {
        await this.o.driver.acknowledge(status.agent_id.value, taskId, status.uuid).catch((err: unknown) => {
          this.log.warn({ err: String(err), taskId }, 'acknowledge failed (the master will resend)');
        });
      }
    }
  }

  private async handleInverseOffers(inverse: readonly { id: string; agentId: string | undefined }[]): Promise<void> {
    for (const inv of inverse) {
      if (!inv.agentId) continue;
      for (const ex of this.o.executors.onAgent(inv.agentId)) {
        if (ex.state !== 'DRAINING') await this.o.executors.update(ex.executorId, { state: 'DRAINING', message: 'agent scheduled for maintenance' });
      }
      this.log.info({ agentId: inv.agentId }, 'draining agent for maintenance');
    }
    if (this.o.driver.acceptInverseOffers) await this.o.driver.acceptInverseOffers(inverse.map((i) => i.id));
    this.requestPass();
  }

  private async executorGone(executorId: string, reason: string, message: string): Promise<void> {
    const ex = this.o.executors.get(executorId);
    if (!ex) return;
    this.log.info({ executorId, reason, message }, 'executor gone');
    await this.o.executors.update(executorId, { state: 'GONE', message });
    const startFailed = reason === EXECUTOR_START_FAILED;
    const lostAs = startFailed ? `executor ${executorId} on ${ex.hostname} ${ex.state === 'RUNNING' ? 'failed before it finished any attempt' : 'failed to start'}: ${message}; not counted against retries` : undefined;
    const lost = this.o.jobs.attemptsOnExecutor(executorId);
    for (const a of lost) await this.loseAttempt(a.taskId, a.attemptId, executorId, reason, lostAs);
    this.unregistered.delete(executorId);
    this.worked.delete(executorId);
    // After its attempts were given back. Only their jobs have seen an executor fail to start
    // for them: a job waiting on other agents (its data's, its constraints') has not.
    if (startFailed) await this.noteStartFailure(ex, message, new Set(lost.map((a) => parseTaskId(a.taskId)?.jobId).filter((j): j is string => j !== undefined)));
    this.busy.delete(executorId);
    this.windows.dropExecutor(executorId);
    this.prefetch.dropExecutor(executorId);
    this.aheadNow.delete(executorId);
    for (const v of ex.volumes) {
      await this.o.volumes?.release?.(v, executorId).catch((err: unknown) => this.log.warn({ err: String(err), volumeId: v }, 'releasing a volume failed'));
    }
    await this.o.launcher.retire(executorId).catch((err: unknown) => this.log.warn({ err: String(err), executorId }, 'retiring executor failed'));
    // The host's last executor took its block server with it: outputs committed there that a
    // running job still reads can no longer be served, so they are recomputed (executor placement
    // keeps an executor on such hosts, so this is a crash or a lost agent, not an idle release).
    const live = this.o.executors.all().some((e) => e.hostname === ex.hostname && e.executorId !== executorId && (e.state === 'LAUNCHING' || e.state === 'RUNNING' || e.state === 'DRAINING'));
    if (!live) await this.o.jobs.hostLost(ex.hostname, `no executor left on the host (${reason})`).catch((err: unknown) => this.log.warn({ err: String(err) }, 'recomputing lost outputs failed'));
    this.requestPass();
  }

  /**
   * An executor failed to start: its agent's launches wait (a hold that doubles per consecutive
   * failure), and jobs that can get an executor nowhere give up (executor-starts.ts).
   */
  private async noteStartFailure(ex: ExecutorRecord, message: string, jobsLost: ReadonlySet<string>): Promise<void> {
    const now = this.o.clock.now();
    // `ex` as it was before it was declared gone: RUNNING means it had registered.
    const agent = this.starts.failed(ex.agentId, ex.hostname, ex.launchedAt, message, now, jobsLost, ex.state === 'RUNNING');
    if (!this.heldAgents.has(ex.agentId)) {
      this.heldAgents.set(ex.agentId, { hostname: ex.hostname, rack: ex.rack, attributes: ex.attributes, volumes: ex.volumes, free: undefined });
    }
    this.o.metrics?.executorStartFailures.inc({ host: ex.hostname });
    this.log.warn({ executorId: ex.executorId, host: ex.hostname, failures: agent.failures, holdMs: agent.heldUntil - now, message }, 'executor failed to start; launches on its agent wait');
    // Registered executors (draining ones too: they may still be running attempts) can still take
    // the waiting work: nothing gives up while one serves.
    const live = this.o.executors.all();
    const inService = live.some((e) => e.state === 'RUNNING' || e.state === 'DRAINING');
    // Launches not yet decided (one after its agent's last failure may still register) hold it off too.
    const verdict = this.starts.giveUp(now, inService, live.filter((e) => e.state === 'LAUNCHING'));
    if (verdict === undefined) return;
    for (const jobId of verdict.jobs) {
      const failed = await this.o.jobs.giveUp(jobId, verdict.message).catch((err: unknown) => {
        this.log.warn({ err: String(err), jobId }, 'failing a job that can get no executor failed; the next start failure tries again');
        return false;
      });
      if (failed) this.o.metrics?.jobsGaveUpOnExecutors.inc();
    }
  }

  private async loseAttempt(taskId: string, attemptId: string, executorId: string, reason: string, message = `executor ${executorId} lost`): Promise<void> {
    const now = this.o.clock.now();
    await this.o.jobs.finishAttempt({
      attemptId, taskId, state: 'LOST', exitCode: null, reason, message,
      startedAt: now, finishedAt: now, host: '',
    });
  }
}

/**
 * What an offer holds for executors once its volume operations have run:
 * the unreserved scalars each RESERVE takes are subtracted, and the labelled
 * resources of every holding the operations touch are left out (a LAUNCH
 * naming a volume or reservation being created or torn down in the same
 * ACCEPT would race the operation). Other holdings' volumes stay, so a task
 * pinned to another volume on that agent is not held back. Pure; the offer
 * itself is not changed.
 */
export function afterVolumeOperations(offer: Offer, operations: readonly Operation[]): Offer {
  const reserved: Record<string, number> = {};
  const touched = new Set<string>();
  const note = (rs: readonly Resource[] | undefined): void => {
    for (const r of rs ?? []) {
      const tag = tagOf(r);
      if (tag) touched.add(tag.holdingId);
    }
  };
  for (const op of operations) {
    switch (op.type) {
      case 'RESERVE':
        note(op.reserve.resources);
        for (const r of op.reserve.resources ?? []) if (r.scalar) reserved[r.name] = (reserved[r.name] ?? 0) + r.scalar.value;
        break;
      case 'UNRESERVE':
        note(op.unreserve.resources);
        break;
      case 'CREATE':
        note(op.create.volumes);
        break;
      case 'DESTROY':
        note(op.destroy.volumes);
        break;
      default:
        break;
    }
  }
  const out: Resource[] = [];
  for (const r of offer.resources) {
    const tag = tagOf(r);
    if (tag && touched.has(tag.holdingId)) continue;
    const take = reserved[r.name] ?? 0;
    const unreserved = (r.reservations?.length ?? 0) === 0 && r.reservation === undefined && (r.role === undefined || r.role === '*') && r.disk === undefined;
    if (!r.scalar || take <= 0 || !unreserved) {
      out.push(r);
      continue;
    }
    const used = Math.min(take, r.scalar.value);
    reserved[r.name] = Math.round((take - used) * 1000) / 1000;
    const left = Math.round((r.scalar.value - used) * 1000) / 1000;
    if (left > 0) out.push({ ...r, scalar: { value: left } });
  }
  return { ...offer, resources: out };
}
