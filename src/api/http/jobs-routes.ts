/**
 * The job routes: submit (JSON or YAML), list, show, tasks, cancel, a
 * server-sent event stream per job, task logs (tail and follow, read from
 * the sandbox through the agent), explain, and a cluster view.
 *
 * Tenant scope is decided here, as in the volume routes: a tenant sees only
 * its own jobs; naming another tenant is 403; another tenant's job or task
 * by id is 404, so its existence is not revealed. The admin sees every job
 * and may submit for a tenant with `?tenant=`.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LocusError } from '../../core/errors.js';
import type { OutputPlaces } from '../../storage/output-layout.js';
import { isObject } from '../../core/decode.js';
import type { JobEvent, JobService } from '../../scheduler/jobs/service.js';
import { parseJobSpecText, validateJobSpec, type JobSpec } from '../../scheduler/jobs/spec.js';
import { TERMINAL_JOB_STATES, TERMINAL_TASK_STATES, type AttemptRecord, type JobRecord, type TaskRecord } from '../../scheduler/jobs/model.js';
import type { Explanation } from '../../scheduler/coordinator.js';
import type { HttpPlugin, HttpRouteContext } from './registry.js';
import { ID, IDEMPOTENCY_HEADERS, type JsonSchema } from './schemas.js';
import { openSse, type SseStream } from './sse.js';
import {
  CLUSTER_VIEW_SCHEMA, EXPLANATION_SCHEMA, JOB_SPEC_BODY, JOB_VIEW_SCHEMA, TASK_VIEW_SCHEMA,
  eventView, explanationView, jobView, snapshotEvent, taskView, type ClusterView, type JobView,
} from './jobs-views.js';
import { FOLLOW_CHUNK_BYTES, readAll, readTail, type LogStream, type TaskLogReader } from './jobs-logs.js';
import { JobWatchers } from '../../scheduler/jobs/watchers.js';

/** What the job routes need from the application. */
export interface JobRoutesDeps {
  readonly jobs: JobService;
  /** Why a task is (not) running: the coordinator's explain. */
  explain(taskId: string, tenant?: string): Promise<Explanation>;
  /** Cancel a job and kill its running attempts (see `cancelJob`). */
  cancel(jobId: string, tenant?: string): Promise<JobRecord>;
  readonly logs: TaskLogReader;
  cluster(): Promise<ClusterView>;
  /** Interval of SSE heartbeat comments (ms, default 15 000). */
  readonly heartbeatMs?: number;
  /** How often a followed log is polled for new bytes (ms, default 500). */
  readonly logPollMs?: number;
  /** Where outputs go (job views name host-kept outputs by it); absent: on the shared output root. */
  readonly outputs?: OutputPlaces;
}

/** The usual `cancel` dependency: the job service cancels, the coordinator kills what runs. */
export function cancelJob(
  jobs: Pick<JobService, 'cancel'>,
  killer: { cancelAttempts(kill: readonly { taskId: string; executorId: string; attemptId: string }[]): Promise<void> },
): (jobId: string, tenant?: string) => Promise<JobRecord> {
  return async (jobId, tenant) => {
    const { job, kill } = await jobs.cancel(jobId, tenant);
    if (kill.length > 0) await killer.cancelAttempts(kill);
    return job;
  };
}

/** Content types a YAML job spec may be sent with. */
export const YAML_CONTENT_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'] as const;

