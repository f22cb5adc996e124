/**
 * The command line that builds a container with bubblewrap (namespaces and
 * mounts) and setpriv (user, capabilities, no-new-privileges). Pure: the
 * caller passes the top-level entries of the host's root so tests can check
 * the arguments without a host.
 *
 * The container's root is a fresh tmpfs holding read-only binds of only the
 * system directories programs need (/usr, /bin, /sbin, /lib*, symlinks
 * recreated as on the host) and a short list of files from /etc, a private
 * /proc, /dev and /tmp, then the sandbox, the inputs and the volumes; it is
 * remounted read-only at the end. Nothing else of the host is there: not
 * Locus's state or Redis data, not other sandboxes or tenants' outputs, not
 * /root, /home, /var, /run or /sys. Building the root entry by entry also lets
 * a volume appear at a new top-level path such as `/data`.
 */
import { volumeTarget } from './common.js';
import type { EtcBinds } from './etc-view.js';
import type { HostUser } from './host.js';
import type { ContainerSpec } from './types.js';

/** One entry directly under the host's `/`. */
export interface RootEntry {
  readonly name: string;
  readonly kind: 'dir' | 'file' | 'symlink';
  readonly target?: string;
}

/** Top-level host directories (or symlinks to them) a container sees: what running programs needs. */
export const SYSTEM_DIRS = new Set(['usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']);

/**
 * The entries of /etc a container sees (those the host has): users and groups by name, name
 * resolution, the dynamic linker's cache, time zone, certificates, the alternatives that
 * /usr/bin links through, shell start-up files. Not the rest: /etc holds service
 * configuration and secrets (redis, ceph keyrings, ssh, sudoers, shadow).
 */
export const ETC_ENTRIES = [
  'alternatives', 'bash.bashrc', 'ca-certificates', 'ca-certificates.conf', 'debian_version', 'environment', 'gai.conf',
  'group', 'host.conf', 'hostname', 'hosts', 'inputrc', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'locale.alias',
  'localtime', 'mime.types', 'nsswitch.conf', 'os-release', 'passwd', 'profile', 'protocols', 'resolv.conf', 'services',
  'shells', 'ssl', 'timezone',
];

/**
 * Capabilities kept when a workload asks to run as root inside: the set
 * container runtimes grant by default, without admin, module or raw-I/O rights.
 */
export const ROOT_CAPS = ['chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap', 'net_bind_service', 'sys_chroot', 'mknod', 'audit_write', 'setfcap'];

/** Options that do not come from the spec. */
export interface BwrapOptions {
  readonly infoFd: number;
  readonly blockFd: number;
  readonly rootEntries: readonly RootEntry[];
  readonly setprivPath: string;
  readonly env: Readonly<Record<string, string>>;
  /**
   * A directory holding the ETC_ENTRIES (see etc-view.ts), bound at /etc in one mount, with the
   * directory entries bound over it from the host. Without it each entry is bound on its own.
   */
  readonly etc?: EtcBinds;
}

/** The bwrap argv (without the bwrap binary itself) for a spec. */
export function bwrapArgs(spec: ContainerSpec, user: HostUser, opts: BwrapOptions): string[] {
  const a: string[] = [];
  a.push('--unshare-pid', '--unshare-ipc', '--unshare-uts');
  if (spec.network === 'none') a.push('--unshare-net');
  a.push('--hostname', (spec.hostname ?? spec.id).slice(0, 63));
  // The workload itself is pid 1 (no bwrap reaper inside), and dies with Locus.
  a.push('--as-pid-1', '--die-with-parent', '--new-session');
  a.push('--info-fd', String(opts.infoFd), '--block-fd', String(opts.blockFd));

  const host = spec.hostFilesystem === true;
  if (host) {
    a.push('--bind', '/', '/', '--proc', '/proc', '--dev', '/dev');
  } else {
    // By code unit, not localeCompare: the order only has to be stable, and the first
    // localeCompare of a process loads ICU's collator (~6 ms, on the first container's launch).
    for (const e of [...opts.rootEntries].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))) {
      if (!SYSTEM_DIRS.has(e.name)) continue;
      const p = `/${e.name}`;
      if (e.kind === 'symlink') a.push('--symlink', e.target ?? '', p);
      else if (e.kind === 'dir') a.push('--ro-bind', p, p);
    }
    if (opts.etc !== undefined) {
      a.push('--ro-bind', opts.etc.dir, '/etc');
      for (const name of opts.etc.subdirs) a.push('--ro-bind-try', `/etc/${name}`, `/etc/${name}`);
    } else {
      a.push('--perms', '0755', '--dir', '/etc');
      for (const name of ETC_ENTRIES) a.push('--ro-bind-try', `/etc/${name}`, `/etc/${name}`);
    }
    a.push('--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--tmpfs', '/tmp');
  }
  // Mount points outside the system directories (in the private /tmp, or at the host path of a
  // sandbox under /var) need their parent directories made first; bwrap would create them
  // root-only (0700), and the unprivileged workload could not reach its own sandbox or
  // volumes. Directories made here are 0755 and empty: only the mount points are in them.
  const made = new Set<string>(['/tmp']);
  const bound: string[] = [];
  const parents = (target: string): void => {
    if (host) return;
    const parts = target.split('/').filter(Boolean);
    if (SYSTEM_DIRS.has(parts[0] ?? '')) return;
    for (let i = 1; i < parts.length; i++) {
      const dir = '/' + parts.slice(0, i).join('/');
      // Inside an earlier bind the directory is the host's: leave it as it is.
      if (made.has(dir) || bound.some((b) => dir === b || dir.startsWith(`${b}/`))) continue;
      made.add(dir);
      a.push('--perms', '0755', '--dir', dir);
    }
    bound.push(target);
  };
  parents(spec.sandboxDir);
  a.push('--bind', spec.sandboxDir, spec.sandboxDir);
  // Parents before children, so a volume inside another volume is not hidden by it.
  const vols = spec.volumes
    .map((v) => ({ host: v.hostPath, target: volumeTarget(spec.sandboxDir, v.containerPath), ro: v.readOnly }))
    .sort((x, y) => x.target.split('/').length - y.target.split('/').length);
  for (const v of vols) {
    parents(v.target);
    a.push(v.ro ? '--ro-bind' : '--bind', v.host, v.target);
  }
  if (!host) a.push('--remount-ro', '/');
  a.push('--chdir', spec.sandboxDir, '--clearenv');
  for (const [k, v] of Object.entries(opts.env)) a.push('--setenv', k, v);

  a.push('--', opts.setprivPath, '--reuid', String(user.uid), '--regid', String(user.gid));
  a.push(user.name !== undefined ? '--init-groups' : '--clear-groups');
  const caps = user.uid === 0 ? ['-all', ...ROOT_CAPS.map((c) => `+${c}`)].join(',') : '-all';
  a.push('--no-new-privs', '--bounding-set', caps, '--inh-caps', '-all');
  // Changing uid clears the parent-death signal bwrap set; set it again for the workload.
  a.push('--pdeathsig', 'SIGKILL', '--', ...spec.argv);
  return a;
}
