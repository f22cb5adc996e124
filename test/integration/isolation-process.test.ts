/**
 * The process fallback, forced: plain child processes with rlimits, reported
 * loudly as NOT isolated, still killed as a group and still held to the disk limit.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createIsolator } from '../../src/executor/isolation/index.js';
import type { ContainerSpec, Isolator } from '../../src/executor/isolation/types.js';

let iso: Isolator;
let work: string;
const logLines: string[] = [];

function spec(id: string, argv: string[], over: Partial<ContainerSpec> = {}): ContainerSpec {
  return { id, argv, env: {}, sandboxDir: join(work, id), limits: { cpus: 1, memMiB: 64, diskMiB: 0, pids: 0 }, volumes: [], network: 'host', ...over };
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'locus-proc-'));
  const logger = pino({ level: 'info' }, { write: (s: string) => void logLines.push(s) });
  iso = await createIsolator('process', logger, { diskPollMs: 100, monitorPollMs: 50 });
});

afterAll(async () => {
  await iso?.close();
  rmSync(work, { recursive: true, force: true });
});

test('it says loudly that it does not isolate', () => {
  expect(iso.report.kind).toBe('process');
  expect(iso.report.cgroups).toBe('none');
  expect(iso.report.notes[0]).toBe('process isolation was requested');
  const warn = logLines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.level === 40);
  expect(warn?.msg).toMatch(/^NOT isolated/);
});

test('runs the command in its sandbox with an rlimit for memory and passes the exit code', async () => {
  let out = '';
  const c = await iso.launch({ ...spec('p1', ['sh', '-c', 'pwd; ulimit -d; echo hi > f; exit 5']), onOutput: (_s, b) => (out += b.toString()) });
  const exit = await c.wait();
  expect(exit).toMatchObject({ exitCode: 5, reason: 'EXITED' });
  expect(out.split('\n').slice(0, 2)).toEqual([join(work, 'p1'), String(64 * 1024)]);
  expect(readFileSync(join(work, 'p1', 'f'), 'utf8')).toBe('hi\n');
  expect(readFileSync(join(work, 'p1', 'stdout'), 'utf8')).toBe(out);
});

test('kill reaches every process of the group', async () => {
  let out = '';
  const c = await iso.launch({ ...spec('p2', ['sh', '-c', 'sleep 300 & sleep 300 & echo $!; wait']), onOutput: (_s, b) => (out += b.toString()) });
  const deadline = Date.now() + 5000;
  while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const child = Number(out.trim());
  expect(alive(child)).toBe(true);
  await c.kill(200);
  const exit = await c.wait();
  expect(exit.reason).toBe('KILLED');
  expect(alive(child)).toBe(false);
  expect(c.pid !== undefined && alive(c.pid)).toBe(false);
});

test('the disk limit is enforced by polling', async () => {
  const c = await iso.launch(spec('p3', ['sh', '-c', 'while :; do head -c 262144 /dev/zero >> big; sleep 0.02; done'], { limits: { cpus: 1, memMiB: 0, diskMiB: 2, pids: 0 } }));
  const exit = await c.wait();
  expect(exit.reason).toBe('DISK_LIMIT');
  expect(exit.message).toMatch(/of 2MiB$/);
});

test('usage is sampled per process group: CPU time and resident memory of the group, not of other containers', async () => {
  // Two containers at once: one counts to 400,000 in a child of its shell (about 0.3 s of CPU
  // however loaded the host is), then sleeps; the other only sleeps. Usage is sampled every
  // 250 ms: the busy one sleeps a full second after its child is reaped, so that the samples
  // that see the child's time (cutime) come in even when the host delays the monitor's timer
  // (CI run 91: 0.3 s of sleep left the last sample at 0.08 s of CPU).
  const busy = await iso.launch(spec('u-busy', ['sh', '-c', 'sh -c \'i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done\'; sleep 1']));
  const idle = await iso.launch(spec('u-idle', ['sh', '-c', 'sleep 1.3']));
  await new Promise((res) => setTimeout(res, 100));
  const during = await busy.usage();
  expect(during.memCurrentBytes).toBeGreaterThan(0);
  const busyExit = await busy.wait();
  const idleExit = await idle.wait();
  // The busy group's CPU includes its reaped child's (cutime); the sleeping one has almost none.
  expect(busyExit.usage?.cpuTimeSeconds ?? 0).toBeGreaterThanOrEqual(0.1);
  expect(idleExit.usage?.cpuTimeSeconds ?? 1).toBeLessThan(0.1);
  expect(busyExit.usage?.memPeakBytes ?? 0).toBeGreaterThan(0);
});
