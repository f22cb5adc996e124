/**
 * Argument parsing shared by every subcommand: a thin layer over
 * node:util.parseArgs that turns its errors into messages naming the flag,
 * and reads defaults from LOCUS_* environment variables.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { closest } from '../core/suggest.js';
import { parseDurationMs } from '../core/units.js';

/** A usage error: printed as `locus: <message>`, exit status 2. */
export class CliUsageError extends Error {
  /** `field`: the flag at fault, without dashes, when one is (for callers that test it). */
  constructor(message: string, readonly field?: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** The parsed command line. */
export interface Parsed<O extends Options> {
  readonly values: { [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : O[K] extends { multiple: true } ? string[] : string };
  readonly positionals: string[];
}

/**
 * Parse argv for one command. `--help` prints `help` and yields undefined so
 * the caller returns 0. Flags not given fall back to LOCUS_<FLAG_NAME> env vars.
 */
export function parseCommand<O extends Options>(argv: string[], options: O, help: string, allowPositionals = true): Parsed<O> | undefined {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help.trimEnd() + '\n');
    return undefined;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    // Node's own text for an unknown flag ("Unknown option '--wacth'. To specify a positional
    // argument starting with a '-', place it at the end of the command after '--' …") talks
    // about positionals nobody meant; a typo is the usual cause, so name the flag it is near.
    const unknown = /^Unknown option '([^']+)'/.exec((err as Error).message)?.[1];
    if (unknown !== undefined) {
      const near = closest(unknown.replace(/^-+/, ''), Object.keys(options));
      throw new CliUsageError(`unknown option '${unknown}'${near === undefined ? '' : ` (did you mean --${near}?)`}\n${help.trimEnd()}`, unknown.replace(/^-+/, ''));
    }
    throw new CliUsageError(`${(err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, '')}\n${help.trimEnd()}`);
  }
  // LOCUS_CLI_PARSE_ONLY=1 stops after a successful parse: the docs test uses
  // it to check that every `locus …` line in docs/ is a valid command.
  if (process.env['LOCUS_CLI_PARSE_ONLY'] === '1') {
    process.stdout.write('parsed\n');
    process.exit(0);
  }
  const values = { ...parsed.values } as Record<string, unknown>;
  for (const [name, spec] of Object.entries(options)) {
    if (values[name] !== undefined) continue;
    const env = process.env[`LOCUS_${name.toUpperCase().replace(/-/g, '_')}`];
    if (env === undefined || env === '') continue;
    values[name] = spec.type === 'boolean' ? env === '1' || env.toLowerCase() === 'true' : spec.multiple ? env.split(',') : env;
  }
  return { values: values as Parsed<O>['values'], positionals: parsed.positionals };
}

/** A required flag's value, or a usage error naming it. */
export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new CliUsageError(`--${flag} is required`);
  return value;
}

/** An integer flag, or a usage error naming it. */
export function intFlag(value: string | undefined, flag: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  // Decimal digits only: Number() would read '' and ' ' as 0 (so `--http-port ''` started
  // servers on a random port), and '0x10' or '1e3' as numbers nobody meant.
  const n = /^[0-9]{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min) throw new CliUsageError(`--${flag} must be an integer >= ${min}, got '${value}'`, flag);
  return n;
}

/**
 * A duration flag that must be more than zero (a wait), or a usage error
 * naming it: a wait of 0 can only fail, and did so with the reason of a wait
 * that ran out ("no leading master found" of an http:// master).
 */
export function waitFlag(value: string | undefined, flag: string, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  let ms: number;
  try {
    ms = parseDurationMs(value, `--${flag}`);
  } catch (err) {
    throw new CliUsageError((err as Error).message, flag);
  }
  if (ms <= 0) throw new CliUsageError(`--${flag} must be more than 0, got '${value}'`, flag);
  return ms;
}
