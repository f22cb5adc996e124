/**
 * `locus local --hosts netns`: the local cluster with every agent on its
 * own separate host (./netns.ts) — its own network namespace, address,
 * hostname and private data directory, behind a rate-limited link — each a
 * `locus agent` process registered with a master that listens on the
 * bridge address in this machine's namespace. What crosses the links is
 * what would cross a real network, so locality and data movement can be
 * measured on one machine.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalCluster, type LocalCluster, type LocalClusterOptions } from './index.js';
import { HOST_PRIVATE_DIR, hostsUp, type Host, type Hosts } from './netns.js';

/** Options: the local cluster's, with hosts instead of in-process agents. */
export interface NetnsClusterOptions extends Omit<LocalClusterOptions, 'host' | 'agents' | 'topologyFile' | 'isolator' | 'tls' | 'dataDirHere'> {
  /** How many hosts, one agent on each. */
  readonly hosts: number;
  /** Each host's link rate in both directions (tc tbf), e.g. '100mbit'; undefined = unlimited. */
  readonly rate?: string;
  /** The `locus` CLI (main.js) the agents run (default: this installation's). */
  readonly cli?: string;
  /** A fixed /24 for the hosts (see HostsOptions.subnet); default: one claimed in 10.78.0.0/16. */
  readonly subnet?: string;
}

/** One agent on its host. */
export interface NetnsAgent {
  readonly host: Host;
  readonly id: string;
  readonly url: string;
  readonly proc: ChildProcess;
  /** Its work directory as its host sees it (inside the host's private directory). */
  readonly workDir: string;
  /** What it printed so far (stdout and stderr). */
  output(): string;
}

/** A running cluster on separate hosts. */
export interface NetnsCluster extends LocalCluster {
  readonly hosts: Hosts;
  readonly hostAgents: readonly NetnsAgent[];
}

/** The built CLI next to this module (dist), or the repository's build when running from source. */
function defaultCli(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '../cli/main.js'), join(here, '../../dist/src/cli/main.js')];
  const found = candidates.find((c) => c.includes('/dist/') && existsSync(c));
  if (!found) throw new Error("the built CLI (dist/src/cli/main.js) is missing: run 'npm run build'");
  return found;
}

/** The hosts, the master on their bridge, one `locus agent` per host; everything removed again on failure. */
export async function startNetnsCluster(o: NetnsClusterOptions): Promise<NetnsCluster> {
  const cli = o.cli ?? defaultCli();
  const racks = o.racks ?? o.hosts;
  const hosts = await hostsUp({ count: o.hosts, ...(o.rate !== undefined ? { rate: o.rate } : {}), ...(o.subnet !== undefined ? { subnet: o.subnet } : {}) });
  let cluster: LocalCluster | undefined;
  const stopAll = async (): Promise<void> => {
    // Hosts first: their agents get SIGTERM and unregister while the master still listens.
    const errors: unknown[] = [];
    await hosts.down().catch((err: unknown) => errors.push(err));
    await cluster?.stop().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw new Error(`netns cluster stop: ${errors.map(String).join('; ')}`);
  };
  try {
    const { hosts: _count, rate: _rate, cli: _cli, subnet: _subnet, ...rest } = o;
    void _count; void _rate; void _cli; void _subnet;
    // Agents report lost quickly on a test bed; the master's own defaults otherwise.
    // Each agent keeps its data in its host's private directory, which this machine sees under
    // another path: topology.json names both, so `locus data put` here writes where the host reads.
    const dataDirHere = (hostname: string, dataDir: string): string | undefined => {
      const host = hosts.hosts.find((h) => h.name === hostname);
      return host !== undefined && dataDir.startsWith(`${HOST_PRIVATE_DIR}/`) ? hosts.outside(host, dataDir) : undefined;
    };
    cluster = await startLocalCluster({ agentPingIntervalSeconds: 1, agentPingTimeoutSeconds: 10, ...rest, agents: 0, host: hosts.gateway, dataDirHere });
    const masterUrl = cluster.masterUrl;
    // With framework credentials the master wants agents to authenticate too: each host gets the
    // first credential in its private directory, readable by root only.
    const credential = o.credentials?.[0];
    if (credential) {
      for (const host of hosts.hosts) writeFileSync(hosts.outside(host, `${HOST_PRIVATE_DIR}/agent-secret`), credential.secret, { mode: 0o600 });
    }
    const agents = hosts.hosts.map((host) => {
      const workDir = `${HOST_PRIVATE_DIR}/locus`;
      const proc = hosts.spawn(host, [
        process.execPath, cli, 'agent', '--master', masterUrl, '--hostname', host.name,
        '--attributes', `rack:r${((host.index - 1) % racks) + 1}`,
        ...(o.resources !== undefined ? ['--resources', o.resources] : []),
        '--work-dir', workDir, '--port', '5051', '--ip', host.ip, '--isolation', o.isolation ?? 'auto',
        ...(credential ? ['--principal', credential.principal, '--secret-file', `${HOST_PRIVATE_DIR}/agent-secret`] : []),
      ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: process.env['LOCUS_LOG_LEVEL'] ?? 'warn' } });
      let out = '';
      proc.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
      proc.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
      return { host, proc, workDir, output: () => out };
    });
    // Each agent prints "<id> <url>" once registered.
    const deadline = Date.now() + 60_000;
    const registered: NetnsAgent[] = [];
    for (const a of agents) {
      for (;;) {
        const m = /^(\S+-S\d+) (https?:\/\/\S+)$/m.exec(a.output());
        if (m) { registered.push({ ...a, id: m[1] ?? '', url: m[2] ?? '' }); break; }
        if (a.proc.exitCode !== null) throw new Error(`locus agent on ${a.host.name} exited ${a.proc.exitCode}: ${a.output()}`);
        if (Date.now() > deadline) throw new Error(`locus agent on ${a.host.name} did not register within 60 s: ${a.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const c = cluster;
    let stopping: Promise<void> | undefined;
    return {
      masterUrl: c.masterUrl,
      get agents() { return c.agents; },
      control: c.control,
      hosts,
      hostAgents: registered,
      stop() {
        stopping ??= stopAll();
        return stopping;
      },
    };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}
