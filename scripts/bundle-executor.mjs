// Bundles the executor's entry point (dist/src/cli/executor-main.js, built by tsc) and every
// module it loads into dist/executor.mjs: one file loads in about a third of the time of the
// ~300 it replaces, and every job that finds no warm executor waits for one to start
// (src/cli/executor-main.ts). Run after tsc; src/app/config.ts uses the bundle only while it is
// newer than the tsc output, so a build without this step falls back to dist/src/cli/main.js.
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist/src/cli/executor-main.js');
const out = join(root, 'dist/executor.mjs');
if (!existsSync(entry)) {
  console.error(`bundle-executor: ${entry} is missing: run tsc first (npm run build)`);
  process.exit(1);
}
if (existsSync(out) && statSync(out).mtimeMs >= statSync(entry).mtimeMs && statSync(out).mtimeMs >= statSync(join(root, 'package-lock.json')).mtimeMs) process.exit(0);
// Without esbuild (a platform it has no binary for) Locus still runs: executors start from the
// CLI, only more slowly. Said in one line, as scripts/build-native.sh does without a compiler.
let build;
try {
  ({ build } = await import('esbuild'));
} catch (err) {
  console.error(`bundle-executor: esbuild is not available (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); executors will start from dist/src/cli/main.js instead of one bundled file`);
  process.exit(0);
}
const tmp = join(root, 'dist/.bundle-tmp');
rmSync(tmp, { recursive: true, force: true });
const result = await build({
  entryPoints: [entry],
  // Written beside and renamed into place, so an executor starting meanwhile never loads half a file.
  outfile: join(tmp, 'executor.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // CommonJS packages inside an ES module bundle still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __locusRequire } from 'node:module'; const require = __locusRequire(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
  // The WebHDFS client is loaded on demand through createRequire (src/storage/hdfs): it stays a
  // package, found from dist/ in node_modules as before.
  external: ['webhdfs'],
});
if (result.errors.length > 0) process.exit(1);
renameSync(join(tmp, 'executor.mjs.map'), `${out}.map`);
renameSync(join(tmp, 'executor.mjs'), out);
rmSync(tmp, { recursive: true, force: true });
