/**
 * Standby schedulers with state directories of their own, outputs kept on the hosts
 * (`shared-outputs: false`): real ZooKeeper, Redis, local cluster and `locus framework --ha`
 * processes. A job accepted by one leader and finished by the other is committed under the one
 * output layout of the cluster, `<host-output-dir>/<host>/<tenant>/<job>/…`: the first instance
 * to lead records where outputs go and the other adopts it. Each instance used its own
 * `<state-dir>/outputs` as the root, and the new leader's executors committed the job under
 * `<host-output-dir>/<host>/_other/<first state dir>/outputs/…`. The HTTP and gRPC job views
 * then say the outputs are on the hosts and name that layout, not the job's directory on the
 * framework's machine, which nothing is written to.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBed, type Bed } from './framework-harness.js';
import { startZooKeeper, type TestZooKeeper } from '../harness/zk.js';
import { describeWith, ZOOKEEPER } from '../harness/requires.js';
import { api, spawnHa, TOKEN, waitForLeader, waitForStandbyOf, type HaInstance } from './ha-harness.js';
import { grpcClient } from './surfaces-harness.js';
import { OUTPUT_PLACES_KEY } from '../../src/app/output-places.js';

let bed: Bed;
let zk: TestZooKeeper;
const instances: HaInstance[] = [];

interface TaskOut {
  readonly stage: number;
  readonly state: string;
  readonly outputPath?: string;
  readonly outputHost?: string;
  readonly attempts: readonly { readonly host: string; readonly state: string }[];
}

async function finished(via: HaInstance, id: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api(via.httpUrl, 'GET', `/v1/jobs/${id}`).catch(() => undefined);
    if (r?.status === 200 && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(String(r.json['state']))) return r.json;
    if (Date.now() > deadline) throw new Error(`job ${id} did not finish: ${JSON.stringify(r?.json)}\n${via.output().slice(-3_000)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

describeWith([ZOOKEEPER], 'standby schedulers with their own state dirs, outputs on the hosts', () => {
  beforeAll(async () => {
    zk = await startZooKeeper();
    bed = await startBed({ agents: 2, files: 1 });
  }, 120_000);

  afterAll(async () => {
    for (const i of instances) await i.kill9().catch(() => undefined);
    await bed?.dispose();
    await zk?.stop();
  });

  it('a job accepted by one leader and finished by the other is committed under the one layout, not _other, and the APIs name that layout', async () => {
    const zkUrl = `zk://${zk.connectString}/locus-ha-outputs`;
    const hostOutputs = join(bed.dir, 'host-outputs');
    mkdirSync(hostOutputs, { recursive: true });
    const common = { 'shared-outputs': 'false', 'host-output-dir': hostOutputs };
    const a = await spawnHa(bed, 'a', zkUrl, { ...common, 'state-dir': join(bed.dir, 's1') });
    instances.push(a);
    expect(await waitForLeader([a], 60_000)).toBe(a);
    const b = await spawnHa(bed, 'b', zkUrl, { ...common, 'state-dir': join(bed.dir, 's2') });
    instances.push(b);
    await waitForStandbyOf(b, a, 20_000);

    // The reduce's slot is larger than the maps' executors have, so the leader that runs it
    // launches an executor for it: after the kill, one of b's.
    const submitted = await api(a.httpUrl, 'POST', '/v1/jobs', {
      name: 'ha-outputs', retries: 0,
      stages: [
        {
          name: 'map',
          tasks: [0, 1].map(() => ({ command: ['sh', '-c', "sleep 4; echo {task.index} > '{output}/v'"] })),
          task: { command: ['true'], resources: { cpus: 0.25, mem: '64MiB', disk: '16MiB' } },
        },
        {
          name: 'reduce', inputs: ['stage:map'],
          tasks: [{ command: ['sh', '-c', "cat {stages.map.output}/*/v | sort | tr '\\n' ' ' > '{output}/all'"] }],
          task: { command: ['true'], resources: { cpus: 1, mem: '512MiB', disk: '16MiB' } },
        },
      ],
    });
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    const id = String(submitted.json['id']);
    // Kill the leader while the maps run.
    const deadline = Date.now() + 60_000;
    while (((await api(a.httpUrl, 'GET', `/v1/jobs/${id}`)).json['counts'] as { running?: number } | undefined)?.running === 0) {
      if (Date.now() > deadline) throw new Error('the maps never ran');
      await new Promise((r) => setTimeout(r, 100));
    }
    await a.kill9();
    expect(await waitForLeader([b], 30_000)).toBe(b);
    const job = await finished(b, id, 120_000);
    expect(job['state'], JSON.stringify(job)).toBe('SUCCEEDED');

    const tasks = (await api(b.httpUrl, 'GET', `/v1/jobs/${id}/tasks`)).json['tasks'] as TaskOut[];
    expect(tasks).toHaveLength(3);
    for (const t of tasks) {
      const host = t.attempts.find((x) => x.state === 'SUCCEEDED')?.host ?? '';
      const stage = t.stage === 0 ? 'map' : 'reduce';
      // Every part, whichever leader's executor committed it, under the same layout.
      expect(t.outputPath, JSON.stringify(t)).toMatch(new RegExp(`^${hostOutputs}/${host}/default/${id}/${stage}/0000[01]$`));
      expect(existsSync(t.outputPath ?? '')).toBe(true);
    }
    const reduce = tasks.find((t) => t.stage === 1);
    expect(readFileSync(join(reduce?.outputPath ?? '', 'all'), 'utf8').trim()).toBe('0 1');
    // The standby adopted the first leader's output root, and said so.
    const conn = bed.redis.client();
    const recorded = JSON.parse((await conn.get(OUTPUT_PLACES_KEY).finally(() => conn.disconnect())) ?? '{}') as { root?: string };
    expect(recorded.root).toBe(join(bed.dir, 's1', 'outputs'));
    expect(b.output()).toContain(`the cluster's output root is ${join(bed.dir, 's1', 'outputs')}`);
    // The APIs tell where the outputs are: on the hosts, by the same layout, never the job's
    // directory under the output root (on the framework's machine, and empty).
    const pattern = `${hostOutputs}/{host}/default/${id}`;
    expect(job).toMatchObject({ outputKept: 'hosts', output: pattern, outputDir: pattern, hostOutputs: { directory: pattern, tasks: `/v1/jobs/${id}/tasks` } });
    for (const t of tasks) expect(t.outputPath).toBe(join(pattern.replace('{host}', t.outputHost ?? '?'), t.stage === 0 ? 'map' : 'reduce', t.outputPath?.slice(-5) ?? ''));
    const rpc = grpcClient(b.grpcAddress);
    try {
      expect(await rpc.unary('GetJob', { id }, TOKEN)).toMatchObject({ output_dir: pattern, output: pattern, output_kept: 'hosts', host_outputs_directory: pattern });
    } finally {
      rpc.raw.close();
    }
  }, 300_000);
});
