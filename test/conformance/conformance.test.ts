/**
 * One conformance suite, two masters: every scenario runs against the
 * genuine Apache Mesos 1.12 master and agents and against `locus local`, and
 * must pass on both. Without the genuine binaries (and outside CI) the
 * genuine half prints one SKIPPED line; in CI it fails.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, type Dirent } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { LOCUS_CLI, LOCUS_EXECUTOR } from '../harness/build.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { describeWith } from '../harness/requires.js';
import { ack, call, offersOf, statusOf, subscribe, subscribeCall, type Ev, type Offer, type Sub } from '../integration/local-helpers.js';
import { resolveSettings } from '../../src/app/config.js';
import { startFramework, type RunningFramework } from '../../src/app/framework.js';
import { createLogger, silentLogger } from '../../src/obs/log.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { TERMINAL_JOB_STATES, type JobRecord } from '../../src/scheduler/jobs/model.js';
import { TARGETS, type ClusterTarget, type Isolation } from './targets.js';
import { resultName } from '../../bench/out-name.js';

/** The Mesos variables a genuine 1.12 agent gives a command task (posix isolation), measured. */
const GENUINE_COMMAND_TASK_ENV = [
  'MESOS_AGENT_ENDPOINT', 'MESOS_ALLOCATION_ROLE', 'MESOS_CHECKPOINT', 'MESOS_DIRECTORY', 'MESOS_EXECUTOR_ID',
  'MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD', 'MESOS_FRAMEWORK_ID', 'MESOS_HTTP_COMMAND_EXECUTOR', 'MESOS_SANDBOX', 'MESOS_SLAVE_ID', 'MESOS_SLAVE_PID',
];


let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
}, 60_000);
/** Every `locus framework` child a scenario started: none may outlive the file, even when a scenario fails midway. */
const children = new Set<ReturnType<typeof spawn>>();

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.dispose();
});

/**
 * Scenarios share a cluster: a stopped framework's executors live on until its failover timeout
 * (days), holding the agent's resources. Tearing every framework down at the master between
 * scenarios gives the next one the whole cluster.
 */
async function teardownFrameworks(t: ClusterTarget | undefined): Promise<void> {
  if (!t) return;
  const state = await fetch(`${t.masterUrl}/state`, { headers: basic(t) }).then((r) => r.json() as Promise<{ frameworks?: { id: string }[] }>).catch(() => ({ frameworks: [] }));
  for (const f of state.frameworks ?? []) {
    await fetch(`${t.masterUrl}/teardown`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...basic(t) }, body: `frameworkId=${f.id}` }).catch(() => undefined);
  }
  // The agents' resources come back once the torn-down frameworks' tasks are gone.
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const st = await fetch(`${t.masterUrl}/state`, { headers: basic(t) }).then((r) => r.json() as Promise<{ slaves?: { used_resources?: { cpus?: number } }[] }>).catch(() => ({ slaves: [] }));
    if ((st.slaves ?? []).every((a) => (a.used_resources?.cpus ?? 0) === 0)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function basic(t: ClusterTarget): Record<string, string> {
  if (t.principal === undefined || t.secretFile === undefined) return {};
  return { Authorization: `Basic ${Buffer.from(`${t.principal}:${readFileSync(t.secretFile, 'utf8').trim()}`).toString('base64')}` };
}

/**
 * A plain v1 framework as JavaScript clients write it: every optional field it does not use is
 * sent as JSON `null`, which a genuine master reads as absent.
 */
function nullFrameworkInfo(name: string, principal?: string): Record<string, unknown> {
  return { user: 'root', name, id: null, role: null, roles: ['*'], principal: principal ?? null, hostname: null, webui_url: null, checkpoint: null, failover_timeout: 60, capabilities: [{ type: 'MULTI_ROLE' }] };
}

/** OFFERS events already handed out by nextOffer. */
const offersTaken = new WeakSet<Ev>();

/**
 * The first OFFERS event not handed out before, whenever it arrived. Counting from the events seen
 * when the call starts loses an offer that arrived, with the master's first HEARTBEAT behind it,
 * before the caller got here (CI run 20: 'got: SUBSCRIBED,OFFERS,HEARTBEAT,HEARTBEAT').
 */
async function nextOffer(sub: Sub, timeoutMs = 15_000): Promise<Offer> {
  const e = await sub.next((x) => !offersTaken.has(x) && x.type === 'OFFERS' && offersOf(x).length > 0, timeoutMs, 'an offer');
  offersTaken.add(e);
  const o = offersOf(e)[0];
  if (!o) throw new Error('empty offer');
  return o;
}

function nullTask(taskId: string, o: Offer, cmd: string, cpus: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: taskId, task_id: { value: taskId }, agent_id: o.agent_id, executor: null, data: null, labels: null, health_check: null, kill_policy: null,
    resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: cpus }, role: null, reservation: null }, { name: 'mem', type: 'SCALAR', scalar: { value: 32 } }],
    command: { shell: true, value: cmd, uris: null, environment: null, user: null },
    ...extra,
  };
}

