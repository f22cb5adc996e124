/**
 * The HDFS backend over WebHDFS: `hdfs://host[:port]/path` (and Hadoop's own
 * `webhdfs://`, `swebhdfs://`). The URI's port is taken as the WebHDFS HTTP
 * port (default 9870) unless `endpoints` maps the authority elsewhere — an
 * `hdfs://nn:8020` RPC address needs such a mapping.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { FileLocations } from '../../core/blocks.js';
import { mapLimit } from '../concurrency.js';
import { storageError, wrapStorageError } from '../errors.js';
import { expandPath, type Entry, type Lister } from '../expand.js';
import type { HostMapper } from '../hostmap.js';
import type { ResolveOptions, StorageBackend } from '../port.js';
import { fileLocations } from '../splits.js';
import { normalisePath, parseStorageUri } from '../uri.js';
import { WebHdfsClient } from './client.js';

/** WebHDFS settings. */
export interface WebHdfsConfig {
  /** `user.name` for simple auth. */
  readonly user?: string;
  /** Delegation token for secure clusters (replaces user.name). */
  readonly delegationToken?: string;
  /** Authority (`host:port` or `host`) → WebHDFS base URL (`http://nn:9870`). */
  readonly endpoints?: Readonly<Record<string, string>>;
  /** HTTP port when the URI has none (default 9870). */
  readonly defaultPort?: number;
  /** Per request (default 10 s). */
  readonly timeoutMs?: number;
  /** For OPEN streams (default 10 min). */
  readonly readTimeoutMs?: number;
  readonly maxRedirects?: number;
  /** Location lookups in flight per resolution (default 32). */
  readonly concurrency?: number;
  readonly maxSockets?: number;
  /** Use the `webhdfs` package for listing where it can (default true). */
  readonly usePackage?: boolean;
}

/** The WebHDFS backend. */
export class WebHdfsBackend implements StorageBackend {
  readonly schemes = ['hdfs', 'webhdfs', 'swebhdfs'] as const;
  private readonly clients = new Map<string, WebHdfsClient>();

  constructor(private readonly config: WebHdfsConfig, private readonly mapper: HostMapper) {}

  /** The client for a URI's NameNode (one per base URL, reused). */
  clientFor(uri: string): { client: WebHdfsClient; path: string; prefix: string } {
    const u = parseStorageUri(uri);
    if (u.authority === '') throw storageError('INVALID_FIELD', uri, 'names no NameNode (expected hdfs://host:port/path)');
    const host = u.authority.replace(/:\d+$/, '');
    const base =
      this.config.endpoints?.[u.authority] ??
      this.config.endpoints?.[host] ??
      `${u.scheme === 'swebhdfs' ? 'https' : 'http'}://${u.authority.includes(':') ? u.authority : `${u.authority}:${this.config.defaultPort ?? 9870}`}`;
    let client = this.clients.get(base);
    if (client === undefined) {
      client = new WebHdfsClient({
        baseUrl: base,
        ...(this.config.user === undefined ? {} : { user: this.config.user }),
        ...(this.config.delegationToken === undefined ? {} : { delegationToken: this.config.delegationToken }),
        timeoutMs: this.config.timeoutMs ?? 10_000,
        maxRedirects: this.config.maxRedirects ?? 5,
        maxSockets: this.config.maxSockets ?? 64,
        ...(this.config.usePackage === undefined ? {} : { usePackage: this.config.usePackage }),
      });
      this.clients.set(base, client);
    }
    return { client, path: normalisePath(u.path || '/'), prefix: `${u.scheme}://${u.authority}` };
  }

  async resolve(uri: string, options: ResolveOptions): Promise<FileLocations[]> {
    const { client, path, prefix } = this.clientFor(uri);
    const signal = options.signal;
    const lister: Lister = {
      async stat(p) {
        const s = await client.getFileStatus(p, signal);
        return s === undefined ? undefined : { path: p, type: s.type === 'DIRECTORY' ? 'dir' : 'file', size: s.length };
      },
      async list(dir) {
        const children = await client.listStatus(dir, signal);
        return children.map((c): Entry => ({ path: dir === '/' ? `/${c.pathSuffix}` : `${dir}/${c.pathSuffix}`, type: c.type === 'DIRECTORY' ? 'dir' : 'file', size: c.length }));
      },
    };
    try {
      const files = await expandPath(path, lister, 8);
      if (files === undefined) throw storageError('NOT_FOUND', uri, 'no such file or directory');
      return await mapLimit(files, this.config.concurrency ?? 32, async (f) => {
        const fileUri = prefix + f.path;
        const blocks = f.size === 0 ? [] : await client.blockLocations(f.path, 0, f.size, signal);
        return fileLocations(fileUri, f.size, blocks, options.split, this.mapper);
      });
    } catch (err) {
      throw wrapStorageError(uri, err);
    }
  }

  async read(uri: string, offset: number, length: number): Promise<Readable> {
    const { client, path } = this.clientFor(uri);
    try {
      return await client.open(path, offset, length, this.config.readTimeoutMs ?? 600_000);
    } catch (err) {
      throw wrapStorageError(uri, err);
    }
  }

  /** Whether a path exists (file or directory). */
  async exists(uri: string): Promise<boolean> {
    const { client, path } = this.clientFor(uri);
    try {
      return (await client.getFileStatus(path)) !== undefined;
    } catch (err) {
      throw wrapStorageError(uri, err);
    }
  }

  /** Write a new file (never over an existing one) from a local file, streamed. */
  async writeFile(uri: string, localFile: string, size: number): Promise<void> {
    const { client, path } = this.clientFor(uri);
    try {
      await client.create(path, () => ({ stream: createReadStream(localFile), length: size }), this.config.readTimeoutMs ?? 600_000);
    } catch (err) {
      throw wrapStorageError(uri, err);
    }
  }

  /** MKDIRS (with parents). */
  async mkdirs(uri: string): Promise<void> {
    const { client, path } = this.clientFor(uri);
    try {
      if (!(await client.mkdirs(path))) throw storageError('STORAGE', uri, 'MKDIRS answered false');
    } catch (err) {
      throw wrapStorageError(uri, err);
    }
  }

  /** RENAME `from` to the path of `to` (same NameNode); HDFS's answer (false: nothing moved). */
  async rename(from: string, to: string): Promise<boolean> {
    const { client, path } = this.clientFor(from);
    const dest = this.clientFor(to);
    if (dest.client !== client) throw storageError('INVALID_FIELD', to, `cannot rename across NameNodes (from ${from})`);
    try {
      return await client.rename(path, dest.path);
    } catch (err) {
      throw wrapStorageError(from, err);
    }
  }

  /** DELETE, recursive; false when nothing was there. */
  async remove(uri: string): Promise<boolean> {
    const { client, path } = this.clientFor(uri);
    try {
      return await client.remove(path);
    } catch (err) {
      throw wrapStorageError(uri, err);
    }
  }

  async close(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
