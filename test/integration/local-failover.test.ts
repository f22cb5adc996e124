/**
 * Failure handling of the local cluster over raw HTTP: framework failover
 * within and past failover_timeout, an agent stopped (TASK_UNREACHABLE) and
 * started again with the same id, nested containers through the agent's
 * operator API, the control API over HTTP, and the `locus local` command.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ack, call, eventually, frameworkInfo, isUpdate, offersOf, statusOf, subscribe, subscribeCall, testCluster, type Ev, type Offer, type Sub } from './local-helpers.js';

async function firstOffer(url: string, sub: Sub, hostname?: string): Promise<Offer> {
  for (let i = 0; i < 30; i++) {
    const found = sub.events.filter((e) => e.type === 'OFFERS').flatMap(offersOf).find((o) => (hostname === undefined || o.hostname === hostname) && !used.has(o.id.value));
    if (found) { used.add(found.id.value); return found; }
    const start = sub.events.length;
    await call(url, sub.streamId, { type: 'REVIVE', framework_id: { value: sub.frameworkId } });
    await sub.next((e) => sub.events.indexOf(e) >= start && e.type === 'OFFERS', 1000).catch(() => undefined);
  }
  throw new Error('no offer');
}
const used = new Set<string>();

async function launchSleep(url: string, sub: Sub, o: Offer, taskId: string, command = 'sleep 60'): Promise<void> {
  const r = await call(url, sub.streamId, {
    type: 'ACCEPT', framework_id: { value: sub.frameworkId },
    accept: { offer_ids: [o.id], operations: [{ type: 'LAUNCH', launch: { task_infos: [{ name: taskId, task_id: { value: taskId }, agent_id: o.agent_id, resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 } }, { name: 'mem', type: 'SCALAR', scalar: { value: 32 } }], command: { value: command } }] } }], filters: { refuse_seconds: 0 } },
  });
  expect(r.status).toBe(202);
  await ack(url, sub, await sub.next(isUpdate(taskId, 'TASK_STARTING'), 5000));
  await ack(url, sub, await sub.next(isUpdate(taskId, 'TASK_RUNNING'), 5000));
}

describe('local cluster: failover and agents', () => {
  it('keeps tasks through a framework failover within the timeout and kills them after it', async () => {
    const env = await testCluster({ agents: 1 });
    try {
      const url = env.cluster.masterUrl;
      const sub = await subscribe(url, subscribeCall(frameworkInfo('failover', { failover_timeout: 1.5 })));
      const fid = sub.frameworkId;
      await launchSleep(url, sub, await firstOffer(url, sub), 'keep-1');
      sub.close();
      await new Promise((r) => setTimeout(r, 300));
      const back = await subscribe(url, subscribeCall(frameworkInfo('failover', { failover_timeout: 1.5 }), fid));
      expect(back.frameworkId).toBe(fid);
      await call(url, back.streamId, { type: 'RECONCILE', framework_id: { value: fid }, reconcile: { tasks: [] } });
      const r = await back.next(isUpdate('keep-1'), 3000);
      expect(statusOf(r)).toMatchObject({ state: 'TASK_RUNNING', source: 'SOURCE_MASTER', reason: 'REASON_RECONCILIATION' });
      // dropSubscriptions closes the stream from the master's side; then the timeout runs out.
      env.cluster.control.dropSubscriptions();
      await back.ended();
      await eventually(async () => {
        const s = (await (await fetch(`${url}/state`)).json()) as { frameworks: { id: string }[] };
        return !s.frameworks.some((f) => f.id === fid);
      }, 5000, 'the framework to be removed after its failover timeout');
      const again = await subscribe(url, subscribeCall(frameworkInfo('failover'), fid));
      expect(again.events[0]).toEqual({ type: 'ERROR', error: { message: 'Framework has been removed' } });
      // Its task was killed on the agent: the resources come back to a new framework.
      const other = await subscribe(url, subscribeCall(frameworkInfo('other')));
      const o = await firstOffer(url, other);
      expect(o.resources.find((x) => x.name === 'cpus')?.scalar?.value).toBe(2);
      other.close();
    } finally {
      await env.dispose();
    }
  });

  it('reports tasks of a stopped agent as TASK_UNREACHABLE and brings the agent back with the same id', async () => {
    const env = await testCluster({ agents: 2 });
    try {
      const url = env.cluster.masterUrl;
      const sub = await subscribe(url, subscribeCall(frameworkInfo('agents')));
      const o = await firstOffer(url, sub, 'agent-2');
      await launchSleep(url, sub, o, 'on-2');
      const id2 = env.cluster.agents.find((a) => a.hostname === 'agent-2')?.id;
      const stop = await fetch(`${url}/local/v1/agents/agent-2/stop`, { method: 'POST' });
      expect(stop.status).toBe(200);
      const lost = await sub.next(isUpdate('on-2', 'TASK_UNREACHABLE'), 3000);
      expect(statusOf(lost)).toMatchObject({ source: 'SOURCE_MASTER', reason: 'REASON_SLAVE_REMOVED', message: 'health check timed out' });
      expect(statusOf(lost)['unreachable_time']).toBeDefined();
      const state = (await (await fetch(`${url}/state`)).json()) as { slaves: { hostname: string }[]; unreachable_slaves: number };
      expect(state.slaves.map((s) => s.hostname)).toEqual(['agent-1']);
      expect(state.unreachable_slaves).toBe(1);
      await call(url, sub.streamId, { type: 'RECONCILE', framework_id: { value: sub.frameworkId }, reconcile: { tasks: [{ task_id: { value: 'on-2' }, agent_id: { value: id2 } }] } });
      expect(statusOf(await sub.next(isUpdate('on-2', 'TASK_UNREACHABLE', (s) => s.reason === 'REASON_RECONCILIATION'), 3000)).state).toBe('TASK_UNREACHABLE');
      expect((await fetch(`${url}/local/v1/agents/agent-2/start`, { method: 'POST' })).status).toBe(200);
      expect(env.cluster.agents.find((a) => a.hostname === 'agent-2')?.id).toBe(id2);
      // Back: the task re-appears, then fails as its container did not survive.
      const failed = await sub.next(isUpdate('on-2', 'TASK_FAILED'), 5000);
      expect(statusOf(failed)).toMatchObject({ source: 'SOURCE_AGENT', reason: 'REASON_EXECUTOR_TERMINATED' });
      await ack(url, sub, failed);
      const o2 = await firstOffer(url, sub, 'agent-2');
      expect(o2.agent_id.value).toBe(id2);
      expect((await fetch(`${url}/local/v1/agents/agent-9/stop`, { method: 'POST' })).status).toBe(404);
      sub.close();
    } finally {
      await env.dispose();
    }
  });

  it('runs nested containers under an executor through the agent operator API', async () => {
    const env = await testCluster({ agents: 1 });
    try {
      const url = env.cluster.masterUrl;
      const sub = await subscribe(url, subscribeCall(frameworkInfo('nested')));
      const o = await firstOffer(url, sub);
      await launchSleep(url, sub, o, 'executor-1');
      const running = sub.events.find(isUpdate('executor-1', 'TASK_RUNNING')) as Ev;
      const parent = (statusOf(running)['container_status'] as { container_id: { value: string } }).container_id.value;
      const agentUrl = env.cluster.agents[0]?.url ?? '';
      const api = (body: unknown): Promise<Response> => fetch(`${agentUrl}/api/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(body) });
      const child = { value: 'child-1', parent: { value: parent } };
      const launched = await api({ type: 'LAUNCH_CONTAINER', launch_container: { container_id: child, command: { shell: true, value: 'echo nested-$(basename $MESOS_SANDBOX); exit 2' }, resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 } }, { name: 'mem', type: 'SCALAR', scalar: { value: 32 } }] } });
      expect(launched.status).toBe(200);
      const wait = await api({ type: 'WAIT_CONTAINER', wait_container: { container_id: child } });
      expect(wait.status).toBe(200);
      const body = (await wait.json()) as { type: string; wait_container: { exit_status: number } };
      expect(body.type).toBe('WAIT_CONTAINER');
      expect(body.wait_container.exit_status).toBe(2 << 8);
      const sandbox = `${env.workDir}/agents/agent-1/slaves/${o.agent_id.value}/frameworks/${sub.frameworkId}/executors/executor-1/runs/${parent}/containers/child-1`;
      expect(readFileSync(`${sandbox}/stdout`, 'utf8')).toBe('nested-child-1\n');
      // A long one, killed.
      const sleeper = { value: 'child-2', parent: { value: parent } };
      expect((await api({ type: 'LAUNCH_CONTAINER', launch_container: { container_id: sleeper, command: { shell: true, value: 'sleep 60' } } })).status).toBe(200);
      expect((await api({ type: 'LAUNCH_CONTAINER', launch_container: { container_id: sleeper, command: { shell: true, value: 'sleep 60' } } })).status).toBe(202);
      // REMOVE_CONTAINER as a genuine agent answers it (MesosContainerizer::remove): a running
      // container is refused with 500; an ended one's sandbox goes, and WAIT then finds nothing;
      // a container the agent does not know is removed already (200).
      const refused = await api({ type: 'REMOVE_CONTAINER', remove_container: { container_id: sleeper } });
      expect(refused.status).toBe(500);
      expect(await refused.text()).toMatch(/not terminated/);
      expect((await api({ type: 'REMOVE_CONTAINER', remove_container: { container_id: child } })).status).toBe(200);
      expect(existsSync(sandbox)).toBe(false);
      expect((await api({ type: 'WAIT_CONTAINER', wait_container: { container_id: child } })).status).toBe(404);
      expect((await api({ type: 'REMOVE_CONTAINER', remove_container: { container_id: child } })).status).toBe(200);
      expect((await api({ type: 'REMOVE_NESTED_CONTAINER', remove_nested_container: { container_id: { value: 'never-was', parent: { value: parent } } } })).status).toBe(200);
      // Ids are validated as a genuine agent does: none may name a path outside the sandbox.
      for (const bad of ['..', '../..', 'a/b', 'a.b', '']) {
        const refusedId = await api({ type: 'REMOVE_CONTAINER', remove_container: { container_id: { value: bad, parent: { value: parent } } } });
        expect(refusedId.status, bad).toBe(400);
        expect(await refusedId.text()).toMatch(/not a valid container id/);
      }
      expect((await api({ type: 'LAUNCH_CONTAINER', launch_container: { container_id: { value: '..', parent: { value: parent } }, command: { value: 'true' } } })).status).toBe(400);
      expect(existsSync(`${env.workDir}/agents/agent-1/slaves/${o.agent_id.value}/frameworks/${sub.frameworkId}/executors/executor-1/runs/${parent}`)).toBe(true);
      const waiting = api({ type: 'WAIT_CONTAINER', wait_container: { container_id: sleeper } });
      expect((await api({ type: 'KILL_CONTAINER', kill_container: { container_id: sleeper } })).status).toBe(200);
      const killed = (await (await waiting).json()) as { wait_container: { exit_status: number } };
      expect(killed.wait_container.exit_status).toBe(9);
      expect((await api({ type: 'KILL_CONTAINER', kill_container: { container_id: sleeper } })).status).toBe(404);
      expect((await api({ type: 'LAUNCH_CONTAINER', launch_container: { container_id: { value: 'x', parent: { value: 'nope' } }, command: { value: 'true' } } })).status).toBe(400);
      sub.close();
    } finally {
      await env.dispose();
    }
  });

  it('runs `locus local` in the foreground, prints the master URL and stops on SIGTERM', async () => {
    const main = 'dist/src/cli/main.js';
    if (!existsSync(main)) return expect.fail('build first: npx tsc -p tsconfig.build.json');
    const workDir = await mkdtemp(join(tmpdir(), 'locus-local-cli-'));
    const child = spawn(process.execPath, [main, 'local', '--agents', '2', '--racks', '1', '--port', '0', '--work-dir', workDir, '--isolation', 'process'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: 'warn' } });
    try {
      let out = '';
      child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
      await eventually(() => /^https?:\/\/127\.0\.0\.1:\d+\n/.test(out), 15000, 'the master URL');
      const masterUrl = out.trim();
      const state = (await (await fetch(`${masterUrl}/state`)).json()) as { slaves: { hostname: string; attributes: { rack: string } }[] };
      expect(state.slaves.map((s) => `${s.hostname}:${s.attributes.rack}`).sort()).toEqual(['agent-1:r1', 'agent-2:r1']);
      const topo = JSON.parse(readFileSync(join(workDir, 'topology.json'), 'utf8')) as { masterUrl: string };
      expect(topo.masterUrl).toBe(masterUrl);
      const code = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      child.kill('SIGTERM');
      expect(await code).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
