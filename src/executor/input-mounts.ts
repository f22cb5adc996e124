/**
 * Whether the GlusterFS or CephFS mount an attempt's split is read through is really mounted on
 * this host, asked before the attempt is set up.
 *
 * A split of a `glusterfs://` or `cephfs://` input is read through this host's mount of it: the
 * framework names the file at its path under the mount (AttemptPayload.split.localPath, bound
 * into the container read-only) or the executor streams it through the same mount into scratch
 * (the storage registry's read). When the FUSE or kernel client is gone, the mount point is a
 * plain, empty directory again and the file is "not there": the launch failed (the bound path
 * does not exist) or the read did (ENOENT), both counted against the task, so a job could fail
 * on one host's broken mount and its retries were never steered elsewhere. Told here, it is the
 * host's trouble (INPUT_UNREACHABLE: not counted, the retry avoids the host), as the framework's
 * listing treats the same mount gone as the storage away (storage/fs-lister.ts whyNotMounted).
 */
import { CEPHFS_FS_TYPES, GLUSTER_FS_TYPES, MissingMountPoint, whyNotMounted } from '../storage/fs-lister.js';
import type { ExecutorStorageConfig } from '../storage/executor-config.js';
import { parseStorageUri } from '../storage/uri.js';

/** A mount of this host's storage configuration that splits are read through. */
export interface InputMount {
  readonly kind: 'gluster' | 'cephfs';
  readonly mountPoint: string;
  /** The filesystem types a directory inside such a mount has (whyNotMounted's `types`). */
  readonly types: readonly string[];
  /** How an operator knows it: the storage and the setting that names it. */
  readonly label: string;
}

/** Why a mount is not mounted (undefined: it is); throws when it cannot be looked at. */
export type MountCheck = (mountPoint: string, types: readonly string[], timeoutMs: number) => Promise<string | undefined>;

/** Options of InputMounts. */
export interface InputMountsOptions {
  /**
   * How long a mount found mounted is taken as mounted without a look (default OK_FOR_MS): a busy
   * executor starts many attempts a second over one mount, and each look is two stat calls on it.
   */
  readonly okForMs?: number;
  /** How long a look at a mount point may take before it counts as hung (default CHECK_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  readonly now?: () => number;
  /** The check (default whyNotMounted, which keeps one stat outstanding per hung mount point). */
  readonly check?: MountCheck;
}

/** How long a positive look at a mount stands (InputMountsOptions.okForMs). */
export const OK_FOR_MS = 1500;
/**
 * A mount point's stat that has not returned in this long is taken as a hung mount. Shorter than
 * the framework's storage timeout: the look holds the attempt's set-up turn, and a healthy mount
 * answers a stat of its root in milliseconds.
 */
export const CHECK_TIMEOUT_MS = 10_000;

/** What InputMounts looks at of a split. */
export interface SplitRead {
  readonly uri: string;
  readonly localPath?: string;
  readonly sources?: readonly unknown[];
}

function trimSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/** The configured GlusterFS and CephFS mounts of one host, and the last good look at each. */
export class InputMounts {
  private readonly okForMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly check: MountCheck;
  /** Mount point → until when its last look (mounted) stands. */
  private readonly goodUntil = new Map<string, number>();
  /** Mount point → the look under way: attempts set up at once share one. */
  private readonly looking = new Map<string, Promise<string | undefined>>();

  constructor(private readonly gluster: Readonly<Record<string, string>>, private readonly cephfsMount: string | undefined, o: InputMountsOptions = {}) {
    this.okForMs = o.okForMs ?? OK_FOR_MS;
    this.timeoutMs = o.timeoutMs ?? CHECK_TIMEOUT_MS;
    this.now = o.now ?? Date.now;
    this.check = o.check ?? ((m, t, ms) => whyNotMounted(m, t, ms));
  }

