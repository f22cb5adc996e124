import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RecordIoDecoder, encodeRecord, encodeJsonRecord } from '../../src/mesos/recordio.js';
import { LocusError } from '../../src/core/errors.js';

/** Cut `bytes` at the given (sorted, deduplicated) positions. */
function chunk(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

// Records mix ASCII, multi-byte UTF-8 (2, 3 and 4 bytes), newlines and digits,
// so a decoder that splits on newlines or counts characters fails.
const recordArb = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('', '\n', '12\n', 'é', '日本語', '🚀🚀', '{"type":"HEARTBEAT"}'),
  fc.string({ unit: 'binary', maxLength: 60 }),
);

describe('RecordIO decoder', () => {
  it('decodes any chunking of any records', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 40 }), (records, cuts) => {
        const stream = Buffer.concat(records.map((r) => encodeRecord(r)));
        const decoder = new RecordIoDecoder();
        const out: string[] = [];
        for (const c of chunk(stream, cuts)) out.push(...decoder.decodeText(c));
        expect(out).toEqual(records);
        expect(decoder.isAtBoundary()).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('decodes byte-at-a-time streams with multi-byte characters', () => {
    const records = ['héllo', '€uro', '𝄞 clef', JSON.stringify({ type: 'HEARTBEAT' })];
    const stream = Buffer.concat(records.map((r) => encodeRecord(r)));
    const decoder = new RecordIoDecoder();
    const out: string[] = [];
    for (const b of stream) out.push(...decoder.decodeText(Uint8Array.of(b)));
    expect(out).toEqual(records);
  });

  it('counts lengths in bytes, not characters', () => {
    expect(encodeRecord('é').toString('latin1').startsWith('2\n')).toBe(true);
    expect(encodeJsonRecord({ a: '日' }).toString('utf8')).toBe('11\n{"a":"日"}');
  });

  it('keeps a partial record until the rest arrives', () => {
    const decoder = new RecordIoDecoder();
    expect(decoder.decodeText(Buffer.from('5\nab'))).toEqual([]);
    expect(decoder.isAtBoundary()).toBe(false);
    expect(decoder.decodeText(Buffer.from('cde3\nxyz'))).toEqual(['abcde', 'xyz']);
  });

  it('fails permanently on a malformed length header, wherever it appears', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { maxLength: 10 }),
        fc.constantFrom('x\n', '1a\n', '-3\n', ' 4\n', '\n', '99999999999999999999999\n', 'HTTP/1.1 200 OK\r\n'),
        fc.array(fc.nat(), { maxLength: 10 }),
        (good, bad, cuts) => {
          const stream = Buffer.concat([...good.map((r) => encodeRecord(r)), Buffer.from(bad), encodeRecord('after')]);
          const decoder = new RecordIoDecoder();
          const out: string[] = [];
          let error: unknown;
          for (const c of chunk(stream, cuts)) {
            try {
              out.push(...decoder.decodeText(c));
            } catch (err) {
              error = err;
              break;
            }
          }
          expect(error).toBeInstanceOf(LocusError);
          expect((error as LocusError).code).toBe('PROTOCOL');
          expect((error as LocusError).message).toMatch(/malformed RecordIO stream/);
          // Records before the bad header may or may not have been returned
          // (they are when they end a chunk), but never the one after it.
          expect(out).not.toContain('after');
          expect(good.slice(0, out.length)).toEqual(out);
          expect(decoder.failed).toBe(true);
          // Permanent: more (valid) input keeps failing.
          expect(() => decoder.decode(encodeRecord('ok'))).toThrow(/malformed RecordIO stream/);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects a record longer than the limit without buffering it', () => {
    const decoder = new RecordIoDecoder(1024);
    expect(() => decoder.decode(Buffer.from('2048\n'))).toThrow(/exceeds the 1024-byte limit/);
  });
});
