/**
 * Runner choices that follow from how genuine agents behave: an agent that refuses an
 * executor's calls (401/403 under `--authenticate_http_executors`) costs no attempt, and
 * sandboxes are reported as the agent serves them (host paths, not the image's view).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/mesos/agent.js';
import { AgentRunner, HostPathRunner, IsolatorRunner, NoopRunner, PreferAgentRunner, type RunSpec } from '../../src/executor/runner.js';
import type { Container, ContainerExit, Isolator } from '../../src/executor/isolation/types.js';
import { silentLogger } from '../../src/obs/log.js';

const spec: RunSpec = { containerId: 'a-1', argv: ['true'], env: {}, resources: { cpus: 0.1, memMiB: 32, diskMiB: 0 }, volumes: [] };

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** A real HTTP agent stand-in that answers every operator call with `status`, recording what it got. */
async function agentAnswering(status: number): Promise<{ url: string; calls: { auth: string | undefined; body: string }[] }> {
  const calls: { auth: string | undefined; body: string }[] = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      calls.push({ auth: req.headers.authorization, body });
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(status === 401 ? '' : 'Forbidden');
    });
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server?.address() as AddressInfo).port}`, calls };
}

describe('PreferAgentRunner', () => {
  for (const status of [401, 403]) {
    it(`runs the attempt in the executor's own container when the agent answers ${status}, and sends the executor's token`, async () => {
      const agent = await agentAnswering(status);
      const runner = new PreferAgentRunner(new AgentRunner(new AgentClient(agent.url, { bearerToken: 'tok-1' }), 'parent-1', '/sandbox'), async () => new NoopRunner('/own'), silentLogger());
      const handle = await runner.launch(spec);
      expect(handle.sandboxDir).toBe('/own/containers/a-1');
      expect(runner.kind).toBe('agent-unsupported');
      expect(await handle.wait()).toMatchObject({ exitCode: 0, reason: 'EXITED' });
      expect(agent.calls[0]?.auth).toBe('Bearer tok-1');
      expect(JSON.parse(agent.calls[0]?.body ?? '{}')).toMatchObject({ type: 'LAUNCH_CONTAINER', launch_container: { container_id: { value: 'a-1', parent: { value: 'parent-1' } } } });
      // Later attempts do not ask the agent again.
      await runner.launch({ ...spec, containerId: 'a-2' });
      expect(agent.calls).toHaveLength(1);
    });
  }

  it('still fails an attempt on an agent fault that is not about this executor (500)', async () => {
    const agent = await agentAnswering(500);
    const runner = new PreferAgentRunner(new AgentRunner(new AgentClient(agent.url), 'parent-1', '/sandbox'), async () => new NoopRunner('/own'), silentLogger());
    await expect(runner.launch(spec)).rejects.toThrow(/500/);
  });
});

describe('HostPathRunner', () => {
  it('reports sandboxes under the agent\'s host path when the executor sees /mnt/mesos/sandbox', async () => {
    const r = new HostPathRunner(new NoopRunner('/mnt/mesos/sandbox'), '/mnt/mesos/sandbox', '/var/lib/mesos/slaves/S0/frameworks/F/executors/E/runs/C');
    const h = await r.launch(spec);
    expect(h.sandboxDir).toBe('/var/lib/mesos/slaves/S0/frameworks/F/executors/E/runs/C/containers/a-1');
    expect(r.hostPath('/elsewhere/x')).toBe('/elsewhere/x');
    expect(r.hostPath('/mnt/mesos/sandboxes')).toBe('/mnt/mesos/sandboxes');
  });
});

/** An isolator whose containers end when the test says (`end(id)`), or whose launch fails for ids in `refuse`. */
function fakeIsolator(refuse: ReadonlySet<string> = new Set()): { isolator: Isolator; end: (id: string) => void } {
  const enders = new Map<string, () => void>();
  const exit: ContainerExit = { exitCode: 0, signal: null, reason: 'EXITED', message: 'exited', usage: { cpuTimeSeconds: 0, memPeakBytes: 0 } } as ContainerExit;
  const isolator = {
    report: { kind: 'process' },
    async launch(c: { id: string }): Promise<Container> {
      if (refuse.has(c.id)) throw new Error(`launch of ${c.id} refused`);
      let resolve: (e: ContainerExit) => void = () => undefined;
      const ended = new Promise<ContainerExit>((r) => (resolve = r));
      enders.set(c.id, () => resolve(exit));
      return { id: c.id, pid: undefined, wait: () => ended, kill: async () => resolve(exit), usage: async () => ({ cpuTimeSeconds: 0, memPeakBytes: 0 }) } as unknown as Container;
    },
    get: () => undefined,
    close: async () => undefined,
  } as unknown as Isolator;
  return { isolator, end: (id) => enders.get(id)?.() };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('IsolatorRunner keeps the latest sandboxes only', () => {
  it('removes a sandbox once newer ones are released, never before its process tree ended', async () => {
    const root = mkdtempSync(join(tmpdir(), 'locus-runner-keep-'));
    try {
      const { isolator, end } = fakeIsolator();
      const runner = new IsolatorRunner(isolator, root, undefined, 1);
      const a = await runner.launch({ ...spec, containerId: 'a' });
      const b = await runner.launch({ ...spec, containerId: 'b' });
      // b is released while still running; a is released once ended.
      end('a');
      a.release?.();
      b.release?.();
      await tick();
      expect(existsSync(a.sandboxDir)).toBe(true);
      end('b');
      await tick();
      // b is done now: a, older, goes; b stays (keep 1).
      expect(existsSync(a.sandboxDir)).toBe(false);
      expect(existsSync(b.sandboxDir)).toBe(true);
      // Through HostPathRunner the release reaches the runner underneath.
      const host = new HostPathRunner(runner, root, '/host/sandbox');
      const c = await host.launch({ ...spec, containerId: 'c' });
      end('c');
      c.release?.();
      await tick();
      expect(existsSync(b.sandboxDir)).toBe(false);
      expect(existsSync(join(root, 'containers', 'c'))).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a launch that fails leaves its sandbox to the retention, as a done attempt\'s', async () => {
    const root = mkdtempSync(join(tmpdir(), 'locus-runner-keep-'));
    try {
      const { isolator, end } = fakeIsolator(new Set(['bad']));
      const runner = new IsolatorRunner(isolator, root, undefined, 1);
      await expect(runner.launch({ ...spec, containerId: 'bad' })).rejects.toThrow(/refused/);
      expect(existsSync(join(root, 'containers', 'bad'))).toBe(true);
      const ok = await runner.launch({ ...spec, containerId: 'ok' });
      end('ok');
      ok.release?.();
      await tick();
      expect(existsSync(join(root, 'containers', 'bad'))).toBe(false);
      expect(existsSync(ok.sandboxDir)).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
