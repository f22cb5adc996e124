/**
 * The dashboard end to end in a real browser: `locus up` (real redis-server,
 * the embedded local cluster on three agents in two racks, executors and
 * containers) runs the demo's word-count job, and headless Chromium (Debian's
 * package, driven by playwright-core) checks what a person would see: a wrong
 * token refused, the jobs list with its stages and locality share, the job's
 * stages and tasks, a running task's log as it grows, cancel behind a
 * confirmation, the locality map's hosts, a volume reserved from the page
 * (and a bad one refused with the API's own error), and the cluster.
 *
 * Screenshots of each page go to a scratch directory; with
 * LOCUS_UI_SCREENSHOT_DIR=docs/ui they replace the docs' own, so the docs show
 * what this test saw (a plain test run leaves the checkout untouched).
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { wordCountJob, writeSampleText } from '../../src/app/demo.js';
import { describeWith, type Dependency } from '../harness/requires.js';
import { buildIfStale, runCli, startUpProcess, tempStateDir, until, waitReady, type UpProcess } from './surfaces-harness.js';

const CHROMIUM_PATH = process.env['LOCUS_CHROMIUM'] ?? '/usr/bin/chromium';
const CHROMIUM: Dependency = {
  name: 'Chromium',
  install: 'apt-get install -y chromium (scripts/setup.sh test installs it)',
  missing: existsSync(CHROMIUM_PATH) ? undefined : `${CHROMIUM_PATH} does not exist`,
};
const SHOTS = process.env['LOCUS_UI_SCREENSHOT_DIR'] ?? join(tmpdir(), 'locus-ui-shots');
const FILES = 6;

describeWith([CHROMIUM], 'the dashboard in headless Chromium', () => {
  let stateDir: string;
  let up: UpProcess;
  let browser: Browser;
  let page: Page;
  let jobId: string;

  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const r = await fetch(`${up.httpUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${up.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.status, json: (await r.json()) as Record<string, unknown> };
  };
  const pageErrors: string[] = [];
  /** Paths the page requested, in order (to check it streams rather than polls). */
  const requests: string[] = [];
  const shot = async (name: string): Promise<void> => {
    expect(pageErrors).toEqual([]);
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };

  // The build has its own bound: on a busy machine tsc alone can take minutes (CI builds before vitest).
  beforeAll(() => buildIfStale(), 300_000);

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    stateDir = tempStateDir('locus-ui-');
    up = await startUpProcess(stateDir, ['--agents', '3', '--racks', '2']);
    await waitReady(up.httpUrl);
    const text = join(stateDir, 'books');
    await writeSampleText(text, FILES, 3000);
    const put = await runCli(['data', 'put', text, 'local://books/', '--work-dir', join(stateDir, 'local'), '--replicas', '2']);
    expect(put.code, put.stderr).toBe(0);
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
    // A script error would leave a person a blank or half-drawn page: every screenshot checks there was none.
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await up?.dispose();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('shows an unauthenticated visitor only the token form, and refuses a wrong token', async () => {
    await page.goto(`${up.httpUrl}/ui/`);
    await page.locator('#token').waitFor();
    expect(await page.locator('header.top').count()).toBe(0);
    await page.fill('#token', 'not-the-token');
    await page.click('#sign-in');
    await page.locator('#login-status .error').waitFor();
    expect(await page.textContent('#login-status')).toContain('UNAUTHENTICATED');
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    expect(page.url()).not.toContain('not-the-token');
    await shot('login-refused');
  });

  it('lists the demo job live with its stages and locality share', async () => {
    // The very job `locus demo` runs, as a client sends it.
    const body = wordCountJob('books');
    // Submitted first, so the list shows it running and follows it; jobs submitted while the list
    // is open appear at its next refresh (15 s).
    const submitted = await api('POST', '/v1/jobs', body);
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(201);
    jobId = String(submitted.json['id']);
    await page.fill('#token', up.adminToken);
    await page.click('#sign-in');
    await page.locator('#nav-jobs').waitFor();
    expect(await page.textContent('#who')).toContain('admin');
    // The token stays out of the URL; it lives in this tab's sessionStorage.
    expect(page.url()).not.toContain(up.adminToken);
    const row = page.locator(`#jobs tr[data-job="${jobId}"]`);
    // Found and followed live (SSE over fetch): the row reaches SUCCEEDED without a reload.
    await row.waitFor({ timeout: 20_000 });
    const before = requests.length;
    await row.locator('.badge.SUCCEEDED').waitFor({ timeout: 60_000 });
    // Live through the job's event stream, not a polling storm: the list is read again only when
    // the job changes state and on the slow refresh, a handful of times for the whole run.
    const during = requests.slice(before);
    expect(requests).toContain(`/v1/jobs/${jobId}/events`);
    expect(during.filter((p) => p === '/v1/jobs').length).toBeLessThanOrEqual(8);
    // The end event moves the badge at once; the stage sizes come with the list read it triggers.
    await row.locator('.stagebar[data-stage="reduce"]', { hasText: '1/1' }).waitFor({ timeout: 10_000 });
    expect(await row.locator('.stagebar[data-stage="map"]').textContent()).toContain(`${FILES}/${FILES}`);
    expect(await row.locator('.loc').textContent()).toMatch(/^node \d+% · rack \d+% · any \d+%$/);
    await shot('jobs');
    // Filters: a state the job is not in hides it; going back to any state shows it again.
    await page.selectOption('#filter-state', 'FAILED');
    await page.locator('#jobs-status', { hasText: '0 jobs' }).waitFor();
    expect(await page.locator(`#jobs tr[data-job="${jobId}"]`).count()).toBe(0);
    expect(page.url()).toContain('state=FAILED');
    await page.selectOption('#filter-state', '');
    await page.locator(`#jobs tr[data-job="${jobId}"]`).waitFor();
  }, 80_000);

  it("shows the job's stages, its tasks with host, locality and bytes, and their durations", async () => {
    await page.click(`#jobs tr[data-job="${jobId}"] a.job-link`);
    await page.locator('#tasks tbody tr[data-task]').first().waitFor();
    expect(await page.locator('#tasks tbody tr[data-task]').count()).toBe(FILES + 1);
    expect(await page.locator('#dag g[data-stage]').count()).toBe(2);
    expect(await page.locator('#histogram rect').count()).toBeGreaterThan(0);
    // Every row carries a host, a locality level and the bytes the task read next to its data.
    const firstRow = page.locator(`#tasks tr[data-task="${jobId}.0.0"]`);
    expect(await firstRow.textContent()).toMatch(/agent-\d.*(node-local|rack-local|any).*\d+(\.\d)? KiB/);
    await shot('job');
  }, 40_000);

  it("follows a running task's log, and cancels a job only after confirmation", async () => {
    // The demo's tasks write their output to files, so a task that prints is what shows a log growing.
    const chatty = await api('POST', '/v1/jobs', {
      name: 'chatty', retries: 0,
      tasks: [{ command: ['sh', '-c', 'for i in 1 2 3 4 5 6; do echo "ui log line $i"; sleep 0.5; done'] }],
      task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } },
    });
    expect(chatty.status).toBe(201);
    const chattyId = String(chatty.json['id']);
    await page.goto(`${up.httpUrl}/ui/#/job/${chattyId}`);
    await page.locator('#log').waitFor({ timeout: 20_000 });
    // Read while it grows: an early line first, then the last one, in the one followed response.
    await until('the first log line', async () => (((await page.textContent('#log')) ?? '').includes('ui log line 1') ? true : undefined), 20_000, 200);
    await until('the last log line', async () => (((await page.textContent('#log')) ?? '').includes('ui log line 6') ? true : undefined), 20_000, 200);
    expect(await page.textContent('#log-task')).toBe(`${chattyId}.0.0`);
    await until('the log to end with the task', async () => (((await page.textContent('#log-state')) ?? '').includes('end of log') ? true : undefined), 15_000, 200);
    await shot('job-log');

    const slow = await api('POST', '/v1/jobs', {
      name: 'slow', retries: 0, tasks: [{ command: ['sleep', '60'] }],
      task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } },
    });
    const slowId = String(slow.json['id']);
    await page.goto(`${up.httpUrl}/ui/#/job/${slowId}`);
    await page.locator('#cancel-job:not([disabled])').waitFor();
    // Dismissed: nothing happens.
    page.once('dialog', (d) => void d.dismiss());
    await page.click('#cancel-job');
    // A confirmed cancel disables the button before its request: still enabled means none was sent.
    expect(await page.locator('#cancel-job:not([disabled])').count()).toBe(1);
    expect((await api('GET', `/v1/jobs/${slowId}`)).json['state']).not.toBe('CANCELLED');
    page.once('dialog', (d) => void d.accept());
    await page.click('#cancel-job');
    await page.locator('h1 .badge.CANCELLED').waitFor({ timeout: 15_000 });
    expect((await api('GET', `/v1/jobs/${slowId}`)).json['state']).toBe('CANCELLED');
  }, 60_000);

  it('explains why a task is pending', async () => {
    // No agent has this hostname, so the task waits for ever: explain says why.
    const stuck = await api('POST', '/v1/jobs', {
      name: 'nowhere', retries: 0, constraints: [{ hostname: 'no-such-host' }], tasks: [{ command: ['true'] }],
      task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } },
    });
    expect(stuck.status, JSON.stringify(stuck.json)).toBe(201);
    const stuckId = String(stuck.json['id']);
    try {
      await page.goto(`${up.httpUrl}/ui/#/job/${stuckId}`);
      const row = page.locator('#explain tr', { hasText: `${stuckId}.0.0` });
      await row.waitFor({ timeout: 15_000 });
      const code = (await row.locator('code').textContent()) ?? '';
      expect(code).toMatch(/^[A-Z_]+$/);
      expect(code).not.toBe('RUNNING');
      const explained = await api('GET', `/v1/tasks/${stuckId}.0.0/explain`);
      expect(explained.json['state']).toBe('PENDING');
      await shot('job-pending');
    } finally {
      await api('POST', `/v1/jobs/${stuckId}/cancel`);
    }
  }, 30_000);

  it('draws the locality map: hosts by rack against the replicas and where tasks ran', async () => {
    await page.goto(`${up.httpUrl}/ui/#/job/${jobId}/map`);
    await page.locator('#locality-map tbody tr').first().waitFor();
    expect(await page.locator('#racks [data-rack]').count()).toBe(2);
    expect(await page.locator('#racks [data-host]').count()).toBe(3);
    expect(await page.locator('#locality-map tbody tr').count()).toBe(FILES);
    // Two replicas per file: two dots per row; every task ran somewhere.
    expect(await page.locator('#locality-map tbody .dot').count()).toBe(FILES * 2);
    expect(await page.locator('#locality-map tbody .dot.ran, #locality-map tbody .ranelsewhere').count()).toBe(FILES);
    expect(await page.textContent('#map-summary')).toMatch(/\d+ of 6 tasks that ran were placed on a host holding their data/);
    await shot('locality');
  }, 30_000);

  it('reserves a volume from the page, shows the API refusing a bad one, and deletes it after confirmation', async () => {
    await page.click('#nav-volumes');
    await page.locator('#reserve-form').waitFor();
    await page.fill('#vol-name', 'bad-size');
    await page.fill('#vol-size', 'lots');
    await page.click('#reserve');
    await page.locator('#reserve-status .error').waitFor();
    expect(await page.textContent('#reserve-status')).toMatch(/INVALID_FIELD/);
    expect(await page.locator('#vol-size[aria-invalid="true"]').count()).toBe(1);

    await page.fill('#vol-name', 'ui-cache');
    await page.fill('#vol-size', '64MiB');
    await page.fill('#vol-labels', 'team=data');
    await page.click('#reserve');
    await page.locator('#reserve-status .notice').waitFor();
    await page.locator('#volumes tr[data-volume="ui-cache"]').waitFor();
    const listed = await api('GET', '/v1/volumes');
    const vols = listed.json['volumes'] as { name: string; sizeMiB: number; labels: Record<string, string> }[];
    expect(vols.find((v) => v.name === 'ui-cache')).toMatchObject({ sizeMiB: 64, labels: { team: 'data' } });
    expect(vols.some((v) => v.name === 'bad-size')).toBe(false);
    // The page follows it to READY (reserved and created on an agent through offers).
    await page.locator('#volumes tr[data-volume="ui-cache"] .badge.READY').waitFor({ timeout: 30_000 });
    await shot('volumes');

    // Delete, behind a confirmation: the volume is torn down and leaves the list.
    page.once('dialog', (d) => void d.accept());
    await page.click('#volumes button[data-volume="ui-cache"]');
    await until('the volume to be deleted', async () => {
      const after = await api('GET', '/v1/volumes');
      return (after.json['volumes'] as { name: string }[]).some((v) => v.name === 'ui-cache') ? undefined : true;
    }, 30_000, 250);
    await page.locator('#volumes-empty').waitFor({ timeout: 20_000 });
  }, 90_000);

  it('shows the cluster: agents by rack, executors and tenant shares; a token no longer accepted signs out', async () => {
    await page.click('#nav-cluster');
    await page.locator('#tenants').waitFor();
    expect(await page.locator('.agent[data-agent]').count()).toBe(3);
    expect(await page.locator('#tenants tr[data-tenant="default"]').count()).toBe(1);
    await shot('cluster');

    // A token the server stops accepting (here: replaced in storage) brings back the token form, with why.
    await page.evaluate("sessionStorage.setItem('locus.token', 'stale-token')");
    await page.reload();
    await page.locator('#login-status .error').waitFor();
    expect(await page.textContent('#login-status')).toContain('UNAUTHENTICATED');
    expect(await page.locator('header.top').count()).toBe(0);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
  }, 20_000);
});
