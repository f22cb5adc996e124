/**
 * Local datasets: data laid out across the embedded local cluster's agents
 * the way HDFS lays out blocks, so embedded mode has real locality.
 *
 * Layout (all under the local cluster's work directory):
 * - `<workDir>/topology.json` (written by the local cluster):
 *   `{"masterUrl", "agents": [{"id","hostname","rack","url","dataDir","dataDirHere"?}]}`
 * - `<workDir>/datasets/<dataset>/manifest.json`: the files, their block
 *   size, and per block the hostnames holding a replica.
 * - On each agent holding any block of a file: `<dataDir>/<dataset>/<path>`,
 *   a sparse file of the file's full size in which the blocks that agent
 *   holds are written at their own offsets. A task on that agent reads its
 *   split [offset, offset+length) from that path directly.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asArray, asNumber, asObject, asString, optional, parseJson } from '../../core/decode.js';
import { LocusError } from '../../core/errors.js';

/** One agent of the local cluster. */
export interface LocalAgent {
  readonly id: string;
  readonly hostname: string;
  readonly rack?: string;
  readonly url?: string;
  /** The agent's data directory as its own host, and so its executors, see it. */
  readonly dataDir: string;
  /**
   * The same directory as the master's machine sees it, where that differs: an agent on a
   * `--hosts netns` host, whose private directory is mounted at HOST_PRIVATE_DIR inside the host
   * only. `locus data put` runs here and writes replicas through this path; without it, it wrote
   * them under `dataDir` on this machine, where no host saw them.
   */
  readonly dataDirHere?: string;
}

/** The local cluster's topology file. */
export interface LocalTopology {
  readonly masterUrl?: string;
  readonly agents: readonly LocalAgent[];
}

/** One block of a dataset file. */
export interface DatasetBlock {
  readonly offset: number;
  readonly length: number;
  /** Hostnames of the agents holding it, primary first. */
  readonly hosts: readonly string[];
}

/** One file of a dataset. */
export interface DatasetFile {
  /** Path within the dataset, starting with '/'. */
  readonly path: string;
  readonly size: number;
  readonly blocks: readonly DatasetBlock[];
}

/** A dataset's manifest. */
export interface DatasetManifest {
  readonly version: 1;
  readonly dataset: string;
  readonly blockSize: number;
  readonly replicas: number;
  readonly files: readonly DatasetFile[];
}

/** Path of the topology file. */
export const topologyPath = (workDir: string): string => join(workDir, 'topology.json');
/** Path of a dataset's manifest. */
export const manifestPath = (workDir: string, dataset: string): string => join(workDir, 'datasets', dataset, 'manifest.json');
/** Path of an agent's replica file for a dataset file, as the agent's host sees it (what tasks read). */
export const replicaPath = (agent: LocalAgent, dataset: string, path: string): string => join(agent.dataDir, dataset, path);
/** The same replica file as the master's machine sees it (what `locus data put` writes). */
export const replicaPathHere = (agent: LocalAgent, dataset: string, path: string): string => join(agent.dataDirHere ?? agent.dataDir, dataset, path);

/** Dataset names are one path segment of safe characters. */
export function checkDatasetName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) {
    throw new LocusError('INVALID_FIELD', `dataset name '${name}' must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit`, { field: 'dataset' });
  }
}

/** Decode a topology document. */
export function decodeTopology(doc: unknown): LocalTopology {
  const o = asObject(doc, '');
  const agents = asArray(o['agents'], 'agents', (v, path) => {
    const a = asObject(v, path);
    const rack = optional(a['rack'], `${path}.rack`, asString);
    const url = optional(a['url'], `${path}.url`, asString);
    const dataDirHere = optional(a['dataDirHere'], `${path}.dataDirHere`, asString);
    return {
      id: asString(a['id'], `${path}.id`),
      hostname: asString(a['hostname'], `${path}.hostname`),
      dataDir: asString(a['dataDir'], `${path}.dataDir`),
      ...(dataDirHere === undefined ? {} : { dataDirHere }),
      ...(rack === undefined || rack === '' ? {} : { rack }),
      ...(url === undefined ? {} : { url }),
    };
  });
  const masterUrl = optional(o['masterUrl'], 'masterUrl', asString);
  return masterUrl === undefined ? { agents } : { masterUrl, agents };
}

/** Read `<workDir>/topology.json`; a clear error when the local cluster has not written it. */
export async function readTopology(workDir: string): Promise<LocalTopology> {
  const file = topologyPath(workDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LocusError('NOT_FOUND', `no local cluster topology at ${file} (start the local cluster first, or pass --work-dir)`, { cause: err });
    }
    throw new LocusError('STORAGE', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return decodeTopology(parseJson(text, 'topology.json'));
  } catch (err) {
    throw new LocusError('STORAGE', `${file} is not a valid topology: ${(err as Error).message}`, { cause: err });
  }
}

/** Decode a manifest document. */
export function decodeManifest(doc: unknown): DatasetManifest {
  const o = asObject(doc, '');
  if (o['version'] !== 1) throw new LocusError('STORAGE', `unsupported dataset manifest version ${String(o['version'])}`);
  return {
    version: 1,
    dataset: asString(o['dataset'], 'dataset'),
    blockSize: asNumber(o['blockSize'], 'blockSize'),
    replicas: asNumber(o['replicas'], 'replicas'),
    files: asArray(o['files'], 'files', (v, path) => {
      const f = asObject(v, path);
      return {
        path: asString(f['path'], `${path}.path`),
        size: asNumber(f['size'], `${path}.size`),
        blocks: asArray(f['blocks'], `${path}.blocks`, (b, bp) => {
          const x = asObject(b, bp);
          return { offset: asNumber(x['offset'], `${bp}.offset`), length: asNumber(x['length'], `${bp}.length`), hosts: asArray(x['hosts'], `${bp}.hosts`, asString) };
        }),
      };
    }),
  };
}

/** Read a dataset's manifest, or undefined when the dataset does not exist. */
export async function readManifest(workDir: string, dataset: string): Promise<DatasetManifest | undefined> {
  const file = manifestPath(workDir, dataset);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LocusError('STORAGE', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return decodeManifest(parseJson(text, 'manifest.json'));
  } catch (err) {
    if (err instanceof LocusError) throw err;
    throw new LocusError('STORAGE', `${file} is not a valid manifest: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Choose the agents for one block: the primary rotates with the block
 * counter (even spread); each further replica is the next agent in order on
 * a rack not used yet, else the next unused agent.
 */
export function chooseReplicas(agents: readonly LocalAgent[], counter: number, replicas: number): LocalAgent[] {
  const n = agents.length;
  const want = Math.min(replicas, n);
  const first = agents[counter % n] as LocalAgent;
  const chosen: LocalAgent[] = [first];
  // Which round of primaries this is: rotating through the candidates by
  // round makes later replicas spread as evenly as primaries do.
  const round = Math.floor(counter / n);
  while (chosen.length < want) {
    const usedRacks = new Set(chosen.map((a) => a.rack ?? `host:${a.hostname}`));
    const free: LocalAgent[] = [];
    for (let k = 1; k < n; k++) {
      const a = agents[(counter + k) % n] as LocalAgent;
      if (!chosen.includes(a)) free.push(a);
    }
    const otherRack = free.filter((a) => !usedRacks.has(a.rack ?? `host:${a.hostname}`));
    const pool = otherRack.length > 0 ? otherRack : free;
    const next = pool[(round + chosen.length - 1) % pool.length];
    if (next === undefined) break;
    chosen.push(next);
  }
  return chosen;
}
