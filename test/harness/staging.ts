/**
 * Reading a stage's output directory in tests: its task directories, apart from the shared
 * staging directory attempts write in (STAGING_DIR), and what is left in that.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { STAGING_DIR } from '../../src/executor/output.js';

/** The entries of `dir` other than its staging directory (sorted), and the entries left in that ([] when it is gone). */
export async function outputsAndStaging(dir: string): Promise<{ entries: string[]; staging: string[] }> {
  const entries = (await readdir(dir)).filter((n) => n !== STAGING_DIR).sort();
  const staging = (await readdir(join(dir, STAGING_DIR)).catch(() => [] as string[])).sort();
  return { entries, staging };
}
