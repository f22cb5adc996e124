/**
 * Structured logging. Every module takes a Logger so tests can silence it and
 * the app can bind job and task ids into child loggers.
 *
 * Lines are JSON (one object per line, for collectors and `jq`) unless a
 * person is reading: on a terminal, `auto` prints them human-readable, so
 * `locus up` does not bury its banner under JSON.
 */
import { isatty } from 'node:tty';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

/** The logger type used across Locus (pino's). */
export type Logger = PinoLogger;

/** How log lines are written: JSON, human-readable, or pretty on a terminal and JSON elsewhere. */
export type LogFormat = 'auto' | 'json' | 'pretty';

/** Options for the root logger. */
export interface LoggerOptions {
  readonly level?: string;
  /** Where logs go: stderr (default) keeps stdout clean for command output. */
  readonly destination?: 1 | 2;
  /** Default auto; LOCUS_LOG_FORMAT overrides it. */
  readonly format?: LogFormat;
  /** Append logs to this file instead of the destination (auto is then JSON: a file is not a terminal). */
  readonly file?: string;
}

/** Parse a log format name (flag or LOCUS_LOG_FORMAT); undefined when it is not one. */
export function parseLogFormat(value: string | undefined): LogFormat | undefined {
  return value === 'auto' || value === 'json' || value === 'pretty' ? value : undefined;
}

/** The format actually used on a file descriptor: auto becomes pretty on a terminal, JSON elsewhere. */
export function effectiveLogFormat(format: LogFormat, fd: number): 'json' | 'pretty' {
  if (format !== 'auto') return format;
  return isatty(fd) ? 'pretty' : 'json';
}

/** Create the root logger. LOCUS_LOG_LEVEL overrides the level, LOCUS_LOG_FORMAT the format. */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = process.env['LOCUS_LOG_LEVEL'] ?? options.level ?? 'info';
  const fd = options.destination ?? 2;
  const wanted = parseLogFormat(process.env['LOCUS_LOG_FORMAT']) ?? options.format ?? 'auto';
  const format = options.file !== undefined ? (wanted === 'auto' ? 'json' : wanted) : effectiveLogFormat(wanted, fd);
  const sink = options.file !== undefined ? pino.destination({ dest: options.file, sync: true, mkdir: true, append: true }) : pino.destination({ fd, sync: true });
  return pino({ name, level, base: { pid: process.pid } }, format === 'pretty' ? prettyStream(sink) : sink);
}

/** A logger that drops everything (tests, quiet CLIs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
// Fields every line carries or that are shown in the prefix, not repeated as key=value.
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'component']);

/**
 * One pino JSON line as a person reads it:
 * `12:04:05 WARN  [mesos] disconnected from the master reason="..." willRetry=true`.
 * Lines that are not pino's JSON pass through unchanged.
 */
export function formatPrettyLine(line: string): string {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return line;
  const rec = o as Record<string, unknown>;
  const t = typeof rec['time'] === 'number' ? new Date(rec['time']) : new Date();
  const hh = (n: number): string => String(n).padStart(2, '0');
  const when = `${hh(t.getHours())}:${hh(t.getMinutes())}:${hh(t.getSeconds())}`;
  const level = (typeof rec['level'] === 'number' ? LEVEL_NAMES[rec['level']] : undefined) ?? String(rec['level'] ?? '');
  const component = typeof rec['component'] === 'string' ? ` [${rec['component']}]` : '';
  const msg = typeof rec['msg'] === 'string' ? rec['msg'] : '';
  const extras = Object.entries(rec)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`);
  return `${when} ${level.padEnd(5)}${component} ${msg}${extras.length > 0 ? ' ' + extras.join(' ') : ''}`;
}

/** A pino destination that rewrites each JSON line human-readable before writing it. */
function prettyStream(sink: DestinationStream): DestinationStream {
  return {
    write(chunk: string): void {
      // pino writes whole lines (sync destination): one record per call, newline-terminated.
      const out = chunk.split('\n').filter((l) => l !== '').map(formatPrettyLine).join('\n');
      sink.write(out + '\n');
    },
  };
}
