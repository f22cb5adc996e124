/**
 * The locality map of one job: the cluster's hosts grouped by rack against
 * the stage's input splits. For each split, a dot marks every host holding
 * a replica and a ring marks where its task ran (green when on a replica,
 * red elsewhere), so how much ran next to its data shows at a glance.
 */
import { bytes, decodeAgents, decodeJob, decodeSplits, get, type Agent, type Split } from './api.js';
import { browser, h, select, type El } from './dom.js';
import { errorBox, type PageCtx } from './widgets.js';

/** Rows drawn at most; the summary counts every split the API answered. */
const MAX_ROWS = 300;

interface HostCol {
  readonly hostname: string;
  readonly rack: string;
}

/** Hosts by rack: the cluster's agents, plus storage hosts that are no agent (rack unknown). */
function columns(agents: readonly Agent[], splits: readonly Split[]): HostCol[] {
  const cols = new Map<string, HostCol>();
  for (const a of agents) cols.set(a.hostname, { hostname: a.hostname, rack: a.rack });
  for (const sp of splits) for (const host of [...sp.hosts, ...(sp.ranOn ? [sp.ranOn] : [])]) if (!cols.has(host)) cols.set(host, { hostname: host, rack: '-' });
  return [...cols.values()].sort((a, b) => (a.rack === b.rack ? (a.hostname < b.hostname ? -1 : 1) : a.rack < b.rack ? -1 : 1));
}

