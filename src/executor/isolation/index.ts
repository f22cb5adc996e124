/**
 * The isolation module's entry: pick an isolator for a mode and describe what
 * this host supports. `auto` uses namespaces and cgroups when the host allows
 * them and otherwise falls back to plain processes, loudly.
 */
import { LocusError } from '../../core/errors.js';
import type { Logger } from '../../obs/log.js';
import { cgroupDriver } from './cgroups.js';
import { ownProcsLocator } from './join-warmer.js';
import { detectHost } from './detect.js';
import { LinuxIsolator } from './linux.js';
import { ProcessIsolator } from './process.js';
import type { IsolationMode, IsolationReport, Isolator } from './types.js';

export type * from './types.js';
export { LinuxIsolator, LinuxContainer } from './linux.js';
export { ProcessIsolator } from './process.js';

/** Options of createIsolator. */
export interface IsolatorOptions {
  /** The user workloads run as when a spec names none (default `nobody`). */
  readonly defaultUser?: string;
  /** The directory under each cgroup hierarchy that holds Locus's cgroups (default `locus`). */
  readonly cgroupRoot?: string;
  /** How often sandbox and volume disk usage is measured (default 1000 ms). */
  readonly diskPollMs?: number;
  /** How often cgroups are checked for OOM kills and memory (default 250 ms). */
  readonly monitorPollMs?: number;
  /** Linux: start containers from a warm helper process (default true; see launcher.ts). */
  readonly warmLauncher?: boolean;
  /**
   * Linux: that helper is the native launcher, locus-spawn, when it was built (default true);
   * false starts containers with bubblewrap and setpriv from a Node helper.
   */
  readonly nativeLauncher?: boolean;
  /**
   * Linux: how many emptied cgroups are kept for the next containers with the same limits where
   * their counters can be restarted (v1; default 32, 0 turns it off; see cgroup-pool.ts).
   */
  readonly cgroupSpares?: number;
  /** Linux: containers bind one copy of the /etc entries they see, kept here (default /run/locus; null: a bind per entry). */
  readonly etcViewParent?: string | null;
}

/** Describe the isolation this host supports and why. */
export async function detectIsolation(): Promise<IsolationReport> {
  return (await detectHost()).report;
}

/** Create the isolator for a mode; `linux` fails with UNSUPPORTED (and the reasons) where the host cannot do it. */
export async function createIsolator(mode: IsolationMode, logger: Logger, options: IsolatorOptions = {}): Promise<Isolator> {
  const host = await detectHost();
  const common = {
    defaultUser: options.defaultUser ?? 'nobody',
    diskPollMs: options.diskPollMs ?? 1000,
    monitorPollMs: options.monitorPollMs ?? 250,
  };
  const driver = cgroupDriver(host.layout);
  const canLinux = host.report.kind === 'linux' && driver !== undefined && host.bwrapPath !== undefined && host.setprivPath !== undefined;
  if (mode === 'linux' && !canLinux) {
    throw new LocusError('UNSUPPORTED', `linux isolation is not available on this host: ${host.report.notes.filter((n) => !n.startsWith('containers will run')).join('; ')}`);
  }
  if (mode !== 'process' && canLinux && driver && host.bwrapPath && host.setprivPath) {
    logger.info({ cgroups: host.report.cgroups, namespaces: host.report.namespaces }, 'isolation: linux namespaces and cgroups');
    return LinuxIsolator.create(host.report, driver, logger, {
      ...common,
      cgroupRoot: options.cgroupRoot ?? 'locus',
      bwrapPath: host.bwrapPath,
      setprivPath: host.setprivPath,
      ...(options.warmLauncher === false ? { warmLauncher: false } : {}),
      ...(options.nativeLauncher === false ? { nativeLauncherPath: null } : {}),
      ...(options.cgroupSpares !== undefined ? { cgroupSpares: options.cgroupSpares } : {}),
      ...(options.etcViewParent !== undefined ? { etcViewParent: options.etcViewParent } : {}),
      ownProcs: ownProcsLocator(host.layout),
    });
  }
  const why = mode === 'process' ? 'process isolation was requested' : 'linux isolation is not available on this host';
  const report: IsolationReport = { kind: 'process', cgroups: 'none', namespaces: [], notes: [why, ...host.report.notes] };
  return new ProcessIsolator(report, logger, { ...common, prlimitPath: host.prlimitPath });
}
