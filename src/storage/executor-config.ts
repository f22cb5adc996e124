/**
 * The storage configuration the framework hands an executor at launch (the
 * `--storage-config` flag, a JSON document): where this host's CephFS and
 * GlusterFS mounts are, how to reach WebHDFS and Ceph, the directory of this
 * host's local:// dataset replicas, and where outputs are written.
 *
 * It holds no secrets: it travels in TaskInfo, which operators can read
 * through the master's `/state`. Secrets (the block servers' token, an HDFS
 * delegation token) sit in a Redis hash the executor reads with its own ACL
 * user (DATAPLANE_SECRETS_KEY).
 */
import { asBoolean, asNumber, asObject, asString, optional, parseJson } from '../core/decode.js';
import { LocusError } from '../core/errors.js';
import type { StorageConfig } from './registry.js';

/** What an executor knows about storage on its host. */
export interface ExecutorStorageConfig {
  readonly version: 1;
  readonly webhdfs?: { readonly user?: string; readonly endpoints?: Readonly<Record<string, string>>; readonly defaultPort?: number };
  readonly ceph?: { readonly conf?: string; readonly keyring?: string; readonly name?: string; readonly cephfsMount?: string };
  readonly gluster?: { readonly mounts: Readonly<Record<string, string>> };
  /** This host's directory of local:// dataset replicas (`<dir>/<dataset>/<path>`), served by the block server. */
  readonly localDataDir?: string;
  /** The local cluster's work directory, when this host can read it (one machine): direct reads of any replica. */
  readonly localWorkDir?: string;
  readonly outputs?: {
    /** The framework's output root: payload output directories are named under it. */
    readonly root: string;
    /** Whether this executor sees `root` itself (a shared mount): then outputs are committed there. */
    readonly shared: boolean;
    /** Where outputs are written on this host when `root` is not shared (default: `<sandbox>/../locus-outputs`). */
    readonly hostRoot?: string;
  };
  readonly blockServer?: {
    /** Address to listen on (default 127.0.0.1). */
    readonly bind?: string;
    /** Port (default 0: any free port). */
    readonly port?: number;
    /** host[:port] advertised to others when the bind address is not reachable as such (0.0.0.0). */
    readonly advertise?: string;
  };
}

function stringMap(v: unknown, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(asObject(v, path))) out[k] = asString(x, `${path}.${k}`);
  return out;
}

/** Decode the JSON config; errors name the field. */
export function decodeExecutorStorageConfig(text: string): ExecutorStorageConfig {
  let doc: unknown;
  try {
    doc = parseJson(text, 'storage-config');
  } catch (err) {
    throw new LocusError('INVALID_FIELD', `--storage-config is not JSON: ${(err as Error).message}`, { field: 'storage-config' });
  }
  try {
    const o = asObject(doc, 'storage-config');
    if (o['version'] !== 1) throw new LocusError('INVALID_FIELD', `storage-config.version must be 1, got ${String(o['version'])}`, { field: 'storage-config.version' });
    const webhdfs = optional(o['webhdfs'], 'webhdfs', (x, p) => {
      const w = asObject(x, p);
      const user = optional(w['user'], `${p}.user`, asString);
      const endpoints = optional(w['endpoints'], `${p}.endpoints`, stringMap);
      const defaultPort = optional(w['defaultPort'], `${p}.defaultPort`, asNumber);
      return { ...(user === undefined ? {} : { user }), ...(endpoints === undefined ? {} : { endpoints }), ...(defaultPort === undefined ? {} : { defaultPort }) };
    });
    const ceph = optional(o['ceph'], 'ceph', (x, p) => {
      const c = asObject(x, p);
      const out: { conf?: string; keyring?: string; name?: string; cephfsMount?: string } = {};
      for (const k of ['conf', 'keyring', 'name', 'cephfsMount'] as const) {
        const v = optional(c[k], `${p}.${k}`, asString);
        if (v !== undefined) out[k] = v;
      }
      return out;
    });
    const gluster = optional(o['gluster'], 'gluster', (x, p) => ({ mounts: stringMap(asObject(x, p)['mounts'] ?? {}, `${p}.mounts`) }));
    const localDataDir = optional(o['localDataDir'], 'localDataDir', asString);
    const localWorkDir = optional(o['localWorkDir'], 'localWorkDir', asString);
    const outputs = optional(o['outputs'], 'outputs', (x, p) => {
      const u = asObject(x, p);
      const hostRoot = optional(u['hostRoot'], `${p}.hostRoot`, asString);
      return { root: asString(u['root'], `${p}.root`), shared: asBoolean(u['shared'], `${p}.shared`), ...(hostRoot === undefined ? {} : { hostRoot }) };
    });
    const blockServer = optional(o['blockServer'], 'blockServer', (x, p) => {
      const b = asObject(x, p);
      const bind = optional(b['bind'], `${p}.bind`, asString);
      const port = optional(b['port'], `${p}.port`, asNumber);
      const advertise = optional(b['advertise'], `${p}.advertise`, asString);
      return { ...(bind === undefined ? {} : { bind }), ...(port === undefined ? {} : { port }), ...(advertise === undefined ? {} : { advertise }) };
    });
    return {
      version: 1,
      ...(webhdfs === undefined ? {} : { webhdfs }),
      ...(ceph === undefined ? {} : { ceph }),
      ...(gluster === undefined ? {} : { gluster }),
      ...(localDataDir === undefined ? {} : { localDataDir }),
      ...(localWorkDir === undefined ? {} : { localWorkDir }),
      ...(outputs === undefined ? {} : { outputs }),
      ...(blockServer === undefined ? {} : { blockServer }),
    };
  } catch (err) {
    if (err instanceof LocusError) throw err;
    throw new LocusError('INVALID_FIELD', `storage-config.${(err as Error).message}`, { field: 'storage-config' });
  }
}

/** The registry configuration an executor builds its readers from (secrets added by the caller). */
export function registryConfigFor(c: ExecutorStorageConfig, secrets: { readonly webhdfsDelegationToken?: string } = {}): StorageConfig {
  const token = secrets.webhdfsDelegationToken;
  return {
    ...(c.webhdfs !== undefined || token !== undefined ? { webhdfs: { ...(c.webhdfs ?? {}), ...(token === undefined ? {} : { delegationToken: token }) } } : {}),
    ...(c.ceph === undefined ? {} : { ceph: c.ceph }),
    ...(c.gluster === undefined ? {} : { gluster: c.gluster }),
    ...(c.localWorkDir === undefined ? {} : { local: { workDir: c.localWorkDir } }),
  };
}
