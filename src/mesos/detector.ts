/**
 * Master detection. A static `http(s)://host:port` names the master directly;
 * `zk://h1:2181,h2:2181/mesos` finds the leading master the way Mesos itself
 * does: the masters' ephemeral sequential nodes `json.info_<seq>` under the
 * path, the lowest sequence number being the leader, its data a JSON MasterInfo.
 * Detectors emit `leader` whenever the leader changes so the client can move.
 */
import zookeeper from 'node-zookeeper-client';
import { LocusError } from '../core/errors.js';
import { DecodeError, parseJson } from '../core/decode.js';
import type { Logger } from '../obs/log.js';
import { TypedEmitter } from './emitter.js';
import { decodeMasterInfo } from './wire.js';
import type { MasterInfo } from './types.js';
import { schedulerEndpoint } from './http.js';

/** Events of a detector. */
export type DetectorEvents = {
  /** The leading master's base URL (`http://ip:port`), or undefined when there is none. */
  leader: [url: string | undefined, info: MasterInfo | undefined];
  /** A non-fatal detection problem (ZooKeeper unreachable, bad node data). */
  problem: [message: string];
};

/** Finds the leading master and follows leadership changes. */
export interface MasterDetector {
  /** The current leader's base URL, if known. */
  current(): string | undefined;
  /** Begin detecting (idempotent). */
  start(): Promise<void>;
  /** Wait until a leader is known, at most `timeoutMs`; rejects with TIMEOUT. */
  waitForLeader(timeoutMs: number): Promise<string>;
  /** Subscribe to leader changes; returns an unsubscribe function. */
  on<K extends keyof DetectorEvents>(event: K, listener: (...args: DetectorEvents[K]) => void): () => void;
  /** Stop detecting and release connections. */
  close(): Promise<void>;
}

/** Common waiting logic for detectors. */
abstract class BaseDetector extends TypedEmitter<DetectorEvents> implements MasterDetector {
  protected leader: string | undefined;

  current(): string | undefined {
    return this.leader;
  }

  abstract start(): Promise<void>;
  abstract close(): Promise<void>;

  waitForLeader(timeoutMs: number): Promise<string> {
    const now = this.leader;
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<string>((resolve, reject) => {
      // Real time here: this only bounds how long a caller waits at start-up.
      const timer = setTimeout(() => {
        off();
        reject(new LocusError('TIMEOUT', `no leading master found within ${timeoutMs} ms${this.describeWait()}`));
      }, timeoutMs);
      const off = this.on('leader', (url) => {
        if (url === undefined) return;
        clearTimeout(timer);
        off();
        resolve(url);
      });
    });
  }

  protected describeWait(): string {
    return '';
  }

  protected setLeader(url: string | undefined, info: MasterInfo | undefined): void {
    if (url === this.leader) return;
    this.leader = url;
    this.emit('leader', url, info);
  }
}

/** A fixed master URL. */
export class StaticDetector extends BaseDetector {
  constructor(url: string) {
    super();
    const endpoint = schedulerEndpoint(url);
    this.leader = `${endpoint.protocol}//${endpoint.host}${endpoint.pathname.slice(0, -'/api/v1/scheduler'.length)}`;
  }

