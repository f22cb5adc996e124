/**
 * The gRPC API (package locus.v1, proto/locus.proto) on @grpc/grpc-js. Each
 * handler authenticates from the `authorization` metadata, decodes its
 * request at the edge, calls the same services as the HTTP API and maps
 * LocusError codes to gRPC status codes through the error catalog.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LocusError, asLocusError } from '../../core/errors.js';
import { isObject, type JsonObject } from '../../core/decode.js';
import { LOCALITY_NAMES, nodeLocalShare } from '../../core/locality.js';
import { isTenantName } from '../../core/tenants.js';
import type { Logger } from '../../obs/log.js';
import type { Authenticator, Principal } from '../auth.js';
import { checkPinnedAgent, type AgentDirectory } from '../agents.js';
import { assertReady } from '../readiness.js';
import type { JobService, JobEvent } from '../../scheduler/jobs/service.js';
import type { JobRecord } from '../../scheduler/jobs/model.js';
import { TERMINAL_JOB_STATES } from '../../scheduler/jobs/model.js';
import { MAX_SPEC_BYTES, parseJobSpecText } from '../../scheduler/jobs/spec.js';
import { IDEMPOTENCY_KEY, RECORD_ID } from '../http/schemas.js';
import { outputWhere } from '../http/jobs-views.js';
import type { OutputPlaces } from '../../storage/output-layout.js';
import type { VolumeService } from '../../volumes/service.js';
import { validateVolumeName, validateVolumeRequest, holdingView, type VolumeRecord } from '../../volumes/model.js';
import { JobWatchers } from '../../scheduler/jobs/watchers.js';

/** Largest gRPC request accepted: a largest job spec plus room for the message's other fields. */
export const GRPC_MAX_REQUEST_BYTES = MAX_SPEC_BYTES + 64 * 1024;

/** Where proto/locus.proto is, from src/ or from dist/src/. */
export function protoPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../../../proto/locus.proto', '../../../../proto/locus.proto']) {
    const p = join(here, up);
    if (existsSync(p)) return p;
  }
  throw new LocusError('INTERNAL', 'proto/locus.proto not found next to the installation');
}

/** Load the service definition (also used by clients and tests). */
export function loadLocusProto(): grpc.GrpcObject {
  const def = protoLoader.loadSync(protoPath(), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  return grpc.loadPackageDefinition(def);
}

/** The services the gRPC API calls. */
export interface GrpcServices {
  readonly jobs: JobService;
  readonly cancel: (jobId: string, tenant: string | undefined) => Promise<JobRecord>;
  readonly volumes?: VolumeService;
  /** The agents the framework knows: ReserveVolume pinned to another is refused (INVALID_ARGUMENT). */
  readonly agents?: AgentDirectory;
  /**
   * Readiness, as the HTTP API's /readyz: calls that change state (SubmitJob,
   * CancelJob, ReserveVolume, DeleteVolume) answer UNAVAILABLE (NOT_READY) while it is false.
   */
  readonly ready?: () => { readonly subscribed: boolean; readonly redis: boolean };
  /** Where outputs go (Job messages name host-kept outputs by it); absent: on the shared output root. */
  readonly outputs?: OutputPlaces;
}

/** Options for the gRPC server. */
export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly auth: Authenticator;
  readonly services: GrpcServices;
  readonly logger: Logger;
}

/** A running gRPC server. */
export interface RunningGrpcServer {
  readonly port: number;
  /** Open WatchJob streams. */
  activeStreams(): number;
  /** Stop: open WatchJob streams end with UNAVAILABLE, then the server shuts down. */
  stop(): Promise<void>;
}

type Unary = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

/** The gRPC status of an error: the catalog's code, with the code and field in the trailers. */
export function toStatus(err: unknown): grpc.ServiceError {
  const e = asLocusError(err);
  const status = Object.assign(new Error(`${e.code}: ${e.message}`), {
    code: e.spec.grpcCode as grpc.status,
    details: `${e.code}: ${e.message}`,
    metadata: new grpc.Metadata(),
  });
  status.metadata.set('locus-error-code', e.code);
  if (e.field) status.metadata.set('locus-error-field', e.field);
  return status;
}

/**
 * What a request decodes to when its bytes are not the method's message.
 * grpc-js answers a deserializer that throws with INTERNAL and no Locus code;
 * the wrapped deserializers return this instead, and the handler refuses it
 * as INVALID_BODY like any other unreadable request.
 */
