/**
 * FALLBACK isolator for the local cluster: plain child processes, no
 * namespaces, no cgroups. Used only when `executor/isolation` does not
 * provide `createIsolator` yet. Each container is its own process group so a
 * kill reaches the whole tree; volumes with a relative container path become
 * symlinks inside the sandbox (absolute paths cannot be mounted without a
 * mount namespace and are reported in the container's stderr).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, symlinkSync, existsSync, lstatSync, writeSync } from 'node:fs';
import { isAbsolute, join, dirname } from 'node:path';
import type { Logger } from '../obs/log.js';
import type { Container, ContainerExit, ContainerSpec, ContainerUsage, IsolationReport, Isolator } from '../executor/isolation/types.js';

const ZERO_USAGE: ContainerUsage = { cpuTimeSeconds: 0, memPeakBytes: 0, memCurrentBytes: 0, diskUsedBytes: 0 };

/** A plain-process isolator (no isolation at all), loud about it. */
export class FallbackProcessIsolator implements Isolator {
  readonly report: IsolationReport = {
    kind: 'process',
    cgroups: 'none',
    namespaces: [],
    notes: ['local cluster fallback isolator: plain child processes, no namespaces, no cgroups, no resource limits'],
  };
  private readonly containers = new Map<string, Container>();

  constructor(private readonly logger: Logger) {
    logger.warn('local cluster: containers are plain processes (no isolation)');
  }

  async launch(spec: ContainerSpec): Promise<Container> {
    mkdirSync(spec.sandboxDir, { recursive: true });
    const stdoutFd = openSync(spec.stdoutPath ?? join(spec.sandboxDir, 'stdout'), 'a');
    const stderrFd = openSync(spec.stderrPath ?? join(spec.sandboxDir, 'stderr'), 'a');
    for (const v of spec.volumes) {
      if (isAbsolute(v.containerPath)) {
        writeSync(stderrFd, `locus local: fallback isolator cannot mount ${v.hostPath} at absolute path ${v.containerPath}\n`);
        continue;
      }
      const link = join(spec.sandboxDir, v.containerPath);
      mkdirSync(dirname(link), { recursive: true });
      let present = false;
      try { lstatSync(link); present = true; } catch { present = false; }
      if (!present && existsSync(v.hostPath)) symlinkSync(v.hostPath, link);
    }
    const [cmd, ...args] = spec.argv;
    let exitResolve!: (e: ContainerExit) => void;
    const exited = new Promise<ContainerExit>((res) => { exitResolve = res; });
    let killed = false;
    let launchError: string | undefined;
    const child = spawn(cmd ?? 'false', args, {
      cwd: spec.sandboxDir,
      env: { ...spec.env },
      stdio: ['ignore', stdoutFd, stderrFd],
      detached: true,
    });
    closeSync(stdoutFd);
    closeSync(stderrFd);
    child.on('error', (err) => { launchError = err.message; });
    child.on('close', (code, signal) => {
      this.containers.delete(spec.id);
      if (launchError !== undefined) {
        exitResolve({ exitCode: null, signal: null, reason: 'LAUNCH_FAILED', message: `launch failed: ${launchError}`, usage: ZERO_USAGE });
        return;
      }
      exitResolve({
        exitCode: code,
        signal,
        reason: killed ? 'KILLED' : 'EXITED',
        message: signal !== null ? `terminated with signal ${signal}` : `exited with status ${code ?? 0}`,
        usage: ZERO_USAGE,
      });
    });
    const signalGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try { process.kill(-child.pid, sig); } catch { /* already gone */ }
    };
    const container: Container = {
      id: spec.id,
      pid: child.pid,
      wait: () => exited,
      async kill(graceMs = 3000) {
        killed = true;
        signalGroup('SIGTERM');
        const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
        timer.unref();
        await exited;
        clearTimeout(timer);
        // Children that ignored the group's SIGTERM must not outlive the container.
        signalGroup('SIGKILL');
      },
      usage: async () => ZERO_USAGE,
    };
    this.containers.set(spec.id, container);
    return container;
  }

  get(id: string): Container | undefined {
    return this.containers.get(id);
  }

  async close(): Promise<void> {
    await Promise.all([...this.containers.values()].map((c) => c.kill(500)));
    this.logger.debug('fallback isolator closed');
  }
}
