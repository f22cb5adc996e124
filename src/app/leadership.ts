/**
 * Leader election among `locus framework --ha zk://…/path` instances, the
 * ZooKeeper recipe the Mesos masters use: each instance creates an ephemeral
 * sequential node `member_<seq>` under the path, holding its API addresses as
 * JSON; the lowest sequence number leads. Every instance watches the children,
 * so each always knows the leader's addresses (standbys forward to it).
 *
 * A leader whose session expires, or whose connection stays lost for longer
 * than the session timeout (the server has expired it by then), has lost the
 * lead: `lost` fires once and the process steps down. A standby whose session
 * expires joins again with a new node.
 */
import { randomUUID } from 'node:crypto';
import zookeeper from 'node-zookeeper-client';
import { LocusError } from '../core/errors.js';
import { isObject, parseJson } from '../core/decode.js';
import type { Logger } from '../obs/log.js';
import { TypedEmitter } from '../mesos/emitter.js';
import { parseZkUrl } from '../mesos/detector.js';

/** What an instance publishes in its node. */
export interface MemberInfo {
  readonly id: string;
  /** Its HTTP API base URL (`http://host:port`). */
  readonly httpUrl: string;
  /** Its gRPC address (`host:port`). */
  readonly grpcAddress: string;
}

/** Events of an election. */
export type ElectionEvents = {
  /** The leader changed (undefined: none known right now). */
  leader: [info: MemberInfo | undefined];
  /** This instance became the leader. */
  elected: [];
  /** This instance, having led, lost the lead (session expired or connection lost too long). */
  lost: [reason: string];
};

/** Options of an election. */
export interface ElectionOptions {
  /** `zk://h1:2181,h2:2181/path`. */
  readonly url: string;
  readonly sessionTimeoutMs: number;
  readonly me: Omit<MemberInfo, 'id'>;
  readonly logger: Logger;
}

const PREFIX = 'member_';

/** The member nodes, lowest sequence first. */
export function orderMembers(children: readonly string[]): string[] {
  return children.filter((c) => c.startsWith(PREFIX)).sort((a, b) => Number(a.slice(PREFIX.length)) - Number(b.slice(PREFIX.length)));
}

function decodeMember(raw: Buffer | null, path: string): MemberInfo | undefined {
  try {
    const v: unknown = parseJson((raw ?? Buffer.alloc(0)).toString('utf8'), path);
    if (!isObject(v) || typeof v['id'] !== 'string' || typeof v['httpUrl'] !== 'string' || typeof v['grpcAddress'] !== 'string') return undefined;
    return { id: v['id'], httpUrl: v['httpUrl'], grpcAddress: v['grpcAddress'] };
  } catch {
    return undefined;
  }
}

