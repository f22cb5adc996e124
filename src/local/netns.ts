/**
 * Separate "hosts" on this machine, for tests, benchmarks and
 * `locus local --hosts netns`, where agents must not share a disk or a
 * network link: each host is a network namespace with its
 * own address, its own hostname (a UTS namespace per process started on it)
 * and a private data directory that only it can see (bind-mounted at
 * HOST_PRIVATE_DIR in a private mount namespace, with every host's directory
 * on this machine masked). Hosts are joined by a bridge whose address is this
 * machine's; each host's link can be rate-limited with `tc` (tbf, both
 * directions), and its interface byte counters are read on the bridge side.
 *
 * Each run claims its own /24 in 10.78.0.0/16 (never the shared testbed's
 * 10.77.0.0/24) and a name prefix derived from it, by an atomic mkdir under
 * /run/locus-hosts, so parallel runs never collide; a run that must stay in
 * one given /24 (the chaos suite, confined to 10.77.0.0/24) names it and
 * claims it the same way, failing when it is taken; a claim whose owner
 * died is swept (its namespaces, links and directories removed) before it
 * is reused. Hosts have no default route: only the bridge's /24 is
 * reachable from them, so nothing they run can send traffic anywhere else.
 *
 * `../shared/testbeds/hosts-up.sh`, `hosts-exec.sh` and `hosts-down.sh` show
 * the same ideas as shell; `ip netns exec` is not used because it remounts
 * /sys, which would hide the cgroup hierarchies the agents' isolator needs.
 */
