/**
 * `locus agent` as its own process, registered with a master that has no
 * agents of its own, on loopback: registration and the topology file,
 * offers carrying the agent's address and attributes, a command task's
 * updates relayed from the agent process, KILL, agent loss when the process
 * dies (heartbeats stop), and re-registration with the same id after a
 * restart, where the task whose container died is reported failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCUS_CLI } from '../harness/build.js';
import { startLocalCluster, type LocalCluster } from '../../src/local/index.js';
import { ack, call, eventually, frameworkInfo, isUpdate, offersOf, statusOf, subscribe, subscribeCall, testCluster, type Offer, type Sub } from './local-helpers.js';

interface AgentProc {
  readonly proc: ChildProcess;
  readonly id: string;
  readonly url: string;
  output(): string;
}

function spawnAgent(masterUrl: string, workDir: string, hostname: string, extra: readonly string[] = []): ChildProcess {
  return spawn(process.execPath, [
    LOCUS_CLI, 'agent', '--master', masterUrl, '--hostname', hostname, '--attributes', 'rack:r9;zone:z1',
    '--resources', 'cpus:2;mem:1024;disk:2048;ports:[31000-31010]', '--work-dir', workDir, '--port', '0', '--ip', '127.0.0.1', '--isolation', 'process', ...extra,
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: 'warn' } });
}

async function startAgent(masterUrl: string, workDir: string, hostname: string, extra: readonly string[] = []): Promise<AgentProc> {
  const proc = spawnAgent(masterUrl, workDir, hostname, extra);
  let out = '';
  proc.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  proc.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /^(\S+-S\d+) (http:\/\/\S+)$/m.exec(out);
    if (m) return { proc, id: m[1] ?? '', url: m[2] ?? '', output: () => out };
    if (proc.exitCode !== null) throw new Error(`locus agent exited ${proc.exitCode}: ${out}`);
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`locus agent did not register: ${out}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exited = (p: ChildProcess): Promise<void> => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r())));

describe('locus agent: an agent as its own process', () => {
  let bed: Awaited<ReturnType<typeof testCluster>>;
  let agentDir: string;
  let agent: AgentProc | undefined;
  let sub: Sub | undefined;

  beforeAll(async () => {
    bed = await testCluster({ agents: 0, agentPingIntervalSeconds: 1, agentPingTimeoutSeconds: 3 });
    agentDir = await mkdtemp(join(tmpdir(), 'locus-agent-'));
    await chmod(agentDir, 0o755);
  }, 60_000);

  afterAll(async () => {
    sub?.close();
    if (agent) { agent.proc.kill('SIGKILL'); await exited(agent.proc); }
    await bed.dispose();
    await rm(agentDir, { recursive: true, force: true });
  });

  const launch = async (o: Offer, taskId: string, command: Record<string, unknown>): Promise<void> => {
    if (!sub) throw new Error('not subscribed');
    const r = await call(bed.cluster.masterUrl, sub.streamId, {
      type: 'ACCEPT', framework_id: { value: sub.frameworkId },
      accept: {
        offer_ids: [o.id],
        operations: [{ type: 'LAUNCH', launch: { task_infos: [{ name: taskId, task_id: { value: taskId }, agent_id: o.agent_id, resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 }, allocation_info: { role: 'locus' } }, { name: 'mem', type: 'SCALAR', scalar: { value: 32 }, allocation_info: { role: 'locus' } }], command }] } }],
        filters: { refuse_seconds: 0.1 },
      },
    });
    expect(r.status).toBe(202);
  };

  // Acknowledge a task's updates as they come (only the unacknowledged head is sent) until it reaches `final`.
  const follow = async (taskId: string, final: string, timeoutMs = 20_000): Promise<string[]> => {
    if (!sub) throw new Error('not subscribed');
    const states: string[] = [];
    const acked = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const e = await sub.next(isUpdate(taskId, undefined, (s) => s.uuid === undefined ? !states.includes(s.state) : !acked.has(s.uuid)), timeoutMs, `${taskId} ${final}`);
      const s = statusOf(e);
      states.push(s.state);
      if (s.uuid !== undefined) { acked.add(s.uuid); await ack(bed.cluster.masterUrl, sub, e); }
      if (s.state === final) return states;
    }
    throw new Error(`${taskId} did not reach ${final}: ${states.join(',')}`);
  };

  // An offer not used yet and not rescinded (the framework holds offers, so a new one comes only after a use).
  const used = new Set<string>();
  const freshOffer = async (what: string): Promise<Offer> => {
    const s0 = sub;
    if (!s0) throw new Error('not subscribed');
    const rescinded = (id: string): boolean => s0.events.some((e) => e.type === 'RESCIND' && (e as { rescind?: { offer_id?: { value?: string } } }).rescind?.offer_id?.value === id);
    const usable = (o: Offer): boolean => !used.has(o.id.value) && !rescinded(o.id.value);
    const e = await s0.next((x) => x.type === 'OFFERS' && offersOf(x).some(usable), 10_000, what);
    const o = offersOf(e).find(usable);
    if (!o) throw new Error(`no usable offer for ${what}`);
    used.add(o.id.value);
    return o;
  };

  it('registers, is offered with its own address and attributes, runs and kills tasks, is lost when it dies and comes back with its id', async () => {
    agent = await startAgent(bed.cluster.masterUrl, agentDir, 'proc-1');
    expect(bed.cluster.agents.map((a) => [a.id, a.hostname, a.rack, a.url])).toEqual([[agent.id, 'proc-1', 'r9', agent.url]]);
    // The topology file (what local:// datasets and `locus data put` read) lists it with its own data dir.
    const topology = JSON.parse(await readFile(join(bed.workDir, 'topology.json'), 'utf8')) as { agents: { id: string; dataDir: string }[] };
    expect(topology.agents).toEqual([expect.objectContaining({ id: agent.id, dataDir: join(agentDir, 'agents', 'proc-1', 'data') })]);

    sub = await subscribe(bed.cluster.masterUrl, subscribeCall(frameworkInfo('agent-process-test')));
    const offer = await freshOffer('first offer');
    expect(offer.hostname).toBe('proc-1');
    expect(offer.url?.address).toEqual({ hostname: '127.0.0.1', ip: '127.0.0.1', port: Number(new URL(agent.url).port) });
    expect(Object.fromEntries((offer.attributes ?? []).map((a) => [a.name, a.text?.value]))).toEqual({ rack: 'r9', zone: 'z1' });

    // A command task: its updates come from the agent process through the master.
    await launch(offer, 't-ok', { value: 'test -n "$MESOS_SANDBOX" && echo hello > "$MESOS_SANDBOX/out"' });
    expect(await follow('t-ok', 'TASK_FINISHED')).toEqual(['TASK_STARTING', 'TASK_RUNNING', 'TASK_FINISHED']);
    expect(sub.events.filter(isUpdate('t-ok')).every((e) => statusOf(e).agent_id?.value === agent?.id)).toBe(true);

    // KILL goes to the agent process.
    const offer2 = await freshOffer('second offer');
    await launch(offer2, 't-kill', { value: 'sleep 60' });
    await follow('t-kill', 'TASK_RUNNING');
    expect((await call(bed.cluster.masterUrl, sub.streamId, { type: 'KILL', framework_id: { value: sub.frameworkId }, kill: { task_id: { value: 't-kill' }, agent_id: offer2.agent_id } })).status).toBe(202);
    expect((await follow('t-kill', 'TASK_KILLED')).at(-1)).toBe('TASK_KILLED');

    // A task left running when the process dies: heartbeats stop, the agent is lost, the task unreachable.
    const offer3 = await freshOffer('third offer');
    await launch(offer3, 't-orphan', { value: 'sleep 60' });
    await follow('t-orphan', 'TASK_RUNNING');
    const id = agent.id;
    agent.proc.kill('SIGKILL');
    await exited(agent.proc);
    await follow('t-orphan', 'TASK_UNREACHABLE', 15_000);

    // Restarted on the same work dir: the same id, and the task whose container died is failed by the agent.
    agent = await startAgent(bed.cluster.masterUrl, agentDir, 'proc-1');
    expect(agent.id).toBe(id);
    expect((await follow('t-orphan', 'TASK_FAILED', 15_000)).at(-1)).toBe('TASK_FAILED');
    expect(statusOf(sub.events.filter(isUpdate('t-orphan', 'TASK_FAILED'))[0] ?? { type: 'none' }).source).toBe('SOURCE_AGENT');
    await eventually(async () => {
      const state = (await (await fetch(`${bed.cluster.masterUrl}/state`)).json()) as { slaves: { id: string; active: boolean }[] };
      return state.slaves.some((s) => s.id === id && s.active);
    }, 10_000, 'the agent active again');

    // (A clean stop is checked below, where the ping timeout is long.)
  }, 120_000);
});

describe('locus agent: a master with credentials', () => {
  let bed: Awaited<ReturnType<typeof testCluster>>;
  let agentDir: string;
  const procs: ChildProcess[] = [];

  beforeAll(async () => {
    // A long ping timeout: an agent lost here was lost by unregistering, not by silence.
    bed = await testCluster({ agents: 0, agentPingIntervalSeconds: 1, agentPingTimeoutSeconds: 60, credentials: [{ principal: 'agent-p', secret: 's3cret' }] });
    agentDir = await mkdtemp(join(tmpdir(), 'locus-agent-auth-'));
    await chmod(agentDir, 0o755);
    await writeFile(join(agentDir, 'secret'), 's3cret\n');
    await writeFile(join(agentDir, 'wrong'), 'nope\n');
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) { p.kill('SIGKILL'); await exited(p); }
    await bed.dispose();
    await rm(agentDir, { recursive: true, force: true });
  });

  it('refuses an agent without the right credential at once, takes one with it, and hears at once when it stops', async () => {
    for (const extra of [[], ['--principal', 'agent-p', '--secret-file', join(agentDir, 'wrong')]]) {
      const p = spawnAgent(bed.cluster.masterUrl, agentDir, 'anon', extra);
      procs.push(p);
      let out = '';
      p.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
      const started = Date.now();
      await exited(p);
      // Refused, not retried until the registration timeout.
      expect(p.exitCode).toBe(1);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(out).toContain('401');
    }
    expect(bed.cluster.agents).toEqual([]);
    const agent = await startAgent(bed.cluster.masterUrl, agentDir, 'trusted', ['--principal', 'agent-p', '--secret-file', join(agentDir, 'secret')]);
    procs.push(agent.proc);
    expect(bed.cluster.agents.map((a) => a.hostname)).toEqual(['trusted']);

    // A clean stop unregisters: the master declares the agent's task unreachable long before the ping timeout.
    // Frameworks authenticate with the same credentials.
    const auth = { Authorization: `Basic ${Buffer.from('agent-p:s3cret').toString('base64')}` };
    const sub = await subscribe(bed.cluster.masterUrl, subscribeCall(frameworkInfo('clean-stop', { principal: 'agent-p' })), auth);
    try {
      const offer = offersOf(await sub.next((e) => e.type === 'OFFERS', 10_000, 'an offer'))[0];
      if (!offer) throw new Error('no offer');
      expect((await call(bed.cluster.masterUrl, sub.streamId, {
        type: 'ACCEPT', framework_id: { value: sub.frameworkId },
        accept: { offer_ids: [offer.id], operations: [{ type: 'LAUNCH', launch: { task_infos: [{ name: 't-stop', task_id: { value: 't-stop' }, agent_id: offer.agent_id, resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 }, allocation_info: { role: 'locus' } }, { name: 'mem', type: 'SCALAR', scalar: { value: 32 }, allocation_info: { role: 'locus' } }], command: { value: 'sleep 60' } }] } }] },
      }, auth)).status).toBe(202);
      for (const state of ['TASK_STARTING', 'TASK_RUNNING']) {
        const st = statusOf(await sub.next(isUpdate('t-stop', state), 20_000, `t-stop ${state}`));
        expect((await call(bed.cluster.masterUrl, sub.streamId, { type: 'ACKNOWLEDGE', framework_id: { value: sub.frameworkId }, acknowledge: { agent_id: st.agent_id, task_id: st.task_id, uuid: st.uuid } }, auth)).status).toBe(202);
      }
      agent.proc.kill('SIGTERM');
      await exited(agent.proc);
      expect(agent.proc.exitCode).toBe(0);
      await sub.next(isUpdate('t-stop', 'TASK_UNREACHABLE'), 15_000, 't-stop unreachable');
    } finally {
      sub.close();
    }
  }, 90_000);
});

/**
 * A master alone (agents: 0) on a work directory that survives its restarts, one `locus agent`
 * process joined to it, and the subscriptions to close: the set-up of the master-restart suites.
 */
