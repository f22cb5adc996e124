/**
 * Identifier helpers. Ids are opaque strings; these keep their shapes
 * recognisable in logs (`job-…`, `task-…`).
 */
import { randomBytes, randomUUID } from 'node:crypto';

/** A new random id with a readable prefix. */
export function newId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

/** A short random token in hex (for secrets, 32 bytes by default). */
export function newToken(bytes = 32): string {
  return randomBytes(bytes).toString('hex');
}

/** The id of one attempt of a task: `<taskId>.a<n>`. */
export function attemptId(taskId: string, attempt: number): string {
  return `${taskId}.a${attempt}`;
}
