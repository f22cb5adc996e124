/**
 * Read-only views the dashboard needs and the rest of the API did not give:
 *
 * - `GET /v1/jobs/:id/splits?stage=N` — a stage's input splits with their
 *   replicas (hosts and racks), and where each split's task ran, so a user
 *   sees how much ran next to its data (the locality map). Bytes read locally
 *   vs over the network are derived from placement: a split's bytes count as
 *   local when its task's attempt ran on a host holding a replica.
 * - `GET /v1/cluster/resources` — per agent what it offers, what Locus's
 *   executors use and what volumes and reservations hold there; per tenant
 *   its DRF share against its weight and quota.
 *
 * Tenant scope as in the job routes: another tenant's job is 404; a tenant
 * sees only its own row of tenant shares.
 */
import type { FastifyRequest } from 'fastify';
import { LocusError } from '../../core/errors.js';
import { isObject } from '../../core/decode.js';
import { dominantShare, type ResourceVector } from '../../core/resources.js';
import { LOCALITY_NAMES } from '../../core/locality.js';
import type { JobRecord, TaskRecord } from '../../scheduler/jobs/model.js';
import type { HttpPlugin, HttpRouteContext } from './registry.js';
import { ID, type JsonSchema } from './schemas.js';

/** One input split as the store keeps it (hosts are agent hostnames). */
export interface InsightSplit {
  readonly uri: string;
  readonly offset: number;
  readonly length: number;
  readonly hosts: readonly string[];
  readonly racks: readonly string[];
}

/** An agent as the framework knows it, with the largest offer seen from it. */
export interface InsightAgent {
  readonly id: string;
  readonly hostname: string;
  readonly rack?: string;
  /** Resources the agent offered (the largest offer seen), undefined before any offer. */
  readonly offered?: ResourceVector;
}

/** A running executor and what it holds. */
export interface InsightExecutor {
  readonly id: string;
  readonly agentId: string;
  readonly tenant?: string;
  /** Resources the executor's container holds (all its slots). */
  readonly resources: ResourceVector;
}

/** A volume or capacity reservation holding resources on an agent. */
export interface InsightHolding {
  readonly kind: 'volume' | 'reservation';
  readonly tenant: string;
  readonly agentId?: string;
  readonly state: string;
  readonly resources: ResourceVector;
}

/** What the insight routes need from the application. */
export interface InsightDeps {
  readonly jobs: {
    get(jobId: string, tenant?: string): Promise<JobRecord>;
    tasks(jobId: string, tenant?: string): Promise<TaskRecord[]>;
    list(tenant?: string): Promise<JobRecord[]>;
  };
  /** Splits [start, end) of a stage, in task-index order. */
  splits(jobId: string, stage: number, start: number, end: number): Promise<readonly InsightSplit[]>;
  agents(): readonly InsightAgent[];
  executors(): readonly InsightExecutor[];
  /** Volumes and reservations not yet deleted. */
  holdings(): Promise<readonly InsightHolding[]>;
}

/** Most splits one answer carries (the page says how many more there are). */
export const MAX_SPLITS = 2000;

const TENANT: JsonSchema = { type: 'string', minLength: 1, maxLength: 63, pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'admin only: the tenant to act for' };
const VECTOR: JsonSchema = { type: 'object', properties: { cpus: { type: 'number' }, mem: { type: 'number' }, disk: { type: 'number' } } };

const SPLITS_VIEW: JsonSchema = {
  type: 'object',
  properties: {
    jobId: { type: 'string' }, stage: { type: 'integer' }, stageName: { type: 'string' },
    total: { type: 'integer', description: 'splits in the stage (the answer holds at most `limit`)' },
    bytesLocal: { type: 'integer' }, bytesNetwork: { type: 'integer' },
    splits: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          task: { type: 'string' }, index: { type: 'integer' }, uri: { type: 'string' }, offset: { type: 'integer' }, length: { type: 'integer' },
          hosts: { type: 'array', items: { type: 'string' } }, racks: { type: 'array', items: { type: 'string' } },
          state: { type: 'string', description: 'the task state (PENDING until attempted)' },
          ranOn: { type: 'string', description: 'host of the latest attempt' },
          locality: { type: 'string', enum: ['node-local', 'rack-local', 'any'] },
          bytesLocal: { type: 'integer' }, bytesNetwork: { type: 'integer' },
        },
      },
    },
  },
};

