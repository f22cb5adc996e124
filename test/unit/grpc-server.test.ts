/**
 * The gRPC edge on its own: the error catalog's gRPC numbers against
 * @grpc/grpc-js's status constants, the message mappings, and WatchJob's
 * subscribe-then-read ordering, checked against a real gRPC server on
 * loopback whose job service is a small in-test stand-in.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator } from '../../src/api/auth.js';
import { countsMessage, eventMessage, jobMessage, startGrpcServer, volumeMessage, type RunningGrpcServer } from '../../src/api/grpc/server.js';
import { ERROR_CATALOG, LocusError, type ErrorCode } from '../../src/core/errors.js';
import { silentLogger } from '../../src/obs/log.js';
import type { JobEvent, JobService } from '../../src/scheduler/jobs/service.js';
import type { JobRecord } from '../../src/scheduler/jobs/model.js';
import type { VolumeRecord } from '../../src/volumes/model.js';
import { authMetadata, grpcClient, grpcError, type LocusGrpc } from '../integration/surfaces-harness.js';

const ADMIN = 'unit-admin-token-0123456789';
const COUNTS = { total: 3, pending: 1, running: 1, succeeded: 1, failed: 0, nodeLocal: 1, rackLocal: 0, anyLocal: 0 };

function job(id: string, state: JobRecord['state']): JobRecord {
  return {
    id, tenant: 'default', name: 'j', spec: { stages: [{ name: 'map' }, { name: 'reduce' }] } as unknown as JobRecord['spec'], state, stage: 0,
    stages: [{ name: 'map', taskCount: 3 }, { name: 'reduce', taskCount: -1 }],
    outputDir: '/tmp/out', createdAt: 1000, updatedAt: 2000, counts: COUNTS,
  };
}

/**
 * A stand-in job service: `get` answers from a map, and for job `racy`
 * emits the job's last event just before it answers with the older
 * RUNNING state — the window a watcher must not lose.
 */
class FakeJobs extends EventEmitter {
  readonly jobs = new Map<string, JobRecord>([['job-1', job('job-1', 'RUNNING')], ['racy', job('racy', 'RUNNING')]]);
  async get(id: string): Promise<JobRecord> {
    const j = this.jobs.get(id);
    if (!j) throw new LocusError('NOT_FOUND', `no job '${id}'`, { field: 'id' });
    if (id === 'racy') this.emit('event', { kind: 'job', jobId: 'racy', at: 3000, state: 'SUCCEEDED', counts: COUNTS } satisfies JobEvent);
    return j;
  }
  async list(): Promise<JobRecord[]> {
    throw new Error('the store exploded');
  }
}

let fake: FakeJobs;
let server: RunningGrpcServer;
let rpc: LocusGrpc;

beforeAll(async () => {
  fake = new FakeJobs();
  server = await startGrpcServer({
    host: '127.0.0.1', port: 0, logger: silentLogger(),
    auth: new Authenticator({ config: { tenants: [] }, adminToken: ADMIN }),
    services: { jobs: fake as unknown as JobService, cancel: async (id) => fake.get(id) },
  });
  rpc = grpcClient(`127.0.0.1:${server.port}`);
});

afterAll(async () => {
  rpc?.close();
  await server?.stop();
});

describe('the error catalog on gRPC', () => {
  // What each Locus error code must surface as, by @grpc/grpc-js's own names.
  const expected: Record<ErrorCode, keyof typeof grpc.status> = {
    INVALID_FIELD: 'INVALID_ARGUMENT', INVALID_BODY: 'INVALID_ARGUMENT', UNKNOWN_SCHEME: 'INVALID_ARGUMENT', UNKNOWN_AGENT: 'INVALID_ARGUMENT', UNAUTHENTICATED: 'UNAUTHENTICATED',
    FORBIDDEN: 'PERMISSION_DENIED', NOT_FOUND: 'NOT_FOUND', CONFLICT: 'FAILED_PRECONDITION', ALREADY_EXISTS: 'ALREADY_EXISTS',
    IN_USE: 'FAILED_PRECONDITION', TOO_LARGE: 'RESOURCE_EXHAUSTED', UNSATISFIABLE: 'FAILED_PRECONDITION',
    QUOTA_EXCEEDED: 'RESOURCE_EXHAUSTED', NOT_READY: 'UNAVAILABLE', NOT_LEADER: 'UNAVAILABLE', UNAVAILABLE: 'UNAVAILABLE', TIMEOUT: 'DEADLINE_EXCEEDED',
    PROTOCOL: 'UNAVAILABLE', WRONG_STATE: 'FAILED_PRECONDITION', UNSUPPORTED: 'UNIMPLEMENTED', STORAGE: 'UNAVAILABLE', INTERNAL: 'INTERNAL',
  };
  it('every code maps to the gRPC status of the same meaning', () => {
    expect(Object.keys(expected).sort()).toEqual(Object.keys(ERROR_CATALOG).sort());
    for (const [code, name] of Object.entries(expected)) {
      expect(ERROR_CATALOG[code as ErrorCode].grpcCode, code).toBe(grpc.status[name]);
    }
  });

  it('an unexpected failure is INTERNAL, and the server keeps serving', async () => {
    const err = await grpcError(rpc.unary('ListJobs', {}, ADMIN));
    expect(err.code).toBe(grpc.status.INTERNAL);
    expect(err.details).toContain('the store exploded');
    expect(await rpc.unary('GetJob', { id: 'job-1' }, ADMIN)).toMatchObject({ id: 'job-1' });
  });

  it('NOT_FOUND carries the code and field in trailing metadata', async () => {
    const err = await grpcError(rpc.unary('GetJob', { id: 'nope' }, ADMIN));
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toBe("NOT_FOUND: no job 'nope'");
    expect(err.metadata.get('locus-error-code')).toEqual(['NOT_FOUND']);
    expect(err.metadata.get('locus-error-field')).toEqual(['id']);
  });

  it('volume calls without a volume service are UNIMPLEMENTED', async () => {
    expect((await grpcError(rpc.unary('ListVolumes', {}, ADMIN))).code).toBe(grpc.status.UNIMPLEMENTED);
  });
});

