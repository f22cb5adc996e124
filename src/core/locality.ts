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
