/**
 * `locus doctor`: checks what this machine gives Locus and says why. Each
 * check is a small function returning a result; add new ones to CHECKS.
 */
import { detectIsolation } from '../../executor/isolation/index.js';
import { parseCommand } from '../args.js';

/** The outcome of one check. */
export interface CheckResult {
  readonly name: string;
  /** ok: fully supported; warn: works in a reduced way; fail: Locus cannot do this here. */
  readonly status: 'ok' | 'warn' | 'fail';
  readonly summary: string;
  readonly details: readonly string[];
}

/** One check of the machine. */
export type Check = () => Promise<CheckResult>;

/** Which isolation containers get here: linux (namespaces + cgroups) or plain processes. */
export async function isolationCheck(): Promise<CheckResult> {
  const r = await detectIsolation();
  if (r.kind === 'linux') {
    return {
      name: 'isolation',
      status: 'ok',
      summary: `linux (cgroups ${r.cgroups}; namespaces ${r.namespaces.join(', ')})`,
      details: r.notes,
    };
  }
  return { name: 'isolation', status: 'warn', summary: 'process: containers are NOT isolated (plain processes with rlimits)', details: r.notes };
}

/** Every check `locus doctor` runs, in order. */
export const CHECKS: readonly Check[] = [isolationCheck];

const HELP = `usage: locus doctor [--json]

Check what this machine supports (isolation: namespaces, cgroups, users) and why.

options:
  --json   print the results as JSON
`;

/** Entry point of `locus doctor`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, { json: { type: 'boolean' } } as const, HELP, false);
  if (!parsed) return 0;
  const results: CheckResult[] = [];
  for (const check of CHECKS) {
    try {
      results.push(await check());
    } catch (err) {
      results.push({ name: check.name, status: 'fail', summary: `the check failed: ${(err as Error).message}`, details: [] });
    }
  }
  if (parsed.values.json === true) {
    process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  } else {
    for (const r of results) {
      process.stdout.write(`[${r.status}] ${r.name}: ${r.summary}\n`);
      for (const d of r.details) process.stdout.write(`       ${d}\n`);
    }
  }
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}
