/**
 * Framework settings: one typed object built from (in order of precedence)
 * command-line flags, LOCUS_* environment variables, a YAML/JSON config file
 * whose keys are the flag names, and defaults. Errors name the key.
 */
import { DEFAULT_EXECUTOR_STARTS } from '../scheduler/executor-starts.js';
import { DEFAULT_JOB_RETENTION_MS } from '../scheduler/jobs/retention.js';
import { DEFAULT_INPUT_STORAGE_GIVE_UP_MS } from '../scheduler/jobs/input-waits.js';
import { homedir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { LocusError, invalidField } from '../core/errors.js';
import { isObject } from '../core/decode.js';
import { parseDurationMs, parseSizeMiB } from '../core/units.js';
import type { IsolationMode } from '../executor/isolation/types.js';
import { decodeHostMap, fullFormHostMap, type HostMapConfig } from '../storage/hostmap.js';
import type { LogFormat } from '../obs/log.js';

/**
 * Every option `locus framework` knows, by flag name. A config file may hold
 * exactly these keys: an unknown key is an error naming it, because an option
 * silently ignored (a typo, or one a newer guide describes) is a promise the
 * operator believes kept.
 */
export const FRAMEWORK_OPTION_NAMES = [
  'master', 'redis', 'role', 'principal', 'secret', 'secret-file', 'ca-file', 'http-host', 'http-port', 'grpc-port',
  'config', 'framework-name', 'failover-timeout', 'checkpoint', 'tenants-file', 'admin-token', 'state-dir',
  'executor-image', 'executor-uri', 'executor-command', 'executor-main', 'executor-cpus', 'executor-mem',
  'executor-idle-timeout', 'executor-start-give-up', 'executor-runner', 'isolation', 'locality-wait-node', 'locality-wait-rack',
  'host-map', 'hdfs-user', 'hdfs-delegation-token-file', 'ceph-conf', 'ceph-id', 'cephfs-mount', 'gluster-mounts',
  'local-work-dir', 'log-level', 'log-format', 'max-pending-tasks', 'max-tasks-per-job', 'stop-timeout',
  'shared-outputs', 'host-output-dir', 'block-server-bind', 'ha', 'ha-session-timeout', 'allow-unisolated-tenants',
  'dispatch-window', 'executor-prefetch', 'executor-held-starts', 'executor-kept-sandboxes', 'job-retention',
  'input-storage-give-up',
] as const;

/** One option name of `locus framework`. */
export type FrameworkOptionName = (typeof FRAMEWORK_OPTION_NAMES)[number];

/** The executor's own resources (the `locus executor` process), added to its slots at launch. */
export const DEFAULT_EXECUTOR_OVERHEAD = { cpus: 0.1, memMiB: 128 } as const;

/** How executors reach agents. */
export type ExecutorDelivery =
  | { readonly kind: 'local'; readonly nodePath: string; readonly mainJs: string }
  | { readonly kind: 'uri'; readonly uri: string; readonly command: string }
  | { readonly kind: 'image'; readonly image: string };

/** Everything `locus framework` (and `locus up`) runs with. */
export interface FrameworkSettings {
  readonly master: string;
  readonly redis: string;
  readonly role: string;
  readonly frameworkName: string;
  readonly principal: string | undefined;
  readonly secret: string | undefined;
  readonly caFile: string | undefined;
  readonly failoverTimeoutSeconds: number;
  readonly httpHost: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly tenantsFile: string | undefined;
  readonly adminToken: string | undefined;
  readonly stateDir: string;
  readonly executor: ExecutorDelivery;
  /** The executor process's own cpus and memory (`executor-cpus` / `executor-mem`), on top of its slots. */
  readonly executorCpus: number;
  readonly executorMemMiB: number;
  readonly executorIdleTimeoutMs: number;
  /** How long executors must have kept failing to start everywhere before the jobs waiting for them fail (executor-starts.ts). */
  readonly executorStartGiveUpMs: number;
  /** Finished jobs are purged this long after they finished (scheduler/jobs/retention.ts); 0 keeps them. */
  readonly jobRetentionMs: number;
  /**
   * How long a stage waits for the storage of its inputs while listing them fails with transient
   * errors (scheduler/jobs/input-waits.ts) before its job fails with INPUT_STORAGE_UNAVAILABLE; 0 waits not at all.
   */
  readonly inputStorageGiveUpMs: number;
  readonly isolation: IsolationMode;
  /** Run several tenants with `isolation: process` (no namespaces: tasks see the host's world-readable files). */
  readonly allowUnisolatedTenants: boolean;
  /** How executors run attempts (`--runner`); `noop` runs nothing and exists for benchmarks only. */
  readonly executorRunner: 'auto' | 'agent' | 'isolator' | 'noop';
  readonly localityWaitNodeMs: number;
  readonly localityWaitRackMs: number;
  /** The `host-map` file, when it was given as a path (undefined when inline or absent). */
  readonly hostMapFile: string | undefined;
  /** The host map itself, read from the file or given inline in the config file. */
  readonly hostMap: HostMapConfig | undefined;
  readonly cephConf: string | undefined;
  /** The cephx user (`ceph-id`), as `client.<id>`; undefined lets the ceph CLI pick (client.admin). */
  readonly cephClientName: string | undefined;
  readonly cephfsMount: string | undefined;
  readonly glusterMounts: Readonly<Record<string, string>>;
  /** `user.name` for WebHDFS: `hdfs-user`, else the user this process runs as (what Hadoop's own clients send). */
  readonly hdfsUser: string | undefined;
  /** A WebHDFS delegation token read from `hdfs-delegation-token-file` at start (replaces user.name). */
  readonly hdfsDelegationToken: string | undefined;
  /** Work dir of the embedded local cluster, for local:// datasets. */
  readonly localWorkDir: string | undefined;
  /**
   * Whether every executor sees the output root (`shared-outputs`): then outputs are committed
   * there. Otherwise each host keeps the outputs written on it (`host-output-dir`) and serves
   * them through its executors' block servers. Undefined: shared for executors started from
   * this installation (`local` delivery), per host for `--executor-uri` and `--executor-image`.
   */
  readonly sharedOutputs: boolean | undefined;
  /** Whether the scheduler adapts how many attempts each executor has in flight (src/scheduler/dispatch-window.ts); on by default. */
  readonly dispatchWindow: boolean;
  /**
   * Whether executors take attempts beyond their slots and hold them prepared for the next slot
   * to free (src/scheduler/prefetch.ts; sent only while an executor's attempts end quickly); on by default.
   */
  readonly executorPrefetch: boolean;
  /**
   * Whether executors start prefetched attempts' containers held while they wait for a slot
   * (src/executor/start-gate.ts), where their runner allows it. `auto` (the default): only while
   * their host's CPUs idle enough for the CPU it costs to be free (src/executor/host-cpu.ts); a
   * CPU-bound host pays it in time (see the operator guide).
   */
  readonly executorHeldStarts: boolean | 'auto';
  /**
   * How many ended attempts' sandboxes each executor keeps before it removes older ones
   * (src/executor/sandbox-retention.ts); 0 keeps all. Undefined: the executor's own default
   * (1,000), and no flag, which an older executor also takes.
   */
  readonly executorKeptSandboxes: number | undefined;
  /** Where executors keep outputs on their host when outputs are not shared (one sub-directory per host name). */
  readonly hostOutputDir: string | undefined;
  /** The address executors' block servers listen on (`block-server-bind`, default 127.0.0.1). */
  readonly blockServerBind: string;
  readonly logLevel: string;
  /** Log lines as JSON, human-readable (pretty), or auto: pretty on a terminal, JSON otherwise. */
  readonly logFormat: LogFormat;
  /** How long a stop may take before what is left is abandoned (`stop-timeout`). */
  readonly stopTimeoutMs: number;
  /** `ha`: the ZooKeeper URL (`zk://h:2181/locus`) the instances elect their leader under; undefined runs one instance. */
  readonly ha: string | undefined;
  /** `ha-session-timeout`: the ZooKeeper session timeout; a dead leader is replaced this long after it stopped answering. */
  readonly haSessionTimeoutMs: number;
  /** Admission: most pending tasks one tenant may have, and most tasks in one job stage. */
  readonly maxPendingTasksPerTenant: number;
  readonly maxTasksPerJob: number;
}

/** Raw values by flag name (from parseCommand), strings or booleans. */
export type RawSettings = Readonly<Record<string, string | boolean | string[] | undefined>>;

/** Read a config file (YAML or JSON) into raw settings keyed by flag name. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new LocusError('INVALID_FIELD', `--config: cannot read ${path}: ${(err as Error).message}`, { field: 'config' });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 50 }) as unknown;
  } catch (err) {
    throw new LocusError('INVALID_FIELD', `--config ${path}: ${(err as Error).message}`, { field: 'config' });
  }
  if (doc === null || doc === undefined) return {};
  if (!isObject(doc)) throw new LocusError('INVALID_FIELD', `--config ${path}: must be a map of option: value`, { field: 'config' });
  const known: ReadonlySet<string> = new Set(FRAMEWORK_OPTION_NAMES);
  const unknown = Object.keys(doc).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new LocusError('INVALID_FIELD', `--config ${path}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (docs/operator-guide.md, section 3.2, lists them)`, { field: unknown[0] ?? 'config' });
  }
  return { ...doc };
}

/**
 * The host map from `host-map`: a path to a YAML/JSON file, or (in a config
 * file) the map itself, either `{hosts: {...}, racks: {...}}` or the short form
 * `{storage-host: agent-host, ...}` the guide shows.
 */
export function resolveHostMap(value: unknown): { map: HostMapConfig | undefined; file: string | undefined } {
  if (value === undefined || value === null || value === '') return { map: undefined, file: undefined };
  if (typeof value === 'string') {
    let text: string;
    try {
      text = readFileSync(value, 'utf8');
    } catch (err) {
      throw invalidField('host-map', `cannot read ${value}: ${(err as Error).message} (give a file path, or the map itself in the config file)`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text) as unknown;
    } catch (err) {
      throw invalidField('host-map', `${value} is not YAML or JSON: ${(err as Error).message}`);
    }
    return { map: hostMapFromDoc(doc, value), file: value };
  }
  if (isObject(value)) return { map: hostMapFromDoc(value, 'host-map (inline)'), file: undefined };
  throw invalidField('host-map', 'must be a file path or a map of storage host: agent host');
}

function hostMapFromDoc(doc: unknown, source: string): HostMapConfig {
  if (doc === null || doc === undefined) return {};
  if (!isObject(doc)) throw invalidField('host-map', `${source}: must be a map`);
  return decodeHostMap(fullFormHostMap(doc), source);
}

/**
 * The token of an `hdfs-delegation-token-file`: what WebHDFS's `delegation=`
 * takes is the token's URL string (Hadoop's Token.encodeToUrlString, URL-safe
 * base64), as `op=GETDELEGATIONTOKEN` answers it in `{"Token":{"urlString"}}`;
 * that answer saved as is is taken too. `hdfs fetchdt` writes a binary
 * credentials file instead: sent as text, the NameNode refuses it as an
 * invalid token and nothing says why, so it is refused here, saying what to give.
 */
export function decodeDelegationToken(raw: Buffer, file: string): string {
  if (raw.subarray(0, 4).toString('latin1') === 'HDTS') {
    throw invalidField('hdfs-delegation-token-file', `${file} is a Hadoop credentials file (as 'hdfs fetchdt' writes), not a token's URL string: save the urlString of 'curl "http://<namenode>:9870/webhdfs/v1/?op=GETDELEGATIONTOKEN&renewer=<user>" --negotiate -u :' in it (the whole JSON answer will do)`);
  }
  let text = raw.toString('utf8').trim();
  if (text === '') throw invalidField('hdfs-delegation-token-file', `${file} is empty`);
  if (text.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(text) as unknown;
    } catch (err) {
      throw invalidField('hdfs-delegation-token-file', `${file} is not valid JSON: ${(err as Error).message}`);
    }
    const token = isObject(doc) && isObject(doc['Token']) ? doc['Token']['urlString'] : undefined;
    if (typeof token !== 'string') throw invalidField('hdfs-delegation-token-file', `${file} is JSON without Token.urlString (expected the answer of op=GETDELEGATIONTOKEN)`);
    text = token;
  }
  if (!/^[A-Za-z0-9_-]+$/.test(text)) {
    throw invalidField('hdfs-delegation-token-file', `${file} does not hold a delegation token's URL string (URL-safe base64: letters, digits, '-' and '_')`);
  }
  return text;
}

