/**
 * The local agent's disk limit (Mesos disk/du): a command task that writes
 * past its disk resource ends TASK_FAILED with REASON_CONTAINER_LIMITATION_DISK
 * once the agent next measures its sandbox. Agents measure every
 * `diskWatchIntervalSeconds` (default 15, the genuine agent's
 * --container_disk_watch_interval); this cluster measures every 0.2 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISK_WATCH_INTERVAL_SECONDS } from '../../src/local/isolator.js';
import { ack, call, frameworkInfo, isUpdate, nextNew, offersOf, statusOf, subscribe, subscribeCall, testCluster, type Ev, type Offer, type Sub } from './local-helpers.js';

describe('local cluster: disk limit', () => {
  let env: Awaited<ReturnType<typeof testCluster>>;
  let sub: Sub;
  let url: string;

  beforeAll(async () => {
    env = await testCluster({ agents: 1, diskWatchIntervalSeconds: 0.2 });
    url = env.cluster.masterUrl;
    sub = await subscribe(url, subscribeCall(frameworkInfo('disk')));
  });
  afterAll(async () => {
    sub.close();
    await env.dispose();
  });

  it('measures as often as the genuine agent by default', () => {
    expect(DISK_WATCH_INTERVAL_SECONDS).toBe(15);
  });

  it('fails a task that writes past its disk resource with REASON_CONTAINER_LIMITATION_DISK', async () => {
    let offer: Offer | undefined;
    for (let i = 0; i < 20 && offer === undefined; i++) {
      offer = sub.events.flatMap((e) => (e.type === 'OFFERS' ? offersOf(e) : []))[0];
      if (offer) break;
      await call(url, sub.streamId, { type: 'REVIVE', framework_id: { value: sub.frameworkId } });
      await nextNew(sub, (x) => x.type === 'OFFERS', 1000, 'offers').catch(() => undefined);
    }
    if (!offer) throw new Error('no offer');
    const res = (name: string, value: number): Record<string, unknown> => ({ name, type: 'SCALAR', scalar: { value }, allocation_info: { role: 'locus' } });
    const r = await call(url, sub.streamId, {
      type: 'ACCEPT', framework_id: { value: sub.frameworkId },
      accept: {
        offer_ids: [offer.id],
        operations: [{ type: 'LAUNCH', launch: { task_infos: [{
          name: 'fill', task_id: { value: 'fill' }, agent_id: offer.agent_id,
          resources: [res('cpus', 0.1), res('mem', 32), res('disk', 1)],
          command: { shell: true, value: 'head -c 4194304 /dev/zero > big; sleep 30' },
        }] } }],
        filters: { refuse_seconds: 0 },
      },
    });
    expect(r.status).toBe(202);
    const started = Date.now();
    let last: ReturnType<typeof statusOf> | undefined;
    for (;;) {
      const e: Ev = await sub.next((x) => isUpdate('fill')(x) && !seen.has(statusOf(x).uuid ?? ''), 10_000, 'fill update');
      const s = statusOf(e);
      seen.add(s.uuid ?? '');
      await ack(url, sub, e);
      last = s;
      if (s.state !== 'TASK_STARTING' && s.state !== 'TASK_RUNNING') break;
    }
    expect(last.state).toBe('TASK_FAILED');
    expect(last.reason).toBe('REASON_CONTAINER_LIMITATION_DISK');
    expect(last.message).toMatch(/^disk limit exceeded: used .* of 1MiB$/);
    // Killed at a measurement, long before the task's own 30 s.
    expect(Date.now() - started).toBeLessThan(10_000);
  });
  const seen = new Set<string>();
});
