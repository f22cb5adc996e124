/**
 * Building normalised splits from what backends know: blocks with replicas.
 * Block mode gives one split per block; file mode one split per file whose
 * hosts are ranked by how many of the file's bytes they hold.
 */
import type { FileLocations, SplitLocation, SplitMode } from '../core/blocks.js';
import type { HostMapper, StorageReplica } from './hostmap.js';

/** A byte range of a file and the replicas that hold it, in storage names. */
export interface RawBlock {
  readonly offset: number;
  readonly length: number;
  readonly replicas: readonly StorageReplica[];
}

/** Cut [0, size) into ranges of at most splitSize, all held by the same replicas. */
export function uniformBlocks(size: number, splitSize: number, replicas: readonly StorageReplica[]): RawBlock[] {
  const out: RawBlock[] = [];
  const step = Math.max(1, splitSize);
  for (let off = 0; off < size; off += step) out.push({ offset: off, length: Math.min(step, size - off), replicas });
  return out;
}

function blockSplit(block: RawBlock, mapper: HostMapper): SplitLocation {
  const placed = mapper.place(block.replicas);
  return { offset: block.offset, length: block.length, ...placed };
}

/** One split for a whole file: hosts ranked by bytes held (ties keep first-seen order). */
function fileSplit(size: number, blocks: readonly RawBlock[], mapper: HostMapper): SplitLocation {
  const bytes = new Map<string, number>();
  const pathOf = new Map<string, string | null>();
  const rackOf = new Map<string, string | undefined>();
  for (const b of blocks) {
    const placed = mapper.place(b.replicas);
    for (const h of placed.hosts) bytes.set(h, (bytes.get(h) ?? 0) + b.length);
    for (const r of b.replicas) {
      const h = mapper.agentHost(r.names);
      if (!rackOf.has(h)) rackOf.set(h, mapper.rack(h, r.rack));
      const prev = pathOf.get(h);
      const p = r.path ?? null;
      if (prev === undefined) pathOf.set(h, p);
      else if (prev !== p) pathOf.set(h, null);
    }
  }
  const order = [...bytes.keys()];
  const hosts = order.slice().sort((a, b) => (bytes.get(b) ?? 0) - (bytes.get(a) ?? 0) || order.indexOf(a) - order.indexOf(b));
  const racks: string[] = [];
  for (const h of hosts) {
    const r = rackOf.get(h);
    if (r !== undefined && !racks.includes(r)) racks.push(r);
  }
  // A host can read the whole file locally only if it holds every byte at one path.
  let localPaths: Record<string, string> | undefined;
  for (const h of hosts) {
    const p = pathOf.get(h);
    if (p !== null && p !== undefined && bytes.get(h) === size) (localPaths ??= {})[h] = p;
  }
  const split: SplitLocation = { offset: 0, length: size, hosts, racks };
  return localPaths === undefined ? split : { ...split, localPaths };
}

/** The normalised answer for one file. Empty files have no splits (nothing to read). */
export function fileLocations(
  uri: string,
  size: number,
  blocks: readonly RawBlock[],
  mode: SplitMode,
  mapper: HostMapper,
  localPath?: string,
): FileLocations {
  const splits = size === 0 ? [] : mode === 'block' ? blocks.map((b) => blockSplit(b, mapper)) : [fileSplit(size, blocks, mapper)];
  return localPath === undefined ? { uri, size, splits } : { uri, size, splits, localPath };
}
