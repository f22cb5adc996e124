/**
 * Storage-location benchmark: how fast Locus learns where input data lives.
 *
 *   npm run bench:locate     (builds, then node dist/bench/locate.js)
 *
 * 1. WebHDFS: 100,000 files in one directory of the loopback WebHDFS server
 *    (test/harness/webhdfs-server.ts, run in a worker thread so it does not
 *    share the client's event loop). One LISTSTATUS, then one
 *    GETFILEBLOCKLOCATIONS per file over keep-alive connections.
 * 2. RADOS: 100,000 object names placed against the Ceph test cluster's maps
 *    (test/harness/ceph.ts, or an existing cluster given by
 *    LOCUS_BENCH_CEPH_CONF): the maps are fetched once, then each object is
 *    pure computation (rjenkins → stable mod → PG → acting OSDs → hosts).
 *
 * Both runs check that the work was done (every file/object has hosts; a
 * sample agrees with the server's placement / `ceph osd map`) before the
 * numbers are kept. Results go to bench/results/locate-<date>.json.
 * Targets: ≥ 2,000 WebHDFS files/s, ≥ 200,000 RADOS objects/s.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { CephBackend } from '../src/storage/ceph/backend.js';
import { WebHdfsBackend } from '../src/storage/hdfs/backend.js';
import { HostMapper } from '../src/storage/hostmap.js';
import { startWebHdfsServer } from '../test/harness/webhdfs-server.js';

const run = promisify(execFile);
const FILES = Number(process.env['LOCUS_BENCH_FILES'] ?? 100_000);
const OBJECTS = Number(process.env['LOCUS_BENCH_OBJECTS'] ?? 100_000);
const name = (i: number): string => `part-${String(i).padStart(6, '0')}.csv`;

/** Worker side: serve the fake NameNode until told to stop. */
async function serveInWorker(): Promise<void> {
  const n = (workerData as { files: number }).files;
  const server = await startWebHdfsServer({
    lean: true,
    files: Array.from({ length: n }, (_, i) => ({ path: `/bench/${name(i)}`, size: 1000 + (i % 7) * 100 * 1024 * 1024, blockSize: 128 * 1024 * 1024 })),
  });
  parentPort?.postMessage({ port: server.port });
  parentPort?.on('message', (m: unknown) => {
    if (m === 'placement-sample') {
      parentPort?.postMessage({ sample: [0, 1, 2, 3, 4, 5, 6].map((i) => ({ path: `/bench/${name(i)}`, blocks: server.placement(`/bench/${name(i)}`).map((b) => b.datanodes.map((d) => server.datanodes[d]?.hostName)) })) });
    } else if (m === 'stop') {
      void server.close().then(() => parentPort?.postMessage({ stopped: true, counts: Object.fromEntries(server.counts) }));
    }
  });
}

function ask<T>(worker: Worker, message: string, key: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: Record<string, unknown>): void => {
      if (key in m) {
        worker.off('message', on);
        resolve(m as T);
      }
    };
    worker.on('message', on);
    worker.postMessage(message);
  });
}

async function benchWebHdfs(): Promise<Record<string, unknown>> {
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { files: FILES } });
  const { port } = await new Promise<{ port: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const backend = new WebHdfsBackend({ user: 'bench', concurrency: 64, maxSockets: 64, timeoutMs: 30_000, usePackage: false }, new HostMapper());
  try {
    // Warm up connections and the op probe on a few files (not timed).
    await backend.resolve(`hdfs://127.0.0.1:${port}/bench/${name(0)}`, { split: 'block' });
    const t0 = process.hrtime.bigint();
    const files = await backend.resolve(`hdfs://127.0.0.1:${port}/bench`, { split: 'block' });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (files.length !== FILES) throw new Error(`expected ${FILES} files, got ${files.length}`);
    if (!files.every((f) => f.splits.length > 0 && f.splits.every((s) => s.hosts.length === 3))) throw new Error('some file has no located splits');
    const { sample } = await ask<{ sample: { path: string; blocks: string[][] }[] }>(worker, 'placement-sample', 'sample');
    for (const s of sample) {
      const f = files.find((x) => x.uri.endsWith(s.path));
      if (JSON.stringify(f?.splits.map((x) => x.hosts)) !== JSON.stringify(s.blocks)) throw new Error(`wrong hosts for ${s.path}`);
    }
    const { counts } = await ask<{ counts: Record<string, number> }>(worker, 'stop', 'counts');
    return { files: FILES, splits: files.reduce((n, f) => n + f.splits.length, 0), seconds: +seconds.toFixed(3), filesPerSecond: Math.round(FILES / seconds), serverRequests: counts, concurrency: 64 };
  } finally {
    await backend.close();
    await worker.terminate();
  }
}

