/**
 * The catalog of stable error codes. Every error a user can see carries one of
 * these codes; HTTP and gRPC status codes are derived from the catalog so the
 * surfaces never disagree about what an error means.
 */

/** One entry of the error catalog. */
export interface ErrorSpec {
  readonly httpStatus: number;
  readonly grpcCode: number;
  readonly retryable: boolean;
  readonly summary: string;
}

// gRPC status numbers are spelled out here because core may not import @grpc.
const GRPC = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The catalog itself: code → how it surfaces. */
export const ERROR_CATALOG = {
  INVALID_FIELD: { httpStatus: 400, grpcCode: GRPC.INVALID_ARGUMENT, retryable: false, summary: 'a field is missing or invalid' },
  INVALID_BODY: { httpStatus: 400, grpcCode: GRPC.INVALID_ARGUMENT, retryable: false, summary: 'the request body could not be parsed' },
  UNKNOWN_SCHEME: { httpStatus: 400, grpcCode: GRPC.INVALID_ARGUMENT, retryable: false, summary: 'an input URI names a scheme no storage backend serves' },
  UNKNOWN_AGENT: { httpStatus: 400, grpcCode: GRPC.INVALID_ARGUMENT, retryable: false, summary: 'the request names an agent the cluster does not have' },
  UNAUTHENTICATED: { httpStatus: 401, grpcCode: GRPC.UNAUTHENTICATED, retryable: false, summary: 'missing or invalid credentials' },
  FORBIDDEN: { httpStatus: 403, grpcCode: GRPC.PERMISSION_DENIED, retryable: false, summary: 'not allowed for this tenant' },
  NOT_FOUND: { httpStatus: 404, grpcCode: GRPC.NOT_FOUND, retryable: false, summary: 'no such resource' },
  CONFLICT: { httpStatus: 409, grpcCode: GRPC.FAILED_PRECONDITION, retryable: false, summary: 'the resource is in a conflicting state' },
  ALREADY_EXISTS: { httpStatus: 409, grpcCode: GRPC.ALREADY_EXISTS, retryable: false, summary: 'the name is taken' },
  IN_USE: { httpStatus: 409, grpcCode: GRPC.FAILED_PRECONDITION, retryable: true, summary: 'the resource is in use' },
  TOO_LARGE: { httpStatus: 413, grpcCode: GRPC.RESOURCE_EXHAUSTED, retryable: false, summary: 'the request is too large' },
  UNSATISFIABLE: { httpStatus: 422, grpcCode: GRPC.FAILED_PRECONDITION, retryable: false, summary: 'the request can never be satisfied' },
  QUOTA_EXCEEDED: { httpStatus: 429, grpcCode: GRPC.RESOURCE_EXHAUSTED, retryable: true, summary: 'a tenant limit was reached' },
  NOT_READY: { httpStatus: 503, grpcCode: GRPC.UNAVAILABLE, retryable: true, summary: 'not subscribed to a master or not connected to Redis yet' },
  NOT_LEADER: { httpStatus: 503, grpcCode: GRPC.UNAVAILABLE, retryable: true, summary: 'this scheduler is not (or no longer) the leader: ask the leader' },
  UNAVAILABLE: { httpStatus: 503, grpcCode: GRPC.UNAVAILABLE, retryable: true, summary: 'a dependency is unreachable' },
  TIMEOUT: { httpStatus: 504, grpcCode: GRPC.DEADLINE_EXCEEDED, retryable: true, summary: 'the operation timed out' },
  PROTOCOL: { httpStatus: 502, grpcCode: GRPC.UNAVAILABLE, retryable: true, summary: 'a peer answered something that is not its protocol' },
  WRONG_STATE: { httpStatus: 409, grpcCode: GRPC.FAILED_PRECONDITION, retryable: false, summary: 'not possible in the current state' },
  UNSUPPORTED: { httpStatus: 501, grpcCode: GRPC.UNIMPLEMENTED, retryable: false, summary: 'not supported' },
  STORAGE: { httpStatus: 502, grpcCode: GRPC.UNAVAILABLE, retryable: true, summary: 'the storage backend failed' },
  INTERNAL: { httpStatus: 500, grpcCode: GRPC.INTERNAL, retryable: false, summary: 'an internal error' },
} as const satisfies Record<string, ErrorSpec>;

/** A stable error code from the catalog. */
export type ErrorCode = keyof typeof ERROR_CATALOG;

/** Options for a LocusError beyond code and message. */
export interface LocusErrorOptions {
  /** The request field the error is about, as a dotted path (`task.resources.mem`). */
  readonly field?: string;
  readonly cause?: unknown;
  /** Extra machine-readable details for API answers. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** The one error type that crosses module boundaries; carries a catalog code. */
export class LocusError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: LocusErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LocusError';
    this.code = code;
    this.field = options.field;
    this.details = options.details;
  }

  get spec(): ErrorSpec {
    return ERROR_CATALOG[this.code];
  }

  get retryable(): boolean {
    return this.spec.retryable;
  }

  /** The JSON body every API answers an error with. */
  toJSON(): { error: { code: ErrorCode; message: string; field?: string; details?: Readonly<Record<string, unknown>> } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.field === undefined ? {} : { field: this.field }),
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

/** Shorthand for the most common error: a named field is invalid. */
export function invalidField(field: string, message: string): LocusError {
  return new LocusError('INVALID_FIELD', `${field}: ${message}`, { field });
}

/** Turn anything thrown into a LocusError, keeping the original as cause. */
export function asLocusError(err: unknown): LocusError {
  if (err instanceof LocusError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new LocusError('INTERNAL', message, { cause: err });
}
