/**
 * A NameNode out of service while a job's inputs are listed, end to end: the embedded local
 * cluster with real executors, the framework in this process over real HTTP, and the repository's
 * WebHDFS server answering 503 (as a proxy in front of a NameNode that is down does). The job
 * waits for the storage of its input instead of failing, and says so in its view; a job submitted
 * after it runs to success meanwhile; once the NameNode answers, the waiting job's stage opens and
 * its tasks run on the cluster's executors; `/metrics` counts the listing's retries.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningFramework } from '../../src/app/framework.js';
import { startWebHdfsServer, type WebHdfsServer } from '../harness/webhdfs-server.js';
import { api, commitRecordOf, startBed, startInProcess, type Bed } from './framework-harness.js';

let bed: Bed;
let fw: RunningFramework;
let admin: Redis;
let nn: WebHdfsServer;

const TOKEN = 'a'.repeat(64);
const RES = { cpus: 0.2, mem: '64MiB', disk: '16MiB' };
const files = [{ path: '/logs/a.txt', size: 1000 }, { path: '/logs/b.txt', size: 2000 }, { path: '/logs/c.txt', size: 3000 }];

beforeAll(async () => {
  bed = await startBed();
  nn = await startWebHdfsServer({ files });
  fw = await startInProcess(bed, { 'executor-idle-timeout': '60s' });
  admin = bed.redis.client();
}, 60_000);

afterAll(async () => {
  admin?.disconnect();
  await fw?.stop();
  await nn?.close();
  await bed?.dispose();
});

const call = (method: string, path: string, body?: unknown): ReturnType<typeof api> => api(fw.httpUrl, TOKEN, method, path, body);

/** Poll a job's HTTP view until `done` says so; fails with the last view past the deadline. */
async function viewUntil(id: string, what: string, done: (job: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { json } = await call('GET', `/v1/jobs/${id}`);
    if (done(json)) return json;
    if (Date.now() > deadline) throw new Error(`job ${id}: no ${what} after ${timeoutMs} ms: ${JSON.stringify(json)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const ended = (j: Record<string, unknown>): boolean => j['state'] === 'SUCCEEDED' || j['state'] === 'FAILED' || j['state'] === 'CANCELLED';

/** The retries counted for `scheme`, read over HTTP as Prometheus scrapes them. */
async function listingRetries(scheme: string): Promise<number> {
  const text = await (await fetch(`${fw.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`locus_input_listing_retries_total{scheme="${scheme}"} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

describe('a job whose HDFS input is away when it is submitted', () => {
  it('waits, lets a later job succeed, and succeeds on the executors once the NameNode answers', async () => {
    nn.setOutage({ status: 503 });
    const input = `hdfs://127.0.0.1:${nn.port}/logs/`;
    const submitted = await call('POST', '/v1/jobs', {
      name: 'behind-a-namenode-outage', retries: 0, inputs: [input], split: 'file',
      // The fake DataNodes are not agents: no locality wait, the tasks go where there is room.
      locality: { wait: '0s' },
      task: { command: ['sh', '-c', "echo '{split.uri}' > '{output}/uri'"], resources: RES },
    });
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    const id = String(submitted.json['id']);

    // Not failed: its view says it waits for the storage of the input, and why.
    const waiting = await viewUntil(id, 'wait', (j) => String(j['message'] ?? '').startsWith('waiting for the storage') || ended(j), 20_000);
    expect(waiting['state']).toBe('RESOLVING');
    expect(String(waiting['message'])).toContain(`waiting for the storage of input ${input} of stage 'main': `);
    expect(String(waiting['message'])).toMatch(/HTTP 503/);

    // A job submitted after it is listed, placed and run meanwhile.
    const other = await call('POST', '/v1/jobs', {
      name: 'ordinary', retries: 0, inputs: ['local://words/'], split: 'file',
      task: { command: ['sh', '-c', "grep -c word3 '{split.path}' > '{output}/n'"], resources: RES },
    });
    expect(other.status, JSON.stringify(other.json)).toBe(201);
    const otherDone = await viewUntil(String(other.json['id']), 'end', ended, 40_000);
    expect(otherDone['state']).toBe('SUCCEEDED');
    expect((await call('GET', `/v1/jobs/${id}`)).json['state']).toBe('RESOLVING');
    expect(nn.counts.get('OUTAGE') ?? 0).toBeGreaterThan(1);
    expect(await listingRetries('hdfs')).toBeGreaterThan(0);

    // The NameNode is back: at its next try the stage opens, one task per file, run by executors.
    nn.setOutage(undefined);
    const done = await viewUntil(id, 'end', ended, 40_000);
    expect(done['state'], JSON.stringify(done)).toBe('SUCCEEDED');
    expect(done['message']).toBeUndefined();
    const agents = new Set(bed.cluster.agents.map((a) => a.hostname));
    for (const [i, f] of files.entries()) {
      const rec = await commitRecordOf(admin, `${id}.0.${i}`);
      expect(agents.has(rec.host)).toBe(true);
      expect(readFileSync(join(rec.path, 'uri'), 'utf8')).toBe(`hdfs://127.0.0.1:${nn.port}${f.path}\n`);
    }
  }, 90_000);
});
