/**
 * A stage of `outputs: none` (tasks whose effect is elsewhere: a database load, a call to a
 * service) runs on the real local cluster with real executors and linux isolation: nothing is
 * staged, committed or recorded for its tasks, each still runs under its tenant's uid (which an
 * attempt with an output reads from the output's path, and one without from its payload), and
 * a later stage that commits output runs after it as usual.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { describeWith, LINUX_ISOLATION, ROOT } from '../harness/requires.js';
import { DEFAULT_TENANT_UIDS, tenantUid } from '../../src/executor/isolation/tenant.js';
import { commitKey } from '../../src/executor/contract.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { api, commitRecordOf, startBed, startInProcess, waitForJob, type Bed } from './framework-harness.js';
import { hiddenEntriesSettled } from '../harness/staging.js';

describeWith([ROOT, LINUX_ISOLATION], 'a stage of outputs: none', () => {
  let bed: Bed | undefined;
  let fw: RunningFramework | undefined;
  let conn: Redis | undefined;

  beforeAll(async () => {
    bed = await startBed({ agents: 2, files: 1 });
    fw = await startInProcess(bed);
    conn = bed.redis.client();
  }, 120_000);

  afterAll(async () => {
    conn?.disconnect();
    await fw?.stop();
    await bed?.dispose();
  });

  it('runs its tasks as the tenant, stages and commits nothing for them, and the next stage commits as usual', async () => {
    if (!bed || !fw || !conn) throw new Error('set-up failed');
    const spec = validateJobSpec({
      name: 'notify-then-sum',
      stages: [
        {
          name: 'notify',
          outputs: 'none',
          // What the task did goes to its sandbox's stdout: there is no {output} to write to.
          tasks: [0, 1, 2].map(() => ({ command: ['sh', '-c', 'echo "uid=$(id -u) task={task.index} out=${LOCUS_OUTPUT_DIR:-none}"'] })),
          task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } },
        },
        {
          name: 'sum',
          tasks: [{ command: ['sh', '-c', "echo summed > '{output}/total'"] }],
          task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } },
        },
      ],
    });
    const job = await fw.jobs.submit('alpha', spec);
    const done = await waitForJob(() => fw?.jobs.get(job.id) ?? Promise.reject(new Error('no framework')), 90_000);
    const uid = tenantUid('alpha', DEFAULT_TENANT_UIDS);
    for (const index of [0, 1, 2]) {
      const taskId = `${job.id}.0.${index}`;
      const rec = await fw.jobs.getTaskRecord(taskId);
      const attempt = rec?.attempts[0];
      const sandbox = attempt?.sandboxDir;
      const stdout = sandbox === undefined ? '' : readFileSync(join(sandbox, 'stdout'), 'utf8');
      expect(rec?.state, `${attempt?.message ?? ''} ${stdout}`).toBe('SUCCEEDED');
      // Its tenant's uid (from the payload: no output path names it), and no output directory.
      expect(stdout.trim()).toBe(`uid=${uid} task=${index} out=none`);
      expect(rec?.outputPath).toBeUndefined();
      // Nothing recorded in the commit ledger.
      expect(await conn.get(commitKey(taskId))).toBeNull();
    }
    expect(done.state).toBe('SUCCEEDED');
    // Nothing staged or committed for the stage on any host: its directory was never made.
    expect(existsSync(join(done.outputDir, 'notify'))).toBe(false);
    // The next stage commits its output as every stage did before.
    expect(readFileSync(join(done.outputDir, 'sum', '00000', 'total'), 'utf8')).toBe('summed\n');
    expect((await commitRecordOf(conn, `${job.id}.1.0`)).path).toBe(join(done.outputDir, 'sum', '00000'));
    expect(await hiddenEntriesSettled(join(done.outputDir, 'sum'))).toEqual([]);
    // The job view over HTTP says which stage has no output (the CLI's `locus job` prints it).
    const view = await api(fw.httpUrl, 'a'.repeat(64), 'GET', `/v1/jobs/${job.id}`);
    expect(view.json['stages']).toEqual([
      { index: 0, name: 'notify', tasks: 3, outputs: 'none' },
      { index: 1, name: 'sum', tasks: 1, outputs: 'committed' },
    ]);
  }, 120_000);
});
