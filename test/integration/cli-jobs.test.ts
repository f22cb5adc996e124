/**
 * The job commands through the built `locus` binary against a real API
 * server (real Redis, real job service) started here: submit --watch with
 * JSON and plain output and the exit status of the job, jobs, job, logs
 * (tail and follow), cancel, explain, field-named errors and tenant scope.
 * The test plays the scheduler: it starts and finishes attempts directly.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKENS, WORD_FILES, startJobsApi, until, type JobsApi } from './api-jobs-fixture.js';

const BIN = 'dist/src/cli/main.js';
let api: JobsApi;
let work: string;

/** Build when the binary is missing or older than the sources this file tests. */
function buildIfStale(): void {
  const sources = [
    'src/cli/main.ts', 'src/cli/client.ts', 'src/cli/progress.ts',
    ...readdirSync('src/cli/commands').map((f) => join('src/cli/commands', f)),
    ...readdirSync('src/api/http').map((f) => join('src/api/http', f)),
  ];
  const built = 'dist/src/cli/commands/submit.js';
  if (existsSync(built) && sources.every((s) => statSync(s).mtimeMs <= statSync(built).mtimeMs)) return;
  // Other modules' type errors must not stop the build of these files: tsc emits anyway.
  spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'ignore' });
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface Running {
  /** Everything printed on stdout so far. */
  stdout(): string;
  readonly done: Promise<Run>;
}

function locus(args: string[], token: string = TOKENS.alpha, env: Record<string, string> = {}): Running {
  const child = spawn('node', [BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // HOME is empty so no ~/.locus/config of this machine interferes.
    env: { ...process.env, HOME: work, LOCUS_SERVER: api.url, LOCUS_TOKEN: token, LOCUS_LOG_LEVEL: '', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const done = new Promise<Run>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { stdout: () => stdout, done };
}

const JOB_YAML = `name: cli-wc
retries: 0
inputs: local://words/
task:
  command: [wc, -w, "{split.path}"]
`;

/** Wait for the job id the CLI printed, then run its tasks to the end (one fails when asked). */
async function playScheduler(run: Running, json: boolean, failOne = false): Promise<string> {
  const id = await until('the CLI to print the job id', async () => {
    const first = run.stdout().split('\n')[0];
    if (!first || !run.stdout().includes('\n')) return undefined;
    return json ? String((JSON.parse(first) as { id: string }).id) : first.trim();
  });
  const tasks = await api.waitPending(id, WORD_FILES);
  // Let the CLI open its stream first, so it sees every task event live.
  await until('the CLI to watch', async () => (api.activeStreams() > 0 ? true : undefined));
  // All start before any ends: a failing job starts nothing new.
  const attempts = [];
  for (const [i, t] of tasks.entries()) attempts.push(await api.start(t, i === 2 ? 'agent-z' : 'agent-a'));
  for (const [i, t] of tasks.entries()) await api.finish(t, attempts[i] ?? '', failOne && i === 1 ? 'FAILED' : 'SUCCEEDED');
  return id;
}

beforeAll(async () => {
  buildIfStale();
  expect(existsSync(BIN)).toBe(true);
  work = mkdtempSync(join(tmpdir(), 'locus-cli-jobs-'));
  writeFileSync(join(work, 'job.yaml'), JOB_YAML);
  writeFileSync(join(work, 'job.json'), JSON.stringify({ name: 'cli-json', inputs: ['local://words/'], task: { command: ['true'] } }));
  writeFileSync(join(work, 'bad.yaml'), 'name: bad\ninputs: local://words/\ntask:\n  command: []\n');
  api = await startJobsApi({ logPollMs: 50 });
});

afterAll(async () => {
  await api?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('locus submit --watch', () => {
  it('--json: prints the job, then one JSON event per line, and exits 0 when the job succeeds', async () => {
    const run = locus(['submit', join(work, 'job.yaml'), '--watch', '--json']);
    const id = await playScheduler(run, true);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ id, name: 'cli-wc', tenant: 'alpha' });
    expect(lines[1]).toMatchObject({ kind: 'job', jobId: id, job: { id } });
    const tasks = lines.filter((l) => l['kind'] === 'task');
    expect(tasks.filter((l) => l['state'] === 'SUCCEEDED')).toHaveLength(WORD_FILES);
    expect(tasks.find((l) => l['state'] === 'RUNNING')).toMatchObject({ locality: 'node-local' });
    expect(lines[lines.length - 1]).toMatchObject({ kind: 'job', state: 'SUCCEEDED', counts: { succeeded: WORD_FILES } });
  });

  it('plain lines when not a terminal; exits 1 when the job fails', async () => {
    const run = locus(['submit', join(work, 'job.yaml'), '--watch']);
    const id = await playScheduler(run, false, true);
    const r = await run.done;
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(id);
    expect(lines.some((l) => /task \S+\.0\.1 FAILED/.test(l))).toBe(true);
    expect(lines.some((l) => / task \S+ RUNNING on agent-a \(node-local\) \[/.test(l))).toBe(true);
    expect(lines[lines.length - 1]).toMatch(new RegExp(`job ${id} FAILED: 1 task\\(s\\) failed \\[2/${WORD_FILES} done, 0 running, 0 pending, 1 failed\\]`));
    expect(r.stderr).toContain(`locus: job ${id} FAILED`);
  });

  it('on a terminal: a live block redrawn in place (tasks, locality mix, elapsed), exit 0', async () => {
    // `script` gives the CLI a pseudo-terminal; -e passes its exit status through.
    const cmd = `node ${BIN} submit ${join(work, 'job.yaml')} --watch`;
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: work, LOCUS_SERVER: api.url, LOCUS_TOKEN: TOKENS.alpha, COLUMNS: '100' },
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const done = new Promise<number | null>((resolve) => child.on('close', resolve));
    const id = await playScheduler({ stdout: () => out.replace(/\r/g, ''), done: done.then((code) => ({ code, stdout: out, stderr: '' })) }, false);
    expect(await done).toBe(0);
    expect(out).toContain(`${id}\r\n`);
    // Each redraw moves the cursor up over the previous block and clears it.
    expect(out).toContain('\x1b[3F\x1b[0J');
    expect(out).toMatch(/job cli-wc {2}SUCCEEDED {2}elapsed \d+:\d\d/);
    expect(out).toContain(`${WORD_FILES}/${WORD_FILES} done · 0 running · 0 pending · 0 failed`);
    expect(out).toContain(`locality: node-local ${WORD_FILES} (100%)`);
    expect(out).toContain(`locus: job ${id} SUCCEEDED`);
  });

  it('without --watch prints only the id (JSON spec file, admin acting for a tenant)', async () => {
    const r = await locus(['submit', join(work, 'job.json'), '--tenant', 'beta'], TOKENS.admin).done;
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^job-/);
    expect((await api.jobs.get(id)).tenant).toBe('beta');
  });

  it('names the bad field and the error code, exit 1; a missing file is a usage error, exit 2', async () => {
    const bad = await locus(['submit', join(work, 'bad.yaml')]).done;
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^locus: INVALID_FIELD: task\.command: must be a non-empty list/m);
    const missing = await locus(['submit', join(work, 'nope.yaml')]).done;
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read');
    const noAuth = await locus(['submit', join(work, 'job.yaml')], 'wrong-token').done;
    expect(noAuth.code).toBe(1);
    expect(noAuth.stderr).toContain('locus: UNAUTHENTICATED');
  });

  it('a mistyped flag names the one meant; an API that does not answer says what to check', async () => {
    // Node's own text ("To specify a positional argument starting with a '-' …") pointed at
    // positionals; the usual cause is a typo.
    const typo = await locus(['submit', join(work, 'job.yaml'), '--wacth']).done;
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/^locus: unknown option '--wacth' \(did you mean --watch\?\)\nusage: locus submit/);
    const far = await locus(['jobs', '--colour']).done;
    expect(far.code).toBe(2);
    expect(far.stderr).toMatch(/^locus: unknown option '--colour'\n/);
    // A framework that is not running: "fetch failed" alone said neither why nor what to do.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const down = await locus(['submit', join(work, 'job.yaml')], TOKENS.alpha, { LOCUS_SERVER: `http://127.0.0.1:${port}` }).done;
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`locus: UNAVAILABLE: cannot reach the Locus API at http://127.0.0.1:${port} (connection refused): is the framework running there ('locus up' or 'locus framework')? --server or LOCUS_SERVER names another address`);
  });
});

