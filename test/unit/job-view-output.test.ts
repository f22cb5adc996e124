/**
 * A job's view names where its final output goes: its `output:` URI when that is a local:// or
 * hdfs:// destination (the output directory then holds only the earlier stages'), else the
 * output directory. With outputs kept on the hosts it says so, and names the pattern of the
 * hosts' paths rather than a directory on the framework's machine that nothing is written to.
 */
import { describe, expect, it } from 'vitest';
import { jobView, taskView } from '../../src/api/http/jobs-views.js';
import { jobMessage } from '../../src/api/grpc/server.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import type { AttemptRecord, JobRecord, TaskRecord } from '../../src/scheduler/jobs/model.js';

function record(output: string | undefined): JobRecord {
  const spec = validateJobSpec({ name: 'o', tasks: [{}], task: { command: ['true'] }, ...(output === undefined ? {} : { output }) });
  return {
    id: 'job-1', tenant: 'default', name: 'o', spec, state: 'SUCCEEDED', stage: 0, stages: [{ name: 'main', taskCount: 1 }],
    outputDir: '/srv/outputs/default/job-1', createdAt: 0, updatedAt: 0,
    counts: { total: 1, pending: 0, running: 0, succeeded: 1, failed: 0, nodeLocal: 0, rackLocal: 0, anyLocal: 1 },
  } as JobRecord;
}

describe('job view output', () => {
  it.each([
    { output: undefined, shown: '/srv/outputs/default/job-1' },
    { output: 'results/x', shown: '/srv/outputs/default/job-1' },
    { output: 'local://results/feat', shown: 'local://results/feat' },
    { output: 'hdfs://nn:8020/out/feat', shown: 'hdfs://nn:8020/out/feat' },
  ])('output $output is shown as $shown', ({ output, shown }) => {
    const v = jobView(record(output));
    expect(v.output).toBe(shown);
    expect(v.outputDir).toBe('/srv/outputs/default/job-1');
  });
});

describe('job view with outputs kept on the hosts (shared-outputs: false)', () => {
  const onHosts = { shared: false, root: '/srv/outputs', hostRoot: '/srv/host-outputs' };
  const pattern = '/srv/host-outputs/{host}/default/job-1';

  it('says so, and names the hosts\' paths instead of the framework-side directory nothing is written to', () => {
    const v = jobView(record(undefined), onHosts);
    expect(v.outputKept).toBe('hosts');
    expect(v.output).toBe(pattern);
    expect(v.outputDir).toBe(pattern);
    expect(v.hostOutputs).toEqual({ directory: pattern, tasks: '/v1/jobs/job-1/tasks' });
    // gRPC tells the same.
    expect(jobMessage(record(undefined), onHosts)).toMatchObject({ output_dir: pattern, output: pattern, output_kept: 'hosts', host_outputs_directory: pattern });
  });

  it('a local:// or hdfs:// output is the destination; the earlier stages are still on the hosts', () => {
    const v = jobView(record('hdfs://nn:8020/out/feat'), onHosts);
    expect(v.outputKept).toBe('destination');
    expect(v.output).toBe('hdfs://nn:8020/out/feat');
    expect(v.outputDir).toBe(pattern);
  });

  it('a job accepted under another output root is named where executors put it (_other)', () => {
    const v = jobView({ ...record(undefined), outputDir: '/old/outputs/default/job-1' }, onHosts);
    expect(v.output).toBe('/srv/host-outputs/{host}/_other/old/outputs/default/job-1');
  });

  it('on a shared output root nothing changes but outputKept', () => {
    const v = jobView(record(undefined), { ...onHosts, shared: true });
    expect(v).toMatchObject({ outputKept: 'output-root', output: '/srv/outputs/default/job-1', outputDir: '/srv/outputs/default/job-1' });
    expect(v.hostOutputs).toBeUndefined();
    expect(jobMessage(record(undefined))).toMatchObject({ output_kept: 'output-root', host_outputs_directory: '' });
  });

  it('a task names the host of the attempt that committed its output', () => {
    const attempt = (n: number, host: string, state: 'SUCCEEDED' | 'LOST'): AttemptRecord => ({
      attempt: n, attemptId: `t.a${n}`, executorId: 'e', host, state, startedAt: 0, finishedAt: 1,
    } as AttemptRecord);
    const task = {
      id: 'job-1.0.0', jobId: 'job-1', stage: 0, index: 0, state: 'SUCCEEDED', failures: 0,
      attempts: [attempt(1, 'agent-a', 'SUCCEEDED'), attempt(2, 'agent-b', 'SUCCEEDED'), attempt(3, 'agent-c', 'LOST')],
      outputPath: '/srv/host-outputs/agent-b/default/job-1/main/00000',
    } as unknown as TaskRecord;
    expect(taskView(task).outputHost).toBe('agent-b');
    expect(taskView({ ...task, outputPath: undefined } as unknown as TaskRecord).outputHost).toBeUndefined();
  });
});