function masterRestartBed(name: string): {
  start(port: number, reregisterSeconds?: number): Promise<LocalCluster>;
  /** The master on a free port, the agent joined, and `sleep <seconds>` running as `taskId` (its subscription closed). */
  begin(agentName: string, taskId: string, seconds: number): Promise<{ first: LocalCluster; port: number; agent: AgentProc; sub: Sub; info: ReturnType<typeof frameworkInfo> }>;
  readonly state: { cluster?: LocalCluster; agent?: AgentProc; readonly subs: Sub[]; agentDir: string };
} {
  const state: { cluster?: LocalCluster; agent?: AgentProc; subs: Sub[]; agentDir: string; workDir: string } = { subs: [], agentDir: '', workDir: '' };
  beforeAll(async () => {
    state.workDir = await mkdtemp(join(tmpdir(), `locus-${name}-master-`));
    state.agentDir = await mkdtemp(join(tmpdir(), `locus-${name}-agent-`));
    await chmod(state.workDir, 0o755);
    await chmod(state.agentDir, 0o755);
  });
  afterAll(async () => {
    for (const s of state.subs) s.close();
    // SIGCONT first: a test may leave the agent stopped.
    if (state.agent) { state.agent.proc.kill('SIGCONT'); state.agent.proc.kill('SIGKILL'); await exited(state.agent.proc); }
    await state.cluster?.stop();
    await rm(state.workDir, { recursive: true, force: true });
    await rm(state.agentDir, { recursive: true, force: true });
  });
  const start = (port: number, reregisterSeconds?: number): Promise<LocalCluster> => startLocalCluster({
    workDir: state.workDir, agents: 0, port, allocationIntervalMs: 100, heartbeatIntervalSeconds: 1, isolation: 'process', statusUpdateRetrySeconds: 1, agentPingIntervalSeconds: 1,
    ...(reregisterSeconds !== undefined ? { agentReregisterTimeoutSeconds: reregisterSeconds } : {}),
  });
  const begin = async (agentName: string, taskId: string, seconds: number): Promise<{ first: LocalCluster; port: number; agent: AgentProc; sub: Sub; info: ReturnType<typeof frameworkInfo> }> => {
    const first = await start(0);
    state.cluster = first;
    const agent = await startAgent(first.masterUrl, state.agentDir, agentName);
    state.agent = agent;
    const { sub, info } = await launchSleeper(first.masterUrl, `master-${name}`, taskId, seconds, state.subs);
    sub.close();
    return { first, port: Number(new URL(first.masterUrl).port), agent, sub, info };
  };
  return { start, begin, state };
}

