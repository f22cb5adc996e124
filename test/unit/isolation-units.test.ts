/**
 * The pure parts of the isolation module: cgroup layout detection from
 * mountinfo, limit files for v1 and v2, the bwrap command line, users, exit
 * mapping, volumes on the command line, rlimits, and log rotation.
 */
import { existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { bwrapArgs, ETC_ENTRIES } from '../../src/executor/isolation/bwrap.js';
import { EtcView, removeStaleViews } from '../../src/executor/isolation/etc-view.js';
import { decideLayout, keyedValue, v1LimitFiles, v2LimitFiles } from '../../src/executor/isolation/cgroups.js';
import { buildExit, validateSpec } from '../../src/executor/isolation/common.js';
import { diskUsageBytes, resolveUser } from '../../src/executor/isolation/host.js';
import { parseSpawnLine, spawnFrame } from '../../src/executor/isolation/launcher.js';
import { RotatingLog } from '../../src/executor/isolation/logs.js';
import { rlimitArgv } from '../../src/executor/isolation/process.js';
import type { ContainerSpec } from '../../src/executor/isolation/types.js';
import { DEFAULT_TENANT_UIDS, parseTenantUids, tenantOfOutput, tenantUid } from '../../src/executor/isolation/tenant.js';
import { checkTenantIsolation } from '../../src/app/tenant-isolation.js';
import { parseVolume } from '../../src/cli/commands/exec.js';

// This machine: v1 per controller plus an empty cgroup2 at /sys/fs/cgroup/unified.
const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const UNIFIED = `29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n`;
const COMOUNTED = `32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
`;

/** The layout as v1, failing the test otherwise (a narrowing that cannot skip the checks after it). */
function asV1<L extends { version: string }>(layout: L): Extract<L, { version: 'v1' }> {
  expect(layout.version).toBe('v1');
  return layout as Extract<L, { version: 'v1' }>;
}

describe('cgroup layout', () => {
  test('an empty cgroup2 mount beside v1 hierarchies does not count as v2', () => {
    const layout = decideLayout(HYBRID, (m) => (m === '/sys/fs/cgroup/unified' ? '' : undefined));
    const v1 = asV1(layout);
    expect(v1.mounts.get('memory')).toBe('/sys/fs/cgroup/memory');
    expect(v1.mounts.get('freezer')).toBe('/sys/fs/cgroup/freezer');
  });

  test('a unified /sys/fs/cgroup with controllers is v2', () => {
    expect(decideLayout(UNIFIED, () => 'cpuset cpu io memory hugetlb pids rdma misc\n')).toEqual({ version: 'v2', mount: '/sys/fs/cgroup' });
  });

  test('co-mounted controllers share one hierarchy', () => {
    const layout = decideLayout(COMOUNTED, () => undefined);
    const v1 = asV1(layout);
    expect(v1.mounts.get('cpuacct')).toBe(v1.mounts.get('cpu'));
  });

  test('no cgroups or missing controllers say why', () => {
    expect(decideLayout('', () => undefined)).toEqual({ version: 'none', why: 'no cgroup filesystem is mounted' });
    const onlyUnified = decideLayout(UNIFIED, () => '');
    expect(onlyUnified.version).toBe('none');
    const noPids = decideLayout(COMOUNTED.split('\n').slice(0, 2).join('\n'), () => undefined);
    expect(noPids).toEqual({ version: 'none', why: 'cgroup v1 controllers missing: pids' });
  });

  test('limit files', () => {
    const limits = { cpus: 0.5, memMiB: 256, diskMiB: 0, pids: 128 };
    expect(v1LimitFiles(limits)).toEqual({
      cpu: [['cpu.shares', '512'], ['cpu.cfs_period_us', '100000'], ['cpu.cfs_quota_us', '50000']],
      memory: [['memory.limit_in_bytes', String(256 * 1024 * 1024)], ['memory.memsw.limit_in_bytes', String(256 * 1024 * 1024)]],
      pids: [['pids.max', '128']],
    });
    expect(v2LimitFiles(limits)).toEqual([
      ['cpu.weight', '50'],
      ['cpu.max', '50000 100000'],
      ['memory.max', String(256 * 1024 * 1024)],
      ['memory.swap.max', '0'],
      ['pids.max', '128'],
    ]);
    // Zero means no limit: nothing is written.
    expect(v2LimitFiles({ cpus: 0, memMiB: 0, diskMiB: 0, pids: 0 })).toEqual([]);
  });

  test('keyed files', () => {
    expect(keyedValue('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n', 'oom_kill')).toBe(2);
    expect(keyedValue('usage_usec 1500\nuser_usec 1000\n', 'usage_usec')).toBe(1500);
    expect(keyedValue(undefined, 'oom_kill')).toBe(0);
  });
});

function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return { id: 'c1', argv: ['sh', '-c', 'echo hi'], env: {}, sandboxDir: '/var/sb/c1', limits: { cpus: 1, memMiB: 64, diskMiB: 0, pids: 0 }, volumes: [], network: 'none', ...over };
}

