/**
 * The framework's side of the data plane: what storage configuration each
 * executor is launched with, the secrets executors read from Redis (never
 * from TaskInfo), and a directory of the block servers the live executors
 * advertise, by host, for building attempts that read from other hosts.
 */
import type { Redis } from 'ioredis';
import { chmodSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { newToken } from '../core/ids.js';
import { DATAPLANE_SECRETS_KEY, EXECUTOR_FIELDS as F, executorKey } from '../executor/contract.js';
import type { ExecutorStorageConfig } from '../storage/executor-config.js';
import { readTopology } from '../storage/local/dataset.js';
import type { FrameworkSettings } from './config.js';

/** Whether executors of these settings share the output root (explicit, else by how executors are delivered). */
export function outputsShared(settings: FrameworkSettings): boolean {
  return settings.sharedOutputs ?? settings.executor.kind === 'local';
}

/** The directory holding each host's own outputs (`host-output-dir`), one sub-directory per host name. */
export function hostOutputRoot(settings: FrameworkSettings): string {
  return settings.hostOutputDir ?? join(settings.stateDir, 'host-outputs');
}

/**
 * Make the per-host output root writable by executors where this machine can (one machine, or
 * a shared mount): world-writable with the sticky bit like the output root, because executors
 * and their workloads run as unprivileged users. On other hosts the operator creates it.
 */
export function prepareHostOutputRoot(settings: FrameworkSettings, dir = hostOutputRoot(settings)): void {
  if (outputsShared(settings)) return;
  try {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o1777);
  } catch {
    // Not ours to create here (another host's path): executors report it if it is missing.
  }
}

/**
 * Let executors commit `local://` outputs into the local cluster's agent data directories and
 * the datasets already there (on one machine, where this process can reach them): world-writable
 * with the sticky bit, as the output root, since executors and workloads run as unprivileged
 * users; the sticky bit keeps anyone from removing what another user wrote. Agents on other
 * hosts are their operator's to prepare.
 */
export async function prepareLocalDataDirs(settings: FrameworkSettings): Promise<void> {
  if (settings.localWorkDir === undefined) return;
  const topology = await readTopology(settings.localWorkDir).catch(() => undefined);
  for (const agent of topology?.agents ?? []) {
    // Through the path this machine sees (a netns host's private directory), not the host's own.
    const dir = agent.dataDirHere ?? agent.dataDir;
    try {
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o1777);
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) chmodSync(join(dir, e.name), 0o1777);
    } catch {
      // Not this machine's (an agent on another host), or not ours: executors report EACCES.
    }
  }
}

/**
 * The Ceph options of these settings, for the framework's own listing and every executor's
 * reads alike (undefined: none set). Any one of them configures Ceph: the conf defaults the way
 * the ceph CLI finds it, so a CephFS mount, or a cephx user alone (`ceph-id`), is enough. Both
 * sides read it from here: the executors once missed a `ceph-id` given alone, and read as
 * `client.admin` while the framework listed as the configured user.
 */
export function cephSettings(settings: FrameworkSettings): { conf?: string; name?: string; cephfsMount?: string } | undefined {
  if (settings.cephConf === undefined && settings.cephfsMount === undefined && settings.cephClientName === undefined) return undefined;
  return {
    ...(settings.cephConf === undefined ? {} : { conf: settings.cephConf }),
    ...(settings.cephClientName === undefined ? {} : { name: settings.cephClientName }),
    ...(settings.cephfsMount === undefined ? {} : { cephfsMount: settings.cephfsMount }),
  };
}

/**
 * The storage configuration of an executor on `hostname` (no secrets: it travels in TaskInfo).
 * `outputRoot` and `hostOutputDir` are the cluster's recorded places (output-places.ts), which
 * may differ from this instance's own settings.
 */
export async function executorStorageConfig(settings: FrameworkSettings, hostname: string, outputRoot: string, hostOutputDir = hostOutputRoot(settings)): Promise<ExecutorStorageConfig> {
  let localDataDir: string | undefined;
  if (settings.localWorkDir !== undefined) {
    // The local cluster knows each agent's data directory; a real cluster has none of these.
    const topology = await readTopology(settings.localWorkDir).catch(() => undefined);
    localDataDir = topology?.agents.find((a) => a.hostname === hostname)?.dataDir;
  }
  const shared = outputsShared(settings);
  const hostRoot = join(hostOutputDir, hostname);
  const glusterMounts = settings.glusterMounts;
  const ceph = cephSettings(settings);
  return {
    version: 1,
    ...(settings.hdfsUser === undefined ? {} : { webhdfs: { user: settings.hdfsUser } }),
    ...(ceph === undefined ? {} : { ceph }),
    ...(Object.keys(glusterMounts).length === 0 ? {} : { gluster: { mounts: glusterMounts } }),
    ...(localDataDir === undefined ? {} : { localDataDir }),
    // On one machine the executor can read every replica directly too (a fallback when no
    // block server of a replica host is known yet).
    ...(settings.localWorkDir === undefined ? {} : { localWorkDir: settings.localWorkDir }),
    outputs: {
      root: outputRoot,
      shared,
      ...(shared ? {} : { hostRoot }),
    },
    blockServer: { bind: settings.blockServerBind },
  };
}

/**
 * Publish the data-plane secrets executors read with their own Redis users: the block
 * servers' bearer token (created once, kept across framework restarts so running executors
 * keep working) and the WebHDFS delegation token when there is one.
 */
export async function publishDataPlaneSecrets(redis: Redis, settings: FrameworkSettings): Promise<void> {
  await redis.hsetnx(DATAPLANE_SECRETS_KEY, 'blockToken', newToken(32));
  if (settings.hdfsDelegationToken !== undefined) await redis.hset(DATAPLANE_SECRETS_KEY, 'webhdfsDelegationToken', settings.hdfsDelegationToken);
  else await redis.hdel(DATAPLANE_SECRETS_KEY, 'webhdfsDelegationToken');
}

/** The block servers of live executors, by host, refreshed from their registrations. */
export class BlockServerDirectory {
  private byHost = new Map<string, string[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly redis: Redis, private readonly executorIds: () => readonly string[], private readonly everyMs = 1000) {}

  /** Block server addresses (host:port) of running executors on `host`. */
  on(host: string): readonly string[] {
    return this.byHost.get(host) ?? [];
  }

  /** Re-read every live executor's registration. */
  async refresh(): Promise<void> {
    const ids = this.executorIds();
    if (ids.length === 0) {
      this.byHost = new Map();
      return;
    }
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hmget(executorKey(id), F.hostname, F.blockServer, F.state);
    const rows = (await pipe.exec()) ?? [];
    const next = new Map<string, string[]>();
    for (const [err, row] of rows) {
      if (err !== null || !Array.isArray(row)) continue;
      const [host, address, state] = row as (string | null)[];
      // A draining executor still serves reads until it exits; an exited one does not.
      if (host === null || host === undefined || address === null || address === undefined || state === 'exited') continue;
      next.set(host, [...(next.get(host) ?? []), address]);
    }
    this.byHost = next;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.refresh().catch(() => undefined), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
