/**
 * Locality measured on the wire (`npm run bench:locality`, issue 14 item 4).
 * Three separate hosts (network namespaces with private data directories,
 * src/local/netns.ts) joined by a bridge whose links are rate-limited with
 * tc (100 Mbit/s by default, both directions), one `locus agent` per host,
 * the master and Redis on the bridge, the framework with outputs kept on
 * the hosts (`shared-outputs: false`) and block servers on the hosts'
 * addresses (docs/operator-guide.md 7.6).
 *
 * A dataset of N files, one replica each, spread over the hosts by
 * `locus data put`'s code; the same two-stage job runs twice: a map per file
 * that reads its split fully (`wc -c`) and writes a few bytes, and one
 * reduce that reads every map's output. Once with locality on (the spec
 * says nothing: the framework's waits), once with `locality: off` (placement
 * is told of no data hosts). Before both, a warm-up job of sleeps with no
 * inputs starts the executors, so neither run pays the cold start.
 *
 * makespanS: submit → job SUCCEEDED. networkBytes: bytes the hosts received
 * over their links during the run, read from the interface counters on the
 * bridge side (a host-to-host byte is counted once, at the receiver; the
 * hosts' sent bytes are reported too). nodeLocal: the share of maps whose
 * committed attempt ran on the host holding its file.
 *
 * `--quick` (30 MB in 12 files, results in locality-<date>-quick.json) is the
 * check mode; the default is 300 MB in
 * 48 files. `--rate 1gbit` changes the links. The hosts, their links and the
 * bridge are removed on every exit path (and on SIGINT/SIGTERM).
 *
 * Prints one line per run and, last, one JSON object:
 * {hosts, linkMbit, inputBytes, on: {makespanS, networkBytes, nodeLocal},
 * off: {...}, speedup, networkReduction, ...}. Writes it to
 * bench/results/locality-<date>.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { resolveSettings } from '../src/app/config.js';
import { startFramework, type RunningFramework } from '../src/app/framework.js';
import { startNetnsCluster, type NetnsCluster } from '../src/local/netns-cluster.js';
import { HOST_PRIVATE_DIR, type LinkBytes } from '../src/local/netns.js';
import { putLocalDataset } from '../src/storage/local/put.js';
import { validateJobSpec } from '../src/scheduler/jobs/spec.js';
import { commitKey, decodeCommittedOutput } from '../src/executor/contract.js';
import { silentLogger } from '../src/obs/log.js';
import { waitForRedisPong } from '../src/app/redis-server.js';
import { freePort } from './ports.js';

const QUICK = process.argv.includes('--quick');
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const RATE = arg('--rate') ?? '100mbit';
const HOSTS = 3;
const FILES = QUICK ? 12 : 48;
const TOTAL_BYTES = (QUICK ? 30 : 300) * 1_000_000;
const FILE_BYTES = Math.floor(TOTAL_BYTES / FILES);
const OUTPUTS = `${HOST_PRIVATE_DIR}/outputs`;
const TASK = { cpus: 0.5, mem: '64MiB', disk: '64MiB' };

const r2 = (x: number): number => Math.round(x * 100) / 100;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

function rateMbit(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|m|g)?bit$/i.exec(rate);
  if (!m) throw new Error(`--rate must look like 100mbit, got '${rate}'`);
  const unit = (m[2] ?? '').toLowerCase();
  return Number(m[1]) * (unit === 'g' ? 1000 : unit === 'k' ? 0.001 : unit === 'm' ? 1 : 1e-6);
}


async function startRedisOn(gateway: string, dir: string): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', gateway, '--protected-mode', 'no', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' });
  proc.on('error', () => undefined);
  await waitForRedisPong(port, { timeoutMs: 10_000 });
  return { port, proc };
}

interface RunResult {
  readonly makespanS: number;
  readonly networkBytes: number;
  readonly nodeLocal: number;
  /** Bytes the hosts sent over their links (a host-to-host byte is in both figures). */
  readonly sentBytes: number;
  /** Per host: [received, sent]. */
  readonly perHost: Record<string, readonly [number, number]>;
  readonly mapHosts: Record<string, number>;
}

