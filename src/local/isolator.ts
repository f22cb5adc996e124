/**
 * How the local cluster gets its containers: the isolation module's
 * `createIsolator` (namespaces + cgroups where the host allows, else plain
 * processes with rlimits). If that cannot start at all, the local
 * cluster's own plain-process fallback keeps it usable, and says so.
 */
import type { Logger } from '../obs/log.js';
import { createIsolator } from '../executor/isolation/index.js';
import type { IsolationMode, Isolator } from '../executor/isolation/types.js';
import { FallbackProcessIsolator } from './fallback-isolator.js';

/** The isolator for a mode; 'linux' failures are fatal, others fall back loudly. */
export async function chooseIsolator(mode: IsolationMode, logger: Logger): Promise<Isolator> {
  try {
    return await createIsolator(mode, logger);
  } catch (err) {
    if (mode === 'linux') throw err;
    logger.warn({ err }, 'isolation module unavailable; using the local fallback isolator');
    return new FallbackProcessIsolator(logger);
  }
}
