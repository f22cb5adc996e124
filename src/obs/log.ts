/**
 * Structured logging. Every module takes a Logger so tests can silence it and
 * the app can bind job and task ids into child loggers.
 */
import { pino, type Logger as PinoLogger } from 'pino';

/** The logger type used across Locus (pino's). */
export type Logger = PinoLogger;

/** Options for the root logger. */
export interface LoggerOptions {
  readonly level?: string;
  /** Where logs go: stderr (default) keeps stdout clean for command output. */
  readonly destination?: 1 | 2;
}

/** Create the root logger. LOCUS_LOG_LEVEL overrides the level. */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = process.env['LOCUS_LOG_LEVEL'] ?? options.level ?? 'info';
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: options.destination ?? 2, sync: true }));
}

/** A logger that drops everything (tests, quiet CLIs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
