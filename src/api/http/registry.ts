/**
 * The route registration point shared by every HTTP plugin (volumes now,
 * jobs later): a route is declared once, with its schemas, and becomes both
 * a fastify route and an OpenAPI operation.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal, Authenticator } from '../auth.js';
import type { Logger } from '../../obs/log.js';
import { ERROR_BODY, type JsonSchema } from './schemas.js';

/** HTTP methods the API uses. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One route as a plugin declares it. */
export interface RouteDef {
  readonly method: HttpMethod;
  /** fastify path syntax (`/v1/volumes/:name`). */
  readonly url: string;
  readonly summary: string;
  readonly tags?: readonly string[];
  /** Public routes skip authentication (health, metrics, docs). Default false. */
  readonly public?: boolean;
  /**
   * Mutating routes answer 503 NOT_READY while not subscribed or without Redis, once the request
   * is known to be well-formed (a bad one is a 400 whatever the readiness). `true`: the schemas
   * check the whole request, and readiness is checked after them, before the handler. `'handler'`:
   * the handler checks the body itself (a job spec, a volume request), then calls
   * `ctx.assertReady()`.
   */
  readonly requiresReady?: boolean | 'handler';
  readonly schema?: {
    readonly body?: JsonSchema;
    readonly params?: JsonSchema;
    readonly querystring?: JsonSchema;
    readonly headers?: JsonSchema;
  };
  /** Documented success answers: status → schema (not used for serialisation). */
  readonly responses?: Readonly<Record<number, { readonly description: string; readonly schema?: JsonSchema }>>;
  /** Extra body content types documented (e.g. application/yaml for jobs). */
  readonly bodyContentTypes?: readonly string[];
  readonly handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

/** What a plugin gets to register its routes. */
export interface HttpRouteContext {
  /** The fastify instance (for content-type parsers or raw streaming routes). */
  readonly app: FastifyInstance;
  readonly auth: Authenticator;
  readonly logger: Logger;
  /** Declare a route: fastify route + OpenAPI operation. */
  route(def: RouteDef): void;
  /** The authenticated principal of a request (throws UNAUTHENTICATED on public routes). */
  principal(req: FastifyRequest): Principal;
  /** Throw NOT_READY unless ready: for routes of `requiresReady: 'handler'`, after their checks. */
  assertReady(): void;
}

/** A group of routes (volumes, jobs, ...) registered by `createHttpServer`. */
export interface HttpPlugin {
  readonly name: string;
  register(ctx: HttpRouteContext): void | Promise<void>;
}

interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: unknown;
  description?: string;
}

function parametersOf(schema: JsonSchema | undefined, where: OpenApiParameter['in']): OpenApiParameter[] {
  if (!schema) return [];
  const props = (schema['properties'] ?? {}) as Record<string, Record<string, unknown>>;
  const required = new Set((schema['required'] ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => ({
    name: where === 'header' && name === 'idempotency-key' ? 'Idempotency-Key' : name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: s,
    ...(typeof s['description'] === 'string' ? { description: s['description'] } : {}),
  }));
}

/** Builds the OpenAPI 3.1 document from declared routes. */
export class OpenApiBuilder {
  private readonly paths: Record<string, Record<string, unknown>> = {};

  add(def: RouteDef): void {
    const path = def.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const op: Record<string, unknown> = {
      summary: def.summary,
      operationId: `${def.method.toLowerCase()}${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      ...(def.tags ? { tags: def.tags } : {}),
      ...(def.public ? { security: [] } : {}),
    };
    const parameters = [
      ...parametersOf(def.schema?.params, 'path'),
      ...parametersOf(def.schema?.querystring, 'query'),
      ...parametersOf(def.schema?.headers, 'header'),
    ];
    if (parameters.length > 0) op['parameters'] = parameters;
    if (def.schema?.body) {
      const content: Record<string, unknown> = { 'application/json': { schema: def.schema.body } };
      for (const t of def.bodyContentTypes ?? []) content[t] = { schema: def.schema.body };
      op['requestBody'] = { required: true, content };
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(def.responses ?? { 200: { description: 'OK' } })) {
      responses[status] = { description: r.description, ...(r.schema ? { content: { 'application/json': { schema: r.schema } } } : {}) };
    }
    responses['default'] = { description: 'an error from the catalog', content: { 'application/json': { schema: ERROR_BODY } } };
    op['responses'] = responses;
    (this.paths[path] ??= {})[def.method.toLowerCase()] = op;
  }

  /** The document. */
  build(title: string, version: string): Record<string, unknown> {
    return {
      openapi: '3.1.0',
      info: { title, version },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
      paths: this.paths,
    };
  }

  /** Every declared route as `METHOD path — summary` (for /docs). */
  list(): { method: string; path: string; summary: string }[] {
    const out: { method: string; path: string; summary: string }[] = [];
    for (const [path, ops] of Object.entries(this.paths)) {
      for (const [method, op] of Object.entries(ops)) out.push({ method: method.toUpperCase(), path, summary: String((op as { summary?: string }).summary ?? '') });
    }
    return out;
  }
}