const RESOURCES_VIEW: JsonSchema = {
  type: 'object',
  properties: {
    viewer: { type: 'object', properties: { kind: { type: 'string', enum: ['admin', 'tenant'] }, tenant: { type: 'string' } } },
    total: VECTOR,
    agents: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' }, hostname: { type: 'string' }, rack: { type: 'string' },
          offered: VECTOR, used: VECTOR, reserved: VECTOR, executors: { type: 'integer' },
        },
      },
    },
    tenants: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' }, role: { type: 'string' }, weight: { type: 'number' }, quota: VECTOR,
          used: VECTOR, reserved: VECTOR, executors: { type: 'integer' }, runningTasks: { type: 'integer' }, pendingTasks: { type: 'integer' },
          dominantShare: { type: 'number', description: 'DRF: the largest of used/total over cpus, mem and disk (0..1)' },
          weightedShare: { type: 'number', description: 'dominantShare / weight: what weighted DRF orders tenants by' },
          fairShare: { type: 'number', description: 'weight over the weights of every tenant (0..1): the share weighted DRF steers toward' },
        },
      },
    },
  },
};

const str = (o: unknown, k: string): string | undefined => {
  if (!isObject(o)) return undefined;
  const v = o[k];
  return typeof v === 'string' ? v : undefined;
};
const ZERO: ResourceVector = { cpus: 0, mem: 0, disk: 0 };
const plus = (a: ResourceVector, b: ResourceVector): ResourceVector => ({ cpus: a.cpus + b.cpus, mem: a.mem + b.mem, disk: a.disk + b.disk });
// Shares are shown as percentages: four decimals is more than a person reads and keeps the JSON short.
const round = (n: number): number => Math.round(n * 10_000) / 10_000;