class Undecodable {
  constructor(readonly reason: string) {}
}

/** The service definition with every request deserializer made total (see Undecodable). */
function totalDeserializers(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, def] of Object.entries(service)) {
    const decode = def.requestDeserialize;
    out[name] = {
      ...def,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return decode(bytes);
        } catch (err) {
          return new Undecodable(err instanceof Error ? err.message : String(err));
        }
      },
    };
  }
  return out;
}

function request(call: { request: unknown }): JsonObject {
  if (call.request instanceof Undecodable) {
    throw new LocusError('INVALID_BODY', `request is not a valid message of this method: ${call.request.reason}`, { field: 'request' });
  }
  if (!isObject(call.request)) throw new LocusError('INVALID_BODY', 'request is not a message');
  return call.request;
}

/** The `tenant` field: empty means none; anything else must be a tenant name (as the HTTP API's `?tenant=`). */
function tenantField(req: JsonObject): string | undefined {
  const t = str(req, 'tenant');
  if (t === '') return undefined;
  if (!isTenantName(t)) throw new LocusError('INVALID_FIELD', `tenant: '${t.slice(0, 80)}' is not a tenant name (lowercase letters, digits, '-', '_'; up to 63)`, { field: 'tenant' });
  return t;
}

function str(o: JsonObject, key: string): string {
  const v = o[key];
  return typeof v === 'string' ? v : '';
}

const IDEMPOTENCY_KEY_RE = new RegExp(IDEMPOTENCY_KEY.pattern);
const RECORD_ID_RE = new RegExp(RECORD_ID.pattern);

/** The request's job id, checked as HTTP checks the path's: a malformed one is a bad request, not a missing job. */
function jobId(req: JsonObject): string {
  const id = str(req, 'id');
  if (id.length === 0 || id.length > RECORD_ID.maxLength || !RECORD_ID_RE.test(id)) {
    throw new LocusError('INVALID_FIELD', `id: '${id.slice(0, 80)}' is not a job id`, { field: 'id' });
  }
  return id;
}

/** The request's idempotency_key (undefined: none), checked as HTTP checks the Idempotency-Key header. */
function idempotencyKey(req: JsonObject): string | undefined {
  const key = str(req, 'idempotency_key');
  if (key === '') return undefined;
  if (key.length > IDEMPOTENCY_KEY.maxLength) {
    throw new LocusError('INVALID_FIELD', `idempotency_key: must NOT have more than ${IDEMPOTENCY_KEY.maxLength} characters`, { field: 'idempotency_key' });
  }
  if (!IDEMPOTENCY_KEY_RE.test(key)) {
    throw new LocusError('INVALID_FIELD', 'idempotency_key: must be printable ASCII without spaces', { field: 'idempotency_key' });
  }
  return key;
}

/** A Counts message. */
export function countsMessage(c: JobRecord['counts']): Record<string, number> {
  return {
    total: c.total, pending: c.pending, running: c.running, succeeded: c.succeeded,
    failed: c.failed, node_local: c.nodeLocal, rack_local: c.rackLocal, any_local: c.anyLocal,
    node_local_share: nodeLocalShare({ nodeLocal: c.nodeLocal, rackLocal: c.rackLocal, any: c.anyLocal }) ?? 0,
  };
}

/** A Job message from a record: its outputs named as the HTTP view names them (outputWhere). */
export function jobMessage(j: JobRecord, places?: OutputPlaces): Record<string, unknown> {
  const where = outputWhere(j, places);
  return {
    id: j.id, name: j.name, tenant: j.tenant, state: j.state, stage: j.stage, stages: j.stages.map((s) => s.name),
    counts: countsMessage(j.counts),
    created_at_ms: j.createdAt, finished_at_ms: j.finishedAt ?? 0, message: j.message ?? '', output_dir: where.outputDir,
    stages_without_output: j.spec.stages.filter((s) => s.outputs === 'none').map((s) => s.name),
    output: where.output, output_kept: where.kept, host_outputs_directory: where.hostOutputs?.directory ?? '',
  };
}

/** A JobEvent message from a job service event. */
export function eventMessage(e: JobEvent): Record<string, unknown> {
  return {
    kind: e.kind, job_id: e.jobId, task_id: e.taskId ?? '', state: e.state, host: e.host ?? '',
    locality: e.locality === undefined ? '' : LOCALITY_NAMES[e.locality], message: e.message ?? '', at_ms: e.at,
    ...(e.counts ? { counts: countsMessage(e.counts) } : {}),
  };
}

