/**
 * The entry point executors start from: `node dist/executor.mjs executor <flags>`, the same
 * command line as `locus executor <flags>`. scripts/bundle-executor.mjs bundles it with every
 * module it loads into one file (dist/executor-bundle.cjs, loaded by dist/executor.mjs with V8's
 * code cache), because a new executor is on the path of every job that finds none warm: loading
 * the ~300 files of the CLI's executor command and its packages (BullMQ, ioredis, pino) took
 * 0.43-0.51 s of each start, one file 0.15-0.17 s (2-core machine, idle), 0.08 s with the cache
 * on a quicker one (0.10 s without).
 */
import { run } from './commands/executor.js';
import { CliUsageError } from './args.js';
import { exitWith, stopOnEarlySignals } from './process.js';

stopOnEarlySignals();

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name !== 'executor') throw new CliUsageError(`this is the executor's entry point: its first argument must be 'executor', got '${name ?? ''}' (other commands: locus <command>)`);
  return await run(rest);
}

exitWith(main(process.argv.slice(2)));
