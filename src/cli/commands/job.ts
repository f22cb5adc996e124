/**
 * `locus job ID`: one job's details and a summary of its tasks. Also home of
 * what the job commands (submit, jobs, job, logs, cancel, explain) share:
 * their common flags, the client, and how a server error is printed.
 */
import { isObject } from '../../core/decode.js';
import { LocusError } from '../../core/errors.js';
import { parseTaskId } from '../../scheduler/jobs/model.js';
import { CliUsageError, parseCommand } from '../args.js';
import { LocusClient, resolveClientConfig } from '../client.js';
import { asJobView, formatElapsed, localityMix, JobProgress } from '../progress.js';

/** Flags every job command takes. */
export const COMMON_OPTIONS = {
  server: { type: 'string' },
  token: { type: 'string' },
  tenant: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Help text of the common flags. */
export const COMMON_HELP = `  --server URL     the Locus API (LOCUS_SERVER, ~/.locus/config; default http://127.0.0.1:8080)
  --token TOKEN    bearer token (LOCUS_TOKEN, ~/.locus/config)
  --tenant NAME    admin only: act for this tenant
  --json           print JSON`;

/** A client from the common flags. */
export function clientFrom(f: { readonly server?: string | undefined; readonly token?: string | undefined }): LocusClient {
  return new LocusClient(resolveClientConfig({ server: f.server, token: f.token }));
}

/**
 * Print a server (or connection) error as `locus: CODE: message`, naming the
 * field when the message does not already, and give the exit status 1.
 * Anything that is not a LocusError is rethrown.
 */
export function reportError(err: unknown): number {
  if (!(err instanceof LocusError)) throw err;
  const field = err.field !== undefined && !err.message.includes(err.field) ? ` (field: ${err.field})` : '';
  process.stderr.write(`locus: ${err.code}: ${err.message}${field}\n`);
  return 1;
}

/** Exactly one positional argument, or a usage error. */
export function onePositional(positionals: readonly string[], what: string, help: string): string {
  const [first, ...rest] = positionals;
  if (first === undefined || first === '') throw new CliUsageError(`${what} is required\n${help.trimEnd()}`);
  if (rest.length > 0) throw new CliUsageError(`unexpected arguments: ${rest.join(' ')}`);
  return first;
}

/**
 * The shape of the one-id commands (cancel, explain): parse the common flags
 * and the id, ask the server, print the answer as JSON with `--json` or as
 * `render` says, and report server errors.
 */
/**
 * A TASK argument, checked here: the server answers a job id given for a task
 * with "task job-… not found", which reads as if the job were missing.
 */
export function checkTaskId(id: string): string {
  if (parseTaskId(id) !== undefined) return id;
  const hint = id.startsWith('job-') ? `; '${id}' looks like a job id: its first task is ${id}.0.0, and 'locus job ${id}' lists its tasks` : '';
  throw new CliUsageError(`'${id}' is not a task id (<jobId>.<stage>.<index>)${hint}`);
}

export async function runIdCommand(
  argv: string[], help: string, what: string,
  ask: (client: LocusClient, id: string, tenant: string | undefined) => Promise<unknown>,
  render: (body: unknown, id: string) => string,
): Promise<number> {
  const parsed = parseCommand(argv, COMMON_OPTIONS, help);
  if (!parsed) return 0;
  const f = parsed.values;
  const given = onePositional(parsed.positionals, what, help);
  const id = what === 'TASK' ? checkTaskId(given) : given;
  const client = clientFrom(f);
  try {
    const body = await ask(client, id, f.tenant);
    process.stdout.write(f.json === true ? JSON.stringify(body, null, 2) + '\n' : render(body, id));
    return 0;
  } catch (err) {
    return reportError(err);
  }
}

/** `/v1/jobs/<id>` with the id escaped. */
export function jobPath(id: string, suffix = ''): string {
  return `/v1/jobs/${encodeURIComponent(id)}${suffix}`;
}

const HELP = `usage: locus job ID [options]

Show a job: state, stages, task counts, locality and a summary of its tasks.

options:
${COMMON_HELP}
`;

interface TaskSummary {
  readonly id: string;
  readonly state: string;
  readonly host: string;
  readonly locality: string;
  readonly attempts: number;
  readonly message: string;
  readonly stage: number;
  /** Where its committed output is, as the host that holds it sees it. */
  readonly outputPath: string;
  /** The host holding it. */
  readonly outputHost: string;
}

/** How many host-kept outputs `locus job` lists before it says how many more there are. */
const OUTPUTS_LISTED = 10;

/**
 * The `output` row. With outputs kept on the hosts that wrote them (`shared-outputs: false`) the
 * job's output directory names a path on the framework's machine that nothing is written to:
 * each last-stage task's output is on its own host, under that host's output directory. Those
 * are listed instead (host:path), which is where the tasks' commit records say they are.
 */
function outputRows(job: { readonly output: string; readonly outputKept?: string; readonly stages: readonly { readonly outputs: string }[] }, tasks: readonly TaskSummary[]): [string, string][] {
  const last = job.stages.length - 1;
  if (job.stages[last]?.outputs === 'none') return [['output', 'none (the last stage writes no output)']];
  const committed = tasks.filter((t) => t.stage === last && t.state === 'SUCCEEDED' && t.outputPath !== '');
  let elsewhere: TaskSummary[];
  let heading: string;
  if (job.outputKept === 'hosts') {
    // The server says so, and `output` is the pattern of the hosts' paths (`{host}` in it).
    elsewhere = committed;
    heading = `kept on the hosts that ran the last stage (host:path), as ${job.output}:`;
  } else {
    // A server before `outputKept` names the framework-side directory: tell host-kept outputs by
    // their paths. Only a path destination has this question; a local:// or hdfs:// one is named as it is.
    const under = (p: string): boolean => p === job.output || p.startsWith(`${job.output}/`);
    elsewhere = job.output.startsWith('/') ? committed.filter((t) => !under(t.outputPath)) : [];
    heading = `kept on the hosts that ran the last stage (host:path), not in ${job.output}:`;
  }
  if (elsewhere.length === 0) return [['output', job.output]];
  const rows: [string, string][] = [['output', heading]];
  for (const t of elsewhere.slice(0, OUTPUTS_LISTED)) rows.push(['', `  ${t.outputHost}:${t.outputPath}`]);
  if (elsewhere.length > OUTPUTS_LISTED) rows.push(['', `  and ${elsewhere.length - OUTPUTS_LISTED} more (--json lists every task's outputPath)`]);
  return rows;
}

function asTasks(body: unknown): { tasks: TaskSummary[]; neverAttempted: number } {
  if (!isObject(body) || !Array.isArray(body['tasks'])) return { tasks: [], neverAttempted: 0 };
  const tasks = body['tasks'].filter(isObject).map((t): TaskSummary => {
    const attempts = Array.isArray(t['attempts']) ? t['attempts'].filter(isObject) : [];
    const last = attempts[attempts.length - 1] ?? {};
    const str = (o: Readonly<Record<string, unknown>>, k: string): string => (typeof o[k] === 'string' ? o[k] : '');
    return {
      id: str(t, 'id'), state: str(t, 'state'), host: str(last, 'host'), locality: str(last, 'locality'),
      attempts: attempts.length, message: str(last, 'message'),
      stage: typeof t['stage'] === 'number' ? t['stage'] : -1, outputPath: str(t, 'outputPath'),
      // The committing attempt's host (a recomputed task's last attempt may not be it); older servers: the last.
      outputHost: str(t, 'outputHost') || str(last, 'host'),
    };
  });
  return { tasks, neverAttempted: typeof body['neverAttempted'] === 'number' ? body['neverAttempted'] : 0 };
}

/** Entry point of `locus job`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, COMMON_OPTIONS, HELP);
  if (!parsed) return 0;
  const f = parsed.values;
  const id = onePositional(parsed.positionals, 'ID', HELP);
  const client = clientFrom(f);
  try {
    const query = { tenant: f.tenant };
    const [jobBody, tasksBody] = await Promise.all([client.get(jobPath(id), query), client.get(jobPath(id, '/tasks'), query)]);
    if (f.json === true) {
      process.stdout.write(JSON.stringify({ job: jobBody, tasks: isObject(tasksBody) ? tasksBody['tasks'] : [] }, null, 2) + '\n');
      return 0;
    }
    const job = asJobView(jobBody);
    const p = new JobProgress(job);
    const { tasks, neverAttempted } = asTasks(tasksBody);
    const rows: [string, string][] = [
      ['id', job.id],
      ['name', job.name],
      ['tenant', job.tenant],
      ['state', job.state + (job.message ? ` (${job.message})` : '')],
      ['stages', job.stages.map((s) => `${s.index === job.stage && !p.done ? '*' : ''}${s.name}${s.tasks === null ? '' : ` (${s.tasks})`}${s.outputs === 'none' ? ' [no output]' : ''}`).join(' → ')],
      ['tasks', `${job.counts.total} total: ${job.counts.succeeded} succeeded, ${job.counts.running} running, ${job.counts.pending} pending, ${job.counts.failed} failed`],
      ['locality', localityMix(p)],
      ['created', job.createdAt],
      ['elapsed', formatElapsed(p.elapsedMs(Date.now()))],
      // A last stage of `outputs: none` leaves nothing at the job's output directory.
      ...outputRows(job, tasks),
    ];
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(9)} ${v}\n`);
    const byState = new Map<string, number>();
    for (const t of tasks) byState.set(t.state, (byState.get(t.state) ?? 0) + 1);
    const summary = [...byState.entries()].map(([s, c]) => `${c} ${s}`).join(', ');
    process.stdout.write(`\nattempted tasks: ${tasks.length}${summary ? ` (${summary})` : ''}; never attempted: ${neverAttempted}\n`);
    // The tasks worth a look: failed ones with their last message, then running ones and where they run.
    const show = [...tasks.filter((t) => t.state === 'FAILED'), ...tasks.filter((t) => t.state === 'RUNNING')].slice(0, 20);
    for (const t of show) {
      const detail = t.state === 'FAILED' ? t.message : `on ${t.host} (${t.locality})`;
      process.stdout.write(`  ${t.id}  ${t.state}  attempts ${t.attempts}  ${detail}\n`);
    }
    return 0;
  } catch (err) {
    return reportError(err);
  }
}
