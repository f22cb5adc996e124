/**
 * A `locus` command whose output is piped into a reader that stops early (`locus jobs | head`)
 * ends quietly: no stack trace of an unhandled EPIPE.
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

beforeAll(async () => {
  // A server with many jobs: more output than a pipe holds, so the writes outlive the reader.
  const jobs = Array.from({ length: 3000 }, (_, i) => ({ id: `job-${String(i).padStart(8, '0')}`, name: 'n'.repeat(80), tenant: 'default', state: 'SUCCEEDED' }));
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jobs }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('locus output into a closed pipe', () => {
  it.each([{ args: 'jobs --json' }, { args: 'jobs' }])('locus $args | head -c 100 ends with no stack trace and status 0', async ({ args }) => {
    const cmd = `node ${JSON.stringify(CLI)} ${args} | head -c 100 > /dev/null; echo "status=\${PIPESTATUS[0]}" >&2`;
    const { stderr } = await run('bash', ['-c', cmd], { env: { ...process.env, LOCUS_SERVER: url, LOCUS_TOKEN: 't' } });
    expect(stderr).not.toMatch(/EPIPE|Unhandled|at /);
    expect(stderr.trim()).toBe('status=0');
  });
});
