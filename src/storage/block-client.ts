/**
 * Reading from executors' block servers (see src/executor/block-server.ts):
 * an HTTP range read of a file under one of a server's roots, tried on each
 * source in turn. Failures say whether the host or the request is to blame:
 * a source that cannot be reached (refused, reset, timed out, a server with
 * another token) is the host's trouble (UNAVAILABLE), a file that no source
 * has is the task's (NOT_FOUND).
 */
import { Agent, request, type IncomingMessage } from 'node:http';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { LocusError } from '../core/errors.js';

/** The URL path of a file on a block server. */
export function blockPath(root: string, path: string): string {
  return `/v1/blocks/${encodeURIComponent(root)}/${path.split('/').filter(Boolean).map(encodeURIComponent).join('/')}`;
}

/** One place to read from. */
export interface BlockReadSource {
  /** host:port of the block server. */
  readonly address: string;
  readonly root: string;
  readonly path: string;
}

/** Options of a read. */
export interface BlockReadOptions {
  readonly token: string;
  /** Per connection attempt and per idle gap while streaming (default 30 s). */
  readonly timeoutMs?: number;
  readonly agent?: Agent;
}

const sharedAgent = new Agent({ keepAlive: true, maxSockets: 32 });

function get(address: string, path: string, headers: Record<string, string>, o: BlockReadOptions): Promise<IncomingMessage> {
  const cut = address.lastIndexOf(':');
  const host = address.slice(0, cut).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(cut + 1));
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: 'GET', headers, agent: o.agent ?? sharedAgent, timeout: o.timeoutMs ?? 30_000 }, resolve);
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer from ${address} in time`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

async function drain(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of res) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8').slice(0, 300);
}

/** Counts the bytes passing through and fails the stream when fewer than `expected` arrive. */
function exactly(expected: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      if (seen !== expected) cb(new LocusError('UNAVAILABLE', `${what}: the block server sent ${seen} of ${expected} bytes`));
      else cb();
    },
  });
}

/**
 * Stream bytes [offset, offset+length) of a file from the first source that
 * serves it. `length` may run past the end of the file; the answer is then
 * cut at the end (the server says how much it sends).
 */
export async function readFromBlockServers(sources: readonly BlockReadSource[], offset: number, length: number, o: BlockReadOptions): Promise<Readable> {
  if (sources.length === 0) throw new LocusError('UNAVAILABLE', 'no block server holds this data (no executor runs on any host that has it)');
  const problems: string[] = [];
  let hostTrouble = false;
  for (const s of sources) {
    const path = blockPath(s.root, s.path);
    const headers: Record<string, string> = { authorization: `Bearer ${o.token}` };
    if (length > 0) headers['range'] = `bytes=${offset}-${offset + length - 1}`;
    let res: IncomingMessage;
    try {
      res = await get(s.address, path, headers, o);
    } catch (err) {
      hostTrouble = true;
      problems.push(`${s.address}: ${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`.trim());
      continue;
    }
    if (res.statusCode === 206 || res.statusCode === 200) {
      const declared = Number(res.headers['content-length']);
      if (length === 0) {
        res.resume();
        const empty = new PassThrough();
        empty.end();
        return empty;
      }
      const check = exactly(Number.isFinite(declared) ? declared : length, `${s.address}${path}`);
      res.on('error', (err) => check.destroy(new LocusError('UNAVAILABLE', `${s.address}: the connection broke while reading (${err.message})`)));
      return res.pipe(check);
    }
    const body = await drain(res).catch(() => '');
    if (res.statusCode === 416) {
      // The range starts at or past the end of the file: nothing to read.
      const empty = new PassThrough();
      empty.end();
      return empty;
    }
    if (res.statusCode !== 404) hostTrouble = true;
    problems.push(`${s.address}: HTTP ${res.statusCode ?? 0} ${body.trim()}`);
  }
  const what = `${sources[0]?.root ?? ''}/${sources[0]?.path ?? ''}`;
  if (hostTrouble) throw new LocusError('UNAVAILABLE', `cannot read ${what} from any block server: ${problems.join('; ')}`);
  throw new LocusError('NOT_FOUND', `no block server has ${what}: ${problems.join('; ')}`);
}