describe('messages', () => {
  it('a job, its counts and an event use the proto field names', () => {
    expect(countsMessage(COUNTS)).toEqual({ total: 3, pending: 1, running: 1, succeeded: 1, failed: 0, node_local: 1, rack_local: 0, any_local: 0, node_local_share: 1 });
    expect(jobMessage(job('j1', 'RUNNING'))).toMatchObject({
      id: 'j1', state: 'RUNNING', stages: ['map', 'reduce'], created_at_ms: 1000, finished_at_ms: 0, output_dir: '/tmp/out', message: '',
      counts: { node_local: 1 },
      stages_without_output: [],
    });
    const loads = { ...job('j2', 'RUNNING'), spec: { stages: [{ name: 'map', outputs: 'none' }, { name: 'reduce' }] } as unknown as JobRecord['spec'] };
    expect(jobMessage(loads)['stages_without_output']).toEqual(['map']);
    expect(eventMessage({ kind: 'task', jobId: 'j1', taskId: 'j1.0.0', at: 5, state: 'RUNNING', host: 'a1', locality: 0 })).toEqual({
      kind: 'task', job_id: 'j1', task_id: 'j1.0.0', state: 'RUNNING', host: 'a1', locality: 'node-local', message: '', at_ms: 5,
    });
    // A job event with counts (this once crashed the server: counts went through jobMessage).
    expect(eventMessage({ kind: 'job', jobId: 'j1', at: 5, state: 'SUCCEEDED', counts: COUNTS })['counts']).toEqual(countsMessage(COUNTS));
  });

  it('a volume: size with its unit, agent from the hostname, the full view as JSON', () => {
    const v = {
      kind: 'volume', id: 'vol-1', tenant: 'alpha', role: 'alpha', name: 'scratch', sizeMiB: 64, containerPath: 'data', mode: 'RW',
      state: 'CREATED', hostname: 'agent-1', agentId: 'S1', placement: { constraints: [] }, labels: {}, usedBy: [],
      deleteRequested: false, createdAt: 0, updatedAt: 0,
    } as unknown as VolumeRecord;
    const m = volumeMessage(v);
    expect(m).toMatchObject({ name: 'scratch', tenant: 'alpha', state: 'CREATED', size: '64MiB', container_path: 'data', mode: 'RW', agent: 'agent-1', reason: '' });
    expect(JSON.parse(String(m['json']))).toMatchObject({ id: 'vol-1', sizeMiB: 64 });
  });
});

