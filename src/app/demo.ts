/**
 * `locus demo`: the README's main job. Starts everything in-process, lays out
 * a sample text dataset across the local agents with replicas, runs the
 * two-stage word count, shows progress, and prints the top words, the
 * node-local fraction and the elapsed time.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { putLocalDataset } from '../storage/local/put.js';
import { validateJobSpec } from '../scheduler/jobs/spec.js';
import type { JobRecord } from '../scheduler/jobs/model.js';
import { TERMINAL_JOB_STATES } from '../scheduler/jobs/model.js';
import type { Logger } from '../obs/log.js';
import { startUp, type RunningUp } from './up.js';
import { seededRandom } from '../core/random.js';

/** Options of the demo. */
export interface DemoOptions {
  readonly stateDir: string;
  readonly agents?: number;
  readonly files?: number;
  readonly wordsPerFile?: number;
  readonly httpPort?: number;
  readonly grpcPort?: number;
  readonly masterPort?: number;
  readonly timeoutMs?: number;
  readonly logger: Logger;
  /** Progress lines (stdout by default). */
  readonly print?: (line: string) => void;
}

/** What the demo found. */
export interface DemoResult {
  readonly job: JobRecord;
  readonly topWords: readonly { word: string; count: number }[];
  readonly nodeLocalFraction: number;
  readonly elapsedMs: number;
}

// A small fixed vocabulary; words are drawn with a Zipf-like skew so the top
// of the count is stable and recognisable from run to run.
const VOCABULARY = (
  'the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you ' +
  'were her she there one all we their been has when who will more no if out so said what up its about into than them ' +
  'can only other new some could time these two may then do first any my now such like our over man me even most made ' +
  'after also did many before must through back years where much your way well down should because each just those ' +
  'mesos locus data block rack node locality offer executor volume cluster storage replica split task job stage reduce'
).split(' ');

/** Write `files` text files of `words` words each into dir. */
export async function writeSampleText(dir: string, files: number, words: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const next = seededRandom(42);
  for (let f = 0; f < files; f++) {
    const out: string[] = [];
    for (let w = 0; w < words; w++) {
      // Zipf-ish: index ~ floor(n^u) - 1 concentrates mass on the first words.
      const idx = Math.min(VOCABULARY.length - 1, Math.floor(Math.pow(VOCABULARY.length + 1, next())) - 1);
      out.push(VOCABULARY[idx] ?? 'the');
      if (w % 12 === 11) out.push('\n');
    }
    await writeFile(join(dir, `book-${String(f).padStart(3, '0')}.txt`), out.join(' '));
  }
}

/** The demo's word-count job as a client sends it (JSON), e.g. to the HTTP API. */
export function wordCountJob(dataset: string): Record<string, unknown> {
  return {
    name: 'wordcount-demo',
    retries: 2,
    timeout: '5m',
    locality: { wait: { node: '3s', rack: '1s' } },
    stages: [
      {
        name: 'map',
        inputs: [`local://${dataset}/`],
        split: 'file',
        task: {
          command: ['sh', '-c', "test -r '{split.path}' || { echo 'cannot read {split.path}' >&2; exit 66; }; tr -cs 'A-Za-z' '\\n' < '{split.path}' | tr 'A-Z' 'a-z' | grep -v '^$' | sort | uniq -c > '{output}/counts'"],
          resources: { cpus: 0.2, mem: '64MiB', disk: '32MiB' },
        },
      },
      {
        name: 'reduce',
        inputs: ['stage:map'],
        tasks: [{ command: ['sh', '-c', "test -d '{stages.map.output}' || exit 66; cat {stages.map.output}/*/counts | awk '{c[$2]+=$1} END {for (w in c) print c[w], w}' | sort -rn > '{output}/words'"] }],
        task: { command: ['true'], resources: { cpus: 0.2, mem: '64MiB', disk: '32MiB' } },
      },
    ],
  };
}

/** The demo's word-count job, validated. */
export function wordCountSpec(dataset: string): ReturnType<typeof validateJobSpec> {
  return validateJobSpec(wordCountJob(dataset));
}

