/**
 * The Ceph backend: `ceph://pool/object` (RADOS) and `cephfs://path`
 * (CephFS, read through a configured mount). Locations come from the
 * cluster's maps (see ./cluster.ts), fetched once per epoch; each object is
 * then placed by pure computation (see ./maps.ts), with no per-object
 * round trip. Sizes of RADOS objects come from `rados stat`.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import type { FileLocations, SplitMode } from '../../core/blocks.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { mapLimit, withTimeout } from '../concurrency.js';
import { storageError, toolSaysUnreachable, wrapStorageError } from '../errors.js';
import { runTool, ToolError } from '../exec.js';
import { expandPath, globToRegExp, hasGlob } from '../expand.js';
import { CEPHFS_FS_TYPES, MissingMountPoint, fsLister, whyNotMounted } from '../fs-lister.js';
import type { HostMapper, StorageReplica } from '../hostmap.js';
import type { ResolveOptions, StorageBackend } from '../port.js';
import { fileLocations, type RawBlock } from '../splits.js';
import { normalisePath, parseStorageUri } from '../uri.js';
import { readXattrs } from '../xattr.js';
import { CephCluster, type CephConnectionConfig } from './cluster.js';
import { objectName, objectSets, parseLayout } from './layout.js';
import type { CephClusterMap, CephPool } from './maps.js';

/** Ceph settings. */
export interface CephConfig extends CephConnectionConfig {
  /** Where CephFS is mounted on this host (for cephfs:// URIs). */
  readonly cephfsMount?: string;
  readonly radosBin?: string;
  /** `rados stat` calls in flight (default 8). */
  readonly concurrency?: number;
}

/** Where one RADOS object lives: the fast path the scheduler and benchmark use. */
export interface ObjectLocation {
  readonly object: string;
  readonly pgid: string;
  readonly osds: readonly number[];
  readonly hosts: readonly string[];
  readonly racks: readonly string[];
}

/** The Ceph backend. */
export class CephBackend implements StorageBackend {
  readonly schemes = ['ceph', 'rados', 'cephfs'] as const;
  /** The cluster connection (its maps are shared by every lookup). */
  readonly cluster: CephCluster;

  constructor(private readonly config: CephConfig, private readonly mapper: HostMapper, clock: Clock = systemClock) {
    this.cluster = new CephCluster(config, clock);
  }

  private pool(map: CephClusterMap, name: string, uri: string): CephPool {
    const pool = map.pool(name);
    if (pool === undefined) throw storageError('NOT_FOUND', uri, `no pool '${name}' (pools: ${map.poolNames().join(', ')})`);
    return pool;
  }

