/**
 * A throw-away GlusterFS on loopback for locality tests: one glusterd whose
 * bricks pretend to live on three hosts, a distributed volume and a
 * distributed-replicated one, both FUSE-mounted in a temp directory.
 *
 * How the fake hosts work:
 * - /etc/hosts gets `127.0.0.2x <name>` lines tagged with this run's id
 *   (removed on stop); bricks are created as `<name>:/path`, and Gluster takes
 *   any 127.x address as local, so one glusterd serves them all;
 * - pathinfo reports the brick process's gethostname(), so glusterd runs in a
 *   private mount namespace where /usr/sbin/glusterfsd is a wrapper that starts
 *   each brick under `unshare --uts` with hostname = its `-s` host. The same
 *   namespace redirects /var/lib/glusterd, /var/log/glusterfs, /var/run/gluster
 *   into the temp directory so nothing on the host is touched.
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until as untilDone } from './wait.js';

/** A running test Gluster. */
export interface TestGluster {
  readonly dir: string;
  /** Fake host names, in brick order. */
  readonly hosts: readonly string[];
  /** Volume → mount point. */
  readonly mounts: Readonly<Record<string, string>>;
  /** Run the gluster CLI inside glusterd's namespace. */
  cli(args: readonly string[]): Promise<string>;
  /** `getfattr` pathinfo of a path, raw. */
  pathinfo(path: string): Promise<string>;
  stop(): Promise<void>;
}

