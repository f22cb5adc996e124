/**
 * Executors that fail to start. An attempt lost with its executor is never
 * counted against its task's retries (the executor's death is not the task's
 * fault), so an executor that can never start (a broken executor command or
 * image, a container runtime broken on an agent) would otherwise be launched
 * again and again, for ever, its attempts lost each time and the job never
 * ending. This module keeps the rule that stops that:
 *
 * - a *start failure* is an executor that ended before it registered its
 *   queue, by its own doing (see startFailureOf), not stopped by Locus and
 *   not lost with its agent; or one that registered and then failed
 *   (crashOf) with attempts on it before it finished any: an executor that
 *   dies whenever it runs work never serves either, and registration alone
 *   would otherwise clear its agent's count on every round;
 * - each one holds new executor launches on its agent for a while that
 *   doubles with each consecutive failure there (backoffBaseMs up to
 *   backoffMaxMs); an executor on the agent that finishes an attempt clears
 *   it. A failure counts once per launch round: executors launched together
 *   before the agent's last failure add nothing more;
 * - an agent with failuresToGiveUp consecutive failures is *failing*. A job
 *   that waited for executors through at least one start failure (since an
 *   executor last finished an attempt anywhere) gives up, EXECUTOR_START_FAILED, when
 *   no executor is in service and every agent that offered resources lately
 *   is failing: nowhere left that could start one for it.
 *
 * Pure bookkeeping: the coordinator feeds it events and acts on its answers.
 */

/** The code a job that gave up ends with (first word of its message), and the reason of attempts lost to a start failure. */
export const EXECUTOR_START_FAILED = 'EXECUTOR_START_FAILED';
/** The explain code of a task waiting while executor launches are held on agents where they failed. */
export const EXECUTOR_START_BACKOFF = 'EXECUTOR_START_BACKOFF';

/** Tunables of the rule (DEFAULT_EXECUTOR_STARTS). */
export interface ExecutorStartOptions {
  /** How long launches on an agent wait after its first start failure (ms); doubled per further consecutive failure. */
  readonly backoffBaseMs: number;
  /** The longest such wait (ms). */
  readonly backoffMaxMs: number;
  /** Consecutive start failures (launch rounds) after which an agent is failing. */
  readonly failuresToGiveUp: number;
  /**
   * And for how long at least its failures must have gone on (ms, from the first of the run):
   * a registry's rate limit, a fetch server restarting or an image pulled slowly pass, and jobs
   * failed on their account would have run a minute later (`executor-start-give-up`).
   */
  readonly giveUpAfterMs: number;
  /** For how long after its last offer an agent still counts as one executors might start on (ms). */
  readonly offerMemoryMs: number;
}

/**
 * 1 s doubling to a minute (Marathon's launch backoff starts at 1 s too); three rounds over a
 * minute at least make an agent failing (Spark stops launching executors on an agent after two
 * failures, for good): with these an executor that cannot start anywhere fails its jobs about a
 * minute after the first failure, five or six launches later.
 */
export const DEFAULT_EXECUTOR_STARTS: ExecutorStartOptions = {
  backoffBaseMs: 1000,
  backoffMaxMs: 60_000,
  failuresToGiveUp: 3,
  giveUpAfterMs: 60_000,
  offerMemoryMs: 60_000,
};

/** What Mesos said when an executor's task ended, as far as the rule reads it. */
export interface EndedStatus {
  readonly state: string;
  readonly reason?: string | undefined;
}

/**
 * Terminal states and reasons that say the agent or the master lost the task, not that the
 * executor failed: an agent gone, restarted or partitioned, a reconciliation answer, an offer
 * rescinded under the launch, a launch that reached the agent before the reservation or volume
 * it uses (TASK_DROPPED REASON_RESOURCES_UNKNOWN: the agent drops it because "restarting the task
 * may succeed" once the checkpointed resources arrive, slave.cpp). Such an end is not held
 * against the executor's start.
 */
const NOT_THE_EXECUTOR = /^REASON_(AGENT|SLAVE)_|^REASON_(MASTER_DISCONNECTED|RECONCILIATION|FRAMEWORK_REMOVED|INVALID_OFFERS|RESOURCES_UNKNOWN|TASK_UNKNOWN|GC_ERROR)$/;

