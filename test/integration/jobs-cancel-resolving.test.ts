/**
 * A job cancelled while its inputs are being listed: the listing ends after the cancel, and the
 * stage it produced is not opened. The job stays CANCELLED with no tasks, pending or counted, and
 * no RUNNING event (real Redis job store and job service; the storage port is an in-test one that
 * holds its answer until the test lets it go).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileLocations } from '../../src/core/blocks.js';
import type { InputResolver } from '../../src/scheduler/jobs/service.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { startJobsApi, until, type JobsApi } from './api-jobs-fixture.js';

let api: JobsApi;
let asked = 0;
let answered = 0;
let release: () => void = () => undefined;
const held = new Promise<void>((r) => (release = r));

const slow: InputResolver = {
  async resolve(uri) {
    asked++;
    await held;
    answered++;
    return Array.from({ length: 3 }, (_, i): FileLocations => ({
      uri: `${uri}part-${i}`, size: 10, splits: [{ offset: 0, length: 10, hosts: ['agent-a'], racks: ['r1'] }],
    }));
  },
};

beforeAll(async () => {
  api = await startJobsApi({ resolver: slow });
});
afterAll(async () => {
  release();
  await api?.close();
});

describe('cancelling a job while its inputs are listed', () => {
  it('opens no stage for it: no tasks pending or counted, no RUNNING event', async () => {
    const events: { jobId: string; kind: string; state: string }[] = [];
    api.jobs.on('event', (e: { jobId: string; kind: string; state: string }) => events.push(e));
    const job = await api.jobs.submit('alpha', validateJobSpec({ name: 'slow', inputs: ['local://slow/'], task: { command: ['true'] } }));
    await until('the listing to begin', async () => (asked > 0 ? true : undefined));
    expect((await api.jobs.get(job.id)).state).toBe('RESOLVING');
    await api.jobs.cancel(job.id);
    release();
    // The listing's answer arrives after the cancel. What the stage start does next goes out on
    // the store's connection within a few turns; a command sent after it on the same connection
    // is answered after it.
    await until('the listing to answer', async () => (answered > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 200));
    expect(await api.client.ping()).toBe('PONG');
    const after = await api.store.get(job.id);
    expect(after?.state).toBe('CANCELLED');
    expect(after?.counts).toMatchObject({ total: 0, pending: 0, running: 0 });
    expect(await api.client.exists(`locus:job:${job.id}:splits:0`)).toBe(0);
    expect(await api.jobs.tasks(job.id)).toEqual([]);
    expect(events.filter((e) => e.jobId === job.id && e.kind === 'job').map((e) => e.state)).not.toContain('RUNNING');
  });
});
