/**
 * The dashboard's entry module: the token form, the top bar, and a hash
 * router (`#/jobs`, `#/job/<id>`, `#/job/<id>/map`, `#/volumes`,
 * `#/cluster`). A hash route keeps every page on the one `/ui/` document, so
 * no token or id ever travels to the server in a page URL.
 *
 * Each page gets an AbortSignal that fires when the visitor moves on, which
 * ends its streams and timers: nothing keeps running for a page not shown.
 */
import { ApiError, clearToken, get, getWithToken, obj, setToken, str, token, whenUnauthenticated } from './api.js';
import { browser, h, input, type El } from './dom.js';
import { errorBox, type PageCtx, type Viewer } from './widgets.js';
import { jobsPage } from './jobs-page.js';
import { jobPage } from './job-page.js';
import { localityPage } from './locality-page.js';
import { volumesPage } from './volumes-page.js';
import { clusterPage } from './cluster-page.js';

type Page = (ctx: PageCtx) => Promise<void>;

const ROUTES: readonly { readonly re: RegExp; readonly page: Page; readonly nav: string }[] = [
  { re: /^\/jobs$/, page: jobsPage, nav: 'jobs' },
  { re: /^\/job\/([A-Za-z0-9._-]+)\/map$/, page: localityPage, nav: 'jobs' },
  { re: /^\/job\/([A-Za-z0-9._-]+)$/, page: jobPage, nav: 'jobs' },
  { re: /^\/volumes$/, page: volumesPage, nav: 'volumes' },
  { re: /^\/cluster$/, page: clusterPage, nav: 'cluster' },
];

const app = (): El => {
  const el = browser.document.getElementById('app');
  if (!el) throw new Error('the page has no #app element');
  return el;
};

let current: AbortController | undefined;
let viewer: Viewer | undefined;

function viewerOf(v: unknown): Viewer {
  const w = obj(obj(v)['viewer']);
  return { kind: str(w, 'kind') === 'admin' ? 'admin' : 'tenant', tenant: typeof w['tenant'] === 'string' ? w['tenant'] : undefined };
}

/** The token form: all an unauthenticated visitor sees. */
function showLogin(message?: El): void {
  current?.abort();
  viewer = undefined;
  const field = input({ type: 'password', id: 'token', name: 'token', autocomplete: 'off', placeholder: 'bearer token', required: true });
  const status = h('div', { id: 'login-status' }, message ?? null);
  const submit = h('button', { class: 'primary', type: 'submit', id: 'sign-in' }, 'Sign in');
  const form = h('form', { class: 'card', id: 'login' },
    h('h1', {}, 'Locus dashboard'),
    h('p', { class: 'muted' }, 'Enter an API token: the admin token ', h('code', {}, 'locus up'), ' printed, or a tenant token. It is kept for this browser tab only.'),
    h('label', {}, 'Token', field),
    h('p', {}, submit),
    status,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = field.value.trim();
    if (t === '') return;
    status.replaceChildren('Checking…');
    // The token is tried before it is kept: a wrong one never reaches sessionStorage.
    getWithToken('/v1/cluster/resources', t).then((v) => {
      setToken(t);
      viewer = viewerOf(v);
      route();
    }, (err: unknown) => {
      status.replaceChildren(err instanceof ApiError && err.status === 401
        ? errorBox(err, 'Token refused')
        : errorBox(err, 'Could not check the token'));
      field.value = '';
      field.focus();
    });
  });
  app().replaceChildren(h('div', { class: 'login' }, form));
  browser.document.title = 'Locus — sign in';
  field.focus();
}

function topBar(nav: string, who: Viewer): El {
  const link = (name: string, href: string, label: string): El => h('a', { href, class: nav === name ? 'active' : '', id: `nav-${name}` }, label);
  const out = h('button', { type: 'button', id: 'sign-out' }, 'Sign out');
  out.addEventListener('click', () => {
    clearToken();
    showLogin();
  });
  return h('header', { class: 'top' },
    h('span', { class: 'brand' }, 'Locus'),
    h('nav', {}, link('jobs', '#/jobs', 'Jobs'), link('volumes', '#/volumes', 'Volumes'), link('cluster', '#/cluster', 'Cluster')),
    h('span', { class: 'who', id: 'who' }, who.kind === 'admin' ? 'admin' : `tenant ${who.tenant ?? '?'}`, out));
}

/** Draw the page the hash names. */
async function route(): Promise<void> {
  if (token() === undefined) {
    showLogin();
    return;
  }
  current?.abort();
  const controller = new AbortController();
  current = controller;
  if (viewer === undefined) {
    try {
      viewer = viewerOf(await get('/v1/cluster/resources', controller.signal));
    } catch (err) {
      if (controller.signal.aborted) return;
      if (err instanceof ApiError && err.status === 401) return; // whenUnauthenticated showed the form
      app().replaceChildren(h('main', {}, errorBox(err, 'The API did not answer')));
      return;
    }
  }
  const raw = browser.location.hash.replace(/^#/, '') || '/jobs';
  const [path = '/jobs', qs = ''] = raw.split('?');
  const match = ROUTES.map((r) => ({ r, m: r.re.exec(path) })).find((x) => x.m !== null);
  const main = h('main', {});
  app().replaceChildren(topBar(match?.r.nav ?? '', viewer), main);
  if (!match || !match.m) {
    main.replaceChildren(h('div', { class: 'error' }, `No page ${path}. `, h('a', { href: '#/jobs' }, 'Jobs')));
    return;
  }
  const ctx: PageCtx = {
    root: main,
    params: match.m.slice(1).map((p) => p ?? ''),
    query: new URLSearchParams(qs),
    signal: controller.signal,
    viewer,
    every(ms, fn) {
      const t = setInterval(() => {
        if (controller.signal.aborted) clearInterval(t);
        else fn();
      }, ms);
      controller.signal.addEventListener('abort', () => clearInterval(t));
    },
  };
  try {
    await match.r.page(ctx);
  } catch (err) {
    if (controller.signal.aborted) return;
    if (err instanceof ApiError && err.status === 401) return;
    main.appendChild(errorBox(err));
  }
}

whenUnauthenticated((e) => {
  clearToken();
  showLogin(errorBox(e, 'The server no longer accepts this token'));
});
browser.addEventListener('hashchange', () => void route());
void route();