const TENANT: JsonSchema = { type: 'string', minLength: 1, maxLength: 63, pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'admin only: the tenant to act for' };
const JOB_PARAMS: JsonSchema = { type: 'object', required: ['id'], properties: { id: ID } };
const TASK_PARAMS: JsonSchema = { type: 'object', required: ['id'], properties: { id: { ...ID, description: 'a task id: <jobId>.<stage>.<index>' } } };
const SCOPE_QUERY: JsonSchema = { type: 'object', additionalProperties: false, properties: { tenant: TENANT } };
const JOB_STATES = ['PENDING', 'RESOLVING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
const TASK_STATES = ['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
const BOOL: JsonSchema = { type: 'string', enum: ['true', 'false', '1', '0'] };
const COUNT = (max: number, description: string): JsonSchema => ({ type: 'string', pattern: `^[0-9]{1,${String(max).length}}$`, description });

const str = (o: unknown, k: string): string | undefined => {
  if (!isObject(o)) return undefined;
  const v = o[k];
  return typeof v === 'string' ? v : undefined;
};
const flag = (o: unknown, k: string): boolean => ['true', '1'].includes(str(o, k) ?? '');
const isTerminalJob = (s: string): boolean => (TERMINAL_JOB_STATES as ReadonlySet<string>).has(s);
const isTerminalTask = (s: string): boolean => (TERMINAL_TASK_STATES as ReadonlySet<string>).has(s);

/** The job routes plugin; `activeStreams` counts open event streams and followed logs. */
export type JobsPlugin = HttpPlugin & { activeStreams(): number };

/** The job routes as a plugin. */
export function jobsRoutes(deps: JobRoutesDeps): JobsPlugin {
  const { jobs } = deps;
  const asView = (job: JobRecord): JobView => jobView(job, deps.outputs);
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const pollMs = deps.logPollMs ?? 500;
  // Closers of long-lived responses, which would hold server.close() open forever.
  const openStreams = new Set<() => void>();
  return {
    name: 'jobs',
    activeStreams: () => openStreams.size,
    register(ctx: HttpRouteContext) {
      const { auth } = ctx;
      const watchers = new JobWatchers();
      jobs.on('event', watchers.listener);
      ctx.app.addHook('preClose', async () => {
        for (const close of [...openStreams]) close();
      });
      ctx.app.addHook('onClose', async () => {
        jobs.off('event', watchers.listener);
      });

      for (const type of YAML_CONTENT_TYPES) {
        if (!ctx.app.hasContentTypeParser(type)) {
          // Kept as text: parseJobSpecText bounds the size and the YAML aliases itself.
          ctx.app.addContentTypeParser(type, { parseAs: 'string' }, (_req, body, done) => done(null, body));
        }
      }

      /** The tenant a read is restricted to: a tenant's own; the admin's `?tenant=` or all. */
      const scopeOf = (req: FastifyRequest): string | undefined => auth.listScope(ctx.principal(req), str(req.query, 'tenant'));
      const idOf = (req: FastifyRequest): string => str(req.params, 'id') ?? '';

      ctx.route({
        method: 'POST', url: '/v1/jobs', summary: 'submit a job (JSON, or YAML with Content-Type application/yaml)', tags: ['jobs'], requiresReady: 'handler',
        schema: { body: JOB_SPEC_BODY, headers: IDEMPOTENCY_HEADERS, querystring: SCOPE_QUERY },
        bodyContentTypes: [...YAML_CONTENT_TYPES],
        responses: {
          201: { description: 'submitted', schema: JOB_VIEW_SCHEMA },
          200: { description: 'replayed (the same Idempotency-Key and spec)', schema: JOB_VIEW_SCHEMA },
        },
        handler: async (req: FastifyRequest, reply: FastifyReply) => {
          const principal = ctx.principal(req);
          const tenant = auth.actingTenant(principal, str(req.query, 'tenant'));
          const spec: JobSpec = typeof req.body === 'string'
            ? parseJobSpecText(req.body, req.headers['content-type'])
            : validateJobSpec(req.body);
          const key = req.headers['idempotency-key'];
          const idempotencyKey = typeof key === 'string' ? key : undefined;
          ctx.assertReady();
          // A key used before with another spec is refused (CONFLICT) by the service.
          const { job, created } = await submitTracked(jobs, tenant.name, spec, idempotencyKey);
          reply.header('location', `/v1/jobs/${job.id}`);
          if (!created) reply.header('idempotent-replayed', 'true');
          return reply.status(created ? 201 : 200).send(asView(job));
        },
      });

      ctx.route({
        method: 'GET', url: '/v1/jobs', summary: 'list jobs, newest first', tags: ['jobs'],
        schema: { querystring: { type: 'object', additionalProperties: false, properties: { tenant: TENANT, state: { type: 'string', enum: JOB_STATES } } } },
        responses: { 200: { description: 'the jobs', schema: { type: 'object', properties: { jobs: { type: 'array', items: JOB_VIEW_SCHEMA } } } } },
        handler: async (req) => {
          const state = str(req.query, 'state');
          const scope = scopeOf(req);
          const list = auth.listed(scope, await jobs.list(scope));
          return { jobs: list.filter((j) => state === undefined || j.state === state).map(asView) };
        },
      });

      ctx.route({
        method: 'GET', url: '/v1/jobs/:id', summary: 'one job: state, stages, task counts and locality', tags: ['jobs'],
        schema: { params: JOB_PARAMS, querystring: SCOPE_QUERY },
        responses: { 200: { description: 'the job', schema: JOB_VIEW_SCHEMA } },
        handler: async (req) => asView(await jobs.get(idOf(req), scopeOf(req))),
      });

      ctx.route({
        method: 'GET', url: '/v1/jobs/:id/tasks', summary: "a job's attempted tasks with their attempts", tags: ['jobs'],
        schema: {
          params: JOB_PARAMS,
          querystring: {
            type: 'object', additionalProperties: false,
            properties: { tenant: TENANT, state: { type: 'string', enum: TASK_STATES }, limit: COUNT(100_000, 'at most this many tasks (default 1000)') },
          },
        },
        responses: {
          200: {
            description: 'tasks that were attempted at least once; never-attempted ones are only counted',
            schema: { type: 'object', properties: { jobId: { type: 'string' }, tasks: { type: 'array', items: TASK_VIEW_SCHEMA }, attempted: { type: 'integer' }, neverAttempted: { type: 'integer' } } },
          },
        },
        handler: async (req) => {
          const id = idOf(req);
          const scope = scopeOf(req);
          const [job, records] = await Promise.all([jobs.get(id, scope), jobs.tasks(id, scope)]);
          const state = str(req.query, 'state');
          const limit = Number(str(req.query, 'limit') ?? '1000');
          const tasks = records.filter((t) => state === undefined || t.state === state).slice(0, limit).map(taskView);
          return { jobId: id, tasks, attempted: records.length, neverAttempted: Math.max(0, job.counts.total - records.length) };
        },
      });

      ctx.route({
        method: 'POST', url: '/v1/jobs/:id/cancel', summary: 'cancel a job: pending tasks dropped, running attempts killed', tags: ['jobs'], requiresReady: true,
        schema: { params: JOB_PARAMS, querystring: SCOPE_QUERY },
        responses: { 200: { description: 'the job after cancelling (unchanged when it had already finished)', schema: JOB_VIEW_SCHEMA } },
        handler: async (req) => asView(await deps.cancel(idOf(req), scopeOf(req))),
      });

      // The REST spelling of the same cancel: jobs are never deleted, so DELETE means "stop it".
      ctx.route({
        method: 'DELETE', url: '/v1/jobs/:id', summary: 'cancel a job (as POST /v1/jobs/:id/cancel): pending tasks dropped, running attempts killed; the record stays', tags: ['jobs'], requiresReady: true,
        schema: { params: JOB_PARAMS, querystring: SCOPE_QUERY },
        responses: { 200: { description: 'the job after cancelling (unchanged when it had already finished)', schema: JOB_VIEW_SCHEMA } },
        handler: async (req) => asView(await deps.cancel(idOf(req), scopeOf(req))),
      });

      // Deleting for good is separate from DELETE (cancel): only a finished job's record goes,
      // and with it the commit records of its tasks; the committed outputs stay.
      ctx.route({
        method: 'POST', url: '/v1/jobs/:id/purge', summary: "delete a finished job's record, tasks and commit records (outputs stay); 409 CONFLICT while it runs", tags: ['jobs'], requiresReady: true,
        schema: { params: JOB_PARAMS, querystring: SCOPE_QUERY },
        responses: { 200: { description: 'what was deleted', schema: { type: 'object', properties: { jobId: { type: 'string' }, commitRecords: { type: 'integer' } } } } },
        handler: async (req) => await jobs.purge(idOf(req), scopeOf(req)),
      });

      ctx.route({
        method: 'GET', url: '/v1/jobs/:id/events',
        summary: 'server-sent events: the job as it is now (event: job, with `job`), then each job and task event, until the job ends',
        tags: ['jobs'],
        schema: { params: JOB_PARAMS, querystring: SCOPE_QUERY },
        responses: { 200: { description: 'text/event-stream; heartbeat comments every 15 s' } },
        handler: async (req, reply) => {
          const id = idOf(req);
          const scope = scopeOf(req);
          // Checked before the stream opens, so an unknown or foreign job is a plain 404.
          await jobs.get(id, scope);
          const stream = openSse(reply, { heartbeatMs });
          await streamJob(stream, id, scope);
        },
      });

      /** Subscribe first, then read the current state, so no event falls between the two. */
      const streamJob = async (stream: SseStream, id: string, scope: string | undefined): Promise<void> => {
        let live = false;
        const early: JobEvent[] = [];
        const deliver = (e: JobEvent): void => {
          stream.send(e.kind, eventView(e));
          if (e.kind === 'job' && isTerminalJob(e.state)) stream.close();
        };
        const unwatch = watchers.watch(id, (e) => {
          if (live) deliver(e);
          else early.push(e);
        });
        const close = (): void => stream.close();
        openStreams.add(close);
        stream.onClose(() => {
          unwatch();
          openStreams.delete(close);
        });
        let job: JobRecord;
        try {
          job = await jobs.get(id, scope);
        } catch (err) {
          ctx.logger.warn({ err: String(err), jobId: id }, 'event stream: reading the job failed');
          stream.close();
          return;
        }
        stream.send('job', snapshotEvent(job, deps.outputs));
        if (isTerminalJob(job.state)) {
          stream.close();
          return;
        }
        live = true;
        // Events from the window between subscribing and reading may already be in the snapshot;
        // replaying them is harmless (clients treat the snapshot's counts as a base).
        for (const e of early.splice(0)) {
          if (stream.closed) break;
          deliver(e);
        }
      };

      ctx.route({
        method: 'GET', url: '/v1/tasks/:id/logs',
        summary: "a task attempt's stdout or stderr from its sandbox (tail=N lines; follow=true streams until the task ends)",
        tags: ['tasks'],
        schema: {
          params: TASK_PARAMS,
          querystring: {
            type: 'object', additionalProperties: false,
            properties: {
              tenant: TENANT,
              stream: { type: 'string', enum: ['stdout', 'stderr'], description: 'default stdout' },
              tail: COUNT(1_000_000, 'only the last N lines'),
              follow: { ...BOOL, description: 'keep the response open and send new output until the task ends' },
              attempt: COUNT(10_000, 'an attempt number (default the latest)'),
            },
          },
        },
        responses: { 200: { description: 'text/plain log text' } },
        handler: async (req, reply) => {
          const taskId = idOf(req);
          const scope = scopeOf(req);
          const stream: LogStream = str(req.query, 'stream') === 'stderr' ? 'stderr' : 'stdout';
          const tailRaw = str(req.query, 'tail');
          const tail = tailRaw === undefined ? undefined : Number(tailRaw);
          const follow = flag(req.query, 'follow');
          const wanted = str(req.query, 'attempt');
          const { record } = await jobs.task(taskId, scope);
          const attempts = record?.attempts ?? [];
          const attempt = wanted === undefined ? attempts[attempts.length - 1] : attempts.find((a) => a.attempt === Number(wanted));
          if (wanted !== undefined && !attempt) throw new LocusError('NOT_FOUND', `task ${taskId} has no attempt ${wanted}`, { field: 'attempt' });
          if (!follow && !attempt) throw new LocusError('WRONG_STATE', `task ${taskId} has not started yet: no logs (add follow=true to wait for them)`);
          reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache');
          if (attempt) reply.header('locus-attempt', attempt.attemptId);
          // An ended attempt's empty answer may be a sandbox its executor removed since: say so
          // rather than show an empty log (one more call, only for an empty one). Every launched
          // attempt's stdout and stderr exist, empty or not, while its sandbox does.
          const gone = async (a: AttemptRecord): Promise<void> => {
            if (a.state === 'RUNNING' || a.sandboxDir === undefined || a.agentUrl === undefined || deps.logs.exists === undefined || (await deps.logs.exists(a, stream))) return;
            throw new LocusError('NOT_FOUND', `the ${stream} of attempt ${a.attempt} of task ${taskId} is missing: its sandbox${a.host === undefined ? '' : ` on ${a.host}`} was most likely removed (an executor keeps the sandboxes of its most recently ended attempts, executor-kept-sandboxes, 1,000 by default; an agent removes an ended executor's after its --gc_delay)`, { details: { reason: 'SANDBOX_REMOVED' } });
          };
          // Following a task that has ended reads that attempt's log and ends: the same answer.
          if (follow && attempt && record !== undefined && TERMINAL_TASK_STATES.has(record.state)) await gone(attempt);
          if (!follow && attempt) {
            const text = tail !== undefined ? (await readTail(deps.logs, attempt, stream, tail)).text : undefined;
            if (text !== undefined) {
              if (text === '') await gone(attempt);
              return reply.send(text);
            }
            const all = await readAll(deps.logs, attempt, stream);
            if (all.text === '' && all.skipped === 0) await gone(attempt);
            if (all.skipped > 0) reply.header('locus-log-skipped-bytes', String(all.skipped));
            return reply.send(all.text);
          }
          let closed = false;
          const wake = new Set<() => void>();
          const close = (): void => {
            closed = true;
            for (const w of wake) w();
            body.destroy();
          };
          const sleep = (ms: number): Promise<void> => new Promise((resolve) => {
            const done = (): void => {
              clearTimeout(t);
              wake.delete(done);
              resolve();
            };
            const t = setTimeout(done, ms);
            wake.add(done);
          });
          const body = Readable.from(followLog({ taskId, scope, stream, tail, first: attempt, pinned: wanted !== undefined, isClosed: () => closed, sleep }), { objectMode: false });
          openStreams.add(close);
          reply.raw.on('close', () => {
            closed = true;
            for (const w of wake) w();
            openStreams.delete(close);
          });
          return reply.send(body);
        },
      });

      /** Yield a task's log as it grows: the current content (or tail), then new bytes until the task ends. */
      async function* followLog(o: {
        taskId: string; scope: string | undefined; stream: LogStream; tail: number | undefined; first: AttemptRecord | undefined;
        /** An attempt named by the request (`attempt=N`): followed to its end, never switched for a retry. */
        pinned: boolean;
        isClosed(): boolean; sleep(ms: number): Promise<void>;
      }): AsyncGenerator<string> {
        let current = o.first;
        let offset: number | undefined;
        let tail = o.tail;
        const located = (a: AttemptRecord | undefined): a is AttemptRecord => a?.agentUrl !== undefined && a.sandboxDir !== undefined;
        try {
          while (!o.isClosed()) {
            let record: TaskRecord | undefined;
            let jobState: string;
            try {
              const t = await jobs.task(o.taskId, o.scope);
              record = t.record;
              jobState = t.job.state;
            } catch (err) {
              if (err instanceof LocusError && err.code === 'NOT_FOUND') return;
              throw err;
            }
            const latest = record?.attempts[record.attempts.length - 1];
            // The followed attempt's record as it is now (its sandbox may have become known).
            const mine = current === undefined ? latest : record?.attempts.find((a) => a.attemptId === current?.attemptId);
            if (offset === undefined && located(mine)) {
              // First sight of the sandbox: start from the tail or the beginning.
              if (tail !== undefined) {
                const t = await readTail(deps.logs, mine, o.stream, tail);
                if (t.text !== '') yield t.text;
                offset = t.end;
              } else {
                offset = 0;
              }
              tail = undefined;
            }
            let drained = true;
            if (located(mine) && offset !== undefined) {
              const size = await deps.logs.size(mine, o.stream);
              if (size > offset) {
                const length = Math.min(size - offset, FOLLOW_CHUNK_BYTES);
                const chunk = await deps.logs.read(mine, o.stream, offset, length);
                if (chunk.data !== '') yield chunk.data;
                offset += length;
                drained = offset >= size;
              }
            }
            if (!drained) continue;
            const mineEnded = mine !== undefined && mine.state !== 'RUNNING';
            // The attempt asked for has ended and all of its log was sent: that is the answer.
            if (o.pinned && mineEnded) return;
            if (latest && mine && latest.attemptId !== mine.attemptId && mineEnded) {
              // A retry started: follow the new attempt, as `tail -f` marks a change of file.
              yield `\n==> ${o.taskId} attempt ${latest.attempt} on ${latest.host} <==\n`;
              current = latest;
              offset = undefined;
              continue;
            }
            if (current === undefined && latest) current = latest;
            const taskEnded = record !== undefined && isTerminalTask(record.state);
            if ((taskEnded || isTerminalJob(jobState)) && (mine === undefined || mineEnded)) return;
            await o.sleep(pollMs);
          }
        } catch (err) {
          // Headers are sent: the status cannot change any more, so the stream just ends.
          ctx.logger.warn({ err: String(err), taskId: o.taskId }, 'following a log failed');
        }
      }

      ctx.route({
        method: 'GET', url: '/v1/tasks/:id/explain', summary: 'why a task is pending (or what it is doing)', tags: ['tasks'],
        schema: { params: TASK_PARAMS, querystring: SCOPE_QUERY },
        responses: { 200: { description: 'the explanation', schema: EXPLANATION_SCHEMA } },
        handler: async (req) => explanationView(await deps.explain(idOf(req), scopeOf(req))),
      });

      ctx.route({
        method: 'GET', url: '/v1/cluster', summary: 'agents, executors and locality statistics', tags: ['cluster'],
        responses: { 200: { description: 'the cluster', schema: CLUSTER_VIEW_SCHEMA } },
        handler: async (req) => {
          const principal = ctx.principal(req);
          const view = await deps.cluster();
          if (principal.kind === 'admin') return view;
          // Tenants see the shape of the cluster, not which executors other tenants hold.
          return {
            ...view,
            executors: view.executors.map((e) => (e.tenant === undefined || e.tenant === principal.tenant.name ? e : { ...e, tenant: undefined })),
          };
        },
      });
    },
  };
}

/** Submit and tell a fresh job from an idempotent replay. */
async function submitTracked(jobs: JobService, tenant: string, spec: JobSpec, idempotencyKey: string | undefined): Promise<{ job: JobRecord; created: boolean }> {
  return await jobs.submitJob(tenant, spec, idempotencyKey);
}