/** A Volume message from a record (`json` carries the full view, as GET /v1/volumes/:name). */
export function volumeMessage(v: VolumeRecord): Record<string, unknown> {
  return {
    name: v.name, tenant: v.tenant, state: v.state, size: `${v.sizeMiB}MiB`, container_path: v.containerPath,
    mode: v.mode, agent: v.hostname ?? v.agentId ?? '', reason: v.reason ?? '', json: JSON.stringify(holdingView(v)),
  };
}

/** Start the gRPC server. */
export async function startGrpcServer(o: GrpcServerOptions): Promise<RunningGrpcServer> {
  const pkg = loadLocusProto();
  const v1 = (pkg['locus'] as grpc.GrpcObject)['v1'] as grpc.GrpcObject;
  const service = totalDeserializers((v1['Locus'] as grpc.ServiceClientConstructor).service);
  // A request larger than any valid one (a job spec is at most MAX_SPEC_BYTES) is refused by
  // grpc-js before it is read whole: RESOURCE_EXHAUSTED naming both sizes, the HTTP API's 413.
  const server = new grpc.Server({ 'grpc.max_receive_message_length': GRPC_MAX_REQUEST_BYTES });
  const log = o.logger.child({ component: 'grpc' });
  const watchers = new JobWatchers();
  // Closers of open WatchJob streams, which would hold a graceful shutdown open.
  const openStreams = new Set<() => void>();

  const principalOf = (metadata: grpc.Metadata): Principal => {
    const header = metadata.get('authorization')[0];
    return o.auth.authenticateHeader(typeof header === 'string' ? header : undefined);
  };
  const scope = (p: Principal): string | undefined => (p.kind === 'admin' ? undefined : p.tenant.name);

  // Every unary handler: authenticate first, then run, then map errors.
  const unary = (fn: (req: JsonObject, p: Principal) => Promise<unknown>): Unary => (call, cb) => {
    let p: Principal;
    try {
      p = principalOf(call.metadata);
    } catch (err) {
      cb(toStatus(err));
      return;
    }
    // Decoding runs inside the promise, so a request it refuses is answered, never thrown into grpc-js.
    Promise.resolve().then(() => fn(request(call), p)).then((res) => cb(null, res), (err: unknown) => {
      if (!(err instanceof LocusError)) log.error({ err: String(err) }, 'grpc handler failed');
      cb(toStatus(err));
    });
  };
  /**
   * A call that changes state: the request is checked first (`check`: decoding, the spec, the
   * tenant it may act for), then readiness, then `act`. A malformed request is INVALID_ARGUMENT
   * whether or not this server is ready, as the HTTP API answers 400 before 503: retrying it
   * once the server is ready would only be refused then. Same rule and message as HTTP's.
   */
  const changing = <T>(check: (req: JsonObject, p: Principal) => T, act: (checked: T, p: Principal) => Promise<unknown>): Unary => unary(async (req, p) => {
    const checked = check(req, p);
    const r = o.services.ready?.();
    if (r) assertReady(r);
    return await act(checked, p);
  });
  const needVolumes = (): VolumeService => {
    if (!o.services.volumes) throw new LocusError('UNSUPPORTED', 'volumes are not enabled on this server');
    return o.services.volumes;
  };

  server.addService(service, {
    SubmitJob: changing(
      (req, p) => ({ tenant: o.auth.actingTenant(p, tenantField(req)), spec: parseJobSpecText(str(req, 'spec')), key: idempotencyKey(req) }),
      async ({ tenant, spec, key }) => {
        try {
          return jobMessage(await o.services.jobs.submit(tenant.name, spec, key), o.services.outputs);
        } catch (err) {
          // The service names the HTTP header as the field; here the key is the request's idempotency_key.
          if (err instanceof LocusError && err.field === 'Idempotency-Key') throw new LocusError(err.code, err.message, { field: 'idempotency_key', cause: err });
          throw err;
        }
      },
    ),
    GetJob: unary(async (req, p) => jobMessage(await o.services.jobs.get(jobId(req), scope(p)), o.services.outputs)),
    ListJobs: unary(async (req, p) => {
      const tenant = o.auth.listScope(p, tenantField(req));
      return { jobs: o.auth.listed(tenant, await o.services.jobs.list(tenant)).map((j) => jobMessage(j, o.services.outputs)) };
    }),
    CancelJob: changing((req) => jobId(req), async (id, p) => jobMessage(await o.services.cancel(id, scope(p)), o.services.outputs)),
    ReserveVolume: changing(
      (req, p) => {
        const tenant = o.auth.actingTenant(p, tenantField(req));
        const labels = isObject(req['labels']) ? req['labels'] : {};
        const body: Record<string, unknown> = { name: str(req, 'name'), size: str(req, 'size') };
        if (str(req, 'container_path')) body['containerPath'] = str(req, 'container_path');
        if (str(req, 'mode')) body['mode'] = str(req, 'mode');
        if (str(req, 'agent')) body['agent'] = str(req, 'agent');
        if (str(req, 'near')) body['near'] = str(req, 'near');
        if (Object.keys(labels).length > 0) body['labels'] = labels;
        return { tenant, spec: validateVolumeRequest(body), key: idempotencyKey(req) };
      },
      async ({ tenant, spec, key }) => {
        // After readiness, as over HTTP: the agents known depend on the cluster this server sees.
        checkPinnedAgent(spec.placement.agent, o.services.agents);
        const res = await needVolumes().createVolume(tenant, spec, key);
        return volumeMessage(res.record);
      },
    ),
    ListVolumes: unary(async (req, p) => {
      const tenant = o.auth.listScope(p, tenantField(req));
      return { volumes: o.auth.listed(tenant, await needVolumes().listVolumes(tenant === undefined ? {} : { tenant })).map(volumeMessage) };
    }),
    DeleteVolume: changing(
      // Checked as the HTTP route's path parameter is: a name that cannot be a volume's is a bad request, not a missing volume.
      (req, p) => ({ tenant: o.auth.actingTenant(p, tenantField(req)).name, name: validateVolumeName(str(req, 'name')), force: req['force'] === true }),
      async ({ tenant, name, force }) => volumeMessage(await needVolumes().deleteVolume(tenant, name, force)),
    ),
    WatchJob: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      let p: Principal;
      try {
        p = principalOf(call.metadata);
      } catch (err) {
        call.emit('error', toStatus(err));
        return;
      }
      let id: string;
      try {
        id = jobId(request(call));
      } catch (err) {
        call.emit('error', toStatus(err));
        return;
      }
      // Subscribe before reading the current state, so an event (even the
      // job's last one) between the read and the subscription is not lost.
      let live = false;
      let ended = false;
      const early: JobEvent[] = [];
      const stopListening = (): void => {
        ended = true;
        unwatch();
        openStreams.delete(shutdown);
      };
      const fail = (err: unknown): void => {
        if (ended) return;
        stopListening();
        if (!(err instanceof LocusError)) log.error({ err: String(err), jobId: id }, 'WatchJob failed');
        call.emit('error', toStatus(err));
      };
      const shutdown = (): void => fail(new LocusError('UNAVAILABLE', 'the server is stopping; watch again'));
      // Runs inside the job service's emit: it must never throw into the service.
      const deliver = (e: JobEvent): void => {
        if (ended) return;
        try {
          call.write(eventMessage(e));
          if (e.kind === 'job' && TERMINAL_JOB_STATES.has(e.state as JobRecord['state'])) {
            stopListening();
            call.end();
          }
        } catch (err) {
          fail(err);
        }
      };
      const unwatch = watchers.watch(id, (e) => {
        if (live) deliver(e);
        else early.push(e);
      });
      openStreams.add(shutdown);
      call.on('cancelled', stopListening);
      call.on('error', stopListening);
      o.services.jobs.get(id, scope(p)).then((job) => {
        deliver({ kind: 'job', jobId: job.id, at: job.updatedAt, state: job.state, counts: job.counts });
        live = true;
        // Early events may already be in the snapshot; replaying them is harmless (counts are absolute).
        for (const e of early.splice(0)) deliver(e);
      }, fail);
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${o.host}:${o.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
  o.services.jobs.on('event', watchers.listener);
  log.info({ port }, 'gRPC API listening');
  let stopping: Promise<void> | undefined;
  return {
    port,
    activeStreams: () => openStreams.size,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        o.services.jobs.off('event', watchers.listener);
        for (const close of [...openStreams]) close();
        server.tryShutdown(() => resolve());
        // A client that does not read its stream's end would hold a graceful shutdown open.
        setTimeout(() => { server.forceShutdown(); resolve(); }, 2000).unref();
      });
      return stopping;
    },
  };
}
