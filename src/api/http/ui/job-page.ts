/**
 * One job: its stages as a small DAG, a task table (state, host, locality,
 * attempts, duration, bytes read locally vs over the network), a histogram
 * of task durations that shows stragglers, `explain` for pending tasks, a log
 * that follows the selected task, and cancel with a confirmation.
 *
 * Live: the job's event stream triggers a re-read (at most one per
 * RELOAD_MS), so a busy job costs a few requests a second, not one per task.
 */
import {
  ApiError, arr, bytes, call, decodeJob, decodeSplits, decodeTask, duration, get, ignoreEnded, optStr, str, streamEvents, streamText, terminal,
  type Job, type Split, type Task,
} from './api.js';
import { browser, h, s, select, type El } from './dom.js';
import { badge, elapsed, errorBox, localityShares, stageBars, stageProgress, type PageCtx } from './widgets.js';

const RELOAD_MS = 1500;
const EXPLAIN_MAX = 5;
const LOG_TAIL_LINES = 200;
/** A log view keeps at most this many characters (the start is dropped). */
const LOG_MAX_CHARS = 200_000;

/** How long an attempt ran (to now while it runs). */
function attemptMs(t: Task): number | undefined {
  const a = t.attempts[t.attempts.length - 1];
  if (!a || a.startedAt === 0) return undefined;
  return (a.finishedAt ?? Date.now()) - a.startedAt;
}

/** Median of a non-empty list. */
function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** A straggler runs well past the median: 1.5 times it, and at least a second more. */
function stragglerThreshold(ms: readonly number[]): number {
  if (ms.length < 3) return Infinity;
  const m = median(ms);
  return Math.max(m * 1.5, m + 1000);
}

/** The stages as boxes joined by arrows: stages run in order, each reading what came before. */
function dag(job: Job): El {
  const w = 150;
  const gap = 46;
  const hgt = 54;
  const progress = stageProgress(job);
  const width = job.stages.length * w + (job.stages.length - 1) * gap + 4;
  const svg = s('svg', { width, height: hgt + 8, viewBox: `0 0 ${width} ${hgt + 8}`, id: 'dag', role: 'img', 'aria-label': 'stages' },
    s('defs', {}, s('marker', { id: 'arrow', markerWidth: 8, markerHeight: 8, refX: 7, refY: 4, orient: 'auto' }, s('path', { d: 'M0,0 L8,4 L0,8 z', fill: '#6b7280' }))));
  job.stages.forEach((st, i) => {
    const p = progress[i];
    const x = 2 + i * (w + gap);
    const done = p !== undefined && p.total !== null && p.total > 0 && p.done >= p.total;
    const fill = done ? '#e3f4e9' : i === job.stage && !terminal(job.state) ? '#e3edfd' : '#f1f3f6';
    const stroke = done ? '#1f8a4c' : i === job.stage && !terminal(job.state) ? '#2c7be5' : '#9aa3b1';
    svg.appendChild(s('g', { 'data-stage': st.name },
      s('rect', { x, y: 4, width: w, height: hgt, rx: 6, fill, stroke, 'stroke-width': 1.5 }),
      s('text', { x: x + w / 2, y: 25, 'text-anchor': 'middle', 'font-size': 13, 'font-weight': 600 }, st.name),
      s('text', { x: x + w / 2, y: 44, 'text-anchor': 'middle', 'font-size': 11, fill: '#5d6675' },
        p?.total === null || p === undefined ? 'resolving' : `${p.done}/${p.total} tasks`)));
    if (i > 0) svg.appendChild(s('line', { x1: x - gap + 2, y1: 4 + hgt / 2, x2: x - 4, y2: 4 + hgt / 2, stroke: '#6b7280', 'stroke-width': 1.5, 'marker-end': 'url(#arrow)' }));
  });
  return svg;
}

