/**
 * An executor's first Redis call: redeeming its one-time bootstrap token (LOCUS_REDIS_BOOT_TOKEN)
 * for its own user's password. The token is the password of a user that may only GETDEL one key
 * holding the real password (bootUser in contract.ts): anyone who later reads the token (the
 * agent's state endpoints show a task's environment) finds the key gone.
 *
 * Redis may be unreachable just then: restarting, failing over, still loading its append-only
 * file after a crash. Earlier the executor tried for about 3 s and then exited, reporting an
 * authentication failure: every executor Mesos started during a Redis restart failed, and its
 * queued attempts came back as lost. Now an executor waits for Redis as long as a restart takes
 * (BOOT_REDIS_WAIT_MS), saying so on stderr every few seconds, and fails as UNAVAILABLE only
 * when Redis stays away; a token Redis refuses still fails at once as UNAUTHENTICATED. Each try
 * is bounded in time, whatever Redis does (refuses, stalls, is still loading).
 */
import { Redis } from 'ioredis';
import { LocusError } from '../core/errors.js';
import { redisAddress } from '../core/redis-address.js';
import { backoffDelay, type BackoffPolicy } from '../mesos/backoff.js';
import { bootKey, bootUser } from './contract.js';

/**
 * How long a starting executor waits for an unreachable Redis (a restart or a failover takes
 * seconds). Shorter than the scheduler's wait for a launched executor to register
 * (REGISTRATION_TIMEOUT_MS in app/executor-runtime.ts, 60 s): an executor that gets through the
 * wait still registers while the attempts sent to it wait for it.
 */
export const BOOT_REDIS_WAIT_MS = 40_000;

/** Between tries: short at first (a Redis that is just starting), at most 2 s, with jitter so executors started together do not try in step. */
const BOOT_RETRY: BackoffPolicy = { initialMs: 200, maxMs: 2_000, factor: 2 };

/** How often the wait is reported while it lasts. */
const SAY_EVERY_MS = 5_000;

/** Each try's connection gives up after this long (an address that drops packets never refuses). */
const CONNECT_TIMEOUT_MS = 2_000;

/** A try that connected gives up after this long in all (a Redis stopped mid-answer, a proxy whose backend is gone). */
const TRY_TIMEOUT_MS = 5_000;

export interface RedeemOptions {
  /** How long to wait for an unreachable Redis (default BOOT_REDIS_WAIT_MS). */
  readonly waitMs?: number;
  /** Where the wait is reported (default: a line on stderr). */
  readonly say?: (line: string) => void;
  /** How often (default every 5 s). */
  readonly sayEveryMs?: number;
  /** Stops the wait (the executor gives up starting for another reason). */
  readonly signal?: AbortSignal;
}

/** Redis's answers that refuse the token: retrying cannot change them. */
function isRefusal(err: unknown): boolean {
  return err instanceof Error && /^(WRONGPASS|NOAUTH|NOPERM|ERR AUTH)/.test(err.message);
}


/** Trade `token` for executor `executorId`'s password (user `user`); waits for an unreachable Redis. */
export async function redeemBootToken(url: string, user: string, executorId: string, token: string, o: RedeemOptions = {}): Promise<string> {
  const waitMs = o.waitMs ?? BOOT_REDIS_WAIT_MS;
  const say = o.say ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const started = Date.now();
  let lastSaid = started;
  // Whether a GETDEL went out on a try that got no answer: the token may be spent, and a later
  // try finding the key gone says so instead of calling the token used.
  let unanswered = false;
  for (let tries = 1; ; tries++) {
    if (o.signal?.aborted === true) throw new LocusError('UNAVAILABLE', `executor ${executorId}: stopped while waiting for Redis at ${redisAddress(url)}`);
    // One connection per try, failing fast: ioredis's own reconnects would resend GETDEL, whose
    // reply, once lost, leaves nothing to redeem. No ready check: a Redis still loading its
    // append-only file answers GETDEL with LOADING, which this loop waits out with its reports,
    // where ioredis's ready check would wait silently and without end.
    const r = new Redis(url, {
      username: bootUser(user), password: token, lazyConnect: true, connectTimeout: CONNECT_TIMEOUT_MS,
      maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, enableReadyCheck: false,
    });
    // A refused AUTH comes as an 'error' event; connect() then rejects with "Connection is closed".
    let reported: unknown;
    r.on('error', (err: unknown) => (reported = err));
    let failure: Error;
    let timer: NodeJS.Timeout | undefined;
    let sent = false;
    try {
      const pw = await Promise.race([
        (async () => {
          await r.connect();
          sent = true;
          return await r.call('GETDEL', bootKey(executorId));
        })(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${TRY_TIMEOUT_MS / 1000} s`)), TRY_TIMEOUT_MS);
        }),
      ]);
      if (typeof pw !== 'string' || pw === '') {
        throw new LocusError('UNAUTHENTICATED', unanswered
          ? `executor ${executorId}: its bootstrap token was spent by an earlier try whose answer was lost; it cannot reach its queue (the scheduler starts another executor)`
          : `executor ${executorId}: its bootstrap token was already used or has expired; it cannot reach its queue`);
      }
      return pw;
    } catch (err) {
      if (err instanceof LocusError) throw err;
      const refusal = [err, reported].find(isRefusal);
      if (refusal !== undefined) throw new LocusError('UNAUTHENTICATED', `executor ${executorId}: Redis refused its bootstrap token: ${(refusal as Error).message}`, { cause: refusal });
      // A LOADING answer means GETDEL did not run; any other failure after it was sent may have.
      if (sent && !(err instanceof Error && err.message.startsWith('LOADING'))) unanswered = true;
      failure = err instanceof Error && err.message.startsWith('no answer') ? err : reported instanceof Error ? reported : err instanceof Error ? err : new Error(String(err));
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      r.disconnect();
    }
    const now = Date.now();
    const left = started + waitMs - now;
    if (left <= 0) {
      throw new LocusError('UNAVAILABLE', `executor ${executorId}: Redis at ${redisAddress(url)} stayed unreachable for ${Math.round((now - started) / 1000)} s (${tries} tries; last: ${failure.message}); the executor cannot reach its queue`, { cause: failure });
    }
    if (now - lastSaid >= (o.sayEveryMs ?? SAY_EVERY_MS)) {
      lastSaid = now;
      say(`locus: executor ${executorId}: Redis at ${redisAddress(url)} is unreachable (${failure.message}); still trying for ${Math.ceil(left / 1000)} s`);
    }
    await new Promise<void>((res) => {
      const t = setTimeout(done, Math.min(left, backoffDelay(tries, BOOT_RETRY)));
      function done(): void {
        clearTimeout(t);
        o.signal?.removeEventListener('abort', done);
        res();
      }
      o.signal?.addEventListener('abort', done, { once: true });
    });
  }
}
