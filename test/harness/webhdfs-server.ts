/**
 * A loopback stand-in for an HDFS NameNode's WebHDFS (and its DataNodes),
 * answering with the JSON shapes of the Hadoop documentation and source:
 * GETFILESTATUS, LISTSTATUS, GETFILEBLOCKLOCATIONS (Hadoop ≥ 3) or only the
 * older GET_BLOCK_LOCATIONS, OPEN via a 307 to a DataNode listener, and
 * RemoteException errors. HDFS itself cannot run on this machine.
 *
 * Writes as HDFS does them: CREATE in two steps (the NameNode answers a PUT
 * without data with a 307 to a DataNode, or with `noredirect=true` a 200 and
 * `{"Location"}`; the DataNode takes the bytes and answers 201, refusing an
 * existing path unless `overwrite=true`), MKDIRS, RENAME with HDFS's legacy
 * semantics (false for a missing source or destination parent; an existing
 * destination directory receives the source inside it) and DELETE.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One file the fake NameNode knows. */
export interface FakeFile {
  readonly path: string;
  readonly size: number;
  /** Default 128 MiB. */
  readonly blockSize?: number;
  /** Default 3 (capped at the number of datanodes). */
  readonly replication?: number;
  /** Only this user may read (others get AccessControlException). */
  readonly owner?: string;
}

/** A fake DataNode: its hostname, IP and rack. */
export interface FakeDatanode {
  readonly hostName: string;
  readonly ip: string;
  readonly rack: string;
}

/** Server behaviour. */
export interface WebHdfsServerOptions {
  readonly files: readonly FakeFile[];
  readonly datanodes?: readonly FakeDatanode[];
  /** 'new' answers GETFILEBLOCKLOCATIONS; 'old' rejects it like Hadoop 2 (400 IllegalArgumentException). */
  readonly locationOps?: 'new' | 'old';
  /** When set, every call must carry `delegation=<token>` (else 401 / 403 InvalidToken). */
  readonly delegationToken?: string;
  /** Answer every call under this path prefix after this many ms (timeout tests). */
  readonly slowPrefix?: { readonly prefix: string; readonly delayMs: number };
  /** Minimal FileStatus bodies (benchmarks list 100,000 files). */
  readonly lean?: boolean;
  /** Ignore `noredirect=true` on CREATE and always answer 307, as NameNodes before Hadoop 2.8 do. */
  readonly ignoreNoredirect?: boolean;
  /** Addresses to listen on (default NameNode 127.0.0.1, DataNode 127.0.0.2); the DataNode's is the one redirects name. */
  readonly bind?: { readonly namenode: string; readonly datanode: string };
  /** The NameNode's port (default: any free one): a test can refuse connections on it first, then start the server there. */
  readonly port?: number;
  /** Start with the NameNode out of service (see WebHdfsServer.setOutage). */
  readonly outage?: NameNodeOutage;
}

/**
 * How an out-of-service NameNode answers every call: with `status` and a RemoteException of
 * `exception` (a NameNode starting up answers RetriableException), or without one, as a proxy or
 * gateway in front of a NameNode that is down answers (502, 503).
 */
export interface NameNodeOutage {
  readonly status: number;
  readonly exception?: string;
}

/** A running fake. */
export interface WebHdfsServer {
  readonly port: number;
  readonly url: string;
  readonly datanodes: readonly FakeDatanode[];
  /** Requests seen, per op (upper case), and DataNode calls as 'DN_OPEN' / 'DN_CREATE'. */
  readonly counts: Map<string, number>;
  /** Every request line, for redirect and auth assertions. */
  readonly log: string[];
  /** The client addresses each DataNode op (`DN_CREATE`, `DN_OPEN`) came from. */
  readonly peers: Map<string, Set<string>>;
  /** The bytes of a file (deterministic: byte i = (i * 31 + path length) % 251). */
  content(path: string, offset: number, length: number): Buffer;
  /** The bytes of a file written through CREATE (undefined for the configured files or none). */
  written(path: string): Buffer | undefined;
  /** Every file and directory path, sorted (directories end with '/'). */
  tree(): string[];
  /** Where each block of a file lives (datanode indexes), as the server answers it. */
  placement(path: string): { offset: number; length: number; datanodes: number[] }[];
  /** Take the NameNode out of service (every call answered as `outage` says), or back in (undefined). DataNodes keep serving. */
  setOutage(outage: NameNodeOutage | undefined): void;
  close(): Promise<void>;
}