/** Task durations in bins; bins past the straggler threshold are orange. */
function histogram(ms: readonly number[], threshold: number): El {
  const W = 440;
  const H = 150;
  const pad = 28;
  if (ms.length === 0) return h('p', { class: 'muted', id: 'histogram' }, 'No task has finished yet.');
  const max = Math.max(...ms);
  const min = Math.min(...ms);
  const bins = Math.max(1, Math.min(12, ms.length));
  const span = Math.max(1, max - min);
  const counts = new Array<number>(bins).fill(0);
  for (const v of ms) {
    const i = Math.min(bins - 1, Math.floor(((v - min) / span) * bins));
    counts[i] = (counts[i] ?? 0) + 1;
  }
  const top = Math.max(...counts);
  const bw = (W - pad * 2) / bins;
  const svg = s('svg', { width: W, height: H + 20, viewBox: `0 0 ${W} ${H + 20}`, id: 'histogram', role: 'img', 'aria-label': 'task durations' });
  counts.forEach((c, i) => {
    const bh = top === 0 ? 0 : ((H - pad) * c) / top;
    const lo = min + (span * i) / bins;
    svg.appendChild(s('rect', {
      x: pad + i * bw + 1, y: H - bh, width: Math.max(1, bw - 2), height: bh, fill: lo >= threshold ? '#e0a020' : '#2c7be5',
    }, s('title', {}, `${c} task(s) ${duration(lo)}–${duration(lo + span / bins)}`)));
    if (c > 0) svg.appendChild(s('text', { x: pad + i * bw + bw / 2, y: H - bh - 3, 'text-anchor': 'middle', 'font-size': 10 }, String(c)));
  });
  svg.appendChild(s('line', { x1: pad, y1: H, x2: W - pad, y2: H, stroke: '#6b7280' }));
  svg.appendChild(s('text', { x: pad, y: H + 14, 'font-size': 10, fill: '#5d6675' }, duration(min)));
  svg.appendChild(s('text', { x: W - pad, y: H + 14, 'font-size': 10, 'text-anchor': 'end', fill: '#5d6675' }, duration(max)));
  svg.appendChild(s('text', { x: W / 2, y: H + 14, 'font-size': 10, 'text-anchor': 'middle', fill: '#5d6675' }, `median ${duration(median(ms))}`));
  return svg;
}