import { execFile, spawn as spawnChild, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where each host sees its own private directory. */
export const HOST_PRIVATE_DIR = '/srv/locus-host';
/** Where the hosts' private directories live on this machine (masked inside every host). */
export const HOSTS_STATE_ROOT = '/var/lib/locus-hosts';
const CLAIMS = '/run/locus-hosts';
const SUBNET_BASE = '10.78';

/** Options of a set of hosts. */
export interface HostsOptions {
  /** How many hosts (1..20). */
  readonly count: number;
  /** tc rate of each host's link in both directions, e.g. '100mbit'; undefined = unlimited. */
  readonly rate?: string;
  /** tbf burst (default 256kb, as the shared testbed). */
  readonly burst?: string;
  /** tbf latency (default 50ms). */
  readonly latency?: string;
  /**
   * A fixed /24 as its first three octets (e.g. '10.77.0') instead of one
   * claimed in 10.78.0.0/16: for runs whose traffic must stay in a given
   * range. Claimed like the others; hostsUp fails when it is taken or in use.
   */
  readonly subnet?: string;
}

/** One host. */
export interface Host {
  /** Its hostname, also the network namespace's name. */
  readonly name: string;
  readonly index: number;
  readonly ip: string;
  /** The bridge-side end of its link on this machine (its counters are the host's traffic). */
  readonly link: string;
  /** Its private directory as this machine sees it (HOST_PRIVATE_DIR inside the host). */
  readonly dir: string;
}

/** Bytes through a host's interface since it was created. */
export interface LinkBytes {
  /** Bytes the host sent. */
  readonly sent: number;
  /** Bytes the host received. */
  readonly received: number;
}

/** A set of hosts and how to use and remove them. */
export interface Hosts {
  readonly prefix: string;
  /** The /24, e.g. 10.78.5.0/24. */
  readonly subnet: string;
  /** This machine's address on the bridge: where hosts reach services of the root namespace. */
  readonly gateway: string;
  readonly bridge: string;
  readonly hosts: readonly Host[];
  /** Run argv on a host to completion (rejects on a non-zero exit). */
  exec(host: Host, argv: readonly string[], options?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  /** Start argv on a host; down() stops it if it still runs. */
  spawn(host: Host, argv: readonly string[], options?: SpawnOptions): ChildProcess;
  /** The host's link counters, read on this machine. */
  bytes(host: Host): Promise<LinkBytes>;
  /** A path inside HOST_PRIVATE_DIR as this machine sees it. */
  outside(host: Host, insidePath: string): string;
  /** Stop everything started on the hosts and remove namespaces, links, qdiscs and directories. Memoised. */
  down(): Promise<void>;
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args, { timeout: 10_000 });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const hostName = (prefix: string, i: number): string => `${prefix}-${i}`;
/** The name prefix of a /24's namespaces and links: lx<c> for 10.78.<c>, lf<b>x<c> for a fixed a.b.c (at most 15 characters with '-NNp'). */
const prefixFor = (net: string): string => {
  const [, b, c] = net.split('.');
  return net.startsWith(`${SUBNET_BASE}.`) ? `lx${c ?? ''}` : `lf${b ?? ''}x${c ?? ''}`;
};
const linkName = (prefix: string, i: number): string => `${prefix}-${i}p`;

/**
 * Remove what a run with this prefix made: processes still in its
 * namespaces, the namespaces, links (their qdiscs go with them), the bridge
 * and the directories. Each step on its own, so one failure does not stop
 * the rest; the errors are returned.
 */
async function teardown(prefix: string): Promise<string[]> {
  const errors: string[] = [];
  const step = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  let namespaces: string[] = [];
  await step('list namespaces', async () => {
    const { stdout } = await run('ip', ['netns', 'list'], { timeout: 10_000 });
    namespaces = stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => new RegExp(`^${prefix}-\\d+$`).test(n));
  });
  // Processes first: a namespace with processes in it outlives `ip netns del`.
  for (const ns of namespaces) {
    await step(`kill processes in ${ns}`, async () => {
      for (let round = 0; round < 20; round++) {
        const { stdout } = await run('ip', ['netns', 'pids', ns], { timeout: 10_000 });
        const pids = stdout.split('\n').map(Number).filter((p) => Number.isInteger(p) && p > 0);
        if (pids.length === 0) return;
        for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('processes survive SIGKILL');
    });
  }
  for (const ns of namespaces) {
    const i = Number(ns.slice(prefix.length + 1));
    await step(`delete link of ${ns}`, async () => { await ip('link', 'del', linkName(prefix, i)).catch(() => undefined); });
    await step(`delete namespace ${ns}`, () => ip('netns', 'del', ns));
  }
  await step('delete bridge', async () => {
    const { stdout } = await run('ip', ['-o', 'link', 'show'], { timeout: 10_000 });
    if (stdout.includes(` ${prefix}-br:`)) await ip('link', 'del', `${prefix}-br`);
  });
  await step('remove directories', () => rmSync(join(HOSTS_STATE_ROOT, prefix), { recursive: true, force: true }));
  return errors;
}

/**
 * Remove the hosts of every run whose owner process died (a crash, a
 * SIGKILL): their namespaces, links, bridge and directories. Runs that are
 * alive are left alone. Returns the prefixes removed.
 */
export async function sweepStaleHosts(): Promise<string[]> {
  if (!existsSync(CLAIMS)) return [];
  const swept: string[] = [];
  for (const name of readdirSync(CLAIMS)) {
    // A claim is named by its /24's three octets (10.78.<n>, or a fixed one such as 10.77.0).
    if (!/^10\.\d+\.\d+$/.test(name)) continue;
    const dir = join(CLAIMS, name);
    let pid = 0;
    try { pid = Number(readFileSync(join(dir, 'pid'), 'utf8')); } catch { continue; /* being claimed right now */ }
    if (pid > 0 && pidAlive(pid)) continue;
    await teardown(prefixFor(name));
    rmSync(dir, { recursive: true, force: true });
    swept.push(prefixFor(name));
  }
  return swept;
}

/** Claim a free /24 (the given one, or any in 10.78.0.0/16): an atomic mkdir per /24; leftovers of dead runs are swept first. */
async function claimSubnet(fixed?: string): Promise<{ net: string; release(): void }> {
  mkdirSync(CLAIMS, { recursive: true });
  await sweepStaleHosts();
  const { stdout: addrs } = await run('ip', ['-4', '-o', 'addr', 'show'], { timeout: 10_000 });
  const { stdout: routes } = await run('ip', ['-4', 'route', 'show'], { timeout: 10_000 });
  if (fixed !== undefined) {
    if (!/^10\.\d{1,3}\.\d{1,3}$/.test(fixed)) throw new Error(`subnet must be three octets in 10.0.0.0/8 such as '10.77.0', got '${fixed}'`);
    // Something else (the shared testbed's hosts-up.sh) has addresses or routes there: not ours to take.
    if (`${addrs}\n${routes}`.includes(`${fixed}.`)) throw new Error(`${fixed}.0/24 is in use on this machine`);
    const dir = join(CLAIMS, fixed);
    try {
      mkdirSync(dir);
    } catch {
      throw new Error(`${fixed}.0/24 is claimed by another run (${dir})`);
    }
    writeFileSync(join(dir, 'pid'), String(process.pid));
    return { net: fixed, release: () => rmSync(dir, { recursive: true, force: true }) };
  }
  const inUse = (n: number): boolean => `${addrs}\n${routes}`.includes(`${SUBNET_BASE}.${n}.`);
  const start = 1 + (process.pid % 200);
  for (let k = 0; k < 250; k++) {
    const n = 1 + ((start + k) % 250);
    const dir = join(CLAIMS, `${SUBNET_BASE}.${n}`);
    const owner = join(dir, 'pid');
    if (existsSync(dir)) {
      let pid = 0;
      try { pid = Number(readFileSync(owner, 'utf8')); } catch { /* being written, or half made */ }
      if (pid > 0 && pidAlive(pid)) continue;
      // A crashed run's leftovers: sweep them, then take the number.
      await teardown(`lx${n}`);
      rmSync(dir, { recursive: true, force: true });
    }
    if (inUse(n)) continue;
    try {
      mkdirSync(dir);
    } catch {
      continue; // another run took it a moment ago
    }
    writeFileSync(owner, String(process.pid));
    return { net: `${SUBNET_BASE}.${n}`, release: () => rmSync(dir, { recursive: true, force: true }) };
  }
  throw new Error(`no free /24 in ${SUBNET_BASE}.0.0/16`);
}

/** Create the hosts. On any failure everything made so far is removed. */
export async function hostsUp(o: HostsOptions): Promise<Hosts> {
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > 20) throw new Error(`count must be 1..20, got ${o.count}`);
  const claim = await claimSubnet(o.subnet);
  const net = claim.net;
  const prefix = prefixFor(net);
  const gateway = `${net}.1`;
  const bridge = `${prefix}-br`;
  const stateDir = join(HOSTS_STATE_ROOT, prefix);
  const hosts: Host[] = [];
  const started = new Set<ChildProcess>();
  const tbf = (dev: string, netns?: string): string[] => [
    ...(netns !== undefined ? ['-n', netns] : []), 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', o.rate ?? '', 'burst', o.burst ?? '256kb', 'latency', o.latency ?? '50ms',
  ];
  try {
    mkdirSync(HOST_PRIVATE_DIR, { recursive: true });
    mkdirSync(stateDir, { recursive: true, mode: 0o755 });
    await ip('link', 'add', bridge, 'type', 'bridge');
    await ip('addr', 'add', `${gateway}/24`, 'dev', bridge);
    await ip('link', 'set', bridge, 'up');
    for (let i = 1; i <= o.count; i++) {
      const name = hostName(prefix, i);
      const link = linkName(prefix, i);
      const addr = `${net}.${10 + i}`;
      await ip('netns', 'add', name);
      await ip('link', 'add', link, 'type', 'veth', 'peer', 'name', `${prefix}-${i}h`);
      await ip('link', 'set', link, 'master', bridge, 'up');
      await ip('link', 'set', `${prefix}-${i}h`, 'netns', name);
      await ip('-n', name, 'link', 'set', 'lo', 'up');
      await ip('-n', name, 'link', 'set', `${prefix}-${i}h`, 'name', 'eth0');
      await ip('-n', name, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      await ip('-n', name, 'link', 'set', 'eth0', 'up');
      // No default route on purpose: only the bridge's /24 is reachable from a host.
      if (o.rate !== undefined) {
        // The host's egress and the egress towards it: a symmetric link of `rate`.
        await run('tc', tbf('eth0', name), { timeout: 10_000 });
        await run('tc', tbf(link), { timeout: 10_000 });
      }
      const dir = join(stateDir, name);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      hosts.push({ name, index: i, ip: addr, link, dir });
    }
    // Names resolve the same way on every host.
    writeFileSync(join(stateDir, 'hosts'), ['127.0.0.1 localhost', `${gateway} ${prefix}-gw`, ...hosts.map((h) => `${h.ip} ${h.name}`), ''].join('\n'));
  } catch (err) {
    await teardown(prefix);
    claim.release();
    throw err;
  }

  // Runs "on" a host: its network namespace, a UTS namespace with its hostname, a private
  // mount namespace where HOST_PRIVATE_DIR is its own directory, /etc/hosts names the hosts,
  // and every host's directory on this machine is masked by an empty tmpfs.
  const wrap = (h: Host, argv: readonly string[]): string[] => [
    `--net=/run/netns/${h.name}`, '--', 'unshare', '--mount', '--uts', '--propagation', 'private', '--', 'sh', '-c',
    'set -e; hostname "$1"; mount --bind "$2" "$3"; mount --bind "$4" /etc/hosts; mount -t tmpfs -o size=1m,mode=0755 locus-hosts-mask "$5"; shift 5; exec "$@"',
    'sh', h.name, h.dir, HOST_PRIVATE_DIR, join(stateDir, 'hosts'), HOSTS_STATE_ROOT, ...argv,
  ];

  let downing: Promise<void> | undefined;
  return {
    prefix,
    subnet: `${net}.0/24`,
    gateway,
    bridge,
    hosts,
    async exec(h, argv, options = {}) {
      const { stdout, stderr } = await run('nsenter', wrap(h, argv), { timeout: options.timeoutMs ?? 60_000, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024 });
      return { stdout, stderr };
    },
    spawn(h, argv, options = {}) {
      // Its own process group, so down() can stop it with everything it started.
      const child = spawnChild('nsenter', wrap(h, argv), { ...options, detached: true });
      started.add(child);
      child.once('exit', () => started.delete(child));
      return child;
    },
    async bytes(h) {
      // Counted on the bridge side: what the bridge received came from the host.
      const read = async (k: string): Promise<number> => Number((await readFile(`/sys/class/net/${h.link}/statistics/${k}`, 'utf8')).trim());
      return { sent: await read('rx_bytes'), received: await read('tx_bytes') };
    },
    outside(h, insidePath) {
      if (insidePath !== HOST_PRIVATE_DIR && !insidePath.startsWith(`${HOST_PRIVATE_DIR}/`)) throw new Error(`${insidePath} is not under ${HOST_PRIVATE_DIR}`);
      return join(h.dir, insidePath.slice(HOST_PRIVATE_DIR.length));
    },
    down() {
      downing ??= (async () => {
        // Ask politely first (agents unregister and kill their containers), then force.
        const exits = [...started].map((c) => new Promise<void>((r) => { if (c.exitCode !== null || c.signalCode !== null) r(); else c.once('exit', () => r()); }));
        for (const c of started) { try { if (c.pid !== undefined) process.kill(-c.pid, 'SIGTERM'); } catch { /* gone */ } }
        await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 10_000))]);
        for (const c of started) { try { if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } }
        const errors = await teardown(prefix);
        claim.release();
        if (errors.length > 0) throw new Error(`hosts ${prefix} teardown: ${errors.join('; ')}`);
      })();
      return downing;
    },
  };
}
