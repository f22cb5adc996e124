/** `locus up`: Redis, the local cluster, the framework and its APIs in one process. */
import { parseCommand, intFlag } from '../args.js';
import { createLogger, effectiveLogFormat, parseLogFormat } from '../../obs/log.js';
import { startUp } from '../../app/up.js';
import { redisServerAvailable, REDIS_INSTALL_HINT } from '../../app/redis-server.js';
import { defaultStateDir } from '../../app/config.js';

const HELP = `usage: locus up [--http-port 8080] [--grpc-port 9090] [--master-port 5050] [--agents 3] [--racks 2]
                 [--redis URL] [--state-dir ~/.locus] [--isolation auto|linux|process] [--tenants-file FILE]
                 [--log-format auto|json|pretty] [--log-file FILE]

Starts everything on this machine: a Redis server (AOF on, data under the state dir) unless --redis
is given, the embedded local Mesos cluster, the framework, the HTTP API and the gRPC API.
Prints the URLs and the admin token; Ctrl-C stops everything cleanly.

Logs go to stderr: human-readable on a terminal, JSON lines otherwise (--log-format or
LOCUS_LOG_FORMAT chooses). --log-file FILE sends them to FILE instead (JSON unless
--log-format pretty), and the banner names it.`;

const OPTIONS = {
  'http-port': { type: 'string' }, 'grpc-port': { type: 'string' }, 'master-port': { type: 'string' },
  agents: { type: 'string' }, racks: { type: 'string' }, redis: { type: 'string' }, 'state-dir': { type: 'string' },
  isolation: { type: 'string' }, 'tenants-file': { type: 'string' }, 'admin-token': { type: 'string' },
  'log-format': { type: 'string' }, 'log-file': { type: 'string' },
} as const;

/** Run `locus up`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, OPTIONS, HELP, false);
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.redis && !redisServerAvailable()) {
    process.stderr.write(`locus: ${REDIS_INSTALL_HINT}\n`);
    return 1;
  }
  const isolation = v.isolation ?? 'auto';
  if (isolation !== 'auto' && isolation !== 'linux' && isolation !== 'process') {
    process.stderr.write(`locus: --isolation must be auto, linux or process, got '${isolation}'\n`);
    return 2;
  }
  const format = parseLogFormat(v['log-format'] ?? 'auto');
  if (format === undefined) {
    process.stderr.write(`locus: --log-format must be auto, json or pretty, got '${v['log-format'] ?? ''}'\n`);
    return 2;
  }
  const logFile = v['log-file'];
  // The banner is for a person; on a terminal the log lines around it must be readable too.
  const logger = createLogger('locus', { format, ...(logFile !== undefined ? { file: logFile } : {}) });
  const logsLine = logFile !== undefined
    ? `logs:        ${logFile}`
    : `logs:        stderr (${effectiveLogFormat(parseLogFormat(process.env['LOCUS_LOG_FORMAT']) ?? format, 2)}; --log-file FILE to keep them apart)`;
  const up = await startUp({
    logger,
    httpPort: intFlag(v['http-port'], 'http-port', 8080),
    grpcPort: intFlag(v['grpc-port'], 'grpc-port', 9090),
    masterPort: intFlag(v['master-port'], 'master-port', 5050),
    agents: intFlag(v.agents, 'agents', 3, 1),
    racks: intFlag(v.racks, 'racks', 2, 1),
    stateDir: v['state-dir'] ?? defaultStateDir(),
    isolation,
    ...(v.redis ? { redis: v.redis } : {}),
    ...(v['admin-token'] ? { adminToken: v['admin-token'] } : {}),
    extra: { ...(v['tenants-file'] ? { 'tenants-file': v['tenants-file'] } : {}) },
  });
  process.stdout.write([
    `master:      ${up.cluster.masterUrl}`,
    `redis:       ${up.redisUrl}`,
    `http api:    ${up.framework.httpUrl}   (docs: ${up.framework.httpUrl}/docs)`,
    `grpc api:    ${up.framework.grpcAddress}`,
    `work dir:    ${up.workDir}   (datasets: locus data put SRC local://NAME/ --work-dir ${up.workDir}/local)`,
    `admin token: ${up.framework.adminToken}`,
    logsLine,
    '',
    `Try: export LOCUS_SERVER=${up.framework.httpUrl} LOCUS_TOKEN=${up.framework.adminToken}`,
    '     locus submit examples/wordcount.yaml --watch',
    'Ctrl-C stops everything.',
    '',
  ].join('\n'));
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.stderr.write('locus: stopping...\n');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  const report = await up.stop();
  if (report.abandoned.length > 0 || report.reason !== undefined) {
    // As for `locus framework`: an unclean stop says what it gave up, exits 1, and does not wait for
    // clients that keep reconnecting to a Redis that is gone.
    const parts = [...(report.abandoned.length > 0 ? [`abandoned: ${report.abandoned.join(', ')}`] : []), ...(report.reason !== undefined ? [report.reason] : [])];
    process.stderr.write(`locus: stopped uncleanly: ${parts.join('; ')}\n`);
    process.exit(1);
  }
  // Everything was stopped; a stray handle (a keep-alive socket, a reconnect timer of a client
  // that outlived its owner) must not keep the process alive after a clean stop.
  setTimeout(() => process.exit(0), 500).unref();
  return 0;
}
