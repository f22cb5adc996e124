/**
 * An executor keeps the sandboxes of its `keep` most recently done attempts and removes older
 * ones in the order they were done; a container id launched again takes its entry back (its
 * sandbox is in use again); `keep` 0 keeps all; a removal that fails is tried again twice,
 * later, unless its id was launched again meanwhile; one that failed every try is warned about
 * (not per attempt); nothing is ever thrown into the attempt's path.
 */
import { describe, expect, it } from 'vitest';
import { MAX_REMOVALS_IN_FLIGHT, SandboxRetention } from '../../src/executor/sandbox-retention.js';

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('sandbox retention', () => {
  it('removes the oldest ended sandboxes beyond keep, in the order they ended', async () => {
    const removed: string[] = [];
    const r = new SandboxRetention(3, async (id, dir) => {
      removed.push(`${id}@${dir}`);
    });
    for (let i = 0; i < 3; i++) r.noteDone(`c${i}`, `/s/c${i}`);
    await settle();
    expect(removed).toEqual([]);
    for (let i = 3; i < 10; i++) r.noteDone(`c${i}`, `/s/c${i}`);
    await settle();
    expect(removed).toEqual(['c0@/s/c0', 'c1@/s/c1', 'c2@/s/c2', 'c3@/s/c3', 'c4@/s/c4', 'c5@/s/c5', 'c6@/s/c6']);
    expect(r.state).toEqual({ kept: 3, removed: 7, failed: 0, removing: 0, retrying: 0 });
  });

  it('stays bounded over a long life (its own bookkeeping too)', async () => {
    let removed = 0;
    const r = new SandboxRetention(5, async () => {
      removed++;
    });
    for (let i = 0; i < 100_000; i++) r.noteDone(`c${i}`, `/s/c${i}`);
    await settle();
    expect(removed).toBe(100_000 - 5);
    expect(r.state.kept).toBe(5);
  });

  it('a container id launched again is not removed from under its new run', async () => {
    const removed: string[] = [];
    const r = new SandboxRetention(2, async (id) => {
      removed.push(id);
    });
    r.noteDone('held', '/s/held');
    // The held container ended early and is started again under the same id (same sandbox).
    r.forget('held');
    for (const id of ['a', 'b', 'c']) r.noteDone(id, `/s/${id}`);
    await settle();
    expect(removed).toEqual(['a']);
    // Done again later: it is the newest, and goes only after two more.
    r.noteDone('held', '/s/held');
    r.noteDone('d', '/s/d');
    await settle();
    expect(removed).toEqual(['a', 'b', 'c']);
    r.noteDone('e', '/s/e');
    await settle();
    expect(removed).toEqual(['a', 'b', 'c', 'held']);
  });

  it('a slow agent never has more than a few removals under way; the rest wait, oldest first', async () => {
    const pending: { id: string; done: () => void }[] = [];
    const r = new SandboxRetention(2, (id) => new Promise<void>((resolve) => void pending.push({ id, done: resolve })));
    for (let i = 0; i < 50; i++) r.noteDone(`c${i}`, `/s/c${i}`);
    expect(pending.map((p) => p.id)).toEqual(Array.from({ length: MAX_REMOVALS_IN_FLIGHT }, (_, i) => `c${i}`));
    expect(r.state).toMatchObject({ kept: 50 - MAX_REMOVALS_IN_FLIGHT, removing: MAX_REMOVALS_IN_FLIGHT });
    // One ends: the next oldest goes.
    pending.shift()?.done();
    await settle();
    expect(pending.map((p) => p.id)).toEqual([...Array.from({ length: MAX_REMOVALS_IN_FLIGHT - 1 }, (_, i) => `c${i + 1}`), `c${MAX_REMOVALS_IN_FLIGHT}`]);
    // All end, as they come: down to `keep`, never more than the cap at once.
    let most = 0;
    while (pending.length > 0) {
      most = Math.max(most, pending.length);
      pending.shift()?.done();
      await settle();
    }
    expect(most).toBeLessThanOrEqual(MAX_REMOVALS_IN_FLIGHT);
    expect(r.state).toEqual({ kept: 2, removed: 48, failed: 0, removing: 0, retrying: 0 });
  });

  it('keep 0 keeps every sandbox', async () => {
    let calls = 0;
    const r = new SandboxRetention(0, async () => {
      calls++;
    });
    for (let i = 0; i < 50; i++) r.noteDone(`c${i}`, `/s/c${i}`);
    await settle();
    expect(calls).toBe(0);
  });

  it('a removal that fails is tried again later, and succeeds then; others go on meanwhile', async () => {
    const tries = new Map<string, number>();
    const r = new SandboxRetention(1, async (id) => {
      const n = (tries.get(id) ?? 0) + 1;
      tries.set(id, n);
      // c0's nested container has not ended yet for the agent on the first two tries.
      if (id === 'c0' && n < 3) throw new Error('Nested container has not terminated yet');
    }, undefined, [300, 600]);
    for (let i = 0; i < 4; i++) r.noteDone(`c${i}`, `/s/c${i}`);
    await settle();
    expect(r.state).toEqual({ kept: 1, removed: 2, failed: 0, removing: 0, retrying: 1 });
    const until = async (n: number): Promise<void> => {
      for (let i = 0; i < 300 && (tries.get('c0') ?? 0) < n; i++) await new Promise((res) => setTimeout(res, 10));
      await settle();
    };
    await until(2);
    expect(tries.get('c0')).toBe(2);
    expect(r.state.retrying).toBe(1);
    await until(3);
    expect(tries.get('c0')).toBe(3);
    expect(r.state).toEqual({ kept: 1, removed: 3, failed: 0, removing: 0, retrying: 0 });
  });

  it('a removal waiting to be tried again is dropped when its container id is launched again', async () => {
    const removed: string[] = [];
    let refuse = true;
    const r = new SandboxRetention(1, async (id) => {
      if (refuse) throw new Error('agent restarting');
      removed.push(id);
    }, undefined, [20]);
    r.noteDone('held', '/s/held');
    r.noteDone('a', '/s/a');
    await settle();
    expect(r.state.retrying).toBe(1);
    refuse = false;
    // The same id starts again (its sandbox is in use again) before the retry is due.
    r.forget('held');
    await new Promise((res) => setTimeout(res, 40));
    await settle();
    expect(removed).toEqual([]);
    expect(r.state).toEqual({ kept: 1, removed: 0, failed: 0, removing: 0, retrying: 0 });
  });

  it('a removal under way when its container id is launched again is not tried again if it fails', async () => {
    const removed: string[] = [];
    const pending: { id: string; fail: () => void }[] = [];
    const r = new SandboxRetention(1, (id, dir) => new Promise<void>((resolve, reject) => {
      if (pending.some((p) => p.id === id)) {
        removed.push(dir);
        resolve();
        return;
      }
      pending.push({ id, fail: () => reject(new Error('agent restarting')) });
    }), undefined, [10]);
    r.noteDone('x', '/s/x');
    r.noteDone('y', '/s/y');
    expect(pending.map((p) => p.id)).toEqual(['x']);
    // x starts again (its sandbox is in use) while its removal is still under way, which then fails.
    r.forget('x');
    pending[0]?.fail();
    await settle();
    await new Promise((res) => setTimeout(res, 50));
    await settle();
    expect(removed).toEqual([]);
    expect(r.state).toMatchObject({ retrying: 0, removing: 0 });
  });

  it('a removal that failed every try is warned about once per thousand, counted, and never thrown', async () => {
    const warnings: string[] = [];
    const r = new SandboxRetention(1, async () => {
      throw new Error('agent answered REMOVE_CONTAINER with 403');
    }, { warn: ((o: object, m: string) => void warnings.push(`${m} ${JSON.stringify(o)}`)) as never }, [1_000]);
    for (let i = 0; i < 1_002; i++) r.noteDone(`c${i}`, `/s/c${i}`);
    await settle();
    expect(r.state).toMatchObject({ kept: 1, failed: 0, retrying: 1_001 });
    expect(warnings).toHaveLength(0);
    // (The wait is long enough that a loaded host cannot reach it before the check above.)
    for (let i = 0; i < 300 && r.state.failed < 1_001; i++) await new Promise((res) => setTimeout(res, 10));
    expect(r.state).toEqual({ kept: 1, removed: 0, failed: 1_001, removing: 0, retrying: 0 });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('403');
    expect(warnings[0]).toContain('"tries":2');
  });

  it('refuses a keep that is not a whole number >= 0', () => {
    expect(() => new SandboxRetention(-1, async () => undefined)).toThrow(/keep/);
    expect(() => new SandboxRetention(1.5, async () => undefined)).toThrow(/keep/);
  });
});
