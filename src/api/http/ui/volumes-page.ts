/**
 * Volumes: each persistent volume's state, agent, size, users and labels,
 * and the capacity reservations. Reserving and deleting go through the same
 * API routes as the CLI, so the API's validation is the only validation: its
 * error (code, message, field) is shown next to the form and the field it
 * names is marked.
 */
import { arr, call, decodeAgents, get, idempotencyKey, ApiError, mib, num, obj, optStr, res, str, strMap, strs } from './api.js';
import { browser, h, input, select, type El, type InputEl } from './dom.js';
import { badge, errorBox, type PageCtx } from './widgets.js';

const SETTLED = new Set(['READY', 'DELETED', 'UNAVAILABLE', 'FAILED']);
/** Re-read while something is changing; rarely when all is settled. */
const BUSY_MS = 2000;
const IDLE_MS = 15_000;

const labelsText = (l: Record<string, string>): string => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(', ');

/** `a=1, b=2` (or one per line) into a map; a malformed entry is left for the API to refuse. */
function parseLabels(text: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const part of text.split(/[,\n]/).map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return part;
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

/** The Volumes page. */
export async function volumesPage(ctx: PageCtx): Promise<void> {
  const admin = ctx.viewer.kind === 'admin';
  const list = h('div', {});
  const resList = h('div', {});
  const formStatus = h('div', { id: 'reserve-status' });
  const cluster = await get('/v1/cluster', ctx.signal).catch(() => undefined);
  const agents = cluster === undefined ? [] : decodeAgents(cluster);

  const f = {
    name: input({ id: 'vol-name', name: 'name', placeholder: 'cache', required: true }),
    size: input({ id: 'vol-size', name: 'size', placeholder: '1GiB', required: true }),
    containerPath: input({ id: 'vol-path', name: 'containerPath', placeholder: 'data' }),
    mode: select({ id: 'vol-mode', name: 'mode' }, [['RW', 'read-write'], ['RO', 'read-only']], 'RW'),
    agent: select({ id: 'vol-agent', name: 'agent' }, [['', 'any agent'], ...agents.map((a) => [a.hostname, `${a.hostname}${a.rack === '-' ? '' : ` (${a.rack})`}`] as const)], ''),
    near: input({ id: 'vol-near', name: 'near', placeholder: 'local://dataset/ (optional)' }),
    labels: input({ id: 'vol-labels', name: 'labels', placeholder: 'team=data, tier=ssd' }),
    tenant: input({ id: 'vol-tenant', name: 'tenant', placeholder: admin ? 'default' : (ctx.viewer.tenant ?? ''), disabled: !admin }),
  };
  const fieldEls: Readonly<Record<string, InputEl>> = f;
  const submit = h('button', { class: 'primary', type: 'submit', id: 'reserve' }, 'Reserve volume');
  const form = h('form', { class: 'card', id: 'reserve-form' },
    h('h2', { style: 'margin-top:0' }, 'Reserve a persistent volume'),
    h('div', { class: 'filters' },
      h('label', {}, 'Name', f.name), h('label', {}, 'Size', f.size), h('label', {}, 'Container path', f.containerPath), h('label', {}, 'Mode', f.mode),
      h('label', {}, 'Agent', f.agent), h('label', {}, 'Near data', f.near), h('label', {}, 'Labels', f.labels), h('label', {}, 'Tenant', f.tenant)),
    h('p', {}, submit), formStatus);

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    for (const el of Object.values(fieldEls)) el.removeAttribute('aria-invalid');
    const labels = parseLabels(f.labels.value);
    if (typeof labels === 'string') {
      f.labels.setAttribute('aria-invalid', 'true');
      formStatus.replaceChildren(errorBox(new ApiError(400, 'INVALID_FIELD', `labels: '${labels}' is not key=value`, 'labels')));
      return;
    }
    // Only what was filled in is sent; the size goes as typed ("1GiB" or a number of MiB).
    const sizeText = f.size.value.trim();
    const body: Record<string, unknown> = {
      name: f.name.value.trim(),
      size: /^\d+(\.\d+)?$/.test(sizeText) ? Number(sizeText) : sizeText,
      mode: f.mode.value,
      ...(f.containerPath.value.trim() !== '' ? { containerPath: f.containerPath.value.trim() } : {}),
      ...(f.agent.value !== '' ? { agent: f.agent.value } : {}),
      ...(f.near.value.trim() !== '' ? { near: f.near.value.trim() } : {}),
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(admin && f.tenant.value.trim() !== '' ? { tenant: f.tenant.value.trim() } : {}),
    };
    submit.setAttribute('disabled', '');
    formStatus.replaceChildren('Reserving…');
    call('POST', '/v1/volumes', body, { 'idempotency-key': idempotencyKey() }).then((v) => {
      formStatus.replaceChildren(h('div', { class: 'notice' }, `Volume ${str(v, 'name')} requested for tenant ${str(v, 'tenant')}: ${str(v, 'state')}.`));
      f.name.value = '';
      void load();
    }, (err: unknown) => {
      if (err instanceof ApiError && err.field) {
        const key = err.field.split('.')[0] ?? '';
        fieldEls[key === 'size' ? 'size' : key]?.setAttribute('aria-invalid', 'true');
      }
      formStatus.replaceChildren(errorBox(err, 'The volume was not reserved'));
    }).finally(() => submit.removeAttribute('disabled'));
  });

  ctx.root.replaceChildren(h('h1', {}, 'Volumes'), form, h('h2', {}, 'Persistent volumes'), list, h('h2', {}, 'Capacity reservations'), resList);

  let lastLoad = 0;
  let busy = false;
  const load = async (): Promise<void> => {
    lastLoad = Date.now();
    try {
      const [vv, rv] = await Promise.all([get('/v1/volumes', ctx.signal), get('/v1/reservations', ctx.signal)]);
      const vols = arr(vv, 'volumes');
      busy = vols.some((v) => !SETTLED.has(str(v, 'state')));
      list.replaceChildren(vols.length === 0 ? h('p', { class: 'muted', id: 'volumes-empty' }, 'No volumes.') : h('table', { id: 'volumes' },
        h('thead', {}, h('tr', {}, ...['Name', 'Tenant', 'State', 'Agent', 'Size', 'Path', 'Used by', 'Labels', ''].map((c) => h('th', {}, c)))),
        h('tbody', {}, ...vols.map(volumeRow))));
      const reservations = arr(rv, 'reservations');
      resList.replaceChildren(reservations.length === 0 ? h('p', { class: 'muted' }, 'No capacity reservations.') : h('table', { id: 'reservations' },
        h('thead', {}, h('tr', {}, ...['Id', 'Tenant', 'State', 'Agent', 'cpus', 'mem', 'disk', 'Labels'].map((c) => h('th', {}, c)))),
        h('tbody', {}, ...reservations.map((r) => {
          const rr = res(r, 'resources');
          return h('tr', {}, h('td', { class: 'mono small' }, str(r, 'id')), h('td', {}, str(r, 'tenant')), h('td', {}, badge(str(r, 'state'))),
            h('td', {}, optStr(r, 'hostname') ?? optStr(r, 'agentId') ?? '-'), h('td', { class: 'num' }, String(rr.cpus)), h('td', { class: 'num' }, mib(rr.mem)),
            h('td', { class: 'num' }, mib(rr.disk)), h('td', { class: 'small' }, labelsText(strMap(r, 'labels'))));
        }))));
    } catch (err) {
      if (!ctx.signal.aborted) list.replaceChildren(errorBox(err, 'Listing volumes failed'));
    }
  };

  const volumeRow = (v: unknown): El => {
    const name = str(v, 'name');
    const tenant = str(v, 'tenant');
    const state = str(v, 'state');
    const del = h('button', { class: 'danger small', type: 'button', 'data-volume': name, disabled: state === 'DELETED' || obj(v)['deleteRequested'] === true }, 'Delete');
    const msg = h('div', {});
    del.addEventListener('click', () => {
      if (!confirmDelete(name, tenant)) return;
      del.setAttribute('disabled', '');
      call('DELETE', `/v1/volumes/${encodeURIComponent(name)}?tenant=${encodeURIComponent(tenant)}`).then(() => void load(), (err: unknown) => {
        del.removeAttribute('disabled');
        msg.replaceChildren(errorBox(err, 'Delete failed'));
      });
    });
    const usedBy = strs(v, 'usedBy');
    return h('tr', { 'data-volume': name },
      h('td', {}, h('b', {}, name)), h('td', {}, tenant),
      h('td', {}, badge(state), optStr(v, 'reason') ? h('div', { class: 'muted small' }, optStr(v, 'reason') ?? '') : null),
      h('td', {}, optStr(v, 'hostname') ?? optStr(v, 'agentId') ?? h('span', { class: 'muted' }, 'not placed yet')),
      h('td', { class: 'num' }, mib(num(v, 'sizeMiB'))),
      h('td', { class: 'mono small' }, `${str(v, 'containerPath')} (${str(v, 'mode')})`),
      h('td', { class: 'small' }, usedBy.length === 0 ? h('span', { class: 'muted' }, 'nobody') : usedBy.join(', ')),
      h('td', { class: 'small' }, labelsText(strMap(v, 'labels'))),
      h('td', {}, del, msg));
  };

  await load();
  ctx.every(1000, () => {
    if (Date.now() - lastLoad >= (busy ? BUSY_MS : IDLE_MS)) void load();
  });
}

function confirmDelete(name: string, tenant: string): boolean {
  return browser.confirm(`Delete volume ${name} of tenant ${tenant}? Its data is destroyed.`);
}
