/**
 * Spare container cgroups: an emptied cgroup kept for the next container with
 * the same limits, where the layout can restart a cgroup's counters (v1).
 *
 * Making a container's cgroup is a mkdir and its limit writes in each of five
 * v1 hierarchies, and removing it five rmdirs that leave an offline memory
 * cgroup for the kernel to reap later; for a short task that is a good part of
 * what its container costs. A spare is taken as it is instead: its limits are
 * already written, and its counters restart (see CgroupDriver.reuse).
 *
 * So that a spare needs no rename (five renames a container, each waiting on the
 * kernel's cgroup mutex while other containers start and end: a millisecond a
 * container on the event loop in a busy wave), the cgroups of a pool are named
 * `locus-cg-<n>`, a name no container id can take, not after their container;
 * the container knows its cgroup's path (LinuxContainer.cgroupRel), and logs it
 * when it starts.
 *
 * A cgroup becomes a spare only when it is certainly reusable: its container's
 * processes were all killed and waited for, it held no nested containers, and
 * at most SPARE_LEFT_BYTES of memory stay charged to it (page cache of files its
 * container wrote, which would otherwise count against the next one's limit).
 * A spare stays beside the container it came from (under the same parent: the
 * isolator's directory, or the container a nested one ran in) and is taken
 * only for a container in the same place, so it never moves out from under
 * a parent's limits. When a parent ends, its directory goes with the spares in
 * it; removing the isolator's directory on close removes every spare.
 */
import { existsSync } from 'node:fs';
import { destroyCgroup, type CgroupDriver, type ContainerCgroup } from './cgroups.js';
import type { ContainerLimits } from './types.js';

/** Memory still charged to an ended container's cgroup above which it is removed, not kept. */
export const SPARE_LEFT_BYTES = 1024 * 1024;

/** How many spares one isolator keeps (each is a directory in every hierarchy). */
export const SPARES_MAX = 32;

/** Spares under the same parent with the same limits are interchangeable. */
function spareKey(parent: readonly string[], l: ContainerLimits): string {
  return `${parent.join('/')}|${l.cpus}/${l.memMiB}/${l.pids}`;
}

export class CgroupPool {
  /** Spare names by parent and limits (spareKey), most recently parked last. */
  private readonly spares = new Map<string, string[]>();
  private count = 0;
  private seq = 0;
  private closed = false;
  /** Containers started in a spare (tests and metrics read it). */
  reused = 0;

  constructor(
    private readonly driver: CgroupDriver,
    /** The isolator's own directory below each hierarchy: every container's cgroup is inside it. */
    private readonly root: readonly string[],
    private readonly max = SPARES_MAX,
  ) {}

  /** Whether cgroups are kept for reuse here at all (a layout that can restart their counters, a pool of at least one). */
  get reusable(): boolean {
    return this.driver.reuse !== undefined && this.max > 0;
  }

  /** How many spares are waiting. */
  get size(): number {
    return this.count;
  }

  /**
   * A cgroup for container `id` inside `parent` (path segments below each hierarchy): a spare with
   * the same limits when there is one, else a new one. Returns it with its path: a pool's cgroup is
   * named by the pool, a cgroup outside the pool after its container.
   */
  async create(parent: readonly string[], id: string, limits: ContainerLimits): Promise<{ cg: ContainerCgroup; rel: string[] }> {
    const pooled = this.reusable && this.inside(parent);
    const reuse = this.driver.reuse;
    if (pooled && reuse !== undefined) {
      const name = this.spares.get(spareKey(parent, limits))?.pop();
      if (name !== undefined) {
        this.count--;
        const rel = [...parent, name];
        try {
          const cg = reuse(rel);
          this.reused++;
          return { cg, rel };
        } catch {
          // Gone or unreadable: remove what is left of it and start afresh.
          await destroyCgroup(this.driver.open(rel), 0).catch(() => undefined);
        }
      }
    }
    const rel = [...parent, pooled ? `locus-cg-${++this.seq}` : id];
    return { cg: await this.driver.create(rel, limits), rel };
  }

  /**
   * The container whose cgroup is at `rel` ended and its cgroup is empty: keep it as a spare, or
   * remove it. `leftBytes` is the memory still charged to it; `keepOut` says it must not be reused
   * (it held a nested container, or was not seen empty).
   */
  async release(cg: ContainerCgroup, rel: readonly string[], limits: ContainerLimits, leftBytes: number, keepOut: boolean): Promise<void> {
    // Spares made inside this cgroup (it held nested containers) go when it is removed.
    this.dropUnder(rel);
    const name = rel[rel.length - 1] ?? '';
    if (!this.reusable || this.closed || keepOut || !name.startsWith('locus-cg-') || !this.inside(rel.slice(0, -1)) || this.count >= this.max || !(leftBytes <= SPARE_LEFT_BYTES)) {
      await cg.remove();
      return;
    }
    // Gone with its parent (a nested container whose parent ended, and was removed, before its
    // own end was handled): nothing to keep, and a spare counted here would never be taken.
    const dir = cg.dirs[0];
    if (dir === undefined || !existsSync(dir)) return;
    const key = spareKey(rel.slice(0, -1), limits);
    const list = this.spares.get(key);
    if (list) list.push(name);
    else this.spares.set(key, [name]);
    this.count++;
  }

  /** Keep no more spares; the isolator removes its directory, and the spares in it, itself. */
  close(): void {
    this.closed = true;
    this.spares.clear();
    this.count = 0;
  }

  /** Whether `parent` is the pool's root or inside it. */
  private inside(parent: readonly string[]): boolean {
    return parent.length >= this.root.length && this.root.every((seg, i) => parent[i] === seg);
  }

  private dropUnder(rel: readonly string[]): void {
    const dir = rel.join('/');
    for (const [key, names] of this.spares) {
      const parent = key.slice(0, key.indexOf('|'));
      if (parent !== dir && !parent.startsWith(`${dir}/`)) continue;
      this.count -= names.length;
      this.spares.delete(key);
    }
  }
}
