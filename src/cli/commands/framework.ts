/** `locus framework`: the framework and its APIs on an existing Mesos master (embedding mode). */
import { parseCommand } from '../args.js';
import { LocusError } from '../../core/errors.js';
import { createLogger } from '../../obs/log.js';
import { FRAMEWORK_OPTION_NAMES, readConfigFile, resolveSettings, type FrameworkOptionName } from '../../app/config.js';
import { startFramework, type RunningFramework } from '../../app/framework.js';
import type { FrameworkSettings } from '../../app/config.js';
import type { Logger } from '../../obs/log.js';
import { LeaderElection } from '../../app/leadership.js';
import { startStandbyFront } from '../../app/standby.js';

const HELP = `usage: locus framework --master <http://host:5050 | zk://host:2181/mesos> --redis URL
                        [--role R] [--principal P --secret-file F] [--ca-file F]
                        [--http-port 8080] [--grpc-port 9090] [--config FILE] [options]

Runs the Locus framework with its HTTP and gRPC APIs on an existing Mesos master.
Every option can also come from the config file (YAML keys = option names) and from
LOCUS_<OPTION> environment variables (e.g. LOCUS_MASTER, LOCUS_HTTP_PORT); flags win.
Run 'locus doctor --master URL --redis URL' first: it checks this machine and both addresses.

options:
  --framework-name NAME        (default locus)       --failover-timeout 7d
  --tenants-file FILE          tenants, roles, weights, quotas, token hashes
  --admin-token HEX            (default: generated and printed)
  --state-dir DIR              (default ~/.locus)    --http-host 127.0.0.1
  --executor-image IMAGE | --executor-uri URI [--executor-command CMD]
  --executor-cpus 0.1 --executor-mem 128MiB   the executor process's own share, on top of its tasks
  --executor-idle-timeout 60s
  --executor-start-give-up 60s   jobs fail once executors have failed to start everywhere this long
  --input-storage-give-up 10m   a stage waits this long for its inputs' storage (unreachable, 5xx) before its job fails
  --isolation auto|linux|process
  --locality-wait-node 3s --locality-wait-rack 3s
  --host-map FILE --gluster-mounts VOL=DIR,...
  --hdfs-user USER (default: this process's user) --hdfs-delegation-token-file FILE
  --ceph-conf FILE --ceph-id ID --cephfs-mount DIR
  --max-pending-tasks 2000000 --max-tasks-per-job 1000000   admission limits (per tenant / per stage)
  --log-level info --log-format auto|json|pretty (auto: pretty on a terminal, JSON otherwise)
  --stop-timeout 5s            on SIGTERM, what is not finished by then is abandoned (exit 1)
  --ha zk://host:2181/locus    run as one of several instances: one leads, the others stand by
                               and forward the APIs to it; a leader that loses the lead exits 3
                               (run under a supervisor that restarts it: it comes back as a standby)
  --ha-session-timeout 10s     ZooKeeper session: a dead leader is replaced after about this long`;

/** Exit code of an instance that lost the lead (fenced or its ZooKeeper session gone). */
export const EXIT_LOST_LEADERSHIP = 3;

const OPTIONS = Object.fromEntries(FRAMEWORK_OPTION_NAMES.map((n) => [n, { type: 'string' }])) as Record<FrameworkOptionName, { type: 'string' }>;

/** Run `locus framework`. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, OPTIONS, HELP, false);
  if (!parsed) return 0;
  const file = parsed.values.config ? readConfigFile(parsed.values.config) : {};
  const settings = resolveSettings(parsed.values, file);
  const logger = createLogger('locus', { level: settings.logLevel, format: settings.logFormat });
  if (settings.ha !== undefined) return await runHa(settings, settings.ha, logger);
  const fw = await startFramework(settings, { logger });
  process.stdout.write(`http api:    ${fw.httpUrl}\ngrpc api:    ${fw.grpcAddress}\nadmin token: ${fw.adminToken}\n`);
  logger.info({ master: settings.master }, 'framework started; subscribing');
  return await serve(fw, settings, undefined);
}

/** Whether the process was asked to stop (first SIGINT or SIGTERM). */
const signalled = new Promise<void>((resolve) => {
  const once = (): void => resolve();
  process.once('SIGINT', once);
  process.once('SIGTERM', once);
});

/**
 * `--ha`: stand by (forwarding the APIs to the leader) until elected, then run the framework
 * on the same ports until a signal, a refusal by the master, or the loss of the lead.
 */
