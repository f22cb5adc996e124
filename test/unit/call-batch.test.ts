import { describe, expect, it } from 'vitest';
import { CallBatch } from '../../src/core/call-batch.js';

describe('CallBatch', () => {
  it('sends the calls of one turn together, in order, each with its own answer or error', async () => {
    const sent: number[][] = [];
    const b = new CallBatch<number, string>(async (args) => {
      sent.push([...args]);
      return args.map((a) => (a === 3 ? new Error('three') : `r${a}`));
    });
    const got = await Promise.allSettled([1, 2, 3, 4, 5].map((a) => b.call(a)));
    expect(sent).toEqual([[1, 2, 3, 4, 5]]);
    expect(got.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['r1', 'r2', 'three', 'r4', 'r5']);
    // The next turn is the next batch.
    expect(await b.call(6)).toBe('r6');
    expect(sent).toEqual([[1, 2, 3, 4, 5], [6]]);
  });

  it('cuts a turn into batches of at most maxSize, and a failed send fails only its batch', async () => {
    const sent: number[][] = [];
    const b = new CallBatch<number, number>(async (args) => {
      sent.push([...args]);
      if (args.includes(3)) throw new Error('down');
      return args.map((a) => a * 10);
    }, { maxSize: 2 });
    const got = await Promise.allSettled([1, 2, 3, 4, 5].map((a) => b.call(a)));
    expect(sent).toEqual([[1, 2], [3, 4], [5]]);
    expect(got.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([10, 20, 'down', 'down', 50]);
  });

  it('fails a call the reply leaves unanswered, and a send that throws before its promise', async () => {
    const short = new CallBatch<number, number>(async () => [1]);
    const got = await Promise.allSettled([short.call(1), short.call(2)]);
    expect(got[0]).toEqual({ status: 'fulfilled', value: 1 });
    expect(got[1]?.status).toBe('rejected');
    const throwing = new CallBatch<number, number>(() => {
      throw new Error('at once');
    });
    await expect(throwing.call(1)).rejects.toThrow('at once');
    expect(() => new CallBatch<number, number>(async () => [], { maxSize: 0 })).toThrow(RangeError);
    // A reply that is no list at all fails every call of its batch, none left waiting.
    const odd = new CallBatch<number, number>(async () => 'OK' as unknown as number[]);
    const answered = await Promise.allSettled([odd.call(1), odd.call(2)]);
    expect(answered.map((a) => a.status)).toEqual(['rejected', 'rejected']);
  });

  it('serial: one request out at a time, the calls made meanwhile together in the next once it returns', async () => {
    const sent: number[][] = [];
    const answers: (() => void)[] = [];
    const b = new CallBatch<number, number>((args) => {
      sent.push([...args]);
      return new Promise((resolve) => answers.push(() => resolve(args.map((a) => -a))));
    }, { serial: true, maxSize: 3 });
    const first = b.call(1);
    await Promise.resolve();
    expect(sent).toEqual([[1]]);
    // Made one by one while the first is out: none goes yet.
    const later = [2, 3, 4, 5].map((a) => b.call(a));
    await new Promise((r) => setTimeout(r, 10));
    expect(sent).toEqual([[1]]);
    answers[0]?.();
    expect(await first).toBe(-1);
    await new Promise((r) => setTimeout(r, 10));
    // The next request holds what waited, up to maxSize; the rest waits for it in turn.
    expect(sent).toEqual([[1], [2, 3, 4]]);
    answers[1]?.();
    await new Promise((r) => setTimeout(r, 10));
    expect(sent).toEqual([[1], [2, 3, 4], [5]]);
    answers[2]?.();
    expect(await Promise.all(later)).toEqual([-2, -3, -4, -5]);
  });
});
