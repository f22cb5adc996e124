/**
 * What a standby scheduler serves on the API ports while another instance
 * leads: every HTTP request and gRPC call is forwarded to the leader (so a
 * client, its token and a streaming answer need nothing special), except the
 * instance's own `/healthz`, `/readyz` (503, `role: standby`, the leader's
 * address) and `/metrics` (`locus_leader 0`). With no leader known, requests
 * are refused with 503 NOT_LEADER. When this instance is elected, the front
 * closes and the full framework listens on the same ports.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../obs/log.js';
import { loadLocusProto, toStatus } from '../api/grpc/server.js';
import { LocusError } from '../core/errors.js';

/** The leader's addresses, as the election knows them. */
export interface LeaderAddress {
  readonly httpUrl: string;
  readonly grpcAddress: string;
}

/** A running standby front. */
export interface StandbyFront {
  readonly httpUrl: string;
  readonly httpPort: number;
  readonly grpcAddress: string;
  readonly grpcPort: number;
  close(): Promise<void>;
}

/** Options of the front. */
export interface StandbyFrontOptions {
  readonly host: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly leader: () => LeaderAddress | undefined;
  readonly logger: Logger;
}

// Hop-by-hop headers are the connection's own, not the request's (RFC 9110 7.6.1).
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'x-locus-role': 'standby' });
  res.end(text);
}

/**
 * A request this standby cannot serve: 503 NOT_LEADER in the error format of every other route
 * (`{ error: { code, message } }`), so a client reading `error.code` needs no case for a standby;
 * Retry-After, because an election settles within seconds.
 */
function sendNotLeader(res: ServerResponse, message: string): void {
  sendJson(res, 503, { error: { code: 'NOT_LEADER', message } }, { 'retry-after': '1' });
}

function forwardHttp(req: IncomingMessage, res: ServerResponse, leader: LeaderAddress, log: Logger): void {
  const target = new URL(req.url ?? '/', leader.httpUrl);
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
  headers['x-forwarded-by'] = 'locus-standby';
  const out = httpRequest(target, { method: req.method, headers }, (up) => {
    const back: Record<string, string | string[]> = { 'x-locus-role': 'standby', 'x-locus-leader': leader.httpUrl };
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP.has(k)) back[k] = v;
    res.writeHead(up.statusCode ?? 502, back);
    // Server-sent events stream through as they come.
    up.pipe(res);
  });
  out.on('error', (err) => {
    log.warn({ err: err.message, leader: leader.httpUrl }, 'forwarding to the leader failed');
    if (!res.headersSent) sendNotLeader(res, `this instance is a standby and the leader at ${leader.httpUrl} did not answer: ${err.message}`);
    else res.destroy();
  });
  res.on('close', () => out.destroy());
  req.pipe(out);
}

/** Start the standby front on the configured ports (0 picks free ones). */
export async function startStandbyFront(o: StandbyFrontOptions): Promise<StandbyFront> {
  const log = o.logger.child({ component: 'standby' });
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const leader = o.leader();
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (path === '/readyz') return sendJson(res, 503, { ready: false, role: 'standby', ...(leader ? { leader: leader.httpUrl } : {}) });
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end('# HELP locus_leader 1 on the leading scheduler, 0 on a standby or a fenced former leader\n# TYPE locus_leader gauge\nlocus_leader 0\n');
      return;
    }
    if (!leader) return sendNotLeader(res, 'this instance is a standby and no leader is known yet; retry');
    forwardHttp(req, res, leader, log);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.httpPort, o.host, () => resolve());
  });
  const httpPort = (server.address() as AddressInfo).port;

  // gRPC: every method of locus.v1.Locus, relayed as bytes to the leader's same method.
  const v1 = (loadLocusProto()['locus'] as grpc.GrpcObject)['v1'] as grpc.GrpcObject;
  const service = (v1['Locus'] as grpc.ServiceClientConstructor).service;
  const raw = (b: Buffer): Buffer => b;
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  let client: { address: string; c: grpc.Client } | undefined;
  const leaderClient = (): grpc.Client | undefined => {
    const l = o.leader();
    if (!l) return undefined;
    if (client?.address !== l.grpcAddress) {
      client?.c.close();
      client = { address: l.grpcAddress, c: new grpc.Client(l.grpcAddress, grpc.credentials.createInsecure()) };
    }
    return client.c;
  };
  // UNAVAILABLE with the locus-error-code trailer, as the framework's own server answers errors.
  const noLeader = (): grpc.ServiceError => toStatus(new LocusError('NOT_LEADER', 'this instance is a standby and no leader is known yet; retry'));
  for (const [name, m] of Object.entries(service)) {
    definition[name] = { ...m, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw };
    if (m.responseStream) {
      handlers[name] = (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        const c = leaderClient();
        if (!c) {
          call.emit('error', noLeader());
          return;
        }
        const up = c.makeServerStreamRequest(m.path, raw, raw, call.request, call.metadata, {});
        up.on('data', (b: Buffer) => call.write(b));
        up.on('end', () => call.end());
        up.on('error', (err: grpc.ServiceError) => call.emit('error', { code: err.code, details: err.details, metadata: err.metadata }));
        call.on('cancelled', () => up.cancel());
      };
    } else {
      handlers[name] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const c = leaderClient();
        if (!c) {
          cb(noLeader());
          return;
        }
        c.makeUnaryRequest(m.path, raw, raw, call.request, call.metadata, {}, (err, res) => {
          if (err) cb({ code: err.code, details: err.details, metadata: err.metadata });
          else cb(null, res);
        });
      };
    }
  }
  const grpcServer = new grpc.Server();
  grpcServer.addService(definition, handlers);
  const grpcPort = await new Promise<number>((resolve, reject) => {
    grpcServer.bindAsync(`${o.host}:${o.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });

  let closing: Promise<void> | undefined;
  return {
    httpUrl: `http://${o.host}:${httpPort}`,
    httpPort,
    grpcAddress: `${o.host}:${grpcPort}`,
    grpcPort,
    close() {
      closing ??= (async () => {
        client?.c.close();
        grpcServer.forceShutdown();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}
