/**
 * Where a job's committed outputs are, and what an attempt needs to read
 * data on other hosts: the commit records of earlier stages (read once per
 * stage from Redis, where each winning attempt wrote host, block server,
 * path and files), the ranking of hosts by the bytes they hold (a reduce
 * goes near the largest share of its input), and the block servers a split
 * or an output part can be read through.
 */
import { ledgerIdOf, type AttemptPayload, type BlockSource, type CommittedOutput, type StageInput, type StageOutputPart } from '../../executor/contract.js';
import { parseStorageUri } from '../../storage/uri.js';
import { taskIdOf, type JobRecord } from './model.js';
import { stageOutputDir } from './tasks.js';
import type { StoredSplit } from './store.js';

/** What the job service needs from the data plane. */
export interface JobDataPlane {
  /** Block server addresses (host:port) of live executors on a host. */
  blockServers(host: string): readonly string[];
  /** The commit records of tasks by ledger id (`ledgerIdOf`; undefined where none was written). */
  commits(ledgerIds: readonly string[]): Promise<(CommittedOutput | undefined)[]>;
}

/** One earlier stage's committed outputs, as loaded. */
interface StageParts {
  readonly parts: readonly (CommittedOutput & { readonly index: number })[];
  /** Hosts by bytes held, most first. */
  readonly hosts: readonly string[];
  readonly bytes: number;
}

/** The committed outputs of jobs' stages, cached per stage once the stage is complete. */
export class StageOutputs {
  private readonly stages = new Map<string, StageParts>();

  constructor(private readonly dp: JobDataPlane) {}

  /**
   * Load (once) the records of every stage of `job` before `stage`; task counts come from the job
   * record, each task's output generation from `generations` (task id → generation; absent = 0).
   */
  async loadBefore(job: JobRecord, stage: number, generations: ReadonlyMap<string, number> = new Map()): Promise<void> {
    for (let s = 0; s < stage; s++) {
      const key = `${job.id}:${s}`;
      if (this.stages.has(key)) continue;
      const count = job.stages[s]?.taskCount ?? 0;
      // A stage of `outputs: none` commits nothing: there are no records to read.
      if (count <= 0 || job.spec.stages[s]?.outputs === 'none') continue;
      const ids = Array.from({ length: count }, (_, i) => { const t = taskIdOf(job.id, s, i); return ledgerIdOf(t, generations.get(t)); });
      const records = await this.dp.commits(ids);
      const parts = records.flatMap((r, index) => (r === undefined ? [] : [{ ...r, index }]));
      const bytes = new Map<string, number>();
      for (const p of parts) bytes.set(p.host, (bytes.get(p.host) ?? 0) + p.size);
      const hosts = [...bytes.keys()].sort((a, b) => (bytes.get(b) ?? 0) - (bytes.get(a) ?? 0) || (a < b ? -1 : 1));
      this.stages.set(key, { parts, hosts, bytes: parts.reduce((a, p) => a + p.size, 0) });
    }
  }

  /**
   * The hosts a task of `stage` should run near: the host holding the largest share of the
   * earlier stages' output bytes (every host that ties for it). Only those: a host holding less
   * is no better, for locality, than any other once the task reads over the network anyway.
   */
  preferredHosts(jobId: string, stage: number): { hosts: readonly string[]; bytes: number } {
    const total = new Map<string, number>();
    let bytes = 0;
    for (let s = 0; s < stage; s++) {
      const st = this.stages.get(`${jobId}:${s}`);
      if (st === undefined) continue;
      bytes += st.bytes;
      for (const p of st.parts) total.set(p.host, (total.get(p.host) ?? 0) + p.size);
    }
    const most = Math.max(0, ...total.values());
    const hosts = [...total.keys()].filter((h) => most > 0 && total.get(h) === most).sort();
    return { hosts, bytes };
  }

