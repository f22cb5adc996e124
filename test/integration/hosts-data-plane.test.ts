/**
 * The data plane on agents that are separate hosts (network namespaces with
 * 100 Mbit/s links and private directories, see test/harness/hosts.ts), with
 * outputs kept on the hosts (`shared-outputs: false`) and block servers
 * listening on the hosts' own addresses: a two-stage job whose maps commit on
 * three hosts and whose reduce reads the other hosts' outputs over the links;
 * then maps pinned to one host read the files that live only on the other
 * hosts through their block servers.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../harness/requires.js';
import { NETNS } from '../harness/hosts.js';
import { INPUT_UNREACHABLE } from '../../src/executor/contract.js';
import { HOST_OUTPUTS_DIR, startHostsCluster, startHostsFramework, type HostsCluster } from '../harness/hosts-cluster.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { commitRecordOf, waitForJob } from './framework-harness.js';


describeWith([NETNS], 'separate hosts: inputs and stage outputs cross the links through block servers', () => {
  let bed: HostsCluster | undefined;
  let fw: RunningFramework | undefined;
  let admin: Redis | undefined;
  const lines = [3000, 4000, 5000];

  beforeAll(async () => {
    bed = await startHostsCluster({ hosts: 3, rate: '100mbit' });
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
    await bed?.dispose();
  }, 120_000);

  const need = (): { bed: HostsCluster; fw: RunningFramework; admin: Redis } => {
    if (!bed || !fw || !admin) throw new Error('set-up failed');
    return { bed, fw, admin };
  };
  const record = commitRecordOf;

  it('maps commit on their hosts; the reduce reads the other hosts\' outputs over the links', async () => {
    const { bed, fw, admin } = need();
    const job = await fw.jobs.submit('default', validateJobSpec({
      name: 'count-across-hosts',
      stages: [
        { name: 'map', inputs: ['local://spread/'], split: 'file', task: { command: ['sh', '-c', "wc -l < '{split.path}' > '{output}/lines'"], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } } },
        {
          name: 'reduce', inputs: ['stage:map'],
          tasks: [{ command: ['sh', '-c', "cat {stages.map.output}/*/lines | awk '{s+=$1} END {print s}' > '{output}/total'"] }],
          task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
        },
      ],
    }));
    const done = await waitForJob(() => fw.jobs.get(job.id), 180_000);
    expect(done.state, done.message).toBe('SUCCEEDED');
    const mapHosts = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const rec = await record(admin, `${job.id}.0.${i}`);
      mapHosts.add(rec.host);
      const h = bed.hosts.hosts.find((x) => x.name === rec.host);
      if (!h) throw new Error(`unknown host ${rec.host}`);
      // The output is in that host's private directory, served by a block server on its own address.
      expect(rec.path.startsWith(`${HOST_OUTPUTS_DIR}/${h.name}/`)).toBe(true);
      expect(rec.blockServer?.startsWith(`${h.ip}:`)).toBe(true);
      expect(lines).toContain(Number(readFileSync(bed.hosts.outside(h, join(rec.path, 'lines')), 'utf8').trim()));
    }
    expect(mapHosts.size).toBe(3);
    const reduce = await record(admin, `${job.id}.1.0`);
    const rh = bed.hosts.hosts.find((x) => x.name === reduce.host);
    if (!rh) throw new Error(`unknown host ${reduce.host}`);
    expect(Number(readFileSync(bed.hosts.outside(rh, join(reduce.path, 'total')), 'utf8').trim())).toBe(lines.reduce((a, b) => a + b, 0));
  }, 240_000);

  it('maps pinned to one host read the files living only on the others through their block servers', async () => {
    const { bed, fw, admin } = need();
    const [target] = bed.hosts.hosts;
    if (!target) throw new Error('no host');
    const job = await fw.jobs.submit('default', validateJobSpec({
      name: 'pinned', retries: 0,
      inputs: ['local://spread/'], split: 'file',
      constraints: [{ hostname: target.name }],
      task: { command: ['sh', '-c', "wc -l < '{split.path}' > '{output}/lines'"], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
    }));
    const done = await waitForJob(() => fw.jobs.get(job.id), 180_000);
    // On failure, say what each attempt met (which block server, which error): the only record
    // of a flaky remote read once the hosts are gone.
    const attemptsOf = async (): Promise<string> => JSON.stringify(await Promise.all([0, 1, 2].map(async (i) => (await fw.jobs.getTaskRecord(`${job.id}.0.${i}`))?.attempts.map((a) => ({ host: a.host, state: a.state, reason: a.reason, message: a.message })))));
    expect(done.state, `${done.message ?? ''} ${done.state === 'SUCCEEDED' ? '' : await attemptsOf()}`).toBe('SUCCEEDED');
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = await fw.jobs.getTaskRecord(`${job.id}.0.${i}`);
      const attempts = t?.attempts ?? [];
      // Every attempt ran on the pinned host. One whose input's host had no block server up yet
      // (no executor there at that moment) fails as that host's fault (INPUT_UNREACHABLE, not
      // counted: retries is 0) and is retried; the last one read the file through it.
      expect(attempts.map((a) => a.host)).toEqual(attempts.map(() => target.name));
      expect(attempts.slice(0, -1).map((a) => a.reason), JSON.stringify(attempts)).toEqual(attempts.slice(0, -1).map(() => INPUT_UNREACHABLE));
      expect(attempts[attempts.length - 1]?.state).toBe('SUCCEEDED');
      const rec = await record(admin, `${job.id}.0.${i}`);
      counts.push(Number(readFileSync(bed.hosts.outside(target, join(rec.path, 'lines')), 'utf8').trim()));
    }
    expect(counts.sort((a, b) => a - b)).toEqual(lines);
  }, 240_000);
});
