/**
 * Executors that cannot start, through the coordinator on a real Redis with a scripted master:
 * an executor whose Mesos task fails before it registers holds launches on its agent (its offers
 * are declined for the hold, which doubles), its attempts come back LOST uncounted with reason
 * EXECUTOR_START_FAILED, and after three failed rounds with nowhere else to go the waiting job
 * fails EXECUTOR_START_FAILED naming the Mesos status; so do executors that register and then
 * fail on the first attempts they are handed. Executors that finished an attempt and then died,
 * executors killed, and agents lost, hold nothing and fail nothing. A give-up racing a pass that starts one of the
 * job's attempts never leaves the job FAILED with that attempt running.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { ExecutorBook } from '../../src/scheduler/executors.js';
import { Coordinator, type ExecutorLauncher, type MesosDriver } from '../../src/scheduler/coordinator.js';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import type { AttemptRecord } from '../../src/scheduler/jobs/model.js';
import { LocalityLevel } from '../../src/core/locality.js';
import type { Operation, TaskInfo } from '../../src/mesos/types.js';
import { waitFor } from '../harness/wait.js';
import { acceptRecordingDriver, bareLauncher, roleOffer, subscribed, testJobService } from './coordinator-fixture.js';
import { createMetrics } from '../../src/obs/metrics.js';

let redis: TestRedis;
let client: Redis;

beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
  client = redis.client();
});

afterAll(async () => {
  client.disconnect();
  await redis.dispose();
});

/** A master that records ACCEPTs' launches and declines. */
function recordingDriver(launched: TaskInfo[][], declined: { ids: readonly string[]; seconds: number }[]): MesosDriver {
  return {
    ...acceptRecordingDriver([], declined),
    accept: async (_ids, ops: readonly Operation[]) => {
      for (const op of ops) if (op.type === 'LAUNCH') launched.push([...op.launch.task_infos]);
    },
  };
}

interface Bed {
  clock: ManualClock;
  jobs: JobService;
  coordinator: Coordinator;
  launched: TaskInfo[][];
  declined: { ids: readonly string[]; seconds: number }[];
  metrics: ReturnType<typeof createMetrics>;
  executors: ExecutorBook;
}

async function bed(name: string, launcher: ExecutorLauncher = bareLauncher): Promise<Bed> {
  await client.flushall();
  const clock = new ManualClock(1_000_000);
  const jobs = testJobService(client, clock, `/tmp/locus-${name}-out`);
  const launched: TaskInfo[][] = [];
  const declined: { ids: readonly string[]; seconds: number }[] = [];
  const metrics = createMetrics();
  const executors = new ExecutorBook(client);
  const coordinator = new Coordinator({
    role: 'locus', clock, logger: silentLogger(), metrics, jobs, executors,
    driver: recordingDriver(launched, declined), launcher,
    dispatch: { enqueueMany: async () => undefined, adopt: async () => undefined, cancel: async () => undefined },
    tenants: () => [{ name: 'default', weight: 1 }],
    // Without the minute of failures a give-up otherwise waits for (tested in the unit test).
    executorStarts: { giveUpAfterMs: 0 },
  });
  await subscribed(coordinator);
  return { clock, jobs, coordinator, launched, declined, metrics, executors };
}

const SPEC = { name: 'never-starts', retries: 0, tasks: [{}, {}], task: { command: ['true'], resources: { cpus: 1, mem: '64MiB', disk: '16MiB' } } };

/**
 * Submit a one-task job, fail its executor's start on agent-1 once, and offer agent-1 again: the
 * offer is declined for the hold. Returns the job.
 */
async function oneFailedThenHeld(b: Bed): Promise<{ id: string }> {
  const job = await b.jobs.submit('default', validateJobSpec({ ...SPEC, tasks: [{}] }));
  await waitFor('task pending', () => b.jobs.index.size === 1);
  const executorId = await launchOn(b, 1, 'o1');
  await update(b, executorId, 'TASK_FAILED', undefined, 'Command exited with status 3');
  await waitFor('the task pending', () => b.jobs.index.size === 1);
  await b.coordinator.handleEvent({ type: 'OFFERS', offers: { offers: [roleOffer('held', 'S1', 'agent-1', 4)] } });
  await waitFor('the held offer declined', () => b.declined.some((x) => x.ids.includes('held')));
  return job;
}

