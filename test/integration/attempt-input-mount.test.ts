/**
 * A split of a GlusterFS or CephFS input is read through this host's mount of it: bound into the
 * container at its path under the mount (split.localPath, as the framework's listing names it) or
 * streamed through the mount into scratch (no local path: the storage registry's read). When that
 * host's FUSE or kernel client is gone, the mount point is a plain empty directory and the file is
 * not there: the launch (the bound path missing) or the read (ENOENT) failed, counted against the
 * task, and its retries could come back to the same host. The executor looks at the mount first
 * and ends such an attempt as the host's trouble: INPUT_UNREACHABLE, not counted, the host blamed
 * (the retry avoids it), with a message naming the mount point and the host.
 *
 * Real parts: a tmpfs mounted on a directory stands for the FUSE mount (root only), the
 * framework's GlusterBackend lists the file (with the harness's stand-in getfattr) to name the
 * split as dispatch would, and the workload is a real process (the process isolator).
 */
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { runAttempt, type AttemptContext } from '../../src/executor/attempt.js';
import { CONTRACT_VERSION, INPUT_UNREACHABLE, type AttemptPayload, type AttemptResult } from '../../src/executor/contract.js';
import { outputMapper } from '../../src/executor/data-plane.js';
import { InputMounts } from '../../src/executor/input-mounts.js';
import { createIsolator } from '../../src/executor/isolation/index.js';
import type { Isolator } from '../../src/executor/isolation/types.js';
import { IsolatorRunner } from '../../src/executor/runner.js';
import { silentLogger } from '../../src/obs/log.js';
import { classifyFailure, hostAtFault } from '../../src/scheduler/jobs/service.js';
import type { ExecutorStorageConfig } from '../../src/storage/executor-config.js';
import { whyNotMounted } from '../../src/storage/fs-lister.js';
import { GlusterBackend } from '../../src/storage/gluster/backend.js';
import { HostMapper } from '../../src/storage/hostmap.js';
import { createStorageRegistry } from '../../src/storage/registry.js';
import { registryConfigFor } from '../../src/storage/executor-config.js';
import { fakeGlusterGetfattr, mountTmpfs, unmount, unmountAll } from '../harness/mounts.js';
import { ROOT, describeWith } from '../harness/requires.js';
import { memoryLedger } from '../unit/attempt-fixture.js';

const HOST = 'agent-7';
const TEXT = 'the cat the dog\n';
let dir: string;
let isolator: Isolator | undefined;
let n = 0;

beforeAll(() => {
  // Not under /tmp: an isolator may give attempts a private /tmp. Traversable by the workload's user.
  dir = realpathSync(mkdtempSync('/var/tmp/locus-inmount-'));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'outputs'), { mode: 0o1777 });
  chmodSync(join(dir, 'outputs'), 0o1777);
});

afterEach(() => {
  // A failed assertion must not leave a mount behind on a shared machine.
  unmountAll();
});

