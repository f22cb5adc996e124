/**
 * The coordinator sends an executor attempts beyond its slots (its registered prefetch) only
 * while its attempts end quickly: none at first, its prefetch once a run of short results came
 * in, none again after a long run or an attempt handed back for want of a slot (which goes back
 * to pending, uncounted); and never any to an executor that does not prefetch.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { createMetrics, type LocusMetrics } from '../../src/obs/metrics.js';
import type { JobService } from '../../src/scheduler/jobs/service.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { ExecutorBook } from '../../src/scheduler/executors.js';
import { Coordinator } from '../../src/scheduler/coordinator.js';
import { HANDED_BACK, type AttemptPayload, type AttemptResult } from '../../src/executor/contract.js';
import { PREFETCH_MIN_STREAK, PREFETCH_SHORT_RUN_MS } from '../../src/scheduler/prefetch.js';
import type { Operation } from '../../src/mesos/types.js';
import { waitFor } from '../harness/wait.js';
import { acceptRecordingDriver, bareLauncher, launchOnOffer, subscribed, suiteRedis, testJobService } from './coordinator-fixture.js';

const redis = suiteRedis();

/** A coordinator over one agent with room for one executor of four 1-cpu slots; `prefetch` is what the executor registered. */
async function bed(prefix: string, prefetch: number | undefined): Promise<{
  coordinator: Coordinator; jobs: JobService; clock: ManualClock; inFlight: Map<string, AttemptPayload>; peak: () => number; executorId: string; metrics: LocusMetrics;
}> {
  const metrics = createMetrics();
  // Each bed starts from an empty Redis: a job service recovers whatever it finds there.
  await redis.client().flushall();
  const clock = new ManualClock(1_000_000);
  const accepts: Operation[][] = [];
  const inFlight = new Map<string, AttemptPayload>();
  let peak = 0;
  const jobs = testJobService(redis.client(), clock, `/tmp/locus-prefetch-${prefix}`);
  const coordinator = new Coordinator({
    role: 'locus', clock, logger: silentLogger(), jobs, executors: new ExecutorBook(redis.client()), driver: acceptRecordingDriver(accepts),
    launcher: bareLauncher,
    dispatch: {
      enqueueMany: async (_executorId, payloads) => {
        for (const p of payloads) inFlight.set(p.attemptId, p);
        peak = Math.max(peak, inFlight.size);
      },
      adopt: async () => undefined,
      cancel: async () => undefined,
      ...(prefetch === undefined ? {} : { prefetch: () => prefetch }),
    },
    tenants: () => [{ name: 'default', weight: 1 }],
    metrics,
  });
  await subscribed(coordinator);
  await jobs.submit('default', validateJobSpec({
    name: prefix, retries: 0, tasks: Array.from({ length: 40 }, () => ({})),
    task: { command: ['true'], resources: { cpus: 1, mem: '64MiB', disk: '16MiB' } },
  }));
  await waitFor('tasks pending', () => jobs.index.size === 40);
  const executorId = await launchOnOffer(coordinator, accepts, `${prefix}-o1`, 4.1);
  // At least the slots: the prefetched one may follow in the next pass before this looks.
  await waitFor('the first attempts enqueued', () => inFlight.size >= 4);
  return { coordinator, jobs, clock, inFlight, peak: () => peak, executorId, metrics };
}

/** End the oldest attempt in flight after `ranMs`, as its executor would report it. */
async function finishOne(b: Awaited<ReturnType<typeof bed>>, ranMs: number, reason = 'EXITED'): Promise<AttemptPayload> {
  const p = b.inFlight.values().next().value as AttemptPayload;
  b.inFlight.delete(p.attemptId);
  const now = b.clock.now();
  const result: AttemptResult = reason === HANDED_BACK
    ? { attemptId: p.attemptId, taskId: p.taskId, state: 'LOST', exitCode: null, reason, message: 'handed back', startedAt: now, finishedAt: now, host: 'agent-1' }
    : { attemptId: p.attemptId, taskId: p.taskId, state: 'SUCCEEDED', exitCode: 0, reason, message: 'done', startedAt: now - ranMs, finishedAt: now, host: 'agent-1' };
  await b.coordinator.onAttemptResult(result, b.executorId);
  return p;
}

/** The executor's locus_executor_prefetch gauge, and the hand-backs counted. */
async function gauges(b: Awaited<ReturnType<typeof bed>>): Promise<{ ahead: number | undefined; handedBack: number }> {
  const ahead = (await b.metrics.executorPrefetch.get()).values.find((v) => v.labels.executor === b.executorId)?.value;
  const handedBack = (await b.metrics.attemptsHandedBack.get()).values[0]?.value ?? 0;
  return { ahead, handedBack };
}

/** Let the passes the results asked for run (they are coalesced and run on their own). */
async function settle(b: Awaited<ReturnType<typeof bed>>, want: number): Promise<void> {
  await waitFor(`${want} attempts in flight`, () => b.inFlight.size === want);
  // A pass that would overshoot has had its chance too.
  await new Promise((r) => setTimeout(r, 50));
}

describe('coordinator: prefetch', () => {
  it('sends a new executor its prefetch at once, stops after a long run, and starts again after a run of short results', async () => {
    const b = await bed('on', 1);
    try {
      expect(PREFETCH_MIN_STREAK).toBe(4);
      // Nothing says a new executor's tasks last: its slots and one more ahead.
      await settle(b, 5);
      expect((await gauges(b)).ahead).toBe(1);
      // A long run ends that: back to the slots (the freed place is not refilled).
      await finishOne(b, PREFETCH_SHORT_RUN_MS + 1);
      await settle(b, 4);
      expect(b.inFlight.size).toBe(4);
      expect(await gauges(b)).toEqual({ ahead: 0, handedBack: 0 });
      // Short results, one by one: each slot is refilled, no more, until four came in a row.
      for (let i = 0; i < PREFETCH_MIN_STREAK - 1; i++) {
        await finishOne(b, 200);
        await settle(b, 4);
      }
      expect(await gauges(b)).toEqual({ ahead: 0, handedBack: 0 });
      await finishOne(b, 200);
      // The fourth short result in a row: the slot is refilled and one more sent ahead.
      await settle(b, 5);
      expect(b.inFlight.size).toBe(5);
      expect((await gauges(b)).ahead).toBe(1);
      // An attempt handed back: no prefetch after it, and its task is pending again, uncounted.
      const back = await finishOne(b, 0, HANDED_BACK);
      await settle(b, 4);
      expect(await gauges(b)).toEqual({ ahead: 0, handedBack: 1 });
      const rec = await b.jobs.getTaskRecord(back.taskId);
      expect(rec?.attempts[0]).toMatchObject({ state: 'LOST', reason: HANDED_BACK });
      expect(rec?.failures).toBe(0);
      expect(['PENDING', 'RUNNING']).toContain(rec?.state);
    } finally {
      b.coordinator.close();
    }
  });

  it('never sends more than its slots to an executor that does not prefetch', async () => {
    const b = await bed('off', undefined);
    try {
      for (let i = 0; i < 12; i++) {
        await finishOne(b, 50);
        await settle(b, 4);
      }
      expect(b.peak()).toBe(4);
    } finally {
      b.coordinator.close();
    }
  });
});
