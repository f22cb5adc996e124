/**
 * A job whose inputs' storage is away while its stage's inputs are listed waits for it instead of
 * failing: the repository's WebHDFS server plays a NameNode out of service (503 from a proxy in
 * front of it, a refused connection, a NameNode starting up), listed through the real storage
 * registry by the real job service on a real Redis, with the job API over HTTP. The job says what
 * it waits for (its view, `explain`), jobs behind it keep running, and once the NameNode answers
 * its stage opens and it succeeds. A NameNode's "no" (no such file) still fails the job at once,
 * naming the input; a storage away past `input-storage-give-up` fails it with
 * INPUT_STORAGE_UNAVAILABLE; a restarted scheduler picks the wait up where the store left it. A
 * GlusterFS volume whose mount point is not mounted (a plain directory, as an unmounted FUSE mount
 * leaves it; as root, a real tmpfs mounted there later) is waited for too, not listed as empty.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { INPUT_STORAGE_UNAVAILABLE, WAITING_FOR_INPUT_STORAGE, type InputWait } from '../../src/scheduler/jobs/input-waits.js';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { JobStore } from '../../src/scheduler/jobs/store.js';
import { validateJobSpec, type JobSpec } from '../../src/scheduler/jobs/spec.js';
import { createStorageRegistry, type StorageRegistry } from '../../src/storage/registry.js';
import { fakeGlusterGetfattr, mountTmpfs, unmountAll } from '../harness/mounts.js';
import { freePort } from '../harness/ports.js';
import { ROOT, itWith } from '../harness/requires.js';
import { startWebHdfsServer, type WebHdfsServer } from '../harness/webhdfs-server.js';
import { TOKENS, resolver, startJobsApi, until, type JobsApi } from './api-jobs-fixture.js';

/** How long a stage waits for its inputs' storage here: long enough for the outages the tests end, short for the one they do not. */
const GIVE_UP_MS = 6_000;

let api: JobsApi;
let storage: StorageRegistry;
let nn: WebHdfsServer;
/** Holds the GlusterFS volume `gv0`'s mount point (see the unmounted-mount test). */
let glusterDir: string;
const retries: InputWait[] = [];

const files = [{ path: '/data/a.txt', size: 1000 }, { path: '/data/b.txt', size: 2000 }];
const hdfsJob = (name: string, input: string): JobSpec => validateJobSpec({ name, inputs: [input], split: 'file', task: { command: ['true'] } });

beforeAll(async () => {
  nn = await startWebHdfsServer({ files });
  glusterDir = realpathSync(mkdtempSync(join(tmpdir(), 'locus-input-mount-')));
  mkdirSync(join(glusterDir, 'gv0'));
  // What the framework builds (user.name set: listing goes through the webhdfs package first), without
  // a cache; local:// is the fixture's small dataset, for the ordinary jobs. The GlusterFS volume's
  // pathinfo comes from a stand-in getfattr: its mount is a tmpfs.
  storage = createStorageRegistry({
    cache: { ttlMs: 0 }, webhdfs: { user: 'alice', timeoutMs: 2_000 },
    gluster: { mounts: { gv0: join(glusterDir, 'gv0') }, getfattrBin: fakeGlusterGetfattr(glusterDir, 'gv0', 'host-a'), timeoutMs: 5_000 },
    backends: [{ schemes: ['local'], resolve: (uri, o) => resolver.resolve(uri, o) }],
  });
  api = await startJobsApi({ resolver: storage, inputWaits: { inputStorageGiveUpMs: GIVE_UP_MS, inputListingRetryMs: 100 } });
  api.jobs.on('inputRetry', (r) => retries.push(r.wait));
}, 30_000);

afterAll(async () => {
  await api?.close();
  await storage?.close();
  await nn?.close();
  unmountAll();
  if (glusterDir !== undefined) rmSync(glusterDir, { recursive: true, force: true });
});

