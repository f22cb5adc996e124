/** Small pieces every page draws with: state badges, bars, error boxes, the page context. */
import { ApiError, duration, pct, type Counts, type Job } from './api.js';
import { h, type El } from './dom.js';

/** Who is signed in, as /v1/cluster/resources says. */
export interface Viewer {
  readonly kind: 'admin' | 'tenant';
  readonly tenant: string | undefined;
}

/** What a page is given: where to draw, the route's parts, and a signal that fires when the page is left. */
export interface PageCtx {
  readonly root: El;
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  readonly signal: AbortSignal;
  readonly viewer: Viewer;
  /** Run `fn` every `ms` until the page is left (bounded: one timer per call). */
  every(ms: number, fn: () => void): void;
}

/** A state as a coloured badge. */
export function badge(state: string): El {
  return h('span', { class: `badge ${state}` }, state);
}

/** An API error (or any error) as a message box; never a blank page. */
export function errorBox(err: unknown, what?: string): El {
  if (err instanceof ApiError) {
    return h('div', { class: 'error', role: 'alert' },
      what ? `${what}: ` : '', h('code', {}, err.code), ' ', err.message, err.field ? h('span', { class: 'muted' }, ` (field: ${err.field})`) : null);
  }
  return h('div', { class: 'error', role: 'alert' }, what ? `${what}: ` : '', String(err instanceof Error ? err.message : err));
}

/** A horizontal bar of coloured segments (fractions of the whole). */
export function bar(segments: readonly { readonly frac: number; readonly color: string; readonly title?: string }[], title?: string): El {
  const el = h('div', { class: 'bar', title });
  let left = 0;
  for (const seg of segments) {
    const w = Math.max(0, Math.min(1 - left, seg.frac));
    if (w <= 0) continue;
    el.appendChild(h('span', { style: `left:${(left * 100).toFixed(2)}%;width:${(w * 100).toFixed(2)}%;background:${seg.color}`, title: seg.title }));
    left += w;
  }
  return el;
}

/**
 * Per-stage progress from the job's counters. The API counts tasks for the
 * whole job, and stages run one after another, so every stage before the
 * current one is complete and the current one has what is left.
 */
export function stageProgress(job: Job): { name: string; done: number; running: number; failed: number; total: number | null }[] {
  let before = 0;
  return job.stages.map((st) => {
    const total = st.tasks;
    if (st.index < job.stage || (job.state === 'SUCCEEDED' && total !== null)) {
      before += total ?? 0;
      return { name: st.name, done: total ?? 0, running: 0, failed: 0, total };
    }
    if (st.index === job.stage) {
      return { name: st.name, done: Math.max(0, job.counts.succeeded - before), running: job.counts.running, failed: job.counts.failed, total };
    }
    return { name: st.name, done: 0, running: 0, failed: 0, total };
  });
}

/** A progress bar per stage: done (green), running (blue), failed (red). */
export function stageBars(job: Job): El {
  return h('div', { class: 'stagebars' }, ...stageProgress(job).map((p) => {
    const t = p.total ?? 0;
    return h('div', { class: 'stagebar', 'data-stage': p.name },
      h('div', { class: 'lbl' }, h('span', {}, p.name), h('span', {}, p.total === null ? 'resolving' : `${p.done}/${p.total}`)),
      bar(t === 0 ? [] : [
        { frac: p.done / t, color: 'var(--ok)' },
        { frac: p.running / t, color: 'var(--run)' },
        { frac: p.failed / t, color: 'var(--bad)' },
      ], `${p.name}: ${p.done} done, ${p.running} running, ${p.failed} failed of ${p.total ?? '?'}`));
  }));
}

/** Node/rack/any shares of the succeeded tasks, as a bar and a line of text. */
export function localityShares(c: Counts): El {
  const n = c.nodeLocal + c.rackLocal + c.any;
  const f = (x: number): number | null => (n === 0 ? null : x / n);
  return h('div', { class: 'locshares' },
    bar(n === 0 ? [] : [
      { frac: c.nodeLocal / n, color: 'var(--node)' },
      { frac: c.rackLocal / n, color: 'var(--rack)' },
      { frac: c.any / n, color: 'var(--any)' },
    ], 'node-local / rack-local / any'),
    h('div', { class: 'loc' }, n === 0 ? 'no task finished yet' : `node ${pct(f(c.nodeLocal))} · rack ${pct(f(c.rackLocal))} · any ${pct(f(c.any))}`));
}

/** Elapsed time of a job: to its end, or to now while it runs. */
export function elapsed(job: Job): string {
  return duration((job.finishedAt ?? Date.now()) - job.createdAt);
}
