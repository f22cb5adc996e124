/**
 * The vocabulary of placement: what a pass reads (a Snapshot plus the
 * PendingIndex), what it decides (a Plan), and the coded reasons it gives when
 * a task stays pending. Everything here is plain data so the coordinator can
 * build snapshots from Mesos offers and its own records, and apply Plans.
 *
 * Placement is pure: time arrives as `snapshot.now` (milliseconds), never from
 * a clock, so a pass can be replayed exactly.
 */
import type { ResourceVector } from '../../core/resources.js';
import type { LocalityLevel } from '../../core/locality.js';

/**
 * A hard placement constraint, never relaxed. The shape matches the job spec's
 * constraints (src/scheduler/jobs/spec.ts) so they pass through unchanged.
 */
export type Constraint =
  | { readonly kind: 'attribute'; readonly attribute: string; readonly equals: string }
  | { readonly kind: 'hostname'; readonly equals: string }
  | { readonly kind: 'hostname-not'; readonly values: readonly string[] };

/** How long a task waits for each locality level (same shape as the job spec's `locality`). */
export type LocalityPolicy =
  | { readonly mode: 'wait'; readonly nodeWaitMs: number; readonly rackWaitMs: number }
  | { readonly mode: 'node-only' };

/**
 * One task waiting for a slot. Tasks of one job should share their
 * `resources`, `constraints`, `locality` and `avoidHosts` objects: the index
 * keeps references, so sharing is what keeps a million pending tasks small.
 */
export interface PendingTask {
  readonly taskId: string;
  readonly jobId: string;
  readonly tenant: string;
  /** Higher runs first within a tenant. */
  readonly priority: number;
  /** What one attempt needs; it must fit one executor slot. */
  readonly resources: ResourceVector;
  /** Agent hostnames holding the task's input (block replicas), best first. */
  readonly preferredHosts: readonly string[];
  /** Racks of those hosts, deduplicated. */
  readonly preferredRacks: readonly string[];
  /** Bytes of input, used to rank agents for new executors (0 when unknown). */
  readonly inputBytes?: number;
  readonly constraints?: readonly Constraint[];
  /** A persistent volume the task must run next to (a hard pin: only executors holding it). */
  readonly volumeId?: string;
  /** undefined → PlacementOptions.defaultLocality. */
  readonly locality?: LocalityPolicy;
  /** Hosts where this task failed repeatedly; never placed there again. */
  readonly avoidHosts?: readonly string[];
  /**
   * Its last attempt could not reach its input from the host it ran on: it waits out its node
   * locality wait for one of its preferred hosts even when none has an executor or an offer now
   * (an agent whose offers this framework declined comes back with a REVIVE). Otherwise that wait
   * counts zero, and the task goes straight back to a host that cannot read its input: a dataset
   * held only by hosts without an executor has no block server to serve it elsewhere.
   */
  readonly awaitDataHosts?: boolean;
  /** When the task became pending (ms). Submission order within a job follows it. */
  readonly pendingSince: number;
}

/** A maintenance window announced for an agent (Mesos `Unavailability`). */
export interface Unavailability {
  /** Start of the window, ms. */
  readonly start: number;
  /** Length in ms; undefined means until further notice. */
  readonly durationMs?: number;
}

/** One outstanding Mesos offer, reduced to what placement needs. */
export interface OfferView {
  readonly offerId: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly rack?: string;
  readonly attributes?: Readonly<Record<string, string>>;
  /** Resources offered to the framework's role (unreserved plus its reservations). */
  readonly free: ResourceVector;
  /** Persistent volumes of the framework present in this offer. */
  readonly volumes?: readonly string[];
  readonly unavailability?: Unavailability;
}

