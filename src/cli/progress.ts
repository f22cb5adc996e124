/**
 * Watching a job from the CLI: decoding the job views and server-sent events
 * the API answers, a progress model fed by those events, and two renderings
 * of it — a live block redrawn in place on a terminal, and one plain line
 * per event for pipes and logs.
 *
 * The model takes every job event's counters as the truth and applies task
 * events in between as increments, so the display moves on every task
 * transition without asking the server for counts.
 */
import { isObject, type JsonObject } from '../core/decode.js';
import { LocusError } from '../core/errors.js';
import { formatShare, nodeLocalShare } from '../core/locality.js';
import { OUTPUT_KEPT, type JobCountsView, type JobEventView, type JobView, type StageView } from '../api/http/jobs-views.js';

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** Whether a job state is final. */
export function isTerminalState(state: string): boolean {
  return TERMINAL.has(state);
}

// ---------------------------------------------------------------------------
// Decoding what the server sends (unknown → the view types, loosely but safely)

const s = (o: JsonObject, k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : undefined);
const n = (o: JsonObject, k: string): number => (typeof o[k] === 'number' ? o[k] : 0);

function notA(what: string): LocusError {
  return new LocusError('PROTOCOL', `the server answered something that is not ${what}`);
}

/** Decode job counters. */
export function asCounts(v: unknown): JobCountsView {
  const o = isObject(v) ? v : {};
  const l = isObject(o['locality']) ? o['locality'] : {};
  const locality = { nodeLocal: n(l, 'nodeLocal'), rackLocal: n(l, 'rackLocal'), any: n(l, 'any') };
  return {
    total: n(o, 'total'), pending: n(o, 'pending'), running: n(o, 'running'), succeeded: n(o, 'succeeded'), failed: n(o, 'failed'),
    // Recomputed from the counters with the server's own definition (older servers do not send it).
    locality: { ...locality, nodeLocalShare: nodeLocalShare(locality) ?? null },
  };
}

/** Decode a job view. */
export function asJobView(v: unknown): JobView {
  if (!isObject(v)) throw notA('a job');
  const id = s(v, 'id');
  const state = s(v, 'state');
  if (id === undefined || state === undefined) throw notA('a job');
  const stages: StageView[] = Array.isArray(v['stages'])
    ? v['stages'].filter(isObject).map((st, i) => ({ index: typeof st['index'] === 'number' ? st['index'] : i, name: s(st, 'name') ?? `stage-${i}`, tasks: typeof st['tasks'] === 'number' ? st['tasks'] : null, outputs: st['outputs'] === 'none' ? 'none' as const : 'committed' as const }))
    : [];
  const labels: Record<string, string> = {};
  if (isObject(v['labels'])) for (const [k, x] of Object.entries(v['labels'])) if (typeof x === 'string') labels[k] = x;
  const opt = (k: string): Record<string, string> => {
    const x = s(v, k);
    return x === undefined ? {} : { [k]: x };
  };
  const kept = OUTPUT_KEPT.find((k) => k === v['outputKept']);
  return {
    id, state, name: s(v, 'name') ?? '', tenant: s(v, 'tenant') ?? '', stage: n(v, 'stage'), stages, counts: asCounts(v['counts']),
    priority: n(v, 'priority'), labels, createdAt: s(v, 'createdAt') ?? '', updatedAt: s(v, 'updatedAt') ?? '', outputDir: s(v, 'outputDir') ?? '',
    // A server before `output` was answered: the output directory is all it says.
    output: s(v, 'output') ?? s(v, 'outputDir') ?? '',
    // Absent from a server before it (the CLI then tells host-kept outputs by their paths).
    ...(kept === undefined ? {} : { outputKept: kept }),
    ...opt('finishedAt'), ...opt('message'),
  };
}

/** Decode one event's data. */
export function asEventView(v: unknown): JobEventView {
  if (!isObject(v)) throw notA('a job event');
  const kind = v['kind'] === 'task' ? 'task' : 'job';
  const opt = (k: string): Record<string, string> => {
    const x = s(v, k);
    return x === undefined ? {} : { [k]: x };
  };
  return {
    kind, jobId: s(v, 'jobId') ?? '', at: s(v, 'at') ?? '', state: s(v, 'state') ?? '',
    ...opt('taskId'), ...opt('host'), ...opt('locality'), ...opt('message'),
    ...(v['counts'] === undefined ? {} : { counts: asCounts(v['counts']) }),
    ...(v['job'] === undefined ? {} : { job: asJobView(v['job']) }),
  };
}

// ---------------------------------------------------------------------------
// Server-sent events

/** One dispatched event. */
export interface SseMessage {
  readonly event: string;
  readonly data: string;
}