/** Subscribe `name`, launch `sleep <seconds>` as task `taskId` on the first offer, and acknowledge it up to TASK_RUNNING. */
async function launchSleeper(masterUrl: string, name: string, taskId: string, seconds: number, subs: Sub[]): Promise<{ sub: Sub; info: ReturnType<typeof frameworkInfo> }> {
  const info = frameworkInfo(name, { failover_timeout: 3600 });
  const sub = await subscribe(masterUrl, subscribeCall(info));
  subs.push(sub);
  const offer = offersOf(await sub.next((e) => e.type === 'OFFERS', 10_000, 'an offer'))[0];
  if (!offer) throw new Error('no offer');
  expect((await call(masterUrl, sub.streamId, {
    type: 'ACCEPT', framework_id: { value: sub.frameworkId },
    accept: { offer_ids: [offer.id], operations: [{ type: 'LAUNCH', launch: { task_infos: [{ name: taskId, task_id: { value: taskId }, agent_id: offer.agent_id, resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 }, allocation_info: { role: 'locus' } }, { name: 'mem', type: 'SCALAR', scalar: { value: 32 }, allocation_info: { role: 'locus' } }], command: { value: `sleep ${seconds}` } }] } }] },
  })).status).toBe(202);
  for (const state of ['TASK_STARTING', 'TASK_RUNNING']) await ack(masterUrl, sub, await sub.next(isUpdate(taskId, state), 20_000, `${taskId} ${state}`));
  return { sub, info };
}