describe('bwrap command line', () => {
  const opts = {
    infoFd: 3,
    blockFd: 4,
    setprivPath: '/usr/bin/setpriv',
    env: { PATH: '/usr/bin' },
    rootEntries: [
      { name: 'usr', kind: 'dir' as const },
      { name: 'bin', kind: 'symlink' as const, target: 'usr/bin' },
      { name: 'proc', kind: 'dir' as const },
      { name: 'tmp', kind: 'dir' as const },
      { name: 'root', kind: 'dir' as const },
      { name: 'var', kind: 'dir' as const },
      { name: 'home', kind: 'dir' as const },
      { name: 'etc', kind: 'dir' as const },
    ],
  };
  const nobody = { name: 'nobody', uid: 65534, gid: 65534 };

  test('namespaces, pid 1, private /proc and /tmp, read-only root', () => {
    const a = bwrapArgs(spec(), nobody, opts);
    const s = a.join(' ');
    expect(s).toContain('--unshare-pid --unshare-ipc --unshare-uts --unshare-net');
    expect(a).toContain('--as-pid-1');
    expect(s).toContain('--ro-bind /usr /usr');
    expect(s).toContain('--symlink usr/bin /bin');
    expect(s).not.toContain('--ro-bind /proc');
    expect(s).not.toContain('--ro-bind /tmp');
    // Only the system directories and a list of /etc files: no /root, /var, /home, nor /etc as a whole.
    for (const hidden of ['/root', '/var', '/home', '/etc', '/proc', '/tmp']) expect(s).not.toContain(`--ro-bind ${hidden} `);
    expect(s).toContain('--ro-bind-try /etc/passwd /etc/passwd');
    expect(s).not.toContain('/etc/shadow');
    // The sandbox's parents are made empty (0755) in the container's own root, then the sandbox bound.
    expect(s).toContain('--proc /proc --dev /dev --perms 1777 --tmpfs /tmp --perms 0755 --dir /var --perms 0755 --dir /var/sb --bind /var/sb/c1 /var/sb/c1');
    expect(s).toContain('--remount-ro /');
    expect(s).toContain('--setenv PATH /usr/bin');
    // The last word before the workload: setpriv drops the user, capabilities and privileges.
    expect(s.endsWith('-- /usr/bin/setpriv --reuid 65534 --regid 65534 --init-groups --no-new-privs --bounding-set -all --inh-caps -all --pdeathsig SIGKILL -- sh -c echo hi')).toBe(true);
  });

  test('with an /etc copy, /etc is one read-only bind of it and only its directories are bound from the host', () => {
    const s = bwrapArgs(spec(), nobody, { ...opts, etc: { dir: '/run/locus/etc-x', subdirs: ['ssl', 'alternatives'] } }).join(' ');
    expect(s).toContain('--ro-bind /run/locus/etc-x /etc --ro-bind-try /etc/ssl /etc/ssl --ro-bind-try /etc/alternatives /etc/alternatives --proc /proc');
    for (const name of ETC_ENTRIES.filter((n) => n !== 'ssl' && n !== 'alternatives')) expect(s).not.toContain(`/etc/${name} `);
  });

  test('host network, volumes in parent-first order, root keeps a reduced capability set', () => {
    const a = bwrapArgs(
      spec({
        network: 'host',
        volumes: [
          { hostPath: '/h/deep', containerPath: '/data/deep', readOnly: true },
          { hostPath: '/h/data', containerPath: '/data', readOnly: false },
          { hostPath: '/h/in', containerPath: 'in', readOnly: true },
        ],
      }),
      { name: 'root', uid: 0, gid: 0 },
      opts,
    );
    const s = a.join(' ');
    expect(a).not.toContain('--unshare-net');
    expect(s.indexOf('--bind /h/data /data')).toBeLessThan(s.indexOf('--ro-bind /h/deep /data/deep'));
    expect(s).toContain('--ro-bind /h/in /var/sb/c1/in');
    const caps = a[a.indexOf('--bounding-set') + 1] ?? '';
    expect(caps.startsWith('-all,+chown')).toBe(true);
    expect(caps).not.toContain('sys_admin');
  });
});

