/**
 * The CLI's progress model and renderers: SSE parsing across arbitrary chunk
 * boundaries, counters kept from job events plus task increments, and the
 * live frame and plain lines built from them.
 */
import { describe, expect, it } from 'vitest';
import type { JobEventView, JobView } from '../../src/api/http/jobs-views.js';
import {
  JobProgress, LiveDisplay, asEventView, asJobView, formatElapsed, readSse, renderEventLine, renderFrame, renderSummary,
} from '../../src/cli/progress.js';

const counts = (c: Partial<{ total: number; pending: number; running: number; succeeded: number; failed: number; node: number; rack: number; any: number }>) => ({
  total: c.total ?? 0, pending: c.pending ?? 0, running: c.running ?? 0, succeeded: c.succeeded ?? 0, failed: c.failed ?? 0,
  locality: { nodeLocal: c.node ?? 0, rackLocal: c.rack ?? 0, any: c.any ?? 0, nodeLocalShare: null },
});

const JOB: JobView = {
  id: 'job-1', name: 'wc', tenant: 'alpha', state: 'RUNNING', stage: 0,
  stages: [{ index: 0, name: 'map', tasks: 4, outputs: 'committed' }, { index: 1, name: 'reduce', tasks: null, outputs: 'committed' }],
  counts: counts({ total: 4, pending: 4 }), priority: 0, labels: {},
  createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', outputDir: '/out/job-1', output: '/out/job-1',
};
const T0 = Date.parse(JOB.createdAt);
const task = (taskId: string, state: string, extra: Partial<JobEventView> = {}): JobEventView => ({ kind: 'task', jobId: 'job-1', at: '2026-01-01T00:00:05.000Z', state, taskId, ...extra });

async function* chunks(parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield typeof p === 'string' ? new TextEncoder().encode(p) : p;
}

async function collect(parts: (string | Uint8Array)[]): Promise<{ event: string; data: string }[]> {
  const out: { event: string; data: string }[] = [];
  for await (const m of readSse(chunks(parts))) out.push(m);
  return out;
}

describe('readSse', () => {
  it('parses events split anywhere, skipping comments, with CRLF and multi-line data', async () => {
    const text = 'event: job\ndata: {"a":1}\n\n: heartbeat\n\nevent: task\r\ndata: {"b":\r\ndata: 2}\r\n\r\ndata: plain\n\n';
    const expected = [{ event: 'job', data: '{"a":1}' }, { event: 'task', data: '{"b":\n2}' }, { event: 'message', data: 'plain' }];
    expect(await collect([text])).toEqual(expected);
    // Every split point gives the same events.
    for (let i = 1; i < text.length; i++) expect(await collect([text.slice(0, i), text.slice(i)])).toEqual(expected);
  });

  it('keeps a multi-byte character split across chunks', async () => {
    const bytes = new TextEncoder().encode('data: ünï\n\n');
    expect(await collect([bytes.slice(0, 7), bytes.slice(7)])).toEqual([{ event: 'message', data: 'ünï' }]);
  });

  it('drops an unfinished last event', async () => {
    expect(await collect(['event: job\ndata: {}\n\nevent: job\ndata: {"half"'])).toEqual([{ event: 'job', data: '{}' }]);
  });
});

describe('JobProgress', () => {
  it('counts task transitions between job events, and takes job events as the truth', () => {
    const p = new JobProgress(JOB);
    p.apply(task('job-1.0.0', 'RUNNING', { host: 'a', locality: 'node-local' }));
    p.apply(task('job-1.0.0', 'RUNNING', { host: 'a', locality: 'node-local' })); // replayed: ignored
    p.apply(task('job-1.0.1', 'RUNNING', { host: 'b', locality: 'rack-local' }));
    p.apply(task('job-1.0.2', 'RUNNING', { host: 'c', locality: 'any' }));
    expect(p).toMatchObject({ pending: 1, running: 3, succeeded: 0 });
    p.apply(task('job-1.0.0', 'SUCCEEDED', { host: 'a' }));
    p.apply(task('job-1.0.1', 'SUCCEEDED'));
    p.apply(task('job-1.0.2', 'PENDING', { message: 'LOST: agent gone' }));
    expect(p).toMatchObject({ pending: 2, running: 0, succeeded: 2, failed: 0, nodeLocal: 1, rackLocal: 1, anyLocal: 0 });
    p.apply(task('job-1.0.2', 'RUNNING', { locality: 'node-local' }));
    p.apply(task('job-1.0.2', 'FAILED', { message: 'FAILED: exit 1' }));
    expect(p).toMatchObject({ pending: 1, running: 0, failed: 1 });
    p.apply({ kind: 'job', jobId: 'job-1', at: '2026-01-01T00:01:05.000Z', state: 'FAILED', message: '1 task(s) failed', counts: counts({ total: 4, pending: 1, succeeded: 2, failed: 1, node: 1, rack: 1 }) });
    expect(p.done).toBe(true);
    expect(p.elapsedMs(T0 + 999_999)).toBe(65_000);
  });

  it('never counts below zero when a stream starts in the middle', () => {
    const p = new JobProgress('job-1');
    p.apply(task('job-1.0.0', 'SUCCEEDED', { locality: 'node-local' }));
    expect(p).toMatchObject({ running: 0, succeeded: 1, nodeLocal: 1 });
  });

  it('follows stage changes and takes the first event’s job as the base', () => {
    const p = new JobProgress('job-1');
    p.apply(asEventView({ kind: 'job', jobId: 'job-1', at: JOB.updatedAt, state: 'RUNNING', counts: JOB.counts, job: JOB, extra: 'ignored' }));
    expect(p).toMatchObject({ name: 'wc', total: 4, pending: 4, stage: 0 });
    p.apply({ kind: 'job', jobId: 'job-1', at: JOB.updatedAt, state: 'RUNNING', message: 'stage reduce: 1 tasks', counts: counts({ total: 5, pending: 1, succeeded: 4 }) });
    expect(p).toMatchObject({ stage: 1, total: 5, succeeded: 4 });
  });

  it('decodes views defensively', () => {
    expect(() => asJobView({ name: 'x' })).toThrow(/not a job/);
    expect(asJobView({ id: 'j', state: 'RUNNING', counts: { total: 'many' } }).counts.total).toBe(0);
    expect(asEventView({ kind: 'weird', state: 'X' }).kind).toBe('job');
    // A stage of outputs: none says so; anything else (an older server says nothing) commits.
    const staged = asJobView({ id: 'j', state: 'RUNNING', stages: [{ name: 'load', outputs: 'none' }, { name: 'sum' }, { name: 'x', outputs: 'maybe' }] });
    expect(staged.stages.map((x) => x.outputs)).toEqual(['none', 'committed', 'committed']);
  });
});

