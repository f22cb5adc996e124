/**
 * The job's final output where the spec says, end to end on the real local
 * cluster with outputs kept per host (`shared-outputs: false`):
 * - `hdfs://`: a two-stage job whose reduce output is written through WebHDFS
 *   (the repository's WebHDFS server: CREATE's 307/noredirect to a DataNode,
 *   RENAME, MKDIRS) and read back with OPEN; the map outputs stay on the hosts;
 * - `local://`: a job's output committed into the hosts' dataset directories
 *   and listed in the dataset, then read as `local://` input by a second job
 *   whose tasks may only run node-local;
 * - submission refuses unknown schemes (400 UNKNOWN_SCHEME); purging a job
 *   deletes its commit records.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { commitKey, type CommittedOutput } from '../../src/executor/contract.js';
import { readManifest, readTopology } from '../../src/storage/local/dataset.js';
import { WebHdfsBackend } from '../../src/storage/hdfs/backend.js';
import { HostMapper } from '../../src/storage/hostmap.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { LocusError } from '../../src/core/errors.js';
import { startWebHdfsServer, type WebHdfsServer } from '../harness/webhdfs-server.js';
import { commitRecordOf, startBed, startInProcess, waitForJob, type Bed } from './framework-harness.js';

let bed: Bed;
let fw: RunningFramework;
let admin: Redis;
let nn: WebHdfsServer;
let hdfs: WebHdfsBackend;

beforeAll(async () => {
  bed = await startBed();
  nn = await startWebHdfsServer({ files: [] });
  hdfs = new WebHdfsBackend({}, new HostMapper({}));
  fw = await startInProcess(bed, { 'shared-outputs': 'false', 'executor-idle-timeout': '60s' });
  admin = bed.redis.client();
}, 60_000);

afterAll(async () => {
  admin?.disconnect();
  await fw?.stop();
  await hdfs?.close();
  await nn?.close();
  await bed?.dispose();
});

const record = (taskId: string): Promise<CommittedOutput> => commitRecordOf(admin, taskId);

async function readHdfs(uri: string): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of await hdfs.read(uri, 0, 1 << 20)) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

const RES = { cpus: 0.2, mem: '64MiB', disk: '16MiB' };
// Each of the six files of `words` has 2000 lines `word<j % 7> ...`: word3 on 286 of them.
const WORD3_PER_FILE = 286;

describe('final outputs where the spec says', () => {
  it('hdfs://: the reduce output goes through WebHDFS CREATE and RENAME, the map outputs stay on their hosts', async () => {
    const out = `hdfs://127.0.0.1:${nn.port}/results/wc`;
    const job = await fw.jobs.submit('default', validateJobSpec({
      name: 'wc-to-hdfs',
      output: out,
      stages: [
        { name: 'map', inputs: ['local://words/'], split: 'file', task: { command: ['sh', '-c', "grep -c word3 '{split.path}' > '{output}/n'"], resources: RES } },
        {
          name: 'reduce', inputs: ['stage:map'],
          tasks: [{ command: ['sh', '-c', "cat {stages.map.output}/*/n | awk '{s+=$1} END {print s}' > '{output}/total'"] }],
          task: { command: ['true'], resources: RES },
        },
      ],
    }));
    const done = await waitForJob(() => fw.jobs.get(job.id), 120_000);
    expect(done.state).toBe('SUCCEEDED');
    expect(done.counts.total).toBe(7);

    const final = `${out}/reduce/00000`;
    expect(await readHdfs(`${final}/total`)).toBe(`${6 * WORD3_PER_FILE}\n`);
    const rec = await record(`${job.id}.1.0`);
    expect(rec.path).toBe(final);
    expect(JSON.parse(await readHdfs(`${final}/_SUCCESS`))).toMatchObject({ attemptId: rec.attemptId });
    const task = await fw.jobs.getTaskRecord(`${job.id}.1.0`);
    expect(task?.outputPath).toBe(final);
    // Only the last stage went to HDFS, through the DataNode; no attempt's temporary copy is left.
    expect(nn.tree().filter((p) => p.startsWith('/results/'))).toEqual([
      '/results/', '/results/wc/', '/results/wc/_temporary/', '/results/wc/reduce/', '/results/wc/reduce/00000/', '/results/wc/reduce/00000/_SUCCESS', '/results/wc/reduce/00000/total',
    ]);
    expect(nn.counts.get('DN_CREATE')).toBe(2);
    expect(nn.log.filter((l) => l.startsWith('NN PUT') && l.includes('op=CREATE')).every((l) => l.includes('noredirect=true'))).toBe(true);
    for (let i = 0; i < 6; i++) {
      const m = await record(`${job.id}.0.${i}`);
      expect(m.path.startsWith('/')).toBe(true);
      expect(readFileSync(join(m.path, 'n'), 'utf8')).toBe(`${WORD3_PER_FILE}\n`);
    }

    // Deleting the finished job takes its commit records with it; the HDFS output stays.
    expect(await fw.jobs.purge(job.id)).toEqual({ jobId: job.id, commitRecords: 7 });
    expect(await admin.exists(...Array.from({ length: 6 }, (_, i) => commitKey(`${job.id}.0.${i}`)), commitKey(`${job.id}.1.0`))).toBe(0);
    await expect(fw.jobs.get(job.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await readHdfs(`${final}/total`)).toBe(`${6 * WORD3_PER_FILE}\n`);
  }, 150_000);

  it('local://: the output is committed on the hosts, listed in the dataset, and read by the next job node-local', async () => {
    const first = await fw.jobs.submit('default', validateJobSpec({
      name: 'count-to-dataset',
      output: 'local://counts/run1',
      inputs: ['local://words/'], split: 'file',
      task: { command: ['sh', '-c', "grep -c word3 '{split.path}' > '{output}/n'"], resources: RES },
    }));
    const a = await waitForJob(() => fw.jobs.get(first.id), 120_000);
    expect(a.state).toBe('SUCCEEDED');
    const manifest = await readManifest(join(bed.dir, 'local'), 'counts');
    const topology = await readTopology(join(bed.dir, 'local'));
    expect(manifest?.files.map((f) => f.path)).toEqual(Array.from({ length: 6 }, (_, i) => `/run1/main/${String(i).padStart(5, '0')}/n`));
    for (let i = 0; i < 6; i++) {
      const rec = await record(`${first.id}.0.${i}`);
      const listed = manifest?.files[i];
      // Listed with the committing host as its one replica, at the path the host committed it to.
      expect(listed?.blocks.map((b) => b.hosts)).toEqual([[rec.host]]);
      const agent = topology.agents.find((x) => x.hostname === rec.host);
      expect(rec.path).toBe(join(agent?.dataDir ?? '?', 'counts', 'run1', 'main', String(i).padStart(5, '0')));
      expect(readFileSync(join(rec.path, 'n'), 'utf8')).toBe(`${WORD3_PER_FILE}\n`);
    }

    // node-only: a task can only run on the host the dataset lists, so this finishes only if
    // the listing names the right hosts.
    const second = await fw.jobs.submit('default', validateJobSpec({
      name: 'sum-from-dataset',
      locality: 'node-only',
      stages: [
        { name: 'read', inputs: ['local://counts/run1/'], split: 'file', task: { command: ['sh', '-c', "cp '{split.path}' '{output}/n'"], resources: RES } },
        {
          name: 'sum', inputs: ['stage:read'],
          tasks: [{ command: ['sh', '-c', "cat {stages.read.output}/*/n | awk '{s+=$1} END {print s}' > '{output}/total'"] }],
          task: { command: ['true'], resources: RES },
        },
      ],
    }));
    const b = await waitForJob(() => fw.jobs.get(second.id), 120_000);
    expect(b.state).toBe('SUCCEEDED');
    expect(b.counts.nodeLocal).toBeGreaterThanOrEqual(6);
    const sum = await record(`${second.id}.1.0`);
    expect(readFileSync(join(sum.path, 'total'), 'utf8')).toBe(`${6 * WORD3_PER_FILE}\n`);
  }, 250_000);

  it('refuses destinations it cannot write at submission, with stable codes', async () => {
    const spec = (output: string): ReturnType<typeof validateJobSpec> => validateJobSpec({ name: 'bad', output, tasks: [{ command: ['true'] }], task: { command: ['true'] } });
    const code = async (output: string): Promise<string> => {
      try {
        await fw.jobs.submit('default', spec(output));
        return 'accepted';
      } catch (err) {
        return err instanceof LocusError ? `${err.code} ${err.spec.httpStatus}` : String(err);
      }
    };
    expect(await code('s3://bucket/out')).toBe('UNKNOWN_SCHEME 400');
    expect(await code('hdfs:///no-namenode')).toBe('INVALID_FIELD 400');
    expect(await code('hdfs://nn:8020/')).toBe('INVALID_FIELD 400');
    expect(await code('local://bad name/x')).toBe('INVALID_FIELD 400');
    expect(await code('local://ds/../escape')).toBe('INVALID_FIELD 400');
    // The output root keeps its tenant rule.
    expect(await code('file:///etc')).toBe('INVALID_FIELD 400');
  });
});
