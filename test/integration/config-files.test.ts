/**
 * Every framework config file the repository ships must START a framework,
 * not only parse: the compose `locus` service once could not start because
 * compose/locus/framework.yaml gave `host-map` inline where the code wanted a
 * path. Here the built `locus` binary runs the compose service's own command
 * line (its principal, secret file, config file and tenants file), with the
 * addresses pointed at loopback: a local cluster that demands the compose
 * credentials and a real redis-server. The config snippets in the operator
 * guide are checked the same way, and options the guide names must exist.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { LOCUS_CLI, ensureBuilt } from '../harness/build.js';
import { freePort } from '../harness/ports.js';
import { mountTmpfs, unmountAll } from '../harness/mounts.js';
import { ROOT, checkWith } from '../harness/requires.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { startLocalCluster, type LocalCluster } from '../../src/local/index.js';
import { FRAMEWORK_OPTION_NAMES, readConfigFile, resolveSettings } from '../../src/app/config.js';
import { DEFAULT_KEPT_SANDBOXES } from '../../src/executor/sandbox-retention.js';
import { parseTenantsText } from '../../src/api/auth.js';
import { startFramework } from '../../src/app/framework.js';
import { silentLogger } from '../../src/obs/log.js';
import { ExecutorBook } from '../../src/scheduler/executors.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const composeFile = join(root, 'compose', 'docker-compose.yml');

interface ComposeService {
  command?: string[];
  volumes?: string[];
}

/** The compose `locus` service as written (no variables in its command or mounts). */
function composeLocus(): ComposeService {
  const doc = parse(readFileSync(composeFile, 'utf8')) as { services: Record<string, ComposeService> };
  const s = doc.services['locus'];
  if (!s) throw new Error('compose has no locus service');
  return s;
}

/** Container path → repository path, through the service's bind mounts (`./dir:/target[:ro]`). */
function hostPathOf(service: ComposeService, containerPath: string): string | undefined {
  for (const v of service.volumes ?? []) {
    const [source, target] = v.split(':');
    if (source === undefined || target === undefined || !source.startsWith('.')) continue;
    if (containerPath.startsWith(target + '/')) return join(root, 'compose', source, containerPath.slice(target.length + 1));
  }
  return undefined;
}

