import { describe, expect, it } from 'vitest';
import { decodeAttemptPayload, decodeAttemptResult } from '../../src/executor/contract.js';

const base = { attemptId: 'j.0.0.a1', taskId: 'j.0.0', state: 'SUCCEEDED', exitCode: 0, reason: 'COMMITTED', message: '', startedAt: 10, finishedAt: 90, host: 'h' };

describe('an attempt result on the wire', () => {
  it('keeps when the workload exited (contract 2.1), and takes results without it (2.0)', () => {
    expect(decodeAttemptResult({ ...base, exitedAt: 40 })).toMatchObject({ startedAt: 10, exitedAt: 40, finishedAt: 90 });
    expect(decodeAttemptResult(base)).not.toHaveProperty('exitedAt');
  });

  it('refuses an exit time that is not a number, naming the field', () => {
    expect(() => decodeAttemptResult({ ...base, exitedAt: 'soon' })).toThrow(/result\.exitedAt/);
  });
});

describe('an attempt payload on the wire', () => {
  const payload = {
    contractVersion: '2.2', jobId: 'j', taskId: 'j.0.0', attemptId: 'j.0.0.a1', attempt: 1, argv: ['true'], env: {},
    resources: { cpus: 0.1, memMiB: 32, diskMiB: 8 }, timeoutMs: 1000, volumes: [], inputPaths: [],
  };

  it('keeps its tenant (contract 2.2), and takes payloads without one (2.1) or without an output directory', () => {
    expect(decodeAttemptPayload({ ...payload, tenant: 'alpha' })).toMatchObject({ tenant: 'alpha' });
    const bare = decodeAttemptPayload(payload);
    expect(bare).not.toHaveProperty('tenant');
    expect(bare).not.toHaveProperty('outputDir');
  });

  it('refuses a tenant that is not a string, naming the field', () => {
    expect(() => decodeAttemptPayload({ ...payload, tenant: 7 })).toThrow(/payload\.tenant/);
  });
});
