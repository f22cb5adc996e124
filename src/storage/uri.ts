/**
 * Storage URIs: `scheme://authority/path`. Parsed by hand (not WHATWG URL)
 * so glob characters and object names stay exactly as written.
 */
import { LocusError } from '../core/errors.js';

/** A parsed storage URI. */
export interface StorageUri {
  readonly scheme: string;
  /** Host[:port], pool, volume or dataset; may be empty (`file:///x`). */
  readonly authority: string;
  /** Starts with '/', or is '' when the URI names only the authority. */
  readonly path: string;
  readonly raw: string;
}

/** Parse `scheme://authority/path`; throws INVALID_FIELD naming the URI. */
export function parseStorageUri(uri: string): StorageUri {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/]*)(\/.*)?$/.exec(uri);
  if (m === null) {
    throw new LocusError('INVALID_FIELD', `${uri}: not a storage URI (expected scheme://…, e.g. hdfs://namenode:9870/path)`, { field: 'uri' });
  }
  return { scheme: (m[1] ?? '').toLowerCase(), authority: m[2] ?? '', path: m[3] ?? '', raw: uri };
}

/** Normalise a path: collapse repeated slashes, drop a trailing slash (keeps '/'). */
export function normalisePath(path: string): string {
  const p = ('/' + path).replace(/\/+/g, '/');
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}