async function http(path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${TOKENS.alpha}` } });
  return (await res.json()) as Record<string, unknown>;
}

/** Run every pending task of a job to success until the job ends. */
async function runToEnd(jobId: string): Promise<string> {
  for (;;) {
    const job = await api.jobs.get(jobId);
    if (job.state === 'SUCCEEDED' || job.state === 'FAILED' || job.state === 'CANCELLED') return job.state;
    for (const t of [...api.jobs.pendingTasks()].filter((p) => p.jobId === jobId)) await api.finish(t.taskId, await api.start(t.taskId));
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The storage is back: the stage opens with `tasks` tasks, the wait's message goes, and the job runs to success. */
async function opensAndSucceeds(jobId: string, tasks: number): Promise<void> {
  await api.waitPending(jobId, tasks);
  const running = await api.jobs.get(jobId);
  expect(running.state).toBe('RUNNING');
  expect(running.message).toBeUndefined();
  expect(await runToEnd(jobId)).toBe('SUCCEEDED');
}

describe('a stage whose inputs\' storage is away', () => {
  it('waits while the NameNode answers 503, says so, lets other jobs run, and succeeds once it answers', async () => {
    nn.setOutage({ status: 503 });
    onTestFinished(() => nn.setOutage(undefined));
    const input = `hdfs://127.0.0.1:${nn.port}/data/`;
    const job = await api.jobs.submit('alpha', hdfsJob('behind-an-outage', input));
    const waiting = await until('the job to say it waits', async () => {
      const j = await api.jobs.get(job.id);
      return j.message?.startsWith('waiting for the storage') === true ? j : undefined;
    });
    // Not failed: still resolving, its message naming the input, the last error and the next try.
    expect(waiting.state).toBe('RESOLVING');
    expect(waiting.message).toContain(`input ${input} of stage 'main'`);
    expect(waiting.message).toMatch(/HTTP 503/);
    expect(waiting.message).toMatch(/the next at \d{4}-\d\d-\d\dT/);
    // The job's HTTP view and `explain` of one of its (not yet listed) tasks say the same.
    expect((await http(`/v1/jobs/${job.id}`))['message']).toMatch(/^waiting for the storage of input/);
    const why = await http(`/v1/tasks/${job.id}.0.0/explain`);
    expect(why).toMatchObject({ taskId: `${job.id}.0.0`, state: 'PENDING', code: WAITING_FOR_INPUT_STORAGE });
    expect(String(why['message'])).toContain(input);
    expect(String(why['message'])).toMatch(/HTTP 503/);
    expect(Date.parse(String(why['until']))).toBeGreaterThan(Date.now() - 1_000);

    // Another job, submitted behind the waiting one, is listed, placed and finished meanwhile.
    const other = await api.jobs.submit('alpha', validateJobSpec({ name: 'ordinary', inputs: ['local://words/'], task: { command: ['true'] } }));
    await api.waitPending(other.id, 3);
    expect(await runToEnd(other.id)).toBe('SUCCEEDED');
    expect((await api.jobs.get(job.id)).state).toBe('RESOLVING');

    // The waiting job tried again with backoff, and is counted as retrying.
    await until('a few tries', async () => (retries.filter((r) => r.jobId === job.id).length >= 3 ? true : undefined));
    const mine = retries.filter((r) => r.jobId === job.id);
    expect(mine.map((r) => r.tries)).toEqual(mine.map((_, i) => i + 1));
    expect(mine[2]!.nextTryAt - mine[1]!.nextTryAt).toBeGreaterThan(0);

    // The NameNode is back: the stage opens with one task per file, the message of the wait goes.
    nn.setOutage(undefined);
    await opensAndSucceeds(job.id, 2);
  }, 30_000);

  it('waits while the NameNode refuses connections or is starting up, and lists the inputs once it serves', async () => {
    const port = await freePort();
    const input = `hdfs://127.0.0.1:${port}/data/a.txt`;
    const job = await api.jobs.submit('alpha', hdfsJob('namenode-down', input));
    const waiting = await until('the job to wait for a refused connection', async () => {
      const j = await api.jobs.get(job.id);
      return j.message?.startsWith('waiting for the storage') === true ? j : undefined;
    });
    expect(waiting.message).toMatch(/ECONNREFUSED/);
    // The NameNode process is up but still starting: it answers RetriableException, still waited out.
    const restarted = await startWebHdfsServer({ files, port, outage: { status: 403, exception: 'RetriableException' } });
    try {
      await until('a try against the starting NameNode', async () => ((restarted.counts.get('OUTAGE') ?? 0) > 0 ? true : undefined));
      await until('the message to name the NameNode starting up', async () => ((await api.jobs.get(job.id)).message?.includes('retry later') === true ? true : undefined));
      expect((await api.jobs.get(job.id)).state).toBe('RESOLVING');
      restarted.setOutage(undefined);
      await api.waitPending(job.id, 1);
      expect(await runToEnd(job.id)).toBe('SUCCEEDED');
    } finally {
      await restarted.close();
    }
  }, 30_000);

  itWith([ROOT], 'waits while a GlusterFS mount point is not mounted (a plain directory, which would list no files), and succeeds once it is mounted', async () => {
    const mount = join(glusterDir, 'gv0');
    // The whole volume: on the plain directory left behind, it listed as no files and the job failed.
    const input = 'glusterfs://gv0/';
    const job = await api.jobs.submit('alpha', hdfsJob('behind-an-unmounted-volume', input));
    const waiting = await until('the job to wait or fail', async () => {
      const j = await api.jobs.get(job.id);
      return j.message?.startsWith('waiting for the storage') === true || j.state === 'FAILED' ? j : undefined;
    });
    // Not FAILED with "no files": the storage is away, and the message says which mount is not mounted.
    expect({ state: waiting.state, message: waiting.message }).toMatchObject({ state: 'RESOLVING' });
    expect(waiting.message).toContain(`input ${input} of stage 'main'`);
    expect(waiting.message).toContain(`${mount} is not mounted: it is a plain directory on `);
    expect(waiting.message).toContain("the GlusterFS mount of volume 'gv0' is gone");
    await until('a second try', async () => (retries.filter((r) => r.jobId === job.id).length >= 2 ? true : undefined));
    expect((await api.jobs.get(job.id)).state).toBe('RESOLVING');

    // The volume is mounted again, with its files: the stage opens with one task per file.
    mountTmpfs(mount);
    mkdirSync(join(mount, 'logs'));
    writeFileSync(join(mount, 'logs', 'a.log'), 'a\n');
    writeFileSync(join(mount, 'logs', 'b.log'), 'b\n');
    await opensAndSucceeds(job.id, 2);
  }, 30_000);

  it('fails at once, naming the input, when the NameNode says the path does not exist', async () => {
    const input = `hdfs://127.0.0.1:${nn.port}/no/such/dir/`;
    const before = retries.length;
    const job = await api.jobs.submit('alpha', hdfsJob('missing-input', input));
    const failed = await api.waitState(job.id, ['FAILED']);
    expect(failed.message).toMatch(/^resolving inputs failed: /);
    expect(failed.message).toContain(input);
    expect(failed.message).toMatch(/no such file or directory/);
    // No wait, not one retry.
    expect(retries.length).toBe(before);
    expect(Date.now() - failed.createdAt).toBeLessThan(GIVE_UP_MS / 2);
  });

  it(`fails with ${INPUT_STORAGE_UNAVAILABLE}, naming the input and the last error, once the storage stays away past input-storage-give-up`, async () => {
    nn.setOutage({ status: 502 });
    try {
      const input = `hdfs://127.0.0.1:${nn.port}/data/b.txt`;
      const job = await api.jobs.submit('alpha', hdfsJob('never-back', input));
      const failed = await api.waitState(job.id, ['FAILED']).catch(async () => await until('the job to give up', async () => {
        const j = await api.jobs.get(job.id);
        return j.state === 'FAILED' ? j : undefined;
      }, GIVE_UP_MS * 3));
      expect(failed.message).toMatch(new RegExp(`^${INPUT_STORAGE_UNAVAILABLE}: the storage of input ${input.replace(/[.]/g, '\\.')} of stage 'main' stayed unreachable for \\d+ s \\(\\d+ tries; input-storage-give-up is 6 s\\); last error: .*HTTP 502`));
      expect(failed.finishedAt! - failed.createdAt).toBeGreaterThanOrEqual(GIVE_UP_MS - 100);
      const why = await http(`/v1/tasks/${job.id}.0.0/explain`);
      expect(why).toMatchObject({ state: 'FAILED', code: INPUT_STORAGE_UNAVAILABLE });
    } finally {
      nn.setOutage(undefined);
    }
  }, 30_000);

  it('is waited for again by a restarted scheduler, which opens the stage once the storage is back', async () => {
    nn.setOutage({ status: 503 });
    const input = `hdfs://127.0.0.1:${nn.port}/data/`;
    const options = {
      resolver: storage, clock: systemClock, logger: silentLogger(), outputRoot: '/tmp/locus-input-storage-test',
      limits: { maxPendingTasksPerTenant: 1000, maxTasksPerJob: 1000 }, inputStorageGiveUpMs: GIVE_UP_MS, inputListingRetryMs: 100,
    };
    const first = new JobService({ ...options, store: new JobStore(api.client) });
    const job = await first.submit('alpha', hdfsJob('across-a-restart', input));
    await until('the first scheduler to wait', async () => ((await first.get(job.id)).message?.startsWith('waiting') === true ? true : undefined));
    // The scheduler goes away (its timers with it); the job is left as the store has it.
    first.close();
    const second = new JobService({ ...options, store: new JobStore(api.client) });
    try {
      await second.recover();
      await until('the restarted scheduler to wait too', async () => (second.inputWaitsNow().some((w) => w.jobId === job.id) ? true : undefined));
      expect((await second.get(job.id)).state).toBe('RESOLVING');
      nn.setOutage(undefined);
      await until('the stage to open', async () => ([...second.pendingTasks()].filter((t) => t.jobId === job.id).length === 2 ? true : undefined));
      const opened = await second.get(job.id);
      expect(opened.state).toBe('RUNNING');
      expect(opened.message).toBeUndefined();
      expect(second.inputWaitsNow()).toEqual([]);
    } finally {
      second.close();
      nn.setOutage(undefined);
    }
  }, 30_000);
});
