/**
 * Outputs on a lost host are recomputed, end to end on separate hosts
 * (network namespaces with 100 Mbit/s links and private directories, one
 * `locus agent` per host, `shared-outputs: false`, block servers on the
 * hosts' addresses). A two-stage word count: six files with two replicas
 * each, a map per file committing on its host, one reduce that reads every
 * map's output (and sleeps first, so it is still running when the host
 * goes). As soon as the map stage has committed, one host holding map
 * outputs is killed for good: its link goes down and every process in it is
 * SIGKILLed. The job must still complete with the right counts; the maps
 * whose outputs were on the lost host ran twice (generation 0 on the lost
 * host, generation 1 elsewhere), every other map once, with one commit
 * record per generation and no second committed directory anywhere.
 *
 * The executors' idle timeout is short (3 s): the map hosts' executors sit
 * idle while the reduce sleeps, and are kept only because they serve map
 * outputs the reduce reads (were one released, its maps would be recomputed
 * too, and "every other map once" would fail).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dirname, join, relative } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../harness/requires.js';
import { NETNS, type Host } from '../harness/hosts.js';
import { HOST_OUTPUTS_DIR, startHostsCluster, startHostsFramework, type HostsCluster } from '../harness/hosts-cluster.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { commitKey, decodeCommittedOutput, ledgerIdOf, type CommittedOutput } from '../../src/executor/contract.js';
import { waitForJob } from './framework-harness.js';

const run = promisify(execFile);
const FILES = 6;
const WORDS = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'and', 'cat'];

/** Kill a host for good: its link down (nothing reaches it, nothing leaves), then every process in it. */
async function killHost(bed: HostsCluster, h: Host): Promise<void> {
  await run('ip', ['link', 'set', h.link, 'down'], { timeout: 10_000 });
  for (let round = 0; round < 50; round++) {
    const { stdout } = await run('ip', ['netns', 'pids', h.name], { timeout: 10_000 });
    const pids = stdout.split('\n').map(Number).filter((p) => Number.isInteger(p) && p > 0);
    if (pids.length === 0) return;
    for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone already */ } }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`processes on ${h.name} survive SIGKILL`);
}

