/**
 * What the coordinator gives the dispatch window for each result: the start and the workload's
 * own run (not the commit after it), and nothing for an attempt whose workload never ran.
 */
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { Coordinator } from '../../src/scheduler/coordinator.js';
import { DispatchWindows } from '../../src/scheduler/dispatch-window.js';
import type { CoordinatorOptions } from '../../src/scheduler/ports.js';
import type { AttemptResult } from '../../src/executor/contract.js';

afterEach(() => {
  vi.restoreAllMocks();
});

function coordinator(): Coordinator {
  return new Coordinator({
    clock: new ManualClock(5_000), logger: silentLogger(),
    jobs: Object.assign(new EventEmitter(), { finishAttempt: async () => 'SUCCEEDED', index: { size: 0 } }),
    executors: { get: () => undefined, update: async () => undefined, all: () => [] },
  } as unknown as CoordinatorOptions);
}

const result = (extra: Partial<AttemptResult>): AttemptResult => ({
  attemptId: 'j.0.0.a1', taskId: 'j.0.0', state: 'SUCCEEDED', exitCode: 0, reason: 'COMMITTED', message: '',
  startedAt: 1_000, finishedAt: 1_061, host: 'h', ...extra,
});

describe('the dispatch window\'s sample of a result', () => {
  it('is the start and the workload\'s run, without the commit after it', async () => {
    const finished = vi.spyOn(DispatchWindows.prototype, 'finished');
    await coordinator().onAttemptResult(result({ exitedAt: 1_001 }), 'e1');
    expect(finished).toHaveBeenCalledWith('e1', 'j.0.0.a1', 1_000, 5_000, 1);
  });

  it('has no start for an attempt whose workload never ran (found committed, or an executor of contract 2.0)', async () => {
    const finished = vi.spyOn(DispatchWindows.prototype, 'finished');
    await coordinator().onAttemptResult(result({ reason: 'ALREADY_COMMITTED' }), 'e1');
    expect(finished).toHaveBeenCalledWith('e1', 'j.0.0.a1', undefined, 5_000, 61);
  });
});