describe('locus agent: the master restarts', () => {
  const { start, begin, state } = masterRestartBed('restart');

  it('joins the restarted master with its id and the task still running, which the framework then reconciles and kills', async () => {
    const { first, port, agent, sub, info } = await begin('proc-r', 't-live', 60);

    // The master goes away and comes back on the same work dir and port; the agent process stays.
    await first.stop();
    const c = await start(port);
    state.cluster = c;
    await eventually(() => c.agents.some((a) => a.id === agent.id), 15_000, 'the agent back on the new master');

    const again = await subscribe(c.masterUrl, subscribeCall(info, sub.frameworkId));
    state.subs.push(again);
    expect((await call(c.masterUrl, again.streamId, { type: 'RECONCILE', framework_id: { value: sub.frameworkId }, reconcile: { tasks: [{ task_id: { value: 't-live' } }] } })).status).toBe(202);
    const reconciled = statusOf(await again.next(isUpdate('t-live', undefined, (s) => s.reason === 'REASON_RECONCILIATION'), 10_000, 'reconciliation'));
    expect(reconciled.state).toBe('TASK_RUNNING');
    expect(reconciled.agent_id?.value).toBe(agent.id);
    expect((await call(c.masterUrl, again.streamId, { type: 'KILL', framework_id: { value: sub.frameworkId }, kill: { task_id: { value: 't-live' } } })).status).toBe(202);
    // TASK_KILLING first (the framework understands it), each update acknowledged so the next comes.
    const acked = new Set<string>();
    const states: string[] = [];
    for (let i = 0; i < 5 && states.at(-1) !== 'TASK_KILLED'; i++) {
      const e = await again.next(isUpdate('t-live', undefined, (x) => x.reason !== 'REASON_RECONCILIATION' && x.uuid !== undefined && !acked.has(x.uuid)), 20_000, 't-live killed');
      acked.add(statusOf(e).uuid ?? '');
      states.push(statusOf(e).state);
      await ack(c.masterUrl, again, e);
    }
    expect(states).toEqual(['TASK_KILLING', 'TASK_KILLED']);
  }, 90_000);
});

