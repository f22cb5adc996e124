/**
 * Custom executors on the local cluster over raw HTTP: a small executor
 * written here (node, raw HTTP and its own RecordIO reader) speaks the v1
 * executor API against the agent — SUBSCRIBE, LAUNCH, a second LAUNCH to the
 * same executor, LAUNCH_GROUP, KILL, MESSAGE both ways, SHUTDOWN,
 * ACKNOWLEDGED — and the agent's own updates when an executor dies or never
 * subscribes, plus the endpoint's error answers.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ack, call, eventually, frameworkInfo, isUpdate, nextNew, offersOf, scalarOf, statusOf, subscribe, subscribeCall, testCluster, type Ev, type Offer, type Sub } from './local-helpers.js';

/** The executor: everything by hand, so it checks the wire, not a shared client. */
const EXECUTOR = String.raw`
const http = require('http');
const fs = require('fs');
const crypto = require('crypto');
const [host, port] = process.env.MESOS_AGENT_ENDPOINT.split(':');
const fid = process.env.MESOS_FRAMEWORK_ID;
const eid = process.env.MESOS_EXECUTOR_ID;
const mode = process.env.EXEC_MODE || 'normal';
fs.writeFileSync('env.json', JSON.stringify({ env: process.env, cwd: process.cwd(), pid: process.pid }));
const log = (e) => fs.appendFileSync('events.log', JSON.stringify(e) + '\n');
const live = new Set();
const ids = { executor_id: { value: eid }, framework_id: { value: fid } };
function post(body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: '/api/v1/executor', method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (c) => { b += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
async function update(taskId, state, extra) {
  const uuid = crypto.randomBytes(16).toString('base64');
  const r = await post({ type: 'UPDATE', ...ids, update: { status: { task_id: { value: taskId }, state, source: 'SOURCE_EXECUTOR', uuid, ...extra } } });
  log({ sent: state, task: taskId, uuid, status: r.status });
}
async function start(task) {
  live.add(task.task_id.value);
  await update(task.task_id.value, 'TASK_RUNNING');
  if (mode === 'crash') { setTimeout(() => process.exit(1), 100); return; }
  if (task.name === 'wait') return;
  setTimeout(async () => {
    live.delete(task.task_id.value);
    await update(task.task_id.value, 'TASK_FINISHED', { message: 'done by custom executor' });
  }, 100);
}
async function handle(ev) {
  switch (ev.type) {
    case 'LAUNCH': return start(ev.launch.task);
    case 'LAUNCH_GROUP': for (const t of ev.launch_group.task_group.tasks) await start(t); return;
    case 'KILL':
      live.delete(ev.kill.task_id.value);
      return update(ev.kill.task_id.value, 'TASK_KILLED', { message: 'killed by custom executor' });
    case 'MESSAGE': {
      const text = Buffer.from(ev.message.data, 'base64').toString();
      return post({ type: 'MESSAGE', ...ids, message: { data: Buffer.from('echo:' + text).toString('base64') } });
    }
    case 'SHUTDOWN':
      for (const id of [...live]) { live.delete(id); await update(id, 'TASK_KILLED', { message: 'executor shutting down' }); }
      setTimeout(() => process.exit(0), 100);
      return;
  }
}
let buf = Buffer.alloc(0);
const req = http.request({ host, port, path: '/api/v1/executor', method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' } }, (res) => {
  log({ subscribeStatus: res.statusCode, contentType: res.headers['content-type'] });
  res.on('data', (c) => {
    buf = Buffer.concat([buf, c]);
    for (;;) {
      const nl = buf.indexOf(10);
      if (nl < 0) break;
      const len = Number(buf.subarray(0, nl).toString());
      if (buf.length < nl + 1 + len) break;
      const ev = JSON.parse(buf.subarray(nl + 1, nl + 1 + len).toString());
      buf = buf.subarray(nl + 1 + len);
      log(ev);
      void handle(ev);
    }
  });
  res.on('end', () => { log({ ended: true }); setTimeout(() => process.exit(0), 50); });
});
req.end(JSON.stringify({ type: 'SUBSCRIBE', ...ids, subscribe: { unacknowledged_tasks: [], unacknowledged_updates: [] } }));
`;

