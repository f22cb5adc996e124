/**
 * A job's final output written to HDFS from agents that are separate hosts
 * (network namespaces joined by 100 Mbit/s links, outputs kept on the hosts):
 * the repository's WebHDFS server listens on the bridge, the maps commit on
 * their hosts, and the reduce's host streams its output to the DataNode
 * itself (WebHDFS CREATE's redirect followed from inside its namespace); the
 * output is read back with OPEN and nothing of the maps went to HDFS.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../harness/requires.js';
import { NETNS } from '../harness/hosts.js';
import { HOST_OUTPUTS_DIR, startHostsCluster, startHostsFramework, type HostsCluster } from '../harness/hosts-cluster.js';
import { startWebHdfsServer, type WebHdfsServer } from '../harness/webhdfs-server.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import type { CommittedOutput } from '../../src/executor/contract.js';
import { WebHdfsBackend } from '../../src/storage/hdfs/backend.js';
import { HostMapper } from '../../src/storage/hostmap.js';
import { commitRecordOf, waitForJob } from './framework-harness.js';


describeWith([NETNS], 'separate hosts: the final output goes to HDFS from the host that computed it', () => {
  let bed: HostsCluster | undefined;
  let fw: RunningFramework | undefined;
  let admin: Redis | undefined;
  let nn: WebHdfsServer | undefined;
  const hdfs = new WebHdfsBackend({}, new HostMapper({}));
  const lines = [3000, 4000, 5000];

  beforeAll(async () => {
    bed = await startHostsCluster({ hosts: 3, rate: '100mbit' });
    // The NameNode and its DataNode on the bridge, where the hosts reach them (as they reach Redis).
    nn = await startWebHdfsServer({ files: [], bind: { namenode: bed.hosts.gateway, datanode: bed.hosts.gateway } });
    fw = await startHostsFramework(bed);
    admin = bed.redis.client();
    const src = join(bed.dir, 'text');
    mkdirSync(src, { recursive: true });
    lines.forEach((n, i) => writeFileSync(join(src, `part-${i}.txt`), Array.from({ length: n }, (_, j) => `word${j % 11} host-data-${i}`).join('\n') + '\n'));
    await bed.putDataset(src, 'spread', 1);
  }, 180_000);

  afterAll(async () => {
    admin?.disconnect();
    await fw?.stop();
    await hdfs.close();
    await nn?.close();
    await bed?.dispose();
  }, 120_000);

  const record = async (taskId: string): Promise<CommittedOutput> => {
    if (!admin) throw new Error('set-up failed');
    return await commitRecordOf(admin, taskId);
  };

  it('a two-stage job whose reduce output is created in HDFS by the reduce\'s host', async () => {
    if (!bed || !fw || !nn) throw new Error('set-up failed');
    const out = `hdfs://${bed.hosts.gateway}:${nn.port}/results/lines`;
    const job = await fw.jobs.submit('default', validateJobSpec({
      name: 'lines-to-hdfs', output: out,
      stages: [
        { name: 'map', inputs: ['local://spread/'], split: 'file', task: { command: ['sh', '-c', "wc -l < '{split.path}' > '{output}/lines'"], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } } },
        {
          name: 'reduce', inputs: ['stage:map'],
          tasks: [{ command: ['sh', '-c', "cat {stages.map.output}/*/lines | awk '{s+=$1} END {print s}' > '{output}/total'"] }],
          task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
        },
      ],
    }));
    const done = await waitForJob(() => fw?.jobs.get(job.id) ?? Promise.reject(new Error('no framework')), 180_000);
    expect(done.state, done.message).toBe('SUCCEEDED');
    const reduce = await record(`${job.id}.1.0`);
    expect(reduce.path).toBe(`${out}/reduce/00000`);
    const parts: Buffer[] = [];
    for await (const c of await hdfs.read(`${out}/reduce/00000/total`, 0, 1 << 20)) parts.push(c as Buffer);
    expect(Buffer.concat(parts).toString('utf8')).toBe(`${lines.reduce((a, b) => a + b, 0)}\n`);
    // The bytes went from the reduce's host (its own address on the bridge) to the DataNode.
    const host = bed.hosts.hosts.find((h) => h.name === reduce.host);
    expect(host).toBeDefined();
    expect([...(nn.peers.get('DN_CREATE') ?? [])]).toEqual([host?.ip]);
    // The maps stayed on their hosts; only the reduce's directory is in HDFS.
    for (let i = 0; i < 3; i++) expect((await record(`${job.id}.0.${i}`)).path.startsWith(`${HOST_OUTPUTS_DIR}/`)).toBe(true);
    expect(nn.tree().filter((p) => p.startsWith('/results/lines/reduce/'))).toEqual(['/results/lines/reduce/', '/results/lines/reduce/00000/', '/results/lines/reduce/00000/_SUCCESS', '/results/lines/reduce/00000/total']);
  }, 240_000);
});
