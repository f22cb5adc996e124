/**
 * LISTSTATUS and GETFILESTATUS through the `webhdfs` npm package. The
 * package reports a RemoteException as a plain Error carrying only Hadoop's
 * message, so the error class is recovered from Hadoop's stable message
 * prefixes ("File does not exist:", "Permission denied:").
 */
import { createRequire } from 'node:module';
import { isObject } from '../../core/decode.js';
import { LocusError } from '../../core/errors.js';
import { decodeFileStatus, type HdfsFileStatus } from './decode.js';

/** Listing through the package. */
export interface PackageLister {
  stat(path: string): Promise<HdfsFileStatus | undefined>;
  list(path: string): Promise<HdfsFileStatus[]>;
  close(): void;
}

type Callback = (err: Error | null, value?: unknown) => void;

/** The part of the package's client Locus uses. */
interface PackageClient {
  readdir(path: string, cb: Callback): unknown;
  stat(path: string, cb: Callback): unknown;
}

function isPackageClient(v: unknown): v is PackageClient {
  return isObject(v) && typeof (v as { readdir?: unknown }).readdir === 'function' && typeof (v as { stat?: unknown }).stat === 'function';
}

/** Settings for the package client. */
export interface PackageListerOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string | undefined;
  readonly timeoutMs: number;
}

function mapError(err: Error): LocusError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') return new LocusError('TIMEOUT', 'the NameNode did not answer in time', { cause: err });
  // ENOTFOUND (no such host) is left to the generic STORAGE error below: that makes the client
  // ask again directly, whose transport errors tell a host DNS does not know (permanent) from
  // one it cannot answer for now (EAI_AGAIN).
  if (code === 'ECONNREFUSED' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH') {
    return new LocusError('UNAVAILABLE', `cannot reach the NameNode (${code})`, { cause: err });
  }
  if (/^File does not exist/i.test(err.message)) return new LocusError('NOT_FOUND', `no such file or directory (${err.message})`, { cause: err });
  if (/^Permission denied/i.test(err.message)) return new LocusError('FORBIDDEN', `permission denied (${err.message})`, { cause: err });
  return new LocusError('STORAGE', `WebHDFS: ${err.message}`, { cause: err });
}

/** A lister over the `webhdfs` package for one NameNode. */
export function createPackageLister(options: PackageListerOptions): PackageLister {
  const require = createRequire(import.meta.url);
  const mod: unknown = require('webhdfs');
  const createClient = isObject(mod) ? (mod as { createClient?: unknown }).createClient : undefined;
  if (typeof createClient !== 'function') throw new LocusError('INTERNAL', 'the webhdfs package has no createClient');
  // forever = keep-alive; redirects are never expected for these two ops, and
  // the package's own redirect handling is not to be trusted, so none are followed.
  const client: unknown = (createClient as (o: object, r: object) => unknown)(
    { host: options.host, port: options.port, path: '/webhdfs/v1', ...(options.user === undefined ? {} : { user: options.user }) },
    { timeout: options.timeoutMs, followRedirect: false, forever: true },
  );
  if (!isPackageClient(client)) throw new LocusError('INTERNAL', 'the webhdfs package returned an unexpected client');
  const call = (fn: 'readdir' | 'stat', path: string): Promise<unknown> =>
    new Promise((resolve, reject) => {
      // The package throws synchronously on bad paths; keep that inside the promise.
      try {
        client[fn](path, (err, value) => (err ? reject(err) : resolve(value)));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  return {
    async stat(path) {
      try {
        return decodeFileStatus(await call('stat', path), 'FileStatus');
      } catch (err) {
        const e = err instanceof LocusError ? err : mapError(err as Error);
        if (e.code === 'NOT_FOUND') return undefined;
        throw e;
      }
    },
    async list(path) {
      let value: unknown;
      try {
        value = await call('readdir', path);
      } catch (err) {
        throw mapError(err as Error);
      }
      if (!Array.isArray(value)) throw new LocusError('PROTOCOL', 'LISTSTATUS: unexpected answer');
      return value.map((v, i) => decodeFileStatus(v, `FileStatuses.FileStatus[${i}]`));
    },
    close() {
      // The package keeps no state of its own; `forever` sockets close when idle.
    },
  };
}
