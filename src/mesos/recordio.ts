/**
 * RecordIO, the framing of the Mesos v1 event stream (`docs/recordio.md`):
 * each record is `<length in bytes, decimal>\n<record bytes>`. The decoder
 * works on bytes with a Buffer accumulator because records split anywhere
 * across HTTP chunks, including inside a multi-byte UTF-8 character, and
 * lengths count bytes, not characters.
 */
import { LocusError } from '../core/errors.js';

/** Longest length header accepted; a longer run of digits is garbage, not a record. */
const MAX_HEADER_DIGITS = 20;

/** Default cap on one record's size (64 MiB): protects memory from a corrupt header. */
export const DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024;

const NEWLINE = 0x0a;

/**
 * A streaming RecordIO decoder. Feed it chunks with `decode()`; it returns the
 * complete records found so far. After a malformed header the stream has lost
 * its framing for good, so every later call throws the same error (as stout's
 * `recordio::Decoder` does): the caller must drop the connection.
 */
export class RecordIoDecoder {
  private buffer: Buffer = Buffer.alloc(0);
  /** Length of the record being read, once its header is complete. */
  private pending: number | undefined;
  private failure: LocusError | undefined;

  constructor(private readonly maxRecordBytes = DEFAULT_MAX_RECORD_BYTES) {}

  /** Whether the stream has failed permanently. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Bytes buffered but not yet returned as a record. */
  get bufferedBytes(): number {
    return this.buffer.length;
  }

  /** Feed one chunk; returns every record it completes (as raw bytes). */
  decode(chunk: Uint8Array): Buffer[] {
    if (this.failure) throw this.failure;
    this.buffer = this.buffer.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buffer, chunk]);
    const records: Buffer[] = [];
    let offset = 0;
    for (;;) {
      if (this.pending === undefined) {
        const nl = this.buffer.indexOf(NEWLINE, offset);
        const headerEnd = nl === -1 ? this.buffer.length : nl;
        if (headerEnd - offset > MAX_HEADER_DIGITS) {
          this.fail(`length header longer than ${MAX_HEADER_DIGITS} bytes`, this.buffer.subarray(offset, offset + MAX_HEADER_DIGITS + 1));
        }
        if (nl === -1) {
          // An incomplete header may still only contain digits.
          this.checkDigits(this.buffer.subarray(offset), false);
          break;
        }
        const header = this.buffer.subarray(offset, nl);
        this.checkDigits(header, true);
        const length = Number(header.toString('ascii'));
        if (length > this.maxRecordBytes) this.fail(`record length ${length} exceeds the ${this.maxRecordBytes}-byte limit`, header);
        this.pending = length;
        offset = nl + 1;
      }
      const length = this.pending;
      if (this.buffer.length - offset < length) break;
      // Copy so that returned records do not pin the whole accumulated buffer.
      records.push(Buffer.from(this.buffer.subarray(offset, offset + length)));
      offset += length;
      this.pending = undefined;
    }
    this.buffer = offset === 0 ? this.buffer : Buffer.from(this.buffer.subarray(offset));
    return records;
  }

  /** Feed one chunk; returns the completed records decoded as UTF-8 text. */
  decodeText(chunk: Uint8Array): string[] {
    return this.decode(chunk).map((r) => r.toString('utf8'));
  }

  /** Whether the stream ended cleanly (no partial record left over). */
  isAtBoundary(): boolean {
    return !this.failure && this.pending === undefined && this.buffer.length === 0;
  }

  private checkDigits(bytes: Buffer, complete: boolean): void {
    if (complete && bytes.length === 0) this.fail('empty length header', bytes);
    for (const b of bytes) {
      if (b < 0x30 || b > 0x39) this.fail('length header is not a decimal number', bytes);
    }
  }

  private fail(reason: string, near: Buffer): never {
    const shown = JSON.stringify(near.subarray(0, 32).toString('latin1'));
    this.failure = new LocusError('PROTOCOL', `malformed RecordIO stream: ${reason} (near ${shown})`);
    this.buffer = Buffer.alloc(0);
    throw this.failure;
  }
}

/** Encode one record: `<byte length>\n<bytes>`. Strings are encoded as UTF-8. */
export function encodeRecord(record: string | Uint8Array): Buffer {
  const body = typeof record === 'string' ? Buffer.from(record, 'utf8') : Buffer.from(record);
  return Buffer.concat([Buffer.from(`${body.length}\n`, 'ascii'), body]);
}

/** Encode a value as one JSON RecordIO record (the Mesos JSON stream encoding). */
export function encodeJsonRecord(value: unknown): Buffer {
  return encodeRecord(JSON.stringify(value));
}
