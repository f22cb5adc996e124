/**
 * `locus local`: the embedded local cluster in the foreground — a Mesos
 * compatible master and agents on loopback. Prints the master URL, stops
 * cleanly on SIGINT / SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { asArray, asObject, asString, isObject } from '../../core/decode.js';
import { createLogger } from '../../obs/log.js';
import { startLocalCluster } from '../../local/index.js';
import { defaultLocalWorkDir } from '../../local/work-dir.js';
import { CliUsageError, intFlag, parseCommand } from '../args.js';

const HELP = `usage: locus local [options]

Run the embedded local cluster: a master and agents speaking the Mesos v1
HTTP APIs on loopback. Point the framework at the printed master URL.

options:
  --agents N            number of agents in this process (default 3; 0 = a master alone, for
                        agents started with 'locus agent --master URL')
  --racks N             racks the agents are spread over (default 2)
  --port P              master port (default 5050; 0 = any free port)
  --ip A                address the master listens on and advertises (default 127.0.0.1; an
                        address other machines reach, for 'locus agent' on them)
  --work-dir DIR        state: agent ids, reservations, volumes, sandboxes (default
                        $LOCUS_HOME/local or ~/.locus/local; as root with a private
                        home, /var/lib/locus/local so workloads can reach it)
  --resources SPEC      resources of each agent (default "cpus:2;mem:4096;disk:20480;ports:[31000-32000]")
  --topology FILE       YAML/JSON list of heterogeneous agents instead of --agents/--resources
  --credentials FILE    require these framework credentials (JSON/YAML: [{principal, secret}] or {credentials: [...]})
  --tls-cert FILE       serve HTTPS with this certificate (with --tls-key)
  --tls-key FILE        the certificate's private key
  --isolation MODE      auto | linux | process (default auto)
  --hosts netns         run each agent as its own 'locus agent' process on its own separate
                        host: a network namespace with its own address, hostname and private
                        data directory, behind a bridge whose address the master listens on
                        (root, iproute2 and util-linux needed). Hosts reach this machine only
                        at the bridge address it prints: run Redis there for the framework.
  --link-rate R         with --hosts netns: each host's link rate, e.g. 100mbit (default: unlimited)
`;

function readCredentials(path: string): { principal: string; secret: string }[] {
  const raw: unknown = parseYaml(readFileSync(path, 'utf8'));
  const list = isObject(raw) ? raw['credentials'] : raw;
  return asArray(list, 'credentials', (x, p) => {
    const o = asObject(x, p);
    return { principal: asString(o['principal'], `${p}.principal`), secret: asString(o['secret'], `${p}.secret`) };
  });
}

/** Run the local cluster until a signal arrives. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, {
    agents: { type: 'string' }, racks: { type: 'string' }, port: { type: 'string' }, 'work-dir': { type: 'string' },
    resources: { type: 'string' }, topology: { type: 'string' }, credentials: { type: 'string' },
    'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, isolation: { type: 'string' }, ip: { type: 'string' },
    hosts: { type: 'string' }, 'link-rate': { type: 'string' },
  }, HELP, false);
  if (!parsed) return 0;
  const v = parsed.values;
  if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) throw new CliUsageError('--tls-cert and --tls-key go together');
  const isolation = v.isolation ?? 'auto';
  if (isolation !== 'auto' && isolation !== 'linux' && isolation !== 'process') throw new CliUsageError(`--isolation must be auto, linux or process, got '${isolation}'`);
  const fallback = defaultLocalWorkDir();
  const workDir = resolve(v['work-dir'] ?? fallback.workDir);
  if (v['work-dir'] === undefined && fallback.moved) {
    process.stderr.write(`locus: ${fallback.stateDir} is not reachable by unprivileged workloads; using work dir ${workDir}\n`);
  }
  const logger = createLogger('locus-local');
  if (v.hosts !== undefined) return runOnHosts(v, workDir, isolation, logger);
  if (v['link-rate'] !== undefined) throw new CliUsageError('--link-rate needs --hosts netns');
  const cluster = await startLocalCluster({
    workDir,
    agents: intFlag(v.agents, 'agents', 3, 0),
    ...(v.ip !== undefined ? { host: v.ip } : {}),
    racks: intFlag(v.racks, 'racks', 2, 1),
    port: intFlag(v.port, 'port', 5050, 0),
    ...(v.resources !== undefined ? { resources: v.resources } : {}),
    ...(v.topology !== undefined ? { topologyFile: v.topology } : {}),
    ...(v.credentials !== undefined ? { credentials: readCredentials(v.credentials) } : {}),
    ...(v['tls-cert'] !== undefined && v['tls-key'] !== undefined ? { tls: { certFile: v['tls-cert'], keyFile: v['tls-key'] } } : {}),
    isolation,
    logger,
  });
  process.stdout.write(`${cluster.masterUrl}\n`);
  for (const a of cluster.agents) process.stderr.write(`locus: agent ${a.hostname} (${a.rack}) ${a.id} ${a.url}\n`);
  process.stderr.write(`locus: local cluster running; work dir ${workDir}; Ctrl-C stops it\n`);
  await new Promise<void>((res) => {
    const done = (): void => res();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await cluster.stop();
  process.stderr.write('locus: local cluster stopped\n');
  return 0;
}

/** `--hosts netns`: the master on a bridge, each agent its own process on its own host. */
async function runOnHosts(v: Record<string, string | boolean | undefined>, workDir: string, isolation: 'auto' | 'linux' | 'process', logger: ReturnType<typeof createLogger>): Promise<number> {
  const str = (k: string): string | undefined => (typeof v[k] === 'string' ? v[k] : undefined);
  if (str('hosts') !== 'netns') throw new CliUsageError(`--hosts must be netns, got '${str('hosts') ?? ''}'`);
  if (str('tls-cert') !== undefined) throw new CliUsageError('--hosts netns does not take --tls-cert: agents speak plain HTTP to the master');
  if (str('ip') !== undefined || str('topology') !== undefined) throw new CliUsageError('--hosts netns chooses the addresses itself and takes --agents, not --ip or --topology');
  const { startNetnsCluster } = await import('../../local/netns-cluster.js');
  const resources = str('resources');
  const credentials = str('credentials');
  const rate = str('link-rate');
  const cluster = await startNetnsCluster({
    workDir, hosts: intFlag(str('agents'), 'agents', 3, 1), racks: intFlag(str('racks'), 'racks', 2, 1), port: intFlag(str('port'), 'port', 5050, 0),
    isolation, logger,
    ...(resources !== undefined ? { resources } : {}),
    ...(credentials !== undefined ? { credentials: readCredentials(credentials) } : {}),
    ...(rate !== undefined ? { rate } : {}),
  });
  process.stdout.write(`${cluster.masterUrl}\n`);
  process.stderr.write(`locus: hosts on ${cluster.hosts.subnet}; this machine is ${cluster.hosts.gateway} on bridge ${cluster.hosts.bridge}${rate !== undefined ? `; links ${rate}` : ''}\n`);
  for (const a of cluster.hostAgents) process.stderr.write(`locus: agent ${a.host.name} at ${a.url} ${a.id}; private dir ${a.host.dir}\n`);
  process.stderr.write(`locus: run Redis where the hosts reach it (redis-server --bind 127.0.0.1 ${cluster.hosts.gateway}); Ctrl-C stops the cluster and removes the hosts\n`);
  await new Promise<void>((res) => {
    process.once('SIGINT', () => res());
    process.once('SIGTERM', () => res());
  });
  await cluster.stop();
  process.stderr.write('locus: local cluster stopped\n');
  return 0;
}
