/**
 * The `executor-held-starts` setting reaches the executors the framework launches on the local
 * cluster: with `true` they are started with `--held-starts on`, attempts' containers start held
 * at their gates while the job runs (the gates appear in the executors' scratch directories), and
 * a job of short tasks runs to the end, every task once; with `false` no executor is asked and no
 * gate appears; by default they are given no flag, and so hold as their own default `auto` says (while their host's CPUs idle enough:
 * whether they do depends on the machine's load, so test/unit/held-starts-auto.test.ts tests
 * the decision). The gate itself is test/unit/start-gate.test.ts's, the attempt's steps
 * test/unit/attempt-held-start.test.ts's and a real executor's test/integration/executor-prefetch.test.ts's.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBed, startInProcess, waitForJob, type Bed } from './framework-harness.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';

// One bed per run: a run's executors outlive their framework until they idle out, and are told
// apart from the other run's by their Redis.
let beds: Bed[] = [];

beforeAll(async () => {
  beds = [await startBed({ agents: 1, files: 1 }), await startBed({ agents: 1, files: 1 }), await startBed({ agents: 1, files: 1 })];
}, 180_000);

afterAll(async () => {
  for (const b of beds) await b.dispose();
});

/** Directories below `dir` reached by following `path` ('*' matches any name). */
function expand(dir: string, path: readonly string[]): string[] {
  if (path.length === 0) return [dir];
  const [head, ...rest] = path;
  if (head !== '*') return existsSync(join(dir, head ?? '')) ? expand(join(dir, head ?? ''), rest) : [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((n) => expand(join(dir, n), rest));
}

/** Start gates (FIFOs) in the local cluster's executors' scratch directories now. */
function gates(bed: Bed): number {
  const scratch = expand(join(bed.dir, 'local', 'agents'), ['*', 'slaves', '*', 'frameworks', '*', 'executors', '*', 'runs', '*', 'scratch']);
  let n = 0;
  for (const d of scratch) {
    try {
      for (const f of readdirSync(d)) if (f.endsWith('.start') && statSync(join(d, f)).isFIFO()) n++;
    } catch {
      // Gone meanwhile.
    }
  }
  return n;
}

/** Running executor processes of this bed's Redis, by pid: the held starts each was asked for ('default' when not: the executor's own, auto). */
function executorsAsked(bed: Bed): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (!argv.includes('--executor-id') || !argv.includes(bed.redis.url)) continue;
      const i = argv.indexOf('--held-starts');
      out.set(Number(name), i >= 0 ? (argv[i + 1] ?? '') : 'default');
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

async function runWith(bed: Bed, name: string, extra: Record<string, string>): Promise<{ asked: string[]; gatesSeen: number }> {
  const fw = await startInProcess(bed, { 'state-dir': `${bed.dir}/state-${name}`, ...extra });
  try {
    const submitted = await fw.jobs.submit('default', validateJobSpec({
      name, retries: 0,
      // A whole CPU each, so the executor's few slots are what attempts wait for (a held start
      // is one waiting for its slot): with 0.1 CPU each, a loaded host's set-ups were slower
      // than slots freed, no attempt ever waited, and none was held (CI run 78).
      task: { command: ['sleep', '0.5'], resources: { cpus: 1, mem: '32MiB' } },
      tasks: Array.from({ length: 24 }, () => ({})),
    }));
    let asked: string[] = [];
    let gatesSeen = 0;
    for (;;) {
      const job = await fw.jobs.get(submitted.id);
      if (job.state !== 'RUNNING' && job.state !== 'PENDING' && job.state !== 'RESOLVING') break;
      const now = [...executorsAsked(bed).values()];
      if (now.length > 0) asked = now;
      gatesSeen = Math.max(gatesSeen, gates(bed));
      await new Promise((r) => setTimeout(r, 20));
    }
    const done = await waitForJob(() => fw.jobs.get(submitted.id));
    expect(done.state, done.message).toBe('SUCCEEDED');
    expect(done.counts.succeeded).toBe(24);
    for (const t of await fw.jobs.tasks(submitted.id)) expect(t.attempts.filter((a) => a.state === 'SUCCEEDED'), t.id).toHaveLength(1);
    return { asked, gatesSeen };
  } finally {
    await fw.stop();
  }
}

describe('executor-held-starts setting', () => {
  it('with true, the local cluster\'s executors start attempts held and a job of short tasks runs to the end, each task once; with false none; by default they are asked for auto', async () => {
    const on = await runWith(beds[0] as Bed, 'held-on', { 'executor-held-starts': 'true' });
    expect(on.asked.length).toBeGreaterThan(0);
    expect(on.asked.every((a) => a === 'on')).toBe(true);
    expect(on.gatesSeen, 'no container was seen held').toBeGreaterThan(0);
    const off = await runWith(beds[1] as Bed, 'held-off', { 'executor-held-starts': 'false' });
    expect(off.asked.length).toBeGreaterThan(0);
    expect(off.asked.every((a) => a === 'off')).toBe(true);
    expect(off.gatesSeen).toBe(0);
    const auto = await runWith(beds[2] as Bed, 'held-auto', {});
    expect(auto.asked.length).toBeGreaterThan(0);
    expect(auto.asked.every((a) => a === 'default')).toBe(true);
  }, 240_000);
});
