/**
 * The pure decisions behind recomputing outputs lost with a host: which
 * committed parts are lost (partsLostWith), and executor placement keeping
 * one executor — one block server — on a host whose outputs a running job
 * still reads.
 */
import { describe, expect, it } from 'vitest';
import { partsLostWith, type CommittedPart } from '../../src/scheduler/jobs/outputs.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { place } from '../../src/scheduler/placement/index.js';
import { exec, indexOf, snap } from './placement-builders.js';

const spec = validateJobSpec({
  name: 'three-stage',
  stages: [
    { name: 'map', tasks: [{ command: ['a'] }, { command: ['b'] }], task: { command: ['true'] } },
    { name: 'combine', tasks: [{ command: ['c'] }], task: { command: ['true'] } },
    { name: 'reduce', tasks: [{ command: ['d'] }], task: { command: ['true'] } },
  ],
});
const OUT = '/state/outputs/default/job-1';

function part(stage: number, index: number, host: string, path: string, generation = 0): CommittedPart {
  return { stage, index, generation, record: { attemptId: `job-1.${stage}.${index}.a1`, host, path, size: 10, files: [{ name: 'x', size: 10 }], committedAt: 1 } };
}

describe('partsLostWith: which committed outputs a lost host takes with it', () => {
  const parts = [
    part(0, 0, 'h1', '/srv/out/job-1/map/00000'),
    part(0, 1, 'h2', '/srv/out/job-1/map/00001'),
    // Committed under the shared output root: every host sees it, nothing is lost with h1.
    part(1, 0, 'h1', `${OUT}/combine/00000`),
    // The last stage's output is the job's result, read by no later stage.
    part(2, 0, 'h1', '/srv/out/job-1/reduce/00000'),
  ];
  const cases: { name: string; host: string; state: 'RUNNING' | 'SUCCEEDED' | 'CANCELLED'; stage: number; want: string[] }[] = [
    { name: 'host-local outputs of an earlier stage on the lost host', host: 'h1', state: 'RUNNING', stage: 1, want: ['0.0'] },
    { name: 'the other host', host: 'h2', state: 'RUNNING', stage: 1, want: ['0.1'] },
    { name: 'a host holding nothing', host: 'h9', state: 'RUNNING', stage: 2, want: [] },
    { name: 'a stage still running loses its committed parts too (its successor will read them)', host: 'h1', state: 'RUNNING', stage: 0, want: ['0.0'] },
    { name: 'a finished job needs nothing', host: 'h1', state: 'SUCCEEDED', stage: 2, want: [] },
    { name: 'a cancelled job needs nothing', host: 'h2', state: 'CANCELLED', stage: 1, want: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const lost = partsLostWith(c.host, { state: c.state, stage: c.stage, outputDir: OUT, spec }, parts);
      expect(lost.map((p) => `${p.stage}.${p.index}`)).toEqual(c.want);
    });
  }

  it('a part of a stage not started yet is never lost (it cannot have been committed in this run)', () => {
    const lost = partsLostWith('h1', { state: 'RUNNING', stage: 0, outputDir: OUT, spec }, [part(1, 0, 'h1', '/srv/out/job-1/combine/00000')]);
    expect(lost).toEqual([]);
  });

  it('keeps the generation of the record it was given (the one to reopen)', () => {
    const lost = partsLostWith('h1', { state: 'RUNNING', stage: 1, outputDir: OUT, spec }, [part(0, 0, 'h1', '/srv/out/job-1/map/00000~g2', 2)]);
    expect(lost.map((p) => p.generation)).toEqual([2]);
  });
});

describe('executor placement keeps a block server on hosts holding needed outputs', () => {
  const idle = { idleSince: 0, freeSince: 0 };

  it('releases idle executors elsewhere but keeps one on an output host', () => {
    const plan = place(snap(600_000, {
      executors: [
        exec('r1-h1', { executorId: 'a', ...idle }),
        exec('r1-h1', { executorId: 'b', slots: 2, freeSlots: 2, ...idle }),
        exec('r1-h2', { executorId: 'c', ...idle }),
      ],
      outputHosts: new Set(['r1-h1']),
    }), indexOf([]));
    // The one with the most slots stays on r1-h1; the rest go.
    expect(plan.releases.map((r) => r.executorId).sort()).toEqual(['a', 'c']);
  });

  it('keeps nothing extra when a busy executor already serves the host', () => {
    const plan = place(snap(600_000, {
      executors: [exec('r1-h1', { executorId: 'a', ...idle }), exec('r1-h1', { executorId: 'busy', freeSlots: 0, idleSince: undefined })],
      outputHosts: new Set(['r1-h1']),
    }), indexOf([]));
    expect(plan.releases.map((r) => r.executorId)).toEqual(['a']);
  });

  it('a draining executor goes as asked (maintenance wins; the outputs are recomputed)', () => {
    const plan = place(snap(600_000, {
      executors: [exec('r1-h1', { executorId: 'd', draining: true, ...idle })],
      outputHosts: new Set(['r1-h1']),
    }), indexOf([]));
    expect(plan.releases).toEqual([{ executorId: 'd', reason: 'drained' }]);
  });

  it('without output hosts, idle executors are released as before', () => {
    const plan = place(snap(600_000, { executors: [exec('r1-h1', { executorId: 'a', ...idle })] }), indexOf([]));
    expect(plan.releases).toEqual([{ executorId: 'a', reason: 'idle' }]);
  });
});
