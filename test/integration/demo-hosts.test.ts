/**
 * `locus demo --hosts netns` through the built binary: three network-namespace
 * hosts with 100 Mbit/s links, an agent process on each, a managed Redis on
 * the bridge, outputs kept on the hosts. The word count's answer is the
 * local demo's (same seeded text), and the run reports node-local share,
 * the bytes that crossed the links and the elapsed time. Without root the
 * command says why in one line and exits non-zero.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../harness/requires.js';
import { NETNS } from '../harness/hosts.js';
import { buildIfStale, processesUnder, runCli, tempStateDir } from './surfaces-harness.js';

describeWith([NETNS], 'locus demo --hosts netns', () => {
  let stateDir = '';

  beforeAll(() => {
    buildIfStale();
    stateDir = tempStateDir('locus-demo-hosts-');
  });

  afterAll(() => {
    if (!stateDir) return;
    for (const pid of processesUnder(stateDir)) process.kill(pid, 'SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('runs the word count on three separate hosts and reports locality, network bytes and elapsed time', async () => {
    const r = await runCli(['demo', '--hosts', 'netns', '--state-dir', stateDir], { HOME: stateDir }, 300_000);
    expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^locus: 3 hosts on 10\.\d+\.\d+\.0\/24 \(links 100mbit\)/m);
    const lines = r.stdout.split('\n');
    const top = lines.indexOf('top words:');
    expect(top).toBeGreaterThan(0);
    const words = lines.slice(top + 1, top + 11).map((l) => /^\s+(\d+)\s+([a-z]+)$/.exec(l));
    expect(words.every((m) => m !== null), lines.slice(top, top + 11).join('\n')).toBe(true);
    const counts = words.map((m) => Number(m?.[1]));
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeLessThanOrEqual(counts[i - 1] ?? 0);
    expect(words[0]?.[2]).toBe('the');
    // 12 files of 20,000 words: every word of the sample was counted once.
    expect(r.stdout).toMatch(/SUCCEEDED stage reduce: 13\/13 done/);
    const local = /^node-local: (\d+)\/(\d+) map tasks \((\d+)%\)$/m.exec(r.stdout);
    expect(local, r.stdout).not.toBeNull();
    expect(Number(local?.[2])).toBe(12);
    const net = /^network: (\d+) bytes into the hosts over their links \(\d+\.\d\d MB; (\d+) bytes out\), input (\d+) bytes$/m.exec(r.stdout);
    expect(net, r.stdout).not.toBeNull();
    // At least the reduce's reads of other hosts' map outputs crossed the links, and every host's
    // executor talked to Redis: far more than nothing, far less than the input read remotely twice.
    expect(Number(net?.[1])).toBeGreaterThan(10_000);
    expect(Number(net?.[2])).toBeGreaterThan(10_000);
    expect(Number(net?.[3])).toBeGreaterThan(500_000);
    expect(r.stdout).toMatch(/^elapsed: \d+(\.\d)?s$/m);
    // Everything it started stopped with it.
    const deadline = Date.now() + 5000;
    while (processesUnder(stateDir).length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    expect(processesUnder(stateDir)).toEqual([]);
  }, 320_000);

  it('says in one line why it cannot run without root', () => {
    // The same binary as an unprivileged user (nobody): no namespaces, no bridge, no tc.
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, 'dist/src/cli/main.js', 'demo', '--hosts', 'netns', '--state-dir', `${stateDir}/unprivileged`], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, HOME: stateDir } });
    expect(r.status, r.stderr).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^locus: --hosts netns needs root and network namespaces .*: running as uid 65534, not root/);
    expect(r.stdout).toBe('');
  }, 70_000);
});
