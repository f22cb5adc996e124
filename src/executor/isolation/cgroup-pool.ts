/**
 * Spare container cgroups: an emptied cgroup kept for the next container with
 * the same limits, where the layout can rename cgroups (v1).
 *
 * Making a container's cgroup is a mkdir and its limit writes in each of five
 * v1 hierarchies, and removing it five rmdirs that leave an offline memory
 * cgroup for the kernel to reap later; for a short task that is a good part of
 * what its container costs. A spare is renamed twice instead (to `locus-spare-<n>`, a name no container id can take,
 * when its container ends, to the next container's id when it is taken), its
 * limits are already written, and its counters restart (see CgroupDriver.rename).
 *
 * A cgroup becomes a spare only when it is certainly reusable: its container's
 * processes were all killed and waited for, it held no nested containers, and
 * at most SPARE_LEFT_BYTES of memory stay charged to it (page cache of files its
 * container wrote, which would otherwise count against the next one's limit).
 * Only containers directly under the isolator's own directory are pooled, so
 * removing that directory on close removes every spare with it.
 */
import { destroyCgroup, type CgroupDriver, type ContainerCgroup } from './cgroups.js';
import type { ContainerLimits } from './types.js';

/** Memory still charged to an ended container's cgroup above which it is removed, not kept. */
export const SPARE_LEFT_BYTES = 1024 * 1024;

/** How many spares one isolator keeps (each is a directory in every hierarchy). */
export const SPARES_MAX = 32;

/** Spares with the same limits are interchangeable. */
function limitsKey(l: ContainerLimits): string {
  return `${l.cpus}/${l.memMiB}/${l.pids}`;
}

export class CgroupPool {
  /** Spare names by limits key, most recently parked last. */
  private readonly spares = new Map<string, string[]>();
  private count = 0;
  private seq = 0;
  private closed = false;
  /** Containers started in a spare (tests and metrics read it). */
  reused = 0;

  constructor(
    private readonly driver: CgroupDriver,
    /** The isolator's own directory below each hierarchy: spares live directly in it. */
    private readonly parent: readonly string[],
    private readonly max = SPARES_MAX,
  ) {}

  /** Whether cgroups are kept for reuse here at all (a layout that can rename them, a pool of at least one). */
  get reusable(): boolean {
    return this.driver.rename !== undefined && this.max > 0;
  }

  /** How many spares are waiting. */
  get size(): number {
    return this.count;
  }

  /** A cgroup for a container at `rel`: a spare with the same limits when there is one, else a new one. */
  async create(rel: readonly string[], limits: ContainerLimits): Promise<ContainerCgroup> {
    const rename = this.driver.rename;
    if (rename !== undefined && this.holds(rel)) {
      const name = this.spares.get(limitsKey(limits))?.pop();
      if (name !== undefined) {
        this.count--;
        const from = [...this.parent, name];
        try {
          const cg = rename(from, rel);
          this.reused++;
          return cg;
        } catch {
          // Renamed in some hierarchies and not others, or gone: remove both names and start afresh.
          await destroyCgroup(this.driver.open(from), 0).catch(() => undefined);
          await destroyCgroup(this.driver.open(rel), 0).catch(() => undefined);
        }
      }
    }
    return this.driver.create(rel, limits);
  }

  /**
   * The container at `rel` ended and its cgroup is empty: keep it as a spare, or remove it.
   * `leftBytes` is the memory still charged to it; `keepOut` says it must not be reused (it held a
   * nested container, or was not seen empty).
   */
  async release(cg: ContainerCgroup, rel: readonly string[], limits: ContainerLimits, leftBytes: number, keepOut: boolean): Promise<void> {
    const rename = this.driver.rename;
    if (rename === undefined || this.closed || keepOut || !this.holds(rel) || this.count >= this.max || !(leftBytes <= SPARE_LEFT_BYTES)) {
      await cg.remove();
      return;
    }
    const name = `locus-spare-${++this.seq}`;
    try {
      rename(rel, [...this.parent, name]);
    } catch {
      await destroyCgroup(this.driver.open([...this.parent, name]), 0).catch(() => undefined);
      await cg.remove();
      return;
    }
    const key = limitsKey(limits);
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

  private holds(rel: readonly string[]): boolean {
    return rel.length === this.parent.length + 1 && this.parent.every((seg, i) => rel[i] === seg);
  }
}
