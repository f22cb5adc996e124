/**
 * Framework settings: one typed object built from (in order of precedence)
 * command-line flags, LOCUS_* environment variables, a YAML/JSON config file
 * whose keys are the flag names, and defaults. Errors name the key.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { LocusError, invalidField } from '../core/errors.js';
import { isObject } from '../core/decode.js';
import { parseDurationMs, parseSizeMiB } from '../core/units.js';
import type { IsolationMode } from '../executor/isolation/types.js';

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
  readonly executorCpus: number;
  readonly executorMemMiB: number;
  readonly executorIdleTimeoutMs: number;
  readonly isolation: IsolationMode;
  /** How executors run attempts (`--runner`); `noop` runs nothing and exists for benchmarks only. */
  readonly executorRunner: 'auto' | 'agent' | 'isolator' | 'noop';
  readonly localityWaitNodeMs: number;
  readonly localityWaitRackMs: number;
  readonly hostMapFile: string | undefined;
  readonly cephConf: string | undefined;
  readonly cephfsMount: string | undefined;
  readonly glusterMounts: Readonly<Record<string, string>>;
  readonly hdfsUser: string | undefined;
  /** Work dir of the embedded local cluster, for local:// datasets. */
  readonly localWorkDir: string | undefined;
  readonly logLevel: string;
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
  return { ...doc };
}

/** The directory Locus keeps its state in by default. */
export function defaultStateDir(): string {
  return process.env['LOCUS_HOME'] ?? join(homedir(), '.locus');
}

/**
 * The built CLI entry point executors run on the local cluster: next to this
 * module when running from dist/, or the repository's dist/ when running
 * from sources (tests), which must have been built.
 */
export function defaultExecutorMain(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '../cli/main.js'), join(here, '../../dist/src/cli/main.js')];
  const built = candidates.find((c) => c.includes('/dist/') && existsSync(c));
  if (built) return built;
  throw new LocusError('UNAVAILABLE', "the built CLI (dist/src/cli/main.js) is missing: run 'npm run build'");
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
    executorCpus: Number(str('executor-cpus') ?? 2),
    executorMemMiB: str('executor-mem') === undefined ? 2048 : parseSizeMiB(str('executor-mem') ?? '', 'executor-mem'),
    executorIdleTimeoutMs: dur('executor-idle-timeout', 60_000),
    isolation,
    executorRunner,
    localityWaitNodeMs: dur('locality-wait-node', 3000),
    localityWaitRackMs: dur('locality-wait-rack', 3000),
    hostMapFile: str('host-map'),
    cephConf: str('ceph-conf'),
    cephfsMount: str('cephfs-mount'),
    glusterMounts: gluster,
    hdfsUser: str('hdfs-user'),
    localWorkDir: str('local-work-dir'),
    logLevel: str('log-level') ?? 'info',
    maxPendingTasksPerTenant: count('max-pending-tasks', 2_000_000),
    maxTasksPerJob: count('max-tasks-per-job', 1_000_000),
  };
}
