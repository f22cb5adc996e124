/**
 * The HTTP API server (fastify). It is handed service objects and plugins;
 * it authenticates every non-public request first (401 before any parsing or
 * validation), validates with JSON Schema, answers every error from the
 * catalog, and serves /healthz, /readyz, /metrics, /openapi.json and /docs.
 *
 * Extending it: pass more `plugins` (e.g. the jobs routes); each declares
 * its routes through `HttpRouteContext.route` and gets auth, validation,
 * the error catalog and OpenAPI for free.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { refuseProtoKey } from '../../core/decode.js';
import { LocusError } from '../../core/errors.js';
import type { Logger } from '../../obs/log.js';
import type { VolumeService } from '../../volumes/service.js';
import type { AgentDirectory } from '../agents.js';
import type { Authenticator, Principal } from '../auth.js';
import { assertReady } from '../readiness.js';
import { toLocusError } from './errors.js';
import { OpenApiBuilder, type HttpPlugin, type HttpRouteContext, type RouteDef } from './registry.js';
import { volumeRoutes } from './volumes-routes.js';

/** Readiness as the app knows it. */
export interface HealthPort {
  ready(): { readonly subscribed: boolean; readonly redis: boolean; readonly role?: 'leader' | 'standby' };
}

/** The services the HTTP API is handed. Further services (jobs) travel with their plugins. */
export interface HttpServices {
  readonly volumes: VolumeService;
  readonly health: HealthPort;
  /** The agents the framework knows: volumes and reservations pinned to another are refused (400). */
  readonly agents?: AgentDirectory;
}

/** Options of createHttpServer. */
export interface HttpServerOptions {
  readonly services: HttpServices;
  readonly auth: Authenticator;
  readonly logger: Logger;
  /** prom-client registry served at /metrics (a request counter is added to it). */
  readonly metrics?: Registry;
  /** Largest accepted body in bytes (413 above). Default 64 KiB. */
  readonly bodyLimit?: number;
  /** More route groups (e.g. jobs), registered after the volume routes. */
  readonly plugins?: readonly HttpPlugin[];
  readonly title?: string;
  readonly version?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    locusPrincipal: Principal | null;
  }
  interface FastifyContextConfig {
    locusPublic?: boolean;
    locusReady?: boolean;
  }
}

