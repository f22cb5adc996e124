/**
 * Turning whatever a request produced (a LocusError, a fastify validation or
 * body error, anything else) into the catalog's answer: the catalog status
 * and `{ error: { code, message, field? } }`.
 */
import { LocusError, asLocusError } from '../../core/errors.js';

interface AjvIssue {
  readonly instancePath?: string;
  readonly keyword?: string;
  readonly message?: string;
  readonly params?: Readonly<Record<string, unknown>>;
}

const isRecord = (v: unknown): v is Readonly<Record<string, unknown>> => typeof v === 'object' && v !== null;

const HEADER_NAMES: Readonly<Record<string, string>> = { 'idempotency-key': 'Idempotency-Key', authorization: 'Authorization' };

/** The dotted field name an ajv issue is about. */
function fieldOf(issue: AjvIssue, context: string): string {
  const parts = (issue.instancePath ?? '').split('/').filter((p) => p !== '').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const extra = issue.params?.['missingProperty'] ?? issue.params?.['additionalProperty'] ?? issue.params?.['propertyName'];
  if (typeof extra === 'string') parts.push(extra);
  const path = parts.join('.');
  if (context === 'headers') return HEADER_NAMES[path] ?? path;
  return path || context;
}

function messageOf(issue: AjvIssue): string {
  if (issue.keyword === 'additionalProperties') return 'unknown field';
  if (issue.keyword === 'required') return 'is required';
  if (issue.keyword === 'oneOf') return 'must be a size such as "10GiB" or a number of MiB';
  return issue.message ?? 'is invalid';
}

/** Map any error thrown during a request to a LocusError. */
export function toLocusError(err: unknown): LocusError {
  if (err instanceof LocusError) return err;
  if (isRecord(err)) {
    const validation = err['validation'];
    if (Array.isArray(validation) && validation.length > 0) {
      // A value that matches no branch of a oneOf (a size: text or a number of MiB) is reported
      // branch by branch first ("must be string" for -5); the oneOf's own issue says what it may be.
      const first = (validation[0] ?? {}) as AjvIssue;
      const issue = ((validation as AjvIssue[]).find((i) => i.keyword === 'oneOf' && i.instancePath === first.instancePath) ?? first);
      const context = typeof err['validationContext'] === 'string' ? err['validationContext'] : 'body';
      const field = fieldOf(issue, context);
      return new LocusError('INVALID_FIELD', `${field}: ${messageOf(issue)}`, { field });
    }
    const code = typeof err['code'] === 'string' ? err['code'] : '';
    const message = typeof err['message'] === 'string' ? err['message'] : 'bad request';
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new LocusError('TOO_LARGE', 'request body is too large', { field: 'body' });
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new LocusError('INVALID_BODY', 'unsupported Content-Type (send application/json)', { field: 'Content-Type' });
    if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return new LocusError('INVALID_BODY', 'empty JSON body', { field: 'body' });
    if (code.startsWith('FST_ERR_CTP_') || err['statusCode'] === 400) {
      return new LocusError('INVALID_BODY', `body: ${message}`, { field: 'body' });
    }
    if (err['statusCode'] === 404) return new LocusError('NOT_FOUND', message);
    // ioredis gives up on a request while Redis is unreachable: a dependency problem, retryable.
    if (err['name'] === 'MaxRetriesPerRequestError' || /ECONNREFUSED|Connection is closed|Stream isn't writeable/.test(message)) {
      return new LocusError('UNAVAILABLE', `Redis is unreachable: ${message}`, { cause: err });
    }
  }
  return asLocusError(err);
}
