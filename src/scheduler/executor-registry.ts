/**
 * Executors as the scheduler sees them in Redis: per-executor ACL users
 * (provisioned before launch, removed when the executor ends) and the
 * registration hashes the executors keep.
 *
 * Security: TaskInfo is visible to operators through the master's and the
 * agent's `/state`, so it must never carry a cluster-wide Redis credential.
 * Each executor gets its own user that can touch only its own queue's keys
 * and its own registration hash, read the scheduler's contract version, and
 * run the commands BullMQ needs (no admin, no dangerous commands, no
 * pub/sub channels). Revoking the user also fences an executor that was
 * declared lost: it can no longer take or complete work.
 */
import type { Redis } from 'ioredis';
import { asString, isObject } from '../core/decode.js';
import { LocusError } from '../core/errors.js';
import { newToken } from '../core/ids.js';
import type { Logger } from '../obs/log.js';
import {
  BOOT_TTL_SECONDS,
  EXECUTOR_FIELDS as F,
  bootKey,
  bootUser,
  SCHEDULER_INFO_KEY,
  COMMIT_KEY_PREFIX,
  DATAPLANE_SECRETS_KEY,
  executorAclUser,
  executorKey,
  executorQueueKey,
  isValidExecutorId,
  type ExecutorState,
} from '../executor/contract.js';

/** The Redis credentials of one executor; only `bootToken` travels in its environment. */
export interface ExecutorCredentials {
  readonly username: string;
  readonly password: string;
  /** One-time token the executor redeems for `password` (see executor/contract.ts bootUser). */
  readonly bootToken: string;
}

/** The ACL rules of an executor's user (arguments of ACL SETUSER after the name). */
export function executorAclRules(executorId: string, password: string): string[] {
  if (!isValidExecutorId(executorId)) throw new LocusError('INVALID_FIELD', `executor id '${executorId}' is not safe for an ACL pattern`, { field: 'executorId' });
  const queueKeys = executorQueueKey(executorId, '*');
  return [
    'reset', 'on', `>${password}`, 'resetchannels',
    `~${queueKeys}`,
    `~${executorKey(executorId)}`,
    `%R~${SCHEDULER_INFO_KEY}`,
    // The data plane: read the block servers' token, and write task commit records (only
    // through the commit scripts, which never overwrite another attempt's record: the winner
    // may only mark its own with a conflict; see executor/data-plane.ts).
    `%R~${DATAPLANE_SECRETS_KEY}`,
    `~${COMMIT_KEY_PREFIX}*`,
    // What BullMQ's worker uses: scripts, blocking pops, streams, hashes,
    // lists, sorted sets, MULTI, INFO (version check) and CLIENT SETNAME.
    '-@all',
    '+@read', '+@write', '+@keyspace', '+@string', '+@list', '+@hash', '+@set', '+@sortedset', '+@stream',
    '+@scripting', '+@transaction', '+@connection', '+@blocking',
    '-@dangerous', '-@admin',
    '+info', '+client|setname', '+client|getname', '+client|id',
  ];
}

/** Creates and removes executors' Redis users. */
export class ExecutorProvisioner {
  private warnedNoAclFile = false;

  /** `admin` is a connection with ACL administration rights (the scheduler's). */
  constructor(private readonly admin: Redis, private readonly logger: Logger) {}

  /** Create (or rotate) the executor's user; call before launching it. */
  async create(executorId: string): Promise<ExecutorCredentials> {
    const username = executorAclUser(executorId);
    const password = newToken(24);
    const bootToken = newToken(24);
    // Sent together (one round trip, not three): every launch waits for them.
    const written = await Promise.allSettled([
      this.admin.call('ACL', 'SETUSER', username, ...executorAclRules(executorId, password)),
      // The boot user can do one thing: take (GETDEL) the key holding the real password.
      this.admin.call('ACL', 'SETUSER', bootUser(username), 'reset', 'on', `>${bootToken}`, 'resetchannels', `~${bootKey(executorId)}`, '-@all', '+getdel', '+hello', '+auth', '+client|setname', '+info'),
      this.admin.set(bootKey(executorId), password, 'EX', BOOT_TTL_SECONDS),
    ]);
    const failed = written.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      // What was written goes: no user or password is left for an executor that is not launched.
      await this.remove(executorId).catch(() => undefined);
      throw failed.reason;
    }
    await this.persist();
    return { username, password, bootToken };
  }

  /** Remove the executor's users and any unredeemed password; Redis disconnects its open connections. Idempotent. */
  async remove(executorId: string): Promise<void> {
    const username = executorAclUser(executorId);
    await this.admin.call('ACL', 'DELUSER', username, bootUser(username));
    await this.admin.del(bootKey(executorId));
    await this.persist();
  }

  /** The executor has registered: its one-time boot user has done its job. */
  async retireBootUser(executorId: string): Promise<void> {
    await this.admin.call('ACL', 'DELUSER', bootUser(executorAclUser(executorId)));
    await this.admin.del(bootKey(executorId));
    await this.persist();
  }

  // ACL users live outside the AOF: without an ACL file they vanish on a
  // Redis restart and every executor loses its connection for good.
  private async persist(): Promise<void> {
    try {
      await this.admin.call('ACL', 'SAVE');
    } catch (err) {
      if (!this.warnedNoAclFile) {
        this.warnedNoAclFile = true;
        this.logger.warn({ err: (err as Error).message }, 'Redis has no ACL file: executor users will not survive a Redis restart (start redis-server with --aclfile)');
      }
    }
  }
}

/** An executor's registration as read from Redis. */
export interface ExecutorRegistration {
  readonly executorId: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly slots: number;
  readonly contract: string;
  readonly state: ExecutorState;
  readonly heartbeat: number;
  readonly runner: string;
  /** Whether it takes batch jobs (several attempts in one queue job). */
  readonly batches: boolean;
  /** Attempts it takes beyond its slots and holds prepared (0 on executors that predate this). */
  readonly prefetch: number;
}

/** Read one executor's registration, or undefined when it never registered. */
export async function readRegistration(redis: Redis, executorId: string): Promise<ExecutorRegistration | undefined> {
  const h: unknown = await redis.hgetall(executorKey(executorId));
  if (!isObject(h) || Object.keys(h).length === 0) return undefined;
  const s = (k: string): string => (h[k] === undefined ? '' : asString(h[k], k));
  const state = s(F.state);
  return {
    executorId,
    agentId: s(F.agentId),
    hostname: s(F.hostname),
    slots: Number(s(F.slots)) || 0,
    contract: s(F.contract),
    state: state === 'draining' || state === 'exited' ? state : 'running',
    heartbeat: Number(s(F.heartbeat)) || 0,
    runner: s(F.runner),
    batches: s(F.batches) === '1',
    prefetch: Math.max(0, Math.floor(Number(s(F.prefetch)) || 0)),
  };
}

/** Ask an executor to drain and exit (it reads this with its heartbeat). */
export async function requestExecutorStop(redis: Redis, executorId: string): Promise<void> {
  await redis.hset(executorKey(executorId), F.stopRequested, '1');
}