type Logged = Record<string, unknown> & { type?: string };

describe('local cluster: custom executors over the executor HTTP API', () => {
  let env: Awaited<ReturnType<typeof testCluster>>;
  let sub: Sub;
  let url: string;
  let script: string;
  const held = new Map<string, Offer>();
  let harvested = 0;
  const acked = new Set<string>();

  const harvest = (): void => {
    for (; harvested < sub.events.length; harvested++) {
      const e = sub.events[harvested] as Ev;
      if (e.type === 'OFFERS') for (const o of offersOf(e)) held.set(o.id.value, o);
      if (e.type === 'RESCIND') held.delete((e['rescind'] as { offer_id: { value: string } }).offer_id.value);
    }
  };
  async function offer(fresh = false): Promise<Offer & { executor_ids?: { value: string }[] }> {
    harvest();
    if (fresh && held.size > 0) {
      // Offers made before now are given back, so the next one shows the agent as it is.
      await call(url, sub.streamId, { type: 'DECLINE', framework_id: { value: sub.frameworkId }, decline: { offer_ids: [...held.values()].map((o) => o.id), filters: { refuse_seconds: 0 } } });
      held.clear();
    }
    // Leftovers of finished tasks come as small offers of their own: take one with room for an executor.
    const pick = (): Offer | undefined => { harvest(); return [...held.values()].find((o) => scalarOf(o.resources, 'mem') >= 512); };
    for (let i = 0; i < 20 && !pick(); i++) {
      await call(url, sub.streamId, { type: 'REVIVE', framework_id: { value: sub.frameworkId } });
      await nextNew(sub, (x) => x.type === 'OFFERS', 1000, 'offers').catch(() => undefined);
    }
    const o = pick();
    if (!o) throw new Error('no offer');
    held.delete(o.id.value);
    return o;
  }
  const res = (cpus: number, mem: number): unknown[] => [
    { name: 'cpus', type: 'SCALAR', scalar: { value: cpus } },
    { name: 'mem', type: 'SCALAR', scalar: { value: mem } },
  ];
  const executor = (id: string, command: Record<string, unknown> = { value: `exec node ${script}` }, mode = 'normal'): Record<string, unknown> => ({
    // node needs room: the executor's memory limit is its own mem plus its first tasks'.
    executor_id: { value: id }, type: 'CUSTOM', name: id, resources: res(0.1, 256),
    command: { ...command, environment: { variables: [{ name: 'EXEC_MODE', value: mode }] } },
  });
  async function accept(o: Offer, operations: unknown[]): Promise<void> {
    const r = await call(url, sub.streamId, { type: 'ACCEPT', framework_id: { value: sub.frameworkId }, accept: { offer_ids: [o.id], operations, filters: { refuse_seconds: 0 } } });
    expect(r.status).toBe(202);
  }
  const task = (o: Offer, id: string, ex?: Record<string, unknown>, name = id): Record<string, unknown> => ({
    name, task_id: { value: id }, agent_id: o.agent_id, resources: res(0.1, 16), ...(ex ? { executor: ex } : { command: { value: 'true' } }),
  });
  /** Acknowledge every update of a task up to (and including) `until`. */
  async function ackUntil(taskId: string, until: string): Promise<Ev> {
    for (;;) {
      const e = await sub.next((x) => isUpdate(taskId)(x) && statusOf(x).uuid !== undefined && !acked.has(statusOf(x).uuid ?? ''), 8000, `${taskId} update`);
      acked.add(statusOf(e).uuid ?? '');
      await ack(url, sub, e);
      if (statusOf(e).state === until) return e;
    }
  }
  const agent = (): { id: string; url: string } => env.cluster.agents[0] ?? { id: '', url: '' };
  const sandboxOf = (executorId: string, e: Ev): string => {
    const cid = (statusOf(e)['container_status'] as { container_id: { value: string } }).container_id.value;
    return `${env.workDir}/agents/agent-1/slaves/${agent().id}/frameworks/${sub.frameworkId}/executors/${executorId}/runs/${cid}`;
  };
  const logOf = (sandbox: string): Logged[] => readFileSync(join(sandbox, 'events.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Logged);

  beforeAll(async () => {
    env = await testCluster({ agents: 1, executorRegistrationTimeoutSeconds: 2, executorShutdownGraceSeconds: 2 });
    url = env.cluster.masterUrl;
    script = join(env.workDir, 'executor.cjs');
    writeFileSync(script, EXECUTOR, { mode: 0o644 });
    sub = await subscribe(url, subscribeCall(frameworkInfo('executors')));
  });
  afterAll(async () => {
    sub.close();
    await env.dispose();
  });

  let ex1Sandbox = '';
  it('runs the executor once, as the agent sets it up, and delivers a LAUNCH it answers RUNNING → FINISHED', async () => {
    const o = await offer();
    await accept(o, [{ type: 'LAUNCH', launch: { task_infos: [task(o, 't1', executor('ex-1'))] } }]);
    const running = await ackUntil('t1', 'TASK_RUNNING');
    expect(statusOf(running)).toMatchObject({ state: 'TASK_RUNNING', source: 'SOURCE_EXECUTOR', agent_id: o.agent_id, executor_id: { value: 'ex-1' } });
    const finished = await ackUntil('t1', 'TASK_FINISHED');
    expect(statusOf(finished)).toMatchObject({ source: 'SOURCE_EXECUTOR', message: 'done by custom executor' });
    expect(sub.events.filter(isUpdate('t1')).map((e) => statusOf(e).state).filter((s, i, a) => a.indexOf(s) === i)).toEqual(['TASK_RUNNING', 'TASK_FINISHED']);

    ex1Sandbox = sandboxOf('ex-1', running);
    const recorded = JSON.parse(readFileSync(join(ex1Sandbox, 'env.json'), 'utf8')) as { env: Record<string, string>; cwd: string; pid: number };
    const port = new URL(agent().url).port;
    expect(recorded.env).toMatchObject({
      MESOS_EXECUTOR_ID: 'ex-1', MESOS_FRAMEWORK_ID: sub.frameworkId, MESOS_AGENT_ENDPOINT: `127.0.0.1:${port}`,
      MESOS_SANDBOX: ex1Sandbox, MESOS_DIRECTORY: ex1Sandbox, MESOS_CHECKPOINT: '0', MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD: '2secs', EXEC_MODE: 'normal',
    });
    expect(recorded.env['MESOS_TASK_ID']).toBeUndefined();
    expect(recorded.cwd).toBe(ex1Sandbox);
    expect((statusOf(running)['container_status'] as { executor_pid?: number }).executor_pid).toBe(recorded.pid);

    const log = logOf(ex1Sandbox);
    expect(log[0]).toEqual({ subscribeStatus: 200, contentType: 'application/json' });
    const subscribed = log.find((e) => e.type === 'SUBSCRIBED') as { subscribed: Record<string, { value?: string; hostname?: string; id?: { value: string }; executor_id?: { value: string }; framework_id?: { value: string } }> };
    expect(subscribed.subscribed['executor_info']).toMatchObject({ executor_id: { value: 'ex-1' }, framework_id: { value: sub.frameworkId } });
    expect(subscribed.subscribed['framework_info']).toMatchObject({ id: { value: sub.frameworkId }, name: 'executors' });
    expect(subscribed.subscribed['agent_info']).toMatchObject({ hostname: 'agent-1', id: { value: agent().id } });
    expect(subscribed.subscribed['container_id']?.value).toBe((statusOf(running)['container_status'] as { container_id: { value: string } }).container_id.value);
    const launch = log.find((e) => e.type === 'LAUNCH') as { launch: { task: { task_id: { value: string }; executor: { executor_id: { value: string } } } } };
    expect(launch.launch.task).toMatchObject({ task_id: { value: 't1' }, executor: { executor_id: { value: 'ex-1' } } });
    // Every update was accepted (202) and ACKNOWLEDGED with its uuid.
    const sent = log.filter((e) => e['sent'] !== undefined);
    expect(sent.map((e) => e['status'])).toEqual([202, 202]);
    await eventually(() => logOf(ex1Sandbox).filter((e) => e.type === 'ACKNOWLEDGED').length === 2, 3000, 'ACKNOWLEDGED events');
    const acks = logOf(ex1Sandbox).filter((e) => e.type === 'ACKNOWLEDGED') as unknown as { acknowledged: { task_id: { value: string }; uuid: string } }[];
    expect(acks.map((a) => a.acknowledged.uuid).sort()).toEqual(sent.map((e) => e['uuid']).sort());
    expect(statusOf(running).uuid).toBe(sent[0]?.['uuid']);
  });

  it('sends a second task for the same executor id to the running executor as another LAUNCH', async () => {
    const o = await offer();
    expect(o.executor_ids).toEqual([{ value: 'ex-1' }]);
    await accept(o, [{ type: 'LAUNCH', launch: { task_infos: [task(o, 't2', executor('ex-1'))] } }]);
    const running = await ackUntil('t2', 'TASK_RUNNING');
    await ackUntil('t2', 'TASK_FINISHED');
    expect(sandboxOf('ex-1', running)).toBe(ex1Sandbox);
    const log = logOf(ex1Sandbox);
    expect(log.filter((e) => e.type === 'SUBSCRIBED')).toHaveLength(1);
    expect(log.filter((e) => e.type === 'LAUNCH').map((e) => (e as unknown as { launch: { task: { task_id: { value: string } } } }).launch.task.task_id.value)).toEqual(['t1', 't2']);
  });

  it('forwards KILL and MESSAGE both ways, then SHUTDOWN ends the executor and its tasks', async () => {
    const o = await offer();
    await accept(o, [{ type: 'LAUNCH', launch: { task_infos: [task(o, 't3', executor('ex-1'), 'wait'), task(o, 't4', executor('ex-1'), 'wait')] } }]);
    await ackUntil('t3', 'TASK_RUNNING');
    await ackUntil('t4', 'TASK_RUNNING');
    expect((await call(url, sub.streamId, { type: 'KILL', framework_id: { value: sub.frameworkId }, kill: { task_id: { value: 't3' }, agent_id: o.agent_id } })).status).toBe(202);
    const killed = await ackUntil('t3', 'TASK_KILLED');
    expect(statusOf(killed)).toMatchObject({ source: 'SOURCE_EXECUTOR', message: 'killed by custom executor' });

    const data = Buffer.from('ping').toString('base64');
    expect((await call(url, sub.streamId, { type: 'MESSAGE', framework_id: { value: sub.frameworkId }, message: { agent_id: o.agent_id, executor_id: { value: 'ex-1' }, data } })).status).toBe(202);
    const echoed = await sub.next((e) => e.type === 'MESSAGE', 5000, 'MESSAGE from the executor');
    expect(echoed['message']).toEqual({ agent_id: o.agent_id, executor_id: { value: 'ex-1' }, data: Buffer.from('echo:ping').toString('base64') });

    const pid = (JSON.parse(readFileSync(join(ex1Sandbox, 'env.json'), 'utf8')) as { pid: number }).pid;
    expect((await call(url, sub.streamId, { type: 'SHUTDOWN', framework_id: { value: sub.frameworkId }, shutdown: { executor_id: { value: 'ex-1' }, agent_id: o.agent_id } })).status).toBe(202);
    const down = await ackUntil('t4', 'TASK_KILLED');
    expect(statusOf(down)).toMatchObject({ source: 'SOURCE_EXECUTOR', message: 'executor shutting down' });
    expect(logOf(ex1Sandbox).some((e) => e.type === 'SHUTDOWN')).toBe(true);
    await eventually(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, 5000, 'executor exit');
    // Once the agent has reaped the container it no longer lists it, and offers stop naming the executor.
    await eventually(async () => {
      const r = await fetch(`${agent().url}/api/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ type: 'GET_CONTAINERS' }) });
      const body = (await r.json()) as { get_containers: { containers: { executor_id: { value: string } }[] } };
      return !body.get_containers.containers.some((c) => c.executor_id.value === 'ex-1');
    }, 5000, 'executor container reaped');
    const next = await offer(true);
    expect(next.executor_ids).toBeUndefined();
    held.set(next.id.value, next);
  });

  it('delivers a LAUNCH_GROUP to a custom executor as one LAUNCH_GROUP event', async () => {
    const o = await offer();
    await accept(o, [{ type: 'LAUNCH_GROUP', launch_group: { executor: executor('ex-2'), task_group: { tasks: [task(o, 'g1'), task(o, 'g2')] } } }]);
    const running = await ackUntil('g1', 'TASK_RUNNING');
    await ackUntil('g1', 'TASK_FINISHED');
    await ackUntil('g2', 'TASK_FINISHED');
    const log = logOf(sandboxOf('ex-2', running));
    const groups = log.filter((e) => e.type === 'LAUNCH_GROUP') as unknown as { launch_group: { task_group: { tasks: { task_id: { value: string } }[] } } }[];
    expect(groups).toHaveLength(1);
    expect(groups[0]?.launch_group.task_group.tasks.map((t) => t.task_id.value)).toEqual(['g1', 'g2']);
    expect(log.some((e) => e.type === 'LAUNCH')).toBe(false);
  });

  it('fails the live tasks of an executor that exits, and of one that never subscribes', async () => {
    const o = await offer();
    await accept(o, [{ type: 'LAUNCH', launch: { task_infos: [task(o, 'c1', executor('ex-crash', undefined, 'crash'), 'wait')] } }]);
    await ackUntil('c1', 'TASK_RUNNING');
    const failed = await ackUntil('c1', 'TASK_FAILED');
    expect(statusOf(failed)).toMatchObject({ source: 'SOURCE_AGENT', reason: 'REASON_EXECUTOR_TERMINATED', message: 'Executor terminated', executor_id: { value: 'ex-crash' } });

    const o2 = await offer();
    await accept(o2, [{ type: 'LAUNCH', launch: { task_infos: [task(o2, 's1', executor('ex-silent', { value: 'sleep 30' }))] } }]);
    const timedOut = await ackUntil('s1', 'TASK_FAILED');
    expect(statusOf(timedOut)).toMatchObject({ source: 'SOURCE_AGENT', reason: 'REASON_EXECUTOR_REGISTRATION_TIMEOUT', message: 'Executor did not register within 2secs' });
  });

  it('kills a task that was not delivered yet without the executor, and rejects a CUSTOM executor without a command', async () => {
    const o = await offer();
    await accept(o, [{ type: 'LAUNCH', launch: { task_infos: [task(o, 'q1', executor('ex-slow', { value: 'sleep 30' }))] } }]);
    await call(url, sub.streamId, { type: 'KILL', framework_id: { value: sub.frameworkId }, kill: { task_id: { value: 'q1' } } });
    const killed = await ackUntil('q1', 'TASK_KILLED');
    expect(statusOf(killed)).toMatchObject({ source: 'SOURCE_AGENT', reason: 'REASON_TASK_KILLED_DURING_LAUNCH', message: 'Killed before delivery to the executor' });

    const o2 = await offer();
    const { command: _c, ...noCommand } = executor('ex-bad');
    void _c;
    await accept(o2, [{ type: 'LAUNCH', launch: { task_infos: [task(o2, 'bad-1', noCommand)] } }]);
    const err = await sub.next(isUpdate('bad-1'), 3000);
    expect(statusOf(err)).toMatchObject({ state: 'TASK_ERROR', source: 'SOURCE_MASTER', reason: 'REASON_TASK_INVALID', message: "'ExecutorInfo.command' must be set for 'CUSTOM' executor" });
  });

  it('answers bad executor calls as the agent does', async () => {
    // A live executor keeps the framework known to the agent.
    const o = await offer();
    await accept(o, [{ type: 'LAUNCH', launch: { task_infos: [task(o, 'w1', executor('ex-live'), 'wait')] } }]);
    await ackUntil('w1', 'TASK_RUNNING');
    const endpoint = `${agent().url}/api/v1/executor`;
    const post = async (body: unknown, headers: Record<string, string> = { 'Content-Type': 'application/json' }): Promise<{ status: number; body: string }> => {
      // A Buffer body: fetch adds no Content-Type of its own.
      const r = await fetch(endpoint, { method: 'POST', headers, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) });
      return { status: r.status, body: await r.text() };
    };
    const ids = { executor_id: { value: 'nope' }, framework_id: { value: sub.frameworkId } };
    expect(await post({ type: 'SUBSCRIBE', ...ids, subscribe: {} }, {})).toEqual({ status: 400, body: "Expecting 'Content-Type' to be present" });
    expect((await post('{', { 'Content-Type': 'application/json' })).body).toMatch(/^Failed to parse body into JSON: /);
    expect(await post({ type: 'SUBSCRIBE', ...ids, subscribe: {} })).toEqual({ status: 400, body: 'Executor cannot be found' });
    expect(await post({ type: 'SUBSCRIBE', executor_id: { value: 'x' }, framework_id: { value: 'unknown-fw' }, subscribe: {} })).toEqual({ status: 400, body: 'Framework cannot be found' });
    expect(await post({ type: 'UPDATE', ...ids })).toEqual({ status: 400, body: "Failed to validate Executor::Call: Expecting 'update' to be present" });
    const status = { task_id: { value: 't' }, state: 'TASK_RUNNING', source: 'SOURCE_AGENT', uuid: Buffer.alloc(16, 1).toString('base64') };
    expect(await post({ type: 'UPDATE', ...ids, update: { status } })).toEqual({
      status: 400, body: `Failed to validate Executor::Call: Received Call from executor nope of framework ${sub.frameworkId} with invalid source, expecting 'SOURCE_EXECUTOR'`,
    });
    expect(await post({ type: 'UPDATE', ...ids, update: { status: { ...status, source: 'SOURCE_EXECUTOR', uuid: undefined } } })).toEqual({ status: 400, body: "Failed to validate Executor::Call: Expecting 'uuid' to be present" });
    expect((await post({ type: 'HEARTBEAT', ...ids })).status).toBe(202);
    expect((await post({ type: 'BOGUS', ...ids })).body).toBe("Failed to convert JSON into Call protobuf: Failed to find enum for 'BOGUS'");
    expect(await post({ type: 'UPDATE', executor_id: { value: 'ex-live' }, framework_id: { value: sub.frameworkId }, update: { status: { ...status, executor_id: { value: 'other' }, source: 'SOURCE_EXECUTOR' } } })).toEqual({
      status: 400, body: 'Failed to validate Executor::Call: ExecutorID in Call: ex-live does not match ExecutorID in TaskStatus: other',
    });
    await call(url, sub.streamId, { type: 'KILL', framework_id: { value: sub.frameworkId }, kill: { task_id: { value: 'w1' } } });
    await ackUntil('w1', 'TASK_KILLED');
  });
});
