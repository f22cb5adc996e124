/**
 * The built CLI (`dist/src/cli/main.js`) and executor bundle that integration tests spawn.
 * Built once per suite run when any source file is newer than the build.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Absolute path of the built CLI. */
export const LOCUS_CLI = resolve('dist/src/cli/main.js');

/** Absolute path of the bundled executor entry point (`executor <flags>`; scripts/bundle-executor.mjs). */
export const LOCUS_EXECUTOR = resolve('dist/executor.mjs');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    newest = Math.max(newest, st.isDirectory() ? newestMtime(p) : name.endsWith('.ts') ? st.mtimeMs : 0);
  }
  return newest;
}

/** Build dist/ when it is missing or older than src/ or bench/. */
export function ensureBuilt(): void {
  const stamp = resolve('dist/.build-stamp');
  const builtAt = existsSync(stamp) && existsSync(LOCUS_CLI) ? statSync(stamp).mtimeMs : 0;
  if (builtAt > 0 && builtAt >= Math.max(newestMtime(resolve('src')), newestMtime(resolve('bench')))) return;
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  } catch (err) {
    // tsc exits 2 when it found type errors but still wrote every output (1 when it wrote none).
    // Type errors are the type-check step's to report (scripts/test.sh runs it first); tests
    // can still run on what was emitted. The stamp is left old so the next run builds again.
    if ((err as { status?: unknown }).status === 2 && existsSync(LOCUS_CLI)) {
      process.stderr.write('build: tsc reported type errors (above); outputs were emitted, tests run on them\n');
      return;
    }
    throw err;
  }
  execFileSync(process.execPath, ['scripts/bundle-executor.mjs'], { stdio: 'inherit' });
  execFileSync('touch', [stamp]);
}
