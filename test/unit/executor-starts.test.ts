/**
 * The executor start-failure rule (src/scheduler/executor-starts.ts): which Mesos ends are start
 * failures, the per-agent launch hold that doubles per consecutive failed round, and when waiting
 * jobs give up.
 */
import { describe, expect, it } from 'vitest';

/** The give-up rule without its minimum duration (tested on its own below). */
const AT_ONCE = { giveUpAfterMs: 0 };
import { EXECUTOR_START_FAILED, ExecutorStarts, crashOf, startFailureOf } from '../../src/scheduler/executor-starts.js';

const MSG = 'TASK_FAILED (REASON_COMMAND_EXECUTOR_FAILED): Command exited with status 1';

describe('startFailureOf', () => {
  it('counts the executor failing, erring or exiting on its own', () => {
    expect(startFailureOf({ state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LAUNCH_FAILED' })).toBe(true);
    expect(startFailureOf({ state: 'TASK_FAILED', reason: 'REASON_EXECUTOR_TERMINATED' })).toBe(true);
    expect(startFailureOf({ state: 'TASK_FAILED' })).toBe(true);
    expect(startFailureOf({ state: 'TASK_ERROR', reason: 'REASON_TASK_INVALID' })).toBe(true);
    expect(startFailureOf({ state: 'TASK_FINISHED' })).toBe(true);
    expect(startFailureOf({ state: 'TASK_DROPPED', reason: 'REASON_CONTAINER_PREEMPTED' })).toBe(true);
  });

  it('does not count ends that mean the agent or master lost the task, nor kills', () => {
    expect(startFailureOf({ state: 'TASK_KILLED' })).toBe(false);
    expect(startFailureOf({ state: 'TASK_LOST', reason: 'REASON_SLAVE_REMOVED' })).toBe(false);
    expect(startFailureOf({ state: 'TASK_LOST', reason: 'REASON_AGENT_DISCONNECTED' })).toBe(false);
    expect(startFailureOf({ state: 'TASK_DROPPED', reason: 'REASON_RECONCILIATION' })).toBe(false);
    expect(startFailureOf({ state: 'TASK_LOST', reason: 'REASON_INVALID_OFFERS' })).toBe(false);
    // The launch reached the agent before the volume or reservation it uses (Mesos: retry it).
    expect(startFailureOf({ state: 'TASK_DROPPED', reason: 'REASON_RESOURCES_UNKNOWN' })).toBe(false);
    expect(startFailureOf({ state: 'TASK_GONE', reason: 'REASON_AGENT_REMOVED' })).toBe(false);
    expect(startFailureOf({ state: 'TASK_GONE_BY_OPERATOR' })).toBe(false);
    expect(startFailureOf({ state: 'TASK_UNKNOWN' })).toBe(false);
    expect(startFailureOf({ state: 'TASK_UNREACHABLE' })).toBe(false);
  });
});

describe('crashOf', () => {
  it('counts only a registered executor\'s own failure, not kills, exits, preemption or its agent', () => {
    expect(crashOf({ state: 'TASK_FAILED', reason: 'REASON_EXECUTOR_TERMINATED' })).toBe(true);
    expect(crashOf({ state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LIMITATION_MEMORY' })).toBe(true);
    expect(crashOf({ state: 'TASK_FAILED' })).toBe(true);
    expect(crashOf({ state: 'TASK_KILLED' })).toBe(false);
    expect(crashOf({ state: 'TASK_FINISHED' })).toBe(false);
    expect(crashOf({ state: 'TASK_LOST', reason: 'REASON_EXECUTOR_TERMINATED' })).toBe(false);
    expect(crashOf({ state: 'TASK_FAILED', reason: 'REASON_AGENT_RESTARTED' })).toBe(false);
    expect(crashOf({ state: 'TASK_FAILED', reason: 'REASON_CONTAINER_PREEMPTED' })).toBe(false);
  });
});

describe('ExecutorStarts', () => {
  it('keeps, per agent, the jobs that lost attempts to its failures, until they end', () => {
    const s = new ExecutorStarts();
    s.failed('A', 'host-a', 0, MSG, 10, ['job-1']);
    s.failed('A', 'host-a', 5, MSG, 20, ['job-2']);
    s.failed('B', 'host-b', 0, MSG, 10, []);
    expect([...(s.holding(20).find((a) => a.agentId === 'A')?.jobs ?? [])]).toEqual(['job-1', 'job-2']);
    expect(s.holding(20).find((a) => a.agentId === 'B')?.jobs.size).toBe(0);
    s.forgetJob('job-1');
    expect([...(s.holding(20).find((a) => a.agentId === 'A')?.jobs ?? [])]).toEqual(['job-2']);
  });

  it('holds launches on an agent for 1 s, then 2 s, 4 s ... up to the cap; an executor that finished an attempt there clears it', () => {
    const s = new ExecutorStarts({ ...AT_ONCE, backoffMaxMs: 5000 });
    let now = 1000;
    const holds: number[] = [];
    for (let i = 0; i < 5; i++) {
      s.offered('A', now);
      const a = s.failed('A', 'host-a', now - 10, MSG, now, []);
      holds.push(a.heldUntil - now);
      expect(s.heldUntil('A', now)).toBe(a.heldUntil);
      expect(s.heldUntil('A', a.heldUntil)).toBeUndefined();
      now = a.heldUntil + 100;
    }
    expect(holds).toEqual([1000, 2000, 4000, 5000, 5000]);
    expect(s.heldUntil('B', now)).toBeUndefined();
    s.worked('A');
    const a = s.failed('A', 'host-a', now, MSG, now + 1, []);
    expect(a.failures).toBe(1);
    expect(a.heldUntil - (now + 1)).toBe(1000);
  });

  it('counts executors launched in one round once', () => {
    const s = new ExecutorStarts(AT_ONCE);
    const first = s.failed('A', 'host-a', 100, MSG, 200, []);
    // A second executor of the same ACCEPT (launched at 100) fails a moment later.
    const same = s.failed('A', 'host-a', 100, 'TASK_FAILED: other', 210, []);
    expect(same.failures).toBe(1);
    expect(same.heldUntil).toBe(first.heldUntil);
    expect(same.lastMessage).toBe('TASK_FAILED: other');
    // Launched after that failure: a new round.
    expect(s.failed('A', 'host-a', 1300, MSG, 1400, []).failures).toBe(2);
  });

  it('gives up the jobs that waited through a failure once every agent that offered lately is failing', () => {
    const s = new ExecutorStarts(AT_ONCE);
    let now = 10_000;
    s.offered('A', now);
    s.offered('B', now);
    for (let round = 1; round <= 3; round++) {
      s.failed('A', 'host-a', now - 1, MSG, now, ['job-1']);
      // B offered and has not failed: an executor may still start there.
      expect(s.giveUp(now, false)).toBeUndefined();
      now += 5000;
      s.offered('A', now);
    }
    for (let round = 1; round <= 2; round++) {
      s.failed('B', 'host-b', now - 1, 'TASK_ERROR: bad image', now, ['job-2']);
      expect(s.giveUp(now, false)).toBeUndefined();
      now += 5000;
    }
    s.failed('B', 'host-b', now - 1, 'TASK_ERROR: bad image', now, []);
    // A registered executor in service can still take the waiting work.
    expect(s.giveUp(now, true)).toBeUndefined();
    const verdict = s.giveUp(now, false);
    expect([...(verdict?.jobs ?? [])].sort()).toEqual(['job-1', 'job-2']);
    expect(verdict?.message).toMatch(new RegExp(`^${EXECUTOR_START_FAILED}: `));
    expect(verdict?.message).toContain('3 launches in a row on host-b ended before the executor registered, the last with TASK_ERROR: bad image');
    expect(verdict?.message).toContain(`on host-a ended before the executor registered, the last with ${MSG}`);
    // A job that ended (failed by the verdict) is not named again.
    s.forgetJob('job-1');
    s.forgetJob('job-2');
    expect(s.giveUp(now, false)).toBeUndefined();
  });

  it('waits for a launch made after its agent\'s last failure, which may still register', () => {
    const s = new ExecutorStarts(AT_ONCE);
    let now = 10_000;
    for (let round = 1; round <= 3; round++) {
      s.offered('A', now);
      s.failed('A', 'host-a', now - 1, MSG, now, ['job-1']);
      now += 5000;
    }
    // The third round's failure was recorded at now - 5000; a launch since is undecided.
    expect(s.giveUp(now, false, [{ agentId: 'A', launchedAt: now - 1 }])).toBeUndefined();
    // So is one on an agent that never failed, however long ago it offered.
    expect(s.giveUp(now, false, [{ agentId: 'Z', launchedAt: 0 }])).toBeUndefined();
    // A straggler of a round already counted decides nothing new.
    expect(s.giveUp(now, false, [{ agentId: 'A', launchedAt: now - 5001 }])?.jobs).toEqual(['job-1']);
  });

  it('needs fresh evidence after an executor registers, and forgets agents that stopped offering', () => {
    const s = new ExecutorStarts({ ...AT_ONCE, offerMemoryMs: 30_000 });
    let now = 0;
    s.offered('B', now);
    for (let i = 0; i < 3; i++) {
      now += 5000;
      s.offered('A', now);
      s.failed('A', 'host-a', now - 1, MSG, now, ['job-1']);
    }
    // B offered 15 s ago and never failed.
    expect(s.giveUp(now, false)).toBeUndefined();
    now += 20_000;
    s.offered('A', now);
    s.failed('A', 'host-a', now - 1, MSG, now, ['job-1']);
    // B has not offered for 35 s: only A is left, and it is failing.
    expect(s.giveUp(now, false)?.jobs).toEqual(['job-1']);
    // An executor finishes an attempt somewhere: the witnesses are cleared; job-1 must see a new failure.
    s.worked('B');
    expect(s.giveUp(now, false)).toBeUndefined();
    s.failed('A', 'host-a', now, MSG, now + 1, ['job-1']);
    expect(s.giveUp(now + 1, false)?.jobs).toEqual(['job-1']);
    // The agent is removed: nothing is left that offered, and nothing gives up for want of evidence.
    s.agentLost('A');
    expect(s.giveUp(now + 1, false)).toBeUndefined();
  });

  it('gives up only once the failures have gone on for giveUpAfterMs, riding out a short outage', () => {
    const s = new ExecutorStarts({ giveUpAfterMs: 60_000 });
    let now = 0;
    // Three failed rounds in four seconds (holds of 1 s and 2 s): a passing outage looks so too.
    for (let i = 0; i < 3; i++) {
      s.offered('A', now);
      s.failed('A', 'host-a', now - 1, MSG, now, ['job-1']);
      now += 2000;
    }
    expect(s.giveUp(now, false)).toBeUndefined();
    // Still failing a minute after the first failure: the job gives up.
    now = 60_000;
    s.offered('A', now);
    s.failed('A', 'host-a', now - 1, MSG, now, ['job-1']);
    expect(s.giveUp(now, false)?.jobs).toEqual(['job-1']);
    // An attempt finished there starts the count (and the minute) again.
    s.worked('A');
    now += 1000;
    s.offered('A', now);
    for (let i = 0; i < 3; i++) s.failed('A', 'host-a', now + i * 10 - 1, MSG, now + i * 10, ['job-1']);
    expect(s.giveUp(now + 30, false)).toBeUndefined();
  });
});
