/**
 * Host mapping: storage systems name their hosts their own way (datanode
 * hostnames, OSD CRUSH hosts, brick hosts, IPs); Mesos agents have theirs.
 * The mapping turns any storage name into an agent hostname and gives that
 * agent's rack. Without a mapping, storage names are used as they are.
 */
import { readFile } from 'node:fs/promises';
import { asObject, asString, isObject } from '../core/decode.js';
import { LocusError } from '../core/errors.js';

/** The mapping as configured (a host-map file is this, in JSON or YAML). */
export interface HostMapConfig {
  /** Storage host name or IP → agent hostname. */
  readonly hosts?: Readonly<Record<string, string>>;
  /** Agent hostname → rack (overrides racks the storage system reports). */
  readonly racks?: Readonly<Record<string, string>>;
}

/** One replica as a storage system names it. */
export interface StorageReplica {
  /** Names for the same host, best first (hostname, then IP). */
  readonly names: readonly string[];
  /** The rack the storage system reports, when it does. */
  readonly rack?: string;
  /** A path on that host holding the bytes at the same offsets (local datasets). */
  readonly path?: string;
}

/** Turns storage host names into agent hostnames and racks. */
export class HostMapper {
  private readonly hosts: Map<string, string>;
  private readonly racks: Map<string, string>;

  constructor(config: HostMapConfig = {}) {
    this.hosts = new Map(Object.entries(config.hosts ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    this.racks = new Map(Object.entries(config.racks ?? {}));
  }

  /** Whether any mapping is configured. */
  get empty(): boolean {
    return this.hosts.size === 0 && this.racks.size === 0;
  }

  /** The agent hostname for a replica: the first of its names that is mapped, else its first name as is. */
  agentHost(names: readonly string[]): string {
    for (const n of names) {
      const mapped = this.hosts.get(n.toLowerCase());
      if (mapped !== undefined) return mapped;
    }
    return names[0] ?? '';
  }

  /** The rack of an agent host: configured first, else what storage reported. */
  rack(agentHost: string, reported?: string): string | undefined {
    return this.racks.get(agentHost) ?? (reported === '' ? undefined : reported);
  }

  /** Hosts and racks of a split's replicas, mapped, deduplicated, order kept. */
  place(replicas: readonly StorageReplica[]): { hosts: string[]; racks: string[]; localPaths?: Record<string, string> } {
    const hosts: string[] = [];
    const racks: string[] = [];
    let localPaths: Record<string, string> | undefined;
    for (const r of replicas) {
      const host = this.agentHost(r.names);
      if (host === '' || hosts.includes(host)) continue;
      hosts.push(host);
      const rack = this.rack(host, r.rack);
      if (rack !== undefined && !racks.includes(rack)) racks.push(rack);
      if (r.path !== undefined) (localPaths ??= {})[host] = r.path;
    }
    return localPaths === undefined ? { hosts, racks } : { hosts, racks, localPaths };
  }
}

/**
 * A host-map document in either documented form, as the full form: a map with
 * only `hosts` and `racks`, each a map, is the full form; any other map is the
 * short form, storage host: agent host (a number, as YAML reads some names, as
 * text). The framework's `host-map` and `locus locate --host-map` both read
 * files through this, so a file one takes the other takes too.
 */
export function fullFormHostMap(doc: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const keys = Object.keys(doc);
  const full = keys.length > 0 && keys.every((k) => (k === 'hosts' || k === 'racks') && isObject(doc[k]));
  return full ? { ...doc } : { hosts: Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, typeof v === 'number' ? String(v) : v])) };
}

/** Validate a host-map document (already parsed). */
export function decodeHostMap(doc: unknown, source: string): HostMapConfig {
  try {
    const o = asObject(doc ?? {}, '');
    const strMap = (v: unknown, path: string): Record<string, string> => {
      if (v === undefined || v === null) return {};
      const m = asObject(v, path);
      const out: Record<string, string> = {};
      for (const [k, val] of Object.entries(m)) out[k] = asString(val, `${path}.${k}`);
      return out;
    };
    for (const key of Object.keys(o)) {
      if (key !== 'hosts' && key !== 'racks') throw new Error(`unknown key '${key}' (expected hosts, racks)`);
    }
    return { hosts: strMap(o['hosts'], 'hosts'), racks: strMap(o['racks'], 'racks') };
  } catch (err) {
    throw new LocusError('INVALID_FIELD', `host map ${source}: ${(err as Error).message}`, { field: 'hostMap', cause: err });
  }
}

/** Read a host-map file (JSON or YAML: `{hosts: {storage: agent}, racks: {agent: rack}}`). */
export async function loadHostMap(file: string): Promise<HostMapConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new LocusError('INVALID_FIELD', `host map ${file}: cannot read (${(err as Error).message})`, { field: 'hostMap', cause: err });
  }
  // Loaded here, not with the module: executors import this module for the mapper and never
  // read a host-map file, and the YAML parser was a tenth of an executor's start-up.
  const { parse: parseYaml } = await import('yaml');
  let doc: unknown;
  try {
    doc = parseYaml(text) as unknown;
  } catch (err) {
    throw new LocusError('INVALID_FIELD', `host map ${file}: not JSON or YAML (${(err as Error).message})`, { field: 'hostMap', cause: err });
  }
  return decodeHostMap(isObject(doc) ? fullFormHostMap(doc) : doc, file);
}
