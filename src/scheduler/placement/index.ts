/**
 * Placement, pure: offers, executors, pending tasks and time in; a Plan out.
 * The coordinator (src/scheduler) keeps a PendingIndex up to date, builds a
 * Snapshot from Mesos offers and its records, calls place(), applies the Plan,
 * and answers "why is it pending?" with explain().
 */
export { place } from './place.js';
export { explain } from './explain.js';
export { offerCouldRun } from './pass.js';
export { PendingIndex } from './pending-index.js';
export { DrfSorter, type Sorter } from './sorter.js';
export { DEFAULT_OPTIONS, resolveOptions } from './options.js';
export {
  encodePendingSplits, decodePendingSplits, PENDING_SPLITS_FORMAT, type PackedSplit,
} from './pending-codec.js';
export type {
  Assignment, AssignmentColumns, Constraint, Decline, ExecutorLaunch, ExecutorView, LocalityPolicy, OfferView, PassStats,
  PendingTask, PlacementOptions, Plan, Reason, ReasonCode, Release, Snapshot, TenantView, Unavailability,
  VolumeLocation,
} from './types.js';