  /** The mounts of an executor's storage configuration; undefined when it names none. */
  static fromConfig(c: Pick<ExecutorStorageConfig, 'gluster' | 'ceph'>, o: InputMountsOptions = {}): InputMounts | undefined {
    const gluster = c.gluster?.mounts ?? {};
    const cephfs = c.ceph?.cephfsMount;
    if (Object.keys(gluster).length === 0 && cephfs === undefined) return undefined;
    return new InputMounts(gluster, cephfs, o);
  }

  /** Every configured mount. */
  all(): InputMount[] {
    const out: InputMount[] = Object.entries(this.gluster).map(([volume, mp]) => ({ kind: 'gluster', mountPoint: trimSlash(mp), types: GLUSTER_FS_TYPES, label: `the GlusterFS mount of volume '${volume}' (gluster-mounts)` }));
    if (this.cephfsMount !== undefined) out.push({ kind: 'cephfs', mountPoint: trimSlash(this.cephfsMount), types: CEPHFS_FS_TYPES, label: 'the CephFS mount (cephfs-mount)' });
    return out;
  }

  /**
   * The mount a split is read through on this host, if any, the way the attempt reads it: its
   * local path when it has one (the deepest configured mount holding it), else, unless block
   * servers serve it, the mount its URI names (what the storage registry's read opens).
   */
  mountOf(split: SplitRead): InputMount | undefined {
    const mounts = this.all();
    if (split.localPath !== undefined) {
      const p = split.localPath;
      let best: InputMount | undefined;
      for (const m of mounts) {
        const inside = m.mountPoint === '/' || p === m.mountPoint || p.startsWith(`${m.mountPoint}/`);
        if (inside && (best === undefined || m.mountPoint.length > best.mountPoint.length)) best = m;
      }
      return best;
    }
    if ((split.sources?.length ?? 0) > 0) return undefined;
    let scheme: string;
    let authority: string;
    try {
      ({ scheme, authority } = parseStorageUri(split.uri));
    } catch {
      return undefined;
    }
    if (scheme === 'glusterfs') {
      const mp = this.gluster[authority];
      return mp === undefined ? undefined : mounts.find((m) => m.kind === 'gluster' && m.mountPoint === trimSlash(mp));
    }
    if (scheme === 'cephfs') return mounts.find((m) => m.kind === 'cephfs');
    return undefined;
  }

  /**
   * Why `split` cannot be read through its mount on `host` (undefined: it can, or it is not read
   * through one). Every failure to look counts as the mount's: a stat that hangs or fails
   * (ENOTCONN of a dead FUSE client) is as much the host's trouble as a mount gone.
   */
  async whyUnreadable(split: SplitRead, host: string): Promise<string | undefined> {
    const m = this.mountOf(split);
    if (m === undefined) return undefined;
    const why = await this.look(m).catch((err: unknown) => {
      if (err instanceof MissingMountPoint) {
        return `${m.mountPoint} does not exist: no mount point is there to mount on (a configuration error of this host's storage settings, not the storage away)`;
      }
      return `${m.mountPoint} on ${host} cannot be looked at: ${err instanceof Error ? err.message : String(err)}`;
    });
    if (why === undefined) return undefined;
    return `${split.uri} is read through ${m.label} at ${m.mountPoint}, which is not usable on ${host}: ${why}`;
  }

  /** Whether `m` is mounted (undefined) or why not, from the cache while its last good look stands. */
  private async look(m: InputMount): Promise<string | undefined> {
    const until = this.goodUntil.get(m.mountPoint);
    if (until !== undefined && this.now() < until) return undefined;
    let look = this.looking.get(m.mountPoint);
    if (look === undefined) {
      look = this.check(m.mountPoint, m.types, this.timeoutMs);
      this.looking.set(m.mountPoint, look);
      const done = (): void => void this.looking.delete(m.mountPoint);
      look.then(done, done);
    }
    const why = await look;
    // Only a mount found mounted is remembered: one found gone is looked at again by the next
    // attempt, so the host takes attempts again as soon as its mount is back.
    if (why === undefined) this.goodUntil.set(m.mountPoint, this.now() + this.okForMs);
    else this.goodUntil.delete(m.mountPoint);
    return why;
  }
}
