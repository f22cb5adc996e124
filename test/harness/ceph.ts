/**
 * A throw-away Ceph 16 cluster on loopback for locality tests: one monitor,
 * three memstore OSDs that each pretend to be a different host, an MDS and
 * a ceph-fuse mount of CephFS. Everything lives in a temp directory (conf,
 * keyrings, data, logs, sockets); /etc/ceph is not used.
 *
 * Fake hosts: OSD i gets `crush_location = root=default host=<name>` (placed
 * at start by osd_crush_update_on_start), its own address 127.0.77.(11+i),
 * and runs under `unshare --uts` with that hostname, so the CRUSH host, the
 * OSD metadata and `ceph osd find` all agree. The default replicated rule
 * (chooseleaf over hosts) then puts a PG's replicas on different fake hosts.
 * No manager daemon: locality needs only the monitor's maps.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { until as untilDone } from './wait.js';

/** A running test Ceph. */
export interface TestCeph {
  readonly dir: string;
  readonly conf: string;
  readonly hosts: readonly string[];
  readonly pool: string;
  /** Where CephFS is mounted (undefined when started without it). */
  readonly mount: string | undefined;
  /** Run `ceph <args>` against this cluster. */
  ceph(args: readonly string[]): Promise<string>;
  /** `ceph <args> --format json`, parsed. */
  cephJson(args: readonly string[]): Promise<unknown>;
  stop(): Promise<void>;
}

/** Options. */
export interface TestCephOptions {
  readonly osds?: number;
  readonly cephfs?: boolean;
  readonly pgNum?: number;
}

