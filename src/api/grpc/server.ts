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
import { LOCALITY_NAMES } from '../../core/locality.js';
import type { Logger } from '../../obs/log.js';
import type { Authenticator, Principal } from '../auth.js';
import type { JobService, JobEvent } from '../../scheduler/jobs/service.js';
import type { JobRecord } from '../../scheduler/jobs/model.js';
import { TERMINAL_JOB_STATES } from '../../scheduler/jobs/model.js';
import { parseJobSpecText } from '../../scheduler/jobs/spec.js';
import type { VolumeService } from '../../volumes/service.js';
import { validateVolumeRequest, holdingView, type VolumeRecord } from '../../volumes/model.js';

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
  stop(): Promise<void>;
}

type Unary = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

function toStatus(err: unknown): grpc.ServiceError {
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

function request(call: { request: unknown }): JsonObject {
  if (!isObject(call.request)) throw new LocusError('INVALID_BODY', 'request is not a message');
  return call.request;
}

function str(o: JsonObject, key: string): string {
  const v = o[key];
  return typeof v === 'string' ? v : '';
}

/** A Job message from a record. */
export function jobMessage(j: JobRecord): Record<string, unknown> {
  return {
    id: j.id, name: j.name, tenant: j.tenant, state: j.state, stage: j.stage, stages: j.stages.map((s) => s.name),
    counts: {
      total: j.counts.total, pending: j.counts.pending, running: j.counts.running, succeeded: j.counts.succeeded,
      failed: j.counts.failed, node_local: j.counts.nodeLocal, rack_local: j.counts.rackLocal, any_local: j.counts.anyLocal,
    },
    created_at_ms: j.createdAt, finished_at_ms: j.finishedAt ?? 0, message: j.message ?? '', output_dir: j.outputDir,
  };
}

function eventMessage(e: JobEvent): Record<string, unknown> {
  return {
    kind: e.kind, job_id: e.jobId, task_id: e.taskId ?? '', state: e.state, host: e.host ?? '',
    locality: e.locality === undefined ? '' : LOCALITY_NAMES[e.locality], message: e.message ?? '', at_ms: e.at,
    ...(e.counts ? { counts: jobMessage({ counts: e.counts } as JobRecord)['counts'] } : {}),
  };
}

function volumeMessage(v: VolumeRecord): Record<string, unknown> {
  const view = holdingView(v);
  const s = (k: string): string => (typeof view[k] === 'string' ? (view[k] as string) : '');
  return {
    name: s('name'), tenant: s('tenant'), state: s('state'), size: s('size'), container_path: s('containerPath'),
    mode: s('mode'), agent: s('agent') || s('hostname'), reason: s('reason'), json: JSON.stringify(view),
  };
}

/** Start the gRPC server. */
export async function startGrpcServer(o: GrpcServerOptions): Promise<RunningGrpcServer> {
  const pkg = loadLocusProto();
  const v1 = (pkg['locus'] as grpc.GrpcObject)['v1'] as grpc.GrpcObject;
  const service = (v1['Locus'] as grpc.ServiceClientConstructor).service;
  const server = new grpc.Server();
  const log = o.logger.child({ component: 'grpc' });

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
    fn(request(call), p).then((res) => cb(null, res), (err: unknown) => {
      if (!(err instanceof LocusError)) log.error({ err: String(err) }, 'grpc handler failed');
      cb(toStatus(err));
    });
  };
  const needVolumes = (): VolumeService => {
    if (!o.services.volumes) throw new LocusError('UNSUPPORTED', 'volumes are not enabled on this server');
    return o.services.volumes;
  };

  server.addService(service, {
    SubmitJob: unary(async (req, p) => {
      const tenant = o.auth.actingTenant(p, str(req, 'tenant') || undefined);
      const spec = parseJobSpecText(str(req, 'spec'));
      const key = str(req, 'idempotency_key');
      return jobMessage(await o.services.jobs.submit(tenant.name, spec, key || undefined));
    }),
    GetJob: unary(async (req, p) => jobMessage(await o.services.jobs.get(str(req, 'id'), scope(p)))),
    ListJobs: unary(async (req, p) => ({
      jobs: (await o.services.jobs.list(o.auth.listScope(p, str(req, 'tenant') || undefined))).map(jobMessage),
    })),
    CancelJob: unary(async (req, p) => jobMessage(await o.services.cancel(str(req, 'id'), scope(p)))),
    ReserveVolume: unary(async (req, p) => {
      const tenant = o.auth.actingTenant(p, str(req, 'tenant') || undefined);
      const labels = isObject(req['labels']) ? req['labels'] : {};
      const body: Record<string, unknown> = { name: str(req, 'name'), size: str(req, 'size') };
      if (str(req, 'container_path')) body['containerPath'] = str(req, 'container_path');
      if (str(req, 'mode')) body['mode'] = str(req, 'mode');
      if (str(req, 'agent')) body['agent'] = str(req, 'agent');
      if (str(req, 'near')) body['near'] = str(req, 'near');
      if (Object.keys(labels).length > 0) body['labels'] = labels;
      const res = await needVolumes().createVolume(tenant, validateVolumeRequest(body), str(req, 'idempotency_key') || undefined);
      return volumeMessage(res.record);
    }),
    ListVolumes: unary(async (req, p) => {
      const tenant = o.auth.listScope(p, str(req, 'tenant') || undefined);
      return { volumes: (await needVolumes().listVolumes(tenant === undefined ? {} : { tenant })).map(volumeMessage) };
    }),
    DeleteVolume: unary(async (req, p) => {
      const tenant = o.auth.actingTenant(p).name;
      return volumeMessage(await needVolumes().deleteVolume(tenant, str(req, 'name'), req['force'] === true));
    }),
    WatchJob: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      let p: Principal;
      try {
        p = principalOf(call.metadata);
      } catch (err) {
        call.destroy(toStatus(err));
        return;
      }
      const id = str(request(call), 'id');
      const onEvent = (e: JobEvent): void => {
        if (e.jobId !== id) return;
        call.write(eventMessage(e));
        if (e.kind === 'job' && TERMINAL_JOB_STATES.has(e.state as JobRecord['state'])) finish();
      };
      const finish = (): void => {
        o.services.jobs.off('event', onEvent);
        call.end();
      };
      call.on('cancelled', () => o.services.jobs.off('event', onEvent));
      o.services.jobs.get(id, scope(p)).then((job) => {
        o.services.jobs.on('event', onEvent);
        call.write(eventMessage({ kind: 'job', jobId: job.id, at: job.updatedAt, state: job.state, counts: job.counts }));
        if (TERMINAL_JOB_STATES.has(job.state)) finish();
      }, (err: unknown) => call.destroy(toStatus(err)));
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${o.host}:${o.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
  log.info({ port }, 'gRPC API listening');
  let stopping: Promise<void> | undefined;
  return {
    port,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // Streams (WatchJob) would hold a graceful shutdown open forever.
        setTimeout(() => { server.forceShutdown(); resolve(); }, 2000).unref();
      });
      return stopping;
    },
  };
}