describe('WatchJob', () => {
  it('an event between subscribing and reading the job is not lost: the stream still ends', async () => {
    const events = await rpc.watch('racy', ADMIN, 5000);
    expect(events.map((e) => e['state'])).toEqual(['RUNNING', 'SUCCEEDED']);
    expect(server.activeStreams()).toBe(0);
  });

  it('streams live events of its job only, ends at the terminal one and unsubscribes', async () => {
    const watching = rpc.watch('job-1', ADMIN, 5000);
    await expectStreams(1);
    fake.emit('event', { kind: 'task', jobId: 'other', taskId: 'other.0.0', at: 1, state: 'RUNNING' } satisfies JobEvent);
    fake.emit('event', { kind: 'task', jobId: 'job-1', taskId: 'job-1.0.1', at: 2, state: 'SUCCEEDED', host: 'h', locality: 1 } satisfies JobEvent);
    fake.emit('event', { kind: 'job', jobId: 'job-1', at: 3, state: 'FAILED', message: 'boom', counts: COUNTS } satisfies JobEvent);
    const events = await watching;
    expect(events.map((e) => `${String(e['kind'])}:${String(e['state'])}`)).toEqual(['job:RUNNING', 'task:SUCCEEDED', 'job:FAILED']);
    expect(events[1]).toMatchObject({ task_id: 'job-1.0.1', locality: 'rack-local', host: 'h' });
    expect(events[2]).toMatchObject({ message: 'boom', counts: { total: 3 } });
    expect(server.activeStreams()).toBe(0);
    // One listener on the job service serves every stream.
    expect(fake.listenerCount('event')).toBe(1);
  });

  it('a client that goes away unsubscribes; an unknown job is NOT_FOUND', async () => {
    const fn = (rpc.raw as unknown as Record<string, (r: unknown, m: grpc.Metadata) => grpc.ClientReadableStream<unknown>>)['WatchJob'];
    const stream = fn?.call(rpc.raw, { id: 'job-1' }, authMetadata(ADMIN));
    stream?.on('error', () => undefined);
    await expectStreams(1);
    stream?.cancel();
    await expectStreams(0);
    expect((await grpcError(rpc.watch('nope', ADMIN, 5000))).code).toBe(grpc.status.NOT_FOUND);
    expect(server.activeStreams()).toBe(0);
  });
});

async function expectStreams(n: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (server.activeStreams() !== n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} open streams, have ${server.activeStreams()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('stopping', () => {
  it('ends open WatchJob streams with UNAVAILABLE at once, and unsubscribes from the job service', async () => {
    const jobs = new FakeJobs();
    const s = await startGrpcServer({
      host: '127.0.0.1', port: 0, logger: silentLogger(),
      auth: new Authenticator({ config: { tenants: [] }, adminToken: ADMIN }),
      services: { jobs: jobs as unknown as JobService, cancel: async (id) => jobs.get(id) },
    });
    const c = grpcClient(`127.0.0.1:${s.port}`);
    try {
      const watching = grpcError(c.watch('job-1', ADMIN, 10_000));
      const deadline = Date.now() + 5000;
      while (s.activeStreams() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const started = Date.now();
      await s.stop();
      expect(Date.now() - started).toBeLessThan(1500);
      const err = await watching;
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
      expect(jobs.listenerCount('event')).toBe(0);
    } finally {
      c.close();
    }
  });
});

describe('readiness', () => {
  it('state-changing calls answer UNAVAILABLE (NOT_READY) while not subscribed; reads and auth errors do not', async () => {
    let ready = { subscribed: false, redis: true };
    const jobs = new FakeJobs();
    const s = await startGrpcServer({
      host: '127.0.0.1', port: 0, logger: silentLogger(),
      auth: new Authenticator({ config: { tenants: [] }, adminToken: ADMIN }),
      services: { jobs: jobs as unknown as JobService, cancel: async (id) => jobs.get(id), ready: () => ready },
    });
    const c = grpcClient(`127.0.0.1:${s.port}`);
    try {
      const err = await grpcError(c.unary('CancelJob', { id: 'job-1' }, ADMIN));
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
      expect(err.details).toBe('NOT_READY: not ready: not subscribed to a Mesos master');
      expect((await grpcError(c.unary('SubmitJob', { spec: 'name: x\ntasks: [{}]\ntask: {command: [x]}\n' }, ADMIN))).code).toBe(grpc.status.UNAVAILABLE);
      // A malformed request is INVALID_ARGUMENT, ready or not (as HTTP answers 400 before 503).
      const badSpec = await grpcError(c.unary('SubmitJob', { spec: 'name: x' }, ADMIN));
      expect(badSpec.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(badSpec.details).toContain('task: is required');
      expect((await grpcError(c.unary('CancelJob', { id: 'no such id!' }, ADMIN))).code).toBe(grpc.status.INVALID_ARGUMENT);
      expect((await grpcError(c.unary('SubmitJob', { spec: 'name: x\ntasks: [{}]\ntask: {command: [x]}\n', idempotency_key: 'has space' }, ADMIN))).code).toBe(grpc.status.INVALID_ARGUMENT);
      expect((await grpcError(c.unary('CancelJob', { id: 'job-1' }))).code).toBe(grpc.status.UNAUTHENTICATED);
      expect(await c.unary('GetJob', { id: 'job-1' }, ADMIN)).toMatchObject({ id: 'job-1' });
      ready = { subscribed: true, redis: true };
      expect(await c.unary('CancelJob', { id: 'job-1' }, ADMIN)).toMatchObject({ id: 'job-1' });
    } finally {
      c.close();
      await s.stop();
    }
  });
});
