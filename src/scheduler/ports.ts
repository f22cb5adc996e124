/**
 * The ports the coordinator acts through (Mesos, executors, queues, volumes)
 * and its options. Each is small so a test can hand in a real local
 * implementation or a recording stand-in.
 */
import type { Clock } from '../core/clock.js';
import type { ResourceVector } from '../core/resources.js';
import type { Logger } from '../obs/log.js';
import type { LocusMetrics } from '../obs/metrics.js';
import type { AttemptPayload } from '../executor/contract.js';
import type { Offer, Operation, OperationStatus, Resource, TaskInfo } from '../mesos/types.js';
import type { ExecutorLaunch, PlacementOptions } from './placement/index.js';
import type { ExecutorBook } from './executors.js';
import type { OfferSummary } from './offers.js';
import type { JobService } from './jobs/service.js';
import type { DispatchWindowOptions } from './dispatch-window.js';
import type { ExecutorStartOptions } from './executor-starts.js';

/** The Mesos calls the coordinator makes (the scheduler client satisfies it through a thin adapter). */
export interface MesosDriver {
  accept(offerIds: readonly string[], operations: readonly Operation[], refuseSeconds?: number): Promise<void>;
  decline(offerIds: readonly string[], refuseSeconds: number): Promise<void>;
  revive(): Promise<void>;
  suppress(): Promise<void>;
  kill(taskId: string, agentId?: string): Promise<void>;
  acknowledge(agentId: string, taskId: string, uuid: string): Promise<void>;
  acknowledgeOperationStatus(agentId: string | undefined, operationId: string, uuid: string): Promise<void>;
  reconcile(tasks: readonly { taskId: string; agentId?: string }[]): Promise<void>;
  reconcileOperations?(operations: readonly { operationId: string; agentId?: string }[]): Promise<void>;
  acceptInverseOffers?(ids: readonly string[]): Promise<void>;
}

/** Starts and retires executors: credentials, TaskInfo, queue clean-up. */
export interface ExecutorLauncher {
  taskInfo(launch: ExecutorLaunch, offer: OfferSummary, resources: readonly Resource[]): Promise<TaskInfo>;
  /** Resolves when the executor can take attempts (registered with its queue). */
  ready(executorId: string): Promise<void>;
  retire(executorId: string): Promise<void>;
}

/** Puts attempts on executor queues. */
export interface AttemptDispatch {
  /** Put attempts on an executor's queue (one batch). */
  enqueueMany(executorId: string, payloads: readonly AttemptPayload[]): Promise<void>;
  /** Track an attempt dispatched before a restart; throws when its executor is not there. */
  adopt(executorId: string, payload: AttemptPayload): Promise<void>;
  cancel(executorId: string, attemptId: string): Promise<void>;
  /** Attempts the executor takes beyond its slots and holds prepared (absent or 0: never more than slots). */
  prefetch?(executorId: string): number;
  /** The queue contract the executor registered with (undefined: not known yet, or not tracked). */
  contractOf?(executorId: string): string | undefined;
}

/** Volume operations that ride on offers (RESERVE/CREATE/DESTROY/UNRESERVE). */
export interface OfferOperationPlanner {
  /** Operations per offer this pass; offers named here are used only for these operations. */
  plan(offers: readonly Offer[], now: number): Promise<{ offerId: string; operations: Operation[] }[]>;
  onOperationStatus(status: OperationStatus): Promise<void>;
  onOffersSeen?(offers: readonly Offer[]): Promise<void>;
  onAgentLost?(agentId: string): Promise<void>;
  /** Read fresh each pass: a cached flag would race with volumes created during a pass. */
  hasPendingWork(): Promise<boolean>;
  /** Volumes whose delete was asked for (or done), read each pass: nothing new starts for them. */
  goneVolumes?(): Promise<ReadonlySet<string>>;
  /** Operations whose outcome is unknown (after a restart): reconciled after SUBSCRIBED. */
  operationsToReconcile?(): Promise<{ operationId: string; agentId?: string }[]>;
  /** An executor is launched with the volume mounted (a non-shared volume serves one executor). */
  acquire?(volumeId: string, executorId: string): Promise<void>;
  release?(volumeId: string, executorId: string): Promise<void>;
}

/** A tenant as configured (weights and quotas for fair share). */
export interface TenantSetting {
  readonly name: string;
  readonly weight: number;
  readonly quota?: Partial<ResourceVector>;
}

/** Coordinator settings. */
export interface CoordinatorOptions {
  readonly role: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics?: LocusMetrics;
  readonly jobs: JobService;
  readonly executors: ExecutorBook;
  readonly driver: MesosDriver;
  readonly launcher: ExecutorLauncher;
  readonly dispatch: AttemptDispatch;
  readonly volumes?: OfferOperationPlanner;
  readonly tenants: () => readonly TenantSetting[];
  readonly placement?: Partial<PlacementOptions>;
  /**
   * The adaptive per-executor dispatch window (dispatch-window.ts); on by default
   * (DEFAULT_DISPATCH_WINDOW); `{ enabled: false }` turns it off: every free slot takes tasks.
   */
  readonly dispatchWindow?: Partial<DispatchWindowOptions>;
  /** How often to re-run placement while work is pending (delay scheduling needs time to pass). */
  readonly tickMs?: number;
  /** How long a TASK_UNREACHABLE executor keeps its attempts before they are retried elsewhere. */
  readonly unreachableGraceMs?: number;
  /** Launch holds and giving up after executors fail to start (executor-starts.ts; DEFAULT_EXECUTOR_STARTS). */
  readonly executorStarts?: Partial<ExecutorStartOptions>;
}

/** Why a task is not running yet, for `explain`. */
export interface Explanation {
  readonly taskId: string;
  readonly state: string;
  readonly code: string;
  readonly message: string;
  readonly until?: number;
}
