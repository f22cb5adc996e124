/**
 * Removal of finished queue jobs (finished-jobs.ts): a job goes only once it has finished AND
 * every attempt in it was recorded, in either order; from the set BullMQ keeps it in (completed
 * or failed), with its batch index entries (a batch) or without (a single attempt); never a job
 * untracked (its add failed, a kill took it off the queue) or of a forgotten executor; nothing
 * after close. The fenced connection is a recorder of the MULTI's commands.
 */
import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { ManualClock } from '../../src/core/clock.js';
import { FinishedJobs } from '../../src/scheduler/finished-jobs.js';
import { silentLogger } from '../../src/obs/log.js';

/** A MULTI recorder: each exec() appends the commands it carried. */
function recorder(): { redis: Redis; execs: string[][] } {
  const execs: string[][] = [];
  const multi = (): unknown => {
    const cmds: string[] = [];
    const chain = {
      zrem: (k: string, id: string) => (cmds.push(`zrem ${k} ${id}`), chain),
      unlink: (...ks: string[]) => (cmds.push(`unlink ${ks.join(' ')}`), chain),
      hdel: (k: string, ...fs: string[]) => (cmds.push(`hdel ${k} ${fs.join(' ')}`), chain),
      exec: async () => {
        execs.push(cmds);
        return [];
      },
    };
    return chain;
  };
  return { redis: { multi } as unknown as Redis, execs };
}

/** Move the clock past the removal's wait and let its script go out. */
async function advance(clock: ManualClock, ms: number): Promise<void> {
  clock.advance(ms);
  await new Promise((r) => setImmediate(r));
}

describe('finished queue jobs', () => {
  it('removes a batch only once it has finished and all its attempts are recorded, in either order', async () => {
    const { redis, execs } = recorder();
    const clock = new ManualClock();
    const jobs = new FinishedJobs(redis, clock, silentLogger());
    jobs.track('ex1', 'batch-a', ['a1', 'a2'], true);
    jobs.track('ex1', 'b1', ['b1'], false);
    jobs.recorded('a1');
    jobs.finished('ex1', 'batch-a', 'completed');
    // Executor lost: the single attempt was recorded (synthetically) but its job never finished.
    jobs.recorded('b1');
    await advance(clock, 1_000);
    expect(execs).toEqual([]);
    jobs.recorded('a2');
    await advance(clock, 1_000);
    expect(execs).toEqual([[
      'zrem locus:q:locus-exec-ex1:completed batch-a',
      'unlink locus:q:locus-exec-ex1:batch-a locus:q:locus-exec-ex1:batch-a:logs',
      'hdel locus:batches:ex1 a1 a2',
    ]]);
  });

  it('removes a single failed job from the failed set, without batch index entries', async () => {
    const { redis, execs } = recorder();
    const clock = new ManualClock();
    const jobs = new FinishedJobs(redis, clock, silentLogger());
    jobs.track('ex2', 'c1', ['c1'], false);
    jobs.finished('ex2', 'c1', 'failed');
    jobs.recorded('c1');
    await advance(clock, 1_000);
    expect(execs).toEqual([['zrem locus:q:locus-exec-ex2:failed c1', 'unlink locus:q:locus-exec-ex2:c1 locus:q:locus-exec-ex2:c1:logs']]);
  });

  it('never removes an untracked job or one of a forgotten executor, and nothing after close', async () => {
    const { redis, execs } = recorder();
    const clock = new ManualClock();
    const jobs = new FinishedJobs(redis, clock, silentLogger());
    jobs.track('ex3', 'd1', ['d1'], false);
    jobs.untrack('ex3', 'd1');
    jobs.track('ex4', 'e1', ['e1'], false);
    jobs.forgetExecutor('ex4');
    for (const [ex, id] of [['ex3', 'd1'], ['ex4', 'e1']] as const) {
      jobs.finished(ex, id, 'completed');
      jobs.recorded(id);
    }
    jobs.track('ex5', 'f1', ['f1'], false);
    jobs.finished('ex5', 'f1', 'completed');
    jobs.recorded('f1');
    jobs.close();
    await advance(clock, 1_000);
    expect(execs).toEqual([]);
  });
});
