/**
 * A test bed on separate hosts: `locus local --hosts netns`'s cluster
 * (src/local/netns-cluster.ts: N network-namespace hosts with rate-limited
 * links, the master on the bridge address, one `locus agent` per host with
 * its work directory in the host's private directory), plus Redis on the
 * bridge, and datasets laid out with `locus data put`'s code into the
 * hosts' private directories.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNetnsCluster, type NetnsAgent, type NetnsCluster } from '../../src/local/netns-cluster.js';
import { HOST_PRIVATE_DIR, type Hosts } from '../../src/local/netns.js';
import { resolveSettings } from '../../src/app/config.js';
import { startFramework, type RunningFramework } from '../../src/app/framework.js';
import { silentLogger } from '../../src/obs/log.js';
import { putLocalDataset, type PutResult } from '../../src/storage/local/put.js';
import { LOCUS_CLI } from './build.js';
import { startRedis, type TestRedis } from './redis.js';

/** Options of a cluster on separate hosts. */
export interface HostsClusterOptions {
  readonly hosts: number;
  /** Each host's link rate (tc tbf), e.g. '100mbit'; undefined = unlimited. */
  readonly rate?: string;
  /** Resources of each agent. */
  readonly resources?: string;
  /** Racks the hosts are spread over (default: every host alone in its rack). */
  readonly racks?: number;
}

/** A running cluster on separate hosts. */
export interface HostsCluster {
  readonly hosts: Hosts;
  readonly redis: TestRedis;
  /** Redis as hosts reach it (on the bridge address). */
  readonly redisUrl: string;
  readonly cluster: NetnsCluster;
  readonly agents: readonly NetnsAgent[];
  /** The master's work directory (topology.json, datasets/ manifests). */
  readonly workDir: string;
  /** A scratch directory on this machine for the test (removed by dispose). */
  readonly dir: string;
  /** `locus data put` onto the hosts' private directories, the manifest into the master's work dir. */
  putDataset(source: string, dataset: string, replicas: number): Promise<PutResult>;
  dispose(): Promise<void>;
}

/** Start the hosts, the master and one agent per host (src/local/netns-cluster.ts), and Redis on the bridge. */
export async function startHostsCluster(o: HostsClusterOptions): Promise<HostsCluster> {
  const dir = mkdtempSync('/tmp/locus-hosts-');
  // Workloads run as an unprivileged user and reach outputs under here.
  chmodSync(dir, 0o755);
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const dispose = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const c of cleanups.reverse()) {
      try { await c(); } catch (err) { errors.push(err); }
    }
    cleanups.length = 0;
    if (errors.length > 0) throw new Error(`hosts cluster teardown: ${errors.map(String).join('; ')}`);
  };
  try {
    const workDir = join(dir, 'local');
    const cluster = await startNetnsCluster({
      workDir, hosts: o.hosts, port: 0, allocationIntervalMs: 100, isolation: 'auto', cli: LOCUS_CLI,
      resources: o.resources ?? 'cpus:2;mem:4096;disk:8192;ports:[31000-32000]',
      ...(o.rate !== undefined ? { rate: o.rate } : {}), ...(o.racks !== undefined ? { racks: o.racks } : {}),
    });
    cleanups.push(() => cluster.stop());
    const hosts = cluster.hosts;
    // Redis listens on loopback (the framework) and on the bridge (executors on the hosts).
    const redis = await startRedis({ extraArgs: ['--bind', '127.0.0.1', hosts.gateway, '--protected-mode', 'no'] });
    cleanups.push(() => redis.dispose());
    const redisUrl = `redis://${hosts.gateway}:${redis.port}`;
    const agents = cluster.hostAgents;

    return {
      hosts, redis, redisUrl, cluster, agents, workDir, dir,
      async putDataset(source, dataset, replicas) {
        // `locus data put` writes every replica itself, so it is given each agent's data dir as
        // this machine sees it (inside the host's private directory); the master keeps the manifest.
        const putDir = join(dir, `put-${dataset}`);
        mkdirSync(putDir, { recursive: true });
        writeFileSync(join(putDir, 'topology.json'), JSON.stringify({
          agents: agents.map((a) => ({
            id: a.id, hostname: a.host.name, rack: cluster.agents.find((x) => x.id === a.id)?.rack ?? '',
            dataDir: hosts.outside(a.host, `${a.workDir}/agents/${a.host.name}/data`),
          })),
        }));
        const result = await putLocalDataset({ workDir: putDir, source, dataset, replicas });
        mkdirSync(join(workDir, 'datasets', dataset), { recursive: true });
        copyFileSync(join(putDir, 'datasets', dataset, 'manifest.json'), join(workDir, 'datasets', dataset, 'manifest.json'));
        return result;
      },
      dispose,
    };
  } catch (err) {
    await dispose().catch(() => undefined);
    throw err;
  }
}

/** Where each host keeps the stage outputs it committed (inside its private directory). */
export const HOST_OUTPUTS_DIR = `${HOST_PRIVATE_DIR}/outputs`;

/**
 * The framework as the data-plane tests run it on separate hosts: outputs stay on the host that
 * wrote them (`shared-outputs: false`), block servers answer on the hosts' addresses, and each
 * host's output directory exists and is writable by its executors' unprivileged users.
 * `overrides` changes or adds settings (timeouts, locality waits).
 */
export async function startHostsFramework(bed: HostsCluster, overrides: Readonly<Record<string, string>> = {}): Promise<RunningFramework> {
  for (const h of bed.hosts.hosts) {
    const d = bed.hosts.outside(h, HOST_OUTPUTS_DIR);
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o1777);
  }
  const fw = await startFramework(resolveSettings({
    master: bed.cluster.masterUrl, redis: bed.redisUrl, 'state-dir': join(bed.dir, 'state'), 'local-work-dir': bed.workDir,
    'http-port': '0', 'grpc-port': '0', 'admin-token': 'a'.repeat(64), 'executor-idle-timeout': '120s',
    'locality-wait-node': '120s', 'locality-wait-rack': '1s',
    'shared-outputs': 'false', 'host-output-dir': HOST_OUTPUTS_DIR, 'block-server-bind': '0.0.0.0',
    ...overrides,
  }), { logger: silentLogger() });
  try {
    await fw.waitForSubscribed(30_000);
  } catch (err) {
    await fw.stop();
    throw err;
  }
  return fw;
}