/** The insight routes as a plugin. */
export function insightRoutes(deps: InsightDeps): HttpPlugin {
  return {
    name: 'insight',
    register(ctx: HttpRouteContext) {
      const { auth } = ctx;
      const scopeOf = (req: FastifyRequest): string | undefined => auth.listScope(ctx.principal(req), str(req.query, 'tenant'));

      ctx.route({
        method: 'GET', url: '/v1/jobs/:id/splits',
        summary: "a stage's input splits: replicas (hosts, racks), where each task ran, bytes read locally vs over the network",
        tags: ['jobs'],
        schema: {
          params: { type: 'object', required: ['id'], properties: { id: ID } },
          querystring: {
            type: 'object', additionalProperties: false,
            properties: {
              tenant: TENANT,
              stage: { type: 'string', pattern: '^[0-9]{1,3}$', description: 'stage index (default 0)' },
              limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: `at most this many splits (default and most ${MAX_SPLITS})` },
            },
          },
        },
        responses: { 200: { description: 'the splits', schema: SPLITS_VIEW } },
        handler: async (req) => {
          const id = str(req.params, 'id') ?? '';
          const scope = scopeOf(req);
          const stage = Number(str(req.query, 'stage') ?? '0');
          const limit = Math.min(MAX_SPLITS, Math.max(1, Number(str(req.query, 'limit') ?? String(MAX_SPLITS))));
          const job = await deps.jobs.get(id, scope);
          const stageRecord = job.stages[stage];
          if (!stageRecord) throw new LocusError('NOT_FOUND', `job ${id} has no stage ${stage} (it has ${job.stages.length})`, { field: 'stage' });
          const total = Math.max(0, stageRecord.taskCount);
          const [splits, tasks] = await Promise.all([
            total === 0 ? Promise.resolve([]) : deps.splits(id, stage, 0, Math.min(total, limit)),
            deps.jobs.tasks(id, scope),
          ]);
          const byIndex = new Map(tasks.filter((t) => t.stage === stage).map((t) => [t.index, t]));
          let bytesLocal = 0;
          let bytesNetwork = 0;
          const out = splits.map((s, index) => {
            const task = byIndex.get(index);
            const latest = task?.attempts[task.attempts.length - 1];
            // Bytes are only known to be read once the task succeeded; a split with no replica
            // hosts (an earlier stage's output, an explicit task) reads nothing from this map.
            const ran = task?.state === 'SUCCEEDED' ? latest : undefined;
            const local = ran !== undefined && s.hosts.includes(ran.host) ? s.length : 0;
            const network = ran !== undefined && s.hosts.length > 0 && local === 0 ? s.length : 0;
            bytesLocal += local;
            bytesNetwork += network;
            return {
              task: `${id}.${stage}.${index}`, index, uri: s.uri, offset: s.offset, length: s.length, hosts: [...s.hosts], racks: [...s.racks],
              state: task?.state ?? 'PENDING',
              ...(latest ? { ranOn: latest.host, locality: LOCALITY_NAMES[latest.locality] ?? 'any' } : {}),
              bytesLocal: local, bytesNetwork: network,
            };
          });
          return { jobId: id, stage, stageName: stageRecord.name, total, bytesLocal, bytesNetwork, splits: out };
        },
      });

      ctx.route({
        method: 'GET', url: '/v1/cluster/resources',
        summary: "per agent: offered, used by executors, reserved; per tenant: DRF share against weight and quota",
        tags: ['cluster'],
        responses: { 200: { description: 'resources and shares', schema: RESOURCES_VIEW } },
        handler: async (req) => {
          const principal = ctx.principal(req);
          const agents = deps.agents();
          const executors = deps.executors();
          const holdings = (await deps.holdings()).filter((h) => h.state !== 'DELETED');
          const jobs = await deps.jobs.list(principal.kind === 'tenant' ? principal.tenant.name : undefined);
          const total = agents.reduce((a, g) => plus(a, g.offered ?? ZERO), ZERO);

          const agentRows = agents.map((g) => ({
            id: g.id, hostname: g.hostname, ...(g.rack === undefined ? {} : { rack: g.rack }),
            offered: g.offered ?? ZERO,
            used: executors.filter((e) => e.agentId === g.id).reduce((a, e) => plus(a, e.resources), ZERO),
            reserved: holdings.filter((h) => h.agentId === g.id).reduce((a, h) => plus(a, h.resources), ZERO),
            executors: executors.filter((e) => e.agentId === g.id).length,
          }));

          // Running tasks use the resources of their stage's task template: that is what the
          // executors' slots are sized by, so it is the tenant's usage DRF accounts for.
          const usage = new Map<string, { used: ResourceVector; running: number; pending: number }>();
          for (const j of jobs) {
            const u = usage.get(j.tenant) ?? { used: ZERO, running: 0, pending: 0 };
            const r = j.spec.stages[j.stage]?.task.resources ?? ZERO;
            usage.set(j.tenant, {
              used: plus(u.used, { cpus: r.cpus * j.counts.running, mem: r.mem * j.counts.running, disk: r.disk * j.counts.running }),
              running: u.running + j.counts.running,
              pending: u.pending + j.counts.pending,
            });
          }
          const all = auth.tenants();
          const weights = all.reduce((a, t) => a + t.weight, 0);
          const visible = principal.kind === 'admin' ? all : all.filter((t) => t.name === principal.tenant.name);
          const tenants = visible.map((t) => {
            const u = usage.get(t.name) ?? { used: ZERO, running: 0, pending: 0 };
            const share = dominantShare(u.used, total);
            return {
              name: t.name, role: t.role, weight: t.weight, ...(t.quota ? { quota: t.quota } : {}),
              used: u.used,
              reserved: holdings.filter((h) => h.tenant === t.name).reduce((a, h) => plus(a, h.resources), ZERO),
              executors: executors.filter((e) => e.tenant === t.name).length,
              runningTasks: u.running, pendingTasks: u.pending,
              dominantShare: round(share), weightedShare: round(share / (t.weight > 0 ? t.weight : 1)),
              fairShare: round(weights > 0 ? t.weight / weights : 0),
            };
          });
          return {
            viewer: principal.kind === 'admin' ? { kind: 'admin' } : { kind: 'tenant', tenant: principal.tenant.name },
            total, agents: agentRows, tenants,
          };
        },
      });
    },
  };
}

