/**
 * The two-stage job on genuine Mesos 1.12 agents that are separate hosts:
 * each agent in its own network namespace with its own address and a private
 * work directory, joined by 100 Mbit/s links; the master, Redis and the
 * framework on this machine's bridge address. Maps commit their outputs on
 * the host that ran them (`shared-outputs: false`), and the reduce reads them
 * over the links through the executors' block servers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LOCUS_EXECUTOR } from '../harness/build.js';
import { freePort } from '../harness/ports.js';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { describeWith } from '../harness/requires.js';
import { HOST_PRIVATE_DIR, NETNS, hostsUp, type Hosts } from '../harness/hosts.js';
import { resolveSettings } from '../../src/app/config.js';
import { startFramework, type RunningFramework } from '../../src/app/framework.js';
import { silentLogger } from '../../src/obs/log.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { commitKey, decodeCommittedOutput } from '../../src/executor/contract.js';
import { TERMINAL_JOB_STATES } from '../../src/scheduler/jobs/model.js';
import { GENUINE_MESOS, genuineDist } from './targets.js';

const OUTPUTS = `${HOST_PRIVATE_DIR}/outputs`;

describeWith([GENUINE_MESOS, NETNS], 'genuine Mesos agents as separate hosts: a two-stage job whose outputs cross the links', () => {
  let hosts: Hosts | undefined;
  let redis: TestRedis | undefined;
  let master: ChildProcess | undefined;
  let fw: RunningFramework | undefined;
  let dir = '';

  beforeAll(async () => {
    const dist = genuineDist();
    dir = mkdtempSync('/tmp/locus-genuine-hosts-');
    chmodSync(dir, 0o755);
    hosts = await hostsUp({ count: 3, rate: '100mbit' });
    const h = hosts;
    redis = await startRedis({ extraArgs: ['--bind', '127.0.0.1', h.gateway, '--protected-mode', 'no'] });
    const env = { ...process.env, LD_LIBRARY_PATH: join(dist, 'lib') };
    const port = await freePort();
    master = spawn(join(dist, 'bin', 'mesos-master'), [
      `--ip=${h.gateway}`, `--port=${port}`, `--hostname=${h.gateway}`, `--work_dir=${join(dir, 'master')}`, '--registry=in_memory',
    ], { env, stdio: 'ignore' });
    for (const host of h.hosts) {
      mkdirSync(h.outside(host, OUTPUTS), { recursive: true });
      chmodSync(h.outside(host, OUTPUTS), 0o1777);
      // The agent's work dir is the host's private directory: no other host sees its sandboxes.
      h.spawn(host, [
        join(dist, 'bin', 'mesos-agent'), `--master=${h.gateway}:${port}`, `--ip=${host.ip}`, '--port=5051', `--hostname=${host.name}`,
        `--attributes=rack:r${(host.index % 2) + 1}`, `--work_dir=${HOST_PRIVATE_DIR}/mesos-work`, `--runtime_dir=${HOST_PRIVATE_DIR}/mesos-run`,
        '--resources=cpus:2;mem:2048;disk:4096;ports:[31000-32000]', '--isolation=posix/cpu,posix/mem', '--launcher=posix',
        `--launcher_dir=${join(dist, 'libexec', 'mesos')}`, '--systemd_enable_support=false', '--executor_registration_timeout=2mins',
      ], { env, stdio: 'ignore' });
    }
    const deadline = Date.now() + 90_000;
    for (;;) {
      const st = await fetch(`http://${h.gateway}:${port}/state`).then((r) => r.json() as Promise<{ activated_slaves?: number }>).catch(() => ({ activated_slaves: 0 }));
      if (st.activated_slaves === 3) break;
      if (Date.now() > deadline) throw new Error(`only ${st.activated_slaves ?? 0} of 3 genuine agents registered`);
      await new Promise((r) => setTimeout(r, 500));
    }
    fw = await startFramework(resolveSettings({
      master: `http://${h.gateway}:${port}`, redis: `redis://${h.gateway}:${redis.port}`, 'state-dir': join(dir, 'state'),
      'http-port': '0', 'grpc-port': '0', 'admin-token': 'd'.repeat(64), 'executor-main': LOCUS_EXECUTOR, 'executor-idle-timeout': '60s',
      'shared-outputs': 'false', 'host-output-dir': OUTPUTS, 'block-server-bind': '0.0.0.0',
    }), { logger: silentLogger() });
    await fw.waitForSubscribed(30_000);
  }, 240_000);

  afterAll(async () => {
    await fw?.stop();
    master?.kill('SIGTERM');
    await hosts?.down();
    await redis?.dispose();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('maps commit on three hosts and the reduce reads the others\' outputs', async () => {
    if (!fw || !hosts || !redis) throw new Error('set-up failed');
    const data = join(dir, 'books');
    mkdirSync(data, { recursive: true });
    chmodSync(data, 0o755);
    for (let i = 0; i < 6; i++) writeFileSync(join(data, `b${i}.txt`), Array.from({ length: 100 }, () => 'alpha beta gamma').join('\n'));
    const job = await fw.jobs.submit('default', validateJobSpec({
      name: 'genuine-hosts', retries: 1,
      stages: [
        // One task per file at 0.9 cpu: two fit an agent, so the maps spread over the three hosts.
        { name: 'map', inputs: [`file://${data}/`], split: 'file', task: { command: ['sh', '-c', "wc -w < '{split.path}' > '{output}/words'"], resources: { cpus: 0.9, mem: '64MiB', disk: '16MiB' } } },
        {
          name: 'reduce', inputs: ['stage:map'],
          tasks: [{ command: ['sh', '-c', "cat {stages.map.output}/*/words | awk '{s+=$1} END {print s}' > '{output}/total'"] }],
          task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '16MiB' } },
        },
      ],
    }));
    const deadline = Date.now() + 180_000;
    let done = await fw.jobs.get(job.id);
    while (!TERMINAL_JOB_STATES.has(done.state)) {
      if (Date.now() > deadline) throw new Error(`job still ${done.state}: ${JSON.stringify(done.counts)}`);
      await new Promise((r) => setTimeout(r, 200));
      done = await fw.jobs.get(job.id);
    }
    const tasks = await fw.jobs.tasks(job.id);
    expect(done.state, tasks.map((t) => `${t.id}: ${t.attempts.map((a) => `${a.state ?? ''} ${a.host} ${a.message ?? ''}`).join('; ')}`).join('\n')).toBe('SUCCEEDED');
    const admin = redis.client();
    try {
      const mapHosts = new Set<string>();
      for (let i = 0; i < 6; i++) mapHosts.add(decodeCommittedOutput(JSON.parse((await admin.get(commitKey(`${job.id}.0.${i}`))) ?? 'null') as unknown).host);
      // Outputs were committed on more than one host, so the reduce had to read across the links.
      expect(mapHosts.size).toBeGreaterThan(1);
      const reduce = decodeCommittedOutput(JSON.parse((await admin.get(commitKey(`${job.id}.1.0`))) ?? 'null') as unknown);
      const reduceHost = hosts.hosts.find((x) => x.name === reduce.host);
      expect(reduceHost).toBeDefined();
      if (!reduceHost) throw new Error(`reduce committed on an unknown host ${reduce.host}`);
      const total = readFileSync(join(hosts.outside(reduceHost, reduce.path), 'total'), 'utf8').trim();
      expect(total).toBe(String(6 * 300));
    } finally {
      admin.disconnect();
    }
  }, 240_000);
});