/** The locality map page. */
export async function localityPage(ctx: PageCtx): Promise<void> {
  const id = ctx.params[0] ?? '';
  const enc = encodeURIComponent(id);
  const [jv, cv] = await Promise.all([get(`/v1/jobs/${enc}`, ctx.signal), get('/v1/cluster', ctx.signal)]);
  const job = decodeJob(jv);
  const agents = decodeAgents(cv);
  const resolved = job.stages.filter((st) => st.tasks !== null && st.tasks > 0);
  const wanted = Number(ctx.query.get('stage') ?? resolved[0]?.index ?? 0);
  const stageSel = select({ id: 'map-stage' }, job.stages.map((st) => [String(st.index), `${st.name}${st.tasks === null ? ' (resolving)' : ''}`] as const), String(wanted));
  stageSel.addEventListener('change', () => {
    browser.location.hash = `#/job/${job.id}/map?stage=${stageSel.value}`;
  });
  const body = h('div', {});
  ctx.root.replaceChildren(
    h('div', { class: 'muted small' }, h('a', { href: '#/jobs' }, 'Jobs'), ' / ', h('a', { href: `#/job/${job.id}` }, job.id), ' / locality'),
    h('h1', {}, `Locality map — ${job.name}`),
    h('div', { class: 'filters' }, h('label', {}, 'Stage', stageSel)),
    body);

  const draw = async (): Promise<void> => {
    let splits;
    try {
      splits = decodeSplits(await get(`/v1/jobs/${enc}/splits?stage=${wanted}`, ctx.signal));
    } catch (err) {
      body.replaceChildren(errorBox(err, 'Reading the splits failed'));
      return;
    }
    const cols = columns(agents, splits.splits);
    const withData = splits.splits.filter((sp) => sp.hosts.length > 0);
    const ran = withData.filter((sp) => sp.ranOn !== undefined);
    const nextTo = ran.filter((sp) => sp.ranOn !== undefined && sp.hosts.includes(sp.ranOn)).length;

    // Per host: replicas held, tasks run, and of those how many read their own replica.
    const held = new Map<string, number>();
    const tasksOn = new Map<string, { all: number; local: number }>();
    for (const sp of withData) {
      for (const host of sp.hosts) held.set(host, (held.get(host) ?? 0) + 1);
      if (sp.ranOn !== undefined) {
        const t = tasksOn.get(sp.ranOn) ?? { all: 0, local: 0 };
        tasksOn.set(sp.ranOn, { all: t.all + 1, local: t.local + (sp.hosts.includes(sp.ranOn) ? 1 : 0) });
      }
    }
    const racks = [...new Set(cols.map((c) => c.rack))];
    const maxHeld = Math.max(1, ...held.values());
    const rackCards = h('div', { class: 'row', id: 'racks' }, ...racks.map((rack) => h('div', { class: 'card rackgroup', 'data-rack': rack },
      h('h2', { style: 'margin-top:0' }, rack === '-' ? 'no rack' : `rack ${rack}`),
      ...cols.filter((c) => c.rack === rack).map((c) => {
        const n = held.get(c.hostname) ?? 0;
        const t = tasksOn.get(c.hostname) ?? { all: 0, local: 0 };
        return h('div', { class: 'host', 'data-host': c.hostname, style: 'margin:.4em 0' },
          h('div', { class: 'small' }, h('b', {}, c.hostname), h('span', { class: 'muted' }, ` · ${n} replica${n === 1 ? '' : 's'} · ran ${t.all} task${t.all === 1 ? '' : 's'} (${t.local} next to their data)`)),
          h('div', { class: 'bar' },
            h('span', { style: `left:0;width:${((n / maxHeld) * 100).toFixed(1)}%;background:#9aa3b1`, title: 'replicas held' })),
          h('div', { class: 'bar', style: 'margin-top:2px' },
            h('span', { style: `left:0;width:${((t.local / maxHeld) * 100).toFixed(1)}%;background:var(--node)`, title: 'tasks run next to their data' }),
            h('span', { style: `left:${((t.local / maxHeld) * 100).toFixed(1)}%;width:${(((t.all - t.local) / maxHeld) * 100).toFixed(1)}%;background:var(--any)`, title: 'tasks run away from their data' })));
      }))));

    const shown = splits.splits.slice(0, MAX_ROWS);
    const headRack = h('tr', {}, h('th', {}, ''), ...racks.map((rack) => h('th', { class: 'rack rackstart', colspan: cols.filter((c) => c.rack === rack).length }, rack === '-' ? 'no rack' : rack)));
    const headHost = h('tr', {}, h('th', {}, 'Split (task)'), ...cols.map((c, i) => h('th', { class: `host ${i === 0 || cols[i - 1]?.rack !== c.rack ? 'rackstart' : ''}` }, c.hostname)));
    const rows = shown.map((sp) => h('tr', { 'data-task': sp.task },
      h('td', { class: 'small' }, h('span', { class: 'mono' }, sp.uri.replace(/^.*\//, '') || sp.uri), h('span', { class: 'muted' }, ` ${bytes(sp.length)} · ${sp.task.replace(/^.*\.(\d+)\.(\d+)$/, 'task $1.$2')}`)),
      ...cols.map((c, i) => {
        const replica = sp.hosts.includes(c.hostname);
        const here = sp.ranOn === c.hostname;
        const cls = `cell ${i === 0 || cols[i - 1]?.rack !== c.rack ? 'rackstart' : ''}`;
        let mark: El | string = '';
        if (replica) mark = h('span', { class: `dot${here ? ` ran ${sp.locality ?? ''}` : ''}`, title: here ? `replica; the task ran here (${sp.locality ?? ''})` : 'replica' });
        else if (here) mark = h('span', { class: 'ranelsewhere', title: `the task ran here without a replica (${sp.locality ?? ''})` });
        return h('td', { class: cls }, mark);
      })));
    body.replaceChildren(
      h('div', { class: 'card', id: 'map-summary' },
        withData.length === 0
          ? h('p', {}, `Stage ${splits.stageName} reads no stored blocks (its inputs are earlier stages' outputs or explicit tasks).`)
          : h('p', {}, h('b', {}, `${nextTo} of ${ran.length}`), ` tasks that ran were placed on a host holding their data; `,
            h('b', {}, bytes(splits.bytesLocal)), ' read locally, ', h('b', {}, bytes(splits.bytesNetwork)), ' over the network.',
            ran.length < withData.length ? ` ${withData.length - ran.length} not run yet.` : '')),
      rackCards,
      h('div', { class: 'legend' }, h('span', {}, h('span', { class: 'dot' }), ' replica'), h('span', {}, h('span', { class: 'dot ran' }), ' task ran on a replica'),
        h('span', {}, h('span', { class: 'ranelsewhere' }), ' task ran away from its data')),
      h('div', { style: 'overflow-x:auto' }, h('table', { class: 'map', id: 'locality-map' }, h('thead', {}, headRack, headHost), h('tbody', {}, ...rows))),
      splits.total > shown.length ? h('p', { class: 'muted' }, `Showing ${shown.length} of ${splits.total} splits.`) : '',
    );
  };
  await draw();
}