/** The name of the user this process runs as, or undefined when the system cannot say. */
export function processUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'];
  }
}

/** The directory Locus keeps its state in by default. */
export function defaultStateDir(): string {
  return process.env['LOCUS_HOME'] ?? join(homedir(), '.locus');
}

/**
 * The built entry point executors run on the local cluster: see executorEntryFor. Found next to
 * this module when running from dist/, or in the repository's dist/ when running from sources
 * (tests), which must have been built.
 */
export function defaultExecutorMain(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '../cli/main.js'), join(here, '../../dist/src/cli/main.js')];
  const built = candidates.find((c) => c.includes('/dist/') && existsSync(c));
  if (!built) throw new LocusError('UNAVAILABLE', "the built CLI (dist/src/cli/main.js) is missing: run 'npm run build'");
  return executorEntryFor(built);
}

/**
 * Which file executors start from, given the built CLI (`<dist>/src/cli/main.js`): the bundled
 * executor (`<dist>/executor.mjs`, src/cli/executor-main.ts) when it is at least as new as the
 * CLI, else the CLI itself; both take `executor <flags>`. An older bundle holds code tsc has
 * replaced since (a build that skipped scripts/bundle-executor.mjs): running it would run stale code.
 */
export function executorEntryFor(cliMain: string): string {
  const bundle = join(dirname(cliMain), '../../executor.mjs');
  try {
    if (statSync(bundle).mtimeMs >= statSync(cliMain).mtimeMs) return bundle;
  } catch {
    // Not bundled: the CLI starts executors as well, only more slowly.
  }
  return cliMain;
}