async function benchRados(): Promise<Record<string, unknown>> {
  let conf = process.env['LOCUS_BENCH_CEPH_CONF'];
  let stop: (() => Promise<void>) | undefined;
  let pool = process.env['LOCUS_BENCH_CEPH_POOL'] ?? 'locality';
  if (conf === undefined) {
    // The harness lives with the tests; import it only when no cluster is given.
    const { startCeph } = await import('../test/harness/ceph.js');
    const cluster = await startCeph({ cephfs: false });
    conf = cluster.conf;
    pool = cluster.pool;
    stop = cluster.stop;
  }
  try {
    const backend = new CephBackend({ conf }, new HostMapper());
    const names = Array.from({ length: OBJECTS }, (_, i) => `obj-${i}`);
    const tFetch = process.hrtime.bigint();
    const map = await backend.cluster.maps();
    const fetchSeconds = Number(process.hrtime.bigint() - tFetch) / 1e9;
    await backend.locateObjects(pool, names.slice(0, 1000));
    const t0 = process.hrtime.bigint();
    const located = await backend.locateObjects(pool, names);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (located.length !== OBJECTS || !located.every((l) => l.hosts.length > 0)) throw new Error('some object was not placed');
    for (const i of [0, 1, 77_777 % OBJECTS, OBJECTS - 1]) {
      const { stdout } = await run('ceph', ['--conf', conf, 'osd', 'map', pool, names[i] as string, '--format', 'json']);
      const truth = JSON.parse(stdout) as { pgid: string; acting: number[]; epoch: number };
      if (truth.epoch === map.epoch && (truth.pgid !== located[i]?.pgid || JSON.stringify(truth.acting) !== JSON.stringify(located[i]?.osds))) {
        throw new Error(`object ${names[i]}: we say ${located[i]?.pgid} ${JSON.stringify(located[i]?.osds)}, ceph says ${truth.pgid} ${JSON.stringify(truth.acting)}`);
      }
    }
    return { objects: OBJECTS, seconds: +seconds.toFixed(4), objectsPerSecond: Math.round(OBJECTS / seconds), mapFetchSeconds: +fetchSeconds.toFixed(3), epoch: map.epoch, pool, verifiedAgainstCephOsdMap: 4 };
  } finally {
    await stop?.();
  }
}

async function main(): Promise<void> {
  const webhdfs = await benchWebHdfs();
  console.log(`webhdfs: ${String(webhdfs['filesPerSecond'])} files/s (${String(webhdfs['files'])} files in ${String(webhdfs['seconds'])} s)`);
  const rados = await benchRados();
  console.log(`rados:   ${String(rados['objectsPerSecond'])} objects/s (${String(rados['objects'])} objects in ${String(rados['seconds'])} s; maps fetched in ${String(rados['mapFetchSeconds'])} s)`);
  const date = new Date().toISOString().slice(0, 10);
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, loadavg: loadavg().map((x) => +x.toFixed(2)) },
    targets: { webhdfsFilesPerSecond: 2000, radosObjectsPerSecond: 200_000 },
    webhdfs,
    rados,
    met: { webhdfs: Number(webhdfs['filesPerSecond']) >= 2000, rados: Number(rados['objectsPerSecond']) >= 200_000 },
  };
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/bench/locate.js → <repo>/bench/results
  const outDir = join(here, '..', '..', 'bench', 'results');
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, `locate-${date}.json`);
  await writeFile(out, JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

if (isMainThread) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
} else {
  void serveInWorker();
}
