/**
 * `job-retention`: a finished job is purged once it has been finished that long (its record and
 * its tasks' commit records go; GET answers 404), while a job still running is kept however old,
 * on the embedded local cluster over real HTTP with a real redis-server. Its queue jobs are gone
 * long before: removed once their results were recorded.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitKey, ledgerIdOf } from '../../src/executor/contract.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { waitFor } from '../harness/wait.js';
import { api as apiAt, startBed, startInProcess, type Bed } from './framework-harness.js';

let bed: Bed;
let fw: RunningFramework;
let admin: Redis;

beforeAll(async () => {
  bed = await startBed();
  fw = await startInProcess(bed, { 'job-retention': '2s' });
  admin = bed.redis.client();
}, 120_000);

afterAll(async () => {
  admin?.disconnect();
  await fw?.stop();
  await bed?.dispose();
});

const api = (method: string, path: string, body?: unknown): ReturnType<typeof apiAt> => apiAt(fw.httpUrl, fw.adminToken, method, path, body);

describe('job retention', () => {
  it('purges a job finished longer ago than the retention, commit records too, and keeps a running one', async () => {
    // Too large for any agent: it stays RUNNING, however old it gets.
    const huge = await api('POST', '/v1/jobs', { name: 'huge', tasks: [{ command: ['true'] }], task: { command: ['true'], resources: { cpus: 64, mem: '64MiB', disk: '16MiB' } } });
    expect(huge.status).toBe(201);
    const done = await api('POST', '/v1/jobs', { name: 'done', tasks: [{ command: ['true'] }, { command: ['true'] }], task: { command: ['true'], resources: { cpus: 0.5, mem: '64MiB', disk: '16MiB' } } });
    expect(done.status).toBe(201);
    const id = String(done.json['id']);
    await waitFor(`job ${id} SUCCEEDED`, async () => (await api('GET', `/v1/jobs/${id}`)).json['state'] === 'SUCCEEDED', 30_000, 100);
    const finishedAt = Date.now();
    // Its queue jobs went as soon as their results were recorded, long before the job itself.
    const completed = async (): Promise<number> => {
      let n = 0;
      for (const key of await admin.keys('locus:q:*:completed')) n += await admin.zcard(key);
      return n;
    };
    await waitFor('the finished queue jobs removed', async () => (await completed()) === 0, 5_000, 100);
    // Its tasks' outputs were recorded; the records go with the job.
    expect(await admin.exists(commitKey(ledgerIdOf(`${id}.0.0`)))).toBe(1);
    // Kept for the retention (2 s) ...
    expect((await api('GET', `/v1/jobs/${id}`)).status).toBe(200);
    // ... then purged by a sweep (every 1 s here).
    await waitFor(`job ${id} purged`, async () => (await api('GET', `/v1/jobs/${id}`)).status === 404, 10_000, 100);
    expect(Date.now() - finishedAt).toBeGreaterThanOrEqual(1_500);
    expect(await admin.exists(commitKey(ledgerIdOf(`${id}.0.0`)), commitKey(ledgerIdOf(`${id}.0.1`)))).toBe(0);
    // The running job is older than the retention too, and is kept.
    const running = await api('GET', `/v1/jobs/${String(huge.json['id'])}`);
    expect(running.status).toBe(200);
    expect(running.json['state']).toBe('RUNNING');
  }, 90_000);
});
