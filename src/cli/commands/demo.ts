/** `locus demo`: the two-stage word count on the embedded local cluster. */
import { join } from 'node:path';
import { parseCommand, intFlag, CliUsageError } from '../args.js';
import { createLogger } from '../../obs/log.js';
import { runDemo } from '../../app/demo.js';
import { defaultStateDir } from '../../app/config.js';
import { redisServerAvailable, REDIS_INSTALL_HINT } from '../../app/redis-server.js';

const HELP = `usage: locus demo [--state-dir ~/.locus/demo] [--agents 3] [--files 12] [--hosts netns [--link-rate 100mbit]]

Starts Redis, the local cluster and the framework in this process, lays out sample text across the
agents with 2 replicas, runs a two-stage word count (map over the files, then reduce), shows progress,
and prints the top words, the node-local fraction and the elapsed time.

--hosts netns runs each agent on its own separate host (a network namespace with a private disk and
a rate-limited link; needs root), keeps stage outputs on the hosts (shared-outputs false), and also
prints the bytes that crossed the links.`;

const OPTIONS = {
  'state-dir': { type: 'string' }, agents: { type: 'string' }, files: { type: 'string' }, verbose: { type: 'boolean' },
  hosts: { type: 'string' }, 'link-rate': { type: 'string' },
} as const;

/** Run `locus demo`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, OPTIONS, HELP, false);
  if (!parsed) return 0;
  if (!redisServerAvailable()) {
    process.stderr.write(`locus: ${REDIS_INSTALL_HINT}\n`);
    return 1;
  }
  const logger = createLogger('locus', { level: parsed.values.verbose ? 'info' : 'warn' });
  if (parsed.values.hosts !== undefined) {
    if (parsed.values.hosts !== 'netns') throw new CliUsageError(`--hosts must be netns, got '${parsed.values.hosts}'`);
    const { netnsUnavailable, runHostsDemo } = await import('../../app/demo-hosts.js');
    const why = netnsUnavailable();
    if (why !== undefined) {
      process.stderr.write(`locus: ${why}\n`);
      return 1;
    }
    await runHostsDemo({
      stateDir: parsed.values['state-dir'] ?? join(defaultStateDir(), 'demo'),
      hosts: intFlag(parsed.values.agents, 'agents', 3, 1),
      files: intFlag(parsed.values.files, 'files', 12, 1),
      ...(parsed.values['link-rate'] !== undefined ? { rate: parsed.values['link-rate'] } : {}),
      logger,
    });
    return 0;
  }
  if (parsed.values['link-rate'] !== undefined) throw new CliUsageError('--link-rate needs --hosts netns');
  await runDemo({
    stateDir: parsed.values['state-dir'] ?? join(defaultStateDir(), 'demo'),
    agents: intFlag(parsed.values.agents, 'agents', 3, 1),
    files: intFlag(parsed.values.files, 'files', 12, 1),
    logger,
  });
  return 0;
}