function docsPage(title: string, routes: { method: string; path: string; summary: string }[]): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const rows = routes.map((r) => `<tr><td><code>${esc(r.method)}</code></td><td><code>${esc(r.path)}</code></td><td>${esc(r.summary)}</td></tr>`).join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:2em}td{padding:.2em 1em;border-bottom:1px solid #ddd}</style></head>
<body><h1>${esc(title)}</h1><p>Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>. Errors answer
<code>{"error":{"code","message","field"}}</code>. Machine-readable: <a href="/openapi.json">/openapi.json</a>.</p>
<table>${rows}</table></body></html>`;
}

function metricsCounter(registry: Registry): Counter<'method' | 'route' | 'status'> {
  const name = 'locus_http_requests_total';
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<'method' | 'route' | 'status'>;
  return new Counter({ name, help: 'HTTP requests answered, by method, route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
}

/** Most bytes of a refused body read and thrown away, and for how long, before the connection is cut. */
const DISCARD_MAX_BYTES = 256 * 1024 * 1024;
const DISCARD_MAX_MS = 60_000;

/**
 * Read and throw away what is left of a request body that was refused, so
 * the client finishes sending before it is answered and the connection can
 * close cleanly. Resolves when the body has ended; a client that sends more
 * than DISCARD_MAX_BYTES or takes longer than DISCARD_MAX_MS is cut off.
 */
function discardRestOfBody(raw: IncomingMessage): Promise<void> {
  if (raw.readableEnded || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let bytes = 0;
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const cut = (): void => {
      raw.destroy();
      done();
    };
    const timer = setTimeout(cut, DISCARD_MAX_MS);
    timer.unref();
    raw.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > DISCARD_MAX_BYTES) cut();
    });
    raw.once('end', done);
    raw.once('close', done);
    raw.once('error', done);
    raw.resume();
  });
}

/**
 * Answer a request Node's HTTP parser refused (bad request line, header,
 * Content-Length or chunking; a head over the size limit) with the catalog's
 * body, then close: the connection's framing can no longer be trusted.
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const e = err.code === 'HPE_HEADER_OVERFLOW'
    ? new LocusError('TOO_LARGE', 'request headers are larger than the limit', { field: 'headers' })
    : new LocusError('INVALID_BODY', `malformed HTTP request (${err.code ?? 'parse error'})`, { field: 'request' });
  answerSocket(socket, e);
}

/** Write a catalog error as a whole HTTP/1.1 answer on a raw socket and close it. */
function answerSocket(socket: Duplex, e: LocusError): void {
  const body = JSON.stringify(e.toJSON());
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${e.spec.httpStatus} ${STATUS_CODES[e.spec.httpStatus] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  // Ended, not destroyed at once: a client still sending would otherwise see a reset before the answer.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * Longest path parameter routed (fastify's default is 100). Ids are validated
 * by the routes' schemas (up to 160 characters), so the router must let them
 * through to be answered by the schema, not cut off before it.
 */
const MAX_PARAM_LENGTH = 256;

/** Build the fastify app (not yet listening): `await app.listen({ host: '127.0.0.1', port })`. */
export async function createHttpServer(options: HttpServerOptions): Promise<FastifyInstance> {
  const { auth, logger, services } = options;
  const baseLogger: FastifyBaseLogger = logger;
  const app: FastifyInstance = Fastify({
    loggerInstance: baseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    // Unknown fields are errors (not silently dropped), and types are not coerced: `"name": 12` is a 400.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    // Errors raised before routing (a path that is not valid percent-encoding) and by
    // Node's HTTP parser (a malformed request line, header or body framing) would
    // otherwise answer fastify's own body; they answer the catalog's like every other.
    frameworkErrors: (err, _req, reply) => {
      const e = err.code === 'FST_ERR_BAD_URL'
        ? new LocusError('INVALID_FIELD', 'path: not a valid URL (bad percent-encoding)', { field: 'path' })
        : err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new LocusError('INVALID_FIELD', `path: a path segment is longer than ${MAX_PARAM_LENGTH} characters`, { field: 'path' })
          : (err.statusCode ?? 500) < 500 ? new LocusError('INVALID_FIELD', `path: ${err.message}`, { field: 'path' }) : toLocusError(err);
      // The option's reply type is generic over route schemas; this answer has none.
      void (reply as unknown as FastifyReply).status(e.spec.httpStatus).type('application/json').send(e.toJSON());
    },
    clientErrorHandler: answerClientError,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // A client that sends less body than it announced, and never closes, would otherwise hold
    // its connection forever. This bounds receiving the request only: event streams and log
    // follows are long responses to short requests and are not cut.
    requestTimeout: 30_000,
  });
  // CONNECT is not routed: without a listener Node closes the connection with no answer at all.
  app.server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const e = new LocusError('NOT_FOUND', `no route ${req.method ?? 'CONNECT'} ${(req.url ?? '').slice(0, 200)}`);
    answerSocket(socket, e);
  });
  const openapi = new OpenApiBuilder();
  const counter = options.metrics ? metricsCounter(options.metrics) : undefined;

  app.decorateRequest('locusPrincipal', null);

  // Authentication runs at onRequest: before the body is read, parsed or validated.
  app.addHook('onRequest', async (req) => {
    if (req.routeOptions.config?.locusPublic === true) return;
    req.locusPrincipal = auth.authenticateHeader(req.headers.authorization);
  });
  // Readiness of mutating routes after validation: a bad request is a 400 even while not ready.
  // Routes whose handler checks the body itself (requiresReady: 'handler') call ctx.assertReady.
  app.addHook('preHandler', async (req) => {
    if (req.routeOptions.config?.locusReady !== true) return;
    assertReady(services.health.ready());
  });
  app.addHook('onResponse', async (req, reply) => {
    counter?.inc({ method: req.method, route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
  });

  const bodyLimit = options.bodyLimit ?? 64 * 1024;
  app.setErrorHandler(async (err, req, reply) => {
    let e = toLocusError(err);
    if (e.spec.httpStatus >= 500) logger.error({ err, url: req.url, method: req.method }, 'request failed');
    if (e.code === 'UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer');
    if (e.code === 'TOO_LARGE' && e.field === 'body') {
      e = new LocusError('TOO_LARGE', `request body is larger than the limit of ${bodyLimit} bytes`, { field: 'body', details: { limitBytes: bodyLimit } });
      // Fastify answers and closes the connection before the body is read. A client still
      // uploading then meets a reset (a socket closed with unread bytes), which throws away
      // the 413 before it is read. Read the rest and throw it away (bounded), then answer.
      await discardRestOfBody(req.raw);
    }
    return reply.status(e.spec.httpStatus).type('application/json').send(e.toJSON());
  });
  // JSON bodies are parsed here rather than by fastify's parser, whose prototype-poisoning check
  // reports a `__proto__` key as "not valid JSON": it is valid JSON, refused for what it would do
  // (refuseProtoKey), and the answer names the key. A `constructor` key is an ordinary key then:
  // JSON.parse makes it an own property, and the routes' validation refuses it where it is unknown.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text === '') {
      done(new LocusError('INVALID_BODY', 'empty JSON body', { field: 'body' }), undefined);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text) as unknown;
    } catch (err) {
      done(new LocusError('INVALID_BODY', `body is not valid JSON: ${(err as Error).message}`, { field: 'body' }), undefined);
      return;
    }
    try {
      refuseProtoKey(parsed);
    } catch (err) {
      done(err as Error, undefined);
      return;
    }
    done(null, parsed);
  });
  app.setNotFoundHandler(async (req, reply) => {
    const e = new LocusError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`);
    return reply.status(404).send(e.toJSON());
  });

  const ctx: HttpRouteContext = {
    app,
    auth,
    logger,
    route(def: RouteDef) {
      openapi.add(def);
      app.route({
        method: def.method,
        url: def.url,
        config: { locusPublic: def.public === true, locusReady: def.requiresReady === true },
        schema: { ...def.schema },
        handler: def.handler,
      });
    },
    assertReady() {
      assertReady(services.health.ready());
    },
    principal(req: FastifyRequest): Principal {
      if (!req.locusPrincipal) throw new LocusError('UNAUTHENTICATED', 'missing or invalid bearer token', { field: 'Authorization' });
      return req.locusPrincipal;
    },
  };

  // Operational routes: public, so probes and scrapers need no token.
  ctx.route({
    method: 'GET', url: '/healthz', public: true, summary: 'the process is up', tags: ['ops'],
    handler: async () => ({ status: 'ok' }),
  });
  ctx.route({
    method: 'GET', url: '/readyz', public: true, summary: 'subscribed to a master and connected to Redis', tags: ['ops'],
    responses: { 200: { description: 'ready' }, 503: { description: 'not ready' } },
    handler: async (_req, reply) => {
      const r = services.health.ready();
      const ok = r.subscribed && r.redis;
      return reply.status(ok ? 200 : 503).send({ ready: ok, subscribed: r.subscribed, redis: r.redis, ...(r.role ? { role: r.role } : {}) });
    },
  });
  ctx.route({
    method: 'GET', url: '/metrics', public: true, summary: 'Prometheus metrics', tags: ['ops'],
    handler: async (_req, reply) => {
      if (!options.metrics) return reply.type('text/plain; version=0.0.4').send('');
      return reply.type(options.metrics.contentType).send(await options.metrics.metrics());
    },
  });

  await volumeRoutes(services.volumes, services.agents).register(ctx);
  for (const p of options.plugins ?? []) await p.register(ctx);

  const title = options.title ?? 'Locus API';
  const version = options.version ?? '0.1.0';
  // Registered last so they describe every plugin's routes.
  app.get('/openapi.json', { config: { locusPublic: true } }, async () => openapi.build(title, version));
  app.get('/docs', { config: { locusPublic: true } }, async (_req, reply) => reply.type('text/html; charset=utf-8').send(docsPage(title, openapi.list())));
  return app;
}
