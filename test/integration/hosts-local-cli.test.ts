/**
 * `locus local --hosts netns`: the built CLI starts a master on a bridge and
 * one `locus agent` process per separate host, with the requested link
 * rate, serves them as any other agents, and removes every host on SIGINT;
 * `locus data put` into that cluster writes each replica into its host's
 * private directory, where the host's tasks read it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { LOCUS_CLI } from '../harness/build.js';
import { describeWith } from '../harness/requires.js';
import { NETNS, sweepStaleHosts } from '../harness/hosts.js';

/**
 * `locus local --hosts netns` with two agents, waited for until both agents are up; `output()` is
 * everything it printed so far.
 */
async function startNetnsLocal(workDir: string, extra: readonly string[]): Promise<{ proc: ChildProcess; output: () => string; exited: Promise<number | null> }> {
  const proc = spawn(process.execPath, [LOCUS_CLI, 'local', '--hosts', 'netns', '--agents', '2', ...extra, '--port', '0', '--work-dir', workDir, '--isolation', 'process'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: 'warn' },
  });
  let out = '';
  proc.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  proc.stderr?.on('data', (b: Buffer) => { out += b.toString(); });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const deadline = Date.now() + 60_000;
  while ((out.match(/locus: agent /g) ?? []).length < 2 || !out.includes('Ctrl-C')) {
    if (proc.exitCode !== null) throw new Error(`locus local exited ${proc.exitCode}: ${out}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      await exited;
      await sweepStaleHosts();
      throw new Error(`locus local --hosts netns did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, output: () => out, exited };
}

describeWith([NETNS], 'locus local --hosts netns', () => {
  it('runs each agent on its own host behind a rate-limited link, and cleans up on SIGINT', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'locus-local-netns-'));
    const { proc, output, exited } = await startNetnsLocal(workDir, ['--link-rate', '50mbit']);
    const out = output();
    try {
      const masterUrl = /^(http:\/\/10\.78\.\d+\.1:\d+)$/m.exec(out)?.[1];
      const prefix = /bridge (lx\d+)-br/.exec(out)?.[1];
      if (masterUrl === undefined || prefix === undefined) throw new Error(`no master URL or bridge in: ${out}`);
      const state = (await (await fetch(`${masterUrl}/state`)).json()) as { slaves: { hostname: string; pid: string; active: boolean }[] };
      const net = new URL(masterUrl).hostname.replace(/\.1$/, '');
      expect(state.slaves.map((s) => [s.hostname, s.pid, s.active]).sort()).toEqual([
        [`${prefix}-1`, `slave(1)@${net}.11:5051`, true],
        [`${prefix}-2`, `slave(1)@${net}.12:5051`, true],
      ]);
      // The link towards host 1 is shaped at the requested rate.
      expect(execFileSync('tc', ['qdisc', 'show', 'dev', `${prefix}-1p`]).toString()).toMatch(/tbf .*rate 50Mbit/);
      proc.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain(`${prefix}-`);
      expect(execFileSync('ip', ['-o', 'link', 'show']).toString()).not.toContain(`${prefix}-`);
    } finally {
      // A CLI that had to be killed leaves its hosts behind: they belong to a dead owner now.
      if (proc.exitCode === null) { proc.kill('SIGKILL'); await exited; await sweepStaleHosts(); }
      rmSync(workDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('locus data put writes replicas into the hosts\' private directories, not this machine\'s view of the hosts\' paths', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'locus-local-netns-put-'));
    const { proc, output, exited } = await startNetnsLocal(workDir, []);
    const out = output();
    try {
      const privateDirs = [...out.matchAll(/locus: agent (\S+) at .*; private dir (\S+)$/gm)].map((m) => ({ host: m[1] ?? '', dir: m[2] ?? '' }));
      expect(privateDirs).toHaveLength(2);
      const src = join(workDir, 'words.txt');
      writeFileSync(src, 'alpha beta gamma\n');
      // A dataset name of this run's own: earlier runs (of a version that wrote there) may have
      // left directories of the same host names on this machine.
      const ds = `ds-${process.pid}-${Date.now()}`;
      execFileSync(process.execPath, [LOCUS_CLI, 'data', 'put', src, `local://${ds}/words.txt`, '--replicas', '2', '--work-dir', workDir]);
      for (const { host, dir } of privateDirs) {
        // The agent's work dir is /srv/locus-host/locus inside its host: its data dir, seen from here.
        expect(readFileSync(join(dir, 'locus', 'agents', host, 'data', ds, 'words.txt'), 'utf8')).toBe('alpha beta gamma\n');
        // Not beside the hosts, at the path only the host itself sees there (no host reads that).
        expect(existsSync(join('/srv/locus-host/locus/agents', host, 'data', ds))).toBe(false);
      }
      proc.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (proc.exitCode === null) { proc.kill('SIGKILL'); await exited; await sweepStaleHosts(); }
      rmSync(workDir, { recursive: true, force: true });
    }
  }, 120_000);
});
