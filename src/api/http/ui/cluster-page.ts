/**
 * Cluster: agents grouped by rack with what each offers, what Locus's
 * executors use there and what volumes and reservations hold, the executors
 * on each agent, and the tenants' DRF shares against their weights and
 * quotas. Re-read every REFRESH_MS while shown.
 */
import { arr, decodeAgents, get, mib, num, obj, optStr, pct, res, str, type Res } from './api.js';
import { h, type El } from './dom.js';
import { bar, badge, errorBox, type PageCtx } from './widgets.js';

const REFRESH_MS = 5000;

const fmt = (k: keyof Res, v: number): string => (k === 'cpus' ? v.toFixed(v % 1 === 0 ? 0 : 2) : mib(v));

/** One resource line: used (blue) and reserved (grey) against what is offered. */
function resLine(k: keyof Res, offered: Res, used: Res, reserved: Res): El[] {
  const o = offered[k];
  return [
    h('span', { class: 'muted' }, k),
    o > 0 ? bar([{ frac: used[k] / o, color: 'var(--run)', title: 'used by executors' }, { frac: reserved[k] / o, color: '#9aa3b1', title: 'reserved' }]) : h('span', { class: 'muted' }, 'no offer seen'),
    h('span', { class: 'small' }, `${fmt(k, used[k])} + ${fmt(k, reserved[k])} of ${fmt(k, o)}`),
  ];
}

/** The Cluster page. */
export async function clusterPage(ctx: PageCtx): Promise<void> {
  const body = h('div', {});
  ctx.root.replaceChildren(h('h1', {}, 'Cluster'), body);

  const load = async (): Promise<void> => {
    let cv: unknown;
    let rv: unknown;
    try {
      [cv, rv] = await Promise.all([get('/v1/cluster', ctx.signal), get('/v1/cluster/resources', ctx.signal)]);
    } catch (err) {
      if (!ctx.signal.aborted) body.replaceChildren(errorBox(err, 'Reading the cluster failed'));
      return;
    }
    const agents = decodeAgents(cv);
    const resources = new Map(arr(rv, 'agents').map((a) => [str(a, 'id'), a] as const));
    const executors = arr(cv, 'executors');
    const racks = [...new Set(agents.map((a) => a.rack))].sort();
    const loc = obj(obj(cv)['locality']);
    const placed = num(loc, 'nodeLocal') + num(loc, 'rackLocal') + num(loc, 'any');
    const total = res(rv, 'total');

    const summary = h('div', { class: 'card', id: 'cluster-summary' }, h('dl', { class: 'kv' },
      h('dt', {}, 'Master'), h('dd', {}, obj(cv)['subscribed'] === true ? badge('SUBSCRIBED') : badge('DISCONNECTED'), ' ', h('span', { class: 'mono small muted' }, optStr(cv, 'frameworkId') ?? '')),
      h('dt', {}, 'Agents'), h('dd', {}, `${agents.length} on ${racks.length} rack${racks.length === 1 ? '' : 's'} · ${total.cpus} cpus, ${mib(total.mem)} mem, ${mib(total.disk)} disk offered`),
      h('dt', {}, 'Tasks'), h('dd', {}, `${num(cv, 'runningTasks')} running, ${num(cv, 'pendingTasks')} pending`),
      h('dt', {}, 'Locality'), h('dd', {}, placed === 0 ? 'no task finished yet' : `node ${pct(num(loc, 'nodeLocal') / placed)} · rack ${pct(num(loc, 'rackLocal') / placed)} · any ${pct(num(loc, 'any') / placed)} of ${placed} tasks`)));

    const rackEls = racks.map((rack) => h('div', { class: 'rackgroup', 'data-rack': rack },
      h('h2', {}, rack === '-' ? 'No rack' : `Rack ${rack}`),
      h('div', { class: 'agents' }, ...agents.filter((a) => a.rack === rack).map((a) => {
        const r = resources.get(a.id);
        const offered = res(r, 'offered');
        const used = res(r, 'used');
        const reserved = res(r, 'reserved');
        const mine = executors.filter((e) => str(e, 'agentId') === a.id);
        return h('div', { class: 'card agent', 'data-agent': a.hostname },
          h('div', {}, h('b', {}, a.hostname), h('div', { class: 'muted small mono' }, a.id)),
          h('div', { class: 'res', style: 'margin:.5em 0' }, ...resLine('cpus', offered, used, reserved), ...resLine('mem', offered, used, reserved), ...resLine('disk', offered, used, reserved)),
          mine.length === 0 ? h('div', { class: 'muted small' }, 'no executor') : h('table', { class: 'small' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Executor'), h('th', {}, 'State'), h('th', { class: 'num' }, 'Running'), h('th', {}, 'Tenant'))),
            h('tbody', {}, ...mine.map((e) => h('tr', {}, h('td', { class: 'mono' }, str(e, 'id').slice(0, 24)), h('td', {}, badge(str(e, 'state'))),
              h('td', { class: 'num' }, `${num(e, 'running')}/${num(e, 'slots')}`), h('td', {}, optStr(e, 'tenant') ?? '-'))))));
      }))));

    const tenants = arr(rv, 'tenants');
    const maxShare = Math.max(0.01, ...tenants.map((t) => Math.max(num(t, 'dominantShare'), num(t, 'fairShare'))));
    const tenantTable = h('table', { id: 'tenants' },
      h('thead', {}, h('tr', {}, ...['Tenant', 'Role', 'Weight', 'Quota', 'Using', 'Reserved', 'Tasks', 'DRF share vs fair share'].map((c) => h('th', {}, c)))),
      h('tbody', {}, ...tenants.map((t) => {
        const q = obj(obj(t)['quota']);
        const quota = Object.keys(q).length === 0 ? 'none' : ['cpus', 'mem', 'disk'].filter((k) => typeof q[k] === 'number').map((k) => `${k} ${fmt(k as keyof Res, num(q, k))}`).join(', ');
        const u = res(t, 'used');
        const rs = res(t, 'reserved');
        return h('tr', { 'data-tenant': str(t, 'name') },
          h('td', {}, h('b', {}, str(t, 'name'))), h('td', { class: 'mono small' }, str(t, 'role')), h('td', { class: 'num' }, String(num(t, 'weight'))),
          h('td', { class: 'small' }, quota),
          h('td', { class: 'small' }, `${fmt('cpus', u.cpus)} cpus, ${mib(u.mem)}`),
          h('td', { class: 'small' }, `${fmt('cpus', rs.cpus)} cpus, ${mib(rs.mem)}, ${mib(rs.disk)} disk`),
          h('td', { class: 'num' }, `${num(t, 'runningTasks')} running, ${num(t, 'pendingTasks')} pending`),
          h('td', {},
            bar([{ frac: num(t, 'dominantShare') / maxShare, color: 'var(--run)' }], 'dominant share'),
            h('div', { style: 'margin-top:2px' }, bar([{ frac: num(t, 'fairShare') / maxShare, color: '#9aa3b1' }], 'fair share by weight')),
            h('div', { class: 'small muted' }, `${pct(num(t, 'dominantShare'))} dominant (weighted ${pct(num(t, 'weightedShare'))}) · fair ${pct(num(t, 'fairShare'))}`)));
      })));

    body.replaceChildren(summary, ...rackEls, h('h2', {}, 'Tenants (weighted DRF)'),
      h('p', { class: 'muted small' }, 'Dominant share: the largest of cpus, mem and disk a tenant’s running tasks hold, over what the agents offer. Fair share: the tenant’s weight over all weights.'),
      tenantTable);
  };
  await load();
  ctx.every(REFRESH_MS, () => void load());
}