/** The framework's parts the insight views are computed from (see `insightDeps`). */
export interface InsightSources {
  readonly jobs: InsightDeps['jobs'];
  readonly store: { getSplits(jobId: string, stage: number, start: number, end: number): Promise<readonly InsightSplit[]> };
  /** Agents named up front (the embedded cluster), with their racks; may be empty. */
  readonly knownAgents: () => readonly { readonly id: string; readonly hostname: string; readonly rack?: string }[];
  /** Agents seen in offers, with the largest offer seen. */
  readonly offeredAgents: () => Iterable<{ readonly agentId: string; readonly hostname: string; readonly rack?: string; readonly total: ResourceVector }>;
  readonly executors: () => readonly { readonly executorId: string; readonly agentId: string; readonly tenant: string | undefined; readonly slots: number; readonly slotResources: ResourceVector }[];
  readonly volumes: {
    listVolumes(scope: Record<string, never>): Promise<readonly { readonly tenant: string; readonly agentId?: string; readonly state: string; readonly sizeMiB: number }[]>;
    listReservations(scope: Record<string, never>): Promise<readonly { readonly tenant: string; readonly agentId?: string; readonly state: string; readonly resources: ResourceVector }[]>;
  };
}

/** The insight dependencies from the framework's parts (kept here so the composition root stays one call). */
export function insightDeps(o: InsightSources): InsightDeps {
  return {
    jobs: o.jobs,
    splits: (jobId, stage, start, end) => o.store.getSplits(jobId, stage, start, end),
    agents() {
      const offered = new Map([...o.offeredAgents()].map((a) => [a.agentId, a] as const));
      const known = o.knownAgents();
      // The embedded cluster names every agent with its rack before any offer; elsewhere offers are all there is.
      const base = known.length > 0 ? known : [...offered.values()].map((a) => ({ id: a.agentId, hostname: a.hostname, ...(a.rack ? { rack: a.rack } : {}) }));
      return base.map((a) => {
        const seen = offered.get(a.id);
        const rack = a.rack ?? seen?.rack;
        return { id: a.id, hostname: a.hostname, ...(rack ? { rack } : {}), ...(seen ? { offered: seen.total } : {}) };
      });
    },
    executors: () => o.executors().map((e) => ({
      id: e.executorId, agentId: e.agentId, ...(e.tenant ? { tenant: e.tenant } : {}),
      resources: { cpus: e.slotResources.cpus * e.slots, mem: e.slotResources.mem * e.slots, disk: e.slotResources.disk * e.slots },
    })),
    async holdings() {
      const [vols, res] = await Promise.all([o.volumes.listVolumes({}), o.volumes.listReservations({})]);
      return [
        ...vols.map((v) => ({ kind: 'volume' as const, tenant: v.tenant, ...(v.agentId ? { agentId: v.agentId } : {}), state: v.state, resources: { cpus: 0, mem: 0, disk: v.sizeMiB } })),
        ...res.map((r) => ({ kind: 'reservation' as const, tenant: r.tenant, ...(r.agentId ? { agentId: r.agentId } : {}), state: r.state, resources: r.resources })),
      ];
    },
  };
}