/**
 * Whether the end of a registered executor's Mesos task is its own failure, as counted against
 * one that never finished an attempt (the coordinator checks that, and that it held attempts).
 * Only TASK_FAILED, and not for an agent's or master's reason nor a preemption: TASK_KILLED is a
 * kill (Locus releasing or draining it, an operator), TASK_LOST and TASK_DROPPED of a running
 * task are agents and partitions, and TASK_FINISHED is an exit after a drain or its idle timeout.
 */
export function crashOf(status: EndedStatus): boolean {
  if (status.state !== 'TASK_FAILED') return false;
  return status.reason === undefined || (!NOT_THE_EXECUTOR.test(status.reason) && status.reason !== 'REASON_CONTAINER_PREEMPTED');
}

/**
 * Whether the end of a launching executor's Mesos task (it never registered) is a start failure.
 * TASK_KILLED is not (Locus or an operator killed it; the registration timeout is told apart by
 * the coordinator), nor are the ends that mean the agent went away (TASK_GONE, TASK_GONE_BY_OPERATOR,
 * TASK_UNKNOWN, agent and reconciliation reasons). TASK_FINISHED is: the process exited 0 before
 * it ever took work, which an executor only does when it cannot run (its usage printed, a wrong
 * entry point).
 */
export function startFailureOf(status: EndedStatus): boolean {
  if (status.state !== 'TASK_FAILED' && status.state !== 'TASK_ERROR' && status.state !== 'TASK_LOST'
    && status.state !== 'TASK_DROPPED' && status.state !== 'TASK_FINISHED') return false;
  return status.reason === undefined || !NOT_THE_EXECUTOR.test(status.reason);
}

/** One agent's consecutive start failures. */
export interface AgentStartFailures {
  readonly agentId: string;
  readonly hostname: string;
  /** Consecutive failed launch rounds since an executor last registered there. */
  readonly failures: number;
  /** No executor is launched on the agent before this (ms). */
  readonly heldUntil: number;
  /** When the last counted failure was recorded (ms). */
  readonly lastAt: number;
  /** When the first failure of this run of failures was recorded (ms). */
  readonly since: number;
  /** The last failure's Mesos state, reason and message. */
  readonly lastMessage: string;
  /** Jobs that lost attempts to this run of failures (their tasks ran there: the hold is theirs to wait out). */
  readonly jobs: ReadonlySet<string>;
  /** Whether a failure of this run was an executor that registered and then failed before finishing an attempt. */
  readonly afterRegistering: boolean;
}

/** How an agent's run of failures ended its executors, for messages ("… ended before the executor registered"). */
export function endedBefore(a: AgentStartFailures): string {
  return a.afterRegistering ? 'ended before the executor registered or finished an attempt' : 'ended before the executor registered';
}

/** Jobs that give up, with the message they fail with. */
export interface GiveUp {
  readonly jobs: readonly string[];
  readonly message: string;
}

/** The start-failure book (see the module's comment). */
export class ExecutorStarts {
  readonly options: ExecutorStartOptions;
  private readonly agents = new Map<string, AgentStartFailures>();
  private readonly offeredAt = new Map<string, number>();
  /** Jobs that lost attempts to a start failure since an executor last registered. */
  private readonly witnesses = new Set<string>();

  constructor(options: Partial<ExecutorStartOptions> = {}) {
    this.options = { ...DEFAULT_EXECUTOR_STARTS, ...options };
  }

  /** An agent offered resources. */
  offered(agentId: string, now: number): void {
    this.offeredAt.set(agentId, now);
  }

