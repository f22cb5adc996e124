/**
 * Capped exponential backoff with jitter for reconnects and call retries.
 * Jitter keeps many frameworks (or many calls) from retrying in lock-step
 * against a master that has just come back.
 */

/** A backoff policy: the first delay, the cap, and the growth factor. */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor?: number;
}

/** Reconnect defaults: half a second, doubling, at most 30 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, factor: 2 };

/**
 * The delay before retry number `attempt` (1-based): the capped exponential
 * value scaled by a random factor in [0.5, 1) ("equal jitter"), so a delay
 * never collapses to zero yet two clients rarely collide.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const n = Math.max(1, attempt);
  const raw = Math.min(policy.maxMs, policy.initialMs * Math.pow(policy.factor ?? 2, n - 1));
  return Math.round(raw * (0.5 + 0.5 * Math.min(Math.max(random(), 0), 1)));
}
