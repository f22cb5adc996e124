/**
 * Reading a stage's output directory in tests: its task directories, apart from the shared
 * staging directory attempts write in (STAGING_DIR), and what is left in that.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { STAGING_DIR, STAGING_UPKEEP_MS } from '../../src/executor/output.js';

/** The entries of `dir` other than its staging directory (sorted), and the entries left in that ([] when it is gone). */
export async function outputsAndStaging(dir: string): Promise<{ entries: string[]; staging: string[] }> {
  const entries = (await readdir(dir)).filter((n) => n !== STAGING_DIR).sort();
  const staging = (await readdir(join(dir, STAGING_DIR)).catch(() => [] as string[])).sort();
  return { entries, staging };
}

/**
 * outputsAndStaging once an executor's staging upkeep (output.ts, STAGING_UPKEEP_MS after the
 * commits) had its chance to sweep: read again until nothing is left in staging, for at most
 * ten upkeep periods. What is still there then is a leftover, which the caller's expectation shows.
 */
export async function outputsAndStagingSwept(dir: string): Promise<{ entries: string[]; staging: string[] }> {
  const until = Date.now() + 10 * STAGING_UPKEEP_MS;
  for (;;) {
    const seen = await outputsAndStaging(dir);
    if (seen.staging.length === 0 || Date.now() >= until) return seen;
    await new Promise((r) => setTimeout(r, STAGING_UPKEEP_MS / 4));
  }
}

/**
 * The hidden entries (a staging directory) of a stage's output directory once an executor's
 * staging upkeep had its chance to remove them: read again until none is left, for at most ten
 * upkeep periods. What is still there then is a leftover, which the caller's expectation shows.
 */
export async function hiddenEntriesSettled(dir: string): Promise<string[]> {
  const until = Date.now() + 10 * STAGING_UPKEEP_MS;
  for (;;) {
    const hidden = (await readdir(dir)).filter((n) => n.startsWith('.'));
    if (hidden.length === 0 || Date.now() >= until) return hidden;
    await new Promise((r) => setTimeout(r, STAGING_UPKEEP_MS / 4));
  }
}