async function main(): Promise<void> {
  const loadBefore = loadavg().map(r2);
  const dir = mkdtempSync('/tmp/locus-bench-locality-');
  chmodSync(dir, 0o755);
  const cleanups: (() => Promise<unknown> | unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      for (const c of cleanups.reverse()) {
        try { await c(); } catch (err) { process.stderr.write(`cleanup: ${String(err)}\n`); }
      }
    })();
    return cleaning;
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { void cleanup().finally(() => process.exit(130)); });
  }
  try {
    const workDir = join(dir, 'local');
    const cluster: NetnsCluster = await startNetnsCluster({
      workDir, hosts: HOSTS, port: 0, allocationIntervalMs: 100, isolation: 'auto', rate: RATE,
      resources: 'cpus:2;mem:4096;disk:8192;ports:[31000-32000]',
    });
    cleanups.push(() => cluster.stop());
    const hosts = cluster.hosts;
    const redis = await startRedisOn(hosts.gateway, dir);
    cleanups.push(() => { redis.proc.kill('SIGTERM'); });
    for (const h of hosts.hosts) {
      const d = hosts.outside(h, OUTPUTS);
      mkdirSync(d, { recursive: true });
      chmodSync(d, 0o1777);
    }
    const agents = cluster.hostAgents;

    // The dataset: FILES files of FILE_BYTES, one replica each, laid out on the hosts.
    const src = join(dir, 'input');
    mkdirSync(src, { recursive: true });
    const line = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n');
    const chunk = Buffer.alloc(FILE_BYTES);
    for (let o = 0; o < FILE_BYTES; o += line.length) line.copy(chunk, o);
    for (let i = 0; i < FILES; i++) writeFileSync(join(src, `part-${String(i).padStart(3, '0')}.txt`), chunk);
    const putDir = join(dir, 'put');
    mkdirSync(putDir, { recursive: true });
    writeFileSync(join(putDir, 'topology.json'), JSON.stringify({
      agents: agents.map((a) => ({
        id: a.id, hostname: a.host.name, rack: cluster.agents.find((x) => x.id === a.id)?.rack ?? '',
        dataDir: hosts.outside(a.host, `${a.workDir}/agents/${a.host.name}/data`),
      })),
    }));
    const put = await putLocalDataset({ workDir: putDir, source: src, dataset: 'bench', replicas: 1 });
    mkdirSync(join(workDir, 'datasets', 'bench'), { recursive: true });
    copyFileSync(join(putDir, 'datasets', 'bench', 'manifest.json'), join(workDir, 'datasets', 'bench', 'manifest.json'));
    const fileHost = new Map(put.files.map((f) => [f.path.replace(/^\//, ''), f.blocks[0]?.hosts[0] ?? '']));
    const inputBytes = put.bytes;

    const fw: RunningFramework = await startFramework(resolveSettings({
      master: cluster.masterUrl, redis: `redis://${hosts.gateway}:${redis.port}`, 'state-dir': join(dir, 'state'), 'local-work-dir': workDir,
      'http-port': '0', 'grpc-port': '0', 'admin-token': 'a'.repeat(64), 'executor-idle-timeout': '600s',
      'shared-outputs': 'false', 'host-output-dir': OUTPUTS, 'block-server-bind': '0.0.0.0',
    }), { logger: silentLogger() });
    cleanups.push(() => fw.stop());
    await fw.waitForSubscribed(30_000);
    const admin = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: null });
    cleanups.push(() => admin.disconnect());

    const waitDone = async (jobId: string, timeoutMs: number): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const j = await fw.jobs.get(jobId);
        if (j.state === 'SUCCEEDED') return;
        if (j.state === 'FAILED' || j.state === 'CANCELLED') throw new Error(`job ${jobId} ${j.state}: ${j.message ?? ''}`);
        if (Date.now() > deadline) throw new Error(`job ${jobId} still ${j.state} after ${timeoutMs} ms: ${JSON.stringify(j.counts)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    // Warm-up: executors on every host before either measured run (no inputs, placed anywhere).
    const slots = HOSTS * 3;
    const warm = await fw.jobs.submit('default', validateJobSpec({
      name: 'warm-up', locality: 'off',
      tasks: Array.from({ length: slots * 2 }, () => ({ command: ['sleep', '1'] })),
      task: { command: ['true'], resources: TASK },
    }));
    await waitDone(warm.id, 180_000);

    const runOnce = async (mode: 'on' | 'off'): Promise<RunResult> => {
      const before: LinkBytes[] = await Promise.all(hosts.hosts.map((h) => hosts.bytes(h)));
      const t0 = Date.now();
      const job = await fw.jobs.submit('default', validateJobSpec({
        name: `locality-${mode}`, retries: 1,
        ...(mode === 'off' ? { locality: 'off' } : {}),
        stages: [
          {
            name: 'map', inputs: ['local://bench/'], split: 'file',
            task: { command: ['sh', '-c', "wc -c < '{split.path}' > '{output}/bytes' && printf '%s\\n' \"$LOCUS_SPLIT_URI\" > '{output}/uri'"], resources: TASK },
          },
          {
            name: 'reduce', inputs: ['stage:map'],
            tasks: [{ command: ['sh', '-c', "cat {stages.map.output}/*/bytes | awk '{s+=$1} END {print s}' > '{output}/total'"] }],
            task: { command: ['true'], resources: TASK },
          },
        ],
      }));
      await waitDone(job.id, QUICK ? 240_000 : 900_000);
      const makespanS = (Date.now() - t0) / 1000;
      const after: LinkBytes[] = await Promise.all(hosts.hosts.map((h) => hosts.bytes(h)));
      const perHost: Record<string, readonly [number, number]> = {};
      let received = 0;
      let sent = 0;
      hosts.hosts.forEach((h, i) => {
        const rx = (after[i]?.received ?? 0) - (before[i]?.received ?? 0);
        const tx = (after[i]?.sent ?? 0) - (before[i]?.sent ?? 0);
        perHost[h.name] = [rx, tx];
        received += rx;
        sent += tx;
      });
      // Which maps ran where their file lives, and the reduce's sum (every byte was read).
      let local = 0;
      const mapHosts: Record<string, number> = {};
      for (let i = 0; i < FILES; i++) {
        const rec = decodeCommittedOutput(JSON.parse((await admin.get(commitKey(`${job.id}.0.${i}`))) ?? 'null') as unknown);
        const h = hosts.hosts.find((x) => x.name === rec.host);
        if (!h) throw new Error(`map ${i} committed on unknown host ${rec.host}`);
        mapHosts[h.name] = (mapHosts[h.name] ?? 0) + 1;
        const uri = readFileSync(hosts.outside(h, join(rec.path, 'uri')), 'utf8').trim();
        const file = uri.replace(/^local:\/\/bench\//, '');
        if (!fileHost.has(file)) throw new Error(`map ${i} read ${uri}, not a file of the dataset`);
        if (fileHost.get(file) === h.name) local++;
      }
      const red = decodeCommittedOutput(JSON.parse((await admin.get(commitKey(`${job.id}.1.0`))) ?? 'null') as unknown);
      const rh = hosts.hosts.find((x) => x.name === red.host);
      if (!rh) throw new Error(`reduce committed on unknown host ${red.host}`);
      const total = Number(readFileSync(hosts.outside(rh, join(red.path, 'total')), 'utf8').trim());
      if (total !== inputBytes) throw new Error(`reduce counted ${total} bytes, the input has ${inputBytes}`);
      const result: RunResult = { makespanS: r2(makespanS), networkBytes: received, nodeLocal: r3(local / FILES), sentBytes: sent, perHost, mapHosts };
      process.stdout.write(`locality ${mode}: ${result.makespanS} s, ${(received / 1e6).toFixed(1)} MB into the hosts (${(sent / 1e6).toFixed(1)} MB out), ${local}/${FILES} maps node-local, maps per host ${JSON.stringify(mapHosts)}\n`);
      return result;
    };

    const off = await runOnce('off');
    const on = await runOnce('on');
    const out = {
      hosts: HOSTS,
      linkMbit: rateMbit(RATE),
      inputBytes,
      on: { makespanS: on.makespanS, networkBytes: on.networkBytes, nodeLocal: on.nodeLocal },
      off: { makespanS: off.makespanS, networkBytes: off.networkBytes, nodeLocal: off.nodeLocal },
      speedup: r2(off.makespanS / on.makespanS),
      networkReduction: r2(off.networkBytes / Math.max(1, on.networkBytes)),
      quick: QUICK,
      files: FILES,
      fileBytes: FILE_BYTES,
      detail: {
        networkBytes: 'bytes the hosts received over their links during the run (bridge-side interface counters; a host-to-host byte counted once)',
        on: { sentBytes: on.sentBytes, perHostReceivedSent: on.perHost, mapsPerHost: on.mapHosts },
        off: { sentBytes: off.sentBytes, perHostReceivedSent: off.perHost, mapsPerHost: off.mapHosts },
        order: 'warm-up (sleeps), then off, then on',
        taskResources: TASK,
      },
      cpus: cpus().length,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg().map(r2),
      date: new Date().toISOString(),
    };
    const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `locality-${out.date.slice(0, 10)}${QUICK ? '-quick' : ''}.json`);
    writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    process.stdout.write(`wrote ${file}\n`);
    await cleanup();
    process.stdout.write(JSON.stringify(out) + '\n');
  } finally {
    await cleanup();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`bench:locality failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
