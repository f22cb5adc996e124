/**
 * A WebHDFS client for what locality needs: status and listing, block
 * locations (GETFILEBLOCKLOCATIONS, falling back once per NameNode to the
 * older GET_BLOCK_LOCATIONS), and OPEN with offset/length.
 *
 * Listing uses the `webhdfs` npm package when it can (plain `user.name`
 * auth over http): it has LISTSTATUS and GETFILESTATUS. The package has no
 * block-location operations and no delegation tokens, and its `request`
 * dependency follows redirects by itself, so everything else speaks HTTP
 * directly through ./http.ts.
 */
import type { Readable } from 'node:stream';
import { parseJson } from '../../core/decode.js';
import { LocusError } from '../../core/errors.js';
import type { RawBlock } from '../splits.js';
import { decodeBlockLocations, decodeGetFileStatus, decodeListStatus, decodeLocatedBlocks, decodeRemoteException, type HdfsFileStatus, type RemoteException } from './decode.js';
import { checkRedirect, createAgents, getBuffered, openGet, sendRequest, type Agents, type RequestBody } from './http.js';
import { createPackageLister, type PackageLister } from './package-lister.js';

/** How to reach and authenticate to one NameNode's WebHDFS. */
export interface WebHdfsClientOptions {
  /** `http://host:port` or `https://host:port` of the NameNode's HTTP server. */
  readonly baseUrl: string;
  /** `user.name` (simple auth). */
  readonly user?: string;
  /** A delegation token (secure clusters); sent as `delegation=`. */
  readonly delegationToken?: string;
  readonly timeoutMs: number;
  readonly maxRedirects: number;
  readonly maxSockets: number;
  /** Use the `webhdfs` package for listing when auth allows (default true). */
  readonly usePackage?: boolean;
}

/** Which block-location operation a NameNode answers. */
export type LocationOp = 'GETFILEBLOCKLOCATIONS' | 'GET_BLOCK_LOCATIONS';

/** A failed WebHDFS call, before it is tied to a URI. */
export class WebHdfsError extends LocusError {}

/** Turn a RemoteException into a clear, coded error (the HTTP status kept in its details). */
export function remoteError(status: number, r: RemoteException): WebHdfsError {
  const e = remoteErrorOf(status, r);
  return new WebHdfsError(e.code, e.message, { details: { status } });
}

function remoteErrorOf(status: number, r: RemoteException): WebHdfsError {
  const ex = r.exception || r.javaClassName.slice(r.javaClassName.lastIndexOf('.') + 1);
  const what = r.message || ex;
  switch (ex) {
    case 'FileNotFoundException':
      return new WebHdfsError('NOT_FOUND', `no such file or directory (${what})`);
    case 'AccessControlException':
    case 'AuthorizationException':
    case 'SecurityException':
      return new WebHdfsError('FORBIDDEN', `permission denied (${what})`);
    case 'InvalidToken':
    case 'SecretManager$InvalidToken':
      return new WebHdfsError('FORBIDDEN', `the delegation token was rejected (${what})`);
    case 'FileAlreadyExistsException':
      return new WebHdfsError('CONFLICT', `already exists (${what})`);
    case 'StandbyException':
      return new WebHdfsError('UNAVAILABLE', `the NameNode is in standby; use the active one (${what})`);
    case 'SafeModeException':
      return new WebHdfsError('UNAVAILABLE', `the NameNode is in safe mode (${what})`);
    // Hadoop's own "ask again later": a NameNode still starting up answers WebHDFS with it.
    case 'RetriableException':
      return new WebHdfsError('UNAVAILABLE', `the NameNode asks to retry later (${what})`);
    default:
      return new WebHdfsError('STORAGE', `WebHDFS error ${status} ${ex}: ${what}`);
  }
}

/** Whether an error answer means "this server does not know that op". */
function isUnknownOp(status: number, r: RemoteException | undefined): boolean {
  if (status === 501) return true;
  if (status !== 400 || r === undefined) return false;
  if (r.exception === 'UnsupportedOperationException') return true;
  return r.exception === 'IllegalArgumentException' && /\bop\b|No enum constant|Invalid value for webhdfs parameter/i.test(r.message);
}

