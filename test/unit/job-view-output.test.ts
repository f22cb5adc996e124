/**
 * A job's view names where its final output goes: its `output:` URI when that is a local:// or
 * hdfs:// destination (the output directory then holds only the earlier stages'), else the
 * output directory.
 */
import { describe, expect, it } from 'vitest';
import { jobView } from '../../src/api/http/jobs-views.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import type { JobRecord } from '../../src/scheduler/jobs/model.js';

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