describe('specs, users, exits', () => {
  test('validation rejects unsafe ids, relative sandboxes and .. in volume paths', () => {
    expect(() => validateSpec(spec({ id: '../x' }))).toThrow(/container id/);
    expect(() => validateSpec(spec({ id: 'payload' }))).toThrow(/container id/);
    expect(() => validateSpec(spec({ sandboxDir: 'rel' }))).toThrow(/absolute/);
    expect(() => validateSpec(spec({ argv: [] }))).toThrow(/empty/);
    expect(() => validateSpec(spec({ volumes: [{ hostPath: '/', containerPath: '../etc', readOnly: false }] }))).toThrow(/'\.\.'/);
    expect(() => validateSpec(spec())).not.toThrow();
  });

  test('users resolve by name or uid', () => {
    const passwd = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';
    expect(resolveUser('nobody', passwd)).toEqual({ name: 'nobody', uid: 65534, gid: 65534 });
    expect(resolveUser('0', passwd)).toEqual({ name: 'root', uid: 0, gid: 0 });
    expect(resolveUser('4242', passwd)).toEqual({ name: undefined, uid: 4242, gid: 4242 });
    expect(() => resolveUser('ghost', passwd)).toThrow(/unknown user 'ghost'/);
  });

  test('128 + n exit codes become signals', () => {
    const usage = { cpuTimeSeconds: 0, memPeakBytes: 0, memCurrentBytes: 0, diskUsedBytes: 0 };
    expect(buildExit(137, null, 'OOM', 'OOM-killed: memory limit 1MiB', usage)).toMatchObject({ exitCode: null, signal: 'SIGKILL', message: 'OOM-killed: memory limit 1MiB' });
    expect(buildExit(3, null, 'EXITED', undefined, usage)).toMatchObject({ exitCode: 3, signal: null, message: 'exited with status 3' });
    expect(buildExit(143, null, 'KILLED', undefined, usage)).toMatchObject({ signal: 'SIGTERM', message: 'terminated by SIGTERM' });
  });

  test('--volume parsing', () => {
    expect(parseVolume('/a:/b')).toEqual({ hostPath: '/a', containerPath: '/b', readOnly: false });
    expect(parseVolume('/a:rel:ro')).toEqual({ hostPath: '/a', containerPath: 'rel', readOnly: true });
    expect(() => parseVolume('/a')).toThrow(/HOSTDIR:CONTAINERPATH/);
  });

  test('rlimits with prlimit and with a shell', () => {
    const s = spec({ limits: { cpus: 1, memMiB: 64, diskMiB: 0, pids: 10 } });
    expect(rlimitArgv(s, '/usr/bin/prlimit')).toEqual(['/usr/bin/prlimit', `--data=${64 * 1024 * 1024}`, '--nproc=10', '--', 'sh', '-c', 'echo hi']);
    expect(rlimitArgv(s, undefined)).toEqual(['/bin/sh', '-c', 'ulimit -d 65536; ulimit -u 10; exec "$@"', 'sh', 'sh', '-c', 'echo hi']);
  });
});