async function waitJob(fw: RunningFramework, id: string, timeoutMs: number, onPoll?: (job: JobRecord) => void): Promise<JobRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await fw.jobs.get(id);
    onPoll?.(job);
    if (TERMINAL_JOB_STATES.has(job.state)) return job;
    if (Date.now() > deadline) {
      const why = await fw.coordinator.explain(`${id}.0.0`).catch((err: unknown) => String(err));
      throw new Error(`job ${id} still ${job.state} after ${timeoutMs} ms: ${JSON.stringify(job.counts)}; task 0: ${JSON.stringify(why)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Each scenario's framework is a new framework: the FrameworkID lives in Redis, and one torn down
 * in an earlier scenario must not be reused.
 */
async function freshRedis(): Promise<void> {
  const c = redis.client();
  try {
    await c.flushall();
  } finally {
    c.disconnect();
  }
}

function frameworkFlags(t: ClusterTarget, extra: Record<string, string> = {}): Record<string, string> {
  return {
    master: t.masterUrl, redis: redis.url, 'state-dir': join(t.dir, 'state'), 'http-port': '0', 'grpc-port': '0',
    'admin-token': 'c'.repeat(64), 'executor-idle-timeout': '20s', 'executor-main': LOCUS_EXECUTOR, 'framework-name': `locus-conformance-${t.kind}`,
    'locality-wait-node': '0s', 'locality-wait-rack': '0s',
    ...(t.principal !== undefined && t.secretFile !== undefined ? { principal: t.principal, 'secret-file': t.secretFile } : {}),
    ...extra,
  };
}

/** A new framework (fresh Redis: a torn-down FrameworkID must not be reused) subscribed to `t`. */
async function frameworkOn(t: ClusterTarget, extra: Record<string, string> = {}): Promise<RunningFramework> {
  await freshRedis();
  const fw = await startFramework(resolveSettings(frameworkFlags(t, extra)), { logger: testLogger() });
  try {
    await fw.waitForSubscribed(30_000);
  } catch (err) {
    await fw.stop();
    throw err;
  }
  return fw;
}

/** A two-stage job: a map over a file:// dataset, then a reduce over the map outputs. */
function twoStageSpec(dataset: string): ReturnType<typeof validateJobSpec> {
  return validateJobSpec({
    name: 'conformance-wordcount',
    retries: 1,
    stages: [
      { name: 'map', inputs: [`file://${dataset}/`], split: 'file', task: { command: ['sh', '-c', "wc -w < '{split.path}' > '{output}/words'"], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } } },
      {
        name: 'reduce', inputs: ['stage:map'],
        tasks: [{ command: ['sh', '-c', "cat {stages.map.output}/*/words | awk '{s+=$1} END {print s}' > '{output}/total'"] }],
        task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
      },
    ],
  });
}

function writeDataset(t: ClusterTarget): string {
  const dataset = join(t.dir, 'books');
  mkdirSync(dataset, { recursive: true });
  for (let i = 0; i < 4; i++) writeFileSync(join(dataset, `b${i}.txt`), Array.from({ length: 50 }, () => 'alpha beta gamma').join('\n'));
  return dataset;
}

/**
 * A cluster for one describe: started before its scenarios, stopped after them, and with every
 * framework torn down between scenarios (a stopped framework's executors would hold the agents
 * until its failover timeout, days). Returns the running cluster.
 */
function useCluster(start: () => Promise<ClusterTarget>): () => ClusterTarget {
  let t: ClusterTarget | undefined;
  beforeAll(async () => {
    t = await start();
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  }, 60_000);
  afterEach(async () => {
    await teardownFrameworks(t);
  }, 60_000);
  return () => {
    if (!t) throw new Error('the cluster did not start');
    return t;
  };
}

