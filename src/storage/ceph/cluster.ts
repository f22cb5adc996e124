/**
 * Fetching a Ceph cluster's maps with the `ceph` CLI, once per OSD-map epoch.
 *
 * Preferred path (one cluster round trip): `ceph osd getmap -o F`, then
 * `osdmaptool F --dump json | --tree json | --test-map-pgs-dump-all` compute
 * pools, the CRUSH tree and every PG's up/acting set from that very map —
 * what `ceph osd map` computes, at one consistent epoch. Without osdmaptool
 * (a client with only ceph-common), `ceph osd dump`, `ceph osd tree` and
 * `ceph pg dump pgs_brief` are used instead.
 *
 * The cluster is found the way the ceph CLI finds it: `--conf` (else
 * CEPH_CONF, else /etc/ceph/ceph.conf), with Ceph's usual keyring lookup
 * unless a keyring is given.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../core/clock.js';
import { parseJson } from '../../core/decode.js';
import { LocusError } from '../../core/errors.js';
import { toolSaysUnreachable } from '../errors.js';
import { runTool, ToolError } from '../exec.js';
import { buildClusterMap, decodeOsdDump, decodeOsdTree, decodePgDumpAll, decodePgsBrief, type CephClusterMap } from './maps.js';

/** How to reach the cluster. */
export interface CephConnectionConfig {
  /** ceph.conf path (default: CEPH_CONF, else /etc/ceph/ceph.conf). */
  readonly conf?: string;
  readonly keyring?: string;
  /** Client name, e.g. `client.admin`. */
  readonly name?: string;
  readonly cephBin?: string;
  readonly osdmaptoolBin?: string;
  /** Per CLI call (default 30 s). */
  readonly timeoutMs?: number;
  /** How often the epoch is re-checked (default 10 s; 0 = before every lookup). */
  readonly checkIntervalMs?: number;
  /** 'auto' (osdmaptool if installed), 'osdmaptool' or 'pgdump'. */
  readonly mapSource?: 'auto' | 'osdmaptool' | 'pgdump';
}

/** Holds the current cluster map and refreshes it when the epoch moves. */
export class CephCluster {
  private map: CephClusterMap | undefined;
  private lastCheck = -Infinity;
  private pending: Promise<CephClusterMap> | undefined;
  private useOsdmaptool: boolean | undefined;

  constructor(private readonly config: CephConnectionConfig, private readonly clock: Clock) {}

  /** The conf file in use. */
  get confPath(): string {
    return this.config.conf ?? process.env['CEPH_CONF'] ?? '/etc/ceph/ceph.conf';
  }

  private baseArgs(): string[] {
    const t = Math.max(1, Math.ceil((this.config.timeoutMs ?? 30_000) / 1000));
    const args = ['--conf', this.confPath, '--connect-timeout', String(t)];
    if (this.config.keyring !== undefined) args.push('--keyring', this.config.keyring);
    if (this.config.name !== undefined) args.push('--name', this.config.name);
    return args;
  }

  /** Run `ceph <args>`; errors become UNAVAILABLE/FORBIDDEN naming the conf. */
  async ceph(args: readonly string[], signal?: AbortSignal): Promise<string> {
    try {
      return await runTool(this.config.cephBin ?? 'ceph', [...this.baseArgs(), ...args], { timeoutMs: this.config.timeoutMs ?? 30_000, ...(signal === undefined ? {} : { signal }) });
    } catch (err) {
      if (err instanceof ToolError) {
        const where = `the Ceph cluster of ${this.confPath}`;
        const last = err.stderr.trim().split('\n').pop() ?? '';
        if (err.timedOut) throw new LocusError('TIMEOUT', `${where} did not answer within ${this.config.timeoutMs ?? 30_000} ms`, { cause: err });
        // Before the access check: monitors that do not answer make the CLI say "monclient(hunting):
        // authenticate timed out", which is unreachability (wait and retry), not a refusal.
        if (toolSaysUnreachable(err.stderr)) throw new LocusError('UNAVAILABLE', `cannot reach ${where}: ${last}`, { cause: err });
        if (/permission denied|EACCES|authenticat|keyring/i.test(err.stderr)) throw new LocusError('FORBIDDEN', `${where} refused access: ${last}`, { cause: err });
        // "[errno 2] RADOS object not found (error connecting to the cluster)": no ceph.conf, or no
        // keyring for the client name. A configuration to correct, which waiting does not.
        if (/error calling conf_read_file|ObjectNotFound|No such file|error connecting/i.test(err.stderr)) {
          throw new LocusError('STORAGE', `cannot connect to ${where} (check the conf file, the keyring and the client name): ${last}`, { cause: err });
        }
        throw new LocusError('STORAGE', `ceph ${args.slice(0, 3).join(' ')} failed: ${err.stderr.trim().split('\n').pop() ?? err.message}`, { cause: err });
      }
      throw err;
    }
  }