/** Parse a text/event-stream body into events (comments and unknown fields are skipped). */
export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buf = '';
  let event = '';
  let data: string[] = [];
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      // A CR at the very end may be the first half of a CRLF split across chunks: wait for the next one.
      if (nl === buf.length - 1 && buf.endsWith('\r')) break;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (data.length > 0) yield { event: event || 'message', data: data.join('\n') };
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
  }
}

// ---------------------------------------------------------------------------
// The progress model

/** A job's progress as the watcher knows it. */
export class JobProgress {
  id: string;
  name = '';
  state = 'PENDING';
  stage = 0;
  stages: readonly StageView[] = [];
  message: string | undefined;
  createdAt: number | undefined;
  finishedAt: number | undefined;
  total = 0;
  pending = 0;
  running = 0;
  succeeded = 0;
  failed = 0;
  nodeLocal = 0;
  rackLocal = 0;
  anyLocal = 0;
  /** Running tasks and their locality: only these, so memory follows the cluster's slots, not the job's size. */
  private readonly runningTasks = new Map<string, string>();

  constructor(job: JobView | string) {
    if (typeof job === 'string') this.id = job;
    else {
      this.id = job.id;
      this.setJob(job);
    }
  }

  /** Take a whole job view as the truth. */
  setJob(job: JobView): void {
    this.id = job.id;
    this.name = job.name;
    this.state = job.state;
    this.stage = job.stage;
    this.stages = job.stages;
    this.message = job.message;
    const created = Date.parse(job.createdAt);
    if (Number.isFinite(created)) this.createdAt = created;
    const finished = job.finishedAt === undefined ? NaN : Date.parse(job.finishedAt);
    if (Number.isFinite(finished)) this.finishedAt = finished;
    this.setCounts(job.counts);
    // The counters now include every task that is running; which ones is not known any more.
    this.runningTasks.clear();
  }

  private setCounts(c: JobCountsView): void {
    this.total = c.total;
    this.pending = c.pending;
    this.running = c.running;
    this.succeeded = c.succeeded;
    this.failed = c.failed;
    this.nodeLocal = c.locality.nodeLocal;
    this.rackLocal = c.locality.rackLocal;
    this.anyLocal = c.locality.any;
  }

  /** Apply one event. */
  apply(e: JobEventView): void {
    if (e.kind === 'job') {
      if (e.job) this.setJob(e.job);
      this.state = e.state;
      if (e.counts) this.setCounts(e.counts);
      if (e.message !== undefined) {
        this.message = e.message;
        // The service announces a new stage as `stage <name>: <n> tasks`.
        const m = /^stage (\S+): \d+ tasks$/.exec(e.message);
        const idx = m ? this.stages.findIndex((st) => st.name === m[1]) : -1;
        if (idx >= 0) this.stage = idx;
      }
      if (isTerminalState(e.state)) {
        const at = Date.parse(e.at);
        if (Number.isFinite(at)) this.finishedAt = at;
      }
      return;
    }
    const id = e.taskId ?? '';
    const dec = (k: 'pending' | 'running'): void => {
      this[k] = Math.max(0, this[k] - 1);
    };
    const wasRunning = this.runningTasks.get(id);
    switch (e.state) {
      case 'RUNNING':
        if (wasRunning !== undefined) return;
        this.runningTasks.set(id, e.locality ?? 'any');
        dec('pending');
        this.running++;
        return;
      case 'SUCCEEDED': {
        this.runningTasks.delete(id);
        dec('running');
        this.succeeded++;
        // The success's own locality is the server's record; the RUNNING one is a fallback for older servers.
        const loc = e.locality ?? wasRunning;
        if (loc === 'node-local') this.nodeLocal++;
        else if (loc === 'rack-local') this.rackLocal++;
        else this.anyLocal++;
        return;
      }
      case 'FAILED':
        this.runningTasks.delete(id);
        dec('running');
        this.failed++;
        return;
      case 'PENDING':
        this.runningTasks.delete(id);
        dec('running');
        this.pending++;
        return;
      case 'CANCELLED':
        this.runningTasks.delete(id);
        dec('running');
        return;
      default:
    }
  }

  /** The job's node-local share (core/locality's one definition), undefined before a task succeeded. */
  get nodeLocalShare(): number | undefined {
    return nodeLocalShare({ nodeLocal: this.nodeLocal, rackLocal: this.rackLocal, any: this.anyLocal });
  }

  /** Whether the job is over. */
  get done(): boolean {
    return isTerminalState(this.state);
  }

  /** Milliseconds since submission (until the end, once finished). */
  elapsedMs(now: number): number {
    if (this.createdAt === undefined) return 0;
    return Math.max(0, (this.finishedAt ?? now) - this.createdAt);
  }
}