/** One NameNode's WebHDFS. */
export class WebHdfsClient {
  private readonly agents: Agents;
  private readonly base: URL;
  private locationOp: LocationOp = 'GETFILEBLOCKLOCATIONS';
  private opKnown = false;
  private opProbe: Promise<void> | undefined;
  private readonly lister: PackageLister | undefined;

  constructor(private readonly options: WebHdfsClientOptions) {
    this.base = new URL(options.baseUrl);
    this.agents = createAgents(options.maxSockets);
    const canUsePackage = options.usePackage !== false && options.delegationToken === undefined && this.base.protocol === 'http:';
    this.lister = canUsePackage
      ? createPackageLister({ host: this.base.hostname, port: Number(this.base.port || 80), user: options.user, timeoutMs: options.timeoutMs })
      : undefined;
  }

  /** The location op in use (tests check the fallback stuck). */
  get locationOperation(): LocationOp {
    return this.locationOp;
  }

  /** Whether listing goes through the `webhdfs` package. */
  get listsWithPackage(): boolean {
    return this.lister !== undefined;
  }

  /** The URL of an op on a path, with auth parameters. */
  url(op: string, path: string, params: Record<string, string | number> = {}): string {
    const u = new URL(this.base.toString());
    u.pathname = '/webhdfs/v1' + path.split('/').map(encodeURIComponent).join('/');
    const q = new URLSearchParams();
    q.set('op', op);
    if (this.options.delegationToken !== undefined) q.set('delegation', this.options.delegationToken);
    else if (this.options.user !== undefined) q.set('user.name', this.options.user);
    for (const [k, v] of Object.entries(params)) q.set(k, String(v));
    u.search = q.toString();
    return u.toString();
  }

  private async call(op: string, path: string, params: Record<string, string | number>, signal?: AbortSignal): Promise<{ status: number; doc: unknown; remote?: RemoteException }> {
    const answer = await getBuffered(this.url(op, path, params), this.agents, { timeoutMs: this.options.timeoutMs, maxRedirects: this.options.maxRedirects, signal });
    const text = answer.body.toString('utf8');
    let doc: unknown;
    try {
      doc = text === '' ? undefined : parseJson(text);
    } catch {
      if (answer.status >= 200 && answer.status < 300) throw new WebHdfsError('PROTOCOL', `${op}: the answer is not JSON`);
      doc = undefined;
    }
    const remote = decodeRemoteException(doc);
    return remote === undefined ? { status: answer.status, doc } : { status: answer.status, doc, remote };
  }

  private fail(op: string, status: number, remote: RemoteException | undefined): never {
    if (remote !== undefined) throw remoteError(status, remote);
    // A NameNode answers 401 only with security on, where user.name counts for
    // nothing: Kerberos (SPNEGO), which Locus does not speak, or a token.
    // The status goes in the details: a 5xx without a RemoteException (a NameNode restarting
    // behind a proxy, a gateway with no NameNode behind it) is one to wait out, not a "no".
    const details = { status };
    if (status === 401) {
      throw new WebHdfsError('FORBIDDEN', `${op}: authentication required by ${this.base.host} (Kerberos): give a delegation token (hdfs-delegation-token-file; --webhdfs-token for locate)`, { details });
    }
    if (status === 403) throw new WebHdfsError('FORBIDDEN', `${op}: forbidden`, { details });
    if (status === 404) throw new WebHdfsError('NOT_FOUND', `${op}: not found (is WebHDFS enabled at ${this.base.host}?)`, { details });
    throw new WebHdfsError('STORAGE', `${op}: HTTP ${status} from ${this.base.host}`, { details });
  }

