/**
 * What isolation this host can give, found by looking (root? which cgroup
 * layout? bubblewrap and setpriv present?) and by trying (a throw-away
 * sandbox with every namespace). The report's notes say why, for logs and
 * `locus doctor`; Locus never claims an isolation it has not checked.
 */
import { execFile } from 'node:child_process';
import { parseMountinfo } from '../../core/mountinfo.js';
import { detectCgroupLayout, type CgroupLayout } from './cgroups.js';
import { DEFAULT_PATH, findExecutable } from './host.js';
import { nativeLauncherPath } from './launcher.js';
import type { IsolationReport } from './types.js';
import { readFileSync } from 'node:fs';

/** The report plus what the isolators need to act on it. */
export interface HostIsolation {
  readonly report: IsolationReport;
  readonly layout: CgroupLayout;
  readonly bwrapPath: string | undefined;
  readonly setprivPath: string | undefined;
  readonly prlimitPath: string | undefined;
}

const SEARCH_PATH = `${process.env['PATH'] ?? ''}:${DEFAULT_PATH}`;

function run(file: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, env: {} }, (err, _stdout, stderr) => resolve({ ok: err === null, stderr: String(stderr).trim() }));
  });
}

/** Try a throw-away bwrap sandbox; the namespaces that worked, and why not when none did. */
async function probeNamespaces(bwrap: string): Promise<{ namespaces: string[]; note: string }> {
  // The same kinds of options the isolator uses, so an old bwrap that lacks one is caught here.
  const base = ['--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--tmpfs', '/tmp', '--remount-ro', '/', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--as-pid-1', '--die-with-parent', '--new-session'];
  const withNet = await run(bwrap, [...base, '--unshare-net', '--', '/bin/true'], 10_000);
  if (withNet.ok) return { namespaces: ['pid', 'mount', 'ipc', 'uts', 'net'], note: 'namespaces pid, mount, ipc, uts and net work (tested with a bwrap sandbox)' };
  const noNet = await run(bwrap, [...base, '--', '/bin/true'], 10_000);
  if (noNet.ok) return { namespaces: ['pid', 'mount', 'ipc', 'uts'], note: `namespaces pid, mount, ipc, uts work; a network namespace does not (${withNet.stderr}), so containers share the host network` };
  return { namespaces: [], note: `a bwrap sandbox could not be created: ${noNet.stderr || 'unknown error'}` };
}

/** Look at the host and decide what isolation it supports. */
export async function detectHost(): Promise<HostIsolation> {
  const notes: string[] = [];
  const isRoot = process.getuid?.() === 0;
  notes.push(isRoot ? 'running as root' : `not running as root (uid ${process.getuid?.() ?? 'unknown'}): cannot create cgroups or switch users`);
  const layout = detectCgroupLayout();
  if (layout.version === 'v1') {
    notes.push(`cgroup v1: ${[...layout.mounts].map(([c, m]) => `${c}=${m}`).join(', ')}`);
    for (const m of emptyCgroup2Mounts()) notes.push(`the cgroup2 mount at ${m} has no controllers and is not used`);
  } else if (layout.version === 'v2') {
    notes.push(`cgroup v2 at ${layout.mount}`);
  } else {
    notes.push(`no usable cgroups: ${layout.why}`);
  }
  const bwrapPath = findExecutable('bwrap', SEARCH_PATH);
  const setprivPath = findExecutable('setpriv', SEARCH_PATH);
  const prlimitPath = findExecutable('prlimit', SEARCH_PATH);
  if (!bwrapPath) notes.push('bubblewrap (bwrap) is not installed: install the Debian package bubblewrap');
  if (!setprivPath) notes.push('setpriv is not installed: install the Debian package util-linux');
  let namespaces: string[] = [];
  if (bwrapPath && isRoot) {
    const probe = await probeNamespaces(bwrapPath);
    namespaces = probe.namespaces;
    notes.push(probe.note);
  }
  const native = nativeLauncherPath();
  const linux = isRoot && layout.version !== 'none' && bwrapPath !== undefined && setprivPath !== undefined && namespaces.includes('pid') && namespaces.includes('mount');
  if (linux) {
    notes.push('containers get their own pid, mount, ipc and uts namespaces, a root holding only the system directories (read-only), their sandbox, inputs and volumes, cgroup limits for cpu, memory and pids, and run unprivileged (one uid per tenant)');
    notes.push(native !== undefined
      ? `containers start from the native launcher ${native}`
      : 'containers start with bwrap and setpriv: the native launcher (locus-spawn) is not built, which costs about five times the CPU per container; install gcc and run npm run build');
  } else {
    notes.push('containers will run as plain processes with rlimits: NOT isolated');
  }
  const report: IsolationReport = {
    kind: linux ? 'linux' : 'process',
    cgroups: layout.version === 'none' ? 'none' : layout.version,
    namespaces,
    notes,
    ...(linux ? { launcher: native !== undefined ? ('native' as const) : ('bwrap' as const) } : {}),
  };
  return { report, layout, bwrapPath, setprivPath, prlimitPath };
}

function emptyCgroup2Mounts(): string[] {
  try {
    return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
      .filter((m) => m.fsType === 'cgroup2')
      .map((m) => m.mountPoint);
  } catch {
    return [];
  }
}
