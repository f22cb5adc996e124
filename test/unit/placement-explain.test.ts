import { describe, expect, it } from 'vitest';
import { explain, type PendingTask, type Snapshot } from '../../src/scheduler/placement/index.js';
import { exec, indexOf, offer, snap, task, tenant } from './placement-builders.js';

interface Row {
  readonly name: string;
  readonly task: PendingTask;
  readonly snapshot: Snapshot;
  readonly code: string;
  readonly until?: number;
}

const t0 = (over: Partial<PendingTask> = {}): PendingTask => task({ taskId: 't', preferredHosts: ['r1-h1'], pendingSince: 0, ...over });

const rows: Row[] = [
  {
    name: 'no executor or offer on its data hosts, nothing else either',
    task: t0(), snapshot: snap(0), code: 'NO_OFFER_FROM_DATA_HOSTS',
  },
  {
    name: 'data host busy, a rack-local slot freed just now: waiting until the node wait is over',
    task: t0(),
    snapshot: snap(1000, { executors: [exec('r1-h1', { freeSlots: 0 }), exec('r1-h2', { freeSince: 1000 })] }),
    code: 'WAITING_FOR_LOCALITY', until: 3000,
  },
  {
    name: 'a free node-local slot: placeable',
    task: t0(), snapshot: snap(0, { executors: [exec('r1-h1')] }), code: 'PLACEABLE',
  },
  {
    name: 'over quota',
    task: t0(),
    snapshot: snap(0, { executors: [exec('r1-h1')], tenants: [tenant('a', 1, { quota: { cpus: 1 }, usage: { cpus: 1, mem: 0, disk: 0 } })] }),
    code: 'OVER_QUOTA',
  },
  {
    name: 'constraint nobody meets',
    task: t0({ constraints: [{ kind: 'attribute', attribute: 'ssd', equals: 'yes' }] }),
    snapshot: snap(0, { executors: [exec('r1-h1')], offers: [offer('r1-h2')] }),
    code: 'CONSTRAINT_UNMET',
  },
  {
    name: 'only avoided hosts could run it: they are used',
    task: t0({ avoidHosts: ['r1-h1'] }),
    snapshot: snap(0, { executors: [exec('r1-h1')] }),
    code: 'PLACEABLE',
  },
  {
    name: 'volume agent in maintenance',
    task: t0({ volumeId: 'v1' }),
    snapshot: snap(0, { offers: [offer('r1-h1', { volumes: ['v1'], unavailability: { start: 1000 } })] }),
    code: 'VOLUME_AGENT_UNAVAILABLE',
  },
  {
    name: 'volume agent known to be in maintenance from the volume store',
    task: t0({ volumeId: 'v1' }),
    snapshot: snap(0, { volumes: new Map([['v1', { agentId: 'ag', hostname: 'r1-h1', unavailability: { start: 0, durationMs: 60_000 } }]]) }),
    code: 'VOLUME_AGENT_UNAVAILABLE',
  },
  {
    name: 'no offer from the volume agent',
    task: t0({ volumeId: 'v1' }),
    snapshot: snap(0, { offers: [offer('r1-h2')], executors: [exec('r1-h1')] }),
    code: 'NO_OFFER_FROM_VOLUME_AGENT',
  },
  {
    name: 'every slot that could run it is busy',
    task: t0(),
    snapshot: snap(0, { executors: [exec('r1-h1', { freeSlots: 0 }), exec('r2-h1', { freeSlots: 0 })] }),
    code: 'NO_CAPACITY',
  },
  {
    name: 'free slots held back by the dispatch window',
    task: t0(),
    snapshot: snap(0, { executors: [exec('r1-h1', { freeSlots: 3, dispatchSlots: 0 }), exec('r2-h1', { freeSlots: 0 })] }),
    code: 'DISPATCH_WINDOW',
  },
  {
    name: 'task too big for any slot or offer',
    task: t0({ resources: { cpus: 64, mem: 512, disk: 0 } }),
    snapshot: snap(0, { executors: [exec('r1-h1')], offers: [offer('r1-h1')] }),
    code: 'NO_CAPACITY',
  },
  {
    name: 'its last attempt could not read its input elsewhere: an idle slot elsewhere waits out its own wait',
    task: t0({ awaitDataHosts: true, pendingSince: 1000 }),
    snapshot: snap(2000, { executors: [exec('r5-h1', { freeSince: -60_000, idleSince: -60_000 })] }),
    code: 'WAITING_FOR_LOCALITY', until: 4000,
  },
  {
    name: 'node-only and its data host is busy',
    task: t0({ locality: { mode: 'node-only' } }),
    snapshot: snap(100_000, { executors: [exec('r1-h1', { freeSlots: 0 }), exec('r1-h2')] }),
    code: 'NODE_ONLY',
  },
];

