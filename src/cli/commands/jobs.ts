/**
 * `locus jobs`: the caller's jobs, newest first, as a table (or JSON).
 */
import { isObject } from '../../core/decode.js';
import { formatShare } from '../../core/locality.js';
import { CliUsageError, parseCommand } from '../args.js';
import { JobProgress, asJobView, formatElapsed } from '../progress.js';
import { COMMON_HELP, COMMON_OPTIONS, clientFrom, reportError } from './job.js';

const HELP = `usage: locus jobs [options]

List jobs, newest first (a tenant sees its own; the admin sees all).

options:
  --state STATE    only jobs in this state (PENDING, RESOLVING, RUNNING, SUCCEEDED, FAILED, CANCELLED)
${COMMON_HELP}
`;

const OPTIONS = { ...COMMON_OPTIONS, state: { type: 'string' } } as const;

/** Entry point of `locus jobs`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, OPTIONS, HELP);
  if (!parsed) return 0;
  const f = parsed.values;
  if (parsed.positionals.length > 0) throw new CliUsageError(`unexpected arguments: ${parsed.positionals.join(' ')}\n${HELP.trimEnd()}`);
  const client = clientFrom(f);
  try {
    const body = await client.get('/v1/jobs', { tenant: f.tenant, state: f.state?.toUpperCase() });
    const raw = isObject(body) && Array.isArray(body['jobs']) ? body['jobs'] : [];
    if (f.json === true) {
      process.stdout.write(JSON.stringify(raw, null, 2) + '\n');
      return 0;
    }
    const now = Date.now();
    const rows = [['ID', 'NAME', 'TENANT', 'STATE', 'DONE', 'RUNNING', 'FAILED', 'NODE-LOCAL', 'ELAPSED']];
    for (const v of raw) {
      const j = asJobView(v);
      const p = new JobProgress(j);
      rows.push([
        j.id, j.name, j.tenant, j.state, `${p.succeeded}/${p.total}`, String(p.running), String(p.failed),
        formatShare(p.nodeLocalShare), formatElapsed(p.elapsedMs(now)),
      ]);
    }
    const widths = rows[0]?.map((_c, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
    for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd() + '\n');
    return 0;
  } catch (err) {
    return reportError(err);
  }
}
