/**
 * `locus explain TASK`: why a task is pending (waiting for locality, no
 * capacity, over quota, not subscribed...) or what it is doing.
 */
import { isObject } from '../../core/decode.js';
import { LocusError } from '../../core/errors.js';
import { parseCommand } from '../args.js';
import { COMMON_HELP, COMMON_OPTIONS, clientFrom, onePositional, reportError } from './job.js';

const HELP = `usage: locus explain TASK [options]

Explain why a task (<jobId>.<stage>.<index>) is pending, or what it is doing.

options:
${COMMON_HELP}
`;

/** Entry point of `locus explain`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, COMMON_OPTIONS, HELP);
  if (!parsed) return 0;
  const f = parsed.values;
  const task = onePositional(parsed.positionals, 'TASK', HELP);
  const client = clientFrom(f);
  try {
    const body = await client.get(`/v1/tasks/${encodeURIComponent(task)}/explain`, { tenant: f.tenant });
    if (f.json === true) {
      process.stdout.write(JSON.stringify(body, null, 2) + '\n');
      return 0;
    }
    if (!isObject(body)) throw new LocusError('PROTOCOL', 'the server answered something that is not an explanation');
    const get = (k: string): string => (typeof body[k] === 'string' ? body[k] : '');
    const until = get('until') ? ` (until ${get('until')})` : '';
    process.stdout.write(`task ${get('taskId') || task}: ${get('state')}\n${get('code')}: ${get('message')}${until}\n`);
    return 0;
  } catch (err) {
    return reportError(err);
  }
}
