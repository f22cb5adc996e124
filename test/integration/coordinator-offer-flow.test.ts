/**
 * The coordinator's offer flow against a recording driver (a unit-level
 * stand-in for the master), with real Redis, the real job service and the
 * real volume service:
 *   - volume operations and executor launches on one offer go out as one
 *     ACCEPT, the launch sized from what the operations leave;
 *   - work that appears while a pass is deciding (here: a volume requested
 *     from inside the DECLINE the pass sends) is never left behind the
 *     filter that pass set: the next pass REVIVEs;
 *   - new work on a suppressed framework REVIVEs at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../harness/redis.js';
import { ManualClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/obs/log.js';
import { JobService } from '../../src/scheduler/jobs/service.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { ExecutorBook } from '../../src/scheduler/executors.js';
import { Coordinator, type MesosDriver, type OfferOperationPlanner } from '../../src/scheduler/coordinator.js';
import { VolumeService } from '../../src/volumes/service.js';
import { roleOffer } from './coordinator-fixture.js';
import { HoldingStore } from '../../src/volumes/store.js';
import { validateVolumeRequest } from '../../src/volumes/model.js';
import type { Tenant } from '../../src/core/tenants.js';
import type { Offer, Operation } from '../../src/mesos/types.js';
import { waitFor } from '../harness/wait.js';
import { bareLauncher, testJobService } from './coordinator-fixture.js';

let redis: TestRedis;
let client: Redis;
const clock = new ManualClock(1_000_000);
const calls: { type: string; args: unknown[] }[] = [];
let onDecline: (() => Promise<void>) | undefined;
let jobs: JobService;
let volumes: VolumeService;
let coordinator: Coordinator;
const tenant: Tenant = { name: 'default', role: 'locus', weight: 1, tokenSha256: '0'.repeat(64) };

const driver: MesosDriver = {
  accept: async (...args) => { calls.push({ type: 'accept', args }); },
  decline: async (...args) => {
    calls.push({ type: 'decline', args });
    // A request landing while the pass is between its decisions and its SUPPRESS/filters.
    const hook = onDecline;
    onDecline = undefined;
    if (hook) await hook();
  },
  revive: async () => { calls.push({ type: 'revive', args: [] }); },
  suppress: async () => { calls.push({ type: 'suppress', args: [] }); },
  kill: async (...args) => { calls.push({ type: 'kill', args }); },
  acknowledge: async () => undefined,
  acknowledgeOperationStatus: async () => undefined,
  reconcile: async () => undefined,
};


let seq = 0;
const offer = (agent: string, host: string, cpus = 4): Offer => roleOffer(`o${++seq}`, agent, host, cpus, 1000);

const scalar = (rs: readonly { name: string; scalar?: { value: number } }[], name: string): number =>
  rs.filter((r) => r.name === name).reduce((a, r) => a + (r.scalar?.value ?? 0), 0);

/** Let queued passes (setImmediate) and their awaits run. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 30));
};

beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
  client = redis.client();
  jobs = testJobService(client, clock, '/tmp/locus-offer-flow-out');
  volumes = new VolumeService({
    store: new HoldingStore(client), clock, who: { framework: 'locus-test' }, logger: silentLogger(),
    onWork: () => coordinator.noteWork(),
  });
  const planner: OfferOperationPlanner = {
    plan: async (offers) => (await volumes.offerCycle(offers)).map((a) => ({ offerId: a.offerId, operations: [...a.operations] })),
    onOperationStatus: async (st) => { await volumes.onOperationStatus(st); },
    hasPendingWork: () => volumes.hasPendingWork(),
  };
  coordinator = new Coordinator({
    role: 'locus', clock, logger: silentLogger(), jobs, executors: new ExecutorBook(client), driver,
    launcher: bareLauncher,
    dispatch: { enqueueMany: async () => undefined, adopt: async () => undefined, cancel: async () => undefined },
    volumes: planner,
    tenants: () => [{ name: 'default', weight: 1 }],
    // The ticker stays out of the way: passes run on events only.
    tickMs: 3_600_000,
  });
  await coordinator.recover();
  await coordinator.handleEvent({ type: 'SUBSCRIBED', subscribed: { framework_id: { value: 'fw' }, heartbeat_interval_seconds: 15 } });
  await settle();
});

afterAll(async () => {
  coordinator?.close();
  client?.disconnect();
  await redis?.dispose();
});

describe('coordinator offer flow', () => {
  it('new work on a suppressed framework revives at once', async () => {
    await waitFor('the idle framework suppressed', () => calls.some((c) => c.type === 'suppress'));
    calls.length = 0;
    await volumes.createVolume(tenant, validateVolumeRequest({ name: 'v1', size: '100MiB', containerPath: 'data' }));
    await waitFor('a REVIVE', () => calls.some((c) => c.type === 'revive'));
  });

  it('sends volume operations and an executor launch on one offer as one ACCEPT, the launch sized from what is left', async () => {
    await jobs.submit('default', validateJobSpec({ name: 'j', retries: 0, tasks: [{ command: ['true'] }], task: { command: ['true'], resources: { cpus: 1, mem: '64MiB', disk: '850MiB' } } }));
    await waitFor('task pending', () => jobs.index.size === 1);
    calls.length = 0;
    const o = offer('S1', 'agent-1');
    await coordinator.handleEvent({ type: 'OFFERS', offers: { offers: [o] } });
    await settle();
    const accepts = calls.filter((c) => c.type === 'accept');
    expect(accepts).toHaveLength(1);
    expect(accepts[0]?.args[0]).toEqual([o.id.value]);
    const ops = accepts[0]?.args[1] as Operation[];
    expect(ops.map((x) => x.type)).toEqual(['RESERVE', 'CREATE', 'LAUNCH']);
    const launch = ops[2];
    const used = launch?.type === 'LAUNCH' ? launch.launch.task_infos.flatMap((t) => [...t.resources]) : [];
    const reserved = ops[0]?.type === 'RESERVE' ? ops[0].reserve.resources ?? [] : [];
    // The executor (850 MiB of task disk) and the 100 MiB volume together fit the 1000 MiB offered, without overlap.
    expect(scalar(reserved, 'disk')).toBe(100);
    expect(scalar(used, 'disk')).toBeGreaterThanOrEqual(850);
    expect(scalar(used, 'disk') + scalar(reserved, 'disk')).toBeLessThanOrEqual(1000);
    expect(calls.some((c) => c.type === 'decline' && (c.args[0] as string[]).includes(o.id.value))).toBe(false);
  });

  it('work appearing while a pass declines its offers is revived by the next pass, not left behind the filter', async () => {
    calls.length = 0;
    // An offer nobody wants (the volume v1 is placed, the job's task is running): declined with a filter.
    onDecline = async () => {
      await volumes.createVolume(tenant, validateVolumeRequest({ name: 'v2', size: '10MiB', containerPath: 'data' }));
    };
    await coordinator.handleEvent({ type: 'OFFERS', offers: { offers: [offer('S2', 'agent-2', 0.05)] } });
    await waitFor('the offer declined', () => calls.some((c) => c.type === 'decline'));
    await waitFor('a REVIVE after the decline', () => {
      const d = calls.findIndex((c) => c.type === 'decline');
      return calls.findIndex((c, i) => i > d && c.type === 'revive') > d;
    });
    expect((await volumes.getVolume('default', 'v2')).state).toBe('REQUESTED');
  });
});
