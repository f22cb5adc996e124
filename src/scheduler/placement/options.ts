/**
 * Defaults for the placement tunables. Locality waits follow Spark's
 * `spark.locality.wait` (3 s per level); refuse_seconds follow the Mesos
 * guidance of short filters while work is pending and long ones while idle.
 */
import type { PlacementOptions } from './types.js';

/** The defaults every pass starts from. */
export const DEFAULT_OPTIONS: PlacementOptions = Object.freeze({
  defaultLocality: { mode: 'wait' as const, nodeWaitMs: 3000, rackWaitMs: 3000 },
  // Mesos's own floor for cpus is 0.01; tasks set their size, this only rounds up empty asks.
  slotResources: { cpus: 0.01, mem: 1, disk: 0 },
  executorOverhead: { cpus: 0.1, mem: 128, disk: 0 },
  // High enough that one executor takes a whole agent of small tasks (100 × 0.1 cpu on 16 cores).
  maxSlotsPerExecutor: 256,
  maxLaunchSlotsPerPass: 4096,
  idleTimeoutMs: 60_000,
  refuseSeconds: 5,
  refuseSecondsIdle: 120,
  maintenanceHorizonMs: 10 * 60_000,
  reviveIntervalMs: 5_000,
  scanLimit: 64,
  explainLimit: 256,
  executorIdFor: (offerId: string, index: number): string => `locus-exec-${offerId}-${index}`,
});

/** The defaults overlaid with what the caller sets. */
export function resolveOptions(partial: Partial<PlacementOptions> = {}): PlacementOptions {
  return { ...DEFAULT_OPTIONS, ...partial };
}
