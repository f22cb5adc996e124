/**
 * Which file the local cluster starts executors from: the bundle only while it is at least as
 * new as the tsc output, so a build that skipped the bundling step never runs stale code.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executorEntryFor } from '../../src/app/config.js';

let dist: string;
let cli: string;
let bundle: string;

beforeEach(() => {
  dist = mkdtempSync(join(tmpdir(), 'locus-entry-'));
  mkdirSync(join(dist, 'src/cli'), { recursive: true });
  cli = join(dist, 'src/cli/main.js');
  bundle = join(dist, 'executor.mjs');
  writeFileSync(cli, '');
});

afterEach(() => rmSync(dist, { recursive: true, force: true }));

const at = (path: string, seconds: number): void => utimesSync(path, seconds, seconds);

describe('executorEntryFor', () => {
  it('starts executors from the bundle when it was built after the CLI', () => {
    writeFileSync(bundle, '');
    at(cli, 1_000);
    at(bundle, 2_000);
    expect(executorEntryFor(cli)).toBe(bundle);
    at(bundle, 1_000);
    expect(executorEntryFor(cli)).toBe(bundle);
  });

  it('falls back to the CLI when the bundle is older than the CLI (tsc ran, the bundling step did not)', () => {
    writeFileSync(bundle, '');
    at(bundle, 1_000);
    at(cli, 2_000);
    expect(executorEntryFor(cli)).toBe(cli);
  });

  it('falls back to the CLI when there is no bundle', () => {
    expect(executorEntryFor(cli)).toBe(cli);
  });
});