describe('locus agent: the framework re-subscribes to a restarted master before the agent is back', () => {
  const { start, begin, state } = masterRestartBed('registry');

  // The chaos suite's restart-master lost every attempt of executors the scheduler reconciled in that window.
  it('gets no answer for a task on an agent of the registry until the agent re-registers, then TASK_RUNNING; TASK_UNREACHABLE once the re-registration timeout passed', async () => {
    const { first, port, agent: a, sub, info } = await begin('proc-reg', 't-reg', 120);
    const reconcile = async (c: LocalCluster, s: Sub): Promise<void> => {
      expect((await call(c.masterUrl, s.streamId, { type: 'RECONCILE', framework_id: { value: sub.frameworkId }, reconcile: { tasks: [{ task_id: { value: 't-reg' }, agent_id: { value: a.id } }] } })).status).toBe(202);
    };
    const answered = (s: Sub, from: number): ReturnType<typeof statusOf>[] => s.events.slice(from).filter(isUpdate('t-reg', undefined, (x) => x.reason === 'REASON_RECONCILIATION')).map(statusOf);

    // The agent process is held (it cannot re-register) while the master restarts; its task runs on.
    a.proc.kill('SIGSTOP');
    await first.stop();
    const c = await start(port);
    state.cluster = c;
    const again = await subscribe(c.masterUrl, subscribeCall(info, sub.frameworkId));
    state.subs.push(again);
    const before = again.events.length;
    await reconcile(c, again);
    await new Promise((r) => setTimeout(r, 1_500));
    // A master without its registry answered TASK_UNKNOWN here, and the framework gave the task up.
    expect(answered(again, before)).toEqual([]);

    a.proc.kill('SIGCONT');
    await eventually(() => c.agents.some((x) => x.id === a.id), 15_000, 'the agent back on the new master');
    const after = again.events.length;
    await reconcile(c, again);
    const back = statusOf(await again.next((e) => again.events.indexOf(e) >= after && isUpdate('t-reg', undefined, (x) => x.reason === 'REASON_RECONCILIATION')(e), 10_000, 'reconciliation after re-registration'));
    expect(back.state).toBe('TASK_RUNNING');
    again.close();

    // Held again across a restart with a 1 s re-registration timeout: then the task is unreachable.
    a.proc.kill('SIGSTOP');
    await c.stop();
    const c2 = await start(port, 1);
    state.cluster = c2;
    const third = await subscribe(c2.masterUrl, subscribeCall(info, sub.frameworkId));
    state.subs.push(third);
    await new Promise((r) => setTimeout(r, 1_500));
    const from = third.events.length;
    await reconcile(c2, third);
    const late = statusOf(await third.next((e) => third.events.indexOf(e) >= from && isUpdate('t-reg', undefined, (x) => x.reason === 'REASON_RECONCILIATION')(e), 10_000, 'reconciliation after the timeout'));
    expect(late.state).toBe('TASK_UNREACHABLE');
    a.proc.kill('SIGCONT');
  }, 120_000);
});

