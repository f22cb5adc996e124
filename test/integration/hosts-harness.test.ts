/**
 * The separate-hosts harness itself (test/harness/hosts.ts): hostnames and
 * addresses, private directories no other host sees, no route out of the
 * bridge's /24, a rate-limited link that really limits, byte counters that
 * count, and a down() that leaves nothing behind.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../harness/requires.js';
import { HOST_PRIVATE_DIR, NETNS, hostsUp, sweepStaleHosts, type Hosts } from '../harness/hosts.js';
import { LOCUS_CLI } from '../harness/build.js';

describeWith([NETNS], 'hosts harness: separate hosts on one machine', () => {
  let hosts: Hosts | undefined;
  let sink: Server | undefined;
  let sinkPort = 0;
  let received = 0;

  beforeAll(async () => {
    hosts = await hostsUp({ count: 2, rate: '20mbit' });
    // A byte sink on the bridge address: what hosts reach on "this machine".
    sink = createServer((s) => { s.on('data', (b: Buffer) => { received += b.length; }); s.on('error', () => undefined); });
    await new Promise<void>((r) => sink?.listen(0, hosts?.gateway, () => r()));
    const addr = sink.address();
    sinkPort = typeof addr === 'object' && addr !== null ? addr.port : 0;
  }, 60_000);

  afterAll(async () => {
    await new Promise<void>((r) => (sink ? sink.close(() => r()) : r()));
    await hosts?.down();
  }, 60_000);

  const h = (i: number): NonNullable<Hosts>['hosts'][number] => {
    const x = hosts?.hosts[i];
    if (!x) throw new Error(`no host ${i}`);
    return x;
  };

  it('gives each host its name, its address and a /24 with no way out', async () => {
    if (!hosts) throw new Error('no hosts');
    const one = await hosts.exec(h(0), ['sh', '-c', 'hostname; ip -4 -o addr show dev eth0; ip route; cat /etc/hosts']);
    expect(one.stdout.split('\n')[0]).toBe(h(0).name);
    expect(one.stdout).toContain(`inet ${h(0).ip}/24`);
    expect(one.stdout).not.toContain('default');
    expect(one.stdout).toContain(`${h(1).ip} ${h(1).name}`);
    expect((await hosts.exec(h(1), ['hostname'])).stdout.trim()).toBe(h(1).name);
    // This machine keeps its own name: the UTS namespace was the host's only.
    expect(execFileSync('hostname').toString().trim()).not.toBe(h(0).name);
  }, 30_000);

  it('keeps a host private directory invisible to the other hosts', async () => {
    if (!hosts) throw new Error('no hosts');
    await hosts.exec(h(0), ['sh', '-c', `echo secret > ${HOST_PRIVATE_DIR}/only-on-1`]);
    expect(readFileSync(hosts.outside(h(0), `${HOST_PRIVATE_DIR}/only-on-1`), 'utf8')).toBe('secret\n');
    const other = await hosts.exec(h(1), ['sh', '-c', `ls -A ${HOST_PRIVATE_DIR}; echo --; ls -A /var/lib/locus-hosts; echo --; test -e ${h(0).dir}/only-on-1 && echo visible || echo hidden`]);
    expect(other.stdout).toBe('--\n--\nhidden\n');
    // And this machine's own view of the mount point stays empty.
    expect(existsSync(`${HOST_PRIVATE_DIR}/only-on-1`)).toBe(false);
  }, 30_000);

  it('limits the link to its rate and counts the bytes on it', async () => {
    if (!hosts) throw new Error('no hosts');
    const before = await hosts.bytes(h(0));
    const bytes = 4 * 1024 * 1024;
    const script = `const s=require('net').connect(${sinkPort},'${hosts.gateway}',()=>{const t=Date.now();s.end(Buffer.alloc(${bytes}),()=>{});s.on('close',()=>{console.log(Date.now()-t)})});`;
    const t0 = Date.now();
    await hosts.exec(h(0), [process.execPath, '-e', script], { timeoutMs: 60_000 });
    const elapsedMs = Date.now() - t0;
    const after = await hosts.bytes(h(0));
    expect(received).toBeGreaterThanOrEqual(bytes);
    expect(after.sent - before.sent).toBeGreaterThanOrEqual(bytes);
    expect(after.received - before.received).toBeGreaterThan(0);
    // 4 MiB at 20 Mbit/s is 1.68 s; the 256 KiB burst and timing slack leave well over 1.2 s.
    expect(elapsedMs).toBeGreaterThan(1200);
    // The other host's link saw none of it.
    const other = await hosts.bytes(h(1));
    expect(other.sent).toBeLessThan(bytes / 10);
  }, 60_000);

  it('removes namespaces, links, bridge and directories on down()', async () => {
    const { hostsUp: up } = await import('../harness/hosts.js');
    const extra = await up({ count: 1, rate: '50mbit' });
    const child = extra.spawn(extra.hosts[0] ?? h(0), ['sleep', '600'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    await extra.down();
    expect(child.exitCode !== null || child.signalCode !== null).toBe(true);
    expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain(`${extra.prefix}-`);
    expect(execFileSync('ip', ['-o', 'link', 'show']).toString()).not.toContain(`${extra.prefix}-`);
    expect(existsSync(extra.hosts[0]?.dir ?? '/nonexistent')).toBe(false);
  }, 60_000);

  it('sweeps the hosts of a run that died without down()', async () => {
    // A process that makes one host and exits at once, as a crashed test would.
    const netns = join(dirname(LOCUS_CLI), '../local/netns.js');
    const prefix = execFileSync(process.execPath, ['--input-type=module', '-e', `import { hostsUp } from '${netns}'; const h = await hostsUp({ count: 1 }); console.log(h.prefix); process.exit(0);`]).toString().trim();
    expect(prefix).toMatch(/^lx\d+$/);
    expect(execFileSync('ip', ['netns', 'list']).toString()).toContain(`${prefix}-1`);
    expect(await sweepStaleHosts()).toContain(prefix);
    expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain(`${prefix}-`);
    expect(execFileSync('ip', ['-o', 'link', 'show']).toString()).not.toContain(`${prefix}-`);
  }, 60_000);
});
