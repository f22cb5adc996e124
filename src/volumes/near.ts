/**
 * `near: <uri>` placement: the agent host that holds the most bytes of the
 * data at the URI, computed from the storage port's resolve result.
 */
import type { FileLocations } from '../core/blocks.js';

/** Bytes held per host across every split of every file (each replica counts for its host). */
export function bytesByHost(files: readonly FileLocations[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of files) {
    for (const s of f.splits) {
      for (const h of new Set(s.hosts)) out.set(h, (out.get(h) ?? 0) + s.length);
    }
  }
  return out;
}

/** The host with the most bytes (ties: alphabetical, so the choice is reproducible); undefined without any. */
export function chooseNearHost(files: readonly FileLocations[]): string | undefined {
  let best: string | undefined;
  let bestBytes = -1;
  for (const [host, bytes] of bytesByHost(files)) {
    if (bytes > bestBytes || (bytes === bestBytes && best !== undefined && host < best)) {
      best = host;
      bestBytes = bytes;
    }
  }
  return best;
}

/**
 * A `resolveNear` for VolumeService from a storage resolve function (the
 * storage port's `resolve`, e.g. a registry's): whole files, host with most bytes.
 */
export function nearResolver(resolve: (uri: string, options: { readonly split: 'file' }) => Promise<readonly FileLocations[]>): (uri: string) => Promise<string | undefined> {
  return async (uri) => chooseNearHost(await resolve(uri, { split: 'file' }));
}
