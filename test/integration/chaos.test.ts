/**
 * The chaos suite, bounded (bench/chaos.ts with QUICK: each fault once or
 * twice on 60-task two-stage jobs): with real processes (two `locus framework
 * --ha` instances, ZooKeeper, Redis with AOF, the local cluster), every job
 * completes, no task is lost, no output is committed twice and the volume
 * reserved at the start survives every fault. fill-disk (root only) fills one
 * agent's size-limited work directory mid-job: at least one attempt must fail
 * there (else the fault did nothing) and the job still complete.
 * restart-master runs in its own environment (a master alone and three
 * `locus agent` processes): the master is stopped and started again on its
 * port with its work directory, the agents must register again, and no
 * attempt may fail or be lost across the restart. cut-agent runs on
 * separate hosts (network namespaces in 10.77.0.0/24) and cuts the volume's
 * host's link for 12 s: the agent is lost, comes back, registers again and
 * the volume is READY; under CI, or wherever namespaces can be made, it must
 * be that real cut (not the fallback that stops the agent's process).
 * `npm run chaos` runs the full version and records its figures in bench/results/.
 */
import { expect, it } from 'vitest';
import { describeWith, ZOOKEEPER } from '../harness/requires.js';
import { NETNS } from '../harness/hosts.js';
import { QUICK, runChaos } from '../../bench/chaos.js';

describeWith([ZOOKEEPER], 'chaos (bounded)', () => {
  it('every fault leaves every job completed, 0 tasks lost, 0 outputs committed twice, 0 volumes lost', async () => {
    const lines: string[] = [];
    // fill-disk mounts a size-limited tmpfs as one agent's work directory: root only.
    const root = process.getuid?.() === 0;
    const out = await runChaos({ ...QUICK, runs: { ...QUICK.runs, 'fill-disk': root ? QUICK.runs['fill-disk'] : 0 }, log: (l) => lines.push(l) });
    expect(out.scenarios.map((s) => s.name)).toEqual(['kill-leader', 'pause-leader', 'kill-executor', 'kill-redis', 'master-streams', 'restart-master', ...(root ? ['fill-disk'] : []), 'cut-agent', 'lose-agent']);
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
    const cut = out.scenarios.find((s) => s.name === 'cut-agent');
    if (NETNS.missing === undefined || process.env['CI'] === 'true') expect(cut?.fault, JSON.stringify(cut)).toMatch(/^link cut: /);
  }, 20 * 60_000);
});