for (const target of TARGETS) {
  describeWith(target.deps, `conformance on ${target.name} Mesos`, () => {
    describeWith([], `${target.name}: posix isolation (a genuine agent's default)`, () => {
      const cluster = useCluster(() => target.start({ agents: 1, isolation: 'posix' }));

      it('probe: `locus mesos probe` subscribes, sees offers and tears itself down', async () => {
        const t = cluster();
        const out = await runCli(['mesos', 'probe', '--master', t.masterUrl], 30_000);
        expect(out.code, out.text).toBe(0);
        expect(out.text).toMatch(/offer/i);
      }, 40_000);

      it('a client that writes null for absent fields subscribes, re-subscribes and runs 20 command tasks', async () => {
        const t = cluster();
        const sub = await subscribe(t.masterUrl, subscribeCall(nullFrameworkInfo('null-client')));
        try {
          expect(sub.status).toBe(200);
          expect(sub.frameworkId).not.toBe('');
          // Re-subscribing with the same FrameworkID on a new connection keeps the framework.
          const again = await subscribe(t.masterUrl, { type: 'SUBSCRIBE', framework_id: { value: sub.frameworkId }, subscribe: { framework_info: { ...nullFrameworkInfo('null-client'), id: { value: sub.frameworkId } } } });
          expect(again.frameworkId).toBe(sub.frameworkId);
          sub.close();
          const ids = Array.from({ length: 20 }, (_, i) => `sleep-${i}`);
          const launched = new Set<string>();
          const finished = new Set<string>();
          const started = Date.now();
          while (finished.size < ids.length) {
            if (Date.now() - started > 90_000) throw new Error(`only ${finished.size} of 20 finished`);
            const e = await again.next((x) => (x.type === 'OFFERS' || x.type === 'UPDATE') && !(x as { seen?: boolean }).seen, 30_000, 'offer or update');
            (e as { seen?: boolean }).seen = true;
            if (e.type === 'UPDATE') {
              const s = statusOf(e);
              await ack(t.masterUrl, again, e);
              if (s.state === 'TASK_FINISHED') finished.add(s.task_id.value);
              else if (['TASK_FAILED', 'TASK_ERROR', 'TASK_LOST', 'TASK_DROPPED'].includes(s.state)) throw new Error(`${s.task_id.value}: ${s.state} ${s.message ?? ''}`);
              continue;
            }
            for (const o of offersOf(e)) {
              const cpus = o.resources.filter((r) => r.name === 'cpus').reduce((a, r) => a + (r.scalar?.value ?? 0), 0);
              const todo = ids.filter((id) => !launched.has(id)).slice(0, Math.floor(cpus / 0.1 + 1e-9));
              const tasks = todo.map((id) => nullTask(id, o, 'sleep 0.2', 0.1));
              todo.forEach((id) => launched.add(id));
              const r = await call(t.masterUrl, again.streamId, {
                type: 'ACCEPT', framework_id: { value: again.frameworkId },
                accept: { offer_ids: [o.id], operations: tasks.length > 0 ? [{ type: 'LAUNCH', launch: { task_infos: tasks }, id: null }] : [], filters: { refuse_seconds: 0.1 } },
              });
              expect(r.status, r.body).toBe(202);
            }
          }
          expect(finished.size).toBe(20);
          await call(t.masterUrl, again.streamId, { type: 'TEARDOWN', framework_id: { value: again.frameworkId } });
          again.close();
        } finally {
          sub.close();
        }
      }, 120_000);

      it('a command task gets exactly the genuine Mesos environment, and ContainerInfo volumes are refused under posix', async () => {
        const t = cluster();
        const sub = await subscribe(t.masterUrl, subscribeCall(nullFrameworkInfo('env-probe')));
        try {
          const o = await nextOffer(sub);
          // Written by the task's user (root on a genuine agent, the workload user on the local one).
          const envDir = join(t.dir, `env-${Date.now()}`);
          mkdirSync(envDir, { mode: 0o1777 });
          chmodSync(envDir, 0o1777);
          const marker = join(envDir, 'env');
          const r = await call(t.masterUrl, sub.streamId, {
            type: 'ACCEPT', framework_id: { value: sub.frameworkId },
            accept: { offer_ids: [o.id], operations: [{ type: 'LAUNCH', launch: { task_infos: [
              nullTask('env-1', o, `env > ${marker}`, 0.1),
              nullTask('vol-1', o, 'true', 0.1, { container: { type: 'MESOS', volumes: [{ container_path: t.dir, host_path: t.dir, mode: 'RW' }] } }),
            ] } }] },
          });
          expect(r.status, r.body).toBe(202);
          // An agent sends a task's next update only after the previous one was acknowledged.
          const seen = new Set<Ev>();
          const final = new Map<string, Ev>();
          const deadline = Date.now() + 30_000;
          while (!final.has('env-1') || !final.has('vol-1')) {
            const e = await sub.next((x) => x.type === 'UPDATE' && !seen.has(x), Math.max(1, deadline - Date.now()), 'updates of env-1 and vol-1');
            seen.add(e);
            await ack(t.masterUrl, sub, e);
            const st = statusOf(e);
            if (['TASK_FINISHED', 'TASK_FAILED', 'TASK_ERROR', 'TASK_LOST', 'TASK_DROPPED'].includes(st.state)) final.set(st.task_id.value, e);
          }
          expect(statusOf(final.get('env-1') as Ev).state).toBe('TASK_FINISHED');
          const vars = readFileSync(marker, 'utf8').split('\n').map((l) => l.split('=')[0] ?? '').filter((k) => k.startsWith('MESOS_')).sort();
          expect(vars).toEqual(GENUINE_COMMAND_TASK_ENV);
          expect(statusOf(final.get('vol-1') as Ev)).toMatchObject({ source: 'SOURCE_AGENT', reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: 'Failed to launch container: Volumes in ContainerInfo is not supported' });
          await call(t.masterUrl, sub.streamId, { type: 'TEARDOWN', framework_id: { value: sub.frameworkId } });
        } finally {
          sub.close();
        }
      }, 60_000);

      twoStageScenario(cluster, 'posix');
      twoStageScenario(cluster, 'posix', 'uri');

      killWhileLaunchingScenarios(cluster);

      it('a persistent volume: RESERVE + CREATE, a job writes, a second reads, DELETE refused in use, then DESTROY + UNRESERVE', async () => {
        const t = cluster();
        const fw = await frameworkOn(t, { 'state-dir': join(t.dir, 'state-volume'), 'executor-idle-timeout': '2s' });
        try {
          const api = httpApi(fw.httpUrl);
          const slaves = async (): Promise<string[]> => {
            const st = (await (await fetch(`${t.masterUrl}/slaves`, { headers: basic(t) })).json()) as { slaves: { reserved_resources_full?: Record<string, { disk?: { persistence?: { id: string } } }[]> }[] };
            return st.slaves.flatMap((a) => Object.values(a.reserved_resources_full ?? {}).flat()).map((r) => r.disk?.persistence?.id ?? '').filter((x) => x !== '');
          };
          const ro = await api('POST', '/v1/volumes', { name: 'ro-cache', size: '16MiB', containerPath: 'data', mode: 'RO' });
          // A genuine CREATE refuses read-only persistent volumes; the API says so up front.
          expect(ro.status).toBe(400);
          const created = await api('POST', '/v1/volumes', { name: 'cache', size: '64MiB', containerPath: 'data' });
          expect(created.status, JSON.stringify(created.json)).toBe(201);
          const ready = await waitVolume(api, 'cache', ['READY'], 60_000);
          const id = String(ready['id']);
          expect(await slaves()).toContain(id);
          const volumeTask = { resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' }, volumes: [{ name: 'cache', path: 'cache', mode: 'RW' }] };
          const writer = await fw.jobs.submit('default', validateJobSpec({ name: 'write-cache', tasks: [{ command: ['sh', '-c', 'echo hello-volume > cache/greeting'] }], task: { command: ['true'], ...volumeTask } }));
          const wrote = await waitJob(fw, writer.id, 90_000);
          expect(wrote.state, await attemptMessages(fw, writer.id)).toBe('SUCCEEDED');
          const reader = await fw.jobs.submit('default', validateJobSpec({ name: 'read-cache', tasks: [{ command: ['sh', '-c', "cat cache/greeting > '{output}/got'"] }], task: { command: ['true'], ...volumeTask } }));
          const read = await waitJob(fw, reader.id, 90_000);
          expect(read.state).toBe('SUCCEEDED');
          expect(readFileSync(join(read.outputDir, 'main', '00000', 'got'), 'utf8').trim()).toBe('hello-volume');
          const holder = await fw.jobs.submit('default', validateJobSpec({ name: 'hold-cache', tasks: [{ command: ['sleep', '5'] }], task: { command: ['true'], ...volumeTask } }));
          await waitVolume(api, 'cache', ['IN_USE'], 60_000);
          const busy = await api('DELETE', '/v1/volumes/cache');
          expect(busy.status).toBe(409);
          expect((await waitJob(fw, holder.id, 90_000)).state).toBe('SUCCEEDED');
          await waitVolume(api, 'cache', ['READY'], 90_000);
          const del = await api('DELETE', '/v1/volumes/cache');
          expect(del.status, JSON.stringify(del.json)).toBeLessThan(300);
          // Carried out within seconds, and gone from the master's reserved resources.
          const deadline = Date.now() + 30_000;
          while ((await slaves()).includes(id)) {
            if (Date.now() > deadline) throw new Error(`volume ${id} still on the master 30 s after DELETE: ${JSON.stringify((await api('GET', '/v1/volumes/cache')).json)}`);
            await new Promise((r) => setTimeout(r, 250));
          }
        } finally {
          await fw.stop();
        }
      }, 300_000);

      it('kill -9 of `locus framework` mid-job, then a restart: reconciled, adopted, every task exactly once', async () => {
        const t = cluster();
        await freshRedis();
        const flags = frameworkFlags(t, { 'state-dir': join(t.dir, 'state-kill9') });
        const first = await spawnLocus(flags);
        const api1 = httpApi(first.httpUrl);
        const sub = await api1('POST', '/v1/jobs', { name: 'survive', retries: 2, tasks: Array.from({ length: 6 }, (_, i) => ({ command: ['sh', '-c', `sleep 2; echo ${i} > '{output}/n'`] })), task: { command: ['true'], resources: { cpus: 0.2, mem: '32MiB' } } });
        expect(sub.status, JSON.stringify(sub.json)).toBe(201);
        const jobId = String(sub.json['id']);
        const deadline = Date.now() + 60_000;
        for (;;) {
          const j = await api1('GET', `/v1/jobs/${jobId}`);
          if (Number((j.json['counts'] as { running?: number } | undefined)?.running ?? 0) > 0) break;
          if (Date.now() > deadline) throw new Error(`nothing ran: ${JSON.stringify(j.json)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        first.proc.kill('SIGKILL');
        await new Promise((r) => first.proc.once('exit', r));
        const second = await spawnLocus(flags);
        try {
          const api2 = httpApi(second.httpUrl);
          const end = Date.now() + 120_000;
          let job: Record<string, unknown> = {};
          for (;;) {
            job = (await api2('GET', `/v1/jobs/${jobId}`)).json;
            if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(String(job['state']))) break;
            if (Date.now() > end) throw new Error(`job after restart: ${JSON.stringify(job)}`);
            await new Promise((r) => setTimeout(r, 200));
          }
          expect(job['state'], JSON.stringify(job)).toBe('SUCCEEDED');
          const out = String(job['outputDir']);
          for (let i = 0; i < 6; i++) expect(readFileSync(join(out, 'main', String(i).padStart(5, '0'), 'n'), 'utf8').trim()).toBe(String(i));
          const tasks = (await api2('GET', `/v1/jobs/${jobId}/tasks`)).json;
          const list = (Array.isArray(tasks) ? tasks : (tasks['tasks'] as unknown[] | undefined) ?? []) as { state: string }[];
          expect(list).toHaveLength(6);
          for (const task of list) expect(task.state).toBe('SUCCEEDED');
        } finally {
          second.proc.kill('SIGTERM');
          await new Promise((r) => second.proc.once('exit', r));
        }
      }, 240_000);

      it('a framework the master tore down: `locus framework` stops non-zero with the master\'s message within 10 s', async () => {
        const t = cluster();
        await freshRedis();
        const port = String(await freePortFor());
        const proc = spawn(process.execPath, [LOCUS_CLI, 'framework', ...Object.entries(frameworkFlags(t, { 'http-port': port, 'state-dir': join(t.dir, 'state-teardown'), 'framework-name': 'locus-teardown' })).flatMap(([k, v]) => [`--${k}`, v])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: 'warn' } });
        let text = '';
        proc.stdout?.on('data', (b: Buffer) => { text += b.toString(); });
        proc.stderr?.on('data', (b: Buffer) => { text += b.toString(); });
        const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
        try {
          let fid: string | undefined;
          const deadline = Date.now() + 30_000;
          while (fid === undefined) {
            if (Date.now() > deadline) throw new Error(`locus framework never subscribed: ${text}`);
            const state = await fetch(`${t.masterUrl}/state`, { headers: basic(t) }).then((r) => r.json() as Promise<{ frameworks?: { id: string; name: string }[] }>).catch(() => ({ frameworks: [] }));
            fid = state.frameworks?.find((f) => f.name === 'locus-teardown')?.id;
            if (fid === undefined) await new Promise((r) => setTimeout(r, 200));
          }
          const torn = await fetch(`${t.masterUrl}/teardown`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...basic(t) }, body: `frameworkId=${fid}` });
          expect(torn.status).toBe(200);
          const tornAt = Date.now();
          const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
          expect(code, text).not.toBe('timeout');
          expect(code).not.toBe(0);
          expect(Date.now() - tornAt).toBeLessThan(10_000);
          expect(text).toMatch(/Framework has been removed|removed|torn down/i);
        } finally {
          if (proc.exitCode === null) proc.kill('SIGKILL');
        }
      }, 60_000);

      // A check in the suite (every task succeeds, once); its time is a figure, recorded in
      // bench/results/ only when `npm run bench:conformance` asks (LOCUS_CONFORMANCE_FIGURES=1).
      it('short tasks: 100 × `sleep 0.2` at 0.1 cpu on one 2-cpu agent all succeed, each once (the time recorded by `npm run bench:conformance`)', async () => {
        const t = cluster();
        const fw = await frameworkOn(t, { 'state-dir': join(t.dir, 'state-short') });
        try {
          const started = Date.now();
          const job = await fw.jobs.submit('default', validateJobSpec({
            name: 'short-tasks', retries: 1,
            stages: [{ name: 'sleep', tasks: Array.from({ length: 100 }, () => ({ command: ['sleep', '0.2'] })), task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB' } } }],
          }));
          let firstRunning: number | undefined;
          const done = await waitJob(fw, job.id, 240_000, (j) => {
            if (firstRunning === undefined && j.counts.running + j.counts.succeeded > 0) firstRunning = (Date.now() - started) / 1000;
          });
          const seconds = (Date.now() - started) / 1000;
          expect(done.state).toBe('SUCCEEDED');
          expect(done.counts.succeeded).toBe(100);
          for (const task of await fw.jobs.tasks(job.id)) expect(task.attempts.filter((a) => a.state === 'SUCCEEDED'), task.id).toHaveLength(1);
          if (process.env['LOCUS_CONFORMANCE_FIGURES'] === '1') recordFigure(`short-tasks-${target.name}`, { tasks: 100, agents: 1, cpusPerAgent: 2, taskCpus: 0.1, seconds, idealSeconds: 1.1, firstAttemptStartedSeconds: firstRunning ?? seconds });
        } finally {
          await fw.stop();
        }
      }, 300_000);

      // Under posix the executor runs attempts as its own children (their sandboxes in its own).
      keptSandboxesScenario(cluster, 'posix');
    });

    describeWith([], `${target.name}: cgroups/cpu,cgroups/mem,filesystem/linux,namespaces/pid`, () => {
      const cluster = useCluster(() => target.start({ agents: 2, isolation: 'linux' }));
      twoStageScenario(cluster, 'linux');
      keptSandboxesScenario(cluster, 'linux');
    });

    describeWith([], `${target.name}: failures (two agents${target.name === 'genuine' ? ', replicated-log registry' : ''})`, () => {
      const cluster = useCluster(() => target.start({ agents: 2, isolation: 'posix', registry: 'replicated_log' }));

      const sleepJob = (name: string, n: number, seconds: number): ReturnType<typeof validateJobSpec> => validateJobSpec({
        name, retries: 3,
        tasks: Array.from({ length: n }, (_, i) => ({ command: ['sh', '-c', `sleep ${seconds}; echo ${i} > '{output}/n'`] })),
        task: { command: ['true'], resources: { cpus: 0.3, mem: '32MiB' } },
      });
      const checkOutputs = (job: JobRecord, n: number): void => {
        for (let i = 0; i < n; i++) expect(readFileSync(join(job.outputDir, 'main', String(i).padStart(5, '0'), 'n'), 'utf8').trim()).toBe(String(i));
      };
      const whenRunning = async (fw: RunningFramework, id: string): Promise<void> => {
        const deadline = Date.now() + 60_000;
        while ((await fw.jobs.get(id)).counts.running === 0) {
          if (Date.now() > deadline) throw new Error('nothing ran within 60 s');
          await new Promise((r) => setTimeout(r, 100));
        }
      };

      it('an agent restarted mid-job: its executors are recovered and the job completes, each output once', async () => {
        const t = cluster();
        const fw = await frameworkOn(t, { 'state-dir': join(t.dir, 'state-agent-restart') });
        try {
          const job = await fw.jobs.submit('default', sleepJob('agent-restart', 4, 4));
          await whenRunning(fw, job.id);
          await t.restartAgent(1);
          const done = await waitJob(fw, job.id, 180_000);
          expect(done.state, JSON.stringify(done.counts)).toBe('SUCCEEDED');
          checkOutputs(done, 4);
        } finally {
          await fw.stop();
        }
      }, 240_000);

      if (target.name === 'genuine') {
        it('the master restarted mid-job (replicated log): the framework re-subscribes, reconciles and the job completes', async () => {
          const t = cluster();
          const fw = await frameworkOn(t, { 'state-dir': join(t.dir, 'state-master-restart') });
          try {
            const job = await fw.jobs.submit('default', sleepJob('master-restart', 4, 4));
            await whenRunning(fw, job.id);
            await t.restartMaster?.();
            const done = await waitJob(fw, job.id, 180_000);
            expect(done.state, JSON.stringify(done.counts)).toBe('SUCCEEDED');
            checkOutputs(done, 4);
          } finally {
            await fw.stop();
          }
        }, 240_000);
      }

      it('an agent killed for good: its tasks are retried elsewhere, its volume is UNAVAILABLE and never destroyed', async () => {
        const t = cluster();
        const fw = await frameworkOn(t, { 'state-dir': join(t.dir, 'state-agent-kill') });
        try {
          const api = httpApi(fw.httpUrl);
          const created = await api('POST', '/v1/volumes', { name: 'pinned', size: '16MiB', agent: t.agents[0]?.hostname });
          expect(created.status, JSON.stringify(created.json)).toBe(201);
          await waitVolume(api, 'pinned', ['READY'], 60_000);
          const job = await fw.jobs.submit('default', sleepJob('agent-kill', 4, 5));
          await whenRunning(fw, job.id);
          await t.killAgent(1);
          const done = await waitJob(fw, job.id, 240_000);
          expect(done.state, JSON.stringify(done.counts)).toBe('SUCCEEDED');
          checkOutputs(done, 4);
          const hosts = (await fw.jobs.tasks(job.id)).map((task) => task.attempts[task.attempts.length - 1]?.host);
          expect(hosts.every((h) => h === t.agents[1]?.hostname)).toBe(true);
          const v = await waitVolume(api, 'pinned', ['UNAVAILABLE'], 60_000);
          expect(v['state']).toBe('UNAVAILABLE');
        } finally {
          await fw.stop();
        }
      }, 330_000);
    });

    describeWith([], `${target.name}: framework authentication (and executor authentication on genuine agents)`, () => {
      const cluster = useCluster(() => target.start({ agents: 1, isolation: 'posix', auth: true }));

      it('refuses a framework without credentials (401) and runs a job with --principal/--secret-file', async () => {
        const t = cluster();
        const anon = await call(t.masterUrl, undefined, subscribeCall(nullFrameworkInfo('anon')));
        expect(anon.status).toBe(401);
        const fw = await frameworkOn(t);
        try {
          const job = await fw.jobs.submit('default', twoStageSpec(writeDataset(t)));
          const done = await waitJob(fw, job.id, 120_000);
          expect(done.state, JSON.stringify(done.counts)).toBe('SUCCEEDED');
          expect(readFileSync(join(done.outputDir, 'reduce', '00000', 'total'), 'utf8').trim()).toBe(String(4 * 150));
        } finally {
          await fw.stop();
        }
      }, 180_000);
    });
  });
}

// Executor authentication cannot run on the genuine half: the testbed's agent is built without
// JWT support and refuses `--authenticate_http_executors` as an unknown flag. The local agent
// follows the documented behaviour (a Bearer token per executor, 401 without it).
describeWith([], 'local: executor authentication (--authenticate_http_executors)', () => {
  for (const mode of [true, 'reject-all'] as const) {
    it(mode === true
      ? 'executors send their token: nested containers are launched through the agent'
      : 'an agent that answers 401 to every executor call: attempts still run (in the executor\'s own containers), none fails for it', async () => {
      const t = await TARGETS[0]?.start({ agents: 1, isolation: 'linux', executorAuth: mode });
      if (!t) throw new Error('no local target');
      try {
        const anon = await fetch(`${t.agents[0]?.url ?? ''}/api/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ type: 'GET_CONTAINERS' }) });
        expect(anon.status).toBe(401);
        const fw = await frameworkOn(t);
        try {
          const job = await fw.jobs.submit('default', twoStageSpec(writeDataset(t)));
          const done = await waitJob(fw, job.id, 120_000);
          expect(done.state, JSON.stringify(done.counts)).toBe('SUCCEEDED');
          const tasks = await fw.jobs.tasks(job.id);
          // Each task took one attempt: a refused agent call is never counted against a task.
          for (const task of tasks) expect(task.attempts).toHaveLength(1);
          // Either runner puts an attempt's sandbox under the executor's, on the agent.
          for (const task of tasks) expect(task.attempts[0]?.sandboxDir ?? '').toMatch(new RegExp(`^${t.dir}/cluster/.*/containers/[^/]+$`));
        } finally {
          await fw.stop();
        }
      } finally {
        await t.stop();
      }
    }, 180_000);
  }
});

