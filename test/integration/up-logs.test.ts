/**
 * `locus up` on a terminal prints its banner between log lines a person can
 * read, not JSON; JSON when stderr is not a terminal or when asked for; and
 * with --log-file the logs go to the file the banner names. The terminal is a
 * real pseudo-terminal from util-linux `script`, so the binary decides by
 * isatty() as it would in an operator's shell.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCUS_CLI, ensureBuilt } from '../harness/build.js';
import { freePort } from '../harness/ports.js';
import { startRedis, type TestRedis } from '../harness/redis.js';

let dir: string;
let redis: TestRedis;

beforeAll(async () => {
  ensureBuilt();
  // util-linux's script gives the child a pseudo-terminal; a missing one is an error, not a skip.
  expect(spawnSync('sh', ['-c', 'command -v script'], { stdio: 'ignore' }).status, "util-linux 'script' is needed (apt-get install bsdutils)").toBe(0);
  dir = mkdtempSync('/tmp/locus-uplogs-');
  chmodSync(dir, 0o755);
  redis = await startRedis();
}, 60_000);

afterAll(async () => {
  await redis?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

interface UpRun {
  /** Everything the terminal (or the pipes) showed, stdout and stderr together. */
  readonly output: string;
  readonly code: number | null;
}

/**
 * Run `locus up` (one agent, the test Redis, free ports) until its banner and the framework's
 * subscription are shown, then SIGTERM it. With `tty`, inside `script` on a pseudo-terminal.
 */
