/**
 * `locus up`: everything on one machine in one process — a managed Redis
 * (unless one is given), the embedded local cluster, and the framework with
 * its HTTP and gRPC APIs — stopped in reverse order.
 */
import { join } from 'node:path';
import type { Logger } from '../obs/log.js';
import { startLocalCluster, type LocalCluster } from '../local/index.js';
import { closeStateDirLogged, workloadRootFor } from '../local/work-dir.js';
import { startManagedRedis, type ManagedRedis } from './redis-server.js';
import { resolveSettings, defaultStateDir, type RawSettings } from './config.js';
import { startFramework, type RunningFramework, type StopReport } from './framework.js';
import type { IsolationMode } from '../executor/isolation/types.js';

/** Options of `locus up`. */
export interface UpOptions {
  readonly httpPort?: number;
  readonly grpcPort?: number;
  readonly masterPort?: number;
  readonly agents?: number;
  readonly racks?: number;
  readonly redis?: string;
  readonly stateDir?: string;
  readonly isolation?: IsolationMode;
  readonly resources?: string;
  readonly adminToken?: string;
  /** Extra framework settings by flag name (tenants-file, locality waits...). */
  readonly extra?: RawSettings;
  readonly logger: Logger;
}

/** Everything `locus up` started. */
export interface RunningUp {
  readonly redisUrl: string;
  readonly cluster: LocalCluster;
  readonly framework: RunningFramework;
  readonly stateDir: string;
  /** Where the local cluster, datasets and outputs live (see workloadRoot). */
  readonly workDir: string;
  /** Stop everything in reverse order; the framework's part is bounded and reports what it abandoned. */
  stop(): Promise<StopReport>;
}

/**
 * Where sandboxes, datasets and outputs live. Workloads run as an unprivileged
 * user, so they must be able to reach it: when root's home (mode 700) is the
 * state dir, /var/lib/locus is used, as Mesos uses /var/lib/mesos (the same
 * rule as `locus local`).
 */
export function workloadRoot(stateDir: string): string {
  return workloadRootFor(stateDir);
}

/** Start Redis (if needed), the local cluster and the framework. */
export async function startUp(o: UpOptions): Promise<RunningUp> {
  const stateDir = o.stateDir ?? defaultStateDir();
  const log = o.logger;
  let redis: ManagedRedis | undefined;
  let cluster: LocalCluster | undefined;
  try {
    // The state dir holds Redis's data (and, when workloads can reach it, everything else):
    // closed before anything is put there, as the framework closes its own (src/app/framework.ts).
    closeStateDirLogged(stateDir, { privateFiles: true }, log, 'state dir');
    const redisUrl = o.redis ?? (redis = await startManagedRedis({ dataDir: join(stateDir, 'redis'), logger: log.child({ component: 'redis' }) })).url;
    const work = workloadRoot(stateDir);
    if (work !== stateDir) log.info({ stateDir, workDir: work }, 'sandboxes, datasets and outputs go to a directory unprivileged workloads can reach');
    cluster = await startLocalCluster({
      workDir: join(work, 'local'),
      agents: o.agents ?? 3,
      racks: o.racks ?? 2,
      port: o.masterPort ?? 5050,
      isolation: o.isolation ?? 'auto',
      logger: log.child({ component: 'local' }),
      ...(o.resources ? { resources: o.resources } : {}),
    });
    const settings = resolveSettings({
      ...o.extra,
      master: cluster.masterUrl,
      redis: redisUrl,
      'http-port': String(o.httpPort ?? 8080),
      'grpc-port': String(o.grpcPort ?? 9090),
      'state-dir': work,
      'local-work-dir': join(work, 'local'),
      isolation: o.isolation ?? 'auto',
      ...(o.adminToken ? { 'admin-token': o.adminToken } : {}),
    });
    const agentsView = cluster.agents;
    const framework = await startFramework(settings, { logger: log, agents: () => agentsView });
    let stopping: Promise<StopReport> | undefined;
    const c = cluster;
    return {
      redisUrl,
      cluster: c,
      framework,
      stateDir,
      workDir: work,
      stop() {
        stopping ??= (async () => {
          const report = await framework.stop().catch((err: unknown): StopReport => {
            log.warn({ err: String(err) }, 'stopping the framework failed');
            return { abandoned: ['framework'], reason: String(err) };
          });
          await c.stop().catch((err: unknown) => log.warn({ err: String(err) }, 'stopping the local cluster failed'));
          await redis?.stop().catch((err: unknown) => log.warn({ err: String(err) }, 'stopping redis failed'));
          return report;
        })();
        return stopping;
      },
    };
  } catch (err) {
    await cluster?.stop().catch(() => undefined);
    await redis?.stop().catch(() => undefined);
    throw err;
  }
}
