/**
 * Executors launched as Mesos tasks on the embedded local cluster (two
 * agents, real HTTP), running every attempt as a nested container through
 * their agent's operator API: a multi-task job spread over both agents,
 * isolated, with exactly-once output.
 */
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutorProvisioner } from '../../src/scheduler/executor-registry.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { LINUX_ISOLATION, checkWith } from '../harness/requires.js';
import { RecordingDispatcher, LOCUS_BIN, payload, provisioner, requireBuild, waitFor, waitRegistered } from './executor-harness.js';
import { call, frameworkInfo, offersOf, subscribe, subscribeCall, testCluster, type Sub } from './local-helpers.js';

let redis: TestRedis;
let admin: Redis;
let prov: ExecutorProvisioner;
let rd: RecordingDispatcher;
let env: Awaited<ReturnType<typeof testCluster>>;
let sub: Sub;
let work: string;
const linux = LINUX_ISOLATION.missing === undefined;

beforeAll(async () => {
  requireBuild();
  work = await mkdtemp(join('/var/tmp', 'locus-exec-lc-'));
  await chmod(work, 0o755);
  redis = await startRedis();
  ({ admin, prov } = provisioner(redis));
  rd = new RecordingDispatcher(redis);
  await rd.dispatcher.start();
  await mkdir(join(work, 'cluster'), { recursive: true });
  env = await testCluster({ agents: 2, isolation: linux ? 'linux' : 'process', workDir: join(work, 'cluster') });
  sub = await subscribe(env.cluster.masterUrl, subscribeCall(frameworkInfo('executor-test')));
});

afterAll(async () => {
  sub?.close();
  await env?.dispose();
  await rd?.close();
  admin?.disconnect();
  await redis?.dispose();
  await rm(work, { recursive: true, force: true });
});

describe('executors on the local cluster', () => {
  it('run a multi-task job as nested containers across two agents, isolated, outputs once', async () => {
    const outRoot = join(work, 'out');
    await mkdir(outRoot, { recursive: true });
    await chmod(outRoot, 0o1777);
    const offersEvent = await sub.next((e) => e.type === 'OFFERS' && new Set(offersOf(e).map((o) => o.agent_id.value)).size >= 2, 10_000, 'offers from two agents');
    const offers = offersOf(offersEvent);
    const ids: string[] = [];
    for (const [i, o] of [...new Map(offers.map((x) => [x.agent_id.value, x])).values()].slice(0, 2).entries()) {
      const id = `LC${i}`;
      ids.push(id);
      const creds = await prov.create(id);
      const r = await call(env.cluster.masterUrl, sub.streamId, {
        type: 'ACCEPT', framework_id: { value: sub.frameworkId },
        accept: {
          offer_ids: [o.id],
          operations: [{ type: 'LAUNCH', launch: { task_infos: [{
            name: `locus executor ${id}`, task_id: { value: id }, agent_id: o.agent_id,
            resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 1 }, allocation_info: { role: 'locus' } }, { name: 'mem', type: 'SCALAR', scalar: { value: 384 }, allocation_info: { role: 'locus' } }],
            command: {
              shell: false, value: process.execPath,
              arguments: [process.execPath, LOCUS_BIN, 'executor', '--executor-id', id, '--hostname', o.hostname, '--slots', '2', '--redis-url', redis.url, '--redis-user', creds.username, '--heartbeat', '300ms', '--runner', 'agent'],
              environment: { variables: [{ name: 'LOCUS_REDIS_PASSWORD', value: creds.password }, { name: 'LOCUS_LOG_LEVEL', value: 'warn' }] },
            },
            // The checkout itself is mounted read-only: containers have a private /tmp, and CI
            // may check the repository out under it.
            container: { type: 'MESOS', volumes: [{ container_path: outRoot, host_path: outRoot, mode: 'RW' }, { container_path: process.cwd(), host_path: process.cwd(), mode: 'RO' }] },
          }] } }],
          filters: { refuse_seconds: 0 },
        },
      });
      expect(r.status).toBe(202);
    }
    for (const id of ids) {
      await waitRegistered(admin, id, 20_000);
      expect(await admin.hget(`locus:executor:${id}`, 'runner')).toBe('agent');
      await rd.dispatcher.watchExecutor(id);
    }
    const tasks = Array.from({ length: 6 }, (_, i) => payload(`t-lc${i}`, 1, ['sh', '-c', 'ls /proc | grep -c "^[0-9]"; echo "$LOCUS_ATTEMPT_ID" > {output}/part-0'], { outputDir: join(outRoot, `t${i}`), resources: { cpus: 0.2, memMiB: 64, diskMiB: 0 } }));
    // One by one: three attempts for executors of two slots. Sent together they would go out in
    // one batch per executor, which it takes whole (the scheduler never sends more than it holds).
    for (const [i, p] of tasks.entries()) await rd.dispatcher.dispatch(ids[i % 2] ?? '', p);
    const results = [];
    for (const t of tasks) results.push(await rd.result(t.attemptId, 30_000));
    const visibleProcesses: number[] = [];
    for (const [i, r] of results.entries()) {
      expect(r, r.message).toMatchObject({ state: 'SUCCEEDED', reason: 'COMMITTED' });
      expect((await readFile(join(outRoot, `t${i}`, 'part-0'), 'utf8')).trim()).toBe(r.attemptId);
      // The attempt ran as a nested container: its sandbox is inside the executor's, on the agent.
      expect(r.sandboxDir).toMatch(new RegExp(`^${join(work, 'cluster')}/.*/runs/[^/]+/containers/[^/]+$`));
      visibleProcesses.push(Number((await readFile(join(r.sandboxDir ?? '', 'stdout'), 'utf8')).trim()));
    }
    await checkWith([LINUX_ISOLATION], 'executor-local-cluster: nested containers have their own pid namespace', () => {
      for (const visible of visibleProcesses) expect(visible).toBeLessThan(10);
    });
    expect(new Set(results.map((r) => r.host)).size).toBe(2);
    // Stop the executors through Redis; their Mesos tasks finish.
    for (const id of ids) await rd.dispatcher.requestStop(id);
    for (const id of ids) await waitFor(`${id} exited`, async () => (await admin.hget(`locus:executor:${id}`, 'state')) === 'exited', 15_000);
  });
});