/** Default DataNodes: dn-a..dn-d on 127.0.0.2..5, two racks. */
export const DEFAULT_DATANODES: readonly FakeDatanode[] = [
  { hostName: 'dn-a', ip: '127.0.0.2', rack: '/rack-1' },
  { hostName: 'dn-b', ip: '127.0.0.3', rack: '/rack-1' },
  { hostName: 'dn-c', ip: '127.0.0.4', rack: '/rack-2' },
  { hostName: 'dn-d', ip: '127.0.0.5', rack: '/rack-2' },
];

const XFER_PORT = 9866;

function byteAt(path: string, i: number): number {
  return (i * 31 + path.length) % 251;
}

/** Start the fake NameNode (127.0.0.1) and its DataNode listener (127.0.0.2). */
export async function startWebHdfsServer(options: WebHdfsServerOptions): Promise<WebHdfsServer> {
  const datanodes = options.datanodes ?? DEFAULT_DATANODES;
  const files = new Map<string, FakeFile & { index: number; data?: Buffer }>();
  const dirs = new Map<string, Map<string, 'FILE' | 'DIRECTORY'>>();
  dirs.set('/', new Map());
  options.files.forEach((f, index) => {
    files.set(f.path, { ...f, index });
    const parts = f.path.split('/').filter(Boolean);
    let cur = '/';
    for (const [i, part] of parts.entries()) {
      const child = cur === '/' ? `/${part}` : `${cur}/${part}`;
      const last = i === parts.length - 1;
      dirs.get(cur)?.set(part, last ? 'FILE' : 'DIRECTORY');
      if (!last && !dirs.has(child)) dirs.set(child, new Map());
      cur = child;
    }
  });
  const counts = new Map<string, number>();
  const log: string[] = [];
  const peers = new Map<string, Set<string>>();
  const nnHost = options.bind?.namenode ?? '127.0.0.1';
  const dnHost = options.bind?.datanode ?? '127.0.0.2';
  const bump = (op: string): void => {
    counts.set(op, (counts.get(op) ?? 0) + 1);
  };

  const placement = (path: string): { offset: number; length: number; datanodes: number[] }[] => {
    const f = files.get(path);
    if (f === undefined) return [];
    const bs = f.blockSize ?? 128 * 1024 * 1024;
    const rep = Math.min(f.replication ?? 3, datanodes.length);
    const out = [];
    for (let off = 0, b = 0; off < f.size; off += bs, b++) {
      const dns = [];
      for (let r = 0; r < rep; r++) dns.push((f.index + b + r) % datanodes.length);
      out.push({ offset: off, length: Math.min(bs, f.size - off), datanodes: dns });
    }
    return out;
  };

  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const remote = (res: ServerResponse, status: number, exception: string, message: string): void => {
    const pkg = exception === 'FileNotFoundException' ? 'java.io' : exception === 'AccessControlException' ? 'org.apache.hadoop.security' : 'java.lang';
    send(res, status, { RemoteException: { exception, javaClassName: `${pkg}.${exception}`, message } });
  };
  const status = (path: string, name: string, type: 'FILE' | 'DIRECTORY'): Record<string, unknown> => {
    const f = files.get(path);
    if (options.lean === true) return { pathSuffix: name, type, length: f?.size ?? 0 };
    return {
      accessTime: 0, blockSize: f?.blockSize ?? 134217728, childrenNum: type === 'DIRECTORY' ? (dirs.get(path)?.size ?? 0) : 0,
      fileId: 16386 + (f?.index ?? 0), group: 'supergroup', length: f?.size ?? 0, modificationTime: 1700000000000,
      owner: f?.owner ?? 'hdfs', pathSuffix: name, permission: type === 'DIRECTORY' ? '755' : '644',
      replication: type === 'FILE' ? (f?.replication ?? 3) : 0, storagePolicy: 0, type,
    };
  };

  /** Make a directory and its parents; false when a file is in the way. */
  const mkdirs = (path: string): boolean => {
    const parts = path.split('/').filter(Boolean);
    let cur = '/';
    for (const part of parts) {
      const child = cur === '/' ? `/${part}` : `${cur}/${part}`;
      if (files.has(child)) return false;
      if (!dirs.has(child)) {
        dirs.set(child, new Map());
        dirs.get(cur)?.set(part, 'DIRECTORY');
      }
      cur = child;
    }
    return true;
  };
  const parentOf = (path: string): string => path.slice(0, path.lastIndexOf('/')) || '/';
  const nameOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1);
  /** Every path at or below `path` (files and directories). */
  const below = (path: string): string[] => [...files.keys(), ...dirs.keys()].filter((p) => p === path || p.startsWith(path === '/' ? '/' : `${path}/`));
  const removeTree = (path: string): void => {
    for (const p of below(path)) {
      files.delete(p);
      dirs.delete(p);
    }
    dirs.get(parentOf(path))?.delete(nameOf(path));
  };
  /** Move a file or directory tree from `src` to `dst` (dst must not exist, its parent must). */
  const moveTree = (src: string, dst: string): void => {
    const type = files.has(src) ? 'FILE' : 'DIRECTORY';
    for (const p of below(src)) {
      const q = dst + p.slice(src.length);
      const f = files.get(p);
      if (f !== undefined) {
        files.delete(p);
        files.set(q, { ...f, path: q });
      }
      const d = dirs.get(p);
      if (d !== undefined) {
        dirs.delete(p);
        dirs.set(q, d);
      }
    }
    dirs.get(parentOf(src))?.delete(nameOf(src));
    dirs.get(parentOf(dst))?.set(nameOf(dst), type);
  };

  const dnServer = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const op = (u.searchParams.get('op') ?? '').toUpperCase();
    bump(`DN_${op}`);
    peers.set(`DN_${op}`, (peers.get(`DN_${op}`) ?? new Set()).add(req.socket.remoteAddress ?? ''));
    log.push(`DN ${req.method} ${req.url}`);
    const path = decodeURIComponent(u.pathname.replace(/^\/webhdfs\/v1/, '')) || '/';
    if (op === 'CREATE' && req.method === 'PUT') {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        // The DataNode's DFSClient.create: an existing path is refused unless overwrite=true,
        // and missing parents are created (createparent defaults to true).
        if (dirs.has(path)) return remote(res, 403, 'FileAlreadyExistsException', `${path} already exists as a directory`);
        if (files.has(path) && u.searchParams.get('overwrite') !== 'true') return remote(res, 403, 'FileAlreadyExistsException', `${path} for client 127.0.0.2 already exists`);
        if (!mkdirs(parentOf(path))) return remote(res, 403, 'ParentNotDirectoryException', `Parent path is not a directory: ${parentOf(path)}`);
        const data = Buffer.concat(parts);
        files.set(path, { path, size: data.length, index: files.size, data, replication: 3 });
        dirs.get(parentOf(path))?.set(nameOf(path), 'FILE');
        res.writeHead(201, { location: `hdfs://nn:8020${path}`, 'content-length': 0 });
        res.end();
      });
      return;
    }
    const f = files.get(path);
    if (f === undefined) return remote(res, 404, 'FileNotFoundException', `File does not exist: ${path}`);
    const offset = Number(u.searchParams.get('offset') ?? 0);
    const length = Math.min(Number(u.searchParams.get('length') ?? f.size), f.size - offset);
    const body = Buffer.alloc(Math.max(0, length));
    if (f.data !== undefined) f.data.copy(body, 0, offset, offset + body.length);
    else for (let i = 0; i < body.length; i++) body[i] = byteAt(path, offset + i);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  });

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const u = new URL(req.url ?? '/', 'http://x');
    log.push(`NN ${req.method} ${req.url}`);
    const op = (u.searchParams.get('op') ?? '').toUpperCase();
    bump(op);
    if (!u.pathname.startsWith('/webhdfs/v1')) return send(res, 404, { error: 'not webhdfs' });
    const path = (decodeURIComponent(u.pathname.slice('/webhdfs/v1'.length)) || '/').replace(/(.)\/$/, '$1');
    if (options.delegationToken !== undefined) {
      const token = u.searchParams.get('delegation');
      if (token === null) {
        res.writeHead(401, { 'www-authenticate': 'Negotiate' });
        return void res.end();
      }
      if (token !== options.delegationToken) {
        return remote(res, 403, 'InvalidToken', `token (HDFS_DELEGATION_TOKEN token 7 for alice) can't be found in cache`);
      }
    }
    const user = u.searchParams.get('user.name') ?? (options.delegationToken !== undefined ? 'alice' : 'dr.who');
    // Writes: PUT (CREATE, MKDIRS, RENAME) and DELETE, as the NameNode answers them.
    if (req.method === 'PUT' || req.method === 'DELETE') {
      req.resume();
      if (req.method === 'DELETE' && op !== 'DELETE') return remote(res, 400, 'IllegalArgumentException', `Invalid value for webhdfs parameter "op": ${op} is not a DELETE op`);
      switch (op) {
        case 'CREATE': {
          // Step one carries no data: the NameNode names a DataNode and the client sends the bytes there.
          const dnAddr = dnServer.address() as AddressInfo;
          const q = new URLSearchParams({ op: 'CREATE', namenoderpcaddress: 'nn:8020', createflag: '', createparent: 'true', overwrite: u.searchParams.get('overwrite') ?? 'false' });
          const location = `http://${dnHost}:${dnAddr.port}/webhdfs/v1${u.pathname.slice('/webhdfs/v1'.length)}?${q}`;
          if (u.searchParams.get('noredirect') === 'true' && options.ignoreNoredirect !== true) return send(res, 200, { Location: location });
          res.writeHead(307, { location, 'content-length': 0 });
          return void res.end();
        }
        case 'MKDIRS':
          if (!mkdirs(path)) return remote(res, 403, 'FileAlreadyExistsException', `Path is not a directory: ${path}`);
          return send(res, 200, { boolean: true });
        case 'RENAME': {
          const destination = u.searchParams.get('destination');
          if (destination === null || !destination.startsWith('/')) return remote(res, 400, 'IllegalArgumentException', `Invalid value for webhdfs parameter "destination": ${String(destination)}`);
          const exists = (p: string): boolean => files.has(p) || dirs.has(p);
          if (!exists(path) || path === '/') return send(res, 200, { boolean: false });
          // Legacy rename: into an existing directory, keeping the source's name.
          const dst = dirs.has(destination) ? (destination === '/' ? `/${nameOf(path)}` : `${destination}/${nameOf(path)}`) : destination;
          if (dst === path) return send(res, 200, { boolean: true });
          if (dst.startsWith(`${path}/`)) return remote(res, 400, 'IOException', `Cannot rename ${path} to its own subdirectory ${dst}`);
          if (exists(dst) || !dirs.has(parentOf(dst))) return send(res, 200, { boolean: false });
          moveTree(path, dst);
          return send(res, 200, { boolean: true });
        }
        case 'DELETE': {
          if (!files.has(path) && !dirs.has(path)) return send(res, 200, { boolean: false });
          if (dirs.has(path) && (dirs.get(path)?.size ?? 0) > 0 && u.searchParams.get('recursive') !== 'true') {
            return remote(res, 403, 'PathIsNotEmptyDirectoryException', `${path} is non empty': Directory is not empty`);
          }
          removeTree(path);
          return send(res, 200, { boolean: true });
        }
        default:
          return remote(res, 400, 'IllegalArgumentException', `Invalid value for webhdfs parameter "op": No enum constant org.apache.hadoop.hdfs.web.resources.PutOpParam.Op.${op}`);
      }
    }
    const f = files.get(path);
    if (f?.owner !== undefined && f.owner !== user) {
      return remote(res, 403, 'AccessControlException', `Permission denied: user=${user}, access=READ, inode="${path}":${f.owner}:supergroup:-rw-------`);
    }
    const isDir = dirs.has(path);
    if (f === undefined && !isDir) return remote(res, 404, 'FileNotFoundException', `File does not exist: ${path}`);
    switch (op) {
      case 'GETFILESTATUS':
        return send(res, 200, { FileStatus: status(path, '', isDir ? 'DIRECTORY' : 'FILE') });
      case 'LISTSTATUS': {
        if (!isDir) return send(res, 200, { FileStatuses: { FileStatus: [status(path, '', 'FILE')] } });
        const children = [...(dirs.get(path) ?? new Map<string, 'FILE' | 'DIRECTORY'>())].sort(([a], [b]) => (a < b ? -1 : 1));
        return send(res, 200, { FileStatuses: { FileStatus: children.map(([name, t]) => status(path === '/' ? `/${name}` : `${path}/${name}`, name, t)) } });
      }
      case 'GETFILEBLOCKLOCATIONS': {
        if (options.locationOps === 'old') {
          return remote(res, 400, 'IllegalArgumentException', `Invalid value for webhdfs parameter "op": No enum constant org.apache.hadoop.hdfs.web.resources.GetOpParam.Op.GETFILEBLOCKLOCATIONS`);
        }
        if (f === undefined) return remote(res, 404, 'FileNotFoundException', `File does not exist: ${path}`);
        const BlockLocation = placement(path).map((b) => ({
          cachedHosts: [], corrupt: false, hosts: b.datanodes.map((d) => datanodes[d]?.hostName),
          length: b.length, names: b.datanodes.map((d) => `${datanodes[d]?.ip}:${XFER_PORT}`), offset: b.offset,
          storageTypes: b.datanodes.map(() => 'DISK'), topologyPaths: b.datanodes.map((d) => `${datanodes[d]?.rack}/${datanodes[d]?.ip}:${XFER_PORT}`),
        }));
        return send(res, 200, { BlockLocations: { BlockLocation } });
      }
      case 'GET_BLOCK_LOCATIONS': {
        if (f === undefined) return remote(res, 404, 'FileNotFoundException', `File does not exist: ${path}`);
        const info = (d: number): Record<string, unknown> => {
          const dn = datanodes[d];
          return {
            adminState: 'NORMAL', blockPoolUsed: 0, cacheCapacity: 0, cacheUsed: 0, capacity: 1e12, dfsUsed: 0, hostName: dn?.hostName,
            infoPort: 9864, infoSecurePort: 0, ipAddr: dn?.ip, ipcPort: 9867, lastUpdate: 0, lastUpdateMonotonic: 0,
            name: `${dn?.ip}:${XFER_PORT}`, networkLocation: dn?.rack, remaining: 1e12, storageID: `uuid-${d}`, xceiverCount: 1, xferPort: XFER_PORT,
          };
        };
        const located = placement(path).map((b, i) => ({
          block: { blockId: 1073741825 + i, blockPoolId: 'BP-1-127.0.0.1-1', generationStamp: 1001 + i, numBytes: b.length },
          blockToken: { urlString: 'AAAAAA' }, cachedLocations: [], isCorrupt: false, locations: b.datanodes.map(info),
          startOffset: b.offset, storageTypes: b.datanodes.map(() => 'DISK'),
        }));
        return send(res, 200, {
          LocatedBlocks: { fileLength: f.size, isLastBlockComplete: true, isUnderConstruction: false, lastLocatedBlock: located[located.length - 1] ?? null, locatedBlocks: located },
        });
      }
      case 'OPEN': {
        if (f === undefined) return remote(res, 404, 'FileNotFoundException', `File does not exist: ${path}`);
        const dnAddr = dnServer.address() as AddressInfo;
        const q = new URLSearchParams({ op: 'OPEN', namenoderpcaddress: 'nn:8020', offset: u.searchParams.get('offset') ?? '0' });
        const len = u.searchParams.get('length');
        if (len !== null) q.set('length', len);
        res.writeHead(307, { location: `http://${dnHost}:${dnAddr.port}/webhdfs/v1${u.pathname.slice('/webhdfs/v1'.length)}?${q}`, 'content-length': 0 });
        return void res.end();
      }
      default:
        return remote(res, 400, 'IllegalArgumentException', `Invalid value for webhdfs parameter "op": No enum constant ${op}`);
    }
  };

  let outage = options.outage;
  const nnServer: Server = createServer((req, res) => {
    if (outage !== undefined) {
      bump('OUTAGE');
      log.push(`NN ${req.method} ${req.url} (out of service: ${outage.status})`);
      if (outage.exception !== undefined) return remote(res, outage.status, outage.exception, 'Namenode is in startup mode');
      const body = '<html>Service Unavailable</html>';
      res.writeHead(outage.status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) });
      return void res.end(body);
    }
    const slow = options.slowPrefix;
    const path = new URL(req.url ?? '/', 'http://x').pathname.slice('/webhdfs/v1'.length);
    if (slow !== undefined && path.startsWith(slow.prefix)) {
      const t = setTimeout(() => handle(req, res), slow.delayMs);
      res.on('close', () => clearTimeout(t));
      return;
    }
    handle(req, res);
  });
  nnServer.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => dnServer.listen(0, dnHost, r));
  await new Promise<void>((r) => nnServer.listen(options.port ?? 0, nnHost, r));
  const port = (nnServer.address() as AddressInfo).port;
  return {
    port,
    url: `http://${nnHost}:${port}`,
    datanodes,
    counts,
    log,
    peers,
    content(path, offset, length) {
      const b = Buffer.alloc(length);
      for (let i = 0; i < length; i++) b[i] = byteAt(path, offset + i);
      return b;
    },
    placement,
    written: (path) => files.get(path)?.data,
    setOutage(o) {
      outage = o;
    },
    tree: () => [...[...files.keys()], ...[...dirs.keys()].map((d) => (d === '/' ? '/' : `${d}/`))].sort(),
    async close() {
      nnServer.closeAllConnections();
      dnServer.closeAllConnections();
      await Promise.all([new Promise((r) => nnServer.close(r)), new Promise((r) => dnServer.close(r))]);
    },
  };
}
