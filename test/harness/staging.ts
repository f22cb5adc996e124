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
 * Read `read` again until `done` holds of it, for at most ten staging upkeep periods (output.ts:
 * an executor that still stages for other stages tidies a directory within STAGING_UPKEEP_MS).
 * What is still there then is a leftover, which the caller's expectation shows.
 */
async function onceTidied<T>(read: () => Promise<T>, done: (seen: T) => boolean): Promise<T> {
  const until = Date.now() + 10 * STAGING_UPKEEP_MS;
  for (;;) {
    const seen = await read();
    if (done(seen) || Date.now() >= until) return seen;
    await new Promise((r) => setTimeout(r, STAGING_UPKEEP_MS / 4));
  }
}

/** outputsAndStaging once nothing is left in staging, or the executors' upkeep had its chance. */
export function outputsAndStagingSwept(dir: string): Promise<{ entries: string[]; staging: string[] }> {
  return onceTidied(() => outputsAndStaging(dir), (seen) => seen.staging.length === 0);
}

/** The hidden entries (a staging directory) of a stage's output directory, once none is left or the upkeep had its chance. */
export function hiddenEntriesSettled(dir: string): Promise<string[]> {
  return onceTidied(async () => (await readdir(dir)).filter((n) => n.startsWith('.')), (hidden) => hidden.length === 0);
}