/** One running (or registered-and-launching) Locus executor. */
export interface ExecutorView {
  readonly executorId: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly rack?: string;
  readonly attributes?: Readonly<Record<string, string>>;
  /** What one slot offers a task. */
  readonly slotResources: ResourceVector;
  readonly slots: number;
  /** Slots not busy: what executor growth, idleness and release go by. */
  readonly freeSlots: number;
  /**
   * How many tasks may go to it now (undefined = freeSlots). Fewer than its free slots while the
   * coordinator's dispatch window holds some back (the executor queues attempts it cannot start
   * yet); more while it is sent its prefetch (attempts it holds prepared for the next container
   * to exit, see scheduler/prefetch.ts). Task placement fills these only; executor placement
   * still counts free slots, so neither launches or holds back another executor.
   */
  readonly dispatchSlots?: number;
  /** Volumes mounted into this executor. */
  readonly volumes?: readonly string[];
  /** Set when the executor serves one tenant only (volume executors always do). */
  readonly tenant?: string;
  /** Since when at least one slot has been free (ms); the delay-scheduling clock of its slots. */
  readonly freeSince?: number;
  /** Since when no slot has been busy (ms); drives release after the idle timeout. */
  readonly idleSince?: number;
  /** The agent is being drained (maintenance): no new tasks. */
  readonly draining?: boolean;
  /** Launched and not registered yet (it takes tasks already: they wait until it registers). */
  readonly launching?: boolean;
}

/** A tenant as fair share sees it. */
export interface TenantView {
  readonly name: string;
  /** DRF weight, > 0. */
  readonly weight: number;
  /** Upper bound on the resources its running tasks may hold; undefined = none. */
  readonly quota?: Partial<ResourceVector>;
  /** Resources its running tasks hold now. */
  readonly usage: ResourceVector;
}

/** Where a persistent volume lives (from the volume store), for explain and maintenance. */
export interface VolumeLocation {
  readonly agentId: string;
  readonly hostname: string;
  readonly unavailability?: Unavailability;
}

/** Everything a pass reads besides the pending index. Never mutated by placement. */
export interface Snapshot {
  /** The decision time, ms. */
  readonly now: number;
  readonly offers: readonly OfferView[];
  readonly executors: readonly ExecutorView[];
  /** Tenants by name; a task's tenant missing here gets weight 1, no quota, no usage. */
  readonly tenants: readonly TenantView[];
  /** Running tasks per job (fairness between the jobs of one tenant). */
  readonly runningByJob?: ReadonlyMap<string, number>;
  /** Known volume locations. */
  readonly volumes?: ReadonlyMap<string, VolumeLocation>;
  /**
   * Volumes whose delete was asked for (or done). Nothing new starts for them: their tasks get
   * no slot and no executor, an executor holding one takes no task at all and is released as
   * soon as it is idle (so Mesos gives the volume back and it can be torn down).
   */
  readonly goneVolumes?: ReadonlySet<string>;
  /** Whether the coordinator has suppressed offers. */
  readonly suppressed?: boolean;
  /** When REVIVE was last sent (ms), for rate limiting. */
  readonly lastReviveAt?: number;
  /**
   * Work besides pending tasks needs offers (volume and reservation
   * operations): no SUPPRESS, short decline filters, REVIVE while suppressed.
   */
  readonly otherWork?: boolean;
  /**
   * Offers are held back (suppressed, or declined with a filter still running)
   * by a decision made before the newest work appeared: REVIVE at once,
   * without the rate limit, so new work never waits out a filter set for old work.
   */
  readonly offersParked?: boolean;
  /**
   * Hosts holding committed outputs that running jobs' later stages still read. Their block
   * server runs in an executor, so the last executor on such a host is never idle-released.
   */
  readonly outputHosts?: ReadonlySet<string>;
}

/** Tunables of a pass; every field has a default (DEFAULT_OPTIONS). */
export interface PlacementOptions {
  /** Locality policy for tasks that carry none. */
  readonly defaultLocality: LocalityPolicy;
  /**
   * The smallest slot new executors get. A task takes what it asks for: slots
   * are sized to the tasks' resources, and this floor only rounds up tasks
   * that ask for (almost) nothing.
   */
  readonly slotResources: ResourceVector;
  /** What an executor needs besides its slots. */
  readonly executorOverhead: ResourceVector;
  /** Most slots one new executor gets. */
  readonly maxSlotsPerExecutor: number;
  /** Most slots launched in one pass, in total. */
  readonly maxLaunchSlotsPerPass: number;
  /** A fully idle executor is released after this long. */
  readonly idleTimeoutMs: number;
  /** refuse_seconds for offers declined while work is pending. */
  readonly refuseSeconds: number;
  /** refuse_seconds for offers declined while nothing is pending. */
  readonly refuseSecondsIdle: number;
  /** No new executor on an agent whose maintenance starts within this long. */
  readonly maintenanceHorizonMs: number;
  /** Least time between two REVIVE hints. */
  readonly reviveIntervalMs: number;
  /** Most index entries examined per bucket lookup (bounds work on skewed queues). */
  readonly scanLimit: number;
  /** Most explain records a Plan carries. */
  readonly explainLimit: number;
  /** Executor ids for launches; deterministic by default so a pass replays exactly. */
  readonly executorIdFor: (offerId: string, index: number) => string;
}

