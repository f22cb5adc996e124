/**
 * Storage errors. Every error a backend raises names the URI it was resolving,
 * so a user with a hundred inputs sees which one failed and why.
 */
import { LocusError, type ErrorCode } from '../core/errors.js';
import { ToolError } from './exec.js';

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

/**
 * Errno codes that say the storage could not be reached just now — the network, a NameNode or a
 * monitor restarting, a FUSE mount whose daemon went away — not that the path is wrong.
 */
const TRANSIENT_ERRNO: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ETIMEDOUT', 'ESOCKETTIMEDOUT',
  'EAI_AGAIN', 'EPIPE', 'ENOTCONN', 'ESTALE', 'EIO',
]);

/**
 * What storage CLIs (ceph, rados, getfattr) print when the cluster or the mount is unreachable:
 * a monitor that does not answer ("authenticate timed out", errno 110), a refused connection
 * (111), a FUSE mount whose client died ("Transport endpoint is not connected", 107).
 */
const TRANSIENT_TOOL_OUTPUT = /timed out|\(110\)|errno 110|connection refused|\(111\)|not connected|\(107\)|network is unreachable|no route to host/i;

/** Whether a storage CLI's error output says the cluster or mount could not be reached (TRANSIENT_TOOL_OUTPUT). */
export function toolSaysUnreachable(stderr: string): boolean {
  return TRANSIENT_TOOL_OUTPUT.test(stderr);
}

/** Codes that are a storage's "no": asking again gives the same answer. */
const PERMANENT_CODES: ReadonlySet<string> = new Set(['NOT_FOUND', 'FORBIDDEN', 'INVALID_FIELD', 'UNSUPPORTED', 'CONFLICT']);

/**
 * HTTP statuses that say "not now": a server failing or restarting (500), a proxy in front of a
 * NameNode that is away (502, 504), a NameNode out of service (503), too many requests (429).
 * Other 5xx are answers that do not change: 501 (an operation the server does not implement),
 * 505 (an HTTP version it does not speak), and the rest.
 */
const TRANSIENT_STATUS: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

/**
 * The detail that marks a storage error permanent whatever its code and causes: a transport
 * failure that is a configuration mistake (a host DNS does not know, a port that does not speak
 * HTTP or TLS), a listing that took longer than the registry's deadline.
 */
export const PERMANENT_DETAIL = 'permanent';

/**
 * Whether a storage error is transient — the storage could not be reached or answered "not now"
 * (unreachable, timed out, an HTTP 500/502/503/504/429, a NameNode in safe mode or standby, a mount not
 * connected) — so the same call may well succeed in a minute. A storage's "no" (no such path,
 * permission denied, a malformed URI, a tool not installed) is permanent, and so is anything
 * not recognised: retrying what is not known to pass would only delay the failure it reports.
 * The error's cause chain is read too, since backends wrap what they caught.
 */
export function isTransientStorageError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (e instanceof LocusError) {
      if (PERMANENT_CODES.has(e.code) || e.details?.['notInstalled'] !== undefined || e.details?.[PERMANENT_DETAIL] === true) return false;
      if (e.code === 'UNAVAILABLE' || e.code === 'TIMEOUT') return true;
      const status = e.details?.['status'];
      if (typeof status === 'number' && TRANSIENT_STATUS.has(status)) return true;
    } else if (e instanceof ToolError) {
      if (e.timedOut || toolSaysUnreachable(e.stderr)) return true;
    }
    const code = typeof e === 'object' && 'code' in e ? (e as { code: unknown }).code : undefined;
    if (typeof code === 'string' && TRANSIENT_ERRNO.has(code)) return true;
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}