/** Offer agent S1 and wait for the executor launched on it (the `n`th launch); returns its id. */
async function launchOn(b: Bed, n: number, offerId: string): Promise<string> {
  await b.coordinator.handleEvent({ type: 'OFFERS', offers: { offers: [roleOffer(offerId, 'S1', 'agent-1', 4)] } });
  const infos = await waitFor(`launch ${n}`, () => b.launched.length >= n && b.launched[n - 1]);
  const id = infos[0]?.task_id.value;
  if (id === undefined) throw new Error('no executor in the launch');
  return id;
}

async function update(b: Bed, executorId: string, state: 'TASK_RUNNING' | 'TASK_FAILED' | 'TASK_KILLED', reason?: string, message?: string): Promise<void> {
  await b.coordinator.handleEvent({ type: 'UPDATE', update: { status: {
    task_id: { value: executorId }, state, agent_id: { value: 'S1' }, uuid: 'dXVpZA==',
    ...(reason === undefined ? {} : { reason }), ...(message === undefined ? {} : { message }),
  } } });
}

describe('coordinator: executors that fail to start', () => {
  it('holds launches on the agent, then fails the waiting job EXECUTOR_START_FAILED with the Mesos status', async () => {
    const b = await bed('start-fail');
    try {
      const job = await b.jobs.submit('default', validateJobSpec(SPEC));
      await waitFor('tasks pending', () => b.jobs.index.size === 2);
      const holds: number[] = [];
      for (let round = 1; round <= 3; round++) {
        const executorId = await launchOn(b, round, `o${round}`);
        // The next pass hands the waiting tasks to the launching executor.
        await waitFor('tasks on the launching executor', () => b.jobs.attemptsOnExecutor(executorId).length === 2);
        await update(b, executorId, 'TASK_FAILED', 'REASON_CONTAINER_LAUNCH_FAILED', `Failed to launch container: exec /nope: no such file (round ${round})`);
        if (round === 3) break;
        await waitFor('the tasks pending again', () => b.jobs.index.size === 2);
        // An offer from the agent during its hold launches nothing: declined for the rest of the hold.
        const before = b.declined.length;
        await b.coordinator.handleEvent({ type: 'OFFERS', offers: { offers: [roleOffer(`held${round}`, 'S1', 'agent-1', 4)] } });
        const d = await waitFor('the held offer declined', () => b.declined.slice(before).find((x) => x.ids.includes(`held${round}`)));
        holds.push(d.seconds);
        expect(b.launched.length).toBe(round);
        b.clock.advance(d.seconds * 1000);
      }
      expect(holds).toEqual([1, 2]);
      const failed = await waitFor('the job failed', async () => {
        const j = await b.jobs.get(job.id);
        return j.state === 'FAILED' ? j : undefined;
      });
      expect(failed.message).toMatch(/^EXECUTOR_START_FAILED: no executor could be started for the job's tasks: 3 launches in a row on agent-1 ended before the executor registered, the last with TASK_FAILED \(REASON_CONTAINER_LAUNCH_FAILED\): Failed to launch container: exec \/nope: no such file \(round 3\)$/);
      // Its tasks' attempts were given back uncounted, saying why.
      const rec = await b.jobs.getTaskRecord(`${job.id}.0.0`);
      expect(rec?.failures).toBe(0);
      expect(rec?.attempts.map((a) => [a.state, a.reason])).toEqual([['LOST', 'EXECUTOR_START_FAILED'], ['LOST', 'EXECUTOR_START_FAILED'], ['LOST', 'EXECUTOR_START_FAILED']]);
      expect(rec?.attempts[2]?.message).toContain('failed to start: TASK_FAILED (REASON_CONTAINER_LAUNCH_FAILED)');
      // explain names the code, for attempted tasks and for the job's others alike.
      const ex = await b.coordinator.explain(`${job.id}.0.1`);
      expect(ex.code).toBe('EXECUTOR_START_FAILED');
      expect(ex.message).toBe(failed.message);
      expect((await b.metrics.executorStartFailures.get()).values.reduce((n, v) => n + v.value, 0)).toBe(3);
      expect((await b.metrics.jobsGaveUpOnExecutors.get()).values[0]?.value).toBe(1);
      expect(b.jobs.index.size).toBe(0);
    } finally {
      b.coordinator.close();
    }
  });

  it('explains a task waiting out a hold as EXECUTOR_START_BACKOFF', async () => {
    const b = await bed('start-backoff');
    try {
      const job = await oneFailedThenHeld(b);
      const ex = await b.coordinator.explain(`${job.id}.0.0`);
      expect(ex.code).toBe('EXECUTOR_START_BACKOFF');
      expect(ex.message).toContain('executors failed to start on agent-1: 1 launch(es) in a row ended before the executor registered, the last with TASK_FAILED: Command exited with status 3');
      expect(ex.until).toBe(b.clock.now() + 1000);
    } finally {
      b.coordinator.close();
    }
  });

  it('says EXECUTOR_START_BACKOFF only to tasks that could run on a held agent', async () => {
    const b = await bed('start-backoff-whose');
    try {
      const failing = await oneFailedThenHeld(b);
      // One job may run only on agent-2 (which has not offered), another anywhere; neither lost attempts on agent-1.
      const elsewhere = await b.jobs.submit('default', validateJobSpec({ ...SPEC, name: 'on-agent-2', tasks: [{}], constraints: [{ hostname: 'agent-2' }] }));
      const anywhere = await b.jobs.submit('default', validateJobSpec({ ...SPEC, name: 'anywhere', tasks: [{}] }));
      const tooBig = await b.jobs.submit('default', validateJobSpec({ ...SPEC, name: 'too-big', tasks: [{}], task: { ...SPEC.task, resources: { ...SPEC.task.resources, cpus: 16 } } }));
      await waitFor('their tasks pending', () => b.jobs.index.size === 4);
      expect((await b.coordinator.explain(`${failing.id}.0.0`)).code).toBe('EXECUTOR_START_BACKOFF');
      const held = await b.coordinator.explain(`${anywhere.id}.0.0`);
      expect(held.code).toBe('EXECUTOR_START_BACKOFF');
      expect(held.message).toContain('executors failed to start on agent-1');
      // Placement's own reason for the task agent-1 cannot serve: a constraint, or an offer it does not fit.
      for (const job of [elsewhere, tooBig]) {
        const why = await b.coordinator.explain(`${job.id}.0.0`);
        expect(why.code).not.toBe('EXECUTOR_START_BACKOFF');
        expect(why.message).not.toContain('agent-1');
      }
    } finally {
      b.coordinator.close();
    }
  });

  it('neither holds nor fails after executors that registered and then died having finished an attempt, or were killed', async () => {
    const b = await bed('start-ok-then-lost');
    try {
      const job = await b.jobs.submit('default', validateJobSpec({ ...SPEC, retries: 10 }));
      await waitFor('tasks pending', () => b.jobs.index.size === 2);
      for (let round = 1; round <= 5; round++) {
        const executorId = await launchOn(b, round, `o${round}`);
        // Registered (the bare launcher is ready at once), then lost.
        await update(b, executorId, 'TASK_RUNNING');
        const onIt = await waitFor('tasks on the executor', () => b.jobs.attemptsOnExecutor(executorId).length === 2 && b.jobs.attemptsOnExecutor(executorId));
        if (round % 2 === 1) {
          // One attempt's workload ran (and failed, counted): the executor serves; its crash after is a crash.
          const first = onIt.find((a) => a.taskId === `${job.id}.0.0`);
          if (first === undefined) throw new Error('task 0 not on the executor');
          await b.coordinator.onAttemptResult({
            attemptId: first.attemptId, taskId: first.taskId, state: 'FAILED', exitCode: 1, reason: 'EXIT_NONZERO', message: 'exit 1',
            startedAt: b.clock.now(), finishedAt: b.clock.now(), host: 'agent-1',
          }, executorId);
          await update(b, executorId, 'TASK_FAILED', 'REASON_EXECUTOR_TERMINATED', 'Executor terminated');
        } else {
          // Killed (an operator, or Locus) before any attempt finished: a kill, not a failure to serve.
          await update(b, executorId, 'TASK_KILLED', undefined, 'Command terminated with signal Terminated');
        }
        await waitFor('the tasks pending again', () => b.jobs.index.size === 2);
      }
      // No hold: the next offer launches at once.
      await launchOn(b, 6, 'o6');
      expect((await b.jobs.get(job.id)).state).toBe('RUNNING');
      const rec = await b.jobs.getTaskRecord(`${job.id}.0.1`);
      expect(rec?.attempts.every((a) => a.reason === 'EXECUTOR_LOST' || a.reason === 'EXECUTOR_EXITED' || a.state === 'RUNNING')).toBe(true);
      expect((await b.metrics.executorStartFailures.get()).values.length).toBe(0);
    } finally {
      b.coordinator.close();
    }
  });

  it('holds launches after executors that registered and then failed before finishing any attempt, and gives up on them', async () => {
    const b = await bed('start-registered-crash');
    try {
      const job = await b.jobs.submit('default', validateJobSpec(SPEC));
      await waitFor('tasks pending', () => b.jobs.index.size === 2);
      const holds: number[] = [];
      for (let round = 1; round <= 3; round++) {
        const executorId = await launchOn(b, round, `o${round}`);
        // It registers every time, and dies as soon as it runs the attempts it was given.
        await update(b, executorId, 'TASK_RUNNING');
        await waitFor('registered', () => b.executors.get(executorId)?.state === 'RUNNING');
        await waitFor('tasks on the executor', () => b.jobs.attemptsOnExecutor(executorId).length === 2);
        await update(b, executorId, 'TASK_FAILED', 'REASON_EXECUTOR_TERMINATED', `Command terminated with signal Segmentation fault (round ${round})`);
        if (round === 3) break;
        await waitFor('the tasks pending again', () => b.jobs.index.size === 2);
        const before = b.declined.length;
        await b.coordinator.handleEvent({ type: 'OFFERS', offers: { offers: [roleOffer(`held${round}`, 'S1', 'agent-1', 4)] } });
        const d = await waitFor('the held offer declined', () => b.declined.slice(before).find((x) => x.ids.includes(`held${round}`)));
        holds.push(d.seconds);
        b.clock.advance(d.seconds * 1000);
      }
      expect(holds).toEqual([1, 2]);
      const failed = await waitFor('the job failed', async () => {
        const j = await b.jobs.get(job.id);
        return j.state === 'FAILED' ? j : undefined;
      });
      expect(failed.message).toBe('EXECUTOR_START_FAILED: no executor could be started for the job\'s tasks: 3 launches in a row on agent-1 ended before the executor registered or finished an attempt, the last with TASK_FAILED (REASON_EXECUTOR_TERMINATED): Command terminated with signal Segmentation fault (round 3) after it registered, before it finished any attempt');
      const rec = await b.jobs.getTaskRecord(`${job.id}.0.0`);
      expect(rec?.failures).toBe(0);
      expect(rec?.attempts.map((a) => a.reason)).toEqual(['EXECUTOR_START_FAILED', 'EXECUTOR_START_FAILED', 'EXECUTOR_START_FAILED']);
      expect(rec?.attempts[0]?.message).toContain('failed before it finished any attempt');
    } finally {
      b.coordinator.close();
    }
  });

  it('gives nothing up while a launch after its agent\'s last failure is still undecided', async () => {
    const b = await bed('start-undecided');
    /** Offer `agent` and wait for the `n`th launch; returns its executor's id. */
    const launchAt = async (n: number, offerId: string, agent: string, host: string): Promise<string> => {
      await b.coordinator.handleEvent({ type: 'OFFERS', offers: { offers: [roleOffer(offerId, agent, host, 4)] } });
      const infos = await waitFor(`launch ${n}`, () => b.launched.length >= n && b.launched[n - 1]);
      const id = infos[0]?.task_id.value;
      if (id === undefined || infos[0]?.agent_id.value !== agent) throw new Error(`launch ${n} not on ${agent}`);
      return id;
    };
    const failed = async (executorId: string, agent: string, message: string): Promise<void> => {
      await b.coordinator.handleEvent({ type: 'UPDATE', update: { status: {
        task_id: { value: executorId }, state: 'TASK_FAILED', agent_id: { value: agent }, uuid: 'dXVpZA==', message,
      } } });
    };
    try {
      // S2 fails three rounds: the job waiting through them gives up (S2 is all that offered).
      const first = await b.jobs.submit('default', validateJobSpec(SPEC));
      await waitFor('tasks pending', () => b.jobs.index.size === 2);
      for (let round = 1; round <= 3; round++) {
        const id = await launchAt(round, `s2-${round}`, 'S2', 'agent-2');
        await waitFor('tasks on the launching executor', () => b.jobs.attemptsOnExecutor(id).length === 2);
        await failed(id, 'S2', `broken (round ${round})`);
        b.clock.advance(5000);
      }
      await waitFor('the first job failed', async () => (await b.jobs.get(first.id)).state === 'FAILED');
      // S2 is mended: its next launch (after its hold) takes a new job's task and is starting.
      const onS2 = await b.jobs.submit('default', validateJobSpec({ ...SPEC, name: 'on-s2', tasks: [{}] }));
      await waitFor('task pending', () => b.jobs.index.size === 1);
      const mended = await launchAt(4, 's2-4', 'S2', 'agent-2');
      await waitFor('the task on the launching executor', () => b.jobs.attemptsOnExecutor(mended).length === 1);
      // Meanwhile a job of another shape (it fits no slot of S2's executor) waits while S1 fails three rounds.
      const other = await b.jobs.submit('default', validateJobSpec({ ...SPEC, name: 'other-shape', tasks: [{}], task: { ...SPEC.task, resources: { ...SPEC.task.resources, cpus: 2 } } }));
      await waitFor('its task pending', () => b.jobs.index.size === 1);
      for (let round = 1; round <= 3; round++) {
        const id = await launchAt(4 + round, `s1-${round}`, 'S1', 'agent-1');
        await waitFor('its task on the launching executor', () => b.jobs.attemptsOnExecutor(id).length === 1);
        await failed(id, 'S1', `broken too (round ${round})`);
        // Its attempt comes back (uncounted) in every round; after the third the job stays.
        await waitFor('its task pending again', async () => b.jobs.index.size === 1 || (await b.jobs.get(other.id)).state !== 'RUNNING');
        b.clock.advance(5000);
      }
      // Every agent that offered is failing, but S2's launch since its last failure is undecided.
      expect((await b.jobs.get(other.id)).state).toBe('RUNNING');
      expect((await b.jobs.get(onS2.id)).state).toBe('RUNNING');
      // Decided: it failed as well. Now nothing is left that could start an executor.
      await failed(mended, 'S2', 'broken after all');
      await waitFor('the other job failed', async () => (await b.jobs.get(other.id)).state === 'FAILED');
      await waitFor('the job on S2 failed', async () => (await b.jobs.get(onS2.id)).state === 'FAILED');
    } finally {
      b.coordinator.close();
    }
  });

  it('holds nothing after launching executors lost with their agent', async () => {
    const b = await bed('start-agent-lost');
    try {
      const job = await b.jobs.submit('default', validateJobSpec(SPEC));
      await waitFor('tasks pending', () => b.jobs.index.size === 2);
      for (let round = 1; round <= 4; round++) {
        const executorId = await launchOn(b, round, `o${round}`);
        await waitFor('tasks on the launching executor', () => b.jobs.attemptsOnExecutor(executorId).length === 2);
        if (round % 2 === 1) await b.coordinator.handleEvent({ type: 'FAILURE', failure: { agent_id: { value: 'S1' } } });
        else await update(b, executorId, 'TASK_FAILED', 'REASON_SLAVE_REMOVED', 'agent removed');
        await waitFor('the tasks pending again', () => b.jobs.index.size === 2);
      }
      await launchOn(b, 5, 'o5');
      expect((await b.jobs.get(job.id)).state).toBe('RUNNING');
    } finally {
      b.coordinator.close();
    }
  });
});

/** A store that runs `between` once an attempt's start has landed in Redis, before its caller hears of it. */
class StartRacingStore extends JobStore {
  between: (() => Promise<void>) | undefined;

  override async startAttempt(taskId: string, attempt: AttemptRecord): Promise<boolean> {
    const started = await super.startAttempt(taskId, attempt);
    const hook = this.between;
    this.between = undefined;
    await hook?.();
    return started;
  }
}

describe('giving up on executor starts', () => {
  it('refuses while an attempt of the job is being started, even before the service counts it as running', async () => {
    await client.flushall();
    const clock = new ManualClock(1_000_000);
    const store = new StartRacingStore(client);
    const jobs = new JobService({
      store, clock, logger: silentLogger(), outputRoot: '/tmp/locus-give-up-race-out',
      resolver: { resolve: async () => [] },
      limits: { maxPendingTasksPerTenant: 100, maxTasksPerJob: 100 },
    });
    const job = await jobs.submit('default', validateJobSpec({ ...SPEC, tasks: [{}] }));
    await waitFor('task pending', () => jobs.index.size === 1);
    let gaveUp: boolean | undefined;
    // The coordinator's give-up after a start failure, arriving while a pass's start is in flight.
    store.between = async () => { gaveUp = await jobs.giveUp(job.id, 'EXECUTOR_START_FAILED: raced'); };
    const payload = await jobs.startAttempt(`${job.id}.0.0`, { id: 'locus-exec-1', host: 'agent-1' }, LocalityLevel.ANY);
    expect(gaveUp).toBe(false);
    expect(payload).toBeDefined();
    expect((await jobs.get(job.id)).state).toBe('RUNNING');
    expect((await jobs.getTaskRecord(`${job.id}.0.0`))?.state).toBe('RUNNING');
    // Once the attempt is back, nothing runs and the give-up goes through.
    await jobs.finishAttempt({
      attemptId: payload?.attemptId ?? '', taskId: `${job.id}.0.0`, state: 'LOST', exitCode: null, reason: 'EXECUTOR_START_FAILED',
      message: 'lost', startedAt: clock.now(), finishedAt: clock.now(), host: '',
    });
    expect(await jobs.giveUp(job.id, 'EXECUTOR_START_FAILED: for good')).toBe(true);
    expect((await jobs.get(job.id)).state).toBe('FAILED');
  });
});