async function up(
  name: string,
  opts: { tty: boolean; args?: string[]; env?: Record<string, string>; subscribed?: () => boolean; redisUrl?: string; beforeStop?: () => Promise<void> },
): Promise<UpRun & { stopMs: number }> {
  const args = [
    LOCUS_CLI, 'up', '--agents', '1', '--racks', '1', '--redis', opts.redisUrl ?? redis.url, '--isolation', 'process',
    '--http-port', String(await freePort()), '--grpc-port', '0', '--master-port', '0', '--state-dir', join(dir, name),
    ...(opts.args ?? []),
  ];
  const env = { ...process.env, LOCUS_LOG_FORMAT: '', ...(opts.env ?? {}) };
  // The shell prints its pid and execs node, so that pid is locus up's own, whatever script does with signals.
  const proc = opts.tty
    ? spawn('script', ['-qefc', `echo LOCUSPID=$$; exec ${[process.execPath, ...args].map(shellQuote).join(' ')}`, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn('sh', ['-c', `echo LOCUSPID=$$; exec ${[process.execPath, ...args].map(shellQuote).join(' ')}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout?.on('data', (b: Buffer) => { output += b.toString(); });
  proc.stderr?.on('data', (b: Buffer) => { output += b.toString(); });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const deadline = Date.now() + 60_000;
  try {
    // Up means: the banner is out and the framework has subscribed (said in the logs, wherever they go).
    const subscribed = opts.subscribed ?? ((): boolean => /subscribed/.test(output));
    while (!(/admin token: /.test(output) && /Ctrl-C stops everything/.test(output) && subscribed())) {
      if (proc.exitCode !== null) throw new Error(`locus up exited ${proc.exitCode}: ${output}`);
      if (Date.now() > deadline) throw new Error(`locus up did not come up: ${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await opts.beforeStop?.();
  } finally {
    const pid = Number(/LOCUSPID=(\d+)/.exec(output)?.[1]);
    if (Number.isInteger(pid) && pid > 1) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
  const t0 = Date.now();
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
  const stopMs = Date.now() - t0;
  if (code === 'hung') {
    proc.kill('SIGKILL');
    throw new Error(`locus up did not stop: ${output}`);
  }
  return { output: output.replace(/\r\n/g, '\n'), code, stopMs };
}

const jsonLines = (out: string): string[] => out.split('\n').filter((l) => l.trimStart().startsWith('{"level"'));
const prettyLines = (out: string): string[] => out.split('\n').filter((l) => /^\d\d:\d\d:\d\d (INFO|WARN|ERROR|DEBUG) /.test(l));

describe('locus up logs', () => {
  it('on a terminal: human-readable log lines around the banner, no JSON', async () => {
    const r = await up('tty', { tty: true });
    expect(jsonLines(r.output), r.output).toEqual([]);
    expect(prettyLines(r.output).length, r.output).toBeGreaterThan(2);
    expect(r.output).toMatch(/^\d\d:\d\d:\d\d INFO  \[mesos\] subscribed frameworkId=\S+/m);
    expect(r.output).toMatch(/^logs: +stderr \(pretty; --log-file FILE to keep them apart\)$/m);
    expect(r.code).toBe(0);
  }, 120_000);

  it('not on a terminal: JSON lines', async () => {
    const r = await up('pipe', { tty: false });
    expect(jsonLines(r.output).length, r.output).toBeGreaterThan(2);
    for (const l of jsonLines(r.output)) expect(() => JSON.parse(l) as unknown, l).not.toThrow();
    expect(prettyLines(r.output)).toEqual([]);
    expect(r.output).toMatch(/^logs: +stderr \(json;/m);
  }, 120_000);

  it('on a terminal, --log-format json (or LOCUS_LOG_FORMAT=json) asks for JSON', async () => {
    const r = await up('tty-json', { tty: true, env: { LOCUS_LOG_FORMAT: 'json' } });
    expect(jsonLines(r.output).length, r.output).toBeGreaterThan(2);
    expect(prettyLines(r.output)).toEqual([]);
  }, 120_000);

  it('--log-file: the banner names the file, the terminal shows no log lines, the file has them as JSON', async () => {
    const file = join(dir, 'logs', 'up.log');
    const r = await up('file', { tty: true, args: ['--log-file', file], subscribed: () => existsSync(file) && readFileSync(file, 'utf8').includes('"msg":"subscribed"') });
    expect(r.output).toContain(`logs:        ${file}`);
    expect(jsonLines(r.output)).toEqual([]);
    expect(prettyLines(r.output)).toEqual([]);
    expect(existsSync(file)).toBe(true);
    const logged = readFileSync(file, 'utf8').trim().split('\n');
    expect(logged.length).toBeGreaterThan(2);
    expect((JSON.parse(logged.find((l) => l.includes('"subscribed"')) ?? '{}') as { msg?: string }).msg).toBe('subscribed');
  }, 120_000);

  it('closes a state dir an earlier version left open, and says so in its log', async () => {
    // As /var/lib/locus and ~/.locus were made before: listable, their files world-readable.
    const state = join(dir, 'old');
    mkdirSync(state);
    chmodSync(state, 0o755);
    writeFileSync(join(state, 'tenants.yaml'), 'tenants: []\n', { mode: 0o644 });
    const r = await up('old', { tty: false });
    expect(r.code, r.output).toBe(0);
    // Others still pass through it (sandboxes, outputs and datasets live beneath), but list nothing and read nothing.
    expect(statSync(state).mode & 0o777).toBe(0o711);
    expect(statSync(join(state, 'tenants.yaml')).mode & 0o777).toBe(0o600);
    expect(statSync(join(state, 'local')).mode & 0o777).toBe(0o711);
    expect(statSync(join(state, 'local', 'master.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(state, 'local', 'topology.json')).mode & 0o777).toBe(0o644);
    const closed = jsonLines(r.output).map((l) => JSON.parse(l) as { msg?: string; tightened?: string[] }).find((l) => l.msg?.startsWith('closed the state dir'));
    expect(closed?.tightened, r.output).toEqual(expect.arrayContaining([state, join(state, 'tenants.yaml')]));
  }, 120_000);

  it('with its Redis gone, SIGTERM still stops it within seconds, exit 1 saying so', async () => {
    const own = await startRedis();
    try {
      const r = await up('no-redis', {
        tty: false, redisUrl: own.url,
        beforeStop: async () => {
          await own.crash();
          await new Promise((res) => setTimeout(res, 1_000));
        },
      });
      expect(r.stopMs, r.output).toBeLessThan(12_000);
      expect(r.code, r.output).toBe(1);
      expect(r.output).toMatch(/^locus: stopped uncleanly: .*Redis at 127\.0\.0\.1:\d+ is unreachable/m);
    } finally {
      await own.dispose();
    }
  }, 120_000);
});