function run(file: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function until(what: string, deadlineMs: number, check: () => Promise<boolean>): Promise<void> {
  return untilDone(`gluster harness: ${what}`, deadlineMs, check, 100);
}

const HOSTS_FILE = '/etc/hosts';

/** Start glusterd, create and start volumes `dist` (3 bricks) and `repl` (replica 2 × 2), mount both. */
export async function startGluster(): Promise<TestGluster> {
  const dir = await mkdtemp(join(tmpdir(), 'locus-gluster-'));
  const tag = `# locus-test ${dir}`;
  const id = Number(dir.slice(-3).replace(/\D/g, '').slice(-2) || '0');
  const hosts = ['a', 'b', 'c'].map((x) => `locus-gl${id}-${x}`);
  const ips = hosts.map((_, i) => `127.0.${40 + (id % 200)}.${2 + i}`);
  const sock = join(dir, 'run', 'glusterd.socket');
  // Bricks reach glusterd on the default management port, so it must be 24007.
  const port = 24007;
  for (const d of ['glusterd', 'run', 'log', 'varlog', 'varlib', 'varrun', 'bin', 'bricks', 'mnt']) await mkdir(join(dir, d), { recursive: true });
  const pidFile = join(dir, 'run', 'glusterd.pid');
  const mounts: Record<string, string> = {};
  const fusePids: number[] = [];

  const cli = async (args: readonly string[]): Promise<string> => {
    const pid = (await readFile(pidFile, 'utf8')).trim();
    return await run('nsenter', [`--mount=/proc/${pid}/ns/mnt`, 'gluster', '--mode=script', `--glusterd-sock=${sock}`, `--log-file=${join(dir, 'log', 'cli.log')}`, ...args]);
  };

  const stop = async (): Promise<void> => {
    for (const m of Object.values(mounts)) {
      await run('umount', [m]).catch(() => run('umount', ['-l', m]).catch(() => undefined));
    }
    const pids: number[] = [...fusePids];
    const runDir = join(dir, 'run');
    const collect = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
        const p = join(d, e.name);
        if (e.isDirectory()) await collect(p);
        else if (e.name.endsWith('.pid')) {
          const n = Number((await readFile(p, 'utf8').catch(() => '')).trim());
          if (n > 0) pids.push(n);
        }
      }
    };
    await collect(runDir);
    await collect(join(dir, 'varrun'));
    for (const p of pids) {
      try {
        process.kill(p, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await until('gluster processes exit', 10_000, async () => pids.every((p) => {
      try {
        process.kill(p, 0);
        return false;
      } catch {
        return true;
      }
    })).catch(() => {
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
    });
    const text = await readFile(HOSTS_FILE, 'utf8');
    await writeFile(HOSTS_FILE, text.split('\n').filter((l) => !l.endsWith(tag)).join('\n'));
    // LOCUS_TEST_KEEP=1 keeps the logs of a failed start for debugging.
    if (process.env['LOCUS_TEST_KEEP'] !== '1') await rm(dir, { recursive: true, force: true });
  };

  try {
    const hostsText = await readFile(HOSTS_FILE, 'utf8');
    await writeFile(HOSTS_FILE, hostsText.replace(/\n?$/, '\n') + hosts.map((h, i) => `${ips[i]} ${h} ${tag}`).join('\n') + '\n');
    await writeFile(join(dir, 'glusterd.vol'), [
      'volume management',
      '    type mgmt/glusterd',
      `    option working-directory ${join(dir, 'glusterd')}`,
      `    option run-directory ${join(dir, 'run')}`,
      `    option glusterd-sockfile ${sock}`,
      '    option transport-type socket',
      '    option transport.address-family inet',
      `    option transport.socket.listen-port ${port}`,
      '    option ping-timeout 0',
      '    option event-threads 1',
      '    option base-port 49152',
      '    option max-port 49451',
      'end-volume',
      '',
    ].join('\n'));
    const real = join(dir, 'bin', 'glusterfsd.real');
    await copyFile('/usr/sbin/glusterfsd', real);
    await chmod(real, 0o755);
    const wrapper = join(dir, 'bin', 'glusterfsd-wrapper');
    // Brick processes carry `-s <host> ... --brick-name ...`; give each its host's UTS name.
    await writeFile(wrapper, [
      '#!/bin/bash',
      `REAL=${real}`,
      'host=""; brick=0; prev=""',
      'for a in "$@"; do [ "$prev" = "-s" ] && host=$a; [ "$a" = "--brick-name" ] && brick=1; prev=$a; done',
      'if [ $brick = 1 ] && [ -n "$host" ]; then',
      '  exec unshare --uts bash -c \'hostname "$1"; shift; exec -a glusterfsd "$@"\' _ "$host" "$REAL" "$@"',
      'fi',
      'exec -a "$0" "$REAL" "$@"',
      '',
    ].join('\n'));
    await chmod(wrapper, 0o755);
    const script = [
      `mount --bind '${join(dir, 'varlog')}' /var/log/glusterfs`,
      `mount --bind '${join(dir, 'varlib')}' /var/lib/glusterd`,
      `mount --bind '${join(dir, 'varrun')}' /var/run/gluster`,
      `mount --bind '${wrapper}' /usr/sbin/glusterfsd`,
      `exec -a glusterd '${real}' -f '${join(dir, 'glusterd.vol')}' -p '${pidFile}' -l '${join(dir, 'log', 'glusterd.log')}'`,
    ].join('\n');
    await run('sh', ['-c', 'mkdir -p /var/log/glusterfs /var/lib/glusterd /var/run/gluster']);
    await run('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', script]);
    await until('glusterd answers', 20_000, async () => (await cli(['pool', 'list'])).includes('localhost'));

    const brick = (h: string, name: string): string => `${h}:${join(dir, 'bricks', h, name)}`;
    for (const h of hosts) for (const n of ['dist', 'r1', 'r2']) await mkdir(join(dir, 'bricks', h, n), { recursive: true });
    const [a, b, c] = hosts as [string, string, string];
    await cli(['volume', 'create', 'dist', ...hosts.map((h) => brick(h, 'dist')), 'force']);
    await cli(['volume', 'create', 'repl', 'replica', '2', brick(a, 'r1'), brick(b, 'r1'), brick(c, 'r2'), brick(a, 'r2'), 'force']);
    for (const v of ['dist', 'repl']) {
      await cli(['volume', 'start', v]);
      await until(`bricks of ${v} online`, 30_000, async () => {
        const xml = await cli(['volume', 'status', v, '--xml']);
        return (xml.match(/<status>1<\/status>/g) ?? []).length >= (v === 'dist' ? 3 : 4);
      });
      const m = join(dir, 'mnt', v);
      await mkdir(m, { recursive: true });
      const fuse = spawn('glusterfs', [`--volfile-server=${a}`, `--volfile-server-port=${port}`, `--volfile-id=${v}`, `--log-file=${join(dir, 'log', `mnt-${v}.log`)}`, `--pid-file=${join(dir, 'run', `fuse-${v}.pid`)}`, m], { stdio: 'ignore' });
      await new Promise((r) => fuse.once('exit', r));
      await until(`mount of ${v}`, 20_000, async () => {
        await run('mountpoint', ['-q', m]);
        return (await run('stat', ['-f', '-c', '%T', m])).includes('fuse');
      });
      mounts[v] = m;
    }
    return { dir, hosts, mounts, cli, stop, pathinfo: async (p) => await run('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.glusterfs.pathinfo', p]) };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