describe('the other job commands', () => {
  let id: string;
  let taskId: string;

  beforeAll(async () => {
    const r = await locus(['submit', join(work, 'job.yaml')]).done;
    id = r.stdout.trim();
    const tasks = await api.waitPending(id, WORD_FILES);
    taskId = tasks[0] ?? '';
    const sandbox = join(api.agentRoot, 'cli-sandbox');
    mkdirSync(sandbox, { recursive: true });
    writeFileSync(join(sandbox, 'stdout'), 'alpha 3\nbeta 2\ngamma 1\n');
    writeFileSync(join(sandbox, 'stderr'), 'a warning\n');
    const attempt = await api.start(taskId);
    await api.finish(taskId, attempt, 'SUCCEEDED', sandbox);
    await api.start(tasks[1] ?? '');
  });

  it('jobs: a table of the caller’s jobs', async () => {
    const r = await locus(['jobs']).done;
    expect(r.code, r.stderr).toBe(0);
    const [header, ...rows] = r.stdout.trim().split('\n');
    expect(header).toMatch(/^ID\s+NAME\s+TENANT\s+STATE\s+DONE\s+RUNNING\s+FAILED\s+NODE-LOCAL\s+ELAPSED$/);
    const row = rows.find((l) => l.startsWith(id));
    expect(row).toMatch(new RegExp(`^${id}\\s+cli-wc\\s+alpha\\s+RUNNING\\s+1/${WORD_FILES}\\s+1\\s+0\\s+100%`));
    expect(rows.every((l) => / alpha /.test(l))).toBe(true);
    const json = await locus(['jobs', '--json', '--state', 'running']).done;
    const list = JSON.parse(json.stdout) as { id: string; state: string }[];
    expect(list.map((j) => j.id)).toContain(id);
    expect(list.every((j) => j.state === 'RUNNING')).toBe(true);
  });

  it('job ID: details and a summary of its tasks', async () => {
    const r = await locus(['job', id]).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^id\\s+${id}$`, 'm'));
    expect(r.stdout).toMatch(/^state\s+RUNNING/m);
    expect(r.stdout).toMatch(new RegExp(`^tasks\\s+${WORD_FILES} total: 1 succeeded, 1 running, ${WORD_FILES - 2} pending, 0 failed$`, 'm'));
    expect(r.stdout).toMatch(/^locality\s+node-local 1 \(100%\)/m);
    expect(r.stdout).toContain(`attempted tasks: 2 (1 SUCCEEDED, 1 RUNNING); never attempted: ${WORD_FILES - 2}`);
    expect(r.stdout).toMatch(/\.0\.1\s+RUNNING\s+attempts 1\s+on agent-a \(node-local\)/);
    const other = await locus(['job', id], TOKENS.beta).done;
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/^locus: NOT_FOUND: job \S+ not found/m);
  });

  it('logs: whole, --tail, --stderr, -f of a finished task', async () => {
    const all = await locus(['logs', taskId]).done;
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toBe('alpha 3\nbeta 2\ngamma 1\n');
    expect((await locus(['logs', taskId, '--tail', '1']).done).stdout).toBe('gamma 1\n');
    expect((await locus(['logs', taskId, '--stderr']).done).stdout).toBe('a warning\n');
    const follow = await locus(['logs', taskId, '-f', '--tail', '2']).done;
    expect(follow.code).toBe(0);
    expect(follow.stdout).toBe('beta 2\ngamma 1\n');
    const bad = await locus(['logs', taskId, '--tail', 'x']).done;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--tail');
  });

  it('explain: a pending task and why', async () => {
    const pending = `${id}.0.2`;
    const r = await locus(['explain', pending]).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`task ${pending}: PENDING\nNOT_SUBSCRIBED: Locus is not subscribed to a Mesos master yet, so no offers arrive\n`);
    const json = JSON.parse((await locus(['explain', taskId, '--json']).done).stdout) as { state: string };
    expect(json.state).toBe('SUCCEEDED');
  });

  it('cancel: the job ends CANCELLED; another tenant cannot', async () => {
    const other = await locus(['cancel', id], TOKENS.beta).done;
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('NOT_FOUND');
    const r = await locus(['cancel', id]).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`job ${id}: CANCELLED\n`);
    expect((await api.jobs.get(id)).state).toBe('CANCELLED');
    // Cancelled again: said to have ended before, not cancelled anew.
    const again = await locus(['cancel', id]).done;
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(`job ${id}: CANCELLED (it had already ended; nothing to cancel)\n`);
    // Watching a cancelled job ends at once with exit 1.
    const watch = await locus(['submit', join(work, 'job.yaml'), '--watch', '--json']);
    const newId = await until('an id', async () => {
      const first = watch.stdout().split('\n')[0];
      return first && watch.stdout().includes('\n') ? String((JSON.parse(first) as { id: string }).id) : undefined;
    });
    await api.waitPending(newId, WORD_FILES);
    expect((await locus(['cancel', newId]).done).code).toBe(0);
    const w = await watch.done;
    expect(w.code).toBe(1);
    expect(w.stdout.trim().split('\n').pop()).toContain('"state":"CANCELLED"');
  });
});

describe('locus job with outputs kept on the hosts that wrote them', () => {
  it('names each last-stage task\'s host and path, not the output directory nothing was written to', async () => {
    const spec = join(work, 'host-kept.yaml');
    writeFileSync(spec, 'name: host-kept\ntasks: [{}, {}]\ntask:\n  command: [sh, -c, "echo x > {output}/x"]\n');
    const r = await locus(['submit', spec]).done;
    const id = r.stdout.trim();
    const tasks = await api.waitPending(id, 2);
    // As an executor with `shared-outputs: false` commits: under its host's output directory.
    const kept = (i: number): string => `/srv/host-outputs/agent-a/alpha/${id}/main/0000${i}`;
    for (const [i, t] of tasks.entries()) await api.finish(t, await api.start(t), 'SUCCEEDED', undefined, kept(i));
    await api.waitState(id, ['SUCCEEDED']);
    const shown = await locus(['job', id]).done;
    expect(shown.code, shown.stderr).toBe(0);
    const dir = (JSON.parse((await locus(['job', id, '--json']).done).stdout) as { job: { output: string } }).job.output;
    expect(shown.stdout).toContain(`output    kept on the hosts that ran the last stage (host:path), not in ${dir}:\n`);
    expect(shown.stdout).toContain(`\n            agent-a:${kept(0)}\n            agent-a:${kept(1)}\n`);
  });
});