  /**
   * A listing call through the package, asked again directly when the package
   * cannot say what went wrong: it turns every answer without a RemoteException
   * body (a secure NameNode's bare 401, a proxy's 403 or 502) into 'Unknown
   * error' and drops the status, which is what names the cause.
   */
  private async viaPackage<T>(lister: PackageLister, ask: (l: PackageLister) => Promise<T>, direct: () => Promise<T>): Promise<T> {
    try {
      return await ask(lister);
    } catch (err) {
      if (err instanceof LocusError && err.code === 'STORAGE') return await direct();
      throw err;
    }
  }

  /** The status of a path, or undefined when it does not exist. */
  async getFileStatus(path: string, signal?: AbortSignal): Promise<HdfsFileStatus | undefined> {
    if (this.lister !== undefined) return await this.viaPackage(this.lister, (l) => l.stat(path), () => this.getFileStatusDirect(path, signal));
    return await this.getFileStatusDirect(path, signal);
  }

  private async getFileStatusDirect(path: string, signal?: AbortSignal): Promise<HdfsFileStatus | undefined> {
    const r = await this.call('GETFILESTATUS', path, {}, signal);
    if (r.status === 200) return decodeGetFileStatus(r.doc);
    if (r.remote?.exception === 'FileNotFoundException' || (r.status === 404 && r.remote !== undefined)) return undefined;
    return this.fail('GETFILESTATUS', r.status, r.remote);
  }

  /** The children of a directory. */
  async listStatus(path: string, signal?: AbortSignal): Promise<HdfsFileStatus[]> {
    if (this.lister !== undefined) return await this.viaPackage(this.lister, (l) => l.list(path), () => this.listStatusDirect(path, signal));
    return await this.listStatusDirect(path, signal);
  }

  private async listStatusDirect(path: string, signal?: AbortSignal): Promise<HdfsFileStatus[]> {
    const r = await this.call('LISTSTATUS', path, {}, signal);
    if (r.status === 200) return decodeListStatus(r.doc);
    return this.fail('LISTSTATUS', r.status, r.remote);
  }

  /** The blocks of a file in [offset, offset+length), with their replicas. */
  async blockLocations(path: string, offset: number, length: number, signal?: AbortSignal): Promise<RawBlock[]> {
    // Until one answer has shown which op this NameNode speaks, callers queue
    // behind the first one so an old NameNode sees the unknown op only once.
    if (!this.opKnown) {
      if (this.opProbe === undefined) {
        const probe = this.locateWith(path, offset, length, signal);
        this.opProbe = probe.then(
          () => { this.opKnown = true; },
          () => { this.opProbe = undefined; },
        );
        return await probe;
      }
      await this.opProbe;
    }
    return await this.locateWith(path, offset, length, signal);
  }

  private async locateWith(path: string, offset: number, length: number, signal?: AbortSignal): Promise<RawBlock[]> {
    const params = { offset, length };
    if (this.locationOp === 'GETFILEBLOCKLOCATIONS') {
      const r = await this.call('GETFILEBLOCKLOCATIONS', path, params, signal);
      if (r.status === 200) return decodeBlockLocations(r.doc);
      if (!isUnknownOp(r.status, r.remote)) return this.fail('GETFILEBLOCKLOCATIONS', r.status, r.remote);
      // Older NameNodes and HttpFS do not know the documented op; the Java
      // client falls back to GET_BLOCK_LOCATIONS the same way.
      this.locationOp = 'GET_BLOCK_LOCATIONS';
    }
    const r = await this.call('GET_BLOCK_LOCATIONS', path, params, signal);
    if (r.status === 200) return decodeLocatedBlocks(r.doc).blocks;
    return this.fail('GET_BLOCK_LOCATIONS', r.status, r.remote);
  }

  /** Stream bytes [offset, offset+length) of a file (OPEN, following the redirect to a DataNode). */
  async open(path: string, offset: number, length: number, timeoutMs: number, signal?: AbortSignal): Promise<Readable> {
    const { res } = await openGet(this.url('OPEN', path, { offset, length }), this.agents, { timeoutMs, maxRedirects: this.options.maxRedirects, signal });
    if (res.statusCode === 200) return res;
    const parts: Buffer[] = [];
    for await (const c of res) parts.push(c as Buffer);
    let doc: unknown;
    try {
      doc = parseJson(Buffer.concat(parts).toString('utf8'));
    } catch {
      doc = undefined;
    }
    return this.fail('OPEN', res.statusCode ?? 0, decodeRemoteException(doc));
  }