/** An executor to start on an offer (Mesos ACCEPT with a LAUNCH). */
export interface ExecutorLaunch {
  readonly executorId: string;
  readonly offerId: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly slots: number;
  readonly slotResources: ResourceVector;
  /** slots × slotResources + overhead: what to take from the offer. */
  readonly resources: ResourceVector;
  /** The volume to mount (the executor then serves only its tenant). */
  readonly volumeId?: string;
  /** Set for dedicated executors. */
  readonly tenant?: string;
  /** Why here: pending tasks' data is on this agent, a volume is here, or work that may run anywhere. */
  readonly why: 'data' | 'volume' | 'rack' | 'any';
}

/** A task to hand to an executor's queue. */
export interface Assignment {
  readonly taskId: string;
  readonly jobId: string;
  readonly tenant: string;
  readonly executorId: string;
  readonly hostname: string;
  readonly level: LocalityLevel;
}

/**
 * A Plan's assignments as columns: assignment k (0 ≤ k < length) is read
 * field by field. A pass places up to a hundred thousand tasks; one object
 * per assignment was a third of its time (allocation, then the scavenger
 * promoting them), so the pass writes three numbers per placement and the
 * fields are derived here only when a consumer reads them.
 */
export interface AssignmentColumns {
  readonly length: number;
  taskId(k: number): string;
  jobId(k: number): string;
  tenant(k: number): string;
  executorId(k: number): string;
  hostname(k: number): string;
  level(k: number): LocalityLevel;
}

/** An offer to decline (never hold offers). */
export interface Decline {
  readonly offerId: string;
  readonly refuseSeconds: number;
}

/** An executor to shut down. */
export interface Release {
  readonly executorId: string;
  /** 'volume-delete': it holds a volume whose delete was asked for, and runs nothing. */
  readonly reason: 'idle' | 'drained' | 'volume-delete';
}

/** Coded reasons a pending task is not running. */
export type ReasonCode =
  | 'NOT_PENDING'
  | 'PLACEABLE'
  | 'NO_OFFER_FROM_DATA_HOSTS'
  | 'WAITING_FOR_LOCALITY'
  | 'NODE_ONLY'
  | 'OVER_QUOTA'
  | 'CONSTRAINT_UNMET'
  | 'VOLUME_AGENT_UNAVAILABLE'
  | 'NO_OFFER_FROM_VOLUME_AGENT'
  | 'VOLUME_DELETED'
  | 'FAIR_SHARE'
  | 'DISPATCH_WINDOW'
  | 'NO_CAPACITY';

/** Why one task is pending; `until` says when a waiting task may take a less local slot. */
export interface Reason {
  readonly taskId: string;
  readonly code: ReasonCode;
  readonly message: string;
  readonly until?: number;
}

/** Counters of one pass, for metrics and benchmarks. */
export interface PassStats {
  readonly pending: number;
  readonly placed: number;
  readonly nodeLocal: number;
  readonly rackLocal: number;
  readonly anyLevel: number;
  readonly freeSlotsLeft: number;
  /** Index entries examined: the pass's work, for bounding it. */
  readonly examined: number;
}

/** The outcome of one pass; only the coordinator acts on it. */
export interface Plan {
  readonly now: number;
  readonly launches: readonly ExecutorLaunch[];
  /** The tasks to hand to executors, in decision order: what the coordinator reads. */
  readonly assigned: AssignmentColumns;
  /**
   * The same as one object each, built from `assigned` on first read (tests,
   * tools); a consumer on the hot path reads `assigned` and allocates nothing.
   */
  readonly assignments: readonly Assignment[];
  /** Every offer not used by a launch, each exactly once. */
  readonly declines: readonly Decline[];
  readonly releases: readonly Release[];
  /** Nothing left that needs offers: SUPPRESS (if not already). */
  readonly suppress: boolean;
  /** Work needs offers and the coordinator is suppressed: REVIVE (already rate limited). */
  readonly revive: boolean;
  /** Reasons for tasks this pass examined and left pending (at most explainLimit). */
  readonly reasons: readonly Reason[];
  readonly stats: PassStats;
}
