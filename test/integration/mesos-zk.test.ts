/**
 * Master detection against a real ZooKeeper (Debian's package, started by the
 * harness on 127.0.0.1): the test registers masters exactly as Mesos masters
 * do (`json.info_<seq>` ephemeral sequential nodes with JSON MasterInfo) and
 * checks that the detector follows leadership, including a leader change.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type zookeeper from 'node-zookeeper-client';
import { ZkMasterDetector, createDetector } from '../../src/mesos/detector.js';
import { ZOOKEEPER, describeWith } from '../harness/requires.js';
import { removeNode, registerMaster, startZooKeeper, type TestZooKeeper } from '../harness/zk.js';

let zk: TestZooKeeper;
let admin: zookeeper.Client;

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeWith([ZOOKEEPER], 'ZooKeeper master detection', () => {
  // Started inside the suite, so a machine without ZooKeeper skips (or, in CI, fails) with the reason.
  beforeAll(async () => {
    zk = await startZooKeeper();
    admin = await zk.client();
  });

  afterAll(async () => {
    admin?.close();
    await zk?.stop();
  });

  it('finds the lowest json.info_ node and follows a leader change', async () => {
    const path = '/mesos-a';
    const detector = new ZkMasterDetector(`zk://${zk.connectString}${path}`);
    const leaders: (string | undefined)[] = [];
    detector.on('leader', (url) => leaders.push(url));
    try {
      await detector.start();
      // No master yet (the path does not even exist): no leader.
      await expect(detector.waitForLeader(300)).rejects.toMatchObject({ code: 'TIMEOUT' });

      const first = await registerMaster(admin, path, { id: 'm1', ip: '127.0.0.1', port: 15050 });
      expect(await detector.waitForLeader(10_000)).toBe('http://127.0.0.1:15050');

      // A standby registers later (higher sequence) plus nodes a detector must ignore.
      await registerMaster(admin, path, { id: 'm2', ip: '127.0.0.2', port: 15051 });
      await new Promise<void>((res, rej) => admin.create(`${path}/log_replicas`, Buffer.from(''), 0, (e) => (e ? rej(e) : res())));
      await new Promise((r) => setTimeout(r, 300));
      expect(detector.current()).toBe('http://127.0.0.1:15050');

      // The leader goes away: the standby takes over.
      await removeNode(admin, first);
      await waitFor(() => detector.current() === 'http://127.0.0.2:15051', 'the new leader');
      expect(leaders).toEqual(['http://127.0.0.1:15050', 'http://127.0.0.2:15051']);
    } finally {
      await detector.close();
    }
  });

  it("sees a master's session end as that master's loss", async () => {
    const path = '/mesos-b';
    const masterSession = await zk.client();
    await registerMaster(masterSession, path, { id: 'only', ip: '127.0.0.3', port: 15052 });
    const detector = createDetector(`zk://${zk.connectString}${path}`);
    try {
      await detector.start();
      expect(await detector.waitForLeader(10_000)).toBe('http://127.0.0.3:15052');
      masterSession.close(); // the ephemeral node disappears with the session
      await waitFor(() => detector.current() === undefined, 'no leader');
    } finally {
      await detector.close();
    }
  });

  it('reports bad master data as a problem, not a leader', async () => {
    const path = '/mesos-c';
    await new Promise<void>((res, rej) => admin.mkdirp(path, (e) => (e ? rej(e) : res())));
    await new Promise<void>((res, rej) => admin.create(`${path}/json.info_0000000001`, Buffer.from('not json'), 0, (e) => (e ? rej(e) : res())));
    const detector = new ZkMasterDetector(`zk://${zk.connectString}${path}`);
    const problems: string[] = [];
    detector.on('problem', (p) => problems.push(p));
    try {
      await detector.start();
      await waitFor(() => problems.length > 0, 'a problem report');
      expect(problems[0]).toContain('bad master data');
      expect(detector.current()).toBeUndefined();
    } finally {
      await detector.close();
    }
  });
});