afterAll(async () => {
  await isolator?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A mount point at `name` with the tmpfs standing for GlusterFS or CephFS, holding books/b1.txt. */
function mountWithBook(name: string): string {
  const mnt = join(dir, name);
  mkdirSync(mnt, { recursive: true });
  mountTmpfs(mnt);
  chmodSync(mnt, 0o755);
  mkdirSync(join(mnt, 'books'));
  writeFileSync(join(mnt, 'books', 'b1.txt'), TEXT);
  return mnt;
}

/**
 * The executor's attempt context for a host whose storage configuration is `config`: its data
 * plane as startDataPlane builds it (storage reads, the configured mounts), a real process runner.
 */
async function context(config: ExecutorStorageConfig, mounts: InputMounts | undefined = InputMounts.fromConfig(config, { okForMs: 0 })): Promise<AttemptContext> {
  isolator ??= await createIsolator('process', silentLogger());
  const registry = createStorageRegistry(registryConfigFor(config));
  return {
    runner: new IsolatorRunner(isolator, join(dir, 'executor')), host: HOST, logger: silentLogger(), scratchDir: join(dir, 'executor', 'scratch'), killGraceMs: 200,
    dataPlane: {
      token: async () => '', ledger: memoryLedger().ledger, ...outputMapper({ root: join(dir, 'outputs'), shared: true }),
      readUri: (uri, offset, length) => registry.read(uri, offset, length),
      ...(mounts === undefined ? {} : { inputMounts: mounts }),
    },
  };
}

/** An attempt copying its split to its output; bound at its local path when it has one, as dispatch sends it. */
function payload(split: { uri: string; localPath?: string }): AttemptPayload {
  n += 1;
  return {
    contractVersion: CONTRACT_VERSION, jobId: 'job-m', taskId: `job-m.0.${n}`, attemptId: `job-m.0.${n}.a1`, attempt: 1,
    argv: ['sh', '-c', "cat '{split.path}' > '{output}/copy'"], env: {}, resources: { cpus: 0.1, memMiB: 64, diskMiB: 0 }, timeoutMs: 10_000,
    outputDir: join(dir, 'outputs', 't', 'job-m', 'map', String(n).padStart(5, '0')),
    split: { uri: split.uri, offset: 0, length: TEXT.length, ...(split.localPath === undefined ? {} : { localPath: split.localPath }) },
    volumes: [], inputPaths: split.localPath === undefined ? [] : [split.localPath],
  };
}

const control = { delivery: 'd', drain: new AbortController().signal, onRunning: () => undefined };

async function copied(r: AttemptResult): Promise<string> {
  return await readFile(join(r.outputPath ?? '', 'copy'), 'utf8');
}

/** The host's trouble: not counted against the task, and the host blamed, so the retry goes elsewhere. */
function expectHostTrouble(r: AttemptResult, mountPoint: string): void {
  expect(r).toMatchObject({ state: 'FAILED', reason: INPUT_UNREACHABLE, host: HOST });
  expect(r.message).toContain(mountPoint);
  expect(r.message).toContain(HOST);
  expect(classifyFailure(r)).toBe('not-counted');
  expect(hostAtFault(r)).toBe(true);
  // Nothing ran: the workload never saw an empty directory for its input.
  expect(r.sandboxDir).toBeUndefined();
}

describeWith([ROOT], 'an attempt whose split is read through a GlusterFS or CephFS mount of its host', () => {
  it('GlusterFS: read through the mount (bound and streamed); with the mount gone, the host\'s trouble; back, read again', async () => {
    const mnt = mountWithBook('gv0');
    const config: ExecutorStorageConfig = { version: 1, gluster: { mounts: { gv0: mnt } } };
    // The split as the framework's listing names it: the file at its path under the mount.
    const gluster = new GlusterBackend({ mounts: { gv0: mnt }, getfattrBin: fakeGlusterGetfattr(dir, 'gv0', HOST), timeoutMs: 5_000 }, new HostMapper());
    const [file] = await gluster.resolve('glusterfs://gv0/books/b1.txt', { split: 'file' });
    expect(file?.localPath).toBe(join(mnt, 'books', 'b1.txt'));
    const bound = { uri: 'glusterfs://gv0/books/b1.txt', localPath: file?.localPath ?? '' };
    const streamed = { uri: 'glusterfs://gv0/books/b1.txt' };
    const ctx = await context(config);

    for (const split of [bound, streamed]) {
      const r = await runAttempt(payload(split), ctx, control);
      expect(r).toMatchObject({ state: 'SUCCEEDED', reason: 'COMMITTED' });
      expect(await copied(r)).toBe(TEXT);
    }

    // The FUSE client gone: its mount point is a plain, empty directory again.
    unmount(mnt);
    for (const split of [bound, streamed]) {
      const r = await runAttempt(payload(split), ctx, control);
      expectHostTrouble(r, mnt);
      expect(r.message).toContain('GlusterFS mount of volume \'gv0\'');
      expect(r.message).toContain('not mounted');
    }

    // Mounted again: the next attempt reads (a mount found gone is not remembered).
    mountWithBook('gv0');
    const r = await runAttempt(payload(bound), ctx, control);
    expect(r).toMatchObject({ state: 'SUCCEEDED' });
    expect(await copied(r)).toBe(TEXT);
  }, 30_000);

  it('CephFS: the same, bound and streamed', async () => {
    const mnt = mountWithBook('cephfs');
    const ctx = await context({ version: 1, ceph: { cephfsMount: `${mnt}/` } });
    const bound = { uri: 'cephfs:///books/b1.txt', localPath: join(mnt, 'books', 'b1.txt') };
    const streamed = { uri: 'cephfs:///books/b1.txt' };
    const ok = await runAttempt(payload(streamed), ctx, control);
    expect(await copied(ok)).toBe(TEXT);
    unmount(mnt);
    for (const split of [bound, streamed]) {
      const r = await runAttempt(payload(split), ctx, control);
      expectHostTrouble(r, mnt);
      expect(r.message).toContain('CephFS mount');
    }
  }, 30_000);

  it('a configured mount point that does not exist on the host: its configuration\'s error, the host\'s trouble', async () => {
    const missing = join(dir, 'gv1-typo');
    const ctx = await context({ version: 1, gluster: { mounts: { gv1: missing } } });
    const r = await runAttempt(payload({ uri: 'glusterfs://gv1/books/b1.txt', localPath: join(missing, 'books', 'b1.txt') }), ctx, control);
    expectHostTrouble(r, missing);
    expect(r.message).toContain(`${missing} does not exist`);
    expect(r.message).toContain('configuration error of this host');
  }, 30_000);

  it('a hung mount: the look times out, and while it hangs the next attempts are told so at once', async () => {
    const mnt = mountWithBook('gv2');
    const config: ExecutorStorageConfig = { version: 1, gluster: { mounts: { gv2: mnt } } };
    // A stat of the mount point that never returns, as on a FUSE client stuck until its ping timeout.
    const hung = (): Promise<Stats> => new Promise<Stats>(() => undefined);
    const mounts = InputMounts.fromConfig(config, { okForMs: 0, timeoutMs: 300, check: (m, t, ms) => whyNotMounted(m, t, ms, { stat: hung }) });
    const ctx = await context(config, mounts);
    const split = { uri: 'glusterfs://gv2/books/b1.txt', localPath: join(mnt, 'books', 'b1.txt') };
    const first = await runAttempt(payload(split), ctx, control);
    expectHostTrouble(first, mnt);
    expect(first.message).toContain('no answer within 300 ms');
    const t0 = Date.now();
    const next = await runAttempt(payload(split), ctx, control);
    expectHostTrouble(next, mnt);
    expect(next.message).toContain('is hung');
    expect(Date.now() - t0).toBeLessThan(300);
  }, 30_000);
});
