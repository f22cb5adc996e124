/**
 * Standby schedulers with real processes: `locus framework --ha zk://…` on a
 * real ZooKeeper, a real Redis and the local cluster. One instance leads, the
 * other stands by and forwards HTTP and gRPC to it; kill -9 of the leader
 * hands the job to the standby; a leader paused (SIGSTOP) for longer than its
 * session is replaced, and when it wakes (SIGCONT) it is fenced: it exits 3
 * without changing job state, and every task still runs exactly once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startBed, type Bed } from './framework-harness.js';
import { startZooKeeper, type TestZooKeeper } from '../harness/zk.js';
import { describeWith, ZOOKEEPER } from '../harness/requires.js';
import { api, readiness, spawnHa, TOKEN, waitForLeader, waitForStandbyOf, type HaInstance } from './ha-harness.js';
import { grpcClient } from './surfaces-harness.js';
import { LEADER_EPOCH_KEY } from '../../src/scheduler/fence.js';

let bed: Bed;
let zk: TestZooKeeper;
const instances: HaInstance[] = [];

const SESSION_MS = 5_000;

function jobSpec(name: string, tasks: number): unknown {
  return {
    name, retries: 0,
    tasks: Array.from({ length: tasks }, () => ({ command: ['sh', '-c', `sleep 2; echo {task.index} {attempt} > '{output}/v'`] })),
    task: { command: ['true'], resources: { cpus: 0.25, mem: '64MiB', disk: '16MiB' } },
  };
}

/** Poll the job through whichever instance leads until it is terminal. */
async function finish(id: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let last: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    for (const i of instances) {
      if (i.proc.exitCode !== null || i.proc.signalCode !== null) continue;
      const r = await api(i.httpUrl, 'GET', `/v1/jobs/${id}`).catch(() => undefined);
      if (r?.status !== 200) continue;
      last = r.json;
      if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(String(last['state']))) return last;
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}

/** Every task succeeded with one attempt and one committed output. */
async function exactlyOnce(via: HaInstance, job: Record<string, unknown>, tasks: number): Promise<void> {
  expect(job['state'], JSON.stringify(job)).toBe('SUCCEEDED');
  const listed = (await api(via.httpUrl, 'GET', `/v1/jobs/${String(job['id'])}/tasks`)).json['tasks'] as { state: string; attempts: unknown[] }[];
  expect(listed).toHaveLength(tasks);
  for (const t of listed) {
    expect(t.state).toBe('SUCCEEDED');
    expect(t.attempts, JSON.stringify(t)).toHaveLength(1);
  }
  expect(readdirSync(join(String(job['outputDir']), 'main')).filter((n) => !n.startsWith('.'))).toHaveLength(tasks);
}

