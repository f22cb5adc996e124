/**
 * `locus explain TASK`: why a task is pending (waiting for locality, no
 * capacity, over quota, not subscribed...) or what it is doing.
 */
import { isObject } from '../../core/decode.js';
import { LocusError } from '../../core/errors.js';
import { COMMON_HELP, runIdCommand } from './job.js';

const HELP = `usage: locus explain TASK [options]

Explain why a task (<jobId>.<stage>.<index>) is pending, or what it is doing.

options:
${COMMON_HELP}
`;

/** Entry point of `locus explain`. */
export async function run(argv: string[]): Promise<number> {
  return await runIdCommand(argv, HELP, 'TASK',
    (client, task, tenant) => client.get(`/v1/tasks/${encodeURIComponent(task)}/explain`, { tenant }),
    (body, task) => {
      if (!isObject(body)) throw new LocusError('PROTOCOL', 'the server answered something that is not an explanation');
      const get = (k: string): string => (typeof body[k] === 'string' ? body[k] : '');
      const until = get('until') ? ` (until ${get('until')})` : '';
      return `task ${get('taskId') || task}: ${get('state')}\n${get('code')}: ${get('message')}${until}\n`;
    });
}