  /** Place many objects of one pool with the current maps: pure computation after one (cached) map fetch. */
  async locateObjects(poolName: string, names: readonly string[], namespace = '', signal?: AbortSignal): Promise<ObjectLocation[]> {
    const map = await this.cluster.maps(signal);
    const pool = this.pool(map, poolName, `ceph://${poolName}`);
    const out = new Array<ObjectLocation>(names.length);
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      const p = map.place(pool, name, namespace);
      if (p === undefined) throw storageError('STORAGE', `ceph://${poolName}/${name}`, `PG map has no entry for the object's PG (epoch ${map.epoch})`);
      const placed = this.mapper.place(map.replicas(p));
      out[i] = { object: name, pgid: p.pgid, osds: p.acting, hosts: placed.hosts, racks: placed.racks };
    }
    return out;
  }

  /** Re-fetch the maps on the next lookup (after `ceph osd out`, say). */
  refresh(): void {
    this.cluster.invalidate();
  }

  async resolve(uri: string, options: ResolveOptions): Promise<FileLocations[]> {
    try {
      const u = parseStorageUri(uri);
      if (u.scheme === 'cephfs') return await this.resolveCephfs(uri, options);
      return await this.resolveRados(u.authority, u.path.replace(/^\//, ''), uri, options);
    } catch (err) {
      throw wrapStorageError(uri, err);
    }
  }

  private radosArgs(pool: string): string[] {
    const args = ['--conf', this.cluster.confPath, '-p', pool];
    if (this.config.keyring !== undefined) args.push('--keyring', this.config.keyring);
    if (this.config.name !== undefined) args.push('--name', this.config.name);
    return args;
  }

  private async rados(pool: string, args: readonly string[], uri: string, signal?: AbortSignal): Promise<string> {
    try {
      return await runTool(this.config.radosBin ?? 'rados', [...this.radosArgs(pool), ...args], { timeoutMs: this.config.timeoutMs ?? 30_000, ...(signal === undefined ? {} : { signal }) });
    } catch (err) {
      if (err instanceof ToolError) {
        // First: an unreachable cluster is waited for (a stage's listing retries), whatever else the output says.
        if (err.timedOut) throw storageError('TIMEOUT', uri, 'rados did not answer in time', err);
        if (toolSaysUnreachable(err.stderr)) throw storageError('UNAVAILABLE', uri, `cannot reach the cluster: ${err.stderr.trim().split('\n').pop() ?? ''}`, err);
        if (/No such file or directory|\(2\)/.test(err.stderr)) throw storageError('NOT_FOUND', uri, 'no such object');
        // Listing says "rados_nobjects_list_next2: Operation not permitted", without the "(1)" of a stat.
        if (/Permission denied|\(13\)|Operation not permitted/.test(err.stderr)) {
          throw storageError('FORBIDDEN', uri, `permission denied (the cephx user needs osd 'allow r' on pool '${pool}'): ${err.stderr.trim().split('\n').pop() ?? ''}`);
        }
        throw storageError('STORAGE', uri, `rados failed: ${err.stderr.trim().split('\n').pop() ?? ''}`, err);
      }
      throw err;
    }
  }

  private async resolveRados(poolName: string, object: string, uri: string, options: ResolveOptions): Promise<FileLocations[]> {
    if (poolName === '') throw storageError('INVALID_FIELD', uri, 'names no pool (expected ceph://pool/object)');
    const map = await this.cluster.maps(options.signal);
    const pool = this.pool(map, poolName, uri);
    let names: string[];
    if (object === '' || hasGlob(object)) {
      const listed = (await this.rados(poolName, ['ls'], uri, options.signal)).split('\n').filter((l) => l !== '');
      const re = object === '' ? undefined : globToRegExp(object.replace(/\//g, '\u0000'));
      names = listed.filter((n) => re === undefined || re.test(n.replace(/\//g, '\u0000'))).sort();
    } else {
      names = [object];
    }
    return await mapLimit(names, this.config.concurrency ?? 8, async (name) => {
      const objUri = `ceph://${poolName}/${name}`;
      const out = await this.rados(poolName, ['stat', name], objUri, options.signal);
      const m = /size (\d+)/.exec(out);
      if (m === null) throw storageError('PROTOCOL', objUri, `unexpected rados stat output '${out.trim()}'`);
      const size = Number(m[1]);
      const p = map.place(pool, name);
      if (p === undefined) throw storageError('STORAGE', objUri, `PG map has no entry for the object's PG (epoch ${map.epoch})`);
      return fileLocations(objUri, size, [{ offset: 0, length: size, replicas: map.replicas(p) }], options.split, this.mapper);
    });
  }

  private async resolveCephfs(uri: string, options: ResolveOptions): Promise<FileLocations[]> {
    const mount = this.config.cephfsMount;
    if (mount === undefined) throw storageError('INVALID_FIELD', uri, 'no CephFS mount configured (use --cephfs-mount /mount/point)');
    const u = parseStorageUri(uri);
    // cephfs:///a/b and cephfs://a/b both name /a/b inside the mount.
    const path = normalisePath(`${u.authority}/${u.path}`);
    const root = mount.replace(/\/$/, '');
    const timeoutMs = this.config.timeoutMs ?? 30_000;
    // As for GlusterFS: a CephFS not mounted (its mount point a plain directory again) is waited
    // for, not listed as empty; asked again for a path found missing, in case it went meanwhile.
    const mountGone = async (): Promise<void> => {
      const why = await whyNotMounted(root, CEPHFS_FS_TYPES, timeoutMs, options.signal === undefined ? {} : { signal: options.signal }).catch((err: unknown) => {
        throw err instanceof MissingMountPoint ? storageError('STORAGE', uri, `${err.message} (cephfs-mount names it)`) : err;
      });
      if (why !== undefined) throw storageError('UNAVAILABLE', uri, `${why} (the CephFS mount is gone)`);
    };
    await mountGone();
    const files = await expandPath(path, fsLister(root, timeoutMs, options.signal));
    if (files === undefined) await mountGone();
    if (files === undefined) throw storageError('NOT_FOUND', uri, 'no such file or directory');
    const abs = files.map((f) => root + f.path);
    const [layouts, inodes, map] = await Promise.all([
      readXattrs(abs, 'ceph.file.layout', { timeoutMs, ...(options.signal === undefined ? {} : { signal: options.signal }) }),
      mapLimit(abs, 16, async (p) => (await withTimeout(`stat ${p}`, timeoutMs, stat(p, { bigint: true }), options.signal)).ino),
      this.cluster.maps(options.signal),
    ]);
    return files.map((f, i) => {
      const fileUri = `cephfs://${f.path}`;
      const a = abs[i] as string;
      const raw = layouts.values.get(a);
      const layout = raw === undefined ? undefined : parseLayout(raw);
      // As for GlusterFS: getfattr saying the cluster or the mount cannot be reached is an outage (waited out).
      const said = layouts.errors.get(a) ?? '';
      if (raw === undefined && toolSaysUnreachable(said)) throw storageError('UNAVAILABLE', fileUri, `cannot reach the CephFS holding ${a}: ${said}`);
      if (layout === undefined) throw storageError('STORAGE', fileUri, `no usable ceph.file.layout on ${a} (${layouts.errors.get(a) ?? raw ?? 'missing'}); is ${root} a CephFS mount?`);
      const pool = this.pool(map, layout.pool, fileUri);
      const ino = inodes[i] as bigint;
      const blocks: RawBlock[] = objectSets(f.size, layout).map((set) => {
        const replicas: StorageReplica[] = [];
        for (const idx of set.objects) {
          const p = map.place(pool, objectName(ino, idx), layout.poolNamespace);
          if (p === undefined) throw storageError('STORAGE', fileUri, `PG map has no entry for object ${objectName(ino, idx)}`);
          replicas.push(...map.replicas(p));
        }
        return { offset: set.offset, length: set.length, replicas };
      });
      return fileLocations(fileUri, f.size, blocks, options.split satisfies SplitMode, this.mapper, a);
    });
  }

  async read(uri: string, offset: number, length: number): Promise<Readable> {
    const u = parseStorageUri(uri);
    if (u.scheme !== 'cephfs') return this.readObject(uri, u.authority, u.path.replace(/^\//, ''), offset, length);
    const mount = this.config.cephfsMount;
    if (mount === undefined) throw storageError('INVALID_FIELD', uri, 'no CephFS mount configured');
    const p = mount.replace(/\/$/, '') + normalisePath(`${u.authority}/${u.path}`);
    return createReadStream(p, { start: offset, end: Math.max(offset, offset + length - 1) });
  }

  /**
   * Stream a byte range of a RADOS object through librados's command-line client
   * (`rados get OBJ -`): no extra service on the cluster, only the client keyring the
   * executor's host already has. `rados get` reads from the start of the object, so the
   * bytes before `offset` are skipped here and the client is stopped once `length` bytes
   * have passed. A client that cannot reach the cluster fails as UNAVAILABLE (the host's
   * trouble), a missing object as NOT_FOUND (the task's).
   */
  private async readObject(uri: string, pool: string, object: string, offset: number, length: number): Promise<Readable> {
    if (pool === '' || object === '') throw storageError('INVALID_FIELD', uri, 'expected ceph://pool/object');
    const child = spawn(this.config.radosBin ?? 'rados', [...this.radosArgs(pool), 'get', object, '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = new PassThrough();
    let stderr = '';
    let skipped = 0;
    let sent = 0;
    let done = false;
    const timeoutMs = this.config.timeoutMs ?? 30_000;
    // An idle deadline, re-armed on every chunk: a hung monitor connection must not hang the task.
    let idle: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => {
        if (done) return;
        done = true;
        child.kill('SIGKILL');
        out.destroy(storageError('UNAVAILABLE', uri, `rados sent nothing for ${timeoutMs} ms (is the cluster reachable?)`));
      }, timeoutMs);
    };
    arm();
    const finish = (): void => {
      if (done) return;
      done = true;
      if (idle) clearTimeout(idle);
      out.end();
      // Everything wanted has passed: the rest of the object is not needed.
      child.kill('SIGTERM');
    };
    child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-4000); });
    child.stdout.on('data', (chunk: Buffer) => {
      if (done) return;
      arm();
      let c = chunk;
      if (skipped < offset) {
        const skip = Math.min(offset - skipped, c.length);
        skipped += skip;
        c = c.subarray(skip);
      }
      if (c.length === 0) return;
      const want = length - sent;
      const piece = c.length > want ? c.subarray(0, want) : c;
      sent += piece.length;
      if (!out.write(piece)) {
        child.stdout.pause();
        out.once('drain', () => child.stdout.resume());
      }
      if (sent >= length) finish();
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (done) return;
      done = true;
      if (idle) clearTimeout(idle);
      out.destroy(err.code === 'ENOENT' ? storageError('UNAVAILABLE', uri, `'${this.config.radosBin ?? 'rados'}' is not installed on this host`) : storageError('UNAVAILABLE', uri, err.message));
    });
    child.on('close', (code) => {
      if (done) return;
      done = true;
      if (idle) clearTimeout(idle);
      if (code === 0) {
        // The object ended before offset+length: the range is cut at its end, like a file read.
        out.end();
        return;
      }
      const last = stderr.trim().split('\n').pop() ?? '';
      if (/No such file or directory|\(2\)/.test(stderr)) out.destroy(storageError('NOT_FOUND', uri, 'no such object'));
      else if (/Permission denied|\(13\)|\(1\) Operation not permitted/.test(stderr)) out.destroy(storageError('FORBIDDEN', uri, `permission denied: ${last}`));
      else out.destroy(storageError('UNAVAILABLE', uri, `rados get failed (exit ${code ?? 'signal'}): ${last}`));
    });
    if (length <= 0) finish();
    return out;
  }
}