/** The framework config files the repository ships: every tracked YAML/JSON map with a framework option among its keys. */
function shippedFrameworkConfigs(): string[] {
  const files = execFileSync('git', ['ls-files', '*.yaml', '*.yml', '*.json'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
  const known = new Set<string>(FRAMEWORK_OPTION_NAMES);
  return files.filter((f) => {
    // Benchmark results are records, not configs.
    if (f.startsWith('test/') || f.startsWith('bench/') || f.startsWith('node_modules/') || f.startsWith('package') || f.startsWith('tsconfig')) return false;
    let doc: unknown;
    try {
      doc = parse(readFileSync(join(root, f), 'utf8'));
    } catch {
      return false;
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return false;
    // Any framework option makes it a framework config: one with a typo'd key is then started too, and must fail.
    return Object.keys(doc).some((k) => known.has(k));
  });
}

let dir: string;
let redis: TestRedis;
let cluster: LocalCluster;

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync('/tmp/locus-configs-');
  chmodSync(dir, 0o755);
  redis = await startRedis();
  // The cluster demands the compose credentials, as the compose masters do.
  const creds = JSON.parse(readFileSync(join(root, 'compose/mesos/credentials.json'), 'utf8')) as { credentials: { principal: string; secret: string }[] };
  cluster = await startLocalCluster({
    workDir: join(dir, 'local'), agents: 1, racks: 1, port: 0, isolation: 'auto',
    credentials: creds.credentials,
  });
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  await redis?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly ready: { ready: boolean; subscribed: boolean; redis: boolean } | undefined;
  readonly tenantStatus: number | undefined;
}

/**
 * Start the built `locus framework` with `args`, wait until /readyz says ready (or the process
 * exits), ask the API something as `tenantToken`, then SIGTERM it.
 */
async function runFramework(args: string[], tenantToken?: string): Promise<Run> {
  const proc = spawn(process.execPath, [LOCUS_CLI, 'framework', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: 'warn' } });
  let out = '';
  proc.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  proc.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let ready: Run['ready'];
  let tenantStatus: number | undefined;
  const deadline = Date.now() + 40_000;
  try {
    for (;;) {
      if (proc.exitCode !== null) return { code: proc.exitCode, out, ready, tenantStatus };
      const url = /http api:\s+(\S+)/.exec(out)?.[1];
      if (url !== undefined) {
        const r = await fetch(`${url}/readyz`).catch(() => undefined);
        ready = r ? ((await r.json()) as Run['ready']) : undefined;
        if (ready?.ready) {
          if (tenantToken !== undefined) tenantStatus = (await fetch(`${url}/v1/jobs`, { headers: { authorization: `Bearer ${tenantToken}` } })).status;
          break;
        }
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    if (proc.exitCode === null) proc.kill('SIGTERM');
  }
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
  if (code === 'hung') {
    proc.kill('SIGKILL');
    throw new Error(`locus framework did not stop: ${out}`);
  }
  return { code, out, ready, tenantStatus };
}

describe('shipped framework config files start a framework', () => {
  it('finds the compose config among the shipped framework configs', () => {
    const configs = shippedFrameworkConfigs();
    expect(configs).toContain('compose/locus/framework.yaml');
  });

  it("runs the compose locus service's command line (principal, secret, config, tenants) against loopback", async () => {
    const service = composeLocus();
    const command = [...(service.command ?? [])];
    expect(command[0]).toBe('framework');
    const httpPort = await freePort();
    const grpcPort = await freePort();
    // Addresses go to loopback; files inside the container are the repository's files they are mounted from.
    const overrides: Record<string, string> = {
      master: cluster.masterUrl, redis: redis.url, 'http-host': '127.0.0.1', 'http-port': String(httpPort), 'grpc-port': String(grpcPort),
    };
    const args: string[] = [];
    for (let i = 1; i < command.length; i++) {
      const a = command[i] ?? '';
      if (a.startsWith('--')) {
        const name = a.slice(2);
        const value = command[i + 1] ?? '';
        i++;
        args.push(a, overrides[name] ?? hostPathOf(service, value) ?? value);
      }
    }
    const configFile = args[args.indexOf('--config') + 1] ?? '';
    expect(configFile).toBe(join(root, 'compose/locus/framework.yaml'));
    // Paths the config file names inside the container, mapped the same way; the state dir is a named volume.
    const inFile = parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    for (const [k, v] of Object.entries(inFile)) {
      if (typeof v !== 'string') continue;
      const mapped = hostPathOf(service, v);
      if (mapped !== undefined) args.push(`--${k}`, mapped);
    }
    args.push('--state-dir', join(dir, 'compose-state'));
    // compose/locus/tenants.yaml says which token is the analytics tenant's.
    const r = await runFramework(args, 'analytics-compose-token');
    expect(r.ready, r.out).toEqual({ ready: true, subscribed: true, redis: true, role: 'leader' });
    expect(r.tenantStatus, 'the tenants file was loaded: its token is accepted').toBe(200);
    expect(r.code, r.out).toBe(0);
  }, 90_000);

  it("starts with every other shipped framework config file, and with each of the guide's framework.yaml snippets", async () => {
    const guide = readFileSync(join(root, 'docs/operator-guide.md'), 'utf8');
    const snippets = [...guide.matchAll(/```yaml\n# framework\.yaml\n([\s\S]*?)```/g)].map((m, i) => {
      const f = join(dir, `guide-snippet-${i}.yaml`);
      writeFileSync(f, m[1] ?? '');
      return f;
    });
    const others = shippedFrameworkConfigs().filter((x) => x !== 'compose/locus/framework.yaml').map((f) => join(root, f));
    const files = [...others, ...snippets];
    expect(snippets.length).toBeGreaterThan(1);
    for (const f of files) {
      const r = await runFramework([
        '--config', f, '--master', cluster.masterUrl, '--redis', redis.url, '--principal', 'locus',
        '--secret-file', join(root, 'compose/locus/secret'), '--http-port', String(await freePort()), '--grpc-port', '0',
        '--state-dir', join(dir, 'other-state'), '--tenants-file', join(root, 'compose/locus/tenants.yaml'),
      ]);
      expect(r.ready, `${f}: ${r.out}`).toEqual({ ready: true, subscribed: true, redis: true, role: 'leader' });
      expect(r.code, `${f}: ${r.out}`).toBe(0);
    }
  }, 180_000);

  it('refuses a config file option it does not know, naming it', async () => {
    const f = join(dir, 'typo.yaml');
    writeFileSync(f, 'rack-atribute: rack\nlocality-wait-node: 3s\n');
    const r = await runFramework(['--config', f, '--master', cluster.masterUrl, '--redis', redis.url]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("unknown option 'rack-atribute'");
  }, 30_000);
});

describe('the operator guide says what the code does', () => {
  const guide = readFileSync(join(root, 'docs/operator-guide.md'), 'utf8');

  it('every framework.yaml snippet in the guide is accepted', () => {
    const blocks = [...guide.matchAll(/```yaml\n# framework\.yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    expect(blocks.length).toBeGreaterThan(1);
    for (const b of blocks) {
      const f = join(dir, 'snippet.yaml');
      writeFileSync(f, b);
      expect(() => resolveSettings({ master: 'http://127.0.0.1:5050', redis: 'redis://127.0.0.1:6379' }, readConfigFile(f)), b).not.toThrow();
    }
  });

  it('the tenants file example in the guide is a valid tenants file', () => {
    const block = /```yaml\n# \/etc\/locus\/tenants\.yaml\n([\s\S]*?)```/.exec(guide)?.[1] ?? '';
    const t = parseTenantsText(block);
    expect(t.tenants.map((x) => x.name)).toEqual(['analytics', 'etl']);
    expect(t.tenants[0]?.quota).toEqual({ cpus: 16, mem: 64 * 1024, disk: 500 * 1024 });
  });

  it('every option in the options table exists, with the default the code uses', () => {
    const table = guide.slice(guide.indexOf('### 3.2 Options'), guide.indexOf('### 3.3'));
    const rows = [...table.matchAll(/^\| `([a-z-]+)`(?: \/ `([a-z-]+)`)? \| ([^|]*) \|/gm)];
    expect(rows.length).toBeGreaterThan(20);
    const known = new Set<string>(FRAMEWORK_OPTION_NAMES);
    for (const r of rows) {
      // A row names one option, or two (`a` / `b`); each named one must exist.
      for (const name of [r[1], r[2]].filter((x): x is string => x !== undefined)) expect(known.has(name), `documented option '${name}' exists`).toBe(true);
    }
    // And the other way round: every option the code knows is in the table.
    const documentedNames = new Set(rows.flatMap((r) => [r[1], r[2]]).filter((x): x is string => x !== undefined));
    expect(FRAMEWORK_OPTION_NAMES.filter((n) => !documentedNames.has(n)), 'options missing from the guide').toEqual([]);
    const s = resolveSettings({ master: 'http://m:5050', redis: 'redis://r:6379' });
    const documented = (name: string): string => rows.find((r) => r[1] === name)?.[3]?.trim() ?? '';
    expect(documented('executor-cpus')).toBe(`\`${s.executorCpus}\` / \`${s.executorMemMiB}MiB\``);
    expect(documented('executor-idle-timeout')).toBe(`\`${s.executorIdleTimeoutMs / 1000}s\``);
    expect(documented('locality-wait-node')).toBe(`\`${s.localityWaitNodeMs / 1000}s\` / \`${s.localityWaitRackMs / 1000}s\``);
    expect(documented('stop-timeout')).toBe(`\`${s.stopTimeoutMs / 1000}s\``);
    expect(documented('dispatch-window')).toBe(`\`${String(s.dispatchWindow)}\``);
    expect(documented('executor-prefetch')).toBe(`\`${String(s.executorPrefetch)}\``);
    expect(documented('executor-held-starts')).toBe(`\`${String(s.executorHeldStarts)}\``);
    // Unset, the executor's own default applies: the one documented.
    expect(s.executorKeptSandboxes).toBeUndefined();
    expect(documented('executor-kept-sandboxes')).toBe(`\`${DEFAULT_KEPT_SANDBOXES}\``);
    const base = { master: 'http://m:5050', redis: 'redis://r:6379' };
    expect(resolveSettings({ ...base, 'executor-kept-sandboxes': '0' }).executorKeptSandboxes).toBe(0);
    expect(resolveSettings({ ...base, 'executor-kept-sandboxes': '250' }).executorKeptSandboxes).toBe(250);
    for (const bad of ['-1', 'many', '2.5']) expect(() => resolveSettings({ ...base, 'executor-kept-sandboxes': bad })).toThrow(/executor-kept-sandboxes.*whole number/);
    expect(documented('job-retention')).toBe(`\`${s.jobRetentionMs / 86_400_000}d\``);
    expect(resolveSettings({ ...base, 'job-retention': '0' }).jobRetentionMs).toBe(0);
    expect(resolveSettings({ ...base, 'job-retention': '36h' }).jobRetentionMs).toBe(36 * 3600 * 1000);
    expect(() => resolveSettings({ ...base, 'job-retention': 'a week' })).toThrow(/job-retention/);
    expect(documented('input-storage-give-up')).toBe(`\`${s.inputStorageGiveUpMs / 60_000}m\``);
    expect(resolveSettings({ ...base, 'input-storage-give-up': '0s' }).inputStorageGiveUpMs).toBe(0);
    expect(resolveSettings({ ...base, 'input-storage-give-up': '2m' }).inputStorageGiveUpMs).toBe(120_000);
    expect(() => resolveSettings({ ...base, 'input-storage-give-up': 'a while' })).toThrow(/input-storage-give-up/);
  });
});

describe('storage options reach the storage backends', () => {
  it('host-map: inline short form, inline full form and a file are the same map', () => {
    const base = { master: 'http://m:5050', redis: 'redis://r:6379' };
    const file = join(dir, 'hostmap.yaml');
    writeFileSync(file, 'hosts:\n  ceph-demo: mesos-agent-1\nracks:\n  mesos-agent-1: r1\n');
    expect(resolveSettings(base, { 'host-map': { 'ceph-demo': 'mesos-agent-1' } }).hostMap).toEqual({ hosts: { 'ceph-demo': 'mesos-agent-1' }, racks: {} });
    expect(resolveSettings(base, { 'host-map': { hosts: { 'ceph-demo': 'mesos-agent-1' }, racks: { 'mesos-agent-1': 'r1' } } }).hostMap)
      .toEqual({ hosts: { 'ceph-demo': 'mesos-agent-1' }, racks: { 'mesos-agent-1': 'r1' } });
    const fromFile = resolveSettings({ ...base, 'host-map': file });
    expect(fromFile.hostMap).toEqual({ hosts: { 'ceph-demo': 'mesos-agent-1' }, racks: { 'mesos-agent-1': 'r1' } });
    expect(fromFile.hostMapFile).toBe(file);
    expect(() => resolveSettings({ ...base, 'host-map': join(dir, 'missing.yaml') })).toThrow(/host-map: cannot read/);
  });

  it('hdfs-user defaults to the process user; a delegation token file is read; ceph-id names the cephx client', () => {
    const base = { master: 'http://m:5050', redis: 'redis://r:6379' };
    expect(resolveSettings(base).hdfsUser).toBe(userInfo().username);
    expect(resolveSettings({ ...base, 'hdfs-user': 'etl' }).hdfsUser).toBe('etl');
    const tok = join(dir, 'hdfs.token');
    writeFileSync(tok, 'HAAEaGRmcwAAAA\n');
    expect(resolveSettings({ ...base, 'hdfs-delegation-token-file': tok }).hdfsDelegationToken).toBe('HAAEaGRmcwAAAA');
    // The answer of op=GETDELEGATIONTOKEN, saved as is.
    writeFileSync(tok, JSON.stringify({ Token: { urlString: 'JQAIaGRmcy11c2Vy' } }));
    expect(resolveSettings({ ...base, 'hdfs-delegation-token-file': tok }).hdfsDelegationToken).toBe('JQAIaGRmcy11c2Vy');
    // What `hdfs fetchdt` writes: a binary credentials file, which the NameNode would refuse with no hint why.
    writeFileSync(tok, Buffer.concat([Buffer.from('HDTS'), Buffer.from([0, 0, 1, 0x1d, 0x31, 0x32, 0x37, 0xff, 0x00])]));
    expect(() => resolveSettings({ ...base, 'hdfs-delegation-token-file': tok })).toThrow(/is a Hadoop credentials file \(as 'hdfs fetchdt' writes\), not a token's URL string: save the urlString of .*op=GETDELEGATIONTOKEN/);
    writeFileSync(tok, 'not a token\n');
    expect(() => resolveSettings({ ...base, 'hdfs-delegation-token-file': tok })).toThrow(/does not hold a delegation token's URL string/);
    expect(resolveSettings({ ...base, 'ceph-id': 'locus' }).cephClientName).toBe('client.locus');
    expect(() => resolveSettings({ ...base, checkpoint: 'false' })).toThrow(/checkpoint/);
    expect(resolveSettings({ ...base, 'executor-cpus': '0.25', 'executor-mem': '256MiB' })).toMatchObject({ executorCpus: 0.25, executorMemMiB: 256 });
  });

  it('a CephFS mount alone (no ceph-conf) configures cephfs:// in a running framework, which checks that it is mounted', async () => {
    const mount = join(dir, 'cephfs');
    mkdirSync(mount, { recursive: true });
    const settings = resolveSettings({
      master: cluster.masterUrl, redis: redis.url, principal: 'locus', 'secret-file': join(root, 'compose/locus/secret'),
      'http-port': '0', 'grpc-port': '0', 'state-dir': join(dir, 'ceph-state'), 'cephfs-mount': mount,
    });
    const fw = await startFramework(settings, { logger: silentLogger() });
    const resolveError = async (): Promise<unknown> => await fw.storage.resolve('cephfs://data/', { split: 'file' }).then(() => undefined, (e: unknown) => e);
    try {
      // With the mount wired in, resolving a cephfs:// URI looks at the mount (without it, it stops
      // at once with "no CephFS mount configured"). A plain directory there is what an unmounted
      // CephFS leaves: not mounted, which a stage's listing waits out (not "no files").
      const unmounted = await resolveError();
      expect(unmounted).toMatchObject({ code: 'UNAVAILABLE' });
      expect(String(unmounted)).toContain(`${mount} is not mounted: it is a plain directory on `);
      expect(String(unmounted)).not.toContain('no CephFS mount configured');
      // Something mounted there (a tmpfs standing in for CephFS): the listing gets past the mount
      // to the cluster's maps (found through the default ceph.conf: no Ceph cluster runs here, so
      // it stops there).
      await checkWith([ROOT], 'a mounted CephFS mount point is listed up to the cluster', async () => {
        mkdirSync(mount, { recursive: true });
        mountTmpfs(mount);
        try {
          mkdirSync(join(mount, 'data'));
          const err = String(await resolveError());
          expect(err).toMatch(/the Ceph cluster of /);
          expect(err).not.toContain('not mounted');
        } finally {
          unmountAll();
        }
      });
    } finally {
      await fw.stop();
    }
  }, 60_000);
});

describe('executor-cpus / executor-mem', () => {
  it("are the executor's own share, added to its slots in the launch the master sees", async () => {
    const token = 'b'.repeat(64);
    const settings = resolveSettings({
      master: cluster.masterUrl, redis: redis.url, principal: 'locus', 'secret-file': join(root, 'compose/locus/secret'),
      'http-port': '0', 'grpc-port': '0', 'state-dir': join(dir, 'overhead-state'), 'local-work-dir': join(dir, 'local'),
      'admin-token': token, 'executor-cpus': '0.5', 'executor-mem': '200MiB',
    });
    const fw = await startFramework(settings, { logger: silentLogger() });
    const client = redis.client();
    try {
      await fw.waitForSubscribed(20_000);
      const res = await fetch(`${fw.httpUrl}/v1/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'overhead', retries: 0, tasks: [{}], task: { command: ['true'], resources: { cpus: 0.25, mem: '64MiB', disk: '16MiB' } } }),
      });
      expect(res.status).toBe(201);
      const deadline = Date.now() + 40_000;
      let launched: { id: string; resources: { cpus: number; mem: number } } | undefined;
      let slots: { n: number; cpus: number; mem: number } | undefined;
      while (launched === undefined || slots === undefined) {
        if (Date.now() > deadline) throw new Error('no executor was launched');
        await new Promise((r) => setTimeout(r, 200));
        const state = (await (await fetch(`${cluster.masterUrl}/state`)).json()) as { frameworks: { tasks: { id: string; resources: { cpus: number; mem: number } }[] }[] };
        // The executor's record as the framework stored it: its slots and what each slot takes.
        const book = new ExecutorBook(client);
        const rec = (await book.load())[0];
        launched = state.frameworks.flatMap((f) => f.tasks).find((t) => rec !== undefined && t.id === rec.executorId);
        slots = rec ? { n: rec.slots, cpus: rec.slotResources.cpus, mem: rec.slotResources.mem } : undefined;
      }
      expect(launched.resources.cpus).toBeCloseTo(slots.n * slots.cpus + 0.5, 3);
      expect(launched.resources.mem).toBeCloseTo(slots.n * slots.mem + 200, 3);
    } finally {
      client.disconnect();
      await fw.stop();
    }
  }, 90_000);
});
