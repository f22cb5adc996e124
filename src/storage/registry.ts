/**
 * The storage registry: one entry point for every backend. It picks the
 * backend by URI scheme, caches resolutions (TTL + invalidation), resolves
 * many URIs with bounded concurrency, and bounds every resolution with a
 * deadline so nothing hangs.
 */
import type { Readable } from 'node:stream';
import type { FileLocations } from '../core/blocks.js';
import { systemClock, type Clock } from '../core/clock.js';
import { LocusError } from '../core/errors.js';
import { CephBackend, type CephConfig } from './ceph/backend.js';
import { LocationCache } from './cache.js';
import { deadlineSignal, mapLimit } from './concurrency.js';
import { PERMANENT_DETAIL, storageError, wrapStorageError } from './errors.js';
import { GlusterBackend, type GlusterConfig } from './gluster/backend.js';
import { WebHdfsBackend, type WebHdfsConfig } from './hdfs/backend.js';
import { HostMapper, type HostMapConfig } from './hostmap.js';
import { FileBackend, LocalDatasetBackend, type FileConfig } from './local/backend.js';
import type { ResolveOptions, StorageBackend } from './port.js';
import { parseStorageUri } from './uri.js';

/** Everything the registry and its backends can be configured with. */
export interface StorageConfig {
  readonly hostMap?: HostMapConfig;
  readonly cache?: { readonly ttlMs?: number; readonly maxEntries?: number };
  /** URIs resolved at once by resolveMany (default 8). */
  readonly concurrency?: number;
  /** Deadline for one URI's whole resolution (default 120 s). */
  readonly timeoutMs?: number;
  readonly clock?: Clock;
  readonly webhdfs?: WebHdfsConfig;
  readonly ceph?: CephConfig;
  readonly gluster?: GlusterConfig;
  /** The local cluster's work directory for local:// datasets. */
  readonly local?: { readonly workDir: string };
  readonly file?: FileConfig;
  /** Extra or replacement backends (tests, embedders). */
  readonly backends?: readonly StorageBackend[];
}

/** The port the scheduler and the CLI use. */
export interface StorageRegistry {
  /** The backend serving a URI's scheme (throws UNSUPPORTED for unknown schemes). */
  backendFor(uri: string): StorageBackend;
  /** Files and splits for one URI (cached). */
  resolve(uri: string, options: ResolveOptions): Promise<FileLocations[]>;
  /** Many URIs at once, bounded concurrency; result i belongs to uris[i]. */
  resolveMany(uris: readonly string[], options: ResolveOptions): Promise<FileLocations[][]>;
  /** Stream a byte range of a file. */
  read(uri: string, offset: number, length: number): Promise<Readable>;
  /** Drop cached answers: all, or for a URI and everything under it. */
  invalidate(uri?: string): number;
  /** Cache counters. */
  cacheStats(): { size: number; hits: number; misses: number };
  /** The host mapper in use. */
  readonly hostMapper: HostMapper;
  close(): Promise<void>;
}

/** Build the registry and the backends the configuration enables. */
export function createStorageRegistry(config: StorageConfig = {}): StorageRegistry {
  const clock = config.clock ?? systemClock;
  const mapper = new HostMapper(config.hostMap);
  const backends: StorageBackend[] = [
    new WebHdfsBackend(config.webhdfs ?? {}, mapper),
    new CephBackend(config.ceph ?? {}, mapper, clock),
    new GlusterBackend(config.gluster ?? { mounts: {} }, mapper),
    new FileBackend(config.file ?? {}, mapper),
  ];
  if (config.local !== undefined) backends.push(new LocalDatasetBackend(config.local, mapper));
  const byScheme = new Map<string, StorageBackend>();
  for (const b of backends) for (const s of b.schemes) byScheme.set(s, b);
  // Explicit backends win over the built-in ones for their schemes.
  for (const b of config.backends ?? []) for (const s of b.schemes) byScheme.set(s, b);
  const cache = new LocationCache({ ttlMs: config.cache?.ttlMs ?? 60_000, maxEntries: config.cache?.maxEntries ?? 100_000, clock });
  const timeoutMs = config.timeoutMs ?? 120_000;
  let closed: Promise<void> | undefined;

  const backendFor = (uri: string): StorageBackend => {
    const { scheme } = parseStorageUri(uri);
    const b = byScheme.get(scheme);
    if (b === undefined) {
      const hint = scheme === 'local' ? ' (local:// needs the local cluster work directory: --work-dir)' : '';
      throw new LocusError('UNSUPPORTED', `${uri}: no storage backend for '${scheme}://'${hint}; known: ${[...byScheme.keys()].sort().join(', ')}`);
    }
    return b;
  };

  const resolve = async (uri: string, options: ResolveOptions): Promise<FileLocations[]> => {
    const backend = backendFor(uri);
    // The caller's signal is the cache's to follow: a listing shared by several callers is
    // aborted only when none of them waits for it any more (`shared`).
    return await cache.get(options.split, uri, async (shared) => {
      const signal = deadlineSignal(timeoutMs, shared);
      try {
        return await backend.resolve(uri, { ...options, signal });
      } catch (err) {
        if (shared.aborted) throw storageError('TIMEOUT', uri, 'listing abandoned: no caller waits for it any more', err);
        if (signal.aborted && !(err instanceof LocusError && err.code !== 'TIMEOUT')) {
          // Each call to a storage has its own, shorter deadline: one that is away fails a call
          // (UNAVAILABLE, TIMEOUT: waited out). Past this one, the storage answered, call after
          // call, and the listing is too large to finish in time; asking again gives the same.
          throw new LocusError('TIMEOUT', `${uri}: listing it took longer than ${timeoutMs} ms, the limit for one URI (too many files to list in time? name a narrower input)`, {
            cause: err, details: { uri, [PERMANENT_DETAIL]: true },
          });
        }
        throw wrapStorageError(uri, err);
      }
    }, options.signal);
  };

  return {
    hostMapper: mapper,
    backendFor,
    resolve,
    async resolveMany(uris, options) {
      return await mapLimit(uris, config.concurrency ?? 8, (u) => resolve(u, options));
    },
    async read(uri, offset, length) {
      const b = backendFor(uri);
      if (b.read === undefined) throw new LocusError('UNSUPPORTED', `${uri}: this backend cannot read data`);
      return (await b.read(uri, offset, length)) as Readable;
    },
    invalidate(uri) {
      return cache.invalidate(uri);
    },
    cacheStats() {
      return cache.stats();
    },
    async close() {
      closed ??= (async () => {
        // Each backend closes on its own; one failing must not stop the others.
        for (const b of new Set(byScheme.values())) {
          try {
            await b.close?.();
          } catch {
            // ignored: closing is best effort
          }
        }
      })();
      await closed;
    },
  };
}
