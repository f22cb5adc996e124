/**
 * The framework on the real local cluster with outputs kept per host
 * (`shared-outputs: false`, what `--executor-uri`/`--executor-image` get):
 * map outputs are committed on the host that wrote them and recorded in
 * Redis, the reduce is placed next to the largest share of them and reads
 * the others through the other hosts' block servers; and a map task placed
 * away from every replica of its input reads it through a block server
 * instead of failing with "no storage backend for 'local://'".
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { putLocalDataset } from '../../src/storage/local/put.js';
import type { CommittedOutput } from '../../src/executor/contract.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { commitRecordOf, startBed, startInProcess, waitForJob, type Bed } from './framework-harness.js';

let bed: Bed;
let fw: RunningFramework;
let admin: Redis;

beforeAll(async () => {
  bed = await startBed();
  // One replica per file: the primaries rotate over the agents, so node-local maps run on every
  // host (with two replicas on two racks of three agents, one agent holds every file).
  const text = join(bed.dir, 'spread-text');
  mkdirSync(text);
  for (let i = 0; i < 6; i++) writeFileSync(join(text, `s-${i}.txt`), Array.from({ length: 2000 }, (_, j) => `word${j % 7} spread${i}`).join('\n'));
  await putLocalDataset({ workDir: join(bed.dir, 'local'), source: text, dataset: 'spread', replicas: 1 });
  fw = await startInProcess(bed, { 'shared-outputs': 'false', 'executor-idle-timeout': '60s' });
  admin = bed.redis.client();
}, 60_000);

afterAll(async () => {
  admin?.disconnect();
  await fw?.stop();
  await bed?.dispose();
});

const record = (taskId: string): Promise<CommittedOutput> => commitRecordOf(admin, taskId);

describe('outputs kept where they were written', () => {
  it('a two-stage job: map outputs recorded per host, the reduce placed near the largest share and reading the rest over the network', async () => {
    const spec = validateJobSpec({
      name: 'map-reduce-hosts',
      // Every map on a host holding its file, so the outputs end up spread over the hosts (the
      // replicas are), and the reduce waits for the host holding the largest share.
      locality: 'node-only',
      stages: [
        {
          name: 'map', inputs: ['local://spread/'], split: 'file',
          task: { command: ['sh', '-c', "grep -c word3 '{split.path}' > '{output}/n'"], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
        },
        {
          name: 'reduce', inputs: ['stage:map'],
          tasks: [{ command: ['sh', '-c', "cat {stages.map.output}/*/n | awk '{s+=$1} END {print s}' > '{output}/total'"] }],
          task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
        },
      ],
    });
    const job = await fw.jobs.submit('default', spec);
    const done = await waitForJob(() => fw.jobs.get(job.id), 90_000);
    expect(done.state).toBe('SUCCEEDED');
    expect(done.counts.total).toBe(7);

    const hostRoot = join(bed.dir, 'state', 'host-outputs');
    const bytes = new Map<string, number>();
    for (let i = 0; i < 6; i++) {
      const rec = await record(`${job.id}.0.${i}`);
      const task = await fw.jobs.getTaskRecord(`${job.id}.0.${i}`);
      const last = task?.attempts[task.attempts.length - 1];
      // Committed on the host that ran it, under that host's own directory, by the attempt that won.
      expect(rec.host).toBe(last?.host);
      expect(rec.attemptId).toBe(last?.attemptId);
      expect(rec.path.startsWith(join(hostRoot, rec.host) + '/')).toBe(true);
      expect(rec.blockServer).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(readFileSync(join(rec.path, 'n'), 'utf8').trim()).toBe('286');
      bytes.set(rec.host, (bytes.get(rec.host) ?? 0) + rec.size);
    }
    // The maps ran on every host, so the reduce had to read outputs from other hosts.
    expect(bytes.size).toBe(3);
    // Nothing went to the framework's own output directory.
    expect(existsSync(join(done.outputDir, 'map'))).toBe(false);

    const reduce = await record(`${job.id}.1.0`);
    const reduceTask = await fw.jobs.getTaskRecord(`${job.id}.1.0`);
    const most = Math.max(...bytes.values());
    expect(bytes.get(reduce.host)).toBe(most);
    expect(reduceTask?.attempts[0]?.locality).toBe(0);
    expect(readFileSync(join(reduce.path, 'total'), 'utf8').trim()).toBe(String(6 * 286));
  }, 120_000);

  it('a stage with one task per file of an earlier stage\'s outputs reads them from the hosts that hold them', async () => {
    const spec = validateJobSpec({
      name: 'per-file-over-outputs',
      stages: [
        {
          name: 'map', inputs: ['local://spread/'], split: 'file',
          task: { command: ['sh', '-c', "grep -c word3 '{split.path}' > '{output}/n'"], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
        },
        {
          name: 'double', inputs: ['stage:map'], split: 'file',
          task: { command: ['sh', '-c', "echo $(( $(cat '{split.path}') * 2 )) > '{output}/n2'"], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
        },
      ],
    });
    const job = await fw.jobs.submit('default', spec);
    const done = await waitForJob(() => fw.jobs.get(job.id), 90_000);
    expect(done.state, done.message).toBe('SUCCEEDED');
    // One task per committed map output file.
    expect(done.stages[1]?.taskCount).toBe(6);
    for (let i = 0; i < 6; i++) {
      const rec = await record(`${job.id}.1.${i}`);
      expect(readFileSync(join(rec.path, 'n2'), 'utf8').trim()).toBe('572');
    }
  }, 120_000);

  it('a map task placed away from every replica of its input reads it through a block server', async () => {
    const [file] = await fw.storage.resolve('local://words/part-0.txt', { split: 'file' });
    const replicas = file?.splits[0]?.hosts ?? [];
    expect(replicas).toHaveLength(2);
    const spec = validateJobSpec({
      name: 'away-from-data', retries: 0,
      inputs: ['local://words/part-0.txt'], split: 'file',
      constraints: [{ notHostnames: [...replicas] }],
      task: { command: ['sh', '-c', "grep -c word3 '{split.path}' > '{output}/n'"], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
    });
    const job = await fw.jobs.submit('default', spec);
    const done = await waitForJob(() => fw.jobs.get(job.id), 60_000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}; explain: ${JSON.stringify(await fw.coordinator.explain(`${job.id}.0.0`).catch((e: unknown) => String(e)))}`);
    });
    const task = await fw.jobs.getTaskRecord(`${job.id}.0.0`);
    expect(done.state, JSON.stringify(task?.attempts)).toBe('SUCCEEDED');
    // Nothing failed on the way (no "no storage backend for 'local://'"): an attempt before the
    // last may only be an uncounted retry because a replica host's block server was not reachable
    // yet (its executor starting while files run two at a time), never any other failure.
    const attempts = task?.attempts ?? [];
    for (const a of attempts.slice(0, -1)) expect(a.reason, JSON.stringify(attempts)).toBe('INPUT_UNREACHABLE');
    expect(attempts.length, JSON.stringify(attempts)).toBeLessThanOrEqual(3);
    const host = attempts[attempts.length - 1]?.host ?? '';
    expect(replicas).not.toContain(host);
    const rec = await record(`${job.id}.0.0`);
    expect(readFileSync(join(rec.path, 'n'), 'utf8').trim()).toBe('286');
    // The attempt was told to read through the block servers of the replica hosts.
    const payload = task === undefined ? undefined : await fw.jobs.payloadFor(task);
    expect(payload?.split?.localPath).toBeUndefined();
    const sources = payload?.split?.sources ?? [];
    expect(sources.length).toBeGreaterThan(0);
    for (const s of sources) {
      expect(replicas).toContain(s.host);
      expect(s).toMatchObject({ root: 'datasets', path: 'words/part-0.txt' });
    }
  }, 120_000);
});