describe('explain', () => {
  it.each(rows)('$name → $code', ({ task: t, snapshot, code, until }) => {
    const r = explain('t', snapshot, indexOf([t]));
    expect(r.code).toBe(code);
    expect(r.taskId).toBe('t');
    expect(r.message.length).toBeGreaterThan(0);
    // A row without `until` says the answer carries none (not "anything goes").
    expect(r.until).toBe(until);
  });

  it('says how large a task too big for every slot and offer is, and how large the largest are', () => {
    const big = t0({ resources: { cpus: 64, mem: 512, disk: 0 } });
    const r = explain('t', snap(0, { executors: [exec('r1-h1')], offers: [offer('r1-h1')] }), indexOf([big]));
    expect(r.code).toBe('NO_CAPACITY');
    expect(r.message).toMatch(/it asks 64 cpus, 512MiB of memory/);
    expect(r.message).toMatch(/a new executor's \d+(\.\d+)? cpus/);
    expect(r.message).toMatch(/executor slots hold at most \d+(\.\d+)? cpus/);
    expect(r.message).toMatch(/offers at most \d+(\.\d+)? cpus/);
  });

  it('tells a task larger than its tenant\'s whole quota that it can never start, not to wait for running tasks', () => {
    const idle = tenant('a', 1, { quota: { cpus: 1 } });
    const big = explain('t', snap(0, { executors: [exec('r1-h1')], tenants: [idle] }), indexOf([t0({ resources: { cpus: 1.5, mem: 512, disk: 0 } })]));
    expect(big.code).toBe('OVER_QUOTA');
    expect(big.message).toMatch(/it asks 1\.5 cpus.*more cpus than tenant a's whole quota of 1: it can never start/);
    expect(big.message).not.toMatch(/running tasks finish/);
    // A task that fits the quota but not what the tenant has left waits for its running tasks.
    const full = tenant('a', 1, { quota: { cpus: 1 }, usage: { cpus: 1, mem: 0, disk: 0 } });
    const waits = explain('t', snap(0, { executors: [exec('r1-h1')], tenants: [full] }), indexOf([t0()]));
    expect(waits.code).toBe('OVER_QUOTA');
    expect(waits.message).toMatch(/holds its whole quota \(1 cpus.*in use\); the task starts when its running tasks finish/);
  });

  it('says when a task runs on a host it avoids because no other live host could run it', () => {
    const avoiding = t0({ avoidHosts: ['r1-h1', 'r1-h2'] });
    const waived = explain('t', snap(0, { executors: [exec('r1-h1'), exec('r1-h2', { freeSlots: 0 })] }), indexOf([avoiding]));
    expect(waived.code).toBe('PLACEABLE');
    expect(waived.message).toMatch(/every live host that could run it is one it avoids \(r1-h1, r1-h2\)/);
    // A busy executor on a host it does not avoid: it waits for that one, and nothing is said of avoidance.
    const waiting = explain('t', snap(0, { executors: [exec('r1-h1'), exec('r2-h1', { freeSlots: 0 })] }), indexOf([avoiding]));
    expect(waiting.code).not.toBe('PLACEABLE');
    expect(waiting.message).not.toMatch(/avoid/);
    // Only an offer on a host it avoids: an executor may be launched there for it.
    const offered = explain('t', snap(0, { offers: [offer('r1-h2')] }), indexOf([avoiding]));
    expect(offered.message).toMatch(/one it avoids/);
    expect(offered.code).not.toBe('NO_CAPACITY');
  });

  it('tells why a task waits for its data hosts', () => {
    const r = explain('t', snap(2000, { executors: [exec('r5-h1', { freeSince: -60_000, idleSince: -60_000 })] }), indexOf([t0({ awaitDataHosts: true, pendingSince: 1000 })]));
    expect(r.message).toContain('could not read its input');
    expect(r.message).toContain('r1-h1');
  });

  it('a task that is not pending', () => {
    expect(explain('nope', snap(0), indexOf([])).code).toBe('NOT_PENDING');
  });

  it('after the wait runs out the same task is placeable', () => {
    const s = snap(3000, { executors: [exec('r1-h1', { freeSlots: 0 }), exec('r1-h2', { freeSince: 0 })] });
    expect(explain('t', s, indexOf([t0()])).code).toBe('PLACEABLE');
  });
});
