/**
 * `locus exec` and `locus doctor` through the built binary: only the
 * workload's output on stdout, Locus's own lines prefixed on stderr, the
 * command's exit status, and the reason when the container killed it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LINUX_ISOLATION, itWith } from '../harness/requires.js';

const BIN = 'dist/src/cli/main.js';
// A cgroup root of its own, so the check that nothing is left behind cannot see other suites' cgroups.
const CGROUP_ROOT = `locus-clitest-${process.pid}`;
// What doctor must report: the same detection the requirement helper made.
const linux = LINUX_ISOLATION.missing === undefined;
let work: string;

/** Build when the binary is missing or older than the sources this file tests. */
function buildIfStale(): void {
  const sources = ['src/cli/commands/exec.ts', 'src/cli/commands/doctor.ts', 'src/cli/main.ts', ...readdirSync('src/executor/isolation').map((f) => join('src/executor/isolation', f))];
  const built = join('dist/src/cli/commands/exec.js');
  if (existsSync(built) && sources.every((s) => statSync(s).mtimeMs <= statSync(built).mtimeMs)) return;
  // Other modules' type errors must not stop the build of these files: tsc emits anyway.
  spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'ignore' });
}

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function locus(args: string[], timeoutMs = 20_000, onStart?: (pid: number, stdout: () => string) => void): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn('node', [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOCUS_LOG_LEVEL: '', LOCUS_CGROUP_ROOT: CGROUP_ROOT } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    onStart?.(child.pid ?? 0, () => stdout);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(() => {
  buildIfStale();
  expect(existsSync(BIN)).toBe(true);
  work = mkdtempSync('/var/tmp/locus-cli-');
  chmodSync(work, 0o755);
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  expect(readdirSync('/sys/fs/cgroup').filter((c) => existsSync(join('/sys/fs/cgroup', c, CGROUP_ROOT)))).toEqual([]);
});

test('exec passes through output and the exit status, with nothing of Locus on stdout', async () => {
  const r = await locus(['exec', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  expect(r.code).toBe(3);
  expect(r.stdout).toBe('out\n');
  expect(r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('locus: '))).toEqual(['err']);
});

itWith([LINUX_ISOLATION], 'exec reports an OOM kill with the limit and exits 137', async () => {
  const r = await locus(['exec', '--mem', '32MiB', '--isolation', 'linux', '--', 'tail', '/dev/zero']);
  expect(r.code).toBe(137);
  expect(r.stdout).toBe('');
  expect(r.stderr).toContain('locus: OOM-killed: memory limit 32MiB\n');
});

itWith([LINUX_ISOLATION], 'exec mounts volumes read-only when asked and runs as the given user', async () => {
  const vol = join(work, 'vol');
  rmSync(vol, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', vol]);
  writeFileSync(join(vol, 'in.txt'), 'data\n');
  const r = await locus(['exec', '--isolation', 'linux', '--user', 'daemon', '--cpus', '0.5', '--pids', '16', '--volume', `${vol}:/input:ro`, '--', 'sh', '-c', 'id -un; cat /input/in.txt; (echo x > /input/new) 2>/dev/null && echo WROTE; echo end']);
  expect(r.code).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines.slice(0, 2)).toEqual(['daemon', 'data']);
  expect(r.stdout).not.toContain('WROTE');
  expect(existsSync(join(vol, 'new'))).toBe(false);
});

itWith([LINUX_ISOLATION], 'SIGTERM to locus exec stops the container and says so', async () => {
  const r = await locus(['exec', '--', 'sh', '-c', 'trap "echo stopping; exit 4" TERM; echo ready; while :; do sleep 0.05; done'], 20_000, (pid, stdout) => {
    const poll = setInterval(() => {
      if (!stdout().includes('ready')) return;
      clearInterval(poll);
      process.kill(pid, 'SIGTERM');
    }, 20);
  });
  expect(r.stdout).toBe('ready\nstopping\n');
  expect(r.code).toBe(4);
  expect(r.stderr).toContain('locus: SIGTERM received, stopping the container');
  expect(r.stderr).toContain('locus: killed on request');
});

test('exec --isolation process says it is not isolated', async () => {
  const r = await locus(['exec', '--isolation', 'process', '--', 'true']);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/^locus: NOT isolated/m);
});

test('exec without a command is a usage error', async () => {
  const r = await locus(['exec', '--mem', '1GiB']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^locus: no command given/);
});

test('doctor reports the isolation this machine supports and why', async () => {
  const r = await locus(['doctor']);
  expect(r.code).toBe(0);
  // Both outcomes are asserted: which one depends on the host, never whether anything is checked.
  expect(r.stdout).toMatch(linux ? /^OK +isolation +linux \(cgroups (v1|v2);/m : /^WARN +isolation +process: containers are NOT isolated .* — fix: /m);
  const json = await locus(['doctor', '--json']);
  const parsed = JSON.parse(json.stdout) as Array<{ name: string; details: string[] }>;
  expect(parsed[0]?.name).toBe('isolation');
  expect(parsed[0]?.details.length).toBeGreaterThan(0);
});