/** One instance's part in the election. */
export class LeaderElection extends TypedEmitter<ElectionEvents> {
  readonly me: MemberInfo;
  private readonly servers: string;
  private readonly auth: string | undefined;
  private readonly path: string;
  private client: zookeeper.Client | undefined;
  private myNode: string | undefined;
  private leading = false;
  private lostOnce = false;
  private closed = false;
  private generation = 0;
  private current: MemberInfo | undefined;
  private lostTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ElectionOptions) {
    super();
    const zk = parseZkUrl(o.url);
    this.servers = zk.servers;
    this.auth = zk.auth;
    this.path = zk.path === '/' ? '/locus' : zk.path;
    this.me = { id: randomUUID(), ...o.me };
  }

  /** Whether this instance leads now. */
  get isLeader(): boolean {
    return this.leading && !this.lostOnce;
  }

  /** The leader's addresses, if known. */
  leader(): MemberInfo | undefined {
    return this.current;
  }

  /** Connect and join; resolves once this instance's node exists. */
  async start(timeoutMs = 30_000): Promise<void> {
    await this.join(timeoutMs);
  }

  /** Resolve once this instance leads. */
  waitForLeadership(): Promise<void> {
    if (this.isLeader) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.on('elected', () => {
        off();
        resolve();
      });
    });
  }

  private join(timeoutMs: number): Promise<void> {
    const generation = ++this.generation;
    const client = zookeeper.createClient(this.servers, { sessionTimeout: this.o.sessionTimeoutMs, spinDelay: 200 });
    this.client = client;
    if (this.auth !== undefined) client.addAuthInfo('digest', Buffer.from(this.auth));
    client.on('disconnected', () => {
      if (generation !== this.generation) return;
      this.o.logger.warn('lost the ZooKeeper connection');
      // The server expires the session once it has heard nothing for the session timeout: a
      // leader that cannot reach it for that long must assume a standby has taken over.
      if (this.leading && !this.lostTimer) {
        this.lostTimer = setTimeout(() => this.lose('the ZooKeeper connection was lost for longer than the session timeout'), this.o.sessionTimeoutMs);
        this.lostTimer.unref();
      }
    });
    client.on('connected', () => {
      if (generation !== this.generation) return;
      if (this.lostTimer) clearTimeout(this.lostTimer);
      this.lostTimer = undefined;
    });
    client.on('expired', () => {
      if (generation !== this.generation || this.closed) return;
      client.close();
      if (this.leading) {
        this.lose('the ZooKeeper session expired');
        return;
      }
      this.o.logger.warn('ZooKeeper session expired; joining the election again');
      this.myNode = undefined;
      void this.join(timeoutMs).catch((err: unknown) => this.o.logger.error({ err: String(err) }, 'cannot join the election again'));
    });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new LocusError('UNAVAILABLE', `cannot reach ZooKeeper ${this.servers} within ${timeoutMs} ms`)), timeoutMs);
      client.once('connected', () => {
        client.mkdirp(this.path, (err) => {
          if (err && err.getCode() !== zookeeper.Exception.NODE_EXISTS) {
            clearTimeout(timer);
            reject(new LocusError('UNAVAILABLE', `ZooKeeper mkdirp ${this.path}: ${err.message}`));
            return;
          }
          client.create(`${this.path}/${PREFIX}`, Buffer.from(JSON.stringify(this.me)), zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL, (e2, created) => {
            clearTimeout(timer);
            if (e2) {
              reject(new LocusError('UNAVAILABLE', `ZooKeeper create under ${this.path}: ${e2.message}`));
              return;
            }
            this.myNode = created.slice(created.lastIndexOf('/') + 1);
            this.o.logger.info({ node: created }, 'joined the scheduler election');
            this.check(generation);
            resolve();
          });
        });
      });
      client.connect();
    });
  }

  private check(generation: number): void {
    const client = this.client;
    if (!client || generation !== this.generation || this.closed) return;
    client.getChildren(this.path, () => this.check(generation), (err, children) => {
      if (generation !== this.generation || this.closed) return;
      if (err) {
        this.o.logger.warn({ err: err.message }, 'reading the election members failed; retrying');
        setTimeout(() => this.check(generation), 500).unref();
        return;
      }
      const members = orderMembers(children);
      const first = members[0];
      if (first === undefined) return;
      if (first === this.myNode && !this.leading) {
        this.leading = true;
        this.current = this.me;
        this.o.logger.info({ node: first }, 'elected leader');
        this.emit('leader', this.me);
        this.emit('elected');
        return;
      }
      if (first === this.myNode) return;
      client.getData(`${this.path}/${first}`, (e2, data) => {
        if (generation !== this.generation || this.closed) return;
        const info = e2 ? undefined : decodeMember(data, `${this.path}/${first}`);
        if (info?.id !== this.current?.id) {
          this.current = info;
          this.emit('leader', info);
        }
      });
    });
  }

  private lose(reason: string): void {
    if (this.lostOnce) return;
    this.lostOnce = true;
    this.o.logger.error({ reason }, 'lost the scheduler leadership');
    this.emit('lost', reason);
  }

  /** Leave the election (removes this instance's node by closing the session). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.lostTimer) clearTimeout(this.lostTimer);
    this.client?.close();
    this.client = undefined;
    await Promise.resolve();
  }
}
