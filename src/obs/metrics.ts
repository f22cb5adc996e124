/**
 * The Prometheus metrics Locus exports on /metrics. One registry per process
 * (not prom-client's global one) so tests and embedded instances do not clash.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric Locus records, created on one registry. */
export interface LocusMetrics {
  readonly registry: Registry;
  readonly offersReceived: Counter<string>;
  readonly offersAccepted: Counter<string>;
  readonly offersDeclined: Counter<string>;
  readonly placements: Counter<'locality'>;
  readonly pendingTasks: Gauge<'tenant'>;
  readonly runningTasks: Gauge<'tenant'>;
  readonly executors: Gauge<'state'>;
  readonly taskDuration: Histogram<'outcome'>;
  readonly queueDepth: Gauge<'executor'>;
  /** Attempts the scheduler lets each executor have in flight (the adaptive dispatch window). */
  readonly dispatchWindow: Gauge<'executor'>;
  readonly executorPrefetch: Gauge<'executor'>;
  readonly attemptsHandedBack: Counter;
  readonly executorStartFailures: Counter<'host'>;
  readonly jobsGaveUpOnExecutors: Counter;
  readonly masterConnected: Gauge<string>;
  readonly redisConnected: Gauge<string>;
  /** 1 on the leading scheduler, 0 on a standby or a fenced former leader. */
  readonly leader: Gauge<string>;
  readonly jobs: Counter<'state'>;
  readonly outputsRecomputed: Counter;
  /** Stage input listings tried again because the storage was unreachable, by the input's URI scheme. */
  readonly inputListingRetries: Counter<'scheme'>;
}

/** Create the metrics on a fresh registry (with Node's default process metrics). */
export function createMetrics(): LocusMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'locus_process_' });
  const r = [registry];
  return {
    registry,
    offersReceived: new Counter({ name: 'locus_offers_received_total', help: 'Resource offers received from the master', registers: r }),
    offersAccepted: new Counter({ name: 'locus_offers_accepted_total', help: 'Offers accepted (launch or volume operations)', registers: r }),
    offersDeclined: new Counter({ name: 'locus_offers_declined_total', help: 'Offers declined with a refuse filter', registers: r }),
    placements: new Counter({ name: 'locus_placements_total', help: 'Task attempts placed, by locality level achieved', labelNames: ['locality'], registers: r }),
    pendingTasks: new Gauge({ name: 'locus_tasks_pending', help: 'Tasks waiting for a slot, per tenant', labelNames: ['tenant'], registers: r }),
    runningTasks: new Gauge({ name: 'locus_tasks_running', help: 'Task attempts running, per tenant', labelNames: ['tenant'], registers: r }),
    executors: new Gauge({ name: 'locus_executors', help: 'Executors by state', labelNames: ['state'], registers: r }),
    taskDuration: new Histogram({
      name: 'locus_task_duration_seconds', help: 'Task attempt run time', labelNames: ['outcome'],
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800, 7200], registers: r,
    }),
    queueDepth: new Gauge({ name: 'locus_queue_depth', help: 'Attempts queued per executor', labelNames: ['executor'], registers: r }),
    executorPrefetch: new Gauge({ name: 'locus_executor_prefetch', help: 'Attempts the scheduler may send each executor beyond its slots now (0: its attempts are not short, or it does not prefetch)', labelNames: ['executor'], registers: r }),
    attemptsHandedBack: new Counter({ name: 'locus_attempts_handed_back_total', help: 'Prefetched attempts an executor handed back unstarted (no slot came free in time); placed again, not counted as failures', registers: r }),
    executorStartFailures: new Counter({ name: 'locus_executor_start_failures_total', help: 'Executors that ended before they registered (not stopped by Locus, not lost with their agent), per host', labelNames: ['host'], registers: r }),
    jobsGaveUpOnExecutors: new Counter({ name: 'locus_jobs_executor_start_failed_total', help: 'Jobs failed with EXECUTOR_START_FAILED: no executor could be started for their tasks anywhere', registers: r }),
    dispatchWindow: new Gauge({ name: 'locus_dispatch_window', help: 'Attempts the scheduler lets each executor have in flight (adaptive; at most its slots)', labelNames: ['executor'], registers: r }),
    masterConnected: new Gauge({ name: 'locus_master_subscribed', help: '1 when subscribed to a Mesos master', registers: r }),
    redisConnected: new Gauge({ name: 'locus_redis_connected', help: '1 when connected to Redis', registers: r }),
    leader: new Gauge({ name: 'locus_leader', help: '1 on the leading scheduler, 0 on a standby or a fenced former leader', registers: r }),
    jobs: new Counter({ name: 'locus_jobs_total', help: 'Jobs reaching each state', labelNames: ['state'], registers: r }),
    outputsRecomputed: new Counter({ name: 'locus_outputs_recomputed_total', help: 'Committed task outputs reopened for recompute because their host was lost', registers: r }),
    inputListingRetries: new Counter({
      name: 'locus_input_listing_retries_total', labelNames: ['scheme'], registers: r,
      help: "Stage input listings that failed because the inputs' storage was unreachable (timeout, refused, 5xx, mount gone) and were tried again later, by URI scheme",
    }),
  };
}