async function waitRunning(via: () => HaInstance, id: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await api(via().httpUrl, 'GET', `/v1/jobs/${id}`);
    const counts = r.json['counts'] as { running: number } | undefined;
    if ((counts?.running ?? 0) > 0) return;
    if (Date.now() > deadline) throw new Error(`job never ran: ${JSON.stringify(r.json)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

describeWith([ZOOKEEPER], 'standby schedulers (--ha)', () => {
  beforeAll(async () => {
    zk = await startZooKeeper();
    bed = await startBed();
  }, 120_000);

  afterAll(async () => {
    for (const i of instances) await i.kill9().catch(() => undefined);
    await bed?.dispose();
    await zk?.stop();
  });

  it('one leads, the standby forwards HTTP and gRPC; kill -9 of the leader hands over within 10 s of the session timeout', async () => {
    const zkUrl = `zk://${zk.connectString}/locus-ha`;
    const a = await spawnHa(bed, 'a', zkUrl);
    instances.push(a);
    expect(await waitForLeader([a], 60_000)).toBe(a);
    const b = await spawnHa(bed, 'b', zkUrl);
    instances.push(b);
    // The standby knows the leader and says so; a load balancer sends traffic to the leader only.
    const rb = await waitForStandbyOf(b, a, 20_000);
    expect(rb).toEqual({ status: 503, role: 'standby', leader: a.httpUrl });
    expect(await (await fetch(`${b.httpUrl}/metrics`)).text()).toMatch(/^locus_leader 0$/m);
    expect(await (await fetch(`${a.httpUrl}/metrics`)).text()).toMatch(/^locus_leader 1$/m);

    // A job submitted to the standby is the leader's job; gRPC through the standby too.
    const tasks = 12;
    const submitted = await api(b.httpUrl, 'POST', '/v1/jobs', jobSpec('ha-kill', tasks));
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    expect(submitted.headers.get('x-locus-leader')).toBe(a.httpUrl);
    const id = String(submitted.json['id']);
    expect((await api(a.httpUrl, 'GET', `/v1/jobs/${id}`)).status).toBe(200);
    const rpc = grpcClient(b.grpcAddress);
    try {
      const viaGrpc = await rpc.unary('GetJob', { id }, TOKEN);
      expect(viaGrpc['id']).toBe(id);
      const denied = await rpc.unary('GetJob', { id }, 'b'.repeat(64)).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(denied?.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      rpc.raw.close();
    }

    // kill -9 the leader while the job runs: the standby takes over.
    await waitRunning(() => a, id);
    const killedAt = Date.now();
    await a.kill9();
    const leader = await waitForLeader([b], SESSION_MS + 10_000 + 5_000);
    const takeoverMs = Date.now() - killedAt;
    expect(leader).toBe(b);
    expect(takeoverMs).toBeLessThan(SESSION_MS + 10_000);
    await exactlyOnce(b, await finish(id, 90_000), tasks);
    // One framework on the master, re-subscribed under the same id.
    const state = (await (await fetch(`${bed.cluster.masterUrl}/state`)).json()) as { frameworks: { name: string }[] };
    expect(state.frameworks.filter((f) => f.name === 'locus')).toHaveLength(1);
  }, 240_000);

  it('a leader paused beyond its session is replaced, and once resumed it is fenced: it exits 3 and the job finishes exactly once', async () => {
    const zkUrl = `zk://${zk.connectString}/locus-ha`;
    const b = await waitForLeader(instances, 10_000);
    const c = await spawnHa(bed, 'c', zkUrl);
    instances.push(c);
    expect((await waitForStandbyOf(c, b, 20_000)).role).toBe('standby');
    const tasks = 12;
    const submitted = await api(c.httpUrl, 'POST', '/v1/jobs', jobSpec('ha-pause', tasks));
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    const id = String(submitted.json['id']);
    await waitRunning(() => b, id);

    const redis = bed.redis.client();
    try {
      const epochBefore = await redis.get(LEADER_EPOCH_KEY);
      const pausedAt = Date.now();
      b.proc.kill('SIGSTOP');
      expect(await waitForLeader([c], SESSION_MS + 10_000 + 5_000)).toBe(c);
      const takeoverMs = Date.now() - pausedAt;
      expect(takeoverMs).toBeLessThan(SESSION_MS + 10_000);
      const epochAfter = await redis.get(LEADER_EPOCH_KEY);
      expect(Number(epochAfter)).toBeGreaterThan(Number(epochBefore));
      expect(c.output()).toContain(`role:        leader (epoch ${String(epochAfter)})`);

      // Wake the old leader: it must step down (exit 3) and the epoch stays the new leader's.
      b.proc.kill('SIGCONT');
      const code = await Promise.race([b.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 30_000))]);
      expect(code, b.output().slice(-3_000)).toBe(3);
      expect(b.output()).toMatch(/lost the lead/);
      expect(await redis.get(LEADER_EPOCH_KEY)).toBe(epochAfter);
      expect((await readiness(c)).role).toBe('leader');
    } finally {
      redis.disconnect();
    }
    await exactlyOnce(c, await finish(id, 90_000), tasks);
  }, 240_000);
});
