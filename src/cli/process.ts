/**
 * What every entry point of the `locus` binaries does around its command: stop at once on a
 * signal that arrives before the command has its own handling, and turn the command's outcome
 * into an exit code and one message on stderr.
 */
import { LocusError } from '../core/errors.js';
import { CliUsageError } from './args.js';

/**
 * Asked to stop before a command has installed its own handling (it is still loading its
 * modules): stop at once, as a process without handlers would. Needed because a container's
 * pid 1 (bubblewrap --as-pid-1, an image entrypoint) ignores signals it has no handler for, and
 * an agent's kill would then wait out the whole kill-policy grace. A command's own handler wins.
 */
export function stopOnEarlySignals(): void {
  for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    process.on(sig, () => {
      if (process.listenerCount(sig) > 1) return;
      process.exit(code);
    });
  }
}

/**
 * Output piped into a reader that stops early (`locus jobs | head`): the next write fails with
 * EPIPE, an error event nothing handled, and Node printed its stack. The reader has what it
 * wanted; end quietly, as other command-line tools do. Any other error on stdout is still one.
 */
export function quietOnClosedPipe(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

/** Set the exit code from a command's outcome: its code, 2 for a usage error, 1 for any other. */
export function exitWith(outcome: Promise<number>): void {
  outcome.then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof CliUsageError) {
        process.stderr.write(`locus: ${err.message}\n`);
        process.exitCode = 2;
      } else if (err instanceof LocusError) {
        process.stderr.write(`locus: ${err.message}\n`);
        process.exitCode = 1;
      } else {
        process.stderr.write(`locus: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        process.exitCode = 1;
      }
    },
  );
}
