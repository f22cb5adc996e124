/**
 * Running storage tools (`ceph`, `getfattr`, `rados`) as child processes with
 * a timeout, a size cap and a cancel signal, so a hung cluster never hangs us.
 */
import { execFile } from 'node:child_process';
import { LocusError } from '../core/errors.js';

/** Options for one tool run. */
export interface ToolOptions {
  readonly timeoutMs: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  /** Cap on stdout; cluster maps of big clusters are large. */
  readonly maxBuffer?: number;
}

/** A tool exited non-zero; stderr is kept to build a clear message. */
export class ToolError extends Error {
  constructor(readonly command: string, readonly exitCode: number | null, readonly stderr: string, readonly stdout: string, readonly timedOut: boolean) {
    super(`${command}: ${timedOut ? 'timed out' : `exited with ${exitCode ?? 'a signal'}`}${stderr.trim() ? `: ${lastLines(stderr)}` : ''}`);
    this.name = 'ToolError';
  }
}

function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

/** Run a tool and return its stdout; throws ToolError (non-zero exit, timeout) or LocusError UNAVAILABLE (tool missing). */
export async function runTool(file: string, args: readonly string[], options: ToolOptions): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    execFile(
      file,
      args,
      {
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: options.maxBuffer ?? 256 * 1024 * 1024,
        env: options.env ?? process.env,
        signal: options.signal,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve(stdout);
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number | null };
        if (e.code === 'ENOENT') {
          // Marked so that a stage's input listing fails at once instead of waiting for a tool
          // that will not appear (storage/errors.ts isTransientStorageError).
          reject(new LocusError('UNAVAILABLE', `'${file}' is not installed (not found on PATH)`, { cause: err, details: { notInstalled: file } }));
          return;
        }
        if (e.name === 'AbortError') {
          reject(err);
          return;
        }
        const exitCode = typeof e.code === 'number' ? e.code : null;
        reject(new ToolError(`${file} ${args.slice(0, 4).join(' ')}`, exitCode, String(stderr), String(stdout), e.killed === true && exitCode === null));
      },
    );
  });
}
