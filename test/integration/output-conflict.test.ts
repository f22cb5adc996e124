/**
 * A job whose `output:` directory already holds what its tasks did not commit, end to end on the
 * real local cluster (real Mesos agents, executors and redis-server, the commit ledger in Redis):
 * - files a user put there: the task fails at once with OUTPUT_CONFLICT (one attempt, not
 *   retried), its message naming the directory and what to do, and the job ends FAILED; the
 *   user's file is untouched and no staging copy is left;
 * - the output of a purged job (its `output:` name is free again, its files are not): the same,
 *   where before the task took the other job's `_SUCCESS` for its own commit and the job ended
 *   SUCCEEDED holding the other job's data.
 * No commit record is left that a later attempt could read as the task's commit.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { commitKey, decodeCommittedOutput } from '../../src/executor/contract.js';
import { STAGING_DIR } from '../../src/executor/output.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { startBed, startInProcess, waitForJob, type Bed } from './framework-harness.js';

let bed: Bed;
let fw: RunningFramework;
let admin: Redis;

beforeAll(async () => {
  bed = await startBed({ agents: 2, files: 2 });
  fw = await startInProcess(bed);
  admin = bed.redis.client();
}, 60_000);

afterAll(async () => {
  admin?.disconnect();
  await fw?.stop();
  await bed?.dispose();
});

const RES = { cpus: 0.2, mem: '64MiB', disk: '16MiB' };

/** One task writing `text` into its output, after `sleep` seconds. */
function oneTask(name: string, output: string, text: string, sleep = 0): ReturnType<typeof validateJobSpec> {
  return validateJobSpec({
    name, output,
    tasks: [{ command: ['sh', '-c', `sleep ${sleep}; echo ${text} > '{output}/part'`] }],
    task: { command: ['true'], resources: RES },
  });
}

/** The task's attempts, its commit record (if any) and what is left in its stage's staging directory. */
async function afterMath(jobId: string, taskDir: string): Promise<{ reasons: string[]; messages: string[]; record: string | null; staging: string[] }> {
  const task = await fw.jobs.getTaskRecord(`${jobId}.0.0`);
  const stagingDir = join(taskDir, '..', STAGING_DIR);
  return {
    reasons: (task?.attempts ?? []).map((a) => a.reason ?? ''),
    messages: (task?.attempts ?? []).map((a) => a.message ?? ''),
    record: await admin.get(commitKey(`${jobId}.0.0`)),
    staging: existsSync(stagingDir) ? readdirSync(stagingDir) : [],
  };
}

describe('a job whose output directory holds what it did not commit', () => {
  it('fails with OUTPUT_CONFLICT, once, when a user file is in the way; the file is untouched', async () => {
    // The task sleeps: the file is put in its directory before it commits.
    const job = await fw.jobs.submit('default', oneTask('in-the-way', 'conflict-user', 'mine', 2));
    const taskDir = join(job.outputDir, 'main', '00000');
    mkdirSync(taskDir, { recursive: true });
    writeFileSync(join(taskDir, 'notes.txt'), 'the user\'s own\n');

    const done = await waitForJob(() => fw.jobs.get(job.id), 90_000);
    expect(done.state).toBe('FAILED');
    const { reasons, messages, record, staging } = await afterMath(job.id, taskDir);
    // Not retried: every attempt would find the same directory.
    expect(reasons).toEqual(['OUTPUT_CONFLICT']);
    expect(messages[0]).toContain(taskDir);
    expect(messages[0]).toContain("'notes.txt'");
    expect(messages[0]).toContain('Choose another `output:`');
    expect(readdirSync(taskDir)).toEqual(['notes.txt']);
    expect(readFileSync(join(taskDir, 'notes.txt'), 'utf8')).toBe('the user\'s own\n');
    // Found before the ledger was asked: no record for a later attempt to read as a commit.
    expect(record).toBeNull();
    expect(staging).toEqual([]);
  }, 120_000);

  it('fails with OUTPUT_CONFLICT, never SUCCEEDED, when a purged job\'s output is there; that output is untouched', async () => {
    const first = await fw.jobs.submit('default', oneTask('first', 'conflict-reused', 'first'));
    const firstDone = await waitForJob(() => fw.jobs.get(first.id), 90_000);
    expect(firstDone.state).toBe('SUCCEEDED');
    const taskDir = join(firstDone.outputDir, 'main', '00000');
    const firstMarker = readFileSync(join(taskDir, '_SUCCESS'), 'utf8');
    // Purging frees the name `conflict-reused`, not the directory: its files stay.
    await fw.jobs.purge(first.id, 'default');

    const second = await fw.jobs.submit('default', oneTask('second', 'conflict-reused', 'second'));
    expect(second.outputDir).toBe(firstDone.outputDir);
    const done = await waitForJob(() => fw.jobs.get(second.id), 90_000);
    expect(done.state).toBe('FAILED');
    const { reasons, messages, record, staging } = await afterMath(second.id, taskDir);
    expect(reasons).toEqual(['OUTPUT_CONFLICT']);
    expect(messages[0]).toContain(taskDir);
    expect(messages[0]).toContain(JSON.parse(firstMarker).attemptId);
    expect(readFileSync(join(taskDir, 'part'), 'utf8')).toBe('first\n');
    expect(readFileSync(join(taskDir, '_SUCCESS'), 'utf8')).toBe(firstMarker);
    if (record !== null) expect(decodeCommittedOutput(JSON.parse(record)).conflict).toBeDefined();
    expect(staging).toEqual([]);
  }, 180_000);
});