  /** A PUT or DELETE answered with JSON (`{"boolean": ...}` for MKDIRS, RENAME and DELETE). */
  private async modify(method: 'PUT' | 'DELETE', op: string, path: string, params: Record<string, string | number>): Promise<unknown> {
    const answer = await sendRequest(method, this.url(op, path, params), this.agents, { timeoutMs: this.options.timeoutMs });
    let doc: unknown;
    try {
      doc = answer.body.length === 0 ? undefined : parseJson(answer.body.toString('utf8'));
    } catch {
      doc = undefined;
    }
    if (answer.status !== 200) return this.fail(op, answer.status, decodeRemoteException(doc));
    return doc;
  }

  private async booleanOp(method: 'PUT' | 'DELETE', op: string, path: string, params: Record<string, string | number> = {}): Promise<boolean> {
    const doc = await this.modify(method, op, path, params);
    if (typeof doc !== 'object' || doc === null || !('boolean' in doc) || typeof doc.boolean !== 'boolean') throw new WebHdfsError('PROTOCOL', `${op}: the answer has no boolean`);
    return doc.boolean;
  }

  /** MKDIRS: create a directory and its parents (true also when it exists). */
  async mkdirs(path: string): Promise<boolean> {
    return await this.booleanOp('PUT', 'MKDIRS', path);
  }

  /**
   * RENAME with HDFS's own semantics: false when the source is missing or the destination's
   * parent is; an existing destination directory receives the source INSIDE it, so callers that
   * want "onto" must make sure the destination does not exist.
   */
  async rename(from: string, to: string): Promise<boolean> {
    return await this.booleanOp('PUT', 'RENAME', from, { destination: to });
  }

  /** DELETE (recursive): false when there was nothing to delete. */
  async remove(path: string): Promise<boolean> {
    return await this.booleanOp('DELETE', 'DELETE', path, { recursive: 'true' });
  }

  /**
   * CREATE a file from a stream, in WebHDFS's two steps: a PUT without data to the NameNode,
   * which names a DataNode (a 307 `Location`, or with `noredirect` a JSON `Location`), then the
   * bytes PUT there (201). Sending no data in the first step is the point of the protocol: the
   * NameNode never receives file bytes. Never overwrites (FileAlreadyExistsException: CONFLICT).
   */
  async create(path: string, body: () => RequestBody, timeoutMs: number): Promise<void> {
    const first = await sendRequest('PUT', this.url('CREATE', path, { overwrite: 'false', noredirect: 'true' }), this.agents, { timeoutMs: this.options.timeoutMs });
    let location: string | undefined;
    if (first.status === 307 || first.status === 302 || first.status === 303) location = first.location;
    else if (first.status === 200) {
      let doc: unknown;
      try {
        doc = parseJson(first.body.toString('utf8'));
      } catch {
        doc = undefined;
      }
      if (typeof doc === 'object' && doc !== null && 'Location' in doc && typeof doc.Location === 'string') location = doc.Location;
    } else {
      let doc: unknown;
      try {
        doc = parseJson(first.body.toString('utf8'));
      } catch {
        doc = undefined;
      }
      return this.fail('CREATE', first.status, decodeRemoteException(doc));
    }
    if (location === undefined) throw new WebHdfsError('PROTOCOL', `CREATE: the NameNode named no DataNode (HTTP ${first.status})`);
    const target = checkRedirect(first.url, location);
    const second = await sendRequest('PUT', target.toString(), this.agents, { timeoutMs }, body());
    if (second.status === 201 || second.status === 200) return;
    let doc: unknown;
    try {
      doc = parseJson(second.body.toString('utf8'));
    } catch {
      doc = undefined;
    }
    return this.fail('CREATE', second.status, decodeRemoteException(doc));
  }

  /** Close idle connections. */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
    this.lister?.close();
  }
}
