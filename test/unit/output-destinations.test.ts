/**
 * The spec's `output` as a destination (pure): which schemes are destinations, what is refused
 * with which code, where each last-stage task goes, and what a local:// job lists in its dataset.
 */
import { describe, expect, it } from 'vitest';
import { outputDestination, publishFinalOutputs, taskDestination } from '../../src/scheduler/jobs/destinations.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import type { CommittedOutput } from '../../src/executor/contract.js';

const codeOf = (output: string): string => {
  try {
    outputDestination(output);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
};

describe('outputDestination', () => {
  it('keeps paths and file:// on the output root', () => {
    for (const o of [undefined, 'results', '/var/lib/locus/outputs/t/x', 'file:///var/lib/locus/outputs/t/x']) expect(outputDestination(o)).toEqual({ kind: 'root' });
  });

  it('parses local:// and hdfs:// destinations, normalising the path', () => {
    expect(outputDestination('local://counts//run1/')).toEqual({ kind: 'local', uri: 'local://counts/run1', dataset: 'counts', path: '/run1' });
    expect(outputDestination('local://counts')).toEqual({ kind: 'local', uri: 'local://counts', dataset: 'counts', path: '' });
    expect(outputDestination('hdfs://nn:9870/user/a/out/')).toEqual({ kind: 'hdfs', uri: 'hdfs://nn:9870/user/a/out' });
    expect(outputDestination('SWEBHDFS://nn:9871/o')).toEqual({ kind: 'hdfs', uri: 'swebhdfs://nn:9871/o' });
  });

  it('refuses what cannot be a destination, with stable codes', () => {
    expect(codeOf('s3://bucket/out')).toBe('UNKNOWN_SCHEME');
    expect(codeOf('ceph://pool/obj')).toBe('UNKNOWN_SCHEME');
    expect(codeOf('mailto:someone')).toBe('UNKNOWN_SCHEME');
    expect(codeOf('hdfs:///out')).toBe('INVALID_FIELD');
    expect(codeOf('hdfs://nn:9870/')).toBe('INVALID_FIELD');
    expect(codeOf('hdfs://nn:9870/a/../b')).toBe('INVALID_FIELD');
    expect(codeOf('hdfs://nn:9870/a/_temporary')).toBe('INVALID_FIELD');
    expect(codeOf('hdfs://nn:9870/a?op=DELETE')).toBe('INVALID_FIELD');
    expect(codeOf('local://../etc')).toBe('INVALID_FIELD');
    expect(codeOf('local://ds/./x')).toBe('INVALID_FIELD');
  });
});

const twoStage = (output: string | undefined): ReturnType<typeof validateJobSpec> => validateJobSpec({
  name: 'j', ...(output === undefined ? {} : { output }),
  stages: [
    { name: 'map', inputs: ['local://words/'], task: { command: ['true'] } },
    { name: 'reduce', inputs: ['stage:map'], tasks: [{ command: ['true'] }, { command: ['true'] }], task: { command: ['true'] } },
  ],
});

describe('taskDestination', () => {
  it('sends only the last stage to the destination, one directory per task', () => {
    const spec = twoStage('hdfs://nn:9870/out');
    expect(taskDestination(spec, 0, 3)).toBeUndefined();
    expect(taskDestination(spec, 1, 1)).toBe('hdfs://nn:9870/out/reduce/00001');
    expect(taskDestination(twoStage('local://ds/run'), 1, 0)).toBe('local://ds/run/reduce/00000');
    expect(taskDestination(twoStage('results'), 1, 0)).toBeUndefined();
    expect(taskDestination(twoStage(undefined), 1, 0)).toBeUndefined();
  });
});

describe('publishFinalOutputs', () => {
  const rec = (host: string, files: { name: string; size: number }[]): CommittedOutput => ({ attemptId: 'a', host, path: `/data/${host}`, size: 0, files, committedAt: 1 });

  it('lists every file of the last stage in the dataset, each on the host that committed it', async () => {
    const asked: string[][] = [];
    const listed: unknown[] = [];
    await publishFinalOutputs({ id: 'job-1', spec: twoStage('local://ds/run'), stages: [{ name: 'map', taskCount: 4 }, { name: 'reduce', taskCount: 2 }] }, {
      commits: async (ids) => {
        asked.push([...ids]);
        return [rec('h1', [{ name: 'part', size: 10 }, { name: 'sub/x', size: 0 }]), rec('h2', [{ name: 'part', size: 20 }])];
      },
      listLocal: async (dataset, files) => {
        listed.push({ dataset, files });
      },
    });
    expect(asked).toEqual([['job-1.1.0', 'job-1.1.1']]);
    expect(listed).toEqual([{ dataset: 'ds', files: [
      { path: '/run/reduce/00000/part', size: 10, host: 'h1' },
      { path: '/run/reduce/00000/sub/x', size: 0, host: 'h1' },
      { path: '/run/reduce/00001/part', size: 20, host: 'h2' },
    ] }]);
  });

  it('does nothing for other destinations, and fails without a record or without local datasets', async () => {
    const never = { commits: async (): Promise<never> => { throw new Error('not read'); } };
    await publishFinalOutputs({ id: 'j', spec: twoStage('hdfs://nn:9870/o'), stages: [] }, never);
    await publishFinalOutputs({ id: 'j', spec: twoStage(undefined), stages: [] }, undefined);
    await expect(publishFinalOutputs({ id: 'j', spec: twoStage('local://ds/r'), stages: [{ name: 'map', taskCount: 1 }, { name: 'reduce', taskCount: 1 }] }, { commits: async () => [undefined], listLocal: async () => undefined }))
      .rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(publishFinalOutputs({ id: 'j', spec: twoStage('local://ds/r'), stages: [] }, undefined)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });
});
