/**
 * A benchmark run never overwrites an earlier run's figures of the same day: without BENCH_OUT
 * the second run's files are `<bench>-<date>-2`, and so on; BENCH_OUT names them as asked.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resultName } from '../../bench/out-name.js';

const dirs: string[] = [];
const saved = process.env['BENCH_OUT'];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  if (saved === undefined) delete process.env['BENCH_OUT'];
  else process.env['BENCH_OUT'] = saved;
});

describe('benchmark result names', () => {
  it('takes the next free name when the day\'s file exists, whichever of its files is there', () => {
    delete process.env['BENCH_OUT'];
    const dir = mkdtempSync(join(tmpdir(), 'locus-bench-out-'));
    dirs.push(dir);
    expect(resultName(dir, 'short-2026-12-07')).toBe('short-2026-12-07');
    writeFileSync(join(dir, 'short-2026-12-07.json'), '{}');
    expect(resultName(dir, 'short-2026-12-07')).toBe('short-2026-12-07-2');
    writeFileSync(join(dir, 'short-2026-12-07-2.md'), '');
    expect(resultName(dir, 'short-2026-12-07')).toBe('short-2026-12-07-3');
    // Only the extensions a benchmark writes count.
    expect(resultName(dir, 'short-2026-12-07', ['.csv'])).toBe('short-2026-12-07');
  });

  it('BENCH_OUT names the files as asked, even over an existing one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'locus-bench-out-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'mine.json'), '{}');
    process.env['BENCH_OUT'] = 'mine';
    expect(resultName(dir, 'short-2026-12-07')).toBe('mine');
  });
});
