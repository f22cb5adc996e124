/**
 * Per-executor Redis ACL users: an executor works with its own user (no
 * denial in the ACL log while it runs a task) and cannot read or write
 * another executor's queue, the scheduler's keys, or run admin commands.
 */
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, QUEUE_PREFIX, SCHEDULER_INFO_KEY, executorAclUser, executorQueueName } from '../../src/executor/contract.js';
import type { ExecutorCredentials, ExecutorProvisioner } from '../../src/scheduler/executor-registry.js';
import type { TestRedis } from '../harness/redis.js';
import { RecordingDispatcher, payload, spawnExecutor, waitRegistered, type ExecutorProc, startExecutorBed, type ExecutorBed } from './executor-harness.js';

let bed: ExecutorBed | undefined;
let redis: TestRedis;
let admin: Redis;
let prov: ExecutorProvisioner;
let work: string;
let rd: RecordingDispatcher;
const procs: ExecutorProc[] = [];
const conns: Redis[] = [];

beforeAll(async () => {
  bed = await startExecutorBed('locus-exec-acl-');
  ({ redis, admin, prov, rd, work } = bed);
});

afterAll(async () => {
  for (const c of conns) c.disconnect();
  await bed?.dispose(procs);
});

function as(creds: ExecutorCredentials): Redis {
  const c = new Redis(redis.url, { username: creds.username, password: creds.password, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => undefined);
  conns.push(c);
  return c;
}

function aclDenials(log: unknown, user: string): number {
  if (!Array.isArray(log)) return 0;
  return log.filter((entry) => Array.isArray(entry) && entry.some((x, i) => x === 'username' && entry[i + 1] === user)).length;
}

describe('executor ACL users', () => {
  it('an executor runs with its own user without a single ACL denial', async () => {
    const creds = await prov.create('A1');
    const e = spawnExecutor({ redis, id: 'A1', creds, sandbox: join(work, 'sb-A1') });
    procs.push(e);
    await waitRegistered(admin, 'A1');
    await rd.dispatcher.watchExecutor('A1');
    await admin.call('ACL', 'LOG', 'RESET');
    const pl = payload('t-acl', 1, ['true']);
    await rd.dispatcher.dispatch('A1', pl);
    expect((await rd.result(pl.attemptId)).state).toBe('SUCCEEDED');
    expect(aclDenials(await admin.call('ACL', 'LOG', '100'), executorAclUser('A1'))).toBe(0);
  });

  it("cannot read or write another executor's queue, the scheduler's keys, or run admin commands", async () => {
    const c1 = await prov.create('B1');
    await prov.create('B2');
    // Something in B2's queue to try to read.
    const q2admin = new Queue(executorQueueName('B2'), { connection: redis.client(), prefix: QUEUE_PREFIX });
    await q2admin.add('attempt', payload('t-secret', 1, ['true']), { jobId: 't-secret.a1' });
    const b1 = as(c1);
    const other = `${QUEUE_PREFIX}:${executorQueueName('B2')}`;
    await expect(b1.lrange(`${other}:wait`, 0, -1)).rejects.toThrow(/NOPERM/);
    await expect(b1.hgetall(`${other}:t-secret.a1`)).rejects.toThrow(/NOPERM/);
    await expect(b1.xrange(`${other}:events`, '-', '+')).rejects.toThrow(/NOPERM/);
    await expect(b1.lpush(`${other}:wait`, 'x')).rejects.toThrow(/NOPERM/);
    await expect(b1.hset('locus:executor:B2', 'state', 'exited')).rejects.toThrow(/NOPERM/);
    await expect(b1.hset(SCHEDULER_INFO_KEY, 'contract', '9.0')).rejects.toThrow(/NOPERM/);
    await expect(b1.call('ACL', 'LIST')).rejects.toThrow(/NOPERM/);
    await expect(b1.call('FLUSHALL')).rejects.toThrow(/NOPERM/);
    await expect(b1.call('KEYS', '*')).rejects.toThrow(/NOPERM/);
    await expect(b1.call('CONFIG', 'GET', 'dir')).rejects.toThrow(/NOPERM/);
    await expect(b1.publish('locus', 'x')).rejects.toThrow(/NOPERM/);
    // Through BullMQ too: adding to B2's queue with B1's user is refused.
    const q2asB1 = new Queue(executorQueueName('B2'), { connection: as(c1), prefix: QUEUE_PREFIX });
    await expect(q2asB1.add('attempt', { x: 1 })).rejects.toThrow(/NOPERM/);
    // What B1 may do: its own registration, its own queue, read the scheduler's contract.
    await b1.hset('locus:executor:B1', 'hb', '1');
    expect(await b1.hget(SCHEDULER_INFO_KEY, 'contract')).toBe(CONTRACT_VERSION);
    const q1 = new Queue(executorQueueName('B1'), { connection: as(c1), prefix: QUEUE_PREFIX });
    await q1.add('attempt', { x: 1 }, { jobId: 'own' });
    // The secret job is untouched.
    expect(await admin.lrange(`${other}:wait`, 0, -1)).toEqual(['t-secret.a1']);
    await Promise.all([q1.close(), q2asB1.close(), q2admin.close()]);
  });

  it('removing the user cuts the executor off', async () => {
    const c = await prov.create('C1');
    const conn = as(c);
    expect(await conn.hset('locus:executor:C1', 'hb', '1')).toBe(1);
    await prov.remove('C1');
    await expect(conn.hset('locus:executor:C1', 'hb', '2')).rejects.toThrow();
    const again = new Redis(redis.url, { username: c.username, password: c.password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    again.on('error', () => undefined);
    await expect(again.connect().then(() => again.ping())).rejects.toThrow();
    again.disconnect();
  });
});