/** Merge flags over the config file and defaults into typed settings. */
export function resolveSettings(flags: RawSettings, file: Readonly<Record<string, unknown>> = {}): FrameworkSettings {
  const get = (key: string): unknown => (flags[key] !== undefined ? flags[key] : file[key]);
  const str = (key: string): string | undefined => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') throw invalidField(key, 'must be a string');
    return String(v);
  };
  const required = (key: string): string => {
    const v = str(key);
    if (v === undefined) throw invalidField(key, `is required (--${key}, LOCUS_${key.toUpperCase().replace(/-/g, '_')} or '${key}:' in the config file)`);
    return v;
  };
  const int = (key: string, fallback: number): number => {
    const v = get(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw invalidField(key, `must be a port or count, got '${String(v)}'`);
    return n;
  };
  const count = (key: string, fallback: number): number => {
    const v = get(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw invalidField(key, `must be a whole number >= 1, got '${String(v)}'`);
    return n;
  };
  /** A true/false option (YAML booleans or their strings); undefined when not given. */
  const flag = (key: string): boolean | undefined => {
    const v = get(key);
    if (v === undefined || v === '') return undefined;
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    throw invalidField(key, `must be true or false, got '${String(v)}'`);
  };
  const dur = (key: string, fallbackMs: number): number => {
    const v = get(key);
    return v === undefined ? fallbackMs : parseDurationMs(typeof v === 'number' ? v : String(v), key);
  };
  const secretFile = str('secret-file');
  let secret = str('secret');
  if (secretFile !== undefined) {
    try {
      secret = readFileSync(secretFile, 'utf8').trim();
    } catch (err) {
      throw invalidField('secret-file', `cannot read ${secretFile}: ${(err as Error).message}`);
    }
  }
  const principal = str('principal');
  if (secret !== undefined && principal === undefined) throw invalidField('principal', 'is required with a secret');
  const isolation = str('isolation') ?? 'auto';
  if (isolation !== 'auto' && isolation !== 'linux' && isolation !== 'process') throw invalidField('isolation', "must be auto, linux or process");
  const executorRunner = str('executor-runner') ?? 'auto';
  if (executorRunner !== 'auto' && executorRunner !== 'agent' && executorRunner !== 'isolator' && executorRunner !== 'noop') {
    throw invalidField('executor-runner', 'must be auto, agent, isolator or noop');
  }
  const gluster: Record<string, string> = {};
  const gm = get('gluster-mounts');
  if (isObject(gm)) for (const [k, v] of Object.entries(gm)) gluster[k] = String(v);
  else if (typeof gm === 'string') {
    for (const pair of gm.split(',').filter(Boolean)) {
      const [vol, path] = pair.split('=');
      if (!vol || !path) throw invalidField('gluster-mounts', `'${pair}' is not VOLUME=PATH`);
      gluster[vol] = path;
    }
  }
  const positive = (key: string, fallback: number): number => {
    const v = get(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw invalidField(key, `must be a number >= 0, got '${String(v)}'`);
    return n;
  };
  const checkpoint = get('checkpoint');
  // Agents always checkpoint Locus's executors (FrameworkInfo.checkpoint): executors that die
  // with an agent restart lose every attempt they run, so turning it off is refused, not ignored.
  if (checkpoint !== undefined && checkpoint !== true && checkpoint !== 'true') {
    throw invalidField('checkpoint', `Locus always asks agents to checkpoint its executors; only 'true' is accepted, got '${String(checkpoint)}'`);
  }
  const logFormat = str('log-format') ?? 'auto';
  if (logFormat !== 'auto' && logFormat !== 'json' && logFormat !== 'pretty') throw invalidField('log-format', 'must be auto, json or pretty');
  const hostMap = resolveHostMap(get('host-map'));
  const cephId = str('ceph-id');
  if (cephId !== undefined && !/^[A-Za-z0-9_.-]+$/.test(cephId)) throw invalidField('ceph-id', `'${cephId}' is not a cephx user id (e.g. locus, for client.locus)`);
  const tokenFile = str('hdfs-delegation-token-file');
  let hdfsDelegationToken: string | undefined;
  if (tokenFile !== undefined) {
    let raw: Buffer;
    try {
      raw = readFileSync(tokenFile);
    } catch (err) {
      throw invalidField('hdfs-delegation-token-file', `cannot read ${tokenFile}: ${(err as Error).message}`);
    }
    hdfsDelegationToken = decodeDelegationToken(raw, tokenFile);
  }
  const executorImage = str('executor-image');
  const executorUri = str('executor-uri');
  const executor: ExecutorDelivery = executorImage
    ? { kind: 'image', image: executorImage }
    : executorUri
      ? { kind: 'uri', uri: executorUri, command: str('executor-command') ?? './locus/bin/locus executor' }
      : { kind: 'local', nodePath: process.execPath, mainJs: str('executor-main') ?? defaultExecutorMain() };
  return {
    master: required('master'),
    redis: required('redis'),
    role: str('role') ?? 'locus',
    frameworkName: str('framework-name') ?? 'locus',
    principal,
    secret,
    caFile: str('ca-file'),
    failoverTimeoutSeconds: dur('failover-timeout', 7 * 24 * 3600 * 1000) / 1000,
    httpHost: str('http-host') ?? '127.0.0.1',
    httpPort: int('http-port', 8080),
    grpcPort: int('grpc-port', 9090),
    tenantsFile: str('tenants-file'),
    adminToken: str('admin-token'),
    stateDir: str('state-dir') ?? defaultStateDir(),
    executor,
    executorCpus: positive('executor-cpus', DEFAULT_EXECUTOR_OVERHEAD.cpus),
    executorMemMiB: str('executor-mem') === undefined ? DEFAULT_EXECUTOR_OVERHEAD.memMiB : parseSizeMiB(str('executor-mem') ?? '', 'executor-mem'),
    executorIdleTimeoutMs: dur('executor-idle-timeout', 60_000),
    executorStartGiveUpMs: dur('executor-start-give-up', DEFAULT_EXECUTOR_STARTS.giveUpAfterMs),
    jobRetentionMs: dur('job-retention', DEFAULT_JOB_RETENTION_MS),
    inputStorageGiveUpMs: dur('input-storage-give-up', DEFAULT_INPUT_STORAGE_GIVE_UP_MS),
    isolation,
    allowUnisolatedTenants: flag('allow-unisolated-tenants') ?? false,
    executorRunner,
    localityWaitNodeMs: dur('locality-wait-node', 3000),
    localityWaitRackMs: dur('locality-wait-rack', 3000),
    hostMapFile: hostMap.file,
    hostMap: hostMap.map,
    cephConf: str('ceph-conf'),
    cephClientName: cephId === undefined ? undefined : `client.${cephId}`,
    cephfsMount: str('cephfs-mount'),
    glusterMounts: gluster,
    hdfsUser: str('hdfs-user') ?? processUser(),
    hdfsDelegationToken,
    localWorkDir: str('local-work-dir'),
    sharedOutputs: flag('shared-outputs'),
    dispatchWindow: flag('dispatch-window') ?? true,
    executorPrefetch: flag('executor-prefetch') ?? true,
    executorHeldStarts: ((): boolean | 'auto' => {
      const v = get('executor-held-starts');
      if (v === undefined || v === '' || v === 'auto') return 'auto';
      if (v === true || v === 'true') return true;
      if (v === false || v === 'false') return false;
      throw invalidField('executor-held-starts', `must be true, false or auto, got '${String(v)}'`);
    })(),
    executorKeptSandboxes: ((): number | undefined => {
      const v = get('executor-kept-sandboxes');
      if (v === undefined || v === '') return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 10_000_000) throw invalidField('executor-kept-sandboxes', `must be a whole number from 0 (keep all) to 10000000, got '${String(v)}'`);
      return n;
    })(),
    hostOutputDir: str('host-output-dir'),
    blockServerBind: str('block-server-bind') ?? '127.0.0.1',
    logLevel: str('log-level') ?? 'info',
    logFormat,
    stopTimeoutMs: dur('stop-timeout', 5_000),
    ha: ((): string | undefined => {
      const v = str('ha');
      if (v !== undefined && !v.startsWith('zk://')) throw invalidField('ha', `must be a zk:// URL (zk://host:2181/locus), got '${v}'`);
      return v;
    })(),
    haSessionTimeoutMs: dur('ha-session-timeout', 10_000),
    maxPendingTasksPerTenant: count('max-pending-tasks', 2_000_000),
    maxTasksPerJob: count('max-tasks-per-job', 1_000_000),
  };
}
