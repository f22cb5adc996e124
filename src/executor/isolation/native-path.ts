/**
 * Where a native helper built by scripts/build-native.sh is: the environment variable when set
 * (empty turns the helper off), else `dist/native/<name>` under the project root (found from this
 * module's own place, which in the executor bundle is the bundle's). Undefined when it was not
 * built (no C compiler): each caller has its slower way without it.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function nativeHelperPath(name: string, envVar: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const set = env[envVar];
  if (set !== undefined) return set === '' ? undefined : set;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) {
      const p = join(dir, 'dist', 'native', name);
      return existsSync(p) ? p : undefined;
    }
    dir = dirname(dir);
  }
  return undefined;
}
