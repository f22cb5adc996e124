/**
 * `locus cancel ID`: cancel a job (pending tasks dropped, running attempts
 * killed). Cancelling a job that already ended changes nothing and says so.
 */
import { asJobView, isTerminalState } from '../progress.js';
import { COMMON_HELP, jobPath, runIdCommand } from './job.js';

const HELP = `usage: locus cancel ID [options]

Cancel a job: its pending tasks are dropped and its running attempts killed.

options:
${COMMON_HELP}
`;

/** Entry point of `locus cancel`. */
export async function run(argv: string[]): Promise<number> {
  // Whether it had ended before is read first: the answer to a cancel is the job either way, and
  // a job cancelled before looked cancelled just now.
  let endedBefore = false;
  return await runIdCommand(argv, HELP, 'ID',
    async (client, id, tenant) => {
      endedBefore = isTerminalState(asJobView((await client.request('GET', jobPath(id), { query: { tenant } })).body).state);
      return (await client.request('POST', jobPath(id, '/cancel'), { query: { tenant } })).body;
    },
    (body) => {
      const job = asJobView(body);
      const already = endedBefore || job.state !== 'CANCELLED' ? ' (it had already ended; nothing to cancel)' : '';
      return `job ${job.id}: ${job.state}${already}\n`;
    });
}
