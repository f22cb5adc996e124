/**
 * Tenants kept apart inside containers (issue 18, item 4), for each isolation
 * mode this machine supports. Tenant B runs a task that commits an output;
 * then a task of tenant A, run through the real attempt path (runAttempt, an
 * IsolatorRunner, the real isolator), tries to read and write B's outputs and
 * sandbox, Locus's Redis data and state directory and the host's /root, and to
 * kill processes outside its container. Every try is a line of the task's
 * stdout; the test asserts each was refused, and that the same task could
 * still use what is its own (its sandbox, its output, its input), so a probe
 * that is wrong cannot pass as a refusal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { runAttempt, type AttemptContext } from '../../src/executor/attempt.js';
import { CONTRACT_VERSION, type AttemptPayload, type AttemptResult } from '../../src/executor/contract.js';
import { outputMapper } from '../../src/executor/data-plane.js';
import { createIsolator } from '../../src/executor/isolation/index.js';
import { DEFAULT_TENANT_UIDS, tenantUid } from '../../src/executor/isolation/tenant.js';
import type { Isolator } from '../../src/executor/isolation/types.js';
import { IsolatorRunner } from '../../src/executor/runner.js';
import { startManagedRedis, type ManagedRedis } from '../../src/app/redis-server.js';
import { closeStateDirLogged } from '../../src/local/work-dir.js';
import { silentLogger } from '../../src/obs/log.js';
import { createStorageRegistry, type StorageRegistry } from '../../src/storage/registry.js';
import { LINUX_ISOLATION, ROOT, describeWith } from '../harness/requires.js';

const A = 'acme';
const B = 'globex';

/** What tenant A's task tries, each `name` with a shell test that succeeds when the access worked. */
function probes(p: { bOut: string; bTenant: string; bSandbox: string; redisDir: string; stateDir: string; rootPid: number; bPid: number }): Array<[string, string]> {
  return [
    ['read B output', `cat ${p.bOut}/part`],
    ['list B tenant dir', `ls ${p.bTenant}`],
    ['write B tenant dir', `touch ${p.bTenant}/intruder`],
    ['write B output', `touch ${p.bOut}/intruder`],
    ['read B sandbox', `cat ${p.bSandbox}/stdout`],
    ['list B sandbox', `ls ${p.bSandbox}`],
    ['write B sandbox', `touch ${p.bSandbox}/intruder`],
    ['list Redis data', `ls ${p.redisDir}`],
    ['read Redis ACL', `cat ${p.redisDir}/users.acl`],
    ['write Redis data', `touch ${p.redisDir}/intruder`],
    // The container's root has empty directories on the way to its own mounts (the state
    // directory among them), and the process mode's task passes through it to its output:
    // what must stay hidden is what else the state directory holds.
    ['list state dir', `ls ${p.stateDir} | grep -q redis`],
    ['read state file', `cat ${p.stateDir}/framework-id`],
    ['write state dir', `touch ${p.stateDir}/intruder`],
    ['list /root', 'ls /root'],
    ['kill a root process outside', `kill -KILL ${p.rootPid}`],
    ['kill B process outside', `kill -KILL ${p.bPid}`],
  ];
}

/** What the same task must be able to do: its own sandbox, output and input. */
const CONTROLS: Array<[string, string]> = [
  ['write own sandbox', 'echo x > ./mine && cat ./mine'],
  ['write own output', 'echo mine > "$LOCUS_OUTPUT_DIR/part"'],
  ['read own input', 'cat "$INPUT_FILE"'],
];

function script(lines: Array<[string, string]>): string {
  // Each try's own output is discarded: only whether it worked is reported.
  return lines.map(([name, cmd]) => `if (${cmd}) >/dev/null 2>&1; then echo "PROBE ${name}: ALLOWED"; else echo "PROBE ${name}: REFUSED"; fi`).join('\n');
}

function parse(stdout: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const r = /^PROBE (.+): (ALLOWED|REFUSED)$/.exec(line);
    if (r?.[1] !== undefined && r[2] !== undefined) m.set(r[1], r[2]);
  }
  return m;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The modes; each must refuse every probe. The linux mode hides what is not the task's
 * (mount and pid namespaces); the process fallback has neither, so there the modes of
 * Locus's directories and the tenant's own uid must do it.
 */
const MODES = [
  { mode: 'linux' as const, deps: [LINUX_ISOLATION] },
  { mode: 'process' as const, deps: [ROOT] },
];