/** Run the demo end to end. */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const print = o.print ?? ((line: string) => process.stdout.write(line + '\n'));
  const started = Date.now();
  const up: RunningUp = await startUp({
    stateDir: o.stateDir, logger: o.logger, agents: o.agents ?? 3,
    httpPort: o.httpPort ?? 0, grpcPort: o.grpcPort ?? 0, masterPort: o.masterPort ?? 0,
    extra: { 'executor-idle-timeout': '20s' },
  });
  try {
    print(`locus: local cluster at ${up.cluster.masterUrl} with ${up.cluster.agents.length} agents; HTTP API ${up.framework.httpUrl}`);
    await up.framework.waitForSubscribed(30_000);
    const dataset = 'demo-books';
    const textDir = join(up.workDir, 'demo-text');
    await rm(textDir, { recursive: true, force: true });
    await writeSampleText(textDir, o.files ?? 12, o.wordsPerFile ?? 20_000);
    const put = await putLocalDataset({ workDir: join(up.workDir, 'local'), source: textDir, dataset, replicas: 2 });
    print(`locus: laid out ${put.files.length} files (${(put.bytes / 1024 / 1024).toFixed(1)} MiB) across the agents, 2 replicas each`);
    const job = await up.framework.jobs.submit('default', wordCountSpec(dataset));
    print(`locus: submitted job ${job.id} (map over ${put.files.length} files, then reduce)`);
    const finished = await new Promise<JobRecord>((resolve, reject) => {
      let last = '';
      const timer = setTimeout(() => reject(new Error(`the demo job did not finish within ${(o.timeoutMs ?? 110_000) / 1000}s`)), o.timeoutMs ?? 110_000);
      const poll = setInterval(() => {
        void up.framework.jobs.get(job.id).then((j) => {
          const c = j.counts;
          const line = `  ${j.state.padEnd(9)} stage ${j.spec.stages[j.stage]?.name ?? '-'}: ${c.succeeded}/${c.total} done, ${c.running} running, ${c.pending} pending, ${c.failed} failed`;
          if (line !== last) print(line);
          last = line;
          if (TERMINAL_JOB_STATES.has(j.state)) {
            clearInterval(poll);
            clearTimeout(timer);
            resolve(j);
          }
        }, () => undefined);
      }, 250);
    });
    if (finished.state !== 'SUCCEEDED') {
      for (const t of (await up.framework.jobs.tasks(finished.id)).filter((x) => x.state === 'FAILED')) {
        const last = t.attempts[t.attempts.length - 1];
        print(`  task ${t.id} failed on ${last?.host ?? '?'}: ${last?.reason ?? ''} ${last?.message ?? ''}`);
      }
      throw new Error(`the demo job ${finished.state}: ${finished.message ?? ''}`);
    }
    const words = (await readFile(join(finished.outputDir, 'reduce', '00000', 'words'), 'utf8'))
      .split('\n').filter(Boolean).slice(0, 10)
      .map((l) => { const [count, word] = l.trim().split(/\s+/); return { word: word ?? '', count: Number(count) }; });
    const mapTasks = finished.stages[0]?.taskCount ?? 0;
    const nodeLocal = (await up.framework.jobs.tasks(finished.id)).filter((t) => t.stage === 0 && t.state === 'SUCCEEDED' && t.attempts[t.attempts.length - 1]?.locality === 0).length;
    const fraction = mapTasks > 0 ? nodeLocal / mapTasks : 0;
    print('top words:');
    for (const w of words) print(`  ${String(w.count).padStart(8)}  ${w.word}`);
    print(`node-local: ${nodeLocal}/${mapTasks} map tasks (${(fraction * 100).toFixed(0)}%)`);
    const elapsedMs = Date.now() - started;
    print(`elapsed: ${(elapsedMs / 1000).toFixed(1)}s`);
    return { job: finished, topWords: words, nodeLocalFraction: fraction, elapsedMs };
  } finally {
    await up.stop();
  }
}
