/** `locus framework`: the framework and its APIs on an existing Mesos master (embedding mode). */
import { parseCommand } from '../args.js';
import { createLogger } from '../../obs/log.js';
import { readConfigFile, resolveSettings } from '../../app/config.js';
import { startFramework } from '../../app/framework.js';

const HELP = `usage: locus framework --master <http://host:5050 | zk://host:2181/mesos> --redis URL
                        [--role R] [--principal P --secret-file F] [--ca-file F]
                        [--http-port 8080] [--grpc-port 9090] [--config FILE] [options]

Runs the Locus framework with its HTTP and gRPC APIs on an existing Mesos master.
Every option can also come from the config file (YAML keys = option names) and from
LOCUS_<OPTION> environment variables (e.g. LOCUS_MASTER, LOCUS_HTTP_PORT); flags win.

options:
  --framework-name NAME        (default locus)       --failover-timeout 7d
  --tenants-file FILE          tenants, roles, weights, quotas, token hashes
  --admin-token HEX            (default: generated and printed)
  --state-dir DIR              (default ~/.locus)    --http-host 127.0.0.1
  --executor-image IMAGE | --executor-uri URI [--executor-command CMD]
  --executor-cpus 2 --executor-mem 2GiB --executor-idle-timeout 60s
  --isolation auto|linux|process
  --locality-wait-node 3s --locality-wait-rack 3s
  --host-map FILE --hdfs-user USER --ceph-conf FILE --cephfs-mount DIR --gluster-mounts VOL=DIR,...
  --max-pending-tasks 2000000 --max-tasks-per-job 1000000   admission limits (per tenant / per stage)
  --log-level info`;

const S = { type: 'string' } as const;
const OPTIONS = {
  master: S, redis: S, role: S, principal: S, secret: S, 'secret-file': S, 'ca-file': S, 'http-port': S, 'grpc-port': S,
  'http-host': S, config: S, 'framework-name': S, 'failover-timeout': S, 'tenants-file': S, 'admin-token': S, 'state-dir': S,
  'executor-image': S, 'executor-uri': S, 'executor-command': S, 'executor-main': S, 'executor-cpus': S, 'executor-mem': S,
  'executor-idle-timeout': S, isolation: S, 'locality-wait-node': S, 'locality-wait-rack': S, 'host-map': S,
  'hdfs-user': S, 'ceph-conf': S, 'cephfs-mount': S, 'gluster-mounts': S, 'local-work-dir': S, 'log-level': S,
  'max-pending-tasks': S, 'max-tasks-per-job': S,
} as const;

/** Run `locus framework`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, OPTIONS, HELP, false);
  if (!parsed) return 0;
  const file = parsed.values.config ? readConfigFile(parsed.values.config) : {};
  const settings = resolveSettings(parsed.values, file);
  const logger = createLogger('locus', { level: settings.logLevel });
  const fw = await startFramework(settings, { logger });
  process.stdout.write(`http api:    ${fw.httpUrl}\ngrpc api:    ${fw.grpcAddress}\nadmin token: ${fw.adminToken}\n`);
  logger.info({ master: settings.master }, 'framework started; subscribing');
  // The master can refuse this framework for good (torn down, failover timeout passed, principal
  // or role refused): the client then stops, and so does the process, with the master's words.
  const refused = await new Promise<Error | undefined>((resolve) => {
    process.once('SIGINT', () => resolve(undefined));
    process.once('SIGTERM', () => resolve(undefined));
    fw.client.on('error', (err) => resolve(err));
    const failed = fw.client.fatalError;
    if (failed) resolve(failed);
  });
  await fw.stop();
  if (refused) {
    process.stderr.write(`locus framework: stopped: ${refused.message}\n`);
    return 1;
  }
  return 0;
}
