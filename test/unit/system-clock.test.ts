/**
 * The wall clock's timers wait out delays past setTimeout's limit (2^31-1 ms, about 24.8 days),
 * which Node fires after 1 ms instead: a job's `timeout: 30d` killed its attempts at once.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMEOUT_MS, systemClock } from '../../src/core/clock.js';

const DAY = 24 * 60 * 60 * 1000;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('systemClock.setTimer', () => {
  it('fires a 30-day timer after 30 days, not before', () => {
    const fn = vi.fn();
    systemClock.setTimer(30 * DAY, fn);
    vi.advanceTimersByTime(1000);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(MAX_TIMEOUT_MS);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(30 * DAY - MAX_TIMEOUT_MS - 1000 - 1);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('cancels a long timer in any of its steps', () => {
    const fn = vi.fn();
    const t = systemClock.setTimer(60 * DAY, fn);
    vi.advanceTimersByTime(MAX_TIMEOUT_MS + 5);
    t.cancel();
    vi.advanceTimersByTime(60 * DAY);
    expect(fn).not.toHaveBeenCalled();
  });

  it('fires a short timer once, on time', () => {
    const fn = vi.fn();
    systemClock.setTimer(250, fn);
    vi.advanceTimersByTime(249);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
  });
});
