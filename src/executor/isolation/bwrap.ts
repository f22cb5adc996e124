/**
 * The command line that builds a container with bubblewrap (namespaces and
 * mounts) and setpriv (user, capabilities, no-new-privileges). Pure: the
 * caller passes the top-level entries of the host's root so tests can check
 * the arguments without a host.
 *
 * The container's root is a fresh tmpfs holding a read-only bind of every
 * top-level host directory (symlinks recreated), remounted read-only at the
 * end. Binding entry by entry rather than `/` as a whole lets a volume appear
 * at a new top-level path such as `/data` without touching the host.
 */
import { volumeTarget } from './common.js';
import type { HostUser } from './host.js';
import type { ContainerSpec } from './types.js';

/** One entry directly under the host's `/`. */
export interface RootEntry {
  readonly name: string;
  readonly kind: 'dir' | 'file' | 'symlink';
  readonly target?: string;
}

/** Top-level host entries the container replaces with its own. */
const REPLACED = new Set(['proc', 'dev', 'tmp']);

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
    for (const e of [...opts.rootEntries].sort((x, y) => x.name.localeCompare(y.name))) {
      if (REPLACED.has(e.name)) continue;
      const p = `/${e.name}`;
      if (e.kind === 'symlink') a.push('--symlink', e.target ?? '', p);
      else a.push('--ro-bind', p, p);
    }
    a.push('--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--tmpfs', '/tmp');
  }
  // Mount points inside the private /tmp need their parent directories made first; bwrap
  // would create them root-only (0700), and the unprivileged workload could not reach its own
  // sandbox or volumes. Directories made here are 0755, as on the host.
  const made = new Set<string>();
  const parents = (target: string): void => {
    const parts = target.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const dir = '/' + parts.slice(0, i).join('/');
      if (host || dir === '/tmp' || !dir.startsWith('/tmp/') || made.has(dir)) continue;
      made.add(dir);
      a.push('--perms', '0755', '--dir', dir);
    }
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