/** The job page. */
export async function jobPage(ctx: PageCtx): Promise<void> {
  const id = ctx.params[0] ?? '';
  const enc = encodeURIComponent(id);
  const head = h('div', {});
  const dagBox = h('div', { class: 'card', style: 'overflow-x:auto' });
  const histBox = h('div', { class: 'card' });
  const explainBox = h('div', { class: 'card' });
  const tableBox = h('div', {});
  const logBox = h('div', { class: 'card', id: 'log-card' });
  const errors = h('div', {});
  ctx.root.replaceChildren(errors, head, dagBox, h('div', { class: 'row' }, histBox, explainBox), tableBox, logBox);

  let job: Job | undefined;
  let tasks: Task[] = [];
  let selected: string | undefined;
  let logController: AbortController | undefined;
  let logStream: 'stdout' | 'stderr' = 'stdout';
  const splitBytes = new Map<string, Split>();

  const drawHead = (j: Job): void => {
    const cancel = h('button', { class: 'danger', type: 'button', id: 'cancel-job', disabled: terminal(j.state) }, 'Cancel job');
    const cancelMsg = h('span', { id: 'cancel-status' });
    cancel.addEventListener('click', () => {
      if (!browser.confirm(`Cancel job ${j.name} (${j.id})? Pending tasks are dropped and running attempts killed.`)) return;
      cancel.setAttribute('disabled', '');
      call('POST', `/v1/jobs/${enc}/cancel`).then((v) => {
        cancelMsg.replaceChildren(h('span', { class: 'notice' }, `Job is ${str(v, 'state')}.`));
        void reload();
      }, (err: unknown) => {
        cancel.removeAttribute('disabled');
        cancelMsg.replaceChildren(errorBox(err, 'Cancel failed'));
      });
    });
    head.replaceChildren(
      h('div', { class: 'muted small' }, h('a', { href: '#/jobs' }, 'Jobs'), ' / ', j.id),
      h('h1', {}, j.name, ' ', badge(j.state)),
      h('div', { class: 'row' },
        h('div', { class: 'card' }, h('dl', { class: 'kv' },
          h('dt', {}, 'Tenant'), h('dd', {}, j.tenant),
          h('dt', {}, 'Elapsed'), h('dd', { id: 'job-elapsed' }, elapsed(j)),
          h('dt', {}, 'Tasks'), h('dd', {}, `${j.counts.succeeded} succeeded, ${j.counts.running} running, ${j.counts.pending} pending, ${j.counts.failed} failed of ${j.counts.total}`),
          j.message ? h('dt', {}, 'Message') : null, j.message ? h('dd', {}, j.message) : null,
        ), h('p', {}, cancel, ' ', cancelMsg)),
        h('div', { class: 'card' }, h('h2', { style: 'margin-top:0' }, 'Progress'), stageBars(j),
          h('h2', {}, 'Locality'), localityShares(j.counts),
          h('p', {}, h('a', { href: `#/job/${j.id}/map`, id: 'map-link' }, 'Locality map →')))));
    dagBox.replaceChildren(h('h2', { style: 'margin-top:0' }, 'Stages'), dag(j));
  };

  const drawTasks = (j: Job): void => {
    const finished = tasks.filter((t) => t.state === 'SUCCEEDED').map(attemptMs).filter((x): x is number => x !== undefined);
    const threshold = stragglerThreshold(finished);
    histBox.replaceChildren(h('h2', { style: 'margin-top:0' }, 'Task durations'), histogram(finished, threshold),
      Number.isFinite(threshold) ? h('p', { class: 'muted small' }, `Orange: slower than ${duration(threshold)} (stragglers).`) : h('p', { class: 'muted small' }, 'Stragglers show once three tasks have finished.'));
    const rows = tasks.map((t) => {
      const a = t.attempts[t.attempts.length - 1];
      const d = attemptMs(t);
      const sp = splitBytes.get(t.id);
      const logBtn = h('button', { type: 'button', class: 'small log-btn', 'data-task': t.id }, 'log');
      logBtn.addEventListener('click', () => selectTask(t.id));
      const straggler = d !== undefined && d >= threshold;
      return h('tr', { 'data-task': t.id, class: `${straggler ? 'straggler' : ''} ${t.id === selected ? 'selected' : ''}` },
        h('td', { class: 'mono small' }, t.id),
        h('td', {}, j.stages[t.stage]?.name ?? String(t.stage)),
        h('td', {}, badge(t.state)),
        h('td', {}, a?.host ?? '-'),
        h('td', {}, a?.locality ?? '-'),
        h('td', { class: 'num' }, String(t.attempts.length)),
        h('td', { class: 'num' }, d === undefined ? '-' : duration(d)),
        h('td', { class: 'num' }, sp && sp.length > 0 ? bytes(sp.bytesLocal) : '-'),
        h('td', { class: 'num' }, sp && sp.length > 0 ? bytes(sp.bytesNetwork) : '-'),
        h('td', {}, logBtn));
    });
    const never = Math.max(0, j.counts.total - tasks.length);
    tableBox.replaceChildren(h('h2', {}, `Tasks (${tasks.length} attempted${never > 0 ? `, ${never} not yet` : ''})`),
      h('table', { class: 'tasks', id: 'tasks' },
        h('thead', {}, h('tr', {}, ...['Task', 'Stage', 'State', 'Host', 'Locality', 'Attempts', 'Duration', 'Read locally', 'Over network', ''].map((c, i) => h('th', { class: i >= 5 && i <= 8 ? 'num' : '' }, c)))),
        h('tbody', {}, ...(rows.length > 0 ? rows : [h('tr', {}, h('td', { colspan: 10, class: 'muted' }, 'No task has started yet.'))]))));
  };

  const drawExplain = async (j: Job): Promise<void> => {
    // Pending tasks: retries waiting (attempted, PENDING) and, of the current stage, those never attempted.
    const ids = tasks.filter((t) => t.state === 'PENDING').map((t) => t.id);
    const size = j.stages[j.stage]?.tasks ?? 0;
    const attempted = new Set(tasks.filter((t) => t.stage === j.stage).map((t) => t.index));
    for (let i = 0; i < size && ids.length < EXPLAIN_MAX; i++) if (!attempted.has(i)) ids.push(`${j.id}.${j.stage}.${i}`);
    if (terminal(j.state) || ids.length === 0) {
      explainBox.replaceChildren(h('h2', { style: 'margin-top:0' }, 'Pending tasks'), h('p', { class: 'muted', id: 'explain' }, 'No task is waiting.'));
      return;
    }
    const answers = await Promise.all(ids.slice(0, EXPLAIN_MAX).map(async (tid) => {
      try {
        const e = await get(`/v1/tasks/${encodeURIComponent(tid)}/explain`, ctx.signal);
        return h('tr', {}, h('td', { class: 'mono small' }, tid), h('td', {}, h('code', {}, str(e, 'code'))), h('td', {}, str(e, 'message'),
          optStr(e, 'until') ? h('span', { class: 'muted' }, ` (until ${new Date(optStr(e, 'until') ?? '').toLocaleTimeString()})`) : null));
      } catch (err) {
        return h('tr', {}, h('td', { class: 'mono small' }, tid), h('td', { colspan: 2 }, errorBox(err)));
      }
    }));
    explainBox.replaceChildren(h('h2', { style: 'margin-top:0' }, 'Why tasks are pending'),
      h('table', { id: 'explain' }, h('tbody', {}, ...answers)));
  };

  const selectTask = (tid: string): void => {
    if (selected === tid && logController && !logController.signal.aborted) return;
    selected = tid;
    logController?.abort();
    const controller = new AbortController();
    logController = controller;
    ctx.signal.addEventListener('abort', () => controller.abort());
    const pre = h('pre', { class: 'log', id: 'log' });
    const state = h('span', { class: 'muted small', id: 'log-state' }, 'following…');
    const which = select({ id: 'log-stream' }, [['stdout', 'stdout'], ['stderr', 'stderr']], logStream);
    which.addEventListener('change', () => {
      logStream = which.value === 'stderr' ? 'stderr' : 'stdout';
      selected = undefined;
      selectTask(tid);
    });
    logBox.replaceChildren(h('h2', { style: 'margin-top:0' }, 'Log of ', h('span', { class: 'mono', id: 'log-task' }, tid), ' ', which, ' ', state), pre);
    let text = '';
    streamText(`/v1/tasks/${encodeURIComponent(tid)}/logs?stream=${logStream}&tail=${LOG_TAIL_LINES}&follow=true`, controller.signal, (chunk) => {
      text = (text + chunk).slice(-LOG_MAX_CHARS);
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
      pre.textContent = text;
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }).then(() => {
      if (controller.signal.aborted) return;
      state.replaceChildren(text === '' ? 'the log is empty' : 'end of log (the task finished)');
      // The task just ended: show its final state now rather than at the next event.
      if (job && !terminal(job.state)) void reload();
    }, (err: unknown) => {
      if (controller.signal.aborted) return;
      state.replaceChildren(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
    });
  };

  const reload = async (): Promise<void> => {
    try {
      const [jv, tv] = await Promise.all([get(`/v1/jobs/${enc}`, ctx.signal), get(`/v1/jobs/${enc}/tasks`, ctx.signal)]);
      const j = decodeJob(jv);
      job = j;
      tasks = arr(tv, 'tasks').map(decodeTask).sort((a, b) => a.stage - b.stage || a.index - b.index);
      // Bytes per task come from the splits of every resolved stage.
      const resolved = j.stages.filter((st) => st.tasks !== null && st.tasks > 0);
      const answers = await Promise.all(resolved.map((st) => get(`/v1/jobs/${enc}/splits?stage=${st.index}`, ctx.signal).then(decodeSplits, () => undefined)));
      splitBytes.clear();
      for (const a of answers) for (const sp of a?.splits ?? []) splitBytes.set(sp.task, sp);
      errors.replaceChildren();
      drawHead(j);
      drawTasks(j);
      await drawExplain(j);
      if (selected === undefined) {
        const pick = tasks.find((t) => t.state === 'RUNNING') ?? tasks.find((t) => t.state === 'SUCCEEDED') ?? tasks[0];
        if (pick) selectTask(pick.id);
        else logBox.replaceChildren(h('h2', { style: 'margin-top:0' }, 'Log'), h('p', { class: 'muted' }, 'No task has started yet.'));
      }
    } catch (err) {
      if (ctx.signal.aborted) return;
      if (err instanceof ApiError && err.status === 401) throw err;
      errors.replaceChildren(errorBox(err, job ? 'Refreshing the job failed' : 'Reading the job failed'));
    }
  };

  await reload();
  if (!job) return;
  let queued = false;
  const reloadSoon = (): void => {
    if (queued) return;
    queued = true;
    setTimeout(() => {
      queued = false;
      if (!ctx.signal.aborted) void reload();
    }, RELOAD_MS);
  };
  if (!terminal(job.state)) {
    streamEvents(`/v1/jobs/${enc}/events`, ctx.signal, () => reloadSoon())
      .catch(ignoreEnded)
      .finally(() => {
        if (!ctx.signal.aborted) reloadSoon();
      });
  }
  ctx.every(1000, () => {
    const el = ctx.root.querySelector('#job-elapsed');
    if (el && job && !terminal(job.state)) el.textContent = elapsed(job);
  });
}
