/**
 * The local cluster on separate hosts (what `locus local --hosts netns`
 * would be): N hosts from ./hosts.ts with rate-limited links, Redis and a
 * `locus local` master with no agents of its own in the root namespace on
 * the bridge address, and one `locus agent` process per host, each with its
 * work directory in the host's private directory. Datasets are laid out
 * with `locus data put`'s code into the hosts' private directories.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalCluster, type LocalCluster } from '../../src/local/index.js';
import { putLocalDataset, type PutResult } from '../../src/storage/local/put.js';
import { LOCUS_CLI } from './build.js';
import { HOST_PRIVATE_DIR, hostsUp, type Host, type Hosts } from './hosts.js';
import { startRedis, type TestRedis } from './redis.js';

/** Options of a cluster on separate hosts. */
export interface HostsClusterOptions {
  readonly hosts: number;
  /** Each host's link rate (tc tbf), e.g. '100mbit'; undefined = unlimited. */
  readonly rate?: string;
  /** Resources of each agent. */
  readonly resources?: string;
  /** Rack of host i (1-based); default: every host alone in its rack. */
  readonly rack?: (i: number) => string;
}

/** One `locus agent` process on its host. */
export interface HostAgent {
  readonly host: Host;
  readonly id: string;
  readonly url: string;
  readonly proc: ChildProcess;
  /** Its work directory, as its host sees it. */
  readonly workDir: string;
  output(): string;
}

/** A running cluster on separate hosts. */
export interface HostsCluster {
  readonly hosts: Hosts;
  readonly redis: TestRedis;
  /** Redis as hosts reach it (on the bridge address). */
  readonly redisUrl: string;
  readonly cluster: LocalCluster;
  readonly agents: readonly HostAgent[];
  /** The master's work directory (topology.json, datasets/ manifests). */
  readonly workDir: string;
  /** A scratch directory on this machine for the test (removed by dispose). */
  readonly dir: string;
  /** `locus data put` onto the hosts' private directories, the manifest into the master's work dir. */
  putDataset(source: string, dataset: string, replicas: number): Promise<PutResult>;
  dispose(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Start hosts, Redis, the master and one agent per host. Everything is removed again on failure. */
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
    const hosts = await hostsUp({ count: o.hosts, ...(o.rate !== undefined ? { rate: o.rate } : {}) });
    cleanups.push(() => hosts.down());
    // Redis listens on loopback (the framework) and on the bridge (executors on the hosts).
    const redis = await startRedis({ extraArgs: ['--bind', '127.0.0.1', hosts.gateway, '--protected-mode', 'no'] });
    cleanups.push(() => redis.dispose());
    const redisUrl = `redis://${hosts.gateway}:${redis.port}`;
    const workDir = join(dir, 'local');
    const cluster = await startLocalCluster({
      workDir, agents: 0, host: hosts.gateway, port: 0, allocationIntervalMs: 100, isolation: 'auto',
      agentPingIntervalSeconds: 1, agentPingTimeoutSeconds: 10,
    });
    cleanups.push(() => cluster.stop());

    const agents: HostAgent[] = [];
    for (const host of hosts.hosts) {
      const agentWork = `${HOST_PRIVATE_DIR}/locus`;
      const proc = hosts.spawn(host, [
        process.execPath, LOCUS_CLI, 'agent', '--master', cluster.masterUrl, '--hostname', host.name,
        '--attributes', `rack:${o.rack?.(host.index) ?? `rack-${host.name}`}`,
        '--resources', o.resources ?? 'cpus:2;mem:4096;disk:8192;ports:[31000-32000]',
        '--work-dir', agentWork, '--port', '5051', '--ip', host.ip, '--isolation', 'auto',
      ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: 'warn' } });
      let out = '';
      proc.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
      proc.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
      agents.push({ host, id: '', url: '', proc, workDir: agentWork, output: () => out });
    }
    // Each agent prints "<id> <url>" once registered.
    const deadline = Date.now() + 60_000;
    for (let i = 0; i < agents.length; i++) {
      const a = agents[i] as HostAgent;
      for (;;) {
        const m = /^(\S+-S\d+) (http:\/\/\S+)$/m.exec(a.output());
        if (m) { agents[i] = { ...a, id: m[1] ?? '', url: m[2] ?? '' }; break; }
        if (a.proc.exitCode !== null) throw new Error(`locus agent on ${a.host.name} exited ${a.proc.exitCode}: ${a.output()}`);
        if (Date.now() > deadline) throw new Error(`locus agent on ${a.host.name} did not register: ${a.output()}`);
        await sleep(50);
      }
    }

    return {
      hosts, redis, redisUrl, cluster, agents, workDir, dir,
      async putDataset(source, dataset, replicas) {
        // `locus data put` writes every replica itself, so it is given each agent's data dir as
        // this machine sees it (inside the host's private directory); the master keeps the manifest.
        const putDir = join(dir, `put-${dataset}`);
        mkdirSync(putDir, { recursive: true });
        writeFileSync(join(putDir, 'topology.json'), JSON.stringify({
          agents: agents.map((a) => ({
            id: a.id, hostname: a.host.name, rack: o.rack?.(a.host.index) ?? `rack-${a.host.name}`,
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
