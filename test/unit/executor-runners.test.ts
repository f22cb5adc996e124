/**
 * Runner choices that follow from how genuine agents behave: an agent that refuses an
 * executor's calls (401/403 under `--authenticate_http_executors`) costs no attempt, and
 * sandboxes are reported as the agent serves them (host paths, not the image's view).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/mesos/agent.js';
import { AgentRunner, HostPathRunner, NoopRunner, PreferAgentRunner, type RunSpec } from '../../src/executor/runner.js';
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
