/**
 * `locus logs TASK [-f]`: a task attempt's stdout (or --stderr), read from its
 * sandbox on the agent through the API; -f keeps printing new output until
 * the task ends, across retries.
 */
import { CliUsageError, intFlag, parseCommand } from '../args.js';
import { COMMON_HELP, COMMON_OPTIONS, checkTaskId, clientFrom, onePositional, reportError } from './job.js';

const HELP = `usage: locus logs TASK [options]

Print a task's output (TASK is <jobId>.<stage>.<index>).

options:
  -f, --follow     keep printing new output until the task ends
  --stderr         standard error instead of standard output
  --tail N         only the last N lines
  --attempt N      a given attempt (default the latest)
${COMMON_HELP.split('\n').filter((l) => !l.includes('--json')).join('\n')}
`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  follow: { type: 'boolean', short: 'f' },
  stderr: { type: 'boolean' },
  tail: { type: 'string' },
  attempt: { type: 'string' },
} as const;

/** Entry point of `locus logs`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, OPTIONS, HELP);
  if (!parsed) return 0;
  const f = parsed.values;
  const given = onePositional(parsed.positionals, 'TASK', HELP);
  if (f.json === true) throw new CliUsageError('logs prints text; --json is not supported');
  const tail = f.tail === undefined ? undefined : String(intFlag(f.tail, 'tail', 0));
  const attempt = f.attempt === undefined ? undefined : String(intFlag(f.attempt, 'attempt', 1, 1));
  const task = checkTaskId(given);
  const client = clientFrom(f);
  const path = `/v1/tasks/${encodeURIComponent(task)}/logs`;
  const query = {
    tenant: f.tenant, stream: f.stderr === true ? 'stderr' : 'stdout', tail, attempt, ...(f.follow === true ? { follow: 'true' } : {}),
  };
  try {
    if (f.follow !== true) {
      const res = await client.request('GET', path, { query, headers: { accept: 'text/plain' } });
      // The server answers the last 8 MiB of a longer log: say so, where the start was cut.
      const skipped = Number(res.headers.get('locus-log-skipped-bytes') ?? 0);
      if (skipped > 0) process.stderr.write(`locus: the first ${skipped} bytes of this log are not shown (it is longer than the server answers at once); --tail N shows its last N lines\n`);
      process.stdout.write(typeof res.body === 'string' ? res.body : JSON.stringify(res.body));
      return 0;
    }
    // fetch gives up on a body that is silent for 5 minutes (a quiet task): reopen the follow from
    // the end of the log then, which is where this one stopped, since nothing was written meanwhile.
    for (let reopened = 0; ; reopened++) {
      const res = await client.stream(path, reopened === 0 ? query : { ...query, tail: '0' }, 'text/plain');
      try {
        if (res.body) {
          for await (const chunk of res.body) {
            if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
          }
        }
        return 0;
      } catch (err) {
        if (reopened >= 100) throw err;
      }
    }
  } catch (err) {
    return reportError(err);
  }
}
