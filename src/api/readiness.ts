/**
 * When the APIs refuse a call that changes state: while the framework is not subscribed to a
 * Mesos master or has no Redis (what `/readyz` reports). One rule and one message for HTTP
 * (503) and gRPC (UNAVAILABLE), checked after the request itself: a malformed request is
 * refused as such whatever the readiness, since sending it again later would not mend it.
 */
import { LocusError } from '../core/errors.js';

/** What readiness is made of. */
export interface Readiness {
  readonly subscribed: boolean;
  readonly redis: boolean;
}

/** Throw NOT_READY, naming what is missing, unless ready. */
export function assertReady(r: Readiness): void {
  if (r.subscribed && r.redis) return;
  const missing = [r.subscribed ? '' : 'not subscribed to a Mesos master', r.redis ? '' : 'Redis not connected'].filter((m) => m !== '');
  throw new LocusError('NOT_READY', `not ready: ${missing.join(', ')}`);
}