test('logs rotate at the size and keep three generations', () => {
  const dir = mkdtempSync(join(tmpdir(), 'locus-logs-'));
  try {
    const log = new RotatingLog(join(dir, 'stdout'), 100);
    for (let i = 0; i < 10; i++) log.write(Buffer.from(`${String(i).repeat(60)}\n`));
    log.close();
    expect(readdirSync(dir).sort()).toEqual(['stdout', 'stdout.1', 'stdout.2', 'stdout.3']);
    expect(readFileSync(join(dir, 'stdout'), 'utf8')).toBe(`${'9'.repeat(60)}\n`);
    expect(readFileSync(join(dir, 'stdout.3'), 'utf8')).toBe(`${'6'.repeat(60)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('tenant uids', () => {
  test('a tenant keeps its uid, inside the range, and tenants differ', () => {
    const a = tenantUid('acme', DEFAULT_TENANT_UIDS);
    expect(tenantUid('acme', DEFAULT_TENANT_UIDS)).toBe(a);
    expect(a).toBeGreaterThanOrEqual(DEFAULT_TENANT_UIDS.first);
    expect(a).toBeLessThanOrEqual(DEFAULT_TENANT_UIDS.last);
    const uids = new Set(['acme', 'globex', 'initech', 'umbrella', 'default'].map((t) => tenantUid(t, DEFAULT_TENANT_UIDS)));
    expect(uids.size).toBe(5);
    expect(tenantUid('anyone', { first: 5000, last: 5000 })).toBe(5000);
  });

  test('ranges parse, off turns it off, unsafe ranges are refused', () => {
    expect(parseTenantUids('300000-300099')).toEqual({ first: 300000, last: 300099 });
    expect(parseTenantUids('off')).toBeUndefined();
    expect(() => parseTenantUids('0-100')).toThrow(/INVALID|tenant-uids/);
    expect(() => parseTenantUids('5000-4000')).toThrow(/tenant-uids/);
    expect(() => parseTenantUids('nobody')).toThrow(/FIRST-LAST/);
  });

  test('several tenants on process isolation are refused unless allowed', () => {
    expect(() => checkTenantIsolation({ isolation: 'process', allowUnisolatedTenants: false, tenants: 2 })).toThrow(/cannot keep 2 tenants apart/);
    expect(() => checkTenantIsolation({ isolation: 'process', allowUnisolatedTenants: true, tenants: 2 })).not.toThrow();
    expect(() => checkTenantIsolation({ isolation: 'process', allowUnisolatedTenants: false, tenants: 1 })).not.toThrow();
    expect(() => checkTenantIsolation({ isolation: 'linux', allowUnisolatedTenants: false, tenants: 5 })).not.toThrow();
    expect(() => checkTenantIsolation({ isolation: 'auto', allowUnisolatedTenants: false, tenants: 5 })).not.toThrow();
  });

  test('the tenant of an output is the first segment under the outputs root', () => {
    expect(tenantOfOutput('acme/job-1/map/00000')).toBe('acme');
    expect(tenantOfOutput(undefined)).toBeUndefined();
    expect(tenantOfOutput('_other/tmp/x')).toBeUndefined();
    expect(tenantOfOutput('')).toBeUndefined();
  });
});

describe('disk usage walk', () => {
  test('counts each inode once, the same whether the walk is synchronous, asynchronous or both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'locus-du-'));
    try {
      mkdirSync(join(dir, 'sub', 'deeper'), { recursive: true });
      for (let i = 0; i < 12; i++) writeFileSync(join(dir, i % 2 === 0 ? 'sub' : 'sub/deeper', `f${i}`), Buffer.alloc(5000 + i * 1000, 1));
      writeFileSync(join(dir, 'big'), Buffer.alloc(200_000, 2));
      linkSync(join(dir, 'big'), join(dir, 'sub', 'big-again'));
      // What du -s counts: every inode's blocks, once (the hard link is the same inode).
      const inodes = new Map<string, number>();
      const walk = (p: string): void => {
        const st = lstatSync(p);
        inodes.set(`${st.dev}:${st.ino}`, st.blocks * 512);
        if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
      };
      walk(dir);
      const expected = [...inodes.values()].reduce((a, b) => a + b, 0);
      expect(expected).toBeGreaterThan(200_000);
      expect(await diskUsageBytes(dir)).toBe(expected);
      expect(await diskUsageBytes(dir, 0)).toBe(expected);
      expect(await diskUsageBytes(dir, 3)).toBe(expected);
      expect(await diskUsageBytes(join(dir, 'missing'))).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('native launcher protocol', () => {
  test('request frames are a little-endian length and NUL-terminated strings', () => {
    const f = spawnFrame(['L', '7', 'a b', 'ü']);
    const body = Buffer.from('L\u00007\u0000a b\u0000ü\u0000', 'utf8');
    expect(f.readUInt32LE(0)).toBe(body.length);
    expect(f.subarray(4).equals(body)).toBe(true);
  });

  test('event lines: started, exited with a code, killed by a signal, failed with a message', () => {
    expect(parseSpawnLine('S 3 4242')).toEqual({ t: 'started', id: 3, pid: 4242 });
    expect(parseSpawnLine('E 3 0 - -')).toEqual({ t: 'exit', id: 3, code: 0, signal: null });
    expect(parseSpawnLine('E 3 - 9 -')).toEqual({ t: 'exit', id: 3, code: null, signal: 'SIGKILL' });
    expect(parseSpawnLine('E 3 - 15 -')).toEqual({ t: 'exit', id: 3, code: null, signal: 'SIGTERM' });
    expect(parseSpawnLine('E 4 127 - cannot bind /x: No such file or directory')).toEqual({ t: 'exit', id: 4, code: 127, signal: null, failure: 'cannot bind /x: No such file or directory' });
    for (const bad of ['', 'S 3', 'S x 1', 'S 3 0', 'E 3 0', 'X 1 2 - -']) expect(parseSpawnLine(bad), bad).toBeUndefined();
  });
});

describe('the /etc copy containers bind (etc-view.ts)', () => {
  test('copies listed files (symlinks as their targets), makes mount points for directories, follows changes, never copies the rest', () => {
    const root = mkdtempSync(join(tmpdir(), 'locus-etcview-'));
    try {
      const src = join(root, 'etc');
      mkdirSync(src);
      writeFileSync(join(src, 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
      writeFileSync(join(src, 'shadow'), 'secret');
      writeFileSync(join(root, 'zone'), 'UTC-data');
      symlinkSync(join(root, 'zone'), join(src, 'localtime'));
      mkdirSync(join(src, 'ssl', 'certs'), { recursive: true });
      writeFileSync(join(src, 'ssl', 'certs', 'a.pem'), 'cert');
      const view = new EtcView(join(root, 'view'), ['passwd', 'localtime', 'ssl', 'hosts'], src, 1000);

      const b = view.current(0);
      expect(b).toEqual({ dir: join(root, 'view'), subdirs: ['ssl'] });
      expect(readdirSync(b.dir).sort()).toEqual(['localtime', 'passwd', 'ssl']);
      expect(readFileSync(join(b.dir, 'passwd'), 'utf8')).toBe('root:x:0:0::/root:/bin/sh\n');
      expect(lstatSync(join(b.dir, 'localtime')).isFile()).toBe(true);
      expect(readFileSync(join(b.dir, 'localtime'), 'utf8')).toBe('UTC-data');
      // A directory is an empty mount point: its contents are bound from the host, never copied.
      expect(readdirSync(join(b.dir, 'ssl'))).toEqual([]);

      // Within the time to live nothing is checked; after it, a changed file is replaced whole.
      writeFileSync(join(src, 'passwd'), 'root:x:0:0::/root:/bin/sh\nnew:x:1000:1000::/home/new:/bin/sh\n');
      writeFileSync(join(src, 'hosts'), '127.0.0.1 localhost\n');
      view.current(500);
      expect(readFileSync(join(b.dir, 'passwd'), 'utf8')).not.toContain('new:x');
      view.current(1000);
      expect(readFileSync(join(b.dir, 'passwd'), 'utf8')).toContain('new:x:1000');
      expect(readFileSync(join(b.dir, 'hosts'), 'utf8')).toBe('127.0.0.1 localhost\n');
      // A file's mode follows its source.
      expect(statSync(join(b.dir, 'hosts')).mode & 0o777).toBe(statSync(join(src, 'hosts')).mode & 0o777);
      // An entry gone from the source goes from the copy; no temporary file is left.
      rmSync(join(src, 'hosts'));
      view.current(2000);
      expect(readdirSync(b.dir).sort()).toEqual(['localtime', 'passwd', 'ssl']);
      expect(existsSync(join(b.dir, 'shadow'))).toBe(false);

      view.remove();
      expect(existsSync(b.dir)).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('copies left by dead owners are removed, live ones and others kept', () => {
    const root = mkdtempSync(join(tmpdir(), 'locus-etcview-'));
    try {
      for (const n of ['etc-dead', 'etc-live', 'other']) mkdirSync(join(root, n));
      expect(removeStaleViews(root, 'etc-', (owner) => owner === 'live')).toEqual(['etc-dead']);
      expect(readdirSync(root).sort()).toEqual(['etc-live', 'other']);
      expect(removeStaleViews(join(root, 'missing'), 'etc-', () => false)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
