/**
 * Parsing of human-written sizes and durations. Sizes come out in MiB because
 * Mesos expresses `mem` and `disk` in megabytes (MiB); durations in ms.
 */
import { invalidField } from './errors.js';

const SIZE_UNITS: Record<string, number> = {
  b: 1 / (1024 * 1024),
  kb: 1000 / (1024 * 1024), kib: 1 / 1024, k: 1 / 1024,
  mb: 1e6 / (1024 * 1024), mib: 1, m: 1,
  gb: 1e9 / (1024 * 1024), gib: 1024, g: 1024,
  tb: 1e12 / (1024 * 1024), tib: 1024 * 1024, t: 1024 * 1024,
};

/**
 * Parse a size like `512MiB`, `10GiB`, `1.5G` or a bare number (MiB) into MiB.
 * `field` names the input in the error message.
 */
export function parseSizeMiB(input: string | number, field = 'size'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw invalidField(field, `must be a non-negative size, got ${input}`);
    return input;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  if (!m) throw invalidField(field, `'${input}' is not a size (examples: 512MiB, 10GiB)`);
  const unit = (m[2] ?? '').toLowerCase() || 'mib';
  const factor = SIZE_UNITS[unit];
  if (factor === undefined) throw invalidField(field, `unknown size unit '${m[2]}' (use B, KiB, MiB, GiB, TiB)`);
  const value = Number(m[1]) * factor;
  if (!Number.isFinite(value)) throw invalidField(field, `'${input}' is too large`);
  return value;
}

/**
 * Parse a size that Mesos will hold as `mem` or `disk` (a volume, a reservation, a task's
 * resources) into a whole number of MiB. An amount between whole MiB (`1GB` is 953.67 MiB,
 * `1.5MiB`) is rounded up, as a storage request is: the task or volume gets at least what was
 * asked, and the record shows the size held. An amount under 1 MiB other than 0 (`1B`, `0.5`) is
 * refused with the field named: rounded up it would become a 1 MiB volume or limit the request
 * never said, and left as it was, a task's `mem: 1B` became a limit no process fits in.
 */
export function parseWholeMiB(input: string | number, field = 'size'): number {
  const mib = parseSizeMiB(input, field);
  if (Number.isInteger(mib)) return mib;
  if (mib < 1) {
    const exact = mib < 0.01 ? 'less than 0.01 MiB' : `${Number(mib.toFixed(2))} MiB`;
    throw invalidField(field, `'${input}' is ${exact}: Mesos counts mem and disk in whole MiB, so a size is 0 or at least 1MiB`);
  }
  // A product of decimal units lands a hair above a whole number (1e6 / 2^20 * 2^20...): rounded
  // to the micro-MiB first so that such a size is not pushed a whole MiB up.
  return Math.ceil(Math.round(mib * 1e6) / 1e6);
}

/** Format MiB for people: `512MiB`, `10GiB`. */
export function formatMiB(mib: number): string {
  if (mib >= 1024 && Number.isInteger(mib / 1024)) return `${mib / 1024}GiB`;
  if (Number.isInteger(mib)) return `${mib}MiB`;
  return `${mib.toFixed(1)}MiB`;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parse a duration like `250ms`, `10s`, `5m`, `1h30m` or a bare number (seconds) into ms. */
export function parseDurationMs(input: string | number, field = 'duration'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw invalidField(field, `must be a non-negative duration, got ${input}`);
    return input * 1000;
  }
  const text = input.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? 's'] ?? 1000);
    consumed = re.lastIndex;
  }
  if (consumed !== text.length || text.length === 0) {
    throw invalidField(field, `'${input}' is not a duration (examples: 500ms, 10s, 5m, 1h)`);
  }
  return total;
}
