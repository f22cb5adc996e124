/**
 * compose/: the real-cluster setup validates with Debian 12's docker-compose
 * (1.29.2) and every service Locus depends on is present and wired to the
 * others: the ZooKeeper URL the masters use is the one Locus is given, the
 * ports Locus listens on are the ones published, DataNodes share their
 * agents' network namespaces, and the credentials and ACLs Locus needs exist.
 *
 * The checks read the output of `docker-compose config` (anchors merged,
 * variables resolved with their defaults) rather than the raw file, so they
 * see what Compose itself will run.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const composeDir = join(root, 'compose');
const composeFile = join(composeDir, 'docker-compose.yml');
const ALL_PROFILES = ['hdfs', 'ha-masters', 'ceph', 'gluster'];
const ZK_MASTER = 'zk://zookeeper:2181/mesos';

/** A service as `docker-compose config` prints it (only the fields checked here). */
interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  hostname?: string;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | null>;
  ports?: { published: number | string; target: number | string }[];
  volumes?: (string | { source?: string; target: string; type?: string })[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] | string };
  network_mode?: string;
  profiles?: string[];
  privileged?: boolean;
}

interface Config {
  services: Record<string, Service>;
}

function dockerCompose(): string {
  for (const bin of ['docker-compose']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
      return bin;
    } catch {
      // try the next one
    }
  }
  throw new Error("docker-compose is not installed (Debian: apt-get install docker-compose; 'npm test' installs it)");
}

/**
 * Run `docker-compose config` with an environment that has no compose
 * variables in it, so the result proves the defaults alone are enough.
 */
async function composeConfig(profiles: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  const args = ['-f', composeFile];
  for (const p of profiles) args.push('--profile', p);
  args.push('config');
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp' };
  return await run(dockerCompose(), args, { cwd: root, env, maxBuffer: 16 * 1024 * 1024 });
}

function svc(config: Config, name: string): Service {
  const s = config.services[name];
  if (!s) throw new Error(`compose service '${name}' is missing (have: ${Object.keys(config.services).join(', ')})`);
  return s;
}

function env(s: Service, key: string): string | undefined {
  const v = s.environment?.[key];
  return v === null || v === undefined ? undefined : String(v);
}

function argv(v: string[] | string | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : v.split(/\s+/).filter(Boolean);
}

/** The value after `--flag` in an argv (or `--flag=value`). */
function flag(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === `--${name}`) return args[i + 1];
    if (a?.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

function volumeTargets(s: Service): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of s.volumes ?? []) {
    if (typeof v === 'string') {
      const [source, target] = v.split(':');
      if (source !== undefined && target !== undefined) out.set(target, source);
    } else {
      out.set(v.target, v.source ?? '');
    }
  }
  return out;
}

