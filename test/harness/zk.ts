/**
 * A real ZooKeeper for tests: Debian's `zookeeper` package, standalone, on a
 * free 127.0.0.1 port with its own temporary data directory; stopped (and the
 * directory removed) by stop(). Also helpers to register masters the way a
 * Mesos master does (`json.info_<seq>` ephemeral sequential nodes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zookeeper from 'node-zookeeper-client';
import { freePort } from './ports.js';

/** Where Debian installs ZooKeeper and the logging jars it needs. */
const JARS = ['/usr/share/java/zookeeper.jar', '/usr/share/java/slf4j-log4j12.jar', '/usr/share/java/log4j-1.2.jar'];

/** Whether Debian's zookeeper package is installed (suites declare the need with ZOOKEEPER in requires.ts). */
export function zookeeperAvailable(): boolean {
  return JARS.every((j) => existsSync(j));
}

/** A running test ZooKeeper. */
export interface TestZooKeeper {
  readonly port: number;
  /** `127.0.0.1:<port>` for ZooKeeper clients. */
  readonly connectString: string;
  readonly dir: string;
  /** A connected client (the caller closes it). */
  client(): Promise<zookeeper.Client>;
  stop(): Promise<void>;
}

/** Ask the server `ruok` (four-letter word); true once it answers `imok`. */
function ruok(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let data = '';
    s.setTimeout(500, () => {
      s.destroy();
      resolve(false);
    });
    s.on('connect', () => s.write('ruok'));
    s.on('data', (d) => {
      data += d.toString();
    });
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(data === 'imok'));
  });
}

/** Start ZooKeeper; resolves when it answers `ruok`. */
export async function startZooKeeper(): Promise<TestZooKeeper> {
  if (!zookeeperAvailable()) throw new Error('Debian package zookeeper is not installed (/usr/share/java/zookeeper.jar)');
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'locus-zk-'));
  await Promise.all(['conf', 'data', 'log'].map((d) => mkdir(join(dir, d))));
  await writeFile(join(dir, 'conf', 'zoo.cfg'), [
    'tickTime=500', 'initLimit=10', 'syncLimit=5', `dataDir=${join(dir, 'data')}`, `clientPort=${port}`,
    'clientPortAddress=127.0.0.1', 'admin.enableServer=false', '4lw.commands.whitelist=ruok,stat,srvr', 'maxClientCnxns=0',
    // Short sessions: a test that kills a "master" sees its node vanish quickly.
    'minSessionTimeout=1000', 'maxSessionTimeout=10000', '',
  ].join('\n'));
  await writeFile(join(dir, 'conf', 'log4j.properties'), [
    'log4j.rootLogger=WARN, F', 'log4j.appender.F=org.apache.log4j.FileAppender', `log4j.appender.F.File=${join(dir, 'log', 'zookeeper.log')}`,
    'log4j.appender.F.layout=org.apache.log4j.PatternLayout', 'log4j.appender.F.layout.ConversionPattern=%d %-5p %m%n', '',
  ].join('\n'));
  const proc: ChildProcess = spawn('java', [
    '-Xms32m', '-Xmx128m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', `-Dzookeeper.log.dir=${join(dir, 'log')}`,
    `-Dlog4j.configuration=file:${join(dir, 'conf', 'log4j.properties')}`, '-cp', [join(dir, 'conf'), ...JARS].join(':'),
    'org.apache.zookeeper.server.quorum.QuorumPeerMain', join(dir, 'conf', 'zoo.cfg'),
  ], { stdio: 'ignore' });
  proc.on('error', () => undefined);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const deadline = Date.now() + 30_000;
  while (!(await ruok(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`zookeeper did not start on 127.0.0.1:${port} (see its log in ${dir})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const connectString = `127.0.0.1:${port}`;
  return {
    port,
    connectString,
    dir,
    client: () => connectClient(connectString),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A connected ZooKeeper client. */
export function connectClient(connectString: string, sessionTimeout = 2000): Promise<zookeeper.Client> {
  return new Promise((resolve, reject) => {
    const c = zookeeper.createClient(connectString, { sessionTimeout, spinDelay: 200 });
    const timer = setTimeout(() => {
      c.close();
      reject(new Error(`cannot connect to ZooKeeper ${connectString}`));
    }, 10_000);
    c.once('connected', () => {
      clearTimeout(timer);
      resolve(c);
    });
    c.connect();
  });
}

/** Register a "master" as Mesos does: an ephemeral sequential `json.info_` node with JSON MasterInfo. Returns its path. */
export async function registerMaster(c: zookeeper.Client, path: string, master: { id: string; ip: string; port: number; hostname?: string }): Promise<string> {
  await new Promise<void>((resolve, reject) => c.mkdirp(path, (err) => (err ? reject(err) : resolve())));
  const info = {
    id: master.id,
    pid: `master@${master.ip}:${master.port}`,
    port: master.port,
    hostname: master.hostname ?? master.ip,
    version: '1.12.0',
    address: { hostname: master.hostname ?? master.ip, ip: master.ip, port: master.port },
  };
  return await new Promise<string>((resolve, reject) =>
    c.create(`${path}/json.info_`, Buffer.from(JSON.stringify(info)), zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL, (err, created) => (err ? reject(err) : resolve(created))),
  );
}

/** Remove a node (a master stepping down). */
export async function removeNode(c: zookeeper.Client, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => c.remove(path, (err) => (err ? reject(err) : resolve())));
}