const TERMINAL_TASK_STATES = ['TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST', 'TASK_DROPPED'];

/** Updates seen by updatesUntil, across calls for the same task. */
const updatesSeen = new WeakSet<Ev>();

/** The updates of one task, each acknowledged (an agent sends the next only then), until one in `until` (a terminal one). */
async function updatesUntil(t: ClusterTarget, sub: Sub, taskId: string, timeoutMs: number, until: readonly string[] = TERMINAL_TASK_STATES): Promise<{ states: string[]; last: ReturnType<typeof statusOf>; at: number }> {
  const states: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = await sub.next((x) => x.type === 'UPDATE' && !updatesSeen.has(x) && statusOf(x).task_id.value === taskId, Math.max(1, deadline - Date.now()), `the updates of ${taskId} (got ${states.join(', ')})`);
    updatesSeen.add(e);
    await ack(t.masterUrl, sub, e);
    const s = statusOf(e);
    states.push(s.state);
    if (until.includes(s.state)) return { states, last: s, at: Date.now() };
  }
}

/** Host pids whose command line contains `token` (a task's processes, found by a unique argument). */
function processesWith(token: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(token)) out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function noProcessWith(token: string, timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = processesWith(token);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A KILL that reaches a command task while the agent still launches it, and one that reaches it
 * just after it started, before its command installed any SIGTERM handler. Locus kills its
 * executors so whenever it releases one that has not registered yet (a volume delete, an idle
 * release): both must end the task promptly, not after its kill-policy grace.
 */
function killWhileLaunchingScenarios(get: () => ClusterTarget): void {
  it('a KILL while a command task is launching (its URI still being fetched): TASK_KILLED at once, killed during launch, and its command never runs', async () => {
    const t = get();
    // The fetch of the task's URI is answered only when the test says so: the launch is held
    // there, before the container (and the genuine command executor) starts.
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => { release = r; });
    const server = createServer((req, res) => {
      void released.then(() => res.end('payload\n'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const sub = await subscribe(t.masterUrl, subscribeCall(nullFrameworkInfo('kill-launching')));
    const token = `${60 + Math.random()}`.slice(0, 12);
    const marker = join(t.dir, `ran-${token}`);
    try {
      const o = await nextOffer(sub);
      const r = await call(t.masterUrl, sub.streamId, {
        type: 'ACCEPT', framework_id: { value: sub.frameworkId },
        accept: { offer_ids: [o.id], operations: [{ type: 'LAUNCH', launch: { task_infos: [
          nullTask('held-1', o, `touch ${marker}; exec sleep ${token}`, 0.1, {
            command: { shell: true, value: `touch ${marker}; exec sleep ${token}`, uris: [{ value: `http://127.0.0.1:${port}/payload.txt`, extract: false, cache: false }] },
            kill_policy: { grace_period: { nanoseconds: 20e9 } },
          }),
        ] } }] },
      });
      expect(r.status, r.body).toBe(202);
      const asked = Date.now();
      const k = await call(t.masterUrl, sub.streamId, { type: 'KILL', framework_id: { value: sub.frameworkId }, kill: { task_id: { value: 'held-1' }, agent_id: o.agent_id } });
      expect(k.status, k.body).toBe(202);
      // The fetch is still held: the kill cannot wait for the container.
      const { states, last, at } = await updatesUntil(t, sub, 'held-1', 10_000);
      expect(states).toEqual(['TASK_KILLED']);
      expect(last).toMatchObject({ source: 'SOURCE_AGENT', reason: 'REASON_TASK_KILLED_DURING_LAUNCH', message: 'Killed before delivery to the executor' });
      expect(at - asked).toBeLessThan(5_000);
      // Let the launch go on: the container that starts now is shut down without running the command.
      release();
      expect(await noProcessWith(token, 10_000)).toEqual([]);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(existsSync(marker), 'the killed task\'s command ran').toBe(false);
      expect(processesWith(token)).toEqual([]);
      await call(t.masterUrl, sub.streamId, { type: 'TEARDOWN', framework_id: { value: sub.frameworkId } });
    } finally {
      release();
      sub.close();
      server.close();
      server.closeAllConnections();
    }
  }, 60_000);

  // `sleep` has no SIGTERM handler; Node's own one (there until a program listens for SIGTERM)
  // restores the default action and raises the signal again. Under a genuine agent the command
  // executor's SIGTERM ends either (the task is not the container's init, whose unhandled signals
  // the kernel drops); a Locus executor that is still loading is the Node case.
  for (const [what, command] of [['sleep', (token: string) => `exec sleep ${token}`], ['node', (token: string) => `exec '${process.execPath}' -e 'setTimeout(() => {}, 60000)' ${token}`]] as const) {
    it(`a KILL just after a command task started, before its command handles SIGTERM (${what}): it ends at once, not after the kill-policy grace`, async () => {
      const t = get();
      const sub = await subscribe(t.masterUrl, subscribeCall(nullFrameworkInfo('kill-started')));
      const token = `${60 + Math.random()}`.slice(0, 12);
      try {
        const o = await nextOffer(sub);
        const r = await call(t.masterUrl, sub.streamId, {
          type: 'ACCEPT', framework_id: { value: sub.frameworkId },
          accept: { offer_ids: [o.id], operations: [{ type: 'LAUNCH', launch: { task_infos: [
            nullTask('bare-1', o, command(token), 0.1, { kill_policy: { grace_period: { nanoseconds: 20e9 } } }),
          ] } }] },
        });
        expect(r.status, r.body).toBe(202);
        await updatesUntil(t, sub, 'bare-1', 15_000, ['TASK_RUNNING', ...TERMINAL_TASK_STATES]);
        // Running as the agent reports it; its command runs once the shell has exec'd it.
        const deadline = Date.now() + 10_000;
        while (processesWith(token).length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
        const asked = Date.now();
        const k = await call(t.masterUrl, sub.streamId, { type: 'KILL', framework_id: { value: sub.frameworkId }, kill: { task_id: { value: 'bare-1' }, agent_id: o.agent_id } });
        expect(k.status, k.body).toBe(202);
        const { last, at } = await updatesUntil(t, sub, 'bare-1', 30_000);
        expect(last.state).toBe('TASK_KILLED');
        expect(last.message).toBe('Command terminated with signal Terminated');
        expect(at - asked).toBeLessThan(5_000);
        expect(await noProcessWith(token, 5_000)).toEqual([]);
        await call(t.masterUrl, sub.streamId, { type: 'TEARDOWN', framework_id: { value: sub.frameworkId } });
      } finally {
        sub.close();
      }
    }, 60_000);
  }
}

let bundle: string | undefined;
/** The executor bundle (`npm run bundle`), built once per run. */
function executorBundle(): string {
  if (bundle === undefined) {
    const out = join(mkdtempSync('/tmp/locus-conf-bundle-'), 'locus.tgz');
    chmodSync(dirname(out), 0o755);
    execFileSync('bash', [join(import.meta.dirname, '../../scripts/bundle.sh'), out], { stdio: ['ignore', 'ignore', 'inherit'] });
    bundle = out;
  }
  return bundle;
}

function twoStageScenario(get: () => ClusterTarget, isolation: Isolation, delivery: 'installed' | 'uri' = 'installed'): void {
  it(`a two-stage job (map over files + reduce) with executors delivered ${delivery === 'uri' ? 'through the fetcher (--executor-uri)' : 'as an installed path'} (${isolation})`, async () => {
    const t = get();
    // One machine: the agents see the framework's output root, so outputs are committed there.
    const extra: Record<string, string> = delivery === 'uri' ? { 'executor-uri': `file://${executorBundle()}`, 'shared-outputs': 'true' } : {};
    const fw = await frameworkOn(t, { 'state-dir': join(t.dir, `state-2stage-${isolation}-${delivery}`), ...extra });
    try {
      const job = await fw.jobs.submit('default', twoStageSpec(writeDataset(t)));
      const done = await waitJob(fw, job.id, 150_000);
      expect(done.state, JSON.stringify(done.counts)).toBe('SUCCEEDED');
      expect(done.counts.total).toBe(5);
      expect(readFileSync(join(done.outputDir, 'reduce', '00000', 'total'), 'utf8').trim()).toBe(String(4 * 150));
    } finally {
      await fw.stop();
    }
  }, 200_000);
}

/**
 * The executor's attempt sandboxes under a cluster's directory: the entries of every
 * `executors/<id>/runs/<container>/containers` directory (the same layout on both agents; the
 * `latest` link is not followed). Keyed by that directory.
 */
function attemptSandboxes(root: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (dir: string): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (e.name === 'containers' && /\/executors\/[^/]+\/runs\/[^/]+$/.test(dir)) out.set(p, readdirSync(p));
      else walk(p);
    }
  };
  walk(root);
  return out;
}

/**
 * An executor keeps the sandboxes of its most recently ended attempts only (executor-kept-sandboxes):
 * through the agent's REMOVE_CONTAINER for nested containers (filesystem/linux), by removing the
 * directory for its own children (posix). The newest attempt's log is still there to read.
 */
function keptSandboxesScenario(get: () => ClusterTarget, isolation: Isolation): void {
  it(`an executor keeps only its latest attempts' sandboxes (executor-kept-sandboxes 2, ${isolation})`, async () => {
    const t = get();
    const fw = await frameworkOn(t, { 'state-dir': join(t.dir, `state-kept-${isolation}`), 'executor-kept-sandboxes': '2' });
    try {
      const job = await fw.jobs.submit('default', validateJobSpec({
        name: `kept-sandboxes-${isolation}`, retries: 0,
        tasks: Array.from({ length: 8 }, (_, i) => ({ command: ['sh', '-c', `echo kept-${i}; sleep 0.2`] })),
        task: { command: ['true'], resources: { cpus: 0.5, mem: '32MiB' } },
      }));
      const done = await waitJob(fw, job.id, 120_000);
      expect(done.state, JSON.stringify(done.counts)).toBe('SUCCEEDED');
      const attempts = (await fw.jobs.tasks(job.id)).flatMap((task) => task.attempts);
      const ran = attempts.filter((a) => a.sandboxDir !== undefined && a.sandboxDir !== '');
      expect(ran.length).toBe(8);
      // This job's executors only (earlier scenarios' executors keep the default): the directory
      // holding each attempt's sandbox. Removal follows each attempt's end: allow it a few seconds.
      const mine = new Set(ran.map((a) => dirname(a.sandboxDir ?? '')));
      const ours = (): Map<string, string[]> => new Map([...attemptSandboxes(t.dir)].filter(([dir]) => mine.has(dir)));
      let seen = new Map<string, string[]>();
      const deadline = Date.now() + 15_000;
      for (;;) {
        seen = ours();
        const over = [...seen.values()].some((names) => names.length > 2);
        if (!over || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const counts = [...seen.entries()].map(([dir, names]) => `${dir}: ${names.length}`).join('; ');
      expect(seen.size, 'no executor sandbox found').toBeGreaterThan(0);
      for (const names of seen.values()) expect(names.length, counts).toBeLessThanOrEqual(2);
      // Every kept sandbox is one of this job's attempts', and the last attempt's log is readable.
      const kept = [...seen.values()].flat();
      expect(kept.length, counts).toBeGreaterThan(0);
      const last = ran.reduce((a, b) => ((a.finishedAt ?? 0) >= (b.finishedAt ?? 0) ? a : b));
      expect(existsSync(join(last.sandboxDir ?? '', 'stdout')), `${last.sandboxDir ?? ''} kept`).toBe(true);
      expect(readFileSync(join(last.sandboxDir ?? '', 'stdout'), 'utf8')).toMatch(/kept-\d/);
    } finally {
      await fw.stop();
    }
  }, 180_000);
}

/** Silent, unless LOCUS_CONFORMANCE_LOG is set (then the framework's own logs, for debugging a scenario). */
function testLogger(): ReturnType<typeof silentLogger> {
  return process.env['LOCUS_CONFORMANCE_LOG'] ? createLogger('locus-conformance', { level: 'debug' }) : silentLogger();
}

/** Every attempt's outcome of a job, for assertion messages. */
async function attemptMessages(fw: RunningFramework, jobId: string): Promise<string> {
  const tasks = await fw.jobs.tasks(jobId);
  return tasks.map((t) => `${t.id}: ${t.attempts.map((a) => `${a.state ?? '?'} on ${a.host} (${a.message ?? ''})`).join('; ')}`).join('\n');
}

type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; json: Record<string, unknown> }>;

function httpApi(base: string): Api {
  return async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${'c'.repeat(64)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
}

async function waitVolume(api: Api, name: string, states: readonly string[], timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await api('GET', `/v1/volumes/${name}`);
    if (states.includes(String(v.json['state']))) return v.json;
    if (Date.now() > deadline) throw new Error(`volume ${name} is ${JSON.stringify(v.json)}, wanted ${states.join('|')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `locus framework` as a child process (for kill -9). */
async function spawnLocus(flags: Record<string, string>): Promise<{ proc: ReturnType<typeof spawn>; httpUrl: string }> {
  const port = String(await freePortFor());
  const proc = spawn(process.execPath, [LOCUS_CLI, 'framework', ...Object.entries({ ...flags, 'http-port': port }).flatMap(([k, v]) => [`--${k}`, v])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: 'warn' } });
  children.add(proc);
  let out = '';
  proc.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  proc.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
  const deadline = Date.now() + 30_000;
  while (!/http api:\s+(\S+)/.test(out)) {
    if (proc.exitCode !== null) throw new Error(`locus framework exited ${proc.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`locus framework did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const httpUrl = /http api:\s+(\S+)/.exec(out)?.[1] ?? '';
  // Listening is not subscribed: a job submitted before the subscription may be refused.
  while ((await fetch(`${httpUrl}/readyz`).then((r) => r.status, () => 0)) !== 200) {
    if (proc.exitCode !== null) throw new Error(`locus framework exited ${proc.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`locus framework never became ready: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, httpUrl };
}

async function freePortFor(): Promise<number> {
  const { freePort } = await import('../harness/ports.js');
  return freePort();
}

function recordFigure(name: string, figure: Record<string, number>): void {
  const dir = join(import.meta.dirname, '../../bench/results');
  mkdirSync(dir, { recursive: true });
  const day = new Date().toISOString().slice(0, 10);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  // An earlier run's figure of the day is kept: a later one is `-2`, `-3`...
  writeFileSync(join(dir, `${resultName(dir, `conformance-${name}-${day}`, ['.json'], false)}.json`), `${JSON.stringify({ ...figure, loadAverage: load, measuredAt: new Date().toISOString() })}\n`);
  process.stderr.write(`conformance figure ${name}: ${JSON.stringify(figure)}\n`);
}

async function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; text: string }> {
  const proc = spawn(process.execPath, [LOCUS_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  proc.stdout?.on('data', (b: Buffer) => { text += b.toString(); });
  proc.stderr?.on('data', (b: Buffer) => { text += b.toString(); });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  clearTimeout(timer);
  return { code, text };
}

export type { Ev };