  /** The earlier stages' outputs as an attempt reads them. */
  stageInputs(job: JobRecord, stage: number): StageInput[] {
    const out: StageInput[] = [];
    for (let s = 0; s < stage; s++) {
      const st = this.stages.get(`${job.id}:${s}`);
      const spec = job.spec.stages[s];
      if (st === undefined || spec === undefined || st.parts.length === 0) continue;
      out.push({
        stage: spec.name,
        dir: stageOutputDir(job.outputDir, spec),
        parts: st.parts.map((p): StageOutputPart => ({
          name: String(p.index).padStart(5, '0'),
          host: p.host,
          path: p.path,
          relPath: p.relPath ?? '',
          files: p.files,
          // Live executors on the host first; the committing executor's server as a last resort.
          sources: [...new Set([...this.dp.blockServers(p.host), ...(p.blockServer === undefined ? [] : [p.blockServer])])],
        })),
      });
    }
    return out;
  }

  /**
   * One split per file of an earlier stage's committed outputs (for `inputs: [stage:<name>]`
   * with one task per file), each held by the host that committed it. Undefined when the
   * outputs sit on the shared output root: then they are resolved as files like any input.
   */
  stageSplits(job: JobRecord, stageName: string): StoredSplit[] | undefined {
    const s = job.spec.stages.findIndex((x) => x.name === stageName);
    const spec = job.spec.stages[s];
    const st = this.stages.get(`${job.id}:${s}`);
    if (spec === undefined || st === undefined || st.parts.length === 0) return undefined;
    const dir = stageOutputDir(job.outputDir, spec);
    if (st.parts.every((p) => p.path.startsWith(`${dir}/`))) return undefined;
    const out: StoredSplit[] = [];
    for (const p of st.parts) {
      const name = String(p.index).padStart(5, '0');
      for (const f of p.files) {
        if (f.size === 0) continue;
        out.push({ uri: `file://${dir}/${name}/${f.name}`, offset: 0, length: f.size, hosts: [p.host], racks: [], localPaths: { [p.host]: `${p.path}/${f.name}` } });
      }
    }
    return out;
  }

  /** The block servers serving a split over an earlier stage's output file, read on `host`. */
  outputSources(job: JobRecord, stage: number, split: StoredSplit, host: string): BlockSource[] | undefined {
    if (split.localPaths?.[host] !== undefined) return undefined;
    for (let s = 0; s < stage; s++) {
      const spec = job.spec.stages[s];
      const st = this.stages.get(`${job.id}:${s}`);
      if (spec === undefined || st === undefined) continue;
      const prefix = `file://${stageOutputDir(job.outputDir, spec)}/`;
      if (!split.uri.startsWith(prefix)) continue;
      const rest = split.uri.slice(prefix.length);
      const cut = rest.indexOf('/');
      const part = st.parts.find((p) => String(p.index).padStart(5, '0') === rest.slice(0, cut));
      if (part === undefined || cut < 0) return undefined;
      const addresses = [...new Set([...this.dp.blockServers(part.host), ...(part.blockServer === undefined ? [] : [part.blockServer])])];
      return addresses.map((address) => ({ host: part.host, address, root: 'outputs', path: `${part.relPath ?? ''}/${rest.slice(cut + 1)}` }));
    }
    return undefined;
  }

  /** The hosts holding `job`'s loaded host-local outputs (not under the shared output root). */
  localHosts(job: JobRecord): Set<string> {
    const out = new Set<string>();
    job.spec.stages.forEach((spec, s) => {
      const st = this.stages.get(`${job.id}:${s}`);
      const dir = `${stageOutputDir(job.outputDir, spec)}/`;
      for (const p of st?.parts ?? []) if (!p.path.startsWith(dir)) out.add(p.host);
    });
    return out;
  }

  /** Forget one stage's records (some were lost and are being recomputed): the next load reads them anew. */
  invalidate(jobId: string, stage: number): void {
    this.stages.delete(`${jobId}:${stage}`);
  }

