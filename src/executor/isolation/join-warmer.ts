/**
 * The kernel's wait for a cgroup join, started early (JoinWarmer), and how this process finds its
 * own cgroup to do it with (ownProcsFile, ownProcsLocator).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { CgroupLayout } from './cgroups.js';

/**
 * The `cgroup.procs` file of the cgroup this process is in, in one hierarchy of `layout` (v2: the
 * unified one; v1: pids, which Locus requires), from /proc/self/cgroup's text; undefined when
 * it cannot be told (a path outside this cgroup namespace's root shows `..`).
 */
export function ownProcsFile(procSelfCgroup: string, layout: CgroupLayout): string | undefined {
  for (const line of procSelfCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim());
    if (!m) continue;
    const [, id, controllers, path = '/'] = m;
    if (path.split('/').includes('..')) return undefined;
    if (layout.version === 'v2' && id === '0' && controllers === '') return join(layout.mount, path, 'cgroup.procs');
    if (layout.version === 'v1' && (controllers ?? '').split(',').includes('pids')) {
      const mount = layout.mounts.get('pids');
      return mount === undefined ? undefined : join(mount, path, 'cgroup.procs');
    }
  }
  return undefined;
}

/**
 * This process's own cgroup.procs, found afresh (it may have been moved since the last time), or
 * undefined. At the first call, the file must list this process: a cgroup filesystem mounted from
 * another root than /proc/self/cgroup's paths (a container without its own cgroup namespace) names
 * some other cgroup, or none.
 */
export function ownProcsLocator(layout: CgroupLayout): () => Promise<string | undefined> {
  let checked = false;
  return async () => {
    const file = ownProcsFile(await fsp.readFile('/proc/self/cgroup', 'utf8'), layout);
    if (file === undefined || checked) return file;
    const listed = (await fsp.readFile(file, 'utf8')).split('\n').includes(String(process.pid));
    checked = listed;
    return listed ? file : undefined;
  };
}

/** No cgroup join for this long (a grace period and a bit, on the 2-core VM): the next one would wait. */
export const JOIN_QUIET_MS = 10;

/**
 * Starts the kernel's wait for a cgroup join early. Moving a process between cgroups takes the
 * kernel's cgroup_threadgroup_rwsem for writing, and the first writer after a quiet spell waits
 * out an RCU grace period (rcu_sync): 7-11 ms on the 2-core VM, against about 30 µs for a move right
 * after another. `strace -T` of the launcher showed it on the executor's own container and on the
 * first container of each burst, where the container's init joins its cgroups before anything
 * else: on its start's critical path. So a launch that begins after a quiet spell first moves this
 * process into the cgroup it is in already (found afresh each time), a no-op move that takes the
 * same lock, on a thread-pool thread: the grace period passes while the launch prepares, and the
 * init's join finds the lock warm. The kernel holds its cgroup mutex through that wait, so other
 * cgroup changes on the host wait with it (as they would for the init's own join); one move at a
 * time. A move that fails (a read-only cgroup filesystem, a cgroup not found) turns it off.
 */
export class JoinWarmer {
  private last = -Infinity;
  private inFlight = false;
  private off: boolean;
  /** No-op moves started (tests). */
  started = 0;

  constructor(
    /** This process's own cgroup.procs now (ownProcsLocator); undefined: none. */
    private readonly locate: (() => Promise<string | undefined>) | undefined,
    private readonly now: () => number = () => performance.now(),
    // r+: the file is the kernel's; a path that is not there is never created.
    private readonly write: (file: string, text: string) => Promise<void> = (file, text) => fsp.writeFile(file, text, { flag: 'r+' }),
  ) {
    this.off = locate === undefined;
  }

  /** Whether moves are still made (tests). */
  get working(): boolean {
    return !this.off;
  }

  /** Whether a move is under way (tests). */
  get moving(): boolean {
    return this.inFlight;
  }

  /** A container is about to join its cgroups. */
  launching(): void {
    const at = this.now();
    const quiet = at - this.last >= JOIN_QUIET_MS;
    this.last = at;
    const locate = this.locate;
    if (!quiet || this.off || this.inFlight || locate === undefined) return;
    this.inFlight = true;
    this.started++;
    void (async () => {
      const file = await locate();
      if (file === undefined) throw new Error('this process\'s cgroup cannot be found');
      await this.write(file, String(process.pid));
    })().catch(() => {
      this.off = true;
    }).finally(() => {
      this.inFlight = false;
    });
  }
}
