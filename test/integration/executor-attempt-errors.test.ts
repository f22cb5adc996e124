/**
 * An attempt that fails in the executor's own code (not its workload) ends alone: a real
 * executor (in this process, real Redis, its own ACL user) runs a batch of three attempts in one
 * queue job, and its runner breaks one of them while it runs. That attempt is FAILED with
 * EXECUTOR_ERROR; the others succeed, one of them although its runner could not take its
 * sandbox back. Before, the exception failed the batch's queue job,
 * and the scheduler failed every member of the batch with it.
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Executor } from '../../src/executor/executor.js';
import type { AttemptRunner, RunHandle, RunSpec } from '../../src/executor/runner.js';
import { silentLogger } from '../../src/obs/log.js';
import type { ExecutorProvisioner } from '../../src/scheduler/executor-registry.js';
import type { TestRedis } from '../harness/redis.js';
import { payload, startExecutorBed, waitRegistered, type ExecutorBed, type RecordingDispatcher } from './executor-harness.js';

let bed: ExecutorBed | undefined;
let redis: TestRedis;
let admin: Redis;
let prov: ExecutorProvisioner;
let rd: RecordingDispatcher;
let work: string;
let executor: Executor | undefined;

beforeAll(async () => {
  bed = await startExecutorBed('locus-exec-attempt-errors-');
  ({ redis, admin, prov, rd, work } = bed);
});

afterAll(async () => {
  await executor?.drain('closed').catch(() => undefined);
  await bed?.dispose([]);
});

/**
 * Runs nothing and exits 0 at once; a container whose id names `boom` breaks the attempt's code
 * once it runs (its handle's sandbox cannot be read), and one naming `bad-release` cannot give
 * its sandbox back (which must not change its result).
 */
class ThrowingRunner implements AttemptRunner {
  readonly kind = 'test';

  constructor(private readonly root: string) {}

  async launch(spec: RunSpec): Promise<RunHandle> {
    const dir = join(this.root, spec.containerId);
    return {
      get sandboxDir(): string {
        if (spec.containerId.includes('boom')) throw new Error('the runner broke: no sandbox to show');
        return dir;
      },
      wait: () => Promise.resolve({ exitCode: 0, signal: null, reason: 'EXITED', message: 'done' }),
      kill: () => Promise.resolve(),
      release: () => {
        if (spec.containerId.includes('bad-release')) throw new Error('the runner could not take the sandbox back');
      },
    };
  }

  async close(): Promise<void> {}
}

describe('an attempt failing in the executor', () => {
  it('fails alone, with EXECUTOR_ERROR; the other attempts of its batch succeed', async () => {
    const id = 'EAE1';
    const creds = await prov.create(id);
    executor = await Executor.start({
      executorId: id, agentId: 'agent-1', hostname: 'localhost', slots: 4, slotResources: { cpus: 1, memMiB: 256, diskMiB: 256 },
      connect: () => new Redis(redis.url, { username: creds.username, password: creds.password, maxRetriesPerRequest: null }),
      runner: new ThrowingRunner(join(work, 'sandboxes')), logger: silentLogger(), scratchDir: join(work, 'scratch'),
    });
    await waitRegistered(admin, id);
    const attempts = ['ok-1', 'boom', 'bad-release'].map((name) => payload(`job-ae.0.${name}`, 1, ['true'], { jobId: 'job-ae' }));
    await rd.dispatcher.dispatchMany(attempts.map((p) => ({ executorId: id, payload: p })));
    const [ok1, boom, badRelease] = await Promise.all(attempts.map((p) => rd.result(p.attemptId)));
    expect(ok1).toMatchObject({ state: 'SUCCEEDED', reason: 'EXITED' });
    expect(boom).toMatchObject({ state: 'FAILED', reason: 'EXECUTOR_ERROR' });
    expect(boom?.message).toContain('the runner broke: no sandbox to show');
    // A sandbox the runner cannot take back is only logged: the attempt's result stands.
    expect(badRelease).toMatchObject({ state: 'SUCCEEDED', reason: 'EXITED' });
  }, 60_000);
});