  async start(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A parsed `zk://` URL. */
export interface ZkUrl {
  /** `host:port,host:port` for the ZooKeeper client. */
  readonly servers: string;
  /** The znode under which masters register (`/mesos`). */
  readonly path: string;
  /** `user:password` for digest authentication, if given. */
  readonly auth?: string;
}

/** Parse `zk://[user:pass@]h1:2181,h2:2181/path`. */
export function parseZkUrl(url: string): ZkUrl {
  const m = /^zk:\/\/(?:([^@/]+)@)?([^/]+)(\/.*)?$/.exec(url.trim());
  if (!m || !m[2]) throw new LocusError('INVALID_FIELD', `master: '${url}' is not a zk:// URL (example: zk://127.0.0.1:2181/mesos)`, { field: 'master' });
  const servers = m[2].split(',').map((s) => (s.includes(':') ? s : `${s}:2181`)).join(',');
  const path = (m[3] ?? '/mesos').replace(/\/+$/, '') || '/';
  return { servers, path, ...(m[1] === undefined ? {} : { auth: decodeURIComponent(m[1]) }) };
}

/** The node name prefix Mesos masters (≥ 0.24) register under, with JSON MasterInfo data. */
export const MASTER_NODE_PREFIX = 'json.info_';

/** Pick the leading node: the lowest sequence among `json.info_<seq>` children. */
export function leaderNode(children: readonly string[]): string | undefined {
  let best: { name: string; seq: number } | undefined;
  for (const name of children) {
    if (!name.startsWith(MASTER_NODE_PREFIX)) continue;
    const seq = Number(name.slice(MASTER_NODE_PREFIX.length));
    if (!Number.isInteger(seq)) continue;
    if (!best || seq < best.seq) best = { name, seq };
  }
  return best?.name;
}

/**
 * The scheduler API base URL of a master. The IP is preferred because that
 * is what the master binds and advertises in its pid; the hostname may not
 * resolve from where the framework runs.
 */
export function masterUrlOf(info: MasterInfo, scheme: 'http' | 'https' = 'http'): string {
  const fromPid = info.pid !== undefined ? /@([^:]+):\d+$/.exec(info.pid)?.[1] : undefined;
  const host = info.address?.ip ?? fromPid ?? info.address?.hostname ?? info.hostname;
  const port = info.address?.port ?? info.port;
  if (host === undefined) throw new DecodeError('master_info', 'has no address');
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Options for ZooKeeper detection. */
export interface ZkDetectorOptions {
  /** Scheme for the masters found (their MasterInfo does not say). */
  readonly scheme?: 'http' | 'https';
  readonly sessionTimeoutMs?: number;
  readonly logger?: Logger;
}

/**
 * Detects the leading master in ZooKeeper and follows changes with watches.
 * A watch fires once, so every callback re-reads and re-arms; ZooKeeper
 * session expiry replaces the session (watches die with it).
 */
export class ZkMasterDetector extends BaseDetector {
  private readonly zk: ZkUrl;
  private client: zookeeper.Client | undefined;
  private leaderName: string | undefined;
  private closed = false;
  private started = false;
  private generation = 0;

  constructor(url: string, private readonly options: ZkDetectorOptions = {}) {
    super();
    this.zk = parseZkUrl(url);
  }

  /** The ZooKeeper path being watched. */
  get path(): string {
    return this.zk.path;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.openSession();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.generation++;
    const c = this.client;
    this.client = undefined;
    if (c) {
      c.removeAllListeners();
      c.close();
    }
  }

  protected override describeWait(): string {
    return ` in ZooKeeper ${this.zk.servers}${this.zk.path}`;
  }

  private openSession(): void {
    if (this.closed) return;
    const generation = ++this.generation;
    const client = zookeeper.createClient(this.zk.servers, { sessionTimeout: this.options.sessionTimeoutMs ?? 10_000, spinDelay: 500 });
    this.client = client;
    if (this.zk.auth !== undefined) client.addAuthInfo('digest', Buffer.from(this.zk.auth));
    client.on('connected', () => {
      if (generation === this.generation) this.refresh(generation);
    });
    client.on('disconnected', () => this.emit('problem', `lost the ZooKeeper connection to ${this.zk.servers}; keeping the last known leader`));
    client.on('expired', () => {
      if (generation !== this.generation) return;
      this.emit('problem', 'ZooKeeper session expired; opening a new one');
      client.removeAllListeners();
      client.close();
      this.openSession();
    });
    client.connect();
  }

  /** List the masters (arming a child watch) and resolve the leader. */
  private refresh(generation: number): void {
    const client = this.client;
    if (!client || generation !== this.generation) return;
    client.getChildren(this.zk.path, () => this.refresh(generation), (err, children) => {
      if (generation !== this.generation) return;
      if (err) {
        if (err.getCode() === zookeeper.Exception.NO_NODE) {
          // No master has ever registered: watch for the path to appear.
          this.leaderName = undefined;
          this.setLeader(undefined, undefined);
          client.exists(this.zk.path, () => this.refresh(generation), (e2, stat) => {
            if (!e2 && stat && generation === this.generation) this.refresh(generation);
          });
          return;
        }
        this.emit('problem', `ZooKeeper getChildren ${this.zk.path}: ${err.message}`);
        return;
      }
      const name = leaderNode(children);
      if (name === undefined) {
        this.leaderName = undefined;
        this.setLeader(undefined, undefined);
        return;
      }
      if (name === this.leaderName && this.leader !== undefined) return;
      this.readLeader(generation, name);
    });
  }

  private readLeader(generation: number, name: string): void {
    const client = this.client;
    if (!client) return;
    const nodePath = `${this.zk.path === '/' ? '' : this.zk.path}/${name}`;
    client.getData(nodePath, (err, data) => {
      if (generation !== this.generation) return;
      if (err) {
        // The leader vanished between listing and reading: the child watch re-lists.
        if (err.getCode() !== zookeeper.Exception.NO_NODE) this.emit('problem', `ZooKeeper getData ${nodePath}: ${err.message}`);
        return;
      }
      try {
        const info = decodeMasterInfo(parseJson((data ?? Buffer.alloc(0)).toString('utf8'), nodePath), nodePath);
        this.leaderName = name;
        this.setLeader(masterUrlOf(info, this.options.scheme ?? 'http'), info);
      } catch (e) {
        this.emit('problem', `bad master data in ${nodePath}: ${(e as Error).message}`);
      }
    });
  }
}

/** A detector for what a user typed: `zk://…` or an http(s) URL. */
export function createDetector(master: string, options: ZkDetectorOptions = {}): MasterDetector {
  return master.trim().startsWith('zk://') ? new ZkMasterDetector(master, options) : new StaticDetector(master);
}
