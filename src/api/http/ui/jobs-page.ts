/**
 * Jobs: every job the token may see, newest first, with its state, tenant,
 * a progress bar per stage, elapsed time and node/rack/any shares.
 *
 * Live without a polling storm: each unfinished job on the page (at most
 * MAX_STREAMS) is followed through its server-sent event stream, which moves
 * its counters as tasks finish; the list itself is re-read only when a job
 * changes state, and every LIST_REFRESH_MS to pick up jobs submitted since.
 */
import { browser, h, input, select, type El } from './dom.js';
import { arr, ignoreEnded, decodeCounts, decodeJob, get, obj, optStr, str, streamEvents, terminal, type Job } from './api.js';
import { badge, elapsed, errorBox, localityShares, stageBars, type PageCtx } from './widgets.js';

const MAX_STREAMS = 8;
const LIST_REFRESH_MS = 15_000;
const STATES = ['', 'PENDING', 'RESOLVING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];

/** The Jobs page. */
export async function jobsPage(ctx: PageCtx): Promise<void> {
  const state = ctx.query.get('state') ?? '';
  const tenant = ctx.query.get('tenant') ?? '';
  const stateSel = select({ id: 'filter-state' }, STATES.map((s) => [s, s === '' ? 'any state' : s] as const), state);
  const tenantIn = input({ id: 'filter-tenant', placeholder: ctx.viewer.kind === 'admin' ? 'all tenants' : (ctx.viewer.tenant ?? ''), value: tenant, disabled: ctx.viewer.kind !== 'admin' });
  const apply = (): void => {
    const q = new URLSearchParams();
    if (stateSel.value !== '') q.set('state', stateSel.value);
    if (tenantIn.value.trim() !== '') q.set('tenant', tenantIn.value.trim());
    const qs = q.toString();
    browser.location.hash = `#/jobs${qs === '' ? '' : `?${qs}`}`;
  };
  stateSel.addEventListener('change', apply);
  tenantIn.addEventListener('change', apply);
  const status = h('div', { class: 'muted small', id: 'jobs-status' });
  const body = h('tbody', {});
  const table = h('table', { id: 'jobs' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'Tenant'), h('th', {}, 'State'), h('th', { style: 'width:34%' }, 'Stages'),
      h('th', { class: 'num' }, 'Tasks'), h('th', { class: 'num' }, 'Elapsed'), h('th', { style: 'width:16%' }, 'Locality'))),
    body);
  const errors = h('div', {});
  ctx.root.replaceChildren(
    h('h1', {}, 'Jobs'),
    h('div', { class: 'filters' }, h('label', {}, 'State', stateSel), h('label', {}, 'Tenant', tenantIn), status),
    errors, table);

  const rows = new Map<string, { job: Job; tr: El }>();
  const streams = new Set<string>();

  const cells = (job: Job): El[] => [
    h('td', {}, h('a', { href: `#/job/${job.id}`, class: 'job-link' }, job.name), h('div', { class: 'muted small mono' }, job.id)),
    h('td', {}, job.tenant),
    h('td', {}, badge(job.state), job.message ? h('div', { class: 'muted small' }, job.message) : null),
    h('td', {}, stageBars(job)),
    h('td', { class: 'num' }, `${job.counts.succeeded}/${job.counts.total}`, job.counts.failed > 0 ? h('div', { class: 'small', style: 'color:var(--bad)' }, `${job.counts.failed} failed`) : null),
    h('td', { class: 'num elapsed' }, elapsed(job)),
    h('td', {}, localityShares(job.counts)),
  ];

  const draw = (list: readonly Job[]): void => {
    rows.clear();
    body.replaceChildren(...list.map((job) => {
      const tr = h('tr', { 'data-job': job.id }, ...cells(job));
      rows.set(job.id, { job, tr });
      return tr;
    }));
    if (list.length === 0) body.replaceChildren(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No jobs match. Submit one with `locus submit` or POST /v1/jobs.')));
  };

  let refreshQueued = false;
  const load = async (): Promise<void> => {
    const q = new URLSearchParams();
    if (state !== '') q.set('state', state);
    if (tenant !== '') q.set('tenant', tenant);
    const qs = q.toString();
    try {
      const v = await get(`/v1/jobs${qs === '' ? '' : `?${qs}`}`, ctx.signal);
      const list = arr(v, 'jobs').map(decodeJob);
      errors.replaceChildren();
      draw(list);
      status.replaceChildren(`${list.length} job${list.length === 1 ? '' : 's'} · live`);
      for (const job of list) if (!terminal(job.state)) follow(job.id);
    } catch (err) {
      if (!ctx.signal.aborted) errors.replaceChildren(errorBox(err, 'Listing jobs failed'));
    }
  };
  const refreshSoon = (): void => {
    if (refreshQueued) return;
    refreshQueued = true;
    setTimeout(() => {
      refreshQueued = false;
      if (!ctx.signal.aborted) void load();
    }, 300);
  };

  /** Follow one job's events; the stream ends by itself when the job does. */
  const follow = (id: string): void => {
    if (streams.has(id) || streams.size >= MAX_STREAMS) return;
    streams.add(id);
    streamEvents(`/v1/jobs/${encodeURIComponent(id)}/events`, ctx.signal, (e) => {
      const row = rows.get(id);
      if (!row) return;
      const d = obj(e.data);
      if (d['counts'] !== undefined) row.job.counts = decodeCounts(d['counts']);
      const st = optStr(d, 'state');
      if (str(d, 'kind') === 'job') {
        if (st !== undefined) row.job.state = st;
        // Job events are few (a new stage, the end): the list answer carries the stage sizes and the finish time.
        refreshSoon();
      }
      row.tr.replaceChildren(...cells(row.job));
    }).catch(ignoreEnded).finally(() => {
      streams.delete(id);
    });
  };

  await load();
  ctx.every(LIST_REFRESH_MS, () => void load());
  ctx.every(1000, () => {
    for (const { job, tr } of rows.values()) {
      if (terminal(job.state)) continue;
      const cell = tr.querySelector('td.elapsed');
      if (cell) cell.textContent = elapsed(job);
    }
  });
}