describe('rendering', () => {
  it('formats elapsed time', () => {
    expect(formatElapsed(0)).toBe('0:00');
    expect(formatElapsed(65_400)).toBe('1:05');
    expect(formatElapsed(3_723_000)).toBe('1:02:03');
  });

  it('draws a frame with task states, locality mix and elapsed time', () => {
    const p = new JobProgress(JOB);
    p.apply(task('job-1.0.0', 'RUNNING', { locality: 'node-local' }));
    p.apply(task('job-1.0.0', 'SUCCEEDED'));
    p.apply(task('job-1.0.1', 'RUNNING', { locality: 'rack-local' }));
    const frame = renderFrame(p, T0 + 12_000, 120);
    expect(frame[0]).toBe('job wc  RUNNING  stage 1/2 map  elapsed 0:12');
    expect(frame[1]).toMatch(/^\[#+-+\]\s+25%  1\/4 done · 1 running · 2 pending · 0 failed$/);
    expect(frame[2]).toBe('locality: node-local 1 (100%) · rack-local 0 (0%) · any 0 (0%)');
    for (const line of renderFrame(p, T0, 30)) expect(line.length).toBeLessThanOrEqual(30);
  });

  it('writes one plain line per event, and a summary', () => {
    const p = new JobProgress(JOB);
    const e = task('job-1.0.3', 'RUNNING', { host: 'agent-b', locality: 'node-local' });
    p.apply(e);
    expect(renderEventLine(e, p)).toBe('00:00:05 task job-1.0.3 RUNNING on agent-b (node-local) [0/4 done, 1 running, 3 pending, 0 failed]');
    // An attempt that ended with the task going back to be tried again reads as a retry, not as the task's failure.
    const retry = task('job-1.0.3', 'PENDING', { host: 'agent-b', message: 'FAILED: exited with status 3' });
    p.apply(retry);
    expect(renderEventLine(retry, p)).toBe('00:00:05 task job-1.0.3 PENDING (to be retried): its attempt on agent-b ended FAILED: exited with status 3 [0/4 done, 0 running, 4 pending, 0 failed]');
    p.apply(e);
    const end: JobEventView = { kind: 'job', jobId: 'job-1', at: '2026-01-01T00:00:09.000Z', state: 'SUCCEEDED', counts: counts({ total: 4, succeeded: 4, node: 3, any: 1 }) };
    p.apply(end);
    expect(renderEventLine(end, p)).toBe('00:00:09 job job-1 SUCCEEDED [4/4 done, 0 running, 0 pending, 0 failed]');
    expect(renderSummary(p, T0 + 60_000)).toBe('job job-1 SUCCEEDED in 0:09: 4/4 tasks succeeded, 0 failed; node-local 75% (node-local 3 (75%) · rack-local 0 (0%) · any 1 (25%))');
  });

  it('redraws in place: the next frame first moves up over the previous one', () => {
    let out = '';
    const d = new LiveDisplay({ write: (s: string) => (out += s) });
    d.draw(['a', 'b', 'c']);
    expect(out).toBe('a\nb\nc\n');
    out = '';
    d.draw(['d', 'e']);
    expect(out).toBe('\x1b[3F\x1b[0Jd\ne\n');
    out = '';
    d.draw(['f']);
    expect(out.startsWith('\x1b[2F')).toBe(true);
  });
});
