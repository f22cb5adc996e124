/**
 * The GlusterFS backend: `glusterfs://volume/path`, read through the
 * volume's configured FUSE mount. The virtual xattr
 * `trusted.glusterfs.pathinfo` names the bricks (host:path) holding a file:
 * one brick on a distributed volume, the replica set's bricks on a
 * replicated one. Every split of a file gets the hosts of the file's brick
 * set. Tasks read the file through the mount, never a brick's own copy: a
 * brick holds only the first shard of a file on a sharded volume, and a
 * replica may be stale until self-heal has run; only the client sees the file.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { FileLocations } from '../../core/blocks.js';
import { storageError, toolSaysUnreachable, wrapStorageError } from '../errors.js';
import { expandPath } from '../expand.js';
import { fsLister, GLUSTER_FS_TYPES, MissingMountPoint, whyNotMounted } from '../fs-lister.js';
import type { HostMapper, StorageReplica } from '../hostmap.js';
import type { ResolveOptions, StorageBackend } from '../port.js';
import { fileLocations, uniformBlocks } from '../splits.js';
import { normalisePath, parseStorageUri } from '../uri.js';
import { readXattrs } from '../xattr.js';

/** GlusterFS settings. */
export interface GlusterConfig {
  /** Volume name → its FUSE mount point on this host. */
  readonly mounts: Readonly<Record<string, string>>;
  /** Split size in block mode (default 128 MiB). */
  readonly splitSize?: number;
  readonly timeoutMs?: number;
  readonly getfattrBin?: string;
}

/** One brick holding a file. */
export interface GlusterBrick {
  readonly host: string;
  readonly brickRoot: string;
  readonly path: string;
}

/** Parse a pathinfo value: every `<POSIX(brick):host:path>` in order. */
export function parsePathinfo(value: string): GlusterBrick[] {
  const out: GlusterBrick[] = [];
  for (const m of value.matchAll(/<POSIX\(([^)]*)\):([^:>]+):([^>]+)>/g)) {
    out.push({ brickRoot: m[1] ?? '', host: m[2] ?? '', path: m[3] ?? '' });
  }
  return out;
}

/**
 * The volume a pathinfo value comes from, read from its outermost translator
 * (`<DISTRIBUTE:gv0-dht>`, `<REPLICATE:gv0-replicate-0>`, ...), or undefined
 * when the value does not name one in a form known here.
 */
export function pathinfoVolume(value: string): string | undefined {
  const m = /<[A-Z-]+:([^>]+)>/.exec(value);
  const xlator = m?.[1];
  if (xlator === undefined) return undefined;
  return /^(.+)-(?:dht|replicate-\d+|disperse-\d+|client-\d+|stripe-\d+)$/.exec(xlator)?.[1];
}

/** The GlusterFS backend. */
export class GlusterBackend implements StorageBackend {
  readonly schemes = ['glusterfs', 'gluster'] as const;

  constructor(private readonly config: GlusterConfig, private readonly mapper: HostMapper) {}

  private mountOf(uri: string): { mount: string; path: string; volume: string } {
    const u = parseStorageUri(uri);
    // `glusterfs:///path` (the cephfs:/// habit) names no volume: say that, not "no mount for volume ''".
    if (u.authority === '') throw storageError('INVALID_FIELD', uri, 'names no volume (expected glusterfs://volume/path)');
    const mount = this.config.mounts[u.authority];
    if (mount === undefined) {
      const known = Object.keys(this.config.mounts);
      throw storageError('INVALID_FIELD', uri, `no mount configured for volume '${u.authority}' (use --gluster-mount ${u.authority || 'VOL'}=/mount/point${known.length ? `; configured: ${known.join(', ')}` : ''})`);
    }
    return { mount: mount.replace(/\/$/, ''), path: normalisePath(u.path || '/'), volume: u.authority };
  }

  async resolve(uri: string, options: ResolveOptions): Promise<FileLocations[]> {
    const { mount, path, volume } = this.mountOf(uri);
    const timeoutMs = this.config.timeoutMs ?? 30_000;
    try {
      // An unmounted volume leaves an empty directory behind, where a directory lists no files and
      // a glob matches none: the mount's absence is asked first (and waited for), not read as the
      // path's. Asked again for a path found missing: the mount may have gone while listing.
      const mountGone = async (): Promise<void> => {
        const why = await whyNotMounted(mount, GLUSTER_FS_TYPES, timeoutMs, options.signal === undefined ? {} : { signal: options.signal }).catch((err: unknown) => {
          throw err instanceof MissingMountPoint ? storageError('STORAGE', uri, `${err.message} (gluster-mounts names it for volume '${volume}')`) : err;
        });
        if (why !== undefined) throw storageError('UNAVAILABLE', uri, `${why} (the GlusterFS mount of volume '${volume}' is gone)`);
      };
      await mountGone();
      const files = await expandPath(path, fsLister(mount, timeoutMs, options.signal));
      if (files === undefined) await mountGone();
      if (files === undefined) throw storageError('NOT_FOUND', uri, 'no such file or directory');
      const absPaths = files.map((f) => mount + f.path);
      const { values, errors } = await readXattrs(absPaths, 'trusted.glusterfs.pathinfo', {
        timeoutMs,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(this.config.getfattrBin === undefined ? {} : { getfattrBin: this.config.getfattrBin }),
      });
      return files.map((f, i) => {
        const abs = absPaths[i] as string;
        const fileUri = `glusterfs://${volume}${f.path}`;
        const pathinfo = values.get(abs);
        if (pathinfo === undefined) {
          // A brick server away: DHT still lists the files of the bricks that are up, while
          // getfattr on a file of the missing one says "Transport endpoint is not connected".
          // That is the volume away for now (waited out), not a mount that is not GlusterFS.
          const said = errors.get(abs) ?? '';
          if (toolSaysUnreachable(said)) throw storageError('UNAVAILABLE', fileUri, `cannot reach the brick holding ${abs}: ${said}`);
          throw storageError('STORAGE', fileUri, `no trusted.glusterfs.pathinfo on ${abs} (${errors.get(abs) ?? 'unknown'}); is ${mount} a GlusterFS mount?`);
        }
        // A mount of another volume configured under this name would place the
        // job's tasks by that volume's bricks and read that volume's files.
        const actual = pathinfoVolume(pathinfo);
        if (actual !== undefined && actual !== volume) {
          throw storageError('INVALID_FIELD', fileUri, `${mount} is a mount of volume '${actual}', not '${volume}': correct the gluster-mounts entry for '${volume}'`);
        }
        const bricks = parsePathinfo(pathinfo);
        if (bricks.length === 0) throw storageError('PROTOCOL', fileUri, `unrecognised pathinfo '${pathinfo}'`);
        // No per-host path: the brick path is Gluster's back end (see the header).
        const replicas: StorageReplica[] = bricks.map((b) => ({ names: [b.host] }));
        return fileLocations(fileUri, f.size, uniformBlocks(f.size, this.config.splitSize ?? 128 * 1024 * 1024, replicas), options.split, this.mapper, abs);
      });
    } catch (err) {
      throw wrapStorageError(uri, err);
    }
  }

  async read(uri: string, offset: number, length: number): Promise<Readable> {
    const { mount, path } = this.mountOf(uri);
    if (length <= 0) return createReadStream('/dev/null');
    return createReadStream(mount + path, { start: offset, end: offset + length - 1 });
  }
}
