/**
 * The scheduler client against the embedded local cluster over real HTTP:
 * subscription, heartbeats and the watchdog, 307 to the leader, 503 backoff,
 * the stream id on calls, re-subscription with the same FrameworkID,
 * authentication, TLS, and ZooKeeper detection following a leader change.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster, type LocalCluster, type LocalClusterOptions } from '../../src/local/index.js';
import {
  SchedulerClient, buildFrameworkInfo, type DisconnectInfo, type Event, type SchedulerClientOptions, type SubscriptionInfo,
} from '../../src/mesos/index.js';
import { ZOOKEEPER, itWith } from '../harness/requires.js';
import { registerMaster, removeNode, startZooKeeper } from '../harness/zk.js';

let workRoot: string;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  workRoot = await mkdtemp(join(tmpdir(), 'locus-mesos-it-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await rm(workRoot, { recursive: true, force: true });
});

let clusterSeq = 0;
async function cluster(o: Partial<LocalClusterOptions> = {}): Promise<LocalCluster> {
  const c = await startLocalCluster({
    workDir: join(workRoot, `c${clusterSeq++}`), agents: 2, racks: 1, port: 0, isolation: 'process',
    heartbeatIntervalSeconds: 1, allocationIntervalMs: 100, resources: 'cpus:2;mem:1024;disk:2048;ports:[31000-31099]', ...o,
  });
  cleanups.push(() => c.stop());
  return c;
}

function client(master: SchedulerClientOptions['master'], o: Partial<SchedulerClientOptions> = {}): { c: SchedulerClient; events: Event[]; disconnects: DisconnectInfo[]; subs: SubscriptionInfo[] } {
  const c = new SchedulerClient({
    master,
    framework: buildFrameworkInfo({ name: 'locus-it', roles: ['locus'], user: 'root', ...(o.credentials ? { principal: o.credentials.principal } : {}) }),
    backoff: { initialMs: 50, maxMs: 400 },
    heartbeatMisses: 2,
    ...o,
  });
  const events: Event[] = [];
  const disconnects: DisconnectInfo[] = [];
  const subs: SubscriptionInfo[] = [];
  c.on('event', (e) => events.push(e));
  c.on('disconnected', (d) => disconnects.push(d));
  c.on('subscribed', (s) => subs.push(s));
  cleanups.push(() => c.stop());
  return { c, events, disconnects, subs };
}

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SchedulerClient against the local cluster', () => {
  it('subscribes, receives heartbeats and offers, and calls with the stream id', async () => {
    const lc = await cluster();
    const { c, events } = client(lc.masterUrl);
    await c.start();
    const info = await c.waitForSubscribed(10_000);
    expect(info.master).toBe(lc.masterUrl);
    expect(info.heartbeatIntervalSeconds).toBe(1);
    expect(info.streamId).not.toBe('');
    await waitFor(() => events.filter((e) => e.type === 'HEARTBEAT').length >= 2, 'two heartbeats', 5000);
    await waitFor(() => events.some((e) => e.type === 'OFFERS'), 'offers');
    const offers = events.flatMap((e) => (e.type === 'OFFERS' ? e.offers.offers ?? [] : []));
    expect(new Set(offers.map((o) => o.hostname)).size).toBe(2);
    // The master checks Mesos-Stream-Id on every call: a call answered 202 carried the right one.
    await expect(c.decline(offers.map((o) => o.id), { refuse_seconds: 30 })).resolves.toMatchObject({ status: 202 });
    await expect(c.reconcile()).resolves.toMatchObject({ status: 202 });
    // Without the header the same master refuses, naming the problem.
    const raw = await fetch(`${lc.masterUrl}/api/v1/scheduler`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'REVIVE', framework_id: { value: info.frameworkId } }),
    });
    expect(raw.status).toBe(400);
    expect(await raw.text()).toContain('Mesos-Stream-Id');
  });

  it('reconnects after missed heartbeats and re-subscribes with the same FrameworkID', async () => {
    const lc = await cluster();
    const persisted: string[] = [];
    const { c, disconnects, subs } = client(lc.masterUrl, { onFrameworkId: (id) => { persisted.push(id); } });
    await c.start();
    const first = await c.waitForSubscribed(10_000);
    lc.control.pauseHeartbeats(4000);
    await waitFor(() => disconnects.some((d) => d.reason === 'missed heartbeats'), 'the watchdog', 8000);
    await waitFor(() => subs.length === 2 && c.state === 'SUBSCRIBED', 're-subscription', 10_000);
    expect(subs[1]?.frameworkId).toBe(first.frameworkId);
    expect(subs[1]?.resubscribed).toBe(true);
    expect(subs[1]?.streamId).not.toBe(first.streamId);
    expect(persisted).toEqual([first.frameworkId]);
    // The new stream id works for calls.
    await expect(c.revive(['locus'])).resolves.toMatchObject({ status: 202 });
  });

  it('re-subscribes with the same FrameworkID when the master drops the stream', async () => {
    const lc = await cluster();
    const { c, subs, disconnects } = client(lc.masterUrl);
    await c.start();
    const first = await c.waitForSubscribed(10_000);
    lc.control.dropSubscriptions();
    await waitFor(() => subs.length === 2, 're-subscription');
    expect(disconnects[0]?.willRetry).toBe(true);
    expect(subs[1]?.frameworkId).toBe(first.frameworkId);
    // A new client (a restarted Locus) with the stored id is the same framework too.
    await c.stop();
    const again = new SchedulerClient({
      master: lc.masterUrl,
      framework: buildFrameworkInfo({ name: 'locus-it', roles: ['locus'], user: 'root', id: first.frameworkId }),
    });
    cleanups.push(() => again.stop());
    await again.start();
    expect((await again.waitForSubscribed(10_000)).frameworkId).toBe(first.frameworkId);
  });

  it('asks the leadership gate before every subscription: a no stops it for good with NOT_LEADER, never subscribing again', async () => {
    const lc = await cluster();
    let leader = true;
    let asked = 0;
    const { c, subs } = client(lc.masterUrl, { beforeSubscribe: async () => { asked++; return leader; } });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.code));
    await c.start();
    await c.waitForSubscribed(10_000);
    expect(asked).toBe(1);
    // A standby took over meanwhile: the dropped stream must not be re-subscribed.
    leader = false;
    lc.control.dropSubscriptions();
    await waitFor(() => errors.length === 1, 'the refusal');
    expect(errors).toEqual(['NOT_LEADER']);
    expect(c.fatalError?.code).toBe('NOT_LEADER');
    expect(asked).toBe(2);
    await new Promise((r) => setTimeout(r, 500));
    expect(subs).toHaveLength(1);
    expect(c.state).toBe('DISCONNECTED');
  });

  it('backs off on 503 and then subscribes', async () => {
    const lc = await cluster();
    lc.control.failNextSubscribes(2);
    const { c, disconnects } = client(lc.masterUrl);
    const t0 = Date.now();
    await c.start();
    await c.waitForSubscribed(10_000);
    expect(disconnects.map((d) => d.error?.code)).toEqual(['NOT_READY', 'NOT_READY']);
    expect(disconnects[0]?.error?.message).toContain('Master has not finished recovery');
    // Two backoffs of at least 0.5 × 50 ms and 0.5 × 100 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(75);
  });

  it('follows a 307 from a non-leading master to the leader', async () => {
    const leader = await cluster();
    const follower = await cluster({ redirectTo: leader.masterUrl, agents: 1 });
    const { c } = client(follower.masterUrl);
    await c.start();
    const info = await c.waitForSubscribed(10_000);
    expect(info.master).toBe(leader.masterUrl);
    await expect(c.revive()).resolves.toMatchObject({ status: 202 });
  });

  it('authenticates with principal and secret, and stops when refused', async () => {
    const lc = await cluster({ credentials: [{ principal: 'locus', secret: 's3cret' }] });
    const ok = client(lc.masterUrl, { credentials: { principal: 'locus', secret: 's3cret' } });
    await ok.c.start();
    expect((await ok.c.waitForSubscribed(10_000)).frameworkId).toBeTruthy();
    await expect(ok.c.suppress()).resolves.toMatchObject({ status: 202 });

    const bad = client(lc.masterUrl, { credentials: { principal: 'locus', secret: 'nope' } });
    await bad.c.start();
    await expect(bad.c.waitForSubscribed(10_000)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(bad.c.state).toBe('DISCONNECTED');

    const none = client(lc.masterUrl);
    await none.c.start();
    await expect(none.c.waitForSubscribed(10_000)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('speaks TLS to an https master trusted through a CA file', async () => {
    const dir = join(workRoot, 'tls');
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore' });
    const lc = await cluster({ tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') }, agents: 1 });
    expect(lc.masterUrl.startsWith('https://')).toBe(true);
    const trusted = client(lc.masterUrl, { caFile: join(dir, 'cert.pem') });
    await trusted.c.start();
    expect((await trusted.c.waitForSubscribed(10_000)).master).toBe(lc.masterUrl);
    await expect(trusted.c.revive()).resolves.toMatchObject({ status: 202 });

    // Without the CA the certificate is refused (and the reason says so).
    const untrusted = client(lc.masterUrl);
    await untrusted.c.start();
    await waitFor(() => untrusted.disconnects.length > 0, 'a TLS failure');
    expect(untrusted.disconnects[0]?.error?.message).toMatch(/self[- ]signed|certificate/i);
    expect(untrusted.c.state).not.toBe('SUBSCRIBED');
  });

  itWith([ZOOKEEPER], 'finds the leader through ZooKeeper and moves when leadership changes', async () => {
    const zk = await startZooKeeper();
    cleanups.push(() => zk.stop());
    const admin = await zk.client();
    cleanups.push(async () => admin.close());
    const a = await cluster({ agents: 1 });
    const b = await cluster({ agents: 1 });
    const portOf = (u: string): number => Number(new URL(u).port);
    const nodeA = await registerMaster(admin, '/mesos', { id: 'a', ip: '127.0.0.1', port: portOf(a.masterUrl) });
    await registerMaster(admin, '/mesos', { id: 'b', ip: '127.0.0.1', port: portOf(b.masterUrl) });
    const { c, subs } = client(`zk://${zk.connectString}/mesos`);
    await c.start();
    const first = await c.waitForSubscribed(10_000);
    expect(first.master).toBe(a.masterUrl);
    await removeNode(admin, nodeA); // a steps down; b (next sequence) leads
    await waitFor(() => subs.length === 2 && c.state === 'SUBSCRIBED', 'subscription at the new leader');
    expect(subs[1]?.master).toBe(b.masterUrl);
    expect(subs[1]?.frameworkId).toBe(first.frameworkId);
  });
});

describe('locus mesos probe', () => {
  const bin = join(process.cwd(), 'dist/src/cli/main.js');
  beforeAll(() => {
    // Tests spawn the built CLI; build it if this run has not.
    try {
      execFileSync('node', [bin, '--version'], { stdio: 'ignore' });
    } catch {
      execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'ignore' });
    }
  });

  // Asynchronous on purpose: the local cluster runs in this process and must keep answering.
  const probe = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile('node', [bin, 'mesos', 'probe', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      });
    });

  it('--json summarises offers, declines them and tears the framework down', async () => {
    const lc = await cluster({ credentials: [{ principal: 'prober', secret: 'pw' }] });
    const secret = join(workRoot, 'secret');
    await writeFile(secret, 'pw\n');
    const r = await probe(['--master', lc.masterUrl, '--principal', 'prober', '--secret-file', secret, '--role', 'locus', '--json', '--timeout', '10s']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { framework_id: string; master: string; role: string; offers: { hostname: string; agent_id: string; resources: { cpus: number; ports: string } }[] };
    expect(out.master).toBe(lc.masterUrl);
    expect(out.role).toBe('locus');
    expect(out.framework_id).toMatch(/\S/);
    expect(new Set(out.offers.map((o) => o.agent_id)).size).toBe(2);
    expect(out.offers[0]?.resources.cpus).toBe(2);
    expect(out.offers[0]?.resources.ports).toBe('31000-31099');
    // TEARDOWN happened: the master lists the probe among completed frameworks.
    const state = (await (await fetch(`${lc.masterUrl}/state`)).json()) as { frameworks: { id: string }[]; completed_frameworks?: { id: string }[] };
    expect(state.frameworks.map((f) => f.id)).not.toContain(out.framework_id);
  });

  it('probes the framework\'s default role, locus, unless told another', async () => {
    const lc = await cluster({ agents: 1 });
    const plain = await probe(['--master', lc.masterUrl, '--json', '--timeout', '10s']);
    expect(plain.code, plain.stderr).toBe(0);
    expect((JSON.parse(plain.stdout) as { role: string }).role).toBe('locus');
    const other = await probe(['--master', lc.masterUrl, '--role', 'etl', '--json', '--timeout', '10s']);
    expect(other.code, other.stderr).toBe(0);
    expect((JSON.parse(other.stdout) as { role: string }).role).toBe('etl');
  });

  it('exits non-zero with one line when auth is refused or nothing listens', async () => {
    const lc = await cluster({ credentials: [{ principal: 'prober', secret: 'pw' }], agents: 1 });
    const refused = await probe(['--master', lc.masterUrl, '--timeout', '5s']);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain('401');

    const nothing = await probe(['--master', 'http://127.0.0.1:1', '--timeout', '1s']);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr.trim().split('\n')).toHaveLength(1);
    expect(nothing.stderr).toContain('ECONNREFUSED');
  });

  it('exits non-zero at once when the URL is a web server, not a master', async () => {
    const web = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html><body>welcome</body></html>');
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => web.close(() => r())));
    const t0 = Date.now();
    const r = await probe(['--master', `http://127.0.0.1:${(web.address() as AddressInfo).port}`, '--timeout', '20s']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('not a Mesos master');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
