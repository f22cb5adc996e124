/**
 * The bundled executor (dist/executor.mjs, scripts/bundle-executor.mjs): it is what the local
 * cluster starts after a build, it takes the same command line as `locus executor`, and it loads
 * every module an executor needs from the one file. A job running on it end to end is
 * framework-e2e's: its framework starts executors from the default entry, checked here to be
 * the bundle (the suite's global set-up builds and bundles).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
    const src = readFileSync(LOCUS_EXECUTOR, 'utf8');
    expect(src).not.toMatch(/from\s+["'](bullmq|ioredis|pino)["']/);
    expect(src).not.toMatch(/require\(["'](bullmq|ioredis|pino)["']\)/);
    // The executor's own code is in it (its usage text), not imported from dist/src.
    expect(src).toContain('usage: locus executor [options]');
    expect(src).not.toMatch(/from\s+["'][^"']*dist\/src\//);
  });
});
