/**
 * `locus cancel ID`: cancel a job (pending tasks dropped, running attempts
 * killed). Cancelling a job that already ended changes nothing and says so.
 */
import { parseCommand } from '../args.js';
import { asJobView } from '../progress.js';
import { COMMON_HELP, COMMON_OPTIONS, clientFrom, jobPath, onePositional, reportError } from './job.js';

const HELP = `usage: locus cancel ID [options]

Cancel a job: its pending tasks are dropped and its running attempts killed.

options:
${COMMON_HELP}
`;

/** Entry point of `locus cancel`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, COMMON_OPTIONS, HELP);
  if (!parsed) return 0;
  const f = parsed.values;
  const id = onePositional(parsed.positionals, 'ID', HELP);
  const client = clientFrom(f);
  try {
    const res = await client.request('POST', jobPath(id, '/cancel'), { query: { tenant: f.tenant } });
    if (f.json === true) {
      process.stdout.write(JSON.stringify(res.body, null, 2) + '\n');
      return 0;
    }
    const job = asJobView(res.body);
    const already = job.state !== 'CANCELLED' ? ' (it had already ended; nothing to cancel)' : '';
    process.stdout.write(`job ${job.id}: ${job.state}${already}\n`);
    return 0;
  } catch (err) {
    return reportError(err);
  }
}
