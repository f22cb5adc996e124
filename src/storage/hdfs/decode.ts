/**
 * Decoders for WebHDFS JSON: FileStatus, and both block-location shapes —
 * `GETFILEBLOCKLOCATIONS` (BlockLocations.BlockLocation[], Hadoop ≥ 3) and the
 * older, undocumented `GET_BLOCK_LOCATIONS` (LocatedBlocks with DatanodeInfo)
 * — normalised into one list of blocks with replicas.
 */
import { asArray, asNumber, asObject, asString, isObject, optional, type JsonObject } from '../../core/decode.js';
import type { StorageReplica } from '../hostmap.js';
import type { RawBlock } from '../splits.js';

/** The fields of a FileStatus Locus uses. */
export interface HdfsFileStatus {
  readonly pathSuffix: string;
  readonly type: 'FILE' | 'DIRECTORY' | 'SYMLINK';
  readonly length: number;
  readonly blockSize: number;
}

/** Decode one FileStatus object. */
export function decodeFileStatus(v: unknown, path: string): HdfsFileStatus {
  const o = asObject(v, path);
  const type = asString(o['type'], `${path}.type`);
  return {
    pathSuffix: optional(o['pathSuffix'], `${path}.pathSuffix`, asString) ?? '',
    type: type === 'DIRECTORY' ? 'DIRECTORY' : type === 'SYMLINK' ? 'SYMLINK' : 'FILE',
    length: optional(o['length'], `${path}.length`, asNumber) ?? 0,
    blockSize: optional(o['blockSize'], `${path}.blockSize`, asNumber) ?? 0,
  };
}

/** `{"FileStatus": {...}}` from GETFILESTATUS. */
export function decodeGetFileStatus(doc: unknown): HdfsFileStatus {
  return decodeFileStatus(asObject(doc, '')['FileStatus'], 'FileStatus');
}

/** `{"FileStatuses": {"FileStatus": [...]}}` from LISTSTATUS. */
export function decodeListStatus(doc: unknown): HdfsFileStatus[] {
  const outer = asObject(asObject(doc, '')['FileStatuses'], 'FileStatuses');
  return asArray(outer['FileStatus'] ?? [], 'FileStatuses.FileStatus', decodeFileStatus);
}

/** The rack part of a topology path: `/dc1/rack7/10.0.0.1:9866` → `/dc1/rack7`. */
export function rackOfTopologyPath(p: string): string | undefined {
  const cut = p.lastIndexOf('/');
  return cut > 0 ? p.slice(0, cut) : undefined;
}

const hostOfName = (name: string): string => {
  // `ip:port`, or `[v6]:port`.
  if (name.startsWith('[')) return name.slice(1, name.indexOf(']'));
  const cut = name.lastIndexOf(':');
  return cut > 0 ? name.slice(0, cut) : name;
};

const strings = (v: unknown, path: string): string[] => (v === undefined || v === null ? [] : asArray(v, path, asString));

/** `{"BlockLocations": {"BlockLocation": [...]}}` from GETFILEBLOCKLOCATIONS. */
export function decodeBlockLocations(doc: unknown): RawBlock[] {
  const outer = asObject(asObject(doc, '')['BlockLocations'], 'BlockLocations');
  const list = outer['BlockLocation'] ?? [];
  return asArray(list, 'BlockLocations.BlockLocation', (v, path) => {
    const o = asObject(v, path);
    const hosts = strings(o['hosts'], `${path}.hosts`);
    const names = strings(o['names'], `${path}.names`);
    const topo = strings(o['topologyPaths'], `${path}.topologyPaths`);
    // The i-th entries of hosts, names and topologyPaths describe the same replica.
    const replicas: StorageReplica[] = hosts.map((h, i) => {
      const aliases = [h];
      const n = names[i];
      if (n !== undefined) aliases.push(hostOfName(n));
      const t = topo[i];
      const rack = t === undefined ? undefined : rackOfTopologyPath(t);
      return rack === undefined ? { names: aliases } : { names: aliases, rack };
    });
    return { offset: asNumber(o['offset'], `${path}.offset`), length: asNumber(o['length'], `${path}.length`), replicas };
  });
}

function decodeDatanode(v: unknown, path: string): StorageReplica {
  const o = asObject(v, path);
  const aliases: string[] = [];
  const hostName = optional(o['hostName'], `${path}.hostName`, asString);
  const ip = optional(o['ipAddr'], `${path}.ipAddr`, asString);
  const name = optional(o['name'], `${path}.name`, asString);
  if (hostName !== undefined && hostName !== '') aliases.push(hostName);
  if (ip !== undefined && ip !== '') aliases.push(ip);
  if (aliases.length === 0 && name !== undefined) aliases.push(hostOfName(name));
  const rack = optional(o['networkLocation'], `${path}.networkLocation`, asString);
  return rack === undefined || rack === '' ? { names: aliases } : { names: aliases, rack };
}

function decodeLocatedBlock(v: unknown, path: string): RawBlock {
  const o: JsonObject = asObject(v, path);
  const block = asObject(o['block'], `${path}.block`);
  return {
    offset: asNumber(o['startOffset'], `${path}.startOffset`),
    length: asNumber(block['numBytes'], `${path}.block.numBytes`),
    replicas: asArray(o['locations'] ?? [], `${path}.locations`, decodeDatanode),
  };
}

/** `{"LocatedBlocks": {...}}` from GET_BLOCK_LOCATIONS: blocks in offset order, plus the file length. */
export function decodeLocatedBlocks(doc: unknown): { fileLength: number; blocks: RawBlock[] } {
  const lb = asObject(asObject(doc, '')['LocatedBlocks'], 'LocatedBlocks');
  const blocks = asArray(lb['locatedBlocks'] ?? [], 'LocatedBlocks.locatedBlocks', decodeLocatedBlock);
  const last = lb['lastLocatedBlock'];
  // lastLocatedBlock usually repeats the final entry; add it only when it is new.
  if (isObject(last)) {
    const b = decodeLocatedBlock(last, 'LocatedBlocks.lastLocatedBlock');
    if (!blocks.some((x) => x.offset === b.offset)) blocks.push(b);
  }
  blocks.sort((a, b) => a.offset - b.offset);
  return { fileLength: asNumber(lb['fileLength'], 'LocatedBlocks.fileLength'), blocks };
}

/** A RemoteException body, if the answer is one. */
export interface RemoteException {
  readonly exception: string;
  readonly javaClassName: string;
  readonly message: string;
}

/** Decode `{"RemoteException": {...}}`, or undefined when the body is something else. */
export function decodeRemoteException(doc: unknown): RemoteException | undefined {
  if (!isObject(doc) || !isObject(doc['RemoteException'])) return undefined;
  const r = doc['RemoteException'];
  const str = (x: unknown): string => (typeof x === 'string' ? x : '');
  return { exception: str(r['exception']), javaClassName: str(r['javaClassName']), message: str(r['message']) };
}