  private async osdmaptoolAvailable(): Promise<boolean> {
    if (this.useOsdmaptool !== undefined) return this.useOsdmaptool;
    const source = this.config.mapSource ?? 'auto';
    if (source !== 'auto') return (this.useOsdmaptool = source === 'osdmaptool');
    try {
      await runTool(this.config.osdmaptoolBin ?? 'osdmaptool', ['--help'], { timeoutMs: 5_000 });
      this.useOsdmaptool = true;
    } catch (err) {
      // `osdmaptool --help` exits non-zero on some releases; only a missing binary counts.
      this.useOsdmaptool = !(err instanceof LocusError && err.code === 'UNAVAILABLE');
    }
    return this.useOsdmaptool;
  }

  /** The current epoch from the monitors (one cheap call). */
  async currentEpoch(signal?: AbortSignal): Promise<number> {
    const doc = parseJson(await this.ceph(['osd', 'stat', '--format', 'json'], signal), 'osd stat');
    const o = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : {};
    const e = o['epoch'] ?? (typeof o['osdmap'] === 'object' && o['osdmap'] !== null ? (o['osdmap'] as Record<string, unknown>)['epoch'] : undefined);
    if (typeof e !== 'number') throw new LocusError('PROTOCOL', 'ceph osd stat: no epoch in the answer');
    return e;
  }

  /** Fetch a fresh snapshot of the maps. */
  async fetch(signal?: AbortSignal): Promise<CephClusterMap> {
    if (await this.osdmaptoolAvailable()) {
      const dir = await mkdtemp(join(tmpdir(), 'locus-osdmap-'));
      try {
        const file = join(dir, 'osdmap');
        await this.ceph(['osd', 'getmap', '-o', file], signal);
        const tool = this.config.osdmaptoolBin ?? 'osdmaptool';
        const opts = { timeoutMs: this.config.timeoutMs ?? 30_000, ...(signal === undefined ? {} : { signal }) };
        const [dump, tree, pgs] = await Promise.all([
          runTool(tool, [file, '--dump', 'json'], opts),
          runTool(tool, [file, '--tree', 'json'], opts),
          runTool(tool, [file, '--test-map-pgs-dump-all'], opts),
        ]);
        // osdmaptool prints a banner line before the JSON.
        const json = (s: string, what: string): unknown => parseJson(s.slice(s.indexOf('{')), what);
        return buildClusterMap(decodeOsdDump(json(dump, 'osd dump')), decodeOsdTree(json(tree, 'osd tree')), decodePgDumpAll(pgs));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    const [dump, tree, pgs] = await Promise.all([
      this.ceph(['osd', 'dump', '--format', 'json'], signal),
      this.ceph(['osd', 'tree', '--format', 'json'], signal),
      this.ceph(['pg', 'dump', 'pgs_brief', '--format', 'json'], signal),
    ]);
    return buildClusterMap(decodeOsdDump(parseJson(dump, 'osd dump')), decodeOsdTree(parseJson(tree, 'osd tree')), decodePgsBrief(parseJson(pgs, 'pg dump')));
  }

  /**
   * The maps, fetched once and re-fetched when the OSD-map epoch has moved
   * (checked at most every checkIntervalMs). Concurrent callers share one fetch.
   */
  async maps(signal?: AbortSignal): Promise<CephClusterMap> {
    const interval = this.config.checkIntervalMs ?? 10_000;
    if (this.map !== undefined && this.clock.now() - this.lastCheck < interval && interval > 0) return this.map;
    if (this.pending !== undefined) return await this.pending;
    const work = (async (): Promise<CephClusterMap> => {
      const current = this.map;
      if (current !== undefined) {
        const epoch = await this.currentEpoch(signal);
        if (epoch === current.epoch) {
          this.lastCheck = this.clock.now();
          return current;
        }
      }
      const fresh = await this.fetch(signal);
      this.map = fresh;
      this.lastCheck = this.clock.now();
      return fresh;
    })();
    this.pending = work;
    try {
      return await work;
    } finally {
      this.pending = undefined;
    }
  }

  /** Forget the snapshot so the next lookup fetches again. */
  invalidate(): void {
    this.map = undefined;
    this.lastCheck = -Infinity;
  }
}
