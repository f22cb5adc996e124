/**
 * The process isolator run by an unprivileged user (the executors the local cluster starts as
 * `nobody`, a developer's own machine) cannot switch users: a workload whose spec names a
 * tenant's uid runs as the isolator's own uid, and the isolator says so in its log, once per
 * user named. Without root, linux isolation is refused with the reason and `auto` falls back to
 * plain processes. Run for real: a node process as `nobody` drives the built isolator.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ensureBuilt } from '../harness/build.js';
import { ROOT, describeWith } from '../harness/requires.js';

const NOBODY = 65534;
const TENANT_UID = 200123;

describeWith([ROOT], 'process isolation without root', () => {
  let dir: string;

  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync('/var/tmp/locus-unprivileged-');
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'sandboxes'));
    chownSync(join(dir, 'sandboxes'), NOBODY, NOBODY);
  }, 120_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('runs a workload as itself when its spec names another uid, and says so once', () => {
    const isolation = pathToFileURL(resolve('dist/src/executor/isolation/index.js')).href;
    const log = pathToFileURL(resolve('dist/src/obs/log.js')).href;
    const script = `
      import { createIsolator } from ${JSON.stringify(isolation)};
      import { createLogger } from ${JSON.stringify(log)};
      const iso = await createIsolator('process', createLogger('test', { level: 'warn', format: 'json' }));
      for (const id of ['one', 'two']) {
        const c = await iso.launch({
          id, argv: ['sh', '-c', 'id -u'], env: {}, sandboxDir: ${JSON.stringify(join(dir, 'sandboxes'))} + '/' + id,
          limits: { cpus: 0.5, memMiB: 64, diskMiB: 0, pids: 0 }, volumes: [], network: 'host', user: '${TENANT_UID}',
        });
        const exit = await c.wait();
        if (exit.exitCode !== 0) throw new Error(id + ': ' + exit.message);
      }
      await iso.close();
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      uid: NOBODY, gid: NOBODY, cwd: dir, encoding: 'utf8', timeout: 60_000, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    // Both workloads ran as the isolator's own uid, not the tenant's.
    for (const id of ['one', 'two']) expect(readFileSync(join(dir, 'sandboxes', id, 'stdout'), 'utf8').trim()).toBe(String(NOBODY));
    const said = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg?: string; user?: string; runsAsUid?: number })
      .filter((l) => l.msg?.startsWith('cannot run workloads as'));
    expect(said, r.stderr).toHaveLength(1);
    expect(said[0]).toMatchObject({ user: String(TENANT_UID), runsAsUid: NOBODY });
    expect(said[0]?.msg).toContain(`they run as uid ${NOBODY}, shared by every tenant's tasks here`);
  }, 90_000);

  test('refuses linux isolation, naming why, and auto falls back to plain processes', () => {
    const isolation = pathToFileURL(resolve('dist/src/executor/isolation/index.js')).href;
    const log = pathToFileURL(resolve('dist/src/obs/log.js')).href;
    const script = `
      import { createIsolator } from ${JSON.stringify(isolation)};
      import { createLogger } from ${JSON.stringify(log)};
      const logger = createLogger('test', { level: 'error', format: 'json' });
      const refused = await createIsolator('linux', logger).then(() => undefined, (err) => err);
      const auto = await createIsolator('auto', logger);
      console.log(JSON.stringify({ code: refused?.code, message: refused?.message, auto: auto.report.kind }));
      await auto.close();
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      uid: NOBODY, gid: NOBODY, cwd: dir, encoding: 'utf8', timeout: 60_000, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { code?: string; message?: string; auto?: string };
    expect(out.code).toBe('UNSUPPORTED');
    expect(out.message).toMatch(/linux isolation is not available on this host: not running as root/);
    expect(out.auto).toBe('process');
  }, 90_000);
});