describe('locus agent: a partition', () => {
  let bed: Awaited<ReturnType<typeof testCluster>>;
  let agentDir: string;
  let agent: AgentProc | undefined;
  let sub: Sub | undefined;

  beforeAll(async () => {
    bed = await testCluster({ agents: 0, agentPingIntervalSeconds: 1, agentPingTimeoutSeconds: 2 });
    agentDir = await mkdtemp(join(tmpdir(), 'locus-agent-partition-'));
    await chmod(agentDir, 0o755);
  }, 60_000);

  afterAll(async () => {
    sub?.close();
    if (agent) { agent.proc.kill('SIGCONT'); agent.proc.kill('SIGKILL'); await exited(agent.proc); }
    await bed.dispose();
    await rm(agentDir, { recursive: true, force: true });
  });

  it('declares a silent agent lost, and takes it back with its running task when it speaks again', async () => {
    agent = await startAgent(bed.cluster.masterUrl, agentDir, 'proc-p');
    sub = await subscribe(bed.cluster.masterUrl, subscribeCall(frameworkInfo('partition')));
    const s = sub;
    const offer = offersOf(await s.next((e) => e.type === 'OFFERS', 10_000, 'an offer'))[0];
    if (!offer) throw new Error('no offer');
    expect((await call(bed.cluster.masterUrl, s.streamId, {
      type: 'ACCEPT', framework_id: { value: s.frameworkId },
      accept: { offer_ids: [offer.id], operations: [{ type: 'LAUNCH', launch: { task_infos: [{ name: 't-p', task_id: { value: 't-p' }, agent_id: offer.agent_id, resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 }, allocation_info: { role: 'locus' } }, { name: 'mem', type: 'SCALAR', scalar: { value: 32 }, allocation_info: { role: 'locus' } }], command: { value: 'sleep 60' } }] } }] },
    })).status).toBe(202);
    for (const state of ['TASK_STARTING', 'TASK_RUNNING']) await ack(bed.cluster.masterUrl, s, await s.next(isUpdate('t-p', state), 20_000, `t-p ${state}`));

    // A stopped process sends nothing: after the ping timeout the master declares it lost.
    agent.proc.kill('SIGSTOP');
    const lost = statusOf(await s.next(isUpdate('t-p', 'TASK_UNREACHABLE'), 10_000, 't-p unreachable'));
    expect(lost.reason).toBe('REASON_SLAVE_REMOVED');
    // Back: its next heartbeat is refused, it registers again with the task still running.
    agent.proc.kill('SIGCONT');
    const back = statusOf(await s.next(isUpdate('t-p', 'TASK_RUNNING', (x) => x.reason === 'REASON_SLAVE_REREGISTERED'), 15_000, 't-p running again'));
    expect(back.agent_id?.value).toBe(agent.id);
    await eventually(async () => {
      const state = (await (await fetch(`${bed.cluster.masterUrl}/state`)).json()) as { slaves: { id: string; active: boolean }[] };
      return state.slaves.some((x) => x.id === agent?.id && x.active);
    }, 10_000, 'the agent active again');
  }, 90_000);
});
