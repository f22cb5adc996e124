/** `locus demo`: the two-stage word count on the embedded local cluster. */
import { join } from 'node:path';
import { parseCommand, intFlag } from '../args.js';
import { createLogger } from '../../obs/log.js';
import { runDemo } from '../../app/demo.js';
import { defaultStateDir } from '../../app/config.js';
import { redisServerAvailable, REDIS_INSTALL_HINT } from '../../app/redis-server.js';

const HELP = `usage: locus demo [--state-dir ~/.locus/demo] [--agents 3] [--files 12]

Starts Redis, the local cluster and the framework in this process, lays out sample text across the
agents with 2 replicas, runs a two-stage word count (map over the files, then reduce), shows progress,
and prints the top words, the node-local fraction and the elapsed time.`;

const OPTIONS = { 'state-dir': { type: 'string' }, agents: { type: 'string' }, files: { type: 'string' }, verbose: { type: 'boolean' } } as const;

/** Run `locus demo`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, OPTIONS, HELP, false);
  if (!parsed) return 0;
  if (!redisServerAvailable()) {
    process.stderr.write(`locus: ${REDIS_INSTALL_HINT}\n`);
    return 1;
  }
  const logger = createLogger('locus', { level: parsed.values.verbose ? 'info' : 'warn' });
  await runDemo({
    stateDir: parsed.values['state-dir'] ?? join(defaultStateDir(), 'demo'),
    agents: intFlag(parsed.values.agents, 'agents', 3, 1),
    files: intFlag(parsed.values.files, 'files', 12, 1),
    logger,
  });
  return 0;
}
