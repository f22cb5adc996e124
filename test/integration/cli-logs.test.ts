/**
 * `locus logs` of a log longer than the server answers at once (it sends the last 8 MiB and says
 * how many bytes it left out) prints what it got and says on stderr that the start is missing;
 * `logs` and `explain` given a job id instead of a task id say so.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = join(process.cwd(), 'dist/src/cli/main.js');

let server: Server;
let url: string;
const requests: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const cut = (req.url ?? '').includes('/v1/tasks/job-a.0.0/logs');
    res.writeHead(200, { 'content-type': 'text/plain', ...(cut ? { 'locus-log-skipped-bytes': '2500288' } : {}) });
    res.end('373058\n373059\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('locus logs', () => {
  it('says how much of the start of a long log it does not show', async () => {
    const { stdout, stderr } = await run('node', [CLI, 'logs', 'job-a.0.0'], { env: { ...process.env, LOCUS_SERVER: url, LOCUS_TOKEN: 't' } });
    expect(stdout).toBe('373058\n373059\n');
    expect(stderr).toMatch(/the first 2500288 bytes of this log are not shown/);
  });

  it('takes a job id for a task as a usage error naming both forms, for logs and explain, asking nothing', async () => {
    for (const cmd of ['logs', 'explain']) {
      const before = requests.length;
      const err = await run('node', [CLI, cmd, 'job-c'], { env: { ...process.env, LOCUS_SERVER: url, LOCUS_TOKEN: 't' } }).then(() => undefined, (e: unknown) => e as { code?: number; stderr?: string });
      expect(err?.code, cmd).toBe(2);
      expect(err?.stderr, cmd).toBe("locus: 'job-c' is not a task id (<jobId>.<stage>.<index>); 'job-c' looks like a job id: its first task is job-c.0.0, and 'locus job job-c' lists its tasks\n");
      expect(requests.length, cmd).toBe(before);
    }
  });

  it('says nothing more of a log it shows whole', async () => {
    const { stdout, stderr } = await run('node', [CLI, 'logs', 'job-b.0.0'], { env: { ...process.env, LOCUS_SERVER: url, LOCUS_TOKEN: 't' } });
    expect(stdout).toBe('373058\n373059\n');
    expect(stderr).toBe('');
  });
});