// ---------------------------------------------------------------------------
// Rendering

/** `1:05`, `1:02:03`. */
export function formatElapsed(ms: number): string {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

const pct = (part: number, whole: number): string => (whole <= 0 ? '0%' : formatShare(part / whole));

/** The locality mix of finished tasks: `node-local 7 (88%) · rack-local 1 (13%) · any 0 (0%)`. */
export function localityMix(p: Pick<JobProgress, 'nodeLocal' | 'rackLocal' | 'anyLocal'>): string {
  const placed = p.nodeLocal + p.rackLocal + p.anyLocal;
  return `node-local ${p.nodeLocal} (${pct(p.nodeLocal, placed)}) · rack-local ${p.rackLocal} (${pct(p.rackLocal, placed)}) · any ${p.anyLocal} (${pct(p.anyLocal, placed)})`;
}

function stageLabel(p: JobProgress): string {
  if (p.stages.length <= 1) return '';
  const st = p.stages[p.stage];
  return `  stage ${p.stage + 1}/${p.stages.length}${st ? ` ${st.name}` : ''}`;
}

/** The live display: a few lines, redrawn in place. */
export function renderFrame(p: JobProgress, now: number, width = 80): string[] {
  const finished = p.succeeded + p.failed;
  const tally = `${pct(finished, p.total).padStart(4)}  ${p.succeeded}/${p.total} done · ${p.running} running · ${p.pending} pending · ${p.failed} failed`;
  // The bar takes what the counts leave of the line, within 10..40 cells.
  const barWidth = Math.max(10, Math.min(40, width - tally.length - 4));
  const filled = p.total > 0 ? Math.round((barWidth * p.succeeded) / p.total) : 0;
  const failedCells = p.total > 0 ? Math.min(barWidth - filled, Math.round((barWidth * p.failed) / p.total)) : 0;
  const bar = '#'.repeat(filled) + 'x'.repeat(failedCells) + '-'.repeat(Math.max(0, barWidth - filled - failedCells));
  const lines = [
    `job ${p.name || p.id}  ${p.state}${stageLabel(p)}  elapsed ${formatElapsed(p.elapsedMs(now))}`,
    `[${bar}] ${tally}`,
    `locality: ${localityMix(p)}`,
  ];
  if (p.message && (p.done || p.state === 'FAILED')) lines.push(p.message);
  return lines.map((l) => (l.length > width ? l.slice(0, Math.max(1, width - 1)) + '…' : l));
}

/** One plain line for an event (for pipes and logs). */
export function renderEventLine(e: JobEventView, p: JobProgress): string {
  const time = e.at.length >= 19 ? e.at.slice(11, 19) : e.at;
  const counts = `[${p.succeeded}/${p.total} done, ${p.running} running, ${p.pending} pending, ${p.failed} failed]`;
  if (e.kind === 'job') {
    return `${time} job ${e.jobId} ${e.state}${e.message ? `: ${e.message}` : ''} ${counts}`;
  }
  const where = e.host ? ` on ${e.host}${e.locality ? ` (${e.locality})` : ''}` : '';
  // PENDING with a message is an attempt that ended and a task that goes back to be tried again:
  // "PENDING on agent-2 — FAILED: exited with status 3" read as the task failing.
  if (e.state === 'PENDING' && e.message) return `${time} task ${e.taskId ?? '?'} PENDING (to be retried): its attempt${where} ended ${e.message} ${counts}`;
  const why = e.message && e.state !== 'RUNNING' ? ` — ${e.message}` : '';
  return `${time} task ${e.taskId ?? '?'} ${e.state}${where}${why} ${counts}`;
}

/** The closing summary line. */
export function renderSummary(p: JobProgress, now: number): string {
  return `job ${p.id} ${p.state} in ${formatElapsed(p.elapsedMs(now))}: ${p.succeeded}/${p.total} tasks succeeded, ${p.failed} failed; `
    + `node-local ${formatShare(p.nodeLocalShare)} (${localityMix(p)})${p.message && p.state !== 'SUCCEEDED' ? ` — ${p.message}` : ''}`;
}

/** Draws frames on a terminal, replacing the previous frame each time. */
export class LiveDisplay {
  private lines = 0;

  constructor(private readonly out: { write(s: string): unknown; columns?: number }) {}

  /** Replace what was drawn last with `frame`. */
  draw(frame: readonly string[]): void {
    // Cursor up to the first line of the last frame, then clear to the end of the screen.
    const up = this.lines > 0 ? `\x1b[${this.lines}F\x1b[0J` : '';
    this.out.write(up + frame.join('\n') + '\n');
    this.lines = frame.length;
  }

  /** Forget the last frame (it stays on screen). */
  release(): void {
    this.lines = 0;
  }
}
