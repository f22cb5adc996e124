/**
 * CPU profiles of executor processes for the benchmarks (BENCH_PROFILE_DIR): the agent starts
 * executors with a fixed command line, so the framework is given this wrapper as its
 * `executor-main` instead.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultExecutorMain } from '../src/app/config.js';

/**
 * A wrapper around the executor's entry point that samples its CPU with the inspector and
 * writes a .cpuprofile when it exits or is told to stop (--cpu-prof cannot be passed through
 * NODE_OPTIONS, and the agent starts executors with a fixed command line).
 */
export async function profilingExecutorMain(work: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o777); // executors run as an unprivileged user
  const main = defaultExecutorMain();
  const file = join(work, 'profile-executor.mjs');
  await writeFile(file, [
    "import { Session } from 'node:inspector';",
    "import { writeFileSync } from 'node:fs';",
    'const s = new Session();',
    's.connect();',
    "s.post('Profiler.enable');",
    "s.post('Profiler.start');",
    'let done = false;',
    'const dump = () => {',
    '  if (done) return;',
    '  done = true;',
    `  s.post('Profiler.stop', (err, r) => { if (!err) writeFileSync(${JSON.stringify(dir)} + '/executor-' + process.pid + '-' + Date.now() + '.cpuprofile', JSON.stringify(r.profile)); });`,
    '};',
    "process.on('exit', dump);",
    "process.prependListener('SIGTERM', dump);",
    `process.argv.splice(1, 1, ${JSON.stringify(main)});`,
    `await import(${JSON.stringify(main)});`,
    '',
  ].join('\n'));
  await chmod(file, 0o644);
  return file;
}

