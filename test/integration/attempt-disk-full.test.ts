/**
 * An attempt that fails while its sandbox's filesystem is full is the host's failure, not the
 * task's: it is reported HOST_DISK_FULL, which the job service does not count against the
 * task's retries (capped, as unreachable inputs are) and which moves the job off the host.
 * A real size-limited tmpfs holds the sandbox; the runner is a stand-in whose workload fills it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runAttempt, type AttemptContext } from '../../src/executor/attempt.js';
import { CONTRACT_VERSION, HOST_DISK_FULL, type AttemptPayload } from '../../src/executor/contract.js';
import type { AttemptRunner, RunHandle, RunSpec } from '../../src/executor/runner.js';
import { silentLogger } from '../../src/obs/log.js';
import { classifyFailure } from '../../src/scheduler/jobs/service.js';
import { ROOT, describeWith } from '../harness/requires.js';

let dir: string;
let disk: string;
let mounted = false;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'locus-diskfull-'));
  disk = join(dir, 'disk');
  await mkdir(disk);
  if (process.getuid?.() === 0) {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', disk]);
    mounted = true;
  }
});

afterAll(async () => {
  if (mounted) execFileSync('umount', ['-l', disk]);
  await rm(dir, { recursive: true, force: true });
});

/** A runner whose workload writes `fill` bytes into its sandbox (on the small disk), then fails. */
function runner(fill: number): AttemptRunner {
  return {
    kind: 'fills-the-disk',
    async launch(spec: RunSpec): Promise<RunHandle> {
      const sandboxDir = join(disk, spec.containerId);
      await mkdir(sandboxDir, { recursive: true });
      await writeFile(join(sandboxDir, 'scratch'), Buffer.alloc(fill)).catch(() => undefined);
      return { sandboxDir, wait: async () => ({ exitCode: 1, signal: null, reason: 'EXITED', message: 'exited with status 1' }), kill: async () => undefined };
    },
    close: async () => undefined,
  };
}

function ctx(fill: number): AttemptContext {
  return { runner: runner(fill), host: 'agent-full', logger: silentLogger(), scratchDir: join(dir, 'scratch'), killGraceMs: 100 };
}

function payload(n: number): AttemptPayload {
  return {
    contractVersion: CONTRACT_VERSION, jobId: 'job-d', taskId: `job-d.0.${n}`, attemptId: `job-d.0.${n}.1`, attempt: 1,
    argv: ['true'], env: {}, resources: { cpus: 0.1, memMiB: 32, diskMiB: 1 }, timeoutMs: 10_000, volumes: [], inputPaths: [],
  };
}

const control = { delivery: 'd', drain: new AbortController().signal, onRunning: () => undefined };

describeWith([ROOT], 'a failure on a full disk', () => {
  it('with space left, a failing workload is the task\'s failure (EXIT_NONZERO, counted)', async () => {
    const r = await runAttempt(payload(0), ctx(64 * 1024), control);
    expect(r).toMatchObject({ state: 'FAILED', reason: 'EXIT_NONZERO' });
    expect(classifyFailure(r)).toBe('counted');
  });

  it('with the sandbox\'s filesystem full, it is the host\'s (HOST_DISK_FULL, not counted)', async () => {
    const r = await runAttempt(payload(1), ctx(8 * 1024 * 1024), control);
    expect(r).toMatchObject({ state: 'FAILED', reason: HOST_DISK_FULL, host: 'agent-full' });
    expect(r.message).toContain('no space left');
    expect(classifyFailure(r)).toBe('not-counted');
  });
});
