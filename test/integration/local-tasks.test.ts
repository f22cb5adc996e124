import { fileURLToPath } from 'node:url';
/**
 * Command tasks on the local cluster over raw HTTP: status updates with
 * sources, messages and uuids, resends until ACKNOWLEDGE, KILL with
 * TASK_KILLING, RECONCILE (explicit and implicit), over-committed offers,
 * the container environment and sandbox layout.
 */
import { readFileSync, existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ack, call, frameworkInfo, isUpdate, nextNew, offersOf, statusOf, subscribe, subscribeCall, testCluster, type Ev, type Offer, type Sub } from './local-helpers.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/mesos-1.12', import.meta.url));

function shape(v: unknown, path = ''): string[] {
  if (Array.isArray(v)) return v.length === 0 ? [`${path}[]`] : [...new Set(v.flatMap((x) => shape(x, `${path}[]`)))];
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => shape(x, path === '' ? k : `${path}.${k}`));
  return [`${path}:${typeof v}`];
}

describe('local cluster: command tasks', () => {
  let env: Awaited<ReturnType<typeof testCluster>>;
  let sub: Sub;
  let url: string;
  const held = new Map<string, Offer>();

  let harvested = 0;
  const harvest = (): void => {
    for (; harvested < sub.events.length; harvested++) {
      const e = sub.events[harvested] as Ev;
      if (e.type === 'OFFERS') for (const o of offersOf(e)) held.set(o.id.value, o);
      if (e.type === 'RESCIND') held.delete((e['rescind'] as { offer_id: { value: string } }).offer_id.value);
    }
  };
  async function offerOn(hostname?: string): Promise<Offer> {
    const pick = (): Offer | undefined => { harvest(); return [...held.values()].find((o) => hostname === undefined || o.hostname === hostname); };
    for (let i = 0; i < 20 && !pick(); i++) {
      await call(url, sub.streamId, { type: 'REVIVE', framework_id: { value: sub.frameworkId } });
      await nextNew(sub, (x) => x.type === 'OFFERS', 1000, 'offers').catch(() => undefined);
    }
    const o = pick();
    if (!o) throw new Error('no offer');
    held.delete(o.id.value);
    return o;
  }

  async function launch(o: Offer, taskId: string, command: Record<string, unknown>, cpus = 0.1, extra: Record<string, unknown> = {}): Promise<void> {
    const r = await call(url, sub.streamId, {
      type: 'ACCEPT', framework_id: { value: sub.frameworkId },
      accept: {
        offer_ids: [o.id],
        operations: [{ type: 'LAUNCH', launch: { task_infos: [{ name: taskId, task_id: { value: taskId }, agent_id: o.agent_id, resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: cpus }, allocation_info: { role: 'locus' } }, { name: 'mem', type: 'SCALAR', scalar: { value: 32 }, allocation_info: { role: 'locus' } }], command, ...extra }] } }],
        filters: { refuse_seconds: 0 },
      },
    });
    expect(r.status).toBe(202);
  }

  async function ackAll(taskId: string, until: string): Promise<Ev> {
    for (;;) {
      const e = await sub.next((x) => isUpdate(taskId)(x) && statusOf(x).uuid !== undefined && !acked.has(statusOf(x).uuid ?? ''), 8000, `${taskId} update`);
      acked.add(statusOf(e).uuid ?? '');
      await ack(url, sub, e);
      if (statusOf(e).state === until) return e;
    }
  }
  const acked = new Set<string>();

  beforeAll(async () => {
    env = await testCluster({ agents: 2 });
    url = env.cluster.masterUrl;
    sub = await subscribe(url, subscribeCall(frameworkInfo('tasks')));
  });
  afterAll(async () => {
    sub.close();
    await env.dispose();
  });

  it('runs a command task: STARTING → RUNNING → FINISHED from the executor, with the Mesos environment and sandbox', async () => {
    const o = await offerOn('agent-1');
    await launch(o, 'echo-1', { shell: true, value: 'echo "fw=$MESOS_FRAMEWORK_ID task=$MESOS_TASK_ID ex=$MESOS_EXECUTOR_ID agent=$MESOS_AGENT_ENDPOINT c=$MESOS_CONTAINER_ID v=$FOO"; pwd; echo oops >&2', environment: { variables: [{ name: 'FOO', value: 'bar' }] } });
    const starting = await sub.next(isUpdate('echo-1', 'TASK_STARTING'), 5000);
    const genuine = (JSON.parse(readFileSync(`${FIXTURES}/events-task-updates.json`, 'utf8')) as unknown[])[0];
    expect(shape(starting).sort()).toEqual(shape(genuine).sort());
    const finished = await ackAll('echo-1', 'TASK_FINISHED');
    const s = statusOf(finished);
    expect(s).toMatchObject({ state: 'TASK_FINISHED', source: 'SOURCE_EXECUTOR', message: 'Command exited with status 0', agent_id: o.agent_id, executor_id: { value: 'echo-1' } });
    const states = sub.events.filter(isUpdate('echo-1')).map((e) => statusOf(e).state);
    expect(states.filter((x, i) => states.indexOf(x) === i)).toEqual(['TASK_STARTING', 'TASK_RUNNING', 'TASK_FINISHED']);
    const containerId = (s['container_status'] as { container_id: { value: string } }).container_id.value;
    const agent = env.cluster.agents.find((a) => a.hostname === 'agent-1');
    const sandbox = `${env.workDir}/agents/agent-1/slaves/${agent?.id ?? ''}/frameworks/${sub.frameworkId}/executors/echo-1/runs/${containerId}`;
    expect(existsSync(sandbox)).toBe(true);
    const stdout = readFileSync(`${sandbox}/stdout`, 'utf8');
    // As on a genuine 1.12 agent: no MESOS_TASK_ID or MESOS_CONTAINER_ID for a command task.
    expect(stdout).toContain(`fw=${sub.frameworkId} task= ex=echo-1 agent=127.0.0.1:${new URL(agent?.url ?? '').port} c= v=bar`);
    expect(containerId).toMatch(/^[0-9a-f-]{36}$/);
    expect(readFileSync(`${sandbox}/stderr`, 'utf8')).toContain('oops');
    // The agent serves the sandbox through /files/read.
    const read = await fetch(`${agent?.url ?? ''}/files/read?path=${encodeURIComponent(`${sandbox}/stdout`)}&offset=0&length=4`);
    expect(await read.json()).toEqual({ data: stdout.slice(0, 4), offset: 0 });
    const size = await fetch(`${agent?.url ?? ''}/files/read?path=${encodeURIComponent(`${sandbox}/stdout`)}&offset=-1`);
    expect(await size.json()).toEqual({ data: '', offset: Buffer.byteLength(stdout) });
    expect((await fetch(`${agent?.url ?? ''}/files/read?path=/etc/passwd&offset=0`)).status).toBe(404);
    const browse = (await (await fetch(`${agent?.url ?? ''}/files/browse?path=${encodeURIComponent(sandbox)}`)).json()) as { path: string }[];
    expect(browse.map((b) => b.path.split('/').pop())).toEqual(expect.arrayContaining(['stdout', 'stderr']));
  });

  it('reports a failing command as TASK_FAILED with the exit status, and argv commands without a shell', async () => {
    await launch(await offerOn(), 'fail-1', { shell: true, value: 'exit 3' });
    const failed = await ackAll('fail-1', 'TASK_FAILED');
    expect(statusOf(failed).message).toBe('Command exited with status 3');
    await launch(await offerOn(), 'argv-1', { shell: false, value: 'sh', arguments: ['sh', '-c', 'exit 0'] });
    expect(statusOf(await ackAll('argv-1', 'TASK_FINISHED')).message).toBe('Command exited with status 0');
  });

  it('resends an unacknowledged update until it is acknowledged, and only then the next one', async () => {
    await launch(await offerOn(), 'resend-1', { shell: true, value: 'sleep 30' });
    const first = await sub.next(isUpdate('resend-1', 'TASK_STARTING'), 5000);
    const uuid = statusOf(first).uuid;
    // Not acknowledged: the same update (same uuid) comes again after the retry interval.
    const again = await nextNew(sub, isUpdate('resend-1'), 3000, 'resent update');
    expect(statusOf(again).uuid).toBe(uuid);
    expect(statusOf(again).state).toBe('TASK_STARTING');
    await ack(url, sub, first);
    const running = await nextNew(sub, isUpdate('resend-1', 'TASK_RUNNING'), 3000, 'RUNNING after ack');
    await ack(url, sub, running);
    acked.add(uuid ?? '');
    acked.add(statusOf(running).uuid ?? '');
  });

  it('answers RECONCILE explicitly and implicitly from the master, without uuid', async () => {
    const agentId = env.cluster.agents[0]?.id ?? '';
    await call(url, sub.streamId, { type: 'RECONCILE', framework_id: { value: sub.frameworkId }, reconcile: { tasks: [{ task_id: { value: 'resend-1' } }, { task_id: { value: 'never-launched' }, agent_id: { value: agentId } }, { task_id: { value: 'nowhere' } }] } });
    const known = await nextNew(sub, isUpdate('resend-1', undefined, (s) => s.source === 'SOURCE_MASTER'), 3000);
    expect(statusOf(known)).toMatchObject({ state: 'TASK_RUNNING', message: 'Reconciliation: Latest task state', reason: 'REASON_RECONCILIATION', source: 'SOURCE_MASTER' });
    expect(statusOf(known).uuid).toBeUndefined();
    expect(statusOf(known)['container_status']).toBeDefined();
    const gone = await sub.next(isUpdate('never-launched'), 3000);
    expect(statusOf(gone)).toMatchObject({ state: 'TASK_GONE', message: 'Reconciliation: Task is unknown to the agent' });
    const unknown = await sub.next(isUpdate('nowhere'), 3000);
    expect(statusOf(unknown)).toMatchObject({ state: 'TASK_UNKNOWN', message: 'Reconciliation: Task is unknown' });
    const before = sub.events.length;
    await call(url, sub.streamId, { type: 'RECONCILE', framework_id: { value: sub.frameworkId }, reconcile: { tasks: [] } });
    const implicit = await sub.next((e) => sub.events.indexOf(e) >= before && isUpdate('resend-1', 'TASK_RUNNING', (s) => s.reason === 'REASON_RECONCILIATION')(e), 3000);
    expect(statusOf(implicit).uuid).toBeUndefined();
  });

  it('kills a task: TASK_KILLING then TASK_KILLED "Command terminated with signal Terminated"', async () => {
    const r = await call(url, sub.streamId, { type: 'KILL', framework_id: { value: sub.frameworkId }, kill: { task_id: { value: 'resend-1' } } });
    expect(r.status).toBe(202);
    await ackAll('resend-1', 'TASK_KILLING');
    const killed = await ackAll('resend-1', 'TASK_KILLED');
    expect(statusOf(killed)).toMatchObject({ source: 'SOURCE_EXECUTOR', message: 'Command terminated with signal Terminated' });
    // After the terminal ack the task is complete: /state lists it under completed_tasks.
    const state = (await (await fetch(`${url}/state`)).json()) as { frameworks: { id: string; completed_tasks: { id: string; state: string }[]; tasks: unknown[] }[] };
    const fw = state.frameworks.find((f) => f.id === sub.frameworkId);
    expect(fw?.completed_tasks.find((t) => t.id === 'resend-1')?.state).toBe('TASK_KILLED');
  });

  it('turns over-committed and invalid launches into TASK_ERROR from the master', async () => {
    const o = await offerOn();
    await launch(o, 'too-big', { value: 'true' }, 64);
    const e = await sub.next(isUpdate('too-big'), 3000);
    expect(statusOf(e)).toMatchObject({ state: 'TASK_ERROR', source: 'SOURCE_MASTER', reason: 'REASON_TASK_INVALID' });
    expect(statusOf(e).message).toMatch(/^Total resources cpus\(allocated: locus\):64; mem\(allocated: locus\):32 required by task and its executor is more than available /);
    const o2 = await offerOn();
    await launch(o2, 'dup-a', { value: 'sleep 5' });
    const o3 = await offerOn(o2.hostname);
    await launch(o3, 'dup-a', { value: 'true' });
    const dup = await sub.next(isUpdate('dup-a', 'TASK_ERROR'), 3000);
    expect(statusOf(dup).message).toBe('Task has duplicate ID: dup-a');
    await call(url, sub.streamId, { type: 'KILL', framework_id: { value: sub.frameworkId }, kill: { task_id: { value: 'dup-a' } } });
    await ackAll('dup-a', 'TASK_KILLED');
  });
});