describe('compose/docker-compose.yml', () => {
  let config: Config;

  beforeAll(async () => {
    const { stdout } = await composeConfig(ALL_PROFILES);
    config = parse(stdout) as Config;
  }, 120_000);

  it('validates with docker-compose config for the hdfs and ha-masters profiles, using only defaults', async () => {
    const { stdout } = await composeConfig(['hdfs', 'ha-masters']);
    const parsed = parse(stdout) as Config;
    expect(Object.keys(parsed.services)).toEqual(expect.arrayContaining(['hdfs-namenode', 'mesos-master-3', 'locus']));
  }, 120_000);

  it('validates with every profile, and without any', async () => {
    await expect(composeConfig([])).resolves.toBeDefined();
    await expect(composeConfig(ALL_PROFILES)).resolves.toBeDefined();
  }, 120_000);

  it('gives every ${VARIABLE} a default', () => {
    const raw = readFileSync(composeFile, 'utf8');
    const uses = [...raw.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1] ?? '');
    expect(uses.length).toBeGreaterThan(5);
    const withoutDefault = uses.filter((u) => !/^[A-Z0-9_]+:-/.test(u));
    expect(withoutDefault, 'variables without a ${VAR:-default}').toEqual([]);
  });

  it('has every service, each under the right profile', () => {
    const expected: Record<string, string[] | undefined> = {
      zookeeper: undefined,
      'mesos-master': undefined,
      'mesos-master-2': ['ha-masters'],
      'mesos-master-3': ['ha-masters'],
      'mesos-agent-1': undefined,
      'mesos-agent-2': undefined,
      redis: undefined,
      locus: undefined,
      'hdfs-namenode': ['hdfs'],
      'hdfs-datanode-1': ['hdfs'],
      'hdfs-datanode-2': ['hdfs'],
      ceph: ['ceph'],
      'gluster-1': ['gluster'],
      'gluster-2': ['gluster'],
    };
    for (const [name, profiles] of Object.entries(expected)) {
      expect(svc(config, name).profiles, `profiles of ${name}`).toEqual(profiles);
    }
  });

  it('pins every image to a version', () => {
    for (const [name, s] of Object.entries(config.services)) {
      const image = s.image;
      expect(image, `${name} has an image`).toBeTruthy();
      const tag = image?.split('/').pop()?.split(':')[1];
      expect(tag, `${name}: ${image} has a tag`).toBeTruthy();
      expect(tag, `${name}: ${image} is pinned`).not.toBe('latest');
      expect(tag, `${name}: ${image} names a version`).toMatch(/\d/);
    }
  });

  it('detects masters through ZooKeeper with a quorum and a work dir', () => {
    for (const name of ['mesos-master', 'mesos-master-2', 'mesos-master-3']) {
      const m = svc(config, name);
      expect(env(m, 'MESOS_ZK'), name).toBe(ZK_MASTER);
      expect(Number(env(m, 'MESOS_QUORUM')), name).toBeGreaterThanOrEqual(1);
      expect(env(m, 'MESOS_WORK_DIR'), name).toMatch(/^\//);
      expect(env(m, 'MESOS_HOSTNAME'), name).toBe(m.hostname);
      expect(m.depends_on?.['zookeeper']?.condition, name).toBe('service_healthy');
      expect(m.healthcheck, name).toBeDefined();
    }
    expect(svc(config, 'mesos-master').ports?.some((p) => Number(p.target) === 5050)).toBe(true);
    expect(svc(config, 'zookeeper').healthcheck).toBeDefined();
  });

  it('requires framework authentication and ships the credentials and ACLs Locus needs', () => {
    const m = svc(config, 'mesos-master');
    expect(env(m, 'MESOS_AUTHENTICATE_HTTP_FRAMEWORKS')).toBe('true');
    const mounts = volumeTargets(m);
    const credPath = env(m, 'MESOS_CREDENTIALS') ?? '';
    const aclPath = env(m, 'MESOS_ACLS') ?? '';
    const hostDir = (p: string): string => {
      for (const [target, source] of mounts) if (p.startsWith(target + '/')) return join(source, p.slice(target.length + 1));
      throw new Error(`${p} is not inside a mounted directory of mesos-master`);
    };
    const creds = JSON.parse(readFileSync(hostDir(credPath), 'utf8')) as { credentials: { principal: string; secret: string }[] };
    const acls = JSON.parse(readFileSync(hostDir(aclPath), 'utf8')) as Record<string, unknown>;

    const locusArgs = argv(svc(config, 'locus').command);
    const principal = flag(locusArgs, 'principal');
    expect(principal).toBe('locus');
    const secretFile = flag(locusArgs, 'secret-file') ?? '';
    const locusMounts = volumeTargets(svc(config, 'locus'));
    const secretDir = [...locusMounts].find(([t]) => secretFile.startsWith(t + '/'));
    expect(secretDir, 'the secret file is mounted into locus').toBeDefined();
    const secret = readFileSync(join(secretDir?.[1] ?? '', secretFile.slice((secretDir?.[0] ?? '').length + 1)), 'utf8').trim();
    expect(creds.credentials).toContainEqual({ principal: 'locus', secret });

    const role = flag(locusArgs, 'role') ?? '';
    for (const action of ['register_frameworks', 'run_tasks', 'reserve_resources', 'unreserve_resources', 'create_volumes', 'destroy_volumes']) {
      const rules = acls[action] as { principals: { values?: string[] }; roles?: { values?: string[]; type?: string } }[] | undefined;
      expect(rules, `ACL ${action}`).toBeDefined();
      const mine = (rules ?? []).filter((r) => r.principals.values?.includes('locus'));
      expect(mine.length, `ACL ${action} names principal locus`).toBeGreaterThan(0);
      // A rule without a role scope (or with type ANY) allows every role; a listed scope must name ours.
      const roles = mine[0]?.roles;
      const allowsRole = roles?.values === undefined ? roles?.type === undefined || roles.type === 'ANY' : roles.values.includes(role);
      expect(allowsRole, `ACL ${action} allows role ${role} (${JSON.stringify(roles)})`).toBe(true);
    }
  });

  it('runs agents with cgroups isolation, racks, disk for volumes, privileges and the cgroup tree', () => {
    const racks = new Set<string>();
    const cgroupRoots = new Set<string>();
    for (const name of ['mesos-agent-1', 'mesos-agent-2']) {
      const a = svc(config, name);
      expect(env(a, 'MESOS_MASTER'), name).toBe(ZK_MASTER);
      const isolation = (env(a, 'MESOS_ISOLATION') ?? '').split(',');
      expect(isolation, name).toEqual(expect.arrayContaining(['cgroups/cpu', 'cgroups/mem', 'filesystem/linux']));
      const rack = /(?:^|;)rack:([^;]+)/.exec(env(a, 'MESOS_ATTRIBUTES') ?? '')?.[1];
      expect(rack, `${name} has a rack attribute`).toBeDefined();
      racks.add(rack ?? '');
      expect(env(a, 'MESOS_RESOURCES'), name).toMatch(/(?:^|;)disk:\d+/);
      expect(a.privileged, name).toBe(true);
      expect(volumeTargets(a).get('/sys/fs/cgroup'), name).toBe('/sys/fs/cgroup');
      expect(env(a, 'MESOS_HOSTNAME'), name).toBe(a.hostname);
      cgroupRoots.add(env(a, 'MESOS_CGROUPS_ROOT') ?? '');
      expect(a.healthcheck, name).toBeDefined();
      // Executor images come from docker-save archives in compose/images.
      const registry = env(a, 'MESOS_DOCKER_REGISTRY') ?? '';
      expect(volumeTargets(a).get(registry), name).toBe(join(composeDir, 'images'));
    }
    expect(racks.size, 'agents sit in different racks').toBe(2);
    expect(cgroupRoots.size, 'agents have distinct cgroup roots').toBe(2);
  });

  it('runs Redis with AOF persistence on a volume', () => {
    const r = svc(config, 'redis');
    const args = argv(r.command);
    expect(flag(args, 'appendonly')).toBe('yes');
    expect(volumeTargets(r).has('/data')).toBe(true);
    expect(r.healthcheck).toBeDefined();
  });

  it('wires locus to the masters, Redis and its published HTTP and gRPC ports', () => {
    const l = svc(config, 'locus');
    const args = argv(l.command);
    expect(args[0]).toBe('framework');
    // The master URL is the one the masters register under in ZooKeeper.
    const master = flag(args, 'master');
    expect(master).toBe(ZK_MASTER);
    expect(master).toBe(env(svc(config, 'mesos-master'), 'MESOS_ZK'));
    const zk = new URL(master ?? '');
    expect(config.services[zk.hostname], 'the ZooKeeper host is a service').toBeDefined();

    const redis = new URL(flag(args, 'redis') ?? '');
    expect(redis.protocol).toBe('redis:');
    expect(config.services[redis.hostname], 'the Redis host is a service').toBeDefined();
    expect(redis.port === '' ? '6379' : redis.port).toBe('6379');

    const targets = (l.ports ?? []).map((p) => String(p.target));
    expect(targets).toContain(flag(args, 'http-port'));
    expect(targets).toContain(flag(args, 'grpc-port'));
    expect(flag(args, 'http-port')).toBe('8080');
    // Published ports reach the container's interfaces, not its loopback: the APIs must listen on all.
    expect(flag(args, 'http-host')).toBe('0.0.0.0');
    expect(flag(args, 'grpc-port')).toBe('9090');

    for (const dep of ['zookeeper', 'mesos-master', 'redis']) {
      expect(l.depends_on?.[dep]?.condition, `locus waits for ${dep}`).toBe('service_healthy');
    }
    expect(l.healthcheck).toBeDefined();

    // Built from the repository's Dockerfile, and the config it is given exists.
    expect(resolve(l.build?.context ?? '')).toBe(root);
    expect(existsSync(join(root, l.build?.dockerfile ?? 'Dockerfile'))).toBe(true);
    const configFile = flag(args, 'config') ?? '';
    const mount = [...volumeTargets(l)].find(([t]) => configFile.startsWith(t + '/'));
    expect(mount, 'the --config file is mounted').toBeDefined();
    const frameworkYaml = parse(readFileSync(join(mount?.[1] ?? '', configFile.slice((mount?.[0] ?? '').length + 1)), 'utf8')) as Record<string, unknown>;
    // Agents load the executor image by the name the framework asks for.
    expect(frameworkYaml['executor-image']).toBe(l.image);
    const entry = argv(l.entrypoint);
    const script = entry.find((a) => a.endsWith('.sh')) ?? '';
    const scriptMount = [...volumeTargets(l)].find(([t]) => script.startsWith(t + '/'));
    expect(scriptMount && existsSync(join(scriptMount[1], script.slice(scriptMount[0].length + 1))), 'the entrypoint script exists').toBe(true);
  });

  it('puts each DataNode in its agent network namespace under the agent hostname', () => {
    const nn = svc(config, 'hdfs-namenode');
    expect(nn.healthcheck).toBeDefined();
    for (const [dn, agent] of [
      ['hdfs-datanode-1', 'mesos-agent-1'],
      ['hdfs-datanode-2', 'mesos-agent-2'],
    ] as const) {
      const d = svc(config, dn);
      expect(d.network_mode, dn).toBe(`service:${agent}`);
      expect(env(d, 'HDFS-SITE.XML_dfs.datanode.hostname'), dn).toBe(svc(config, agent).hostname);
      expect(env(d, 'CORE-SITE.XML_fs.defaultFS'), dn).toBe('hdfs://hdfs-namenode:8020');
      expect(d.depends_on?.['hdfs-namenode']?.condition, dn).toBe('service_healthy');
      expect(d.depends_on?.[agent]?.condition, dn).toBe('service_healthy');
    }
    expect(nn.hostname).toBe('hdfs-namenode');
  });

  it('puts each GlusterFS server in its agent network namespace', () => {
    expect(svc(config, 'gluster-1').network_mode).toBe('service:mesos-agent-1');
    expect(svc(config, 'gluster-2').network_mode).toBe('service:mesos-agent-2');
    expect(existsSync(join(composeDir, 'gluster', 'node.sh'))).toBe(true);
    const ceph = svc(config, 'ceph');
    expect(volumeTargets(ceph).get('/etc/ceph')).toBe(volumeTargets(svc(config, 'locus')).get('/etc/ceph'));
  });

  it('gives a health check to every service another waits on as healthy', () => {
    for (const [name, s] of Object.entries(config.services)) {
      for (const [dep, cond] of Object.entries(s.depends_on ?? {})) {
        if (cond.condition !== 'service_healthy') continue;
        expect(svc(config, dep).healthcheck, `${name} waits for ${dep} to be healthy`).toBeDefined();
      }
    }
  });
});
