/**
 * A scheduler taking over while a later stage (stage > 0, its job RUNNING) waits for the storage
 * of its inputs. Recovery is awaited before the framework subscribes to Mesos: were it to list
 * that stage itself, one blackholed NameNode (each listing lasting its timeout) would hold the new
 * leader, and every tenant's jobs with it. Recovery starts such a stage and goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import type { FileLocations } from '../../src/core/blocks.js';
import { LocusError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/obs/log.js';
import { JobService, type InputResolver } from '../../src/scheduler/jobs/service.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { startJobsApi, until, type JobsApi } from './api-jobs-fixture.js';

let away = true;
let hang = false;
let calls = 0;
let release: () => void = () => undefined;
const hung = new Promise<void>((r) => { release = r; });

/** `flaky://` is a NameNode away: refusing (`away`), or dropping packets (`hang`: a try lasts until released). */
const storage: InputResolver = {
  async resolve(uri) {
    if (uri.startsWith('flaky://')) {
      calls++;
      if (hang) await hung;
      if (away) throw new LocusError('UNAVAILABLE', `${uri}: cannot reach the NameNode (ECONNREFUSED)`);
    }
    return [{ uri: `${uri}part-0`, size: 10, splits: [{ offset: 0, length: 10, hosts: ['agent-a'], racks: ['r1'] }] }] as FileLocations[];
  },
};

let api: JobsApi;
beforeAll(async () => { api = await startJobsApi({ resolver: storage }); }, 30_000);
afterAll(async () => { release(); await api?.close(); });

describe('recovery and a later stage waiting for its storage', () => {
  it("recover() does not wait for a later stage's listing, and starts it once", async () => {
    const options = {
      resolver: storage, clock: systemClock, logger: silentLogger(), outputRoot: '/tmp/locus-input-recover',
      limits: { maxPendingTasksPerTenant: 1000, maxTasksPerJob: 1000 }, inputStorageGiveUpMs: 600_000, inputListingRetryMs: 100,
    };
    const first = new JobService({ ...options, store: new JobStore(api.client) });
    const spec = validateJobSpec({ name: 'two-stages', stages: [
      { name: 'a', inputs: ['local://x/'], split: 'file', task: { command: ['true'] } },
      { name: 'b', inputs: ['flaky://nn/data/'], split: 'file', task: { command: ['true'] } },
    ] });
    const job = await first.submit('alpha', spec);
    const [t] = await until('stage a to open', async () => { const p = [...first.pendingTasks()].filter((x) => x.jobId === job.id); return p.length === 1 ? p : undefined; });
    const started = await first.startAttempt(t!.taskId, { id: 'exec-1', host: 'agent-a', agentUrl: api.agentUrl }, 0);
    const now = Date.now();
    await first.finishAttempt({ attemptId: started!.attemptId, taskId: t!.taskId, state: 'SUCCEEDED', exitCode: 0, reason: '', message: 'exited 0', startedAt: now, finishedAt: now, host: 'agent-a' });
    await until('stage b to wait', async () => (first.inputWaitsNow().some((w) => w.jobId === job.id && w.stage === 1) ? true : undefined));
    expect((await first.get(job.id)).state).toBe('RUNNING');
    first.close();

    // The new leader: the NameNode's packets are now dropped (each listing lasts its timeout).
    hang = true;
    calls = 0;
    const second = new JobService({ ...options, store: new JobStore(api.client) });
    try {
      const outcome = await Promise.race([second.recover().then(() => 'recovered'), new Promise((r) => setTimeout(() => r('still recovering after 3 s'), 3_000))]);
      expect(outcome).toBe('recovered');
      // Started in the background, once: the listing hangs, and nothing started it a second time.
      await until('the listing to start', async () => (calls > 0 ? true : undefined));
      expect(calls).toBe(1);
      // The NameNode back: the stage opens.
      away = false;
      release();
      await until('stage b to open', async () => ([...second.pendingTasks()].some((x) => x.jobId === job.id && x.stage === 1) ? true : undefined));
      expect(calls).toBe(1);
    } finally {
      second.close();
    }
  }, 30_000);
});
