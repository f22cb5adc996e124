/**
 * How a job's output directory (an absolute path under the cluster's output root) maps onto a
 * host's own output directory when outputs are kept on the hosts that wrote them
 * (`shared-outputs: false`). Executors commit by it and the API names the places by it: one
 * function, so what the API says is where the executors put them.
 */
import { join, relative } from 'node:path';

/** Where outputs go, as a framework instance knows it (the cluster's recorded places). */
export interface OutputPlaces {
  /** Whether every executor sees the output root at the same path (`shared-outputs`). */
  readonly shared: boolean;
  /** The output root: job output directories are under it. */
  readonly root: string;
  /** With `shared` false: the directory of each host's own outputs (`<hostRoot>/<host>/…`). */
  readonly hostRoot: string;
}

/**
 * The path of `dir` below a host's own output directory: its path under `root`, or for a
 * directory outside it (a job accepted when another root was in use) `_other/<its absolute
 * path>`, so it still lands below the host's directory and cannot collide with a tenant's.
 */
export function hostRelativePath(root: string, dir: string): string {
  return pathUnder(root, dir) ?? join('_other', dir.replace(/^\/+/, ''));
}

/** `dir`'s path relative to `root` when it is strictly below it, else undefined. */
export function pathUnder(root: string, dir: string): string | undefined {
  const rel = relative(root, dir);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith('/') ? rel : undefined;
}

/** What stands for the host's name in a pattern of host-kept paths. */
export const HOST_PLACEHOLDER = '{host}';

/**
 * Where `dir`'s outputs are on each host that wrote some: `<hostRoot>/{host}/<path>`, `{host}` for
 * the host's name (the agent hostname each task's attempt names).
 */
export function hostOutputPattern(places: Pick<OutputPlaces, 'root' | 'hostRoot'>, dir: string): string {
  return join(places.hostRoot, HOST_PLACEHOLDER, hostRelativePath(places.root, dir));
}
