/**
 * Pieces both isolators share: checking a spec, pumping the workload's output
 * into rotating files, polling disk usage, and turning an exit status into a
 * ContainerExit.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';
import { invalidField } from '../../core/errors.js';
import { formatMiB } from '../../core/units.js';
import { diskUsageBytes, signalName } from './host.js';
import { RotatingLog } from './logs.js';
import type { ContainerExit, ContainerSpec, ContainerUsage, TerminationReason } from './types.js';

/** Container ids become cgroup directory names: keep them to a safe alphabet. */
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Names a container id may not take (they are directory names the isolators use themselves). */
const RESERVED_IDS = new Set(['payload']);

/** Check a spec before anything is created; throws LocusError INVALID_FIELD. */
export function validateSpec(spec: ContainerSpec): void {
  if (!ID_RE.test(spec.id) || RESERVED_IDS.has(spec.id) || spec.id.startsWith('locus-')) {
    throw invalidField('id', `container id '${spec.id}' must match ${ID_RE.source} and not be 'payload' or start with 'locus-'`);
  }
  if (spec.argv.length === 0 || spec.argv[0] === '') throw invalidField('argv', 'the command is empty');
  if (!isAbsolute(spec.sandboxDir)) throw invalidField('sandboxDir', `must be absolute, got '${spec.sandboxDir}'`);
  const l = spec.limits;
  if (!(l.cpus >= 0) || !(l.memMiB >= 0) || !(l.diskMiB >= 0) || !Number.isInteger(l.pids) || l.pids < 0) {
    throw invalidField('limits', 'cpus, memMiB, diskMiB and pids must be non-negative (pids an integer)');
  }
  for (const [i, v] of spec.volumes.entries()) {
    if (!isAbsolute(v.hostPath)) throw invalidField(`volumes[${i}].hostPath`, `must be absolute, got '${v.hostPath}'`);
    if (!existsSync(v.hostPath)) throw invalidField(`volumes[${i}].hostPath`, `'${v.hostPath}' does not exist`);
    if (v.containerPath === '' || normalize(v.containerPath).split('/').includes('..')) {
      throw invalidField(`volumes[${i}].containerPath`, `'${v.containerPath}' must be a path without '..'`);
    }
  }
}

/** Where a volume appears inside the container (relative paths are under the sandbox). */
export function volumeTarget(sandboxDir: string, containerPath: string): string {
  return normalize(isAbsolute(containerPath) ? containerPath : join(sandboxDir, containerPath));
}

/** Pipes the child's stdout/stderr into rotating files and an optional callback. */
export class OutputPump {
  private readonly logs: RotatingLog[] = [];
  private readonly done: Promise<void>;
  /** The first bytes of stderr, kept for launch-failure messages. */
  stderrHead = '';

  constructor(child: ChildProcess, spec: ContainerSpec, owner?: { uid: number; gid: number }) {
    const rotate = spec.logRotateBytes ?? 0;
    const ends: Promise<void>[] = [];
    const streams = [
      ['stdout', child.stdout, spec.stdoutPath ?? join(spec.sandboxDir, 'stdout')],
      ['stderr', child.stderr, spec.stderrPath ?? join(spec.sandboxDir, 'stderr')],
    ] as const;
    for (const [name, stream, path] of streams) {
      if (!stream) continue;
      const log = new RotatingLog(path, rotate, owner);
      this.logs.push(log);
      stream.on('data', (chunk: Buffer) => {
        log.write(chunk);
        if (name === 'stderr' && this.stderrHead.length < 2048) this.stderrHead += chunk.toString('utf8');
        spec.onOutput?.(name, chunk);
      });
      ends.push(new Promise<void>((resolve) => {
        stream.once('close', () => resolve());
        stream.once('error', () => resolve());
      }));
    }
    this.done = Promise.all(ends).then(() => undefined);
  }

  /** Wait until both pipes closed (bounded: a leaked descriptor must not hang the exit). */
  async finish(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.done, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    if (timer) clearTimeout(timer);
    for (const l of this.logs) l.close();
  }
}

/** The directories whose usage counts against a container's disk limit. */
export function diskPaths(spec: ContainerSpec): string[] {
  // Like Mesos disk/du: the sandbox and the persistent volumes. Shared host directories
  // (an outputs root, input data) are not the container's disk and can be huge to walk.
  return [spec.sandboxDir, ...spec.volumes.filter((v) => !v.readOnly && v.countsAsDisk !== false).map((v) => v.hostPath)];
}

/** Polls disk usage (like Mesos disk/du) and reports when it passes the limit. */
export class DiskWatch {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** The last measured usage in bytes. */
  lastBytes = 0;

  constructor(
    private readonly paths: readonly string[],
    private readonly limitMiB: number,
    private readonly intervalMs: number,
    private readonly onExceeded: (usedBytes: number) => void,
  ) {}

  /** Measure once now. */
  async measure(): Promise<number> {
    let total = 0;
    for (const p of this.paths) total += await diskUsageBytes(p);
    this.lastBytes = total;
    return total;
  }

  start(): void {
    const tick = async (): Promise<void> => {
      if (this.running) return;
      this.running = true;
      try {
        const used = await this.measure();
        if (this.limitMiB > 0 && used > this.limitMiB * 1024 * 1024) this.onExceeded(used);
      } finally {
        this.running = false;
      }
    };
    this.timer = setInterval(() => void tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The message for a disk limit kill. */
export function diskMessage(usedBytes: number, limitMiB: number): string {
  return `disk limit exceeded: used ${formatMiB(Math.round((usedBytes / (1024 * 1024)) * 10) / 10)} of ${formatMiB(limitMiB)}`;
}

/** The message for an OOM kill (matches what `locus exec` prints). */
export function oomMessage(memMiB: number): string {
  return `OOM-killed: memory limit ${formatMiB(memMiB)}`;
}

/**
 * Build the exit from a status. Launchers report a death by signal as
 * 128 + signal (as shells do), so such codes are turned back into the signal.
 */
export function buildExit(
  code: number | null,
  signal: NodeJS.Signals | null,
  reason: TerminationReason,
  message: string | undefined,
  usage: ContainerUsage,
): ContainerExit {
  let exitCode = code;
  let sig: string | null = signal;
  if (exitCode !== null && exitCode > 128 && exitCode < 128 + 65) {
    const name = signalName(exitCode - 128);
    if (name !== undefined) {
      sig = name;
      exitCode = null;
    }
  }
  const text =
    message ??
    (sig !== null ? `terminated by ${sig}` : `exited with status ${exitCode ?? 'unknown'}`);
  return { exitCode, signal: sig, reason, message: text, usage };
}

/** The exit status a shell would show for an exit (128 + signal for signals). */
export function shellStatus(exit: ContainerExit, signalNumberOf: (s: string) => number | undefined): number {
  if (exit.exitCode !== null) return exit.exitCode;
  if (exit.signal !== null) return 128 + (signalNumberOf(exit.signal) ?? 9);
  return 1;
}
