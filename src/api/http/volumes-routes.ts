/**
 * The volume and capacity-reservation routes. Handlers decide tenant scope
 * (a tenant sees only its own; naming another tenant is 403; another
 * tenant's resource by name or id is 404, so existence is not revealed),
 * validate with the same decoders the gRPC edge uses, and call the service.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LocusError } from '../../core/errors.js';
import { isObject } from '../../core/decode.js';
import { holdingView, validateReservationRequest, validateVolumeRequest, type VolumeRecord } from '../../volumes/model.js';
import type { VolumeService } from '../../volumes/service.js';
import type { HttpPlugin, HttpRouteContext } from './registry.js';
import { checkPinnedAgent, type AgentDirectory } from '../agents.js';
import {
  DELETE_QUERY, IDEMPOTENCY_HEADERS, LIST_QUERY, ONE_QUERY, RESERVATION_PARAMS, RESERVATION_REQUEST, RESERVATION_VIEW,
  VOLUME_PARAMS, VOLUME_REQUEST, VOLUME_VIEW,
} from './schemas.js';

const str = (o: unknown, k: string): string | undefined => {
  if (!isObject(o)) return undefined;
  const v = o[k];
  return typeof v === 'string' ? v : undefined;
};

const idemKey = (req: FastifyRequest): string | undefined => {
  const h = req.headers['idempotency-key'];
  return typeof h === 'string' ? h : undefined;
};

/** The volume routes as a plugin; with `agents`, requests pinned to an unknown agent are refused. */
export function volumeRoutes(volumes: VolumeService, agents?: AgentDirectory): HttpPlugin {
  return {
    name: 'volumes',
    register(ctx: HttpRouteContext) {
      const { auth } = ctx;

      /** Find a volume by name in the caller's scope (the admin without `tenant` finds it if unique). */
      const findVolume = async (req: FastifyRequest, name: string): Promise<VolumeRecord> => {
        const principal = ctx.principal(req);
        const requested = str(req.query, 'tenant');
        if (principal.kind === 'tenant' || requested !== undefined) {
          return await volumes.getVolume(auth.actingTenant(principal, requested).name, name);
        }
        const matches = (await volumes.listVolumes({})).filter((v) => v.name === name);
        if (matches.length === 1 && matches[0]) return matches[0];
        if (matches.length > 1) {
          throw new LocusError('CONFLICT', `several tenants have a volume '${name}': add ?tenant=`, { field: 'tenant', details: { tenants: matches.map((m) => m.tenant) } });
        }
        return await volumes.getVolume(auth.actingTenant(principal).name, name);
      };

      ctx.route({
        method: 'POST', url: '/v1/volumes', summary: 'request a persistent volume', tags: ['volumes'], requiresReady: 'handler',
        schema: { body: VOLUME_REQUEST, headers: IDEMPOTENCY_HEADERS },
        responses: { 201: { description: 'requested', schema: VOLUME_VIEW }, 200: { description: 'replayed (same Idempotency-Key)', schema: VOLUME_VIEW } },
        handler: async (req: FastifyRequest, reply: FastifyReply) => {
          const principal = ctx.principal(req);
          const spec = validateVolumeRequest(req.body);
          const tenant = auth.actingTenant(principal, spec.tenant);
          ctx.assertReady();
          checkPinnedAgent(spec.placement.agent, agents);
          const { record, created } = await volumes.createVolume(tenant, spec, idemKey(req));
          reply.header('location', `/v1/volumes/${encodeURIComponent(record.name)}${principal.kind === 'admin' ? `?tenant=${record.tenant}` : ''}`);
          if (!created) reply.header('idempotent-replayed', 'true');
          return reply.status(created ? 201 : 200).send(holdingView(record));
        },
      });

      ctx.route({
        method: 'GET', url: '/v1/volumes', summary: 'list volumes', tags: ['volumes'],
        schema: { querystring: LIST_QUERY },
        responses: { 200: { description: 'the volumes', schema: { type: 'object', properties: { volumes: { type: 'array', items: VOLUME_VIEW } } } } },
        handler: async (req) => {
          const scope = auth.listScope(ctx.principal(req), str(req.query, 'tenant'));
          const list = auth.listed(scope, await volumes.listVolumes(scope === undefined ? {} : { tenant: scope }, str(req.query, 'all') === 'true'));
          return { volumes: list.map(holdingView) };
        },
      });

      ctx.route({
        method: 'GET', url: '/v1/volumes/:name', summary: 'one volume, with its state', tags: ['volumes'],
        schema: { params: VOLUME_PARAMS, querystring: ONE_QUERY },
        responses: { 200: { description: 'the volume', schema: VOLUME_VIEW } },
        handler: async (req) => holdingView(await findVolume(req, str(req.params, 'name') ?? '')),
      });

      ctx.route({
        method: 'DELETE', url: '/v1/volumes/:name', summary: 'delete a volume (force=true for an UNAVAILABLE one)', tags: ['volumes'], requiresReady: true,
        schema: { params: VOLUME_PARAMS, querystring: DELETE_QUERY },
        responses: { 202: { description: 'teardown under way', schema: VOLUME_VIEW }, 200: { description: 'deleted', schema: VOLUME_VIEW } },
        handler: async (req, reply) => {
          const v = await findVolume(req, str(req.params, 'name') ?? '');
          const force = ['true', '1'].includes(str(req.query, 'force') ?? '');
          const after = await volumes.deleteVolume(v.tenant, v.name, force);
          return reply.status(after.state === 'DELETED' ? 200 : 202).send(holdingView(after));
        },
      });

      ctx.route({
        method: 'POST', url: '/v1/reservations', summary: 'reserve capacity (cpus/mem/disk) for a tenant', tags: ['reservations'], requiresReady: 'handler',
        schema: { body: RESERVATION_REQUEST, headers: IDEMPOTENCY_HEADERS },
        responses: { 201: { description: 'requested', schema: RESERVATION_VIEW }, 200: { description: 'replayed', schema: RESERVATION_VIEW } },
        handler: async (req, reply) => {
          const principal = ctx.principal(req);
          const spec = validateReservationRequest(req.body);
          const tenant = auth.actingTenant(principal, spec.tenant);
          ctx.assertReady();
          checkPinnedAgent(spec.placement.agent, agents);
          const { record, created } = await volumes.createReservation(tenant, spec, idemKey(req));
          reply.header('location', `/v1/reservations/${record.id}`);
          if (!created) reply.header('idempotent-replayed', 'true');
          return reply.status(created ? 201 : 200).send(holdingView(record));
        },
      });

      ctx.route({
        method: 'GET', url: '/v1/reservations', summary: 'list capacity reservations', tags: ['reservations'],
        schema: { querystring: LIST_QUERY },
        responses: { 200: { description: 'the reservations', schema: { type: 'object', properties: { reservations: { type: 'array', items: RESERVATION_VIEW } } } } },
        handler: async (req) => {
          const scope = auth.listScope(ctx.principal(req), str(req.query, 'tenant'));
          const list = auth.listed(scope, await volumes.listReservations(scope === undefined ? {} : { tenant: scope }, str(req.query, 'all') === 'true'));
          return { reservations: list.map(holdingView) };
        },
      });

      const reservationScope = (req: FastifyRequest): { tenant?: string } => {
        const p = ctx.principal(req);
        return p.kind === 'tenant' ? { tenant: p.tenant.name } : {};
      };

      ctx.route({
        method: 'GET', url: '/v1/reservations/:id', summary: 'one capacity reservation', tags: ['reservations'],
        schema: { params: RESERVATION_PARAMS },
        responses: { 200: { description: 'the reservation', schema: RESERVATION_VIEW } },
        handler: async (req) => holdingView(await volumes.getReservation(str(req.params, 'id') ?? '', reservationScope(req))),
      });

      ctx.route({
        method: 'DELETE', url: '/v1/reservations/:id', summary: 'release a capacity reservation', tags: ['reservations'], requiresReady: true,
        schema: { params: RESERVATION_PARAMS, querystring: DELETE_QUERY },
        responses: { 202: { description: 'teardown under way', schema: RESERVATION_VIEW }, 200: { description: 'deleted', schema: RESERVATION_VIEW } },
        handler: async (req, reply) => {
          const force = ['true', '1'].includes(str(req.query, 'force') ?? '');
          const after = await volumes.deleteReservation(str(req.params, 'id') ?? '', reservationScope(req), force);
          return reply.status(after.state === 'DELETED' ? 200 : 202).send(holdingView(after));
        },
      });
    },
  };
}
