/**
 * The compact encoding proposed for pending split tasks in Redis, so a job of
 * 1,000,000 split tasks costs tens of megabytes in a handful of keys, not a
 * million hashes. Pure: bytes in, bytes out; the job store does the I/O.
 *
 * Keys per job stage (prefix `locus:`):
 *   job:<id>:hosts:<stage>   string  JSON `[[hostname, rack|null], ...]`: the host dictionary
 *   job:<id>:files:<stage>   string  JSON `[[uri, size, localPath|null], ...]`: the file table
 *   job:<id>:splitbin:<stage> string binary, the format below (written once, APPEND in pieces)
 *   job:<id>:state:<stage>   string  one byte per task (SETRANGE / GETRANGE / BITFIELD u8):
 *                                    0 pending, 1 running, 2 succeeded, 3 failed, 4 cancelled
 * Everything else about a task (command, resources, constraints, locality) is
 * the stage's spec, stored once; a task gets its own record only when it is
 * attempted. After a restart the scheduler rebuilds its PendingIndex from the
 * state bytes that are 0 and the split records at the same positions.
 *
 * splitbin format, little-endian:
 *   header (8 bytes): magic "LPS1", u16 replica slots R, u16 reserved (0)
 *   record i at 8 + i * (20 + 2R):
 *     u32 file index, f64 offset, f64 length (exact to 2^53 bytes),
 *     R × u16 host index into the host dictionary (0xFFFF = none)
 * Record i is task index i, so GETRANGE reads one task without reading the
 * rest. Racks are not stored per split: the host dictionary carries them.
 */
import { LocusError } from '../../core/errors.js';

/** Constants of the format. */
export const PENDING_SPLITS_FORMAT = Object.freeze({
  magic: 'LPS1',
  headerBytes: 8,
  fixedRecordBytes: 20,
  noHost: 0xffff,
  maxHosts: 0xfffe,
  stateBytes: { pending: 0, running: 1, succeeded: 2, failed: 3, cancelled: 4 },
});

/** One split as the codec sees it. */
export interface PackedSplit {
  readonly fileIndex: number;
  readonly offset: number;
  readonly length: number;
  readonly hosts: readonly string[];
}

/** The encoded stage: the binary records and the host dictionary they index. */
export interface EncodedSplits {
  readonly data: Uint8Array;
  readonly hosts: readonly string[];
  readonly replicas: number;
}

/** Bytes per record for R replica slots. */
export function recordBytes(replicas: number): number {
  return PENDING_SPLITS_FORMAT.fixedRecordBytes + 2 * replicas;
}

/** Encode a stage's splits; hosts beyond `replicas` per split are dropped (best first are kept). */
export function encodePendingSplits(splits: readonly PackedSplit[], replicas = 3): EncodedSplits {
  const F = PENDING_SPLITS_FORMAT;
  const size = recordBytes(replicas);
  const data = new Uint8Array(F.headerBytes + splits.length * size);
  const view = new DataView(data.buffer);
  for (let i = 0; i < 4; i++) data[i] = F.magic.charCodeAt(i);
  view.setUint16(4, replicas, true);
  view.setUint16(6, 0, true);
  const dict = new Map<string, number>();
  const hosts: string[] = [];
  let p = F.headerBytes;
  for (const s of splits) {
    view.setUint32(p, s.fileIndex, true);
    view.setFloat64(p + 4, s.offset, true);
    view.setFloat64(p + 12, s.length, true);
    for (let r = 0; r < replicas; r++) {
      const h = s.hosts[r];
      let code: number = F.noHost;
      if (h !== undefined) {
        const known = dict.get(h);
        if (known !== undefined) code = known;
        else if (hosts.length < F.maxHosts) {
          code = hosts.length;
          dict.set(h, code);
          hosts.push(h);
        }
      }
      view.setUint16(p + 20 + 2 * r, code, true);
    }
    p += size;
  }
  return { data, hosts, replicas };
}

/** How many records an encoded stage holds (throws on a foreign buffer). */
export function splitCount(data: Uint8Array): number {
  const F = PENDING_SPLITS_FORMAT;
  for (let i = 0; i < 4; i++) {
    if (data[i] !== F.magic.charCodeAt(i)) throw new LocusError('INTERNAL', 'not a Locus pending-splits buffer');
  }
  const replicas = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint16(4, true);
  return Math.floor((data.byteLength - F.headerBytes) / recordBytes(replicas));
}

/** Decode record i. */
export function decodeSplitAt(data: Uint8Array, hosts: readonly string[], i: number): PackedSplit {
  const F = PENDING_SPLITS_FORMAT;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const replicas = view.getUint16(4, true);
  const p = F.headerBytes + i * recordBytes(replicas);
  const out: string[] = [];
  for (let r = 0; r < replicas; r++) {
    const code = view.getUint16(p + 20 + 2 * r, true);
    const h = code === F.noHost ? undefined : hosts[code];
    if (h !== undefined) out.push(h);
  }
  return { fileIndex: view.getUint32(p, true), offset: view.getFloat64(p + 4, true), length: view.getFloat64(p + 12, true), hosts: out };
}

/** Decode every record. */
export function decodePendingSplits(data: Uint8Array, hosts: readonly string[]): PackedSplit[] {
  const n = splitCount(data);
  const out: PackedSplit[] = new Array<PackedSplit>(n);
  for (let i = 0; i < n; i++) out[i] = decodeSplitAt(data, hosts, i);
  return out;
}
