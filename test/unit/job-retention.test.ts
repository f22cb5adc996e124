/**
 * The job retention sweep: how often it runs for a retention, the cutoff it asks for (now minus
 * the retention, by the framework's clock), paging through the jobs (a full page is followed by
 * the next one a second later, from where it stopped, net of the jobs it purged; the last page by
 * a start from the beginning a whole interval later), a failing sweep only logged and tried
 * again, and stop waiting for the sweep under way.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { retentionSweepEveryMs, startJobRetention } from '../../src/scheduler/jobs/retention.js';
import { silentLogger } from '../../src/obs/log.js';

/** Move the clock and let the sweep it started run to its end. */
async function advance(clock: ManualClock, ms: number): Promise<void> {
  clock.advance(ms);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe('job retention sweep', () => {
  it('runs every tenth of the retention, between 1 s and 10 min', () => {
    expect(retentionSweepEveryMs(2_000)).toBe(1_000);
    expect(retentionSweepEveryMs(60_000)).toBe(6_000);
    expect(retentionSweepEveryMs(7 * 24 * 3600 * 1000)).toBe(600_000);
  });

  it('pages on from where it stopped while pages are full, then starts over an interval later; a failure is tried again', async () => {
    const calls: { cutoff: number; offset: number }[] = [];
    // Pages: full (purging 300 of 1,000), full (none purged), a failure, the last (200 read).
    const answers: (() => { purged: string[]; scanned: number })[] = [
      () => ({ purged: Array.from({ length: 300 }, (_, i) => `j${i}`), scanned: 1_000 }),
      () => ({ purged: [], scanned: 1_000 }),
      () => {
        throw new Error('Redis went away');
      },
      () => ({ purged: ['late'], scanned: 200 }),
    ];
    const jobs = {
      async purgeFinishedBefore(cutoff: number, offset: number): Promise<{ purged: string[]; scanned: number }> {
        calls.push({ cutoff, offset });
        const next = answers.shift();
        return next === undefined ? { purged: [], scanned: 0 } : next();
      },
    };
    const clock = new ManualClock(94_000);
    const r = startJobRetention(jobs, 60_000, clock, silentLogger());
    // First sweep after an interval (6 s here): offset 0, cutoff now - retention.
    await advance(clock, 6_000);
    expect(calls).toEqual([{ cutoff: 40_000, offset: 0 }]);
    // A full page: the next one a second later, past the 700 jobs that stayed.
    await advance(clock, 1_000);
    expect(calls[1]).toEqual({ cutoff: 41_000, offset: 700 });
    // Full again, none purged: on by 1,000. That one fails: tried again after an interval, same offset.
    await advance(clock, 1_000);
    expect(calls[2]?.offset).toBe(1_700);
    await advance(clock, 1_000);
    expect(calls).toHaveLength(3);
    await advance(clock, 5_000);
    expect(calls[3]?.offset).toBe(1_700);
    // The last page (200 read): the next sweep an interval later, from the start.
    await advance(clock, 1_000);
    expect(calls).toHaveLength(4);
    await advance(clock, 5_000);
    expect(calls[4]?.offset).toBe(0);
    await r.stop();
    await advance(clock, 60_000);
    expect(calls).toHaveLength(5);
  });

  it('stop waits for the sweep under way and starts no other', async () => {
    let release: (() => void) | undefined;
    let calls = 0;
    const jobs = {
      async purgeFinishedBefore(): Promise<{ purged: string[]; scanned: number }> {
        calls++;
        await new Promise<void>((res) => (release = res));
        return { purged: [], scanned: 1_000 };
      },
    };
    const clock = new ManualClock();
    const r = startJobRetention(jobs, 20_000, clock, silentLogger());
    await advance(clock, 2_000);
    expect(calls).toBe(1);
    let done = false;
    const stopped = r.stop().then(() => (done = true));
    await advance(clock, 0);
    expect(done).toBe(false);
    release?.();
    await stopped;
    await advance(clock, 10_000);
    expect(calls).toBe(1);
    expect(clock.pendingTimers()).toBe(0);
  });
});
