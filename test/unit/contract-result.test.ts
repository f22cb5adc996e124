import { describe, expect, it } from 'vitest';
import { decodeAttemptResult } from '../../src/executor/contract.js';

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
