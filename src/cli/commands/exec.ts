/**
 * `locus exec`: run one command in a container on this machine. Only the
 * workload's output reaches stdout and stderr; Locus's own lines go to stderr
 * prefixed `locus:`. The exit status is the command's (128 + signal when it
 * was killed), and when the container killed it Locus says why.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { invalidField } from '../../core/errors.js';
import { parseSizeMiB } from '../../core/units.js';
import { createIsolator } from '../../executor/isolation/index.js';
import { shellStatus } from '../../executor/isolation/common.js';
import { signalNumber } from '../../executor/isolation/host.js';
import type { IsolationMode, VolumeMount } from '../../executor/isolation/types.js';
import type { Logger } from '../../obs/log.js';
import { CliUsageError, parseCommand } from '../args.js';

const HELP = `usage: locus exec [options] -- CMD [ARGS...]

Run one command in an isolated container here (namespaces + cgroups when
this machine allows it, otherwise plain processes — see 'locus doctor').

options:
  --cpus N               CPU cores (quota and shares), e.g. 0.5 (default: no limit)
  --mem SIZE             memory limit, e.g. 256MiB (default: no limit)
  --disk SIZE            sandbox + volume disk limit, e.g. 1GiB (default: no limit)
  --pids N               process limit (default: no limit)
  --volume HOST:PATH[:ro]  make a host directory visible (repeatable); PATH is
                         absolute or relative to the sandbox
  --user USER            run as this user (default: nobody)
  --isolation MODE       auto | linux | process (default: auto)
  --network MODE         none | host (default: host)
  --env KEY=VALUE        set an environment variable (repeatable)
  --sandbox DIR          use (and keep) this sandbox directory
  --cgroup-root NAME     directory under each cgroup hierarchy for Locus's cgroups (default: locus)
  --verbose              print Locus's own log lines
`;

const OPTIONS = {
  cpus: { type: 'string' },
  mem: { type: 'string' },
  disk: { type: 'string' },
  pids: { type: 'string' },
  volume: { type: 'string', multiple: true },
  user: { type: 'string' },
  isolation: { type: 'string' },
  network: { type: 'string' },
  env: { type: 'string', multiple: true },
  sandbox: { type: 'string' },
  'cgroup-root': { type: 'string' },
  verbose: { type: 'boolean' },
} as const;

/** Parse `HOST:PATH[:ro]` (or `:rw`). */
export function parseVolume(text: string): VolumeMount {
  const parts = text.split(':');
  let readOnly = false;
  const last = parts[parts.length - 1];
  if (parts.length === 3 && (last === 'ro' || last === 'rw')) {
    readOnly = last === 'ro';
    parts.pop();
  }
  const [host, path] = parts;
  if (parts.length !== 2 || !host || !path) throw new CliUsageError(`--volume '${text}' must be HOSTDIR:CONTAINERPATH[:ro]`);
  return { hostPath: resolve(host), containerPath: path, readOnly };
}

/** A logger whose lines read `locus: <message>` on stderr. */
function cliLogger(verbose: boolean): Logger {
  return pino(
    { level: verbose ? 'debug' : 'warn' },
    {
      write(line: string): void {
        let msg = line.trim();
        try {
          const obj: unknown = JSON.parse(line);
          if (typeof obj === 'object' && obj !== null && 'msg' in obj && typeof obj.msg === 'string') msg = obj.msg;
          if (verbose) msg = line.trim();
        } catch {
          // Not JSON: print as is.
        }
        process.stderr.write(`locus: ${msg}\n`);
      },
    },
  );
}

function numberFlag(value: string | undefined, flag: string): number {
  if (value === undefined) return 0;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new CliUsageError(`--${flag} must be a non-negative number, got '${value}'`);
  return n;
}

/** Entry point of `locus exec`. */
export async function run(argv: string[]): Promise<number> {
  // Everything after `--` is the command, even words like --help.
  const dash = argv.indexOf('--');
  const own = dash < 0 ? argv : argv.slice(0, dash);
  const parsed = parseCommand(own, OPTIONS, HELP);
  if (!parsed) return 0;
  const command = dash < 0 ? parsed.positionals : [...parsed.positionals, ...argv.slice(dash + 1)];
  if (command.length === 0) throw new CliUsageError(`no command given\n${HELP.trimEnd()}`);
  const v = parsed.values;

  const mode = (v.isolation ?? 'auto') as IsolationMode;
  if (!['auto', 'linux', 'process'].includes(mode)) throw new CliUsageError(`--isolation must be auto, linux or process, got '${v.isolation ?? ''}'`);
  const network = v.network ?? 'host';
  if (network !== 'none' && network !== 'host') throw new CliUsageError(`--network must be none or host, got '${network}'`);
  const pids = numberFlag(v.pids, 'pids');
  if (!Number.isInteger(pids)) throw new CliUsageError(`--pids must be an integer, got '${v.pids ?? ''}'`);
  const limits = {
    cpus: numberFlag(v.cpus, 'cpus'),
    memMiB: v.mem === undefined ? 0 : parseSizeMiB(v.mem, 'mem'),
    diskMiB: v.disk === undefined ? 0 : parseSizeMiB(v.disk, 'disk'),
    pids,
  };
  const volumes = (v.volume ?? []).map(parseVolume);
  const env: Record<string, string> = {};
  for (const e of v.env ?? []) {
    const eq = e.indexOf('=');
    if (eq <= 0) throw invalidField('env', `'${e}' must be KEY=VALUE`);
    env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  if (process.env['TERM'] !== undefined && env['TERM'] === undefined) env['TERM'] = process.env['TERM'];

  const logger = cliLogger(v.verbose === true);
  const keep = v.sandbox !== undefined;
  const sandboxDir = v.sandbox !== undefined ? (isAbsolute(v.sandbox) ? v.sandbox : resolve(v.sandbox)) : mkdtempSync(join(tmpdir(), 'locus-exec-'));
  const isolator = await createIsolator(mode, logger, {
    ...(v.user !== undefined ? { defaultUser: v.user } : {}),
    ...(v['cgroup-root'] !== undefined ? { cgroupRoot: v['cgroup-root'] } : {}),
  });
  const stop = (signal: NodeJS.Signals): void => {
    process.stderr.write(`locus: ${signal} received, stopping the container\n`);
    const c = isolator.get(id);
    void c?.kill(2000);
  };
  const id = `exec-${randomBytes(4).toString('hex')}`;
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const container = await isolator.launch({
      id,
      argv: command,
      env,
      sandboxDir,
      limits,
      volumes,
      network,
      onOutput: (stream, chunk) => (stream === 'stdout' ? process.stdout : process.stderr).write(chunk),
    });
    const exit = await container.wait();
    if (exit.reason !== 'EXITED') process.stderr.write(`locus: ${exit.message}\n`);
    return shellStatus(exit, signalNumber);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await isolator.close();
    if (!keep) rmSync(sandboxDir, { recursive: true, force: true });
  }
}
