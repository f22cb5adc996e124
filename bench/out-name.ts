/**
 * The name (without extension) a benchmark writes its results under in bench/results/.
 * BENCH_OUT names it; without it, `<bench>-<date>` as before, except that a run never
 * overwrites an earlier run's figures of the same day: the second is `<bench>-<date>-2`, and so
 * on. (Every run's figure is its own; an overwritten file took the earlier one with it.)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `dir`: the results directory; `base`: the default name; `exts`: the files a run writes;
 * `askable`: whether BENCH_OUT may name it (not for a run that writes several figures).
 */
export function resultName(dir: string, base: string, exts: readonly string[] = ['.json', '.md'], askable = true): string {
  const asked = askable ? process.env['BENCH_OUT'] : undefined;
  if (asked !== undefined && asked !== '') return asked;
  const taken = (name: string): boolean => exts.some((e) => existsSync(join(dir, `${name}${e}`)));
  if (!taken(base)) return base;
  for (let i = 2; ; i++) if (!taken(`${base}-${i}`)) return `${base}-${i}`;
}
