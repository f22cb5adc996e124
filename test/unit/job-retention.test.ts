/**
 * The job retention sweep: how often it runs for a retention, the cutoff it asks for (now minus
 * the retention, by the framework's clock), one sweep at a time, a failing sweep only logged and
 * tried again, and stop waiting for the sweep under way.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { retentionSweepEveryMs, startJobRetention } from '../../src/scheduler/jobs/retention.js';
import { silentLogger } from '../../src/obs/log.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('job retention sweep', () => {
  it('runs every tenth of the retention, between 1 s and 10 min', () => {
    expect(retentionSweepEveryMs(2_000)).toBe(1_000);
    expect(retentionSweepEveryMs(60_000)).toBe(6_000);
    expect(retentionSweepEveryMs(7 * 24 * 3600 * 1000)).toBe(600_000);
  });

  it('asks for jobs finished before now minus the retention, one sweep at a time, and keeps going after a failure', async () => {
    const cutoffs: number[] = [];
    let fail = true;
    let release: (() => void) | undefined;
    const jobs = {
      async purgeFinishedBefore(cutoff: number): Promise<string[]> {
        cutoffs.push(cutoff);
        if (fail) {
          fail = false;
          throw new Error('Redis went away');
        }
        await new Promise<void>((res) => (release = res));
        return ['job-1'];
      },
    };
    let now = 100_000;
    const r = startJobRetention(jobs, 20_000, { now: () => now, setTimer: () => ({ cancel: () => undefined }) }, silentLogger());
    await vi.advanceTimersByTimeAsync(2_000);
    expect(cutoffs).toEqual([80_000]);
    now += 2_000;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(cutoffs).toEqual([80_000, 82_000]);
    // The second sweep is still under way: the next tick does not start another.
    await vi.advanceTimersByTimeAsync(2_000);
    expect(cutoffs).toHaveLength(2);
    const stopped = r.stop();
    let done = false;
    void stopped.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    release?.();
    await stopped;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(cutoffs).toHaveLength(2);
  });
});