describeWith([NETNS], 'separate hosts: outputs on a lost host are recomputed', () => {
  let bed: HostsCluster | undefined;
  let fw: RunningFramework | undefined;
  let admin: Redis | undefined;
  const expected = new Map<string, number>();

  beforeAll(async () => {
    bed = await startHostsCluster({ hosts: 3, rate: '100mbit' });
    fw = await startHostsFramework(bed, { 'executor-idle-timeout': '3s', 'locality-wait-node': '5s' });
    admin = bed.redis.client();
    const src = join(bed.dir, 'text');
    mkdirSync(src, { recursive: true });
    for (let f = 0; f < FILES; f++) {
      const words = Array.from({ length: 2000 + 300 * f }, (_, j) => WORDS[(j * 7 + f * 3 + Math.floor(j / 13)) % WORDS.length] ?? 'the');
      for (const w of words) expected.set(w, (expected.get(w) ?? 0) + 1);
      const text = words.map((w, j) => ((j + 1) % 12 === 0 ? `${w}\n` : `${w} `)).join('') + '\n';
      writeFileSync(join(src, `part-${f}.txt`), text);
    }
    // Two replicas: the input of a map whose host is lost is still on another host.
    await bed.putDataset(src, 'words', 2);
  }, 180_000);

  afterAll(async () => {
    admin?.disconnect();
    await fw?.stop();
    await bed?.dispose();
  }, 120_000);

  it('kills a host holding map outputs after the map stage committed; the job completes, its maps ran twice, the others once', async () => {
    if (!bed || !fw || !admin) throw new Error('set-up failed');
    const { hosts } = bed;
    const redis = admin;
    const resources = { cpus: 0.2, mem: '64MiB', disk: '16MiB' };
    const job = await fw.jobs.submit('default', validateJobSpec({
      name: 'wordcount-lost-host', retries: 1,
      stages: [
        { name: 'map', inputs: ['local://words/'], split: 'file', task: { command: ['sh', '-c', "tr -s ' \\n' '\\n\\n' < '{split.path}' | grep -v '^$' | sort | uniq -c > '{output}/counts'"], resources } },
        {
          name: 'reduce', inputs: ['stage:map'],
          tasks: [{ command: ['sh', '-c', "sleep 15; cat {stages.map.output}/*/counts | awk '{c[$2]+=$1} END {for (w in c) print w, c[w]}' | sort > '{output}/total'"] }],
          task: { command: ['true'], resources },
        },
      ],
    }));
    const mapId = (i: number): string => `${job.id}.0.${i}`;
    const get = async (id: string): Promise<CommittedOutput | undefined> => {
      const raw = await redis.get(commitKey(id));
      return raw === null ? undefined : decodeCommittedOutput(JSON.parse(raw) as unknown);
    };
    // The map stage committed: every map has its record.
    const deadline = Date.now() + 150_000;
    let firstGen: (CommittedOutput | undefined)[] = [];
    for (;;) {
      firstGen = await Promise.all(Array.from({ length: FILES }, (_, i) => get(mapId(i))));
      if (firstGen.every((r) => r !== undefined)) break;
      const j = await fw.jobs.get(job.id);
      if (j.state !== 'RUNNING' && j.state !== 'RESOLVING' && j.state !== 'PENDING') throw new Error(`job ${j.state}: ${j.message ?? ''}`);
      if (Date.now() > deadline) throw new Error(`maps not committed in time: ${JSON.stringify(j.counts)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const mapHosts = firstGen.map((r) => r?.host ?? '');
    // The host holding the most map outputs goes (ties: the first by name).
    const held = new Map<string, number>();
    for (const h of mapHosts) held.set(h, (held.get(h) ?? 0) + 1);
    const victimName = [...held].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ?? '';
    const victim = hosts.hosts.find((h) => h.name === victimName);
    if (!victim) throw new Error(`map outputs on unknown host ${victimName}`);
    await killHost(bed, victim);
    const lostMaps = mapHosts.flatMap((h, i) => (h === victimName ? [i] : []));
    expect(lostMaps.length).toBeGreaterThan(0);
    // Spread over more than one host (with two replicas, placement chooses; the figure is reported on failure).
    expect(held.size, `map outputs per host: ${JSON.stringify([...held])}`).toBeGreaterThanOrEqual(2);

    const done = await waitForJob(() => fw?.jobs.get(job.id) ?? Promise.reject(new Error('no framework')), 240_000);
    expect(done.state, done.message).toBe('SUCCEEDED');

    // The right answer, from the reduce's committed output.
    const red = await get(`${job.id}.1.0`);
    if (!red) throw new Error('no commit record for the reduce');
    expect(red.host).not.toBe(victimName);
    const rh = hosts.hosts.find((h) => h.name === red.host);
    if (!rh) throw new Error(`reduce on unknown host ${red.host}`);
    const total = readFileSync(hosts.outside(rh, join(red.path, 'total')), 'utf8').trim().split('\n').map((l) => {
      const [w, n] = l.split(' ');
      return [w ?? '', Number(n)] as const;
    });
    expect(total).toEqual([...expected].sort((a, b) => (a[0] < b[0] ? -1 : 1)));

    // The lost host's maps ran twice (a second generation, committed elsewhere), the others once.
    const tasks = await fw.jobs.tasks(job.id);
    for (let i = 0; i < FILES; i++) {
      const t = tasks.find((x) => x.stage === 0 && x.index === i);
      const again = await get(ledgerIdOf(mapId(i), 1));
      if (lostMaps.includes(i)) {
        expect(t?.generation, `map ${i}`).toBe(1);
        expect(t?.attempts.filter((a) => a.state === 'SUCCEEDED')).toHaveLength(2);
        expect(again?.host, `map ${i} generation 1`).toBeDefined();
        expect(again?.host).not.toBe(victimName);
        expect(again?.path.endsWith('~g1')).toBe(true);
      } else {
        expect(t?.generation ?? 0, `map ${i}`).toBe(0);
        expect(t?.attempts.filter((a) => a.state === 'SUCCEEDED'), `map ${i}`).toHaveLength(1);
        expect(again, `map ${i} has no second generation`).toBeUndefined();
      }
      expect(await get(ledgerIdOf(mapId(i), 2))).toBeUndefined();
    }
    // No duplicate commit: on the surviving hosts each map's output directory exists once (the
    // lost host's disk is gone with it and is not looked at).
    // Each host keeps outputs under <host-output-dir>/<its hostname>/, the same layout below.
    const first = firstGen[0];
    const stageRel = relative(join(HOST_OUTPUTS_DIR, first?.host ?? ''), dirname(first?.path ?? ''));
    expect(stageRel.startsWith('..')).toBe(false);
    for (let i = 0; i < FILES; i++) {
      const name = String(i).padStart(5, '0');
      const dirs: string[] = [];
      const seen: string[] = [];
      for (const h of hosts.hosts.filter((x) => x.name !== victimName)) {
        const onHost = hosts.outside(h, join(HOST_OUTPUTS_DIR, h.name, stageRel));
        if (!existsSync(onHost)) continue;
        for (const d of readdirSync(onHost)) {
          seen.push(`${h.name}:${d}`);
          if (d === name || d === `${name}~g1`) dirs.push(`${h.name}:${d}`);
        }
      }
      expect(dirs.sort(), `map ${i}: records ${JSON.stringify([firstGen[i]?.path, (await get(ledgerIdOf(mapId(i), 1)))?.path])}, seen ${seen.join(' ')}`).toEqual(lostMaps.includes(i) ? [`${(await get(ledgerIdOf(mapId(i), 1)))?.host ?? '?'}:${name}~g1`] : [`${mapHosts[i] ?? '?'}:${name}`]);
    }
    expect(done.counts.succeeded).toBe(done.counts.total);
    // Operators see it: one reopened output per lost map.
    const metrics = await (await fetch(`${fw.httpUrl}/metrics`)).text();
    expect(Number(/^locus_outputs_recomputed_total (\S+)$/m.exec(metrics)?.[1])).toBe(lostMaps.length);
  }, 420_000);
});