function exec(file: string, args: readonly string[], env: NodeJS.ProcessEnv, input?: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { env, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

function until(what: string, deadlineMs: number, check: () => Promise<boolean>): Promise<void> {
  return untilDone(`ceph harness: ${what}`, deadlineMs, check, 200);
}

/** Start the cluster; resolves when OSDs are up, the test pool exists and (optionally) CephFS is mounted. */
export async function startCeph(options: TestCephOptions = {}): Promise<TestCeph> {
  const n = options.osds ?? 3;
  const dir = await mkdtemp(join(tmpdir(), 'locus-ceph-'));
  const conf = join(dir, 'ceph.conf');
  const env: NodeJS.ProcessEnv = { ...process.env, CEPH_CONF: conf };
  delete env['CONTAINER_NAME'];
  const hosts = Array.from({ length: n }, (_, i) => `ceph-host-${String.fromCharCode(97 + i)}`);
  const pool = 'locality';
  const mount = options.cephfs === false ? undefined : join(dir, 'mnt');
  const [v2, v1] = [await freePort(), await freePort()];
  const fsid = randomUUID();
  const ceph = (args: readonly string[]): Promise<string> => exec('ceph', ['--connect-timeout', '15', ...args], env);
  const cephJson = async (args: readonly string[]): Promise<unknown> => JSON.parse(await ceph([...args, '--format', 'json'])) as unknown;

  let mounted = false;
  const stop = async (): Promise<void> => {
    if (mounted && mount !== undefined) {
      await exec('fusermount', ['-u', mount], env).catch(() => exec('umount', ['-l', mount], env).catch(() => undefined));
    }
    const runDir = join(dir, 'run');
    const pids: number[] = [];
    // Clients and MDS first, OSDs next, the monitor last.
    const files = (await readdir(runDir).catch(() => [] as string[])).filter((f) => f.endsWith('.pid'));
    const rank = (f: string): number => (f.startsWith('client') ? 0 : f.startsWith('mds') ? 1 : f.startsWith('osd') ? 2 : 3);
    for (const f of files.sort((a, b) => rank(a) - rank(b))) {
      const pid = Number((await readFile(join(runDir, f), 'utf8').catch(() => '')).trim());
      if (pid > 0) {
        pids.push(pid);
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // gone
        }
      }
    }
    const alive = (p: number): boolean => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    };
    await until('ceph daemons exit', 10_000, async () => !pids.some(alive)).catch(() => {
      for (const p of pids.filter(alive)) process.kill(p, 'SIGKILL');
    });
    if (process.env['LOCUS_TEST_KEEP'] !== '1') await rm(dir, { recursive: true, force: true });
  };

  try {
    for (const d of ['log', 'run', 'crash']) await mkdir(join(dir, d), { recursive: true });
    const lines = [
      '[global]',
      `fsid = ${fsid}`,
      `mon_host = [v2:127.0.0.1:${v2},v1:127.0.0.1:${v1}]`,
      'public_network = 127.0.0.0/8',
      'cluster_network = 127.0.0.0/8',
      'ms_bind_ipv4 = true',
      'ms_bind_ipv6 = false',
      'auth_cluster_required = cephx',
      'auth_service_required = cephx',
      'auth_client_required = cephx',
      `keyring = ${dir}/keyring`,
      `log_file = ${dir}/log/$name.log`,
      `mon_cluster_log_file = ${dir}/log/cluster.log`,
      `run_dir = ${dir}/run`,
      `admin_socket = ${dir}/run/$name.asok`,
      `pid_file = ${dir}/run/$name.pid`,
      `crash_dir = ${dir}/crash`,
      `chdir = ${dir}`,
      'osd_pool_default_size = 2',
      'osd_pool_default_min_size = 1',
      'osd_pool_default_pg_autoscale_mode = off',
      'mon_allow_pool_size_one = true',
      'mon_allow_pool_delete = true',
      'mon_warn_on_pool_no_redundancy = false',
      'mon_max_pg_per_osd = 1000',
      'osd_crush_chooseleaf_type = 1',
      'osd_op_num_shards = 1',
      'osd_op_num_threads_per_shard = 2',
      '',
      '[mon]',
      `mon_data = ${dir}/mon.$id`,
      'mon_data_avail_warn = 2',
      'mon_data_avail_crit = 1',
      '',
      '[osd]',
      `osd_data = ${dir}/osd.$id`,
      `keyring = ${dir}/osd.$id/keyring`,
      'osd_objectstore = memstore',
      'memstore_device_bytes = 536870912',
      'osd_crush_update_on_start = true',
      '',
      '[mds]',
      `mds_data = ${dir}/mds.$id`,
      `keyring = ${dir}/mds.$id/keyring`,
      '',
      '[client]',
      `keyring = ${dir}/keyring`,
      `admin_socket = ${dir}/run/$name.$pid.asok`,
    ];
    for (let i = 0; i < n; i++) {
      lines.push('', `[osd.${i}]`, `public_addr = 127.0.77.${11 + i}`, `cluster_addr = 127.0.77.${11 + i}`, `crush_location = root=default host=${hosts[i]}`);
    }
    await writeFile(conf, lines.join('\n') + '\n');

    // Monitor: keys, monmap, mkfs, start.
    await exec('ceph-authtool', ['--create-keyring', `${dir}/mon.keyring`, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], env);
    await exec('ceph-authtool', ['--create-keyring', `${dir}/keyring`, '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mds', 'allow *', '--cap', 'mgr', 'allow *'], env);
    await exec('ceph-authtool', [`${dir}/mon.keyring`, '--import-keyring', `${dir}/keyring`], env);
    await exec('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${v2},v1:127.0.0.1:${v1}]`, `${dir}/monmap`], env);
    await exec('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', `${dir}/monmap`, '--keyring', `${dir}/mon.keyring`], env);
    await exec('ceph-mon', ['-i', 'a'], env);
    await until('the monitor answers', 30_000, async () => (await ceph(['mon', 'stat'])).includes('quorum'));

    // OSDs, each in its own UTS namespace with its fake hostname.
    for (let i = 0; i < n; i++) {
      const uuid = randomUUID();
      const secret = (await exec('ceph-authtool', ['--gen-print-key'], env)).trim();
      const id = (await exec('ceph', ['osd', 'new', uuid, '-i', '-'], env, JSON.stringify({ cephx_secret: secret }))).trim();
      await mkdir(join(dir, `osd.${id}`), { recursive: true });
      await exec('ceph-authtool', ['--create-keyring', `${dir}/osd.${id}/keyring`, '--name', `osd.${id}`, '--add-key', secret], env);
      await exec('ceph-osd', ['-i', id, '--mkfs', '--osd-uuid', uuid], env);
      await exec('unshare', ['--uts', 'sh', '-c', `hostname ${hosts[i]} && exec ceph-osd -i ${id}`], env);
    }
    await until('all OSDs up', 60_000, async () => {
      const s = (await cephJson(['osd', 'stat'])) as { num_up_osds?: number };
      return s.num_up_osds === n;
    });

    await ceph(['osd', 'pool', 'create', pool, String(options.pgNum ?? 16), String(options.pgNum ?? 16), 'replicated']);
    await ceph(['osd', 'pool', 'application', 'enable', pool, 'rados']);

    if (mount !== undefined) {
      await mkdir(join(dir, 'mds.a'), { recursive: true });
      await mkdir(mount, { recursive: true });
      await ceph(['auth', 'get-or-create', 'mds.a', 'mon', 'allow profile mds', 'mgr', 'allow profile mds', 'mds', 'allow *', 'osd', 'allow *', '-o', `${dir}/mds.a/keyring`]);
      await ceph(['osd', 'pool', 'create', 'cephfs_metadata', '8', '8', 'replicated']);
      await ceph(['osd', 'pool', 'create', 'cephfs_data', '16', '16', 'replicated']);
      await ceph(['fs', 'new', 'cephfs', 'cephfs_metadata', 'cephfs_data']);
      await exec('ceph-mds', ['-i', 'a'], env);
      await until('the MDS is active', 60_000, async () => (await ceph(['fs', 'dump', '--format', 'json'])).includes('"up:active"'));
      const fuse = spawn('ceph-fuse', ['-n', 'client.admin', mount], { env, stdio: 'ignore' });
      await new Promise((r) => fuse.once('exit', r));
      mounted = true;
      await until('the CephFS mount', 30_000, async () => (await exec('stat', ['-f', '-c', '%T', mount], env)).includes('fuse'));
    }
    // Objects can be written once the PGs have peered: prove it with one.
    await until('the pool takes writes', 60_000, async () => {
      await exec('rados', ['-p', pool, 'put', 'locus-probe', '/etc/hostname'], env, undefined, 10_000);
      return true;
    });
    return { dir, conf, hosts, pool, mount, ceph, cephJson, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
