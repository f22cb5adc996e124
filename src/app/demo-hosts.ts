/**
 * `locus demo --hosts netns`: the demo's word count on separate hosts. Three
 * network-namespace hosts (src/local/netns.ts) with private data
 * directories and rate-limited links, one `locus agent` process on each, the
 * master and a managed Redis on the bridge address, the framework with
 * outputs kept on the hosts (`shared-outputs: false`) and block servers on
 * the hosts' addresses. Prints the top words, the node-local share of the
 * map tasks, the bytes that crossed the links (the hosts' interface
 * counters, read on the bridge side as bench/locality.ts reads them) and
 * the elapsed time.
 */
import { existsSync, chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from '../obs/log.js';
import { newToken } from '../core/ids.js';
import { putLocalDataset } from '../storage/local/put.js';
import { commitKey, decodeCommittedOutput } from '../executor/contract.js';
import type { JobRecord } from '../scheduler/jobs/model.js';
import { TERMINAL_JOB_STATES } from '../scheduler/jobs/model.js';
import { HOST_PRIVATE_DIR, type LinkBytes } from '../local/netns.js';
import { startNetnsCluster, type NetnsCluster } from '../local/netns-cluster.js';
import { startManagedRedis, type ManagedRedis } from './redis-server.js';
import { resolveSettings } from './config.js';
import { startFramework, type RunningFramework } from './framework.js';
import { wordCountSpec, writeSampleText, type DemoResult } from './demo.js';

/** Options of the demo on separate hosts. */
export interface HostsDemoOptions {
  readonly stateDir: string;
  readonly hosts?: number;
  readonly files?: number;
  readonly wordsPerFile?: number;
  /** Each host's link rate (tc tbf). Default 100mbit. */
  readonly rate?: string;
  readonly timeoutMs?: number;
  readonly logger: Logger;
  readonly print?: (line: string) => void;
}

/** What the demo on hosts found, with the bytes that crossed the links. */
export interface HostsDemoResult extends DemoResult {
  /** Bytes the hosts received over their links during the job. */
  readonly networkBytes: number;
  /** Bytes the hosts sent over their links during the job. */
  readonly sentBytes: number;
}

/** Where the hosts' executors commit outputs (inside each host's private directory). */
const HOST_OUTPUTS = `${HOST_PRIVATE_DIR}/outputs`;

function commandMissing(bin: string): boolean {
  return !['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, bin)));
}

/**
 * Why separate hosts cannot be made here, in one line, or undefined when they can: they need
 * root (namespaces, a bridge, tc), iproute2 and util-linux, and a kernel with network namespaces.
 */
export function netnsUnavailable(): string | undefined {
  const why: string[] = [];
  if (process.getuid?.() !== 0) why.push(`running as uid ${String(process.getuid?.())}, not root`);
  for (const b of ['ip', 'tc', 'nsenter', 'unshare']) if (commandMissing(b)) why.push(`${b} is not installed`);
  if (!existsSync('/proc/self/ns/net')) why.push('the kernel has no network namespaces');
  return why.length === 0 ? undefined : `--hosts netns needs root and network namespaces (apt-get install iproute2 util-linux): ${why.join('; ')}`;
}

/** Run the word count on separate hosts end to end. */
export async function runHostsDemo(o: HostsDemoOptions): Promise<HostsDemoResult> {
  const print = o.print ?? ((line: string) => process.stdout.write(line + '\n'));
  const started = Date.now();
  const rate = o.rate ?? '100mbit';
  const workDir = join(o.stateDir, 'hosts-local');
  // A fresh cluster every run: the hosts' private directories die with the hosts anyway.
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  // The hosts pass through it to their work dirs; listing it is nobody else's business.
  chmodSync(o.stateDir, 0o711);
  const stops: { name: string; fn: () => Promise<unknown> }[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.reverse()) await s.fn().catch((err: unknown) => o.logger.warn({ err: String(err), what: s.name }, 'demo teardown step failed'));
  };
  try {
    const cluster: NetnsCluster = await startNetnsCluster({
      workDir, hosts: o.hosts ?? 3, rate, port: 0, allocationIntervalMs: 100, isolation: 'auto',
      resources: 'cpus:2;mem:4096;disk:8192;ports:[31000-32000]', logger: o.logger.child({ component: 'local' }),
    });
    stops.push({ name: 'hosts', fn: () => cluster.stop() });
    const hosts = cluster.hosts;
    // Redis where this machine and the hosts reach it: loopback and the bridge address.
    const redis: ManagedRedis = await startManagedRedis({ dataDir: join(o.stateDir, 'hosts-redis'), alsoBind: [hosts.gateway], logger: o.logger.child({ component: 'redis' }) });
    stops.push({ name: 'redis', fn: () => redis.stop() });
    const redisUrl = redis.url.replace('@127.0.0.1:', `@${hosts.gateway}:`);
    for (const h of hosts.hosts) {
      const d = hosts.outside(h, HOST_OUTPUTS);
      mkdirSync(d, { recursive: true });
      chmodSync(d, 0o1777);
    }
    print(`locus: ${hosts.hosts.length} hosts on ${hosts.subnet} (links ${rate}), master ${cluster.masterUrl}, Redis on ${hosts.gateway}`);

    // The sample text onto the hosts' private directories, 2 replicas each.
    const dataset = 'demo-books';
    const textDir = join(o.stateDir, 'demo-text');
    rmSync(textDir, { recursive: true, force: true });
    await writeSampleText(textDir, o.files ?? 12, o.wordsPerFile ?? 20_000);
    const putDir = join(o.stateDir, 'hosts-put');
    rmSync(putDir, { recursive: true, force: true });
    mkdirSync(putDir, { recursive: true });
    writeFileSync(join(putDir, 'topology.json'), JSON.stringify({
      agents: cluster.hostAgents.map((a) => ({
        id: a.id, hostname: a.host.name, rack: cluster.agents.find((x) => x.id === a.id)?.rack ?? '',
        dataDir: hosts.outside(a.host, `${a.workDir}/agents/${a.host.name}/data`),
      })),
    }));
    const put = await putLocalDataset({ workDir: putDir, source: textDir, dataset, replicas: 2 });
    mkdirSync(join(workDir, 'datasets', dataset), { recursive: true });
    copyFileSync(join(putDir, 'datasets', dataset, 'manifest.json'), join(workDir, 'datasets', dataset, 'manifest.json'));
    print(`locus: laid out ${put.files.length} files (${(put.bytes / 1024 / 1024).toFixed(1)} MiB) on the hosts' private disks, 2 replicas each`);

    const framework: RunningFramework = await startFramework(resolveSettings({
      master: cluster.masterUrl, redis: redisUrl, 'state-dir': join(o.stateDir, 'hosts-state'), 'local-work-dir': workDir,
      'http-port': '0', 'grpc-port': '0', 'admin-token': newToken(32), 'executor-idle-timeout': '20s',
      'shared-outputs': 'false', 'host-output-dir': HOST_OUTPUTS, 'block-server-bind': '0.0.0.0',
    }), { logger: o.logger });
    stops.push({ name: 'framework', fn: () => framework.stop() });
    await framework.waitForSubscribed(30_000);

    const before: LinkBytes[] = await Promise.all(hosts.hosts.map((h) => hosts.bytes(h)));
    const job = await framework.jobs.submit('default', wordCountSpec(dataset));
    print(`locus: submitted job ${job.id} (map over ${put.files.length} files, then reduce)`);
    const finished = await watch(framework, job.id, o.timeoutMs ?? 240_000, print);
    const after: LinkBytes[] = await Promise.all(hosts.hosts.map((h) => hosts.bytes(h)));
    if (finished.state !== 'SUCCEEDED') {
      for (const t of (await framework.jobs.tasks(finished.id)).filter((x) => x.state === 'FAILED')) {
        const last = t.attempts[t.attempts.length - 1];
        print(`  task ${t.id} failed on ${last?.host ?? '?'}: ${last?.reason ?? ''} ${last?.message ?? ''}`);
      }
      throw new Error(`the demo job ${finished.state}: ${finished.message ?? ''}`);
    }
    // The reduce's output is on the host that committed it: its record says which and where.
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    let raw: string | null;
    try {
      raw = await admin.get(commitKey(`${finished.id}.1.0`));
    } finally {
      admin.disconnect();
    }
    if (raw === null) throw new Error('the reduce committed no output record');
    const rec = decodeCommittedOutput(JSON.parse(raw) as unknown);
    const host = hosts.hosts.find((h) => h.name === rec.host);
    if (!host) throw new Error(`the reduce committed on an unknown host ${rec.host}`);
    const words = readFileSync(hosts.outside(host, join(rec.path, 'words')), 'utf8')
      .split('\n').filter(Boolean).slice(0, 10)
      .map((l) => { const [count, word] = l.trim().split(/\s+/); return { word: word ?? '', count: Number(count) }; });
    const mapTasks = finished.stages[0]?.taskCount ?? 0;
    const nodeLocal = (await framework.jobs.tasks(finished.id)).filter((t) => t.stage === 0 && t.state === 'SUCCEEDED' && t.attempts[t.attempts.length - 1]?.locality === 0).length;
    const fraction = mapTasks > 0 ? nodeLocal / mapTasks : 0;
    let received = 0;
    let sent = 0;
    hosts.hosts.forEach((_, i) => {
      received += (after[i]?.received ?? 0) - (before[i]?.received ?? 0);
      sent += (after[i]?.sent ?? 0) - (before[i]?.sent ?? 0);
    });
    print('top words:');
    for (const w of words) print(`  ${String(w.count).padStart(8)}  ${w.word}`);
    print(`node-local: ${nodeLocal}/${mapTasks} map tasks (${(fraction * 100).toFixed(0)}%)`);
    print(`network: ${received} bytes into the hosts over their links (${(received / 1e6).toFixed(2)} MB; ${sent} bytes out), input ${put.bytes} bytes`);
    const elapsedMs = Date.now() - started;
    print(`elapsed: ${(elapsedMs / 1000).toFixed(1)}s`);
    return { job: finished, topWords: words, nodeLocalFraction: fraction, elapsedMs, networkBytes: received, sentBytes: sent };
  } finally {
    await stopAll();
  }
}

/** Print progress until the job ends (or the timeout passes). */
async function watch(framework: RunningFramework, jobId: string, timeoutMs: number, print: (line: string) => void): Promise<JobRecord> {
  let last = '';
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const j = await framework.jobs.get(jobId);
    const c = j.counts;
    const line = `  ${j.state.padEnd(9)} stage ${j.spec.stages[j.stage]?.name ?? '-'}: ${c.succeeded}/${c.total} done, ${c.running} running, ${c.pending} pending, ${c.failed} failed`;
    if (line !== last) print(line);
    last = line;
    if (TERMINAL_JOB_STATES.has(j.state)) return j;
    if (Date.now() > deadline) throw new Error(`the demo job did not finish within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
