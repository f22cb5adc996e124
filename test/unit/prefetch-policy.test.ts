/**
 * PrefetchPolicy (src/scheduler/prefetch.ts): a new executor is sent its prefetch at once; a long
 * run or a hand-back stops it until PREFETCH_MIN_STREAK short results in a row (fewer for an
 * executor with fewer slots); results of attempts that never ran change nothing.
 */
import { describe, expect, it } from 'vitest';
import { PREFETCH_MIN_STREAK, PREFETCH_SHORT_RUN_MS, PrefetchPolicy, dispatchableSlots } from '../../src/scheduler/prefetch.js';
import { prefetchDepth, unheldPrefetch } from '../../src/executor/contract.js';

describe('PrefetchPolicy', () => {
  it('prefetches until a long run or a hand-back, then again after a run of short results', () => {
    const p = new PrefetchPolicy();
    // Nothing known: trusted, and short results keep it so.
    expect(p.extra('e', 19, 5)).toBe(5);
    p.finished('e', 200, false);
    expect(p.extra('e', 19, 5)).toBe(5);
    // An executor that registered no prefetch gets none.
    expect(p.extra('e', 19, 0)).toBe(0);
    p.finished('e', PREFETCH_SHORT_RUN_MS, false);
    expect(p.extra('e', 19, 5)).toBe(0);
    for (let i = 0; i < PREFETCH_MIN_STREAK - 1; i++) p.finished('e', 200, false);
    expect(p.extra('e', 19, 5)).toBe(0);
    // Not run (lost, cancelled before it started): neither short nor long.
    p.finished('e', undefined, false);
    expect(p.extra('e', 19, 5)).toBe(0);
    p.finished('e', 200, false);
    expect(p.extra('e', 19, 5)).toBe(5);
    expect(p.extra('e', 19, 1)).toBe(1);
    p.finished('e', undefined, true);
    expect(p.extra('e', 19, 5)).toBe(0);
    for (let i = 0; i < PREFETCH_MIN_STREAK; i++) p.finished('e', 10, false);
    expect(p.extra('e', 19, 5)).toBe(5);
  });

  it('needs no more short results than the executor has slots, and forgets executors', () => {
    const p = new PrefetchPolicy();
    p.finished('one', PREFETCH_SHORT_RUN_MS + 1, false);
    expect(p.extra('one', 1, 1)).toBe(0);
    p.finished('one', 100, false);
    expect(p.extra('one', 1, 1)).toBe(1);
    p.finished('other', undefined, true);
    expect(p.extra('other', 1, 1)).toBe(0);
    p.dropExecutor('other');
    expect(p.extra('other', 1, 1)).toBe(1);
  });

  it('an executor recovered after a restart prefetches only after a run of short results', () => {
    const p = new PrefetchPolicy();
    p.unknown('old');
    expect(p.extra('old', 19, 5)).toBe(0);
    for (let i = 0; i < PREFETCH_MIN_STREAK; i++) p.finished('old', 100, false);
    expect(p.extra('old', 19, 5)).toBe(5);
    // Known already: its streak stands.
    p.unknown('old');
    expect(p.extra('old', 19, 5)).toBe(5);
  });

  it('asks executors for as many attempts ahead as they have slots, at least one and at most 32', () => {
    expect([1, 4, 5, 19, 32, 100].map(prefetchDepth)).toEqual([1, 4, 5, 19, 32, 32]);
  });

  it('an executor whose containers cannot start held keeps a quarter of its slots, at least one and at most eight', () => {
    expect([1, 4, 5, 19, 32, 100].map(unheldPrefetch)).toEqual([1, 1, 2, 5, 8, 8]);
  });

  it('adds the prefetch to the free slots only while the dispatch window holds nothing back', () => {
    // No window kept (off): free slots plus prefetch, less what is in flight beyond the slots.
    expect(dispatchableSlots({ slots: 19, busy: 19, windowed: 0, window: undefined, ahead: 5 })).toBe(5);
    expect(dispatchableSlots({ slots: 19, busy: 22, windowed: 0, window: undefined, ahead: 5 })).toBe(2);
    expect(dispatchableSlots({ slots: 19, busy: 24, windowed: 0, window: undefined, ahead: 5 })).toBe(0);
    expect(dispatchableSlots({ slots: 19, busy: 10, windowed: 9, window: 19, ahead: 5 })).toBe(14);
    expect(dispatchableSlots({ slots: 19, busy: 10, windowed: 9, window: 19, ahead: 0 })).toBe(9);
    // The window holds free slots back: its share, no prefetch.
    expect(dispatchableSlots({ slots: 19, busy: 10, windowed: 3, window: 13, ahead: 5 })).toBe(3);
    // Shrunk below the slots with no slot free: nothing, not the prefetch.
    expect(dispatchableSlots({ slots: 19, busy: 19, windowed: 0, window: 12, ahead: 5 })).toBe(0);
  });
});
