/**
 * The chaos suite, bounded (bench/chaos.ts with QUICK: each fault once or
 * twice on 60-task two-stage jobs): with real processes (two `locus framework
 * --ha` instances, ZooKeeper, Redis with AOF, the local cluster), every job
 * completes, no task is lost, no output is committed twice and the volume
 * reserved at the start survives every fault. `npm run chaos` runs the full
 * version and records its figures in bench/results/.
 */
import { expect, it } from 'vitest';
import { describeWith, ZOOKEEPER } from '../harness/requires.js';
import { QUICK, runChaos } from '../../bench/chaos.js';

describeWith([ZOOKEEPER], 'chaos (bounded)', () => {
  it('every fault leaves every job completed, 0 tasks lost, 0 outputs committed twice, 0 volumes lost', async () => {
    const lines: string[] = [];
    const out = await runChaos({ ...QUICK, log: (l) => lines.push(l) });
    expect(out.scenarios.map((s) => s.name)).toEqual(['kill-leader', 'pause-leader', 'kill-executor', 'kill-redis', 'master-streams', 'cut-agent', 'lose-agent']);
    for (const s of out.scenarios) {
      const why = `${s.name}: ${JSON.stringify(s)}\n${lines.join('\n')}`;
      expect(s.problems, why).toEqual([]);
      expect(s.jobs, why).toBeGreaterThan(0);
      expect(s.jobsCompleted, why).toBe(s.jobs);
      expect(s.tasksLost, why).toBe(0);
      expect(s.duplicateOutputs, why).toBe(0);
      expect(s.volumesLost, why).toBe(0);
      expect(s.recoverySecondsMax, why).toBeGreaterThan(0);
    }
  }, 20 * 60_000);
});