async function runHa(settings: FrameworkSettings, ha: string, logger: Logger): Promise<number> {
  let election: LeaderElection | undefined;
  const front = await startStandbyFront({
    host: settings.httpHost, httpPort: settings.httpPort, grpcPort: settings.grpcPort, logger,
    leader: () => election?.leader(),
  });
  election = new LeaderElection({ url: ha, sessionTimeoutMs: settings.haSessionTimeoutMs, me: { httpUrl: front.httpUrl, grpcAddress: front.grpcAddress }, logger });
  process.stdout.write(`http api:    ${front.httpUrl}\ngrpc api:    ${front.grpcAddress}\nrole:        standby\n`);
  await election.start();
  const first = await Promise.race([election.waitForLeadership().then(() => 'elected' as const), signalled.then(() => 'signal' as const)]);
  if (first === 'signal') {
    await election.close();
    await front.close();
    setTimeout(() => process.exit(0), 500).unref();
    return 0;
  }
  const lost = new Promise<string>((resolve) => election?.on('lost', resolve));
  await front.close();
  // Same ports: clients and the other instances keep the addresses they know.
  const fw = await startFramework({ ...settings, httpPort: front.httpPort, grpcPort: front.grpcPort }, { logger });
  process.stdout.write(`role:        leader (epoch ${fw.epoch})\nadmin token: ${fw.adminToken}\n`);
  logger.info({ master: settings.master, epoch: fw.epoch }, 'elected: framework started; subscribing');
  const code = await serve(fw, settings, lost);
  await election.close();
  return code;
}

/** Run until stopped, then stop within the budget; returns (or exits with) the exit code. */
async function serve(fw: RunningFramework, settings: FrameworkSettings, lost: Promise<string> | undefined): Promise<number> {
  // The master can refuse this framework for good (torn down, failover timeout passed, principal
  // or role refused): the client then stops, and so does the process, with the master's words.
  // A newer leader's epoch (fence) or a lost ZooKeeper session ends this one's term the same way.
  // Why this instance's term ended, when it did: fenced by a newer epoch, its ZooKeeper session
  // gone, or the master saying another scheduler took this FrameworkID over ("failed over").
  let lostLead: string | undefined;
  void fw.fenced.then((reason) => { lostLead ??= reason; });
  void lost?.then((reason) => { lostLead ??= reason; });
  const refused = await new Promise<Error | undefined>((resolve) => {
    void signalled.then(() => resolve(undefined));
    fw.client.on('error', (err) => resolve(err));
    const failed = fw.client.fatalError;
    if (failed) resolve(failed);
    void fw.fenced.then((reason) => resolve(new LostLeadership(`lost the lead: ${reason}`)));
    void lost?.then((reason) => resolve(new LostLeadership(`lost the lead: ${reason}`)));
  });
  // A second signal while stopping means "now": the operator has waited enough.
  const now = (): void => {
    process.stderr.write('locus framework: stop interrupted by a second signal; exiting without finishing it\n');
    process.exit(1);
  };
  process.once('SIGINT', now);
  process.once('SIGTERM', now);
  // The stop itself is bounded (app/framework.ts); this guard only catches a step that blocks
  // the bounded stop from returning at all, so the process always ends.
  const guard = setTimeout(() => {
    process.stderr.write(`locus framework: stop did not return within ${settings.stopTimeoutMs + 5_000} ms; exiting\n`);
    process.exit(1);
  }, settings.stopTimeoutMs + 5_000);
  guard.unref();
  const report = await fw.stop({ budgetMs: settings.stopTimeoutMs });
  clearTimeout(guard);
  let code = 0;
  if (report.abandoned.length > 0 || report.reason !== undefined) {
    // Not a clean stop: say what was given up, so the operator knows the next start has to recover it.
    const parts = [
      ...(report.abandoned.length > 0 ? [`abandoned after ${settings.stopTimeoutMs} ms: ${report.abandoned.join(', ')}`] : []),
      ...(report.reason !== undefined ? [`${report.reason}; state writes queued for it were dropped`] : []),
    ];
    process.stderr.write(`locus framework: stopped uncleanly: ${parts.join('; ')}. Tasks keep running on Mesos; the next start reconciles them.\n`);
    code = 1;
  }
  if (refused) {
    process.stderr.write(`locus framework: stopped: ${refused.message}\n`);
    if (/failed over/i.test(refused.message)) lostLead ??= refused.message;
    code = lostLead !== undefined || refused instanceof LostLeadership || (refused instanceof LocusError && refused.code === 'NOT_LEADER') ? EXIT_LOST_LEADERSHIP : 1;
    if (code === EXIT_LOST_LEADERSHIP) process.stderr.write(`locus framework: lost the lead (${lostLead ?? refused.message}); exiting ${EXIT_LOST_LEADERSHIP} so a supervisor restarts this instance as a standby\n`);
  }
  // Abandoned steps leave reconnecting clients behind: they would keep the process alive, so
  // it exits here rather than when they give up (never, for Redis).
  if (code !== 0) process.exit(code);
  // A clean stop: a stray handle must not keep the process alive either.
  setTimeout(() => process.exit(0), 500).unref();
  return code;
}

/** The reason a leader's term ended. */
class LostLeadership extends Error {}
