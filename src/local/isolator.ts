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

/**
 * How often an agent measures the disk use of a container with a disk limit, in seconds: the
 * genuine agent's `--container_disk_watch_interval` default (15secs, disk/du).
 *
 * A measurement walks the whole sandbox, and an executor's sandbox holds the sandbox of every
 * nested container it ever ran (`containers/<id>`, as Mesos keeps them): at the isolation
 * module's own default of one second, an executor that had run 200 short tasks cost its agent
 * ~45 ms of CPU every second just walking them, growing with every task
 * (bench/results/short-2026-12-06.md), more than half of the local cluster's own CPU per task.
 */
export const DISK_WATCH_INTERVAL_SECONDS = 15;

/** Settings of an agent's isolator. */
export interface AgentIsolatorOptions {
  /** See DISK_WATCH_INTERVAL_SECONDS. */
  readonly diskWatchIntervalSeconds?: number;
}

/** The isolator for a mode; 'linux' failures are fatal, others fall back loudly. */
export async function chooseIsolator(mode: IsolationMode, logger: Logger, o: AgentIsolatorOptions = {}): Promise<Isolator> {
  try {
    return await createIsolator(mode, logger, { diskPollMs: Math.round((o.diskWatchIntervalSeconds ?? DISK_WATCH_INTERVAL_SECONDS) * 1000) });
  } catch (err) {
    if (mode === 'linux') throw err;
    logger.warn({ err }, 'isolation module unavailable; using the local fallback isolator');
    return new FallbackProcessIsolator(logger);
  }
}