for (const m of MODES) {
  describeWith(m.deps, `tenants kept apart: ${m.mode} isolation`, () => {
    let state: string;
    let isolator: Isolator;
    let redis: ManagedRedis;
    let ctx: AttemptContext;
    let storage: StorageRegistry;
    const others: ChildProcess[] = [];
    let seq = 0;

    beforeAll(async () => {
      // Outside /tmp (the linux mode's private /tmp would hide it anyway) and as open as a
      // state directory an earlier version left behind (/var/lib/locus was 0755, its files
      // 0644), so the process mode is tested against what start-up really makes of it.
      mkdirSync('/var/tmp', { recursive: true });
      state = mkdtempSync(`/var/tmp/locus-tenants-${m.mode}-`);
      chmodSync(state, 0o755);
      const outputs = join(state, 'outputs');
      mkdirSync(outputs);
      chmodSync(outputs, 0o1777); // as the executor runtime makes it
      writeFileSync(join(state, 'framework-id'), 'fw-1\n', { mode: 0o644 });
      redis = await startManagedRedis({ dataDir: join(state, 'redis'), logger: silentLogger() });
      // What `locus framework` and `locus up` do with their state dir at start-up.
      closeStateDirLogged(state, { privateFiles: true }, silentLogger(), 'state dir');
      expect(statSync(state).mode & 0o777).toBe(0o711);
      expect(statSync(join(state, 'framework-id')).mode & 0o777).toBe(0o600);
      isolator = await createIsolator(m.mode, silentLogger());
      // Splits not on this host are read through the storage registry, as the executor's data plane does.
      storage = createStorageRegistry({});
      ctx = {
        runner: new IsolatorRunner(isolator, join(state, 'executor')),
        host: 'localhost',
        logger: silentLogger(),
        scratchDir: join(state, 'executor', 'scratch'),
        killGraceMs: 200,
        dataPlane: { token: async () => '', readUri: (uri, offset, length) => storage.read(uri, offset, length), ...outputMapper({ root: outputs, shared: true }) },
        tenantUids: DEFAULT_TENANT_UIDS,
      };
    }, 30_000);

    afterAll(async () => {
      for (const c of others) c.kill('SIGKILL');
      await isolator?.close();
      await storage?.close();
      await redis?.stop();
      if (state) rmSync(state, { recursive: true, force: true });
    });

    async function attempt(tenant: string, argv: string[], extra: Partial<AttemptPayload> = {}): Promise<AttemptResult> {
      seq += 1;
      const job = `job-${seq}`;
      const payload: AttemptPayload = {
        contractVersion: CONTRACT_VERSION, jobId: job, taskId: `${job}.t0`, attemptId: `${job}.t0.a1`, attempt: 1,
        argv, env: {}, resources: { cpus: 0.5, memMiB: 64, diskMiB: 0 }, timeoutMs: 30_000,
        outputDir: join(state, 'outputs', tenant, job, 'out', '00000'), volumes: [], inputPaths: [], ...extra,
      };
      return runAttempt(payload, ctx, { delivery: `d${seq}`, drain: new AbortController().signal, onRunning: () => undefined });
    }

    test('a task cannot reach another tenant, Locus\'s state or the host, and still has its own', async () => {
      // Tenant B commits an output; its sandbox keeps its stdout.
      const b = await attempt(B, ['sh', '-c', 'echo secret-of-b > "$LOCUS_OUTPUT_DIR/part"; echo b-log']);
      expect(b.state, b.message).toBe('SUCCEEDED');
      const bOut = b.outputPath ?? '';
      const bTenant = join(state, 'outputs', B);
      expect(readFileSync(join(bOut, 'part'), 'utf8')).toBe('secret-of-b\n');
      // The tenant's output directory belongs to its uid alone.
      const st = statSync(bTenant);
      expect(st.uid).toBe(tenantUid(B, DEFAULT_TENANT_UIDS));
      expect(st.mode & 0o777).toBe(0o750);
      const bSandbox = b.sandboxDir ?? '';
      expect(readFileSync(join(bSandbox, 'stdout'), 'utf8')).toBe('b-log\n');

      // Processes outside A's container: one of root's and one of tenant B's uid.
      const bUid = tenantUid(B, DEFAULT_TENANT_UIDS);
      const rootProc = spawn('sleep', ['60'], { stdio: 'ignore' });
      const bProc = spawn('sleep', ['60'], { stdio: 'ignore', uid: bUid, gid: bUid });
      others.push(rootProc, bProc);
      const rootPid = rootProc.pid ?? 0;
      const bPid = bProc.pid ?? 0;
      expect(alive(rootPid) && alive(bPid)).toBe(true);

      // A's own input, read-only.
      const inputDir = join(state, 'inputs-a');
      mkdirSync(inputDir);
      writeFileSync(join(inputDir, 'in.txt'), 'input-of-a\n');
      chmodSync(inputDir, 0o755);
      const tries = probes({ bOut, bTenant, bSandbox, redisDir: join(state, 'redis'), stateDir: state, rootPid, bPid });
      const lines: Array<[string, string]> = [...tries, ...CONTROLS, ['write own input', `touch ${inputDir}/in.txt`], ['uid', `test "$(id -u)" = ${tenantUid(A, DEFAULT_TENANT_UIDS)}`]];
      const a = await attempt(A, ['sh', '-c', script(lines)], { env: { INPUT_FILE: join(inputDir, 'in.txt') }, inputPaths: [inputDir] });
      expect(a.state, a.message).toBe('SUCCEEDED');
      const seen = parse(readFileSync(join(a.sandboxDir ?? '', 'stdout'), 'utf8'));
      expect(seen.size).toBe(lines.length);

      for (const [name] of CONTROLS) expect(seen.get(name), name).toBe('ALLOWED');
      expect(seen.get('uid'), 'the task runs as its tenant\'s uid').toBe('ALLOWED');
      // Read-only by the mount in linux mode; by the file's owner (root) in process mode.
      expect(seen.get('write own input'), 'inputs are read-only').toBe('REFUSED');
      for (const [name] of tries) expect(seen.get(name), name).toBe('REFUSED');

      // Nothing of B's changed, and the processes outside live on.
      expect(readFileSync(join(bOut, 'part'), 'utf8')).toBe('secret-of-b\n');
      expect(alive(rootPid)).toBe(true);
      expect(alive(bPid)).toBe(true);
      // A's own output was committed.
      expect(readFileSync(join(a.outputPath ?? '', 'part'), 'utf8')).toBe('mine\n');
    }, 60_000);

    test('the same tenant\'s next stage reads the earlier stage\'s output', async () => {
      const first = await attempt(B, ['sh', '-c', 'echo stage-one > "$LOCUS_OUTPUT_DIR/part"']);
      expect(first.state, first.message).toBe('SUCCEEDED');
      const dir = first.outputPath ?? '';
      const next = await attempt(B, ['sh', '-c', `cat ${dir}/part > "$LOCUS_OUTPUT_DIR/part"`], { inputPaths: [dir] });
      expect(next.state, next.message).toBe('SUCCEEDED');
      expect(readFileSync(join(next.outputPath ?? '', 'part'), 'utf8')).toBe('stage-one\n');
    }, 60_000);

    test('a task cannot list other sandboxes or read another tenant\'s inputs while that tenant\'s task runs', async () => {
      // B's input is B's alone on this host (root's, 0600); the executor reads it into B's scratch.
      const bInput = join(state, 'input-of-b.txt');
      writeFileSync(bInput, 'input-of-b\n', { mode: 0o600 });
      const scratchRoot = join(state, 'executor', 'scratch');
      const sandboxes = join(state, 'executor', 'containers');
      const b = attempt(B, ['sh', '-c', 'cat "$LOCUS_SPLIT_PATH" > "$LOCUS_OUTPUT_DIR/part" && sleep 4'], {
        split: { uri: `file://${bInput}`, offset: 0, length: 11 },
      });
      // B's scratch lives only while its attempt does: A probes in that window.
      let bScratch: string | undefined;
      for (let i = 0; i < 200 && bScratch === undefined; i++) {
        const found = (() => { try { return readdirSync(scratchRoot); } catch { return []; } })();
        bScratch = found.map((n) => join(scratchRoot, n)).find((d) => { try { return statSync(join(d, 'split')).size === 11; } catch { return false; } });
        if (bScratch === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      expect(bScratch, 'B\'s split was materialised in its scratch directory').toBeDefined();
      const bName = basename(bScratch ?? '');
      const tries: Array<[string, string]> = [
        ['read B input', `cat ${bScratch ?? ''}/split`],
        ['list B scratch', `ls ${bScratch ?? ''}`],
        ['list scratch root', `ls ${scratchRoot} | grep -q ${bName}`],
        ['list other sandboxes', `ls ${sandboxes} | grep -q ${bName}`],
        ['read B input at its source', `cat ${bInput}`],
      ];
      const a = await attempt(A, ['sh', '-c', script(tries)]);
      expect(a.state, a.message).toBe('SUCCEEDED');
      const seen = parse(readFileSync(join(a.sandboxDir ?? '', 'stdout'), 'utf8'));
      expect(seen.size).toBe(tries.length);
      for (const [name] of tries) expect(seen.get(name), name).toBe('REFUSED');
      // B itself read its input: the scratch was closed to others, not to its owner.
      const bDone = await b;
      expect(bDone.state, bDone.message).toBe('SUCCEEDED');
      expect(readFileSync(join(bDone.outputPath ?? '', 'part'), 'utf8')).toBe('input-of-b\n');
      expect(bDone.sandboxDir !== undefined && basename(bDone.sandboxDir)).toBe(bName);
    }, 60_000);
  });
}
