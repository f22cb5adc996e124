/**
 * `locus submit job.yaml [--watch]`: send a job spec (YAML or JSON, as
 * written: the server validates it and names the field that is wrong), print
 * the job id, and with --watch follow the job's event stream to its end —
 * a live progress block on a terminal, one line per event otherwise, one
 * JSON object per line with --json. With --watch the exit status says how
 * the job ended: 0 SUCCEEDED, 1 FAILED or CANCELLED.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { LocusError } from '../../core/errors.js';
import { CliUsageError, parseCommand } from '../args.js';
import type { LocusClient } from '../client.js';
import {
  JobProgress, LiveDisplay, asEventView, asJobView, readSse, renderEventLine, renderFrame, renderSummary,
} from '../progress.js';
import { COMMON_HELP, COMMON_OPTIONS, clientFrom, jobPath, onePositional, reportError } from './job.js';

const HELP = `usage: locus submit FILE [options]

Submit a job spec (YAML or JSON; '-' reads standard input) and print its id.

options:
  --watch                 follow the job until it ends (exit 0 when it SUCCEEDED, 1 otherwise)
  --idempotency-key KEY   submitting twice with the same key makes one job (default: a fresh key,
                          reused for this command's own retries)
${COMMON_HELP} (with --watch: one JSON event per line)
`;

const OPTIONS = {
  ...COMMON_OPTIONS,
  watch: { type: 'boolean', short: 'w' },
  'idempotency-key': { type: 'string' },
} as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function readSpec(file: string): Promise<{ text: string; contentType: string }> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new CliUsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const json = /\.json$/i.test(file) || (!/\.ya?ml$/i.test(file) && text.trimStart().startsWith('{'));
  return { text, contentType: json ? 'application/json' : 'application/yaml' };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString('utf8');
}

/** POST the spec; a server that is not ready yet (not subscribed) is retried for a while with the same key. */
async function post(client: LocusClient, spec: { text: string; contentType: string }, key: string, tenant: string | undefined): Promise<unknown> {
  const deadline = Date.now() + 30_000;
  let told = false;
  for (let delay = 250; ; delay = Math.min(2000, delay * 2)) {
    try {
      const res = await client.request('POST', '/v1/jobs', { rawBody: spec, headers: { 'idempotency-key': key }, query: { tenant } });
      return res.body;
    } catch (err) {
      if (!(err instanceof LocusError) || err.code !== 'NOT_READY' || Date.now() > deadline) throw err;
      if (!told) process.stderr.write(`locus: the server is not ready yet (${err.message}); retrying\n`);
      told = true;
      await sleep(delay);
    }
  }
}

/** Where watched output goes and how. */
type Mode = 'live' | 'lines' | 'json';

/**
 * Follow the job's events until it ends. A stream that breaks early is
 * reopened: the server starts every stream with the job's current state.
 */
export async function watchJob(client: LocusClient, id: string, tenant: string | undefined, mode: Mode, progress: JobProgress): Promise<JobProgress> {
  const out = process.stdout;
  const live = mode === 'live' ? new LiveDisplay(out) : undefined;
  const width = (): number => out.columns || Number(process.env['COLUMNS']) || 80;
  let lastDraw = 0;
  let drewEnd = false;
  const draw = (force = false): void => {
    const now = Date.now();
    // Many events a second are coalesced into at most ten redraws.
    if (!live || (!force && now - lastDraw < 100)) return;
    lastDraw = now;
    drewEnd = progress.done;
    live.draw(renderFrame(progress, now, width()));
  };
  const ticker = live ? setInterval(() => draw(true), 1000) : undefined;
  ticker?.unref();
  try {
    for (let attempt = 0; !progress.done; attempt++) {
      if (attempt > 0) {
        if (attempt > 20) throw new LocusError('UNAVAILABLE', `lost the event stream of job ${id} too often`);
        await sleep(Math.min(5000, 200 * attempt));
      }
      let res: Response;
      try {
        res = await client.stream(jobPath(id, '/events'), { tenant });
      } catch (err) {
        if (err instanceof LocusError && (err.code === 'UNAVAILABLE' || err.code === 'NOT_READY') && attempt < 20) continue;
        throw err;
      }
      if (!res.body) continue;
      try {
        for await (const msg of readSse(res.body)) {
          if (msg.event !== 'job' && msg.event !== 'task') continue;
          let data: unknown;
          try {
            data = JSON.parse(msg.data) as unknown;
          } catch {
            continue;
          }
          const e = asEventView(data);
          progress.apply(e);
          if (mode === 'json') out.write(JSON.stringify(data) + '\n');
          else if (mode === 'lines') out.write(renderEventLine(e, progress) + '\n');
          else draw(progress.done);
          if (progress.done) break;
        }
      } catch {
        // The connection broke mid-stream: reopen it (the loop's condition decides).
      }
    }
  } finally {
    if (ticker) clearInterval(ticker);
  }
  if (live) {
    if (!drewEnd) draw(true);
    live.release();
  }
  return progress;
}

/** Entry point of `locus submit`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, OPTIONS, HELP);
  if (!parsed) return 0;
  const f = parsed.values;
  const file = onePositional(parsed.positionals, 'FILE', HELP);
  const spec = await readSpec(file);
  const client = clientFrom(f);
  const json = f.json === true;
  try {
    const key = f['idempotency-key'] ?? `cli-${randomUUID()}`;
    const body = await post(client, spec, key, f.tenant);
    const job = asJobView(body);
    if (json) process.stdout.write(JSON.stringify(body) + '\n');
    else process.stdout.write(job.id + '\n');
    if (f.watch !== true) return 0;
    const mode: Mode = json ? 'json' : process.stdout.isTTY ? 'live' : 'lines';
    const onSigint = (): void => {
      process.stderr.write(`\nlocus: stopped watching; job ${job.id} keeps running (locus cancel ${job.id} stops it)\n`);
      process.exit(130);
    };
    process.once('SIGINT', onSigint);
    try {
      const progress = await watchJob(client, job.id, f.tenant, mode, new JobProgress(job));
      if (!json) process.stderr.write(`locus: ${renderSummary(progress, Date.now())}\n`);
      return progress.state === 'SUCCEEDED' ? 0 : 1;
    } finally {
      process.off('SIGINT', onSigint);
    }
  } catch (err) {
    return reportError(err);
  }
}
