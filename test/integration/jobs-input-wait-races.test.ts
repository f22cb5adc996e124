/**
 * A stage waiting for the storage of its inputs, and its job ending (cancelled, purged) or its
 * scheduler stopping (closed, fenced) while a retry of its listing is in flight. A scripted
 * storage port: its first tries fail as "away" (UNAVAILABLE); a chosen try blocks on a gate the
 * test opens once it has ended the job, and then answers files, "no such path" or "away". None of
 * this may reject a promise nobody awaits (Node ends the scheduler's process on one), announce a
 * cancelled job FAILED, or write for a job or a scheduler that is gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileLocations } from '../../src/core/blocks.js';
import { systemClock } from '../../src/core/clock.js';
import { LocusError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/obs/log.js';
import { JobService, type InputResolver } from '../../src/scheduler/jobs/service.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { startJobsApi, until, type JobsApi } from './api-jobs-fixture.js';

const GIVE_UP_MS = 1_500;

/** What the tries of one `flaky://` input do. */
interface Script {
  calls: number;
  /** Which try blocks on the gate. */
  readonly blockOn: number;
  readonly gate: Promise<void>;
  readonly open: () => void;
  blocked: boolean;
  /** The signal the blocked try was given. */
  signal: AbortSignal | undefined;
  /** What the blocked try answers once the gate opens. */
  readonly after: 'files' | 'away' | 'missing';
}
const scripts = new Map<string, Script>();

const files = (uri: string): FileLocations[] => [{ uri: `${uri}part-0`, size: 10, splits: [{ offset: 0, length: 10, hosts: ['agent-a'], racks: ['r1'] }] }];

const flaky: InputResolver = {
  async resolve(uri, options) {
    const s = scripts.get(uri);
    if (s === undefined) return files(uri);
    s.calls++;
    if (s.calls === s.blockOn) {
      s.blocked = true;
      s.signal = options.signal;
      // Deaf to the signal on purpose: a resolver may answer after its caller stopped waiting.
      await s.gate;
      if (s.after === 'files') return files(uri);
      if (s.after === 'missing') throw new LocusError('NOT_FOUND', `${uri}: no such file or directory`);
    }
    throw new LocusError('UNAVAILABLE', `${uri}: cannot reach the storage (ECONNREFUSED)`);
  },
};

function script(uri: string, blockOn: number, after: Script['after']): Script {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => { open = r; });
  const s: Script = { calls: 0, blockOn, gate, open, blocked: false, signal: undefined, after };
  scripts.set(uri, s);
  return s;
}

let api: JobsApi;
const rejections: unknown[] = [];
const onRejection = (err: unknown): void => { rejections.push(err); };

beforeAll(async () => {
  api = await startJobsApi({ resolver: flaky, inputWaits: { inputStorageGiveUpMs: GIVE_UP_MS, inputListingRetryMs: 100 } });
  process.on('unhandledRejection', onRejection);
}, 30_000);

afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  for (const s of scripts.values()) s.open();
  await api?.close();
});

const spec = (name: string, input: string) => validateJobSpec({ name, inputs: [input], split: 'file', task: { command: ['true'] } });
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 500));

/** A job service of its own on the fixture's Redis, with a store whose writes can be refused (a fenced scheduler). */
function ownService(): { jobs: JobService; refuseWrites: () => void } {
  const store = new JobStore(api.client);
  let refused = false;
  const refuse = (): never => { throw new LocusError('NOT_LEADER', 'this scheduler is no longer the leader: FENCED'); };
  const setState = store.setState.bind(store);
  const openStage = store.openStage.bind(store);
  store.setState = async (...args) => (refused ? refuse() : await setState(...args));
  store.openStage = async (...args) => (refused ? refuse() : await openStage(...args));
  const jobs = new JobService({
    store, resolver: flaky, clock: systemClock, logger: silentLogger(), outputRoot: '/tmp/locus-input-wait-races',
    limits: { maxPendingTasksPerTenant: 1000, maxTasksPerJob: 1000 }, inputStorageGiveUpMs: 60_000, inputListingRetryMs: 100,
  });
  return { jobs, refuseWrites: () => { refused = true; } };
}

describe('a job ended while a retry of its stage listing is in flight', () => {
  it('cancelled and purged, then the storage answers: nothing rejects, and the listing was aborted', async () => {
    const input = 'flaky://purged/';
    const s = script(input, 3, 'files');
    const job = await api.jobs.submit('alpha', spec('purged-while-retrying', input));
    await until('the third try to be in flight', async () => (s.blocked ? true : undefined));
    expect((await api.jobs.get(job.id)).state).toBe('RESOLVING');
    await api.jobs.cancel(job.id);
    expect(s.signal?.aborted).toBe(true);
    await api.jobs.purge(job.id);
    rejections.length = 0;
    s.open();
    await settle();
    expect(rejections.map((e) => String(e))).toEqual([]);
  });

  it('cancelled, then the storage answers "no such path": the job is announced CANCELLED only', async () => {
    const input = 'flaky://cancelled-then-missing/';
    const s = script(input, 3, 'missing');
    const events: string[] = [];
    const job = await api.jobs.submit('alpha', spec('cancelled-then-missing', input));
    api.jobs.on('event', (e) => { if (e.kind === 'job' && e.jobId === job.id) events.push(e.state); });
    await until('the third try to be in flight', async () => (s.blocked ? true : undefined));
    await api.jobs.cancel(job.id);
    s.open();
    await settle();
    expect((await api.jobs.get(job.id)).state).toBe('CANCELLED');
    // The job's event stream (SSE, locus_jobs_total{state}) says what the store says.
    expect(events.filter((e) => e !== 'RESOLVING')).toEqual(['CANCELLED']);
  });
});

describe('a scheduler stopped while a retry of a stage listing is in flight', () => {
  it('fenced (its writes refused), then the storage answers: nothing rejects and the job is left to the new leader', async () => {
    const input = 'flaky://fenced/';
    const s = script(input, 2, 'files');
    const { jobs, refuseWrites } = ownService();
    try {
      const job = await jobs.submit('alpha', spec('fenced-while-retrying', input));
      await until('the second try to be in flight', async () => (s.blocked ? true : undefined));
      refuseWrites();
      rejections.length = 0;
      s.open();
      await settle();
      expect(rejections.map((e) => String(e))).toEqual([]);
      expect((await api.store.get(job.id))?.state).toBe('RESOLVING');
    } finally {
      jobs.close();
    }
  });

  it('closed: the listing in flight is aborted and no wait is left to explain', async () => {
    const input = 'flaky://closed/';
    const s = script(input, 2, 'away');
    const { jobs } = ownService();
    const job = await jobs.submit('alpha', spec('closed-while-retrying', input));
    await until('the second try to be in flight', async () => (s.blocked ? true : undefined));
    expect(jobs.inputWaitsNow().map((w) => w.jobId)).toEqual([job.id]);
    jobs.close();
    expect(s.signal?.aborted).toBe(true);
    expect(jobs.inputWaitsNow()).toEqual([]);
    s.open();
    await settle();
    // A stopped instance writes nothing: the job still waits, for the next leader to list it.
    expect((await api.store.get(job.id))?.state).toBe('RESOLVING');
    expect(jobs.inputWaitsNow()).toEqual([]);
  });
});
