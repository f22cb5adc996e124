/** Small helpers for status reporting shared by the agent and its HTTP API. */
import { randomBytes } from 'node:crypto';
import type { ContainerExit } from '../../executor/isolation/types.js';

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15 };

/** The raw wait status the genuine agent reports as `exit_status`. */
export function waitStatus(exit: ContainerExit): number | undefined {
  if (exit.exitCode !== null) return exit.exitCode << 8;
  if (exit.signal !== null) return SIGNAL_NUMBERS[exit.signal] ?? 9;
  return undefined;
}

/** A fresh status-update uuid (16 random bytes, base64 as on the wire). */
export function newUuid(): string {
  return randomBytes(16).toString('base64');
}

