import { describe, expect, it } from 'vitest';
import { executorThreadPoolSize } from '../../src/app/executor-runtime.js';

describe('executor thread pool size', () => {
  it('grows with the slots from libuv\'s default of 4, and stops at 16', () => {
    expect(executorThreadPoolSize(1)).toBe(4);
    expect(executorThreadPoolSize(2)).toBe(4);
    expect(executorThreadPoolSize(5)).toBe(10);
    expect(executorThreadPoolSize(8)).toBe(16);
    // Past 16 threads each filesystem call costs more in context switches and lock contention
    // than the extra parallelism saves (perf of an executor with 64 threads, dispatch benchmark).
    expect(executorThreadPoolSize(64)).toBe(16);
    expect(executorThreadPoolSize(169)).toBe(16);
  });
});