  /** Forget a job's records (it ended). */
  forget(jobId: string): void {
    for (const k of this.stages.keys()) if (k.startsWith(`${jobId}:`)) this.stages.delete(k);
  }
}

/**
 * The block servers that can serve a local:// split read on `host`: those on the hosts
 * holding the split whole (a replica of every byte at one path), when `host` is not one.
 */
export function splitSources(split: StoredSplit, host: string, dp: JobDataPlane): BlockSource[] | undefined {
  if (!split.uri.startsWith('local://') || split.localPaths === undefined || split.localPaths[host] !== undefined) return undefined;
  const u = parseStorageUri(split.uri);
  const path = `${u.authority}${u.path}`;
  const out: BlockSource[] = [];
  for (const h of split.hosts) {
    if (split.localPaths[h] === undefined) continue;
    for (const address of dp.blockServers(h)) out.push({ host: h, address, root: 'datasets', path });
  }
  return out;
}

/** Add the data-plane parts (block sources of the split, earlier stages' outputs) to a payload. */
export function withDataPlane(payload: AttemptPayload, sources: BlockSource[] | undefined, stageInputs: StageInput[]): AttemptPayload {
  const split = payload.split === undefined || sources === undefined ? payload.split : { ...payload.split, sources };
  return {
    ...payload,
    ...(split === undefined ? {} : { split }),
    ...(stageInputs.length === 0 ? {} : { stageInputs }),
  };
}

/** A committed output of an earlier stage, as the lost-host decision sees it. */
export interface CommittedPart {
  readonly stage: number;
  readonly index: number;
  /** The output generation the record belongs to. */
  readonly generation: number;
  readonly record: CommittedOutput;
}

/**
 * Which committed outputs of a running job are lost with `host` and must be recomputed (Spark's
 * lost shuffle files): those recorded on that host, of a stage that is not the job's last (a
 * later stage reads it) and has started (stage <= job.stage), kept on the host itself rather than
 * under the shared output root (`stageOutputDir`), where a lost host takes nothing with it.
 * Pure: the caller reads the records and applies the answer.
 */
export function partsLostWith(host: string, job: Pick<JobRecord, 'state' | 'stage' | 'outputDir' | 'spec'>, parts: readonly CommittedPart[]): CommittedPart[] {
  return partsOn(host, job, parts).filter((p) => !sharedPart(job, p));
}

/**
 * The parts recorded on `host` under the shared output root (of a stage a later one reads, that
 * has started): not lost with their host once renamed into place, but a commit the ledger
 * recorded whose rename never happened (the winner cut off between its record and its rename,
 * and no later attempt on that host to roll it forward) is only in the winner's staging
 * directory, unreadable from anywhere but that host. A fetch failure naming the host is how the
 * scheduler learns of it; the caller checks which of these have no commit marker in place.
 * Pure.
 */
export function sharedPartsOn(host: string, job: Pick<JobRecord, 'state' | 'stage' | 'outputDir' | 'spec'>, parts: readonly CommittedPart[]): CommittedPart[] {
  return partsOn(host, job, parts).filter((p) => sharedPart(job, p));
}

function partsOn(host: string, job: Pick<JobRecord, 'state' | 'stage' | 'outputDir' | 'spec'>, parts: readonly CommittedPart[]): CommittedPart[] {
  if (job.state !== 'RUNNING') return [];
  const last = job.spec.stages.length - 1;
  return parts.filter((p) => {
    const spec = job.spec.stages[p.stage];
    return spec !== undefined && p.stage < last && p.stage <= job.stage && p.record.host === host;
  });
}

function sharedPart(job: Pick<JobRecord, 'outputDir' | 'spec'>, p: CommittedPart): boolean {
  const spec = job.spec.stages[p.stage];
  return spec !== undefined && p.record.path.startsWith(`${stageOutputDir(job.outputDir, spec)}/`);
}
