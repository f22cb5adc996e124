/**
 * Locality levels, ordered from best to worst. The numeric order matters:
 * placement compares levels with `<`.
 */

/** How close a task ran to its data. */
export const LocalityLevel = {
  NODE_LOCAL: 0,
  RACK_LOCAL: 1,
  ANY: 2,
} as const;

/** One of the locality levels. */
export type LocalityLevel = (typeof LocalityLevel)[keyof typeof LocalityLevel];

/** The names used in APIs, logs and metrics. */
export const LOCALITY_NAMES: Record<LocalityLevel, 'node-local' | 'rack-local' | 'any'> = {
  0: 'node-local',
  1: 'rack-local',
  2: 'any',
};

/** Parse a locality name as it appears in APIs. */
export function parseLocality(name: string): LocalityLevel | undefined {
  switch (name) {
    case 'node-local': return LocalityLevel.NODE_LOCAL;
    case 'rack-local': return LocalityLevel.RACK_LOCAL;
    case 'any': return LocalityLevel.ANY;
    default: return undefined;
  }
}

/** How many finished tasks ran at each level (the job counters' locality part). */
export interface LocalityCounts {
  readonly nodeLocal: number;
  readonly rackLocal: number;
  readonly any: number;
}

/**
 * The node-local share of a job: node-local tasks over all tasks that
 * succeeded (node-local + rack-local + any), between 0 and 1, or undefined
 * before any task succeeded. Tasks that read no data (an explicit `tasks:`
 * list, a reduce over earlier outputs on no particular host) run at level
 * `any` and count in the denominator. This is the one definition every
 * surface uses — the job view, `locus submit --watch`, `locus jobs`, gRPC —
 * so they can never disagree about the same job.
 */
export function nodeLocalShare(c: LocalityCounts): number | undefined {
  const placed = c.nodeLocal + c.rackLocal + c.any;
  return placed > 0 ? c.nodeLocal / placed : undefined;
}

/** A share (0..1) as a whole percentage: `80%`; `-` when undefined. */
export function formatShare(share: number | undefined): string {
  return share === undefined ? '-' : `${Math.round(share * 100)}%`;
}