  /**
   * An executor launched at `launchedAt` on the agent ended before it registered (or, with
   * `registered`, before it finished an attempt). `jobsLost`: the jobs whose attempts were queued
   * for it and lost with it (a job waiting for other agents, its data's or its constraints', has
   * seen no executor fail for it and never gives up on this). Returns the agent's failures as now
   * recorded.
   */
  failed(agentId: string, hostname: string, launchedAt: number, message: string, now: number, jobsLost: Iterable<string>, registered = false): AgentStartFailures {
    const lost = [...jobsLost];
    for (const jobId of lost) this.witnesses.add(jobId);
    const cur = this.agents.get(agentId);
    const jobs = lost.length === 0 && cur !== undefined ? cur.jobs : new Set([...(cur?.jobs ?? []), ...lost]);
    const afterRegistering = registered || (cur?.afterRegistering ?? false);
    // Launched before the last counted failure: the same round (several executors of one offer,
    // or one launched while the first was failing) is one failure, not several.
    if (cur !== undefined && launchedAt <= cur.lastAt) {
      const same = { ...cur, lastMessage: message, jobs, afterRegistering };
      this.agents.set(agentId, same);
      return same;
    }
    const failures = (cur?.failures ?? 0) + 1;
    const hold = Math.min(this.options.backoffBaseMs * 2 ** (failures - 1), this.options.backoffMaxMs);
    const next: AgentStartFailures = { agentId, hostname, failures, heldUntil: now + hold, lastAt: now, since: cur?.since ?? now, lastMessage: message, jobs, afterRegistering };
    this.agents.set(agentId, next);
    return next;
  }

  /**
   * An executor on the agent finished an attempt: executors start and serve there, and jobs need
   * new evidence before giving up. Not its registration: one that registers and then dies on its
   * first attempt, every time, would clear the count it adds to on every round.
   */
  worked(agentId: string): void {
    this.agents.delete(agentId);
    this.witnesses.clear();
  }

  /** Until when launches on the agent are held (undefined: not held now). */
  heldUntil(agentId: string, now: number): number | undefined {
    const a = this.agents.get(agentId);
    return a !== undefined && a.heldUntil > now ? a.heldUntil : undefined;
  }

  /** Agents whose launches are held now, longest-failing first. */
  holding(now: number): AgentStartFailures[] {
    return [...this.agents.values()].filter((a) => a.heldUntil > now).sort((a, b) => b.failures - a.failures || (a.hostname < b.hostname ? -1 : 1));
  }

  /** The agent is gone (Mesos removed it): its history goes with it. */
  agentLost(agentId: string): void {
    this.agents.delete(agentId);
    this.offeredAt.delete(agentId);
  }

  /** The job ended. */
  forgetJob(jobId: string): void {
    this.witnesses.delete(jobId);
    for (const [id, a] of this.agents) {
      if (a.jobs.has(jobId)) this.agents.set(id, { ...a, jobs: new Set([...a.jobs].filter((j) => j !== jobId)) });
    }
  }

  /**
   * The jobs that give up now, if any: `inService` says whether some executor is registered and
   * serving (then waiting work may still run on it, and nothing gives up); `launching`, the
   * executors launched and not yet registered or ended. Every agent that
   * offered within offerMemoryMs must be failing; an agent that offered and has not failed may
   * yet start an executor.
   */
  giveUp(now: number, inService: boolean, launching: Iterable<{ readonly agentId: string; readonly launchedAt: number }> = []): GiveUp | undefined {
    if (inService || this.witnesses.size === 0) return undefined;
    // A launch made after its agent's last counted failure (or on an agent that never failed) is
    // a round still undecided: its executor may yet register (the agent was mended), and a job
    // failed meanwhile would have been failed for nothing. Its end, whichever, asks again.
    for (const l of launching) {
      const a = this.agents.get(l.agentId);
      if (a === undefined || l.launchedAt > a.lastAt) return undefined;
    }
    const recent = [...this.offeredAt].filter(([, at]) => at >= now - this.options.offerMemoryMs).map(([id]) => id);
    const failing: AgentStartFailures[] = [];
    for (const id of recent) {
      const a = this.agents.get(id);
      if (a === undefined || a.failures < this.options.failuresToGiveUp || now - a.since < this.options.giveUpAfterMs) return undefined;
      failing.push(a);
    }
    if (failing.length === 0) return undefined;
    failing.sort((a, b) => b.lastAt - a.lastAt);
    const shown = failing.slice(0, 3).map((a) => `${a.failures} launches in a row on ${a.hostname} ${endedBefore(a)}, the last with ${a.lastMessage}`);
    const more = failing.length > shown.length ? `; likewise on ${failing.length - shown.length} more agent(s)` : '';
    // Witnesses stay until their job ends (forgetJob): one that cannot give up yet (an attempt of
    // it still on a launching executor) is asked again at the next failure.
    return { jobs: [...this.witnesses], message: `${EXECUTOR_START_FAILED}: no executor could be started for the job's tasks: ${shown.join('; ')}${more}` };
  }
}
