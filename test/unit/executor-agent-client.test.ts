/**
 * The agent operator-API client against a small HTTP stand-in: the JSON it
 * sends (LAUNCH_CONTAINER with parent, WAIT, KILL), how it reads the
 * answers (wait status decoding, 202 = exists, 404 on kill), and the
 * UNSUPPORTED classification the executor uses to fall back.
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentClient, decodeWaitStatus } from '../../src/mesos/agent.js';
import { LocusError } from '../../src/core/errors.js';

let server: Server | undefined;

async function serve(handler: (body: unknown, req: IncomingMessage, res: ServerResponse) => void): Promise<{ endpoint: string; calls: unknown[] }> {
  const calls: unknown[] = [];
  server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      const body: unknown = data === '' ? undefined : JSON.parse(data);
      calls.push(req.method === 'GET' ? req.url : body);
      handler(body, req, res);
    });
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return { endpoint: `127.0.0.1:${port}`, calls };
}

afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

describe('AgentClient', () => {
  it('launches a nested container under its parent with resources, env and volumes', async () => {
    const { endpoint, calls } = await serve((_b, _q, res) => res.writeHead(200).end());
    const c = new AgentClient(endpoint);
    const r = await c.launchNested({ containerId: 'c1', parentId: 'p1', argv: ['sh', '-c', 'echo hi'], env: { A: '1' }, resources: { cpus: 0.5, memMiB: 64, diskMiB: 10 }, volumes: [{ host_path: '/data', container_path: '/data', mode: 'RO' }] });
    expect(r).toBe('launched');
    expect(calls[0]).toEqual({
      type: 'LAUNCH_CONTAINER',
      launch_container: {
        container_id: { value: 'c1', parent: { value: 'p1' } },
        command: { shell: false, value: 'sh', arguments: ['sh', '-c', 'echo hi'], environment: { variables: [{ name: 'A', type: 'VALUE', value: '1' }] } },
        resources: [
          { name: 'cpus', type: 'SCALAR', scalar: { value: 0.5 } },
          { name: 'mem', type: 'SCALAR', scalar: { value: 64 } },
          { name: 'disk', type: 'SCALAR', scalar: { value: 10 } },
        ],
        container: { type: 'MESOS', volumes: [{ host_path: '/data', container_path: '/data', mode: 'RO' }] },
      },
    });
  });

  it('treats 202 as an existing container (idempotent relaunch)', async () => {
    const { endpoint } = await serve((_b, _q, res) => res.writeHead(202).end());
    expect(await new AgentClient(endpoint).launchNested({ containerId: 'c', parentId: 'p', argv: ['true'], env: {}, resources: { cpus: 1, memMiB: 1, diskMiB: 0 }, volumes: [] })).toBe('exists');
  });

  it('classifies agents without nested containers as UNSUPPORTED', async () => {
    for (const [status, body] of [[404, ''], [501, ''], [400, 'Standalone containers are not supported']] as const) {
      const { endpoint } = await serve((_b, _q, res) => res.writeHead(status).end(body));
      const err = await new AgentClient(endpoint).launchNested({ containerId: 'c', parentId: 'p', argv: ['true'], env: {}, resources: { cpus: 1, memMiB: 1, diskMiB: 0 }, volumes: [] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LocusError);
      expect((err as LocusError).code).toBe('UNSUPPORTED');
      await new Promise<void>((r) => server?.close(() => r()));
      server = undefined;
    }
  });

  it('waits, decoding the wait(2) status and limitation reasons', async () => {
    const { endpoint, calls } = await serve((_b, _q, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ type: 'WAIT_CONTAINER', wait_container: { exit_status: 9, state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LIMITATION_MEMORY', message: 'oom' } }));
    });
    const w = await new AgentClient(endpoint).waitNested('c1', 'p1');
    expect(w).toEqual({ exitStatus: 9, state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LIMITATION_MEMORY', message: 'oom' });
    expect(calls[0]).toEqual({ type: 'WAIT_CONTAINER', wait_container: { container_id: { value: 'c1', parent: { value: 'p1' } } } });
    expect(decodeWaitStatus(3 << 8)).toEqual({ exitCode: 3, signal: null });
    expect(decodeWaitStatus(9)).toEqual({ exitCode: null, signal: 9 });
  });

  it('kills with a signal and reports a gone container as false', async () => {
    let status = 200;
    const { endpoint, calls } = await serve((_b, _q, res) => res.writeHead(status).end());
    const c = new AgentClient(endpoint);
    expect(await c.killNested('c1', 'p1', 15)).toBe(true);
    expect(calls[0]).toEqual({ type: 'KILL_CONTAINER', kill_container: { container_id: { value: 'c1', parent: { value: 'p1' } }, signal: 15 } });
    status = 404;
    expect(await c.killNested('c1', 'p1')).toBe(false);
  });

  it('reads sandbox files through /files/read', async () => {
    const { endpoint, calls } = await serve((_b, _q, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ data: 'hello', offset: 5 })));
    expect(await new AgentClient(endpoint).readFile('/sb/stdout', 5, 100)).toEqual({ data: 'hello', offset: 5 });
    expect(calls[0]).toBe('/files/read?path=%2Fsb%2Fstdout&offset=5&length=100');
  });

  it('reports an unreachable agent as UNAVAILABLE', async () => {
    const err = await new AgentClient('127.0.0.1:1').killNested('c', 'p').catch((e: unknown) => e);
    expect((err as LocusError).code).toBe('UNAVAILABLE');
  });
});
