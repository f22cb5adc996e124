/**
 * Task logs: the port the log route reads through, and its implementation on
 * the agent's `/files/read` JSON API (the same endpoint the Mesos web UI
 * tails sandboxes with: `?path=&offset=&length=` answers `{"data","offset"}`,
 * and `offset=-1` answers the file's size in `offset`).
 *
 * Offsets are bytes. `data` arrives decoded as UTF-8, so a chunk boundary
 * inside a multi-byte character shows as U+FFFD; offsets advance by the bytes
 * asked for (known to exist), never by the decoded text's length.
 */
import { LocusError } from '../../core/errors.js';
import { asNumber, asObject, asString, DecodeError } from '../../core/decode.js';
import type { AttemptRecord } from '../../scheduler/jobs/model.js';

/** Which output of a task. */
export type LogStream = 'stdout' | 'stderr';

/** Where an attempt's sandbox is: the agent that ran it and the directory there. */
export type LogLocation = Pick<AttemptRecord, 'agentUrl' | 'sandboxDir'>;

/** A chunk of a log. */
export interface LogChunk {
  readonly data: string;
  readonly offset: number;
}

/** The port: read an attempt's stdout/stderr by byte range. */
export interface TaskLogReader {
  /** The stream's size in bytes (0 while the file does not exist). */
  size(attempt: LogLocation, stream: LogStream): Promise<number>;
  /** Up to `length` bytes from `offset` (fewer at the end of the file). */
  read(attempt: LogLocation, stream: LogStream, offset: number, length: number): Promise<LogChunk>;
  /** Whether the stream's file exists (an ended attempt's sandbox may have been removed). */
  exists?(attempt: LogLocation, stream: LogStream): Promise<boolean>;
}

/** Options of the agent-backed reader. */
export interface AgentLogReaderOptions {
  /** Per-request timeout (ms). */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

function located(attempt: LogLocation): { agentUrl: string; sandboxDir: string } {
  if (attempt.agentUrl === undefined || attempt.agentUrl === '') {
    throw new LocusError('WRONG_STATE', 'no agent address is recorded for this attempt, so its sandbox cannot be read');
  }
  if (attempt.sandboxDir === undefined || attempt.sandboxDir === '') {
    throw new LocusError('WRONG_STATE', 'the sandbox of this attempt is not known yet');
  }
  return { agentUrl: attempt.agentUrl.replace(/\/+$/, ''), sandboxDir: attempt.sandboxDir.replace(/\/+$/, '') };
}

/** Reads sandboxes through each agent's `/files/read`. */
export class AgentFilesLogReader implements TaskLogReader {
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(options: AgentLogReaderOptions = {}) {
    this.fetchImpl = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async size(attempt: LogLocation, stream: LogStream): Promise<number> {
    const r = await this.call(attempt, stream, -1, -1);
    return r?.offset ?? 0;
  }

  async exists(attempt: LogLocation, stream: LogStream): Promise<boolean> {
    return (await this.call(attempt, stream, -1, -1)) !== undefined;
  }

  async read(attempt: LogLocation, stream: LogStream, offset: number, length: number): Promise<LogChunk> {
    if (length <= 0) return { data: '', offset };
    return (await this.call(attempt, stream, offset, length)) ?? { data: '', offset };
  }

  /** One /files/read call; undefined when the file does not exist (yet). */
  private async call(attempt: LogLocation, stream: LogStream, offset: number, length: number): Promise<LogChunk | undefined> {
    const { agentUrl, sandboxDir } = located(attempt);
    const url = new URL(`${agentUrl}/files/read`);
    url.searchParams.set('path', `${sandboxDir}/${stream}`);
    url.searchParams.set('offset', String(offset));
    if (length >= 0) url.searchParams.set('length', String(length));
    let res: Response;
    try {
      res = await this.fetchImpl(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new LocusError('UNAVAILABLE', `the agent at ${agentUrl} did not answer: ${(err as Error).message}`, { cause: err });
    }
    const text = await res.text();
    if (res.status === 404) return undefined;
    if (res.status !== 200) {
      throw new LocusError('UNAVAILABLE', `the agent at ${agentUrl} answered ${res.status} to /files/read: ${text.slice(0, 200)}`);
    }
    try {
      const o = asObject(JSON.parse(text) as unknown, 'files/read');
      return { data: asString(o['data'], 'data'), offset: asNumber(o['offset'], 'offset') };
    } catch (err) {
      const why = err instanceof DecodeError ? err.message : (err as Error).message;
      throw new LocusError('PROTOCOL', `the agent at ${agentUrl} answered /files/read with something else: ${why}`, { cause: err });
    }
  }
}

/** Largest log answered in one non-follow request; earlier bytes are skipped. */
export const MAX_LOG_RESPONSE_BYTES = 8 * 1024 * 1024;
/** Largest chunk read per call while following. */
export const FOLLOW_CHUNK_BYTES = 1024 * 1024;

/**
 * The last `lines` lines of a stream and the byte offset just past them.
 * Only the last MAX_LOG_RESPONSE_BYTES are searched: a longer last "line" is cut.
 */
export async function readTail(reader: TaskLogReader, attempt: LogLocation, stream: LogStream, lines: number): Promise<{ text: string; end: number }> {
  const size = await reader.size(attempt, stream);
  if (size === 0 || lines <= 0) return { text: '', end: size };
  const start = Math.max(0, size - MAX_LOG_RESPONSE_BYTES);
  const chunk = await reader.read(attempt, stream, start, size - start);
  return { text: lastLines(chunk.data, lines), end: size };
}

/** The last `n` lines of `text` (a final newline does not start an empty line). */
export function lastLines(text: string, n: number): string {
  if (n <= 0 || text.length === 0) return '';
  let pos = text.endsWith('\n') ? text.length - 1 : text.length;
  for (let i = 0; i < n; i++) {
    if (pos === 0) return text;
    const nl = text.lastIndexOf('\n', pos - 1);
    if (nl < 0) return text;
    pos = nl;
  }
  return text.slice(pos + 1);
}

/** A whole stream up to MAX_LOG_RESPONSE_BYTES (the end when longer) and the offset after it. */
export async function readAll(reader: TaskLogReader, attempt: LogLocation, stream: LogStream): Promise<{ text: string; end: number; skipped: number }> {
  const size = await reader.size(attempt, stream);
  if (size === 0) return { text: '', end: 0, skipped: 0 };
  const start = Math.max(0, size - MAX_LOG_RESPONSE_BYTES);
  const chunk = await reader.read(attempt, stream, start, size - start);
  return { text: chunk.data, end: size, skipped: start };
}
