/**
 * Bounded concurrency and deadlines. Storage lookups fan out over thousands of
 * files; these keep the fan-out bounded and make sure no await waits forever.
 */
import { LocusError } from '../core/errors.js';

/**
 * Map items through fn with at most `limit` calls in flight; results keep the
 * input order. The first failure stops new calls and is rethrown.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const workers: Promise<void>[] = [];
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  for (let w = 0; w < Math.max(1, Math.min(limit, items.length)); w++) workers.push(worker());
  await Promise.all(workers);
  return results;
}

/** Split items into chunks of at most `size` (for tools that take many paths at once). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A signal that aborts after `ms` or when `parent` aborts, whichever is first. */
export function deadlineSignal(ms: number, parent?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  return parent === undefined ? timeout : AbortSignal.any([parent, timeout]);
}

/**
 * Race a promise against a deadline. Used for calls that take no signal
 * (fs calls on a FUSE mount that can hang): the call may linger, but the
 * caller gets a TIMEOUT error instead of waiting forever.
 */
export async function withTimeout<T>(what: string, ms: number, work: Promise<T>, signal?: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LocusError('TIMEOUT', `${what}: no answer within ${ms} ms`)), ms);
    timer.unref?.();
    if (signal !== undefined) {
      onAbort = () => reject(new LocusError('TIMEOUT', `${what}: cancelled`));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}
