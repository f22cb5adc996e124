/**
 * Storage errors. Every error a backend raises names the URI it was resolving,
 * so a user with a hundred inputs sees which one failed and why.
 */
import { LocusError, type ErrorCode } from '../core/errors.js';

/** The codes storage errors use. */
export type StorageErrorCode = Extract<ErrorCode, 'STORAGE' | 'NOT_FOUND' | 'FORBIDDEN' | 'TIMEOUT' | 'UNAVAILABLE' | 'UNSUPPORTED' | 'INVALID_FIELD' | 'PROTOCOL'>;

/** A LocusError about one URI: `<uri>: <message>`. */
export function storageError(code: StorageErrorCode, uri: string, message: string, cause?: unknown): LocusError {
  return new LocusError(code, `${uri}: ${message}`, { cause, details: { uri } });
}

/** Turn anything a backend threw into a LocusError naming the URI (LocusErrors that already name it pass through). */
export function wrapStorageError(uri: string, err: unknown): LocusError {
  if (err instanceof LocusError) {
    if (err.message.includes(uri)) return err;
    return new LocusError(err.code, `${uri}: ${err.message}`, { cause: err, details: { ...(err.details ?? {}), uri } });
  }
  if (isAbortError(err)) return storageError('TIMEOUT', uri, 'cancelled or timed out', err);
  const message = err instanceof Error ? err.message : String(err);
  return storageError('STORAGE', uri, message, err);
}

/** Whether err is an abort (a cancelled signal or a timeout). */
export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/** Map a Node fs error code to a storage error naming the URI. */
export function fsError(uri: string, err: unknown): LocusError {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  if (code === 'ENOENT' || code === 'ENOTDIR') return storageError('NOT_FOUND', uri, 'no such file or directory', err);
  if (code === 'EACCES' || code === 'EPERM') return storageError('FORBIDDEN', uri, 'permission denied', err);
  if (code === 'ENOTCONN' || code === 'ESTALE' || code === 'EIO') {
    return storageError('UNAVAILABLE', uri, `the mount is not usable (${code})`, err);
  }
  return wrapStorageError(uri, err);
}
