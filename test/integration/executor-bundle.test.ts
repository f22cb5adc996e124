/**
 * The bundled executor (dist/executor.mjs, scripts/bundle-executor.mjs): it is what the local
 * cluster starts after a build, it takes the same command line as `locus executor`, and it loads
 * every module an executor needs from the one file (dist/executor-bundle.cjs) with V8's code
 * cache, which it ignores when it was written for another bundle or cannot be used. A job running on it end to end is
 * framework-e2e's: its framework starts executors from the default entry, checked here to be
 * the bundle (the suite's global set-up builds and bundles).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { defaultExecutorMain } from '../../src/app/config.js';
import { LOCUS_EXECUTOR } from '../harness/build.js';

describe('bundled executor', () => {
  it('is the entry point the local cluster starts executors from after a build', () => {
    expect(defaultExecutorMain()).toBe(LOCUS_EXECUTOR);
  });

  it('answers `executor --help` as `locus executor --help` does', () => {
    const r = spawnSync(process.execPath, [LOCUS_EXECUTOR, 'executor', '--help'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('usage: locus executor [options]');
  });

  it('refuses any other command, naming the argument', () => {
    const r = spawnSync(process.execPath, [LOCUS_EXECUTOR, 'submit'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("its first argument must be 'executor', got 'submit'");
  });

  it('carries its packages inside: no import of bullmq, ioredis or pino from node_modules', () => {
    const src = readFileSync(join(dirname(LOCUS_EXECUTOR), 'executor-bundle.cjs'), 'utf8');
    expect(src).not.toMatch(/from\s+["'](bullmq|ioredis|pino)["']/);
    expect(src).not.toMatch(/require\(["'](bullmq|ioredis|pino)["']\)/);
    // The executor's own code is in it (its usage text), not imported from dist/src.
    expect(src).toContain('usage: locus executor [options]');
    expect(src).not.toMatch(/from\s+["'][^"']*dist\/src\//);
  });

  it('starts with the code cache the build wrote, and without one that belongs to another bundle or is damaged', () => {
    const report = (entry: string): { status: number | null; stdout: string; stderr: string } => {
      const r = spawnSync(process.execPath, [entry, 'executor', '--help'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, LOCUS_EXECUTOR_CODE_CACHE_REPORT: '1' } });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const built = report(LOCUS_EXECUTOR);
    expect(built.stderr).toContain('locus: executor code cache used');
    expect(built.stdout).toContain('usage: locus executor [options]');

    const dist = dirname(LOCUS_EXECUTOR);
    const dir = mkdtempSync(join(tmpdir(), 'locus-code-cache-'));
    try {
      for (const f of ['executor.mjs', 'executor-bundle.cjs']) copyFileSync(join(dist, f), join(dir, f));
      const entry = join(dir, 'executor.mjs');
      expect(report(entry).stderr).toContain('locus: executor code cache absent');
      const cache = readFileSync(join(dist, 'executor-bundle.cjs.cache'));
      // Another bundle's cache (its header names another bundle): not even offered to V8.
      const other = Buffer.from(cache);
      other.write('0000', cache.indexOf(' ') + 1, 'latin1');
      writeFileSync(join(dir, 'executor-bundle.cjs.cache'), other);
      const r1 = report(entry);
      expect(r1.stderr).toContain('locus: executor code cache absent');
      expect(r1.status).toBe(0);
      // The right header over damaged data: V8 refuses it and compiles the bundle.
      const damaged = Buffer.from(cache);
      damaged.fill(7, cache.indexOf(10) + 1, cache.indexOf(10) + 64);
      writeFileSync(join(dir, 'executor-bundle.cjs.cache'), damaged);
      const r2 = report(entry);
      expect(r2.stderr).toContain('locus: executor code cache rejected');
      expect(r2.stdout).toContain('usage: locus executor [options]');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
