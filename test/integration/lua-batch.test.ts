/**
 * A batched script on a real redis-server (core/lua-batch.ts): each item runs on its own keys and
 * arguments, in order; an item that raises answers with its error and the others still run; an
 * item answering nothing (nil) does not cut the answers of the items after it.
 */
import { describe, expect, it } from 'vitest';
import { batchCallArgs, batchedScript, batchReplies, type BatchShape } from '../../src/core/lua-batch.js';
import { suiteRedis } from '../harness/redis.js';

const suite = suiteRedis();

// Per item: KEYS[1] a counter; ARGV[1] what to do.
const BODY = `
if ARGV[1] == 'raise' then error('asked to raise') end
if ARGV[1] == 'call-error' then return redis.call('INCR', 'not-a-number-key-' .. KEYS[1]) end
local n = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]) or 0)
if ARGV[1] == '0' then return nil end
return n
`;
const SHAPE: BatchShape = { keys: 1, args: 1 };

describe('a batched script', () => {
  it('answers each item in order, an error or nil as that item alone', async () => {
    const conn = suite.client();
    await conn.set('not-a-number-key-c5', 'text');
    const items = [['c1', '2'], ['c2', 'raise'], ['c3', '0'], ['c4', '5'], ['c5', 'call-error'], ['c1', '3']]
      .map(([k, a]) => ({ keys: [k ?? ''], args: [a ?? ''] }));
    const replies = batchReplies(await conn.eval(batchedScript(BODY, SHAPE), ...batchCallArgs(items, SHAPE)) as unknown[]);
    expect(replies).toHaveLength(6);
    expect(replies[0]).toBe(2);
    expect(replies[1]).toBeInstanceOf(Error);
    expect(String(replies[1])).toMatch(/asked to raise/);
    // nil: answered as nothing, and the items after it still answered.
    expect(replies[2]).toBeNull();
    expect(replies[3]).toBe(5);
    // A failed redis.call inside the item is that item's error too.
    expect(String(replies[4])).toMatch(/not an integer/);
    // Items run in order: the second increment of c1 saw the first.
    expect(replies[5]).toBe(5);
    expect(await conn.mget('c1', 'c2', 'c3', 'c4')).toEqual(['5', null, '0', '5']);
  });

  it('refuses an item of the wrong shape before anything is sent', () => {
    expect(() => batchCallArgs([{ keys: ['a', 'b'], args: ['x'] }], SHAPE)).toThrow(/takes 1 keys and 1 arguments/);
  });
});
