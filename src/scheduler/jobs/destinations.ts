/**
 * Where a job's final output goes, from the spec's `output`: the framework's
 * output root (a path or `file://`, today's layout and tenant rules), a local
 * dataset (`local://<dataset>/<path>`) or HDFS (`hdfs://namenode:port/path`,
 * written through WebHDFS). Only the last stage's outputs go there; earlier
 * stages stay on the output root (or their hosts), where later stages read
 * them. Pure functions, but for the publishing of local:// outputs at the end.
 */
import { LocusError } from '../../core/errors.js';
import type { CommittedOutput } from '../../executor/contract.js';
import { taskIdOf, type JobRecord } from './model.js';
import type { JobSpec } from './spec.js';

/** The destination of a job's final output. */
export type OutputDestination =
  | { readonly kind: 'root' }
  | { readonly kind: 'hdfs'; readonly uri: string }
  | { readonly kind: 'local'; readonly uri: string; readonly dataset: string; readonly path: string };

const HDFS_SCHEMES = new Set(['hdfs', 'webhdfs', 'swebhdfs']);

function invalid(message: string): LocusError {
  return new LocusError('INVALID_FIELD', `output: ${message}`, { field: 'output' });
}

/** Normalise a URI path: '/'-separated segments, no empty, `.` or `..` ones (refused). */
function cleanPath(path: string, output: string): string {
  const segments = path.split('/').filter((s) => s !== '');
  for (const s of segments) {
    if (s === '.' || s === '..') throw invalid(`'${output}' must not contain '.' or '..' segments`);
    if (s.startsWith('_') || s.startsWith('.')) throw invalid(`'${output}': a segment starting with '_' or '.' is hidden from readers (as in Hadoop); choose another name`);
  }
  return segments.length === 0 ? '' : `/${segments.join('/')}`;
}

/**
 * Parse and check the spec's `output` (at submission). A plain path and `file://` are the
 * output root's (checked against the tenant by `outputDirFor`); any scheme other than
 * file, local and hdfs is refused with UNKNOWN_SCHEME.
 */
export function outputDestination(output: string | undefined): OutputDestination {
  if (output === undefined) return { kind: 'root' };
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/.exec(output);
  if (m === null || m[1] === undefined || m[2] === undefined) {
    if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(output) && !output.startsWith('/')) {
      const scheme = output.slice(0, output.indexOf(':')).toLowerCase();
      throw new LocusError('UNKNOWN_SCHEME', `output: '${output}' is neither a path nor a file://, local:// or hdfs:// URI`, { field: 'output', details: { scheme } });
    }
    return { kind: 'root' };
  }
  const scheme = m[1].toLowerCase();
  const rest = m[2];
  if (scheme === 'file') return { kind: 'root' };
  const cut = rest.indexOf('/');
  const authority = cut < 0 ? rest : rest.slice(0, cut);
  const path = cleanPath(cut < 0 ? '' : rest.slice(cut), output);
  if (/[?#]/.test(rest)) throw invalid(`'${output}' must not have a query or fragment`);
  if (scheme === 'local') {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(authority)) throw invalid(`'${output}' must name a dataset (local://<dataset>/<path>, 1-128 of [A-Za-z0-9._-])`);
    return { kind: 'local', uri: `local://${authority}${path}`, dataset: authority, path };
  }
  if (HDFS_SCHEMES.has(scheme)) {
    if (authority === '') throw invalid(`'${output}' names no NameNode (hdfs://namenode:port/path)`);
    if (path === '') throw invalid(`'${output}' must name a directory below the root`);
    return { kind: 'hdfs', uri: `${scheme}://${authority}${path}` };
  }
  throw new LocusError('UNKNOWN_SCHEME', `output: scheme '${scheme}' is not a destination (file://, local:// or hdfs://)`, { field: 'output', details: { scheme } });
}

/**
 * Where a job that names its `output` puts its final outputs, as one string (`file://<dir>`,
 * `local://<dataset>/<path>`, `hdfs://<nn>/<path>`), or undefined for a job that names none: its
 * directory is its own, named by its id. Two jobs with the same place would commit each task's
 * output into the same directory: the job store lets only one hold it (JobStore.create).
 */
export function outputPlace(job: Pick<JobRecord, 'spec' | 'outputDir'>): string | undefined {
  if (job.spec.output === undefined) return undefined;
  const dest = outputDestination(job.spec.output);
  return dest.kind === 'root' ? `file://${job.outputDir}` : dest.uri;
}

/** The final place of one last-stage task's output, or undefined when it goes to the output root. */
export function taskDestination(spec: JobSpec, stageIndex: number, index: number): string | undefined {
  if (stageIndex !== spec.stages.length - 1) return undefined;
  const dest = outputDestination(spec.output);
  if (dest.kind === 'root') return undefined;
  const stage = spec.stages[stageIndex];
  if (stage === undefined) return undefined;
  return `${dest.uri}/${stage.name}/${String(index).padStart(5, '0')}`;
}

/** Lists files held whole by agents in a local dataset's manifest (storage/local/register's addHeldFiles). */
export type LocalDatasetLister = (dataset: string, files: readonly { path: string; size: number; host: string }[]) => Promise<void>;

/** What publishing needs: the last stage's commit records, and the local dataset lister. */
export interface FinalOutputsPort {
  commits(ledgerIds: readonly string[]): Promise<(CommittedOutput | undefined)[]>;
  readonly listLocal?: LocalDatasetLister;
}

/**
 * Make a succeeded job's final outputs readable where the spec put them. For `local://` the
 * files each last-stage task committed on its host are added to the dataset's manifest (the
 * task's host as the replica), so a later job reads them as input with locality. `hdfs://`
 * and the output root need nothing: the rename made them visible.
 */
export async function publishFinalOutputs(job: Pick<JobRecord, 'id' | 'spec' | 'stages'>, port: FinalOutputsPort | undefined): Promise<void> {
  const dest = outputDestination(job.spec.output);
  if (dest.kind !== 'local') return;
  if (port?.listLocal === undefined) throw new LocusError('UNSUPPORTED', `${dest.uri}: this framework has no local datasets (local-work-dir)`);
  const last = job.spec.stages.length - 1;
  const stage = job.spec.stages[last];
  const count = job.stages[last]?.taskCount ?? 0;
  if (stage === undefined || count <= 0) return;
  // The last stage is never recomputed, so its records are generation 0's: the task ids.
  const records = await port.commits(Array.from({ length: count }, (_, i) => taskIdOf(job.id, last, i)));
  const files: { path: string; size: number; host: string }[] = [];
  for (const [i, r] of records.entries()) {
    if (r === undefined) throw new LocusError('INTERNAL', `task ${taskIdOf(job.id, last, i)} succeeded without a commit record`);
    const dir = `${dest.path}/${stage.name}/${String(i).padStart(5, '0')}`;
    for (const f of r.files) files.push({ path: `${dir}/${f.name}`, size: f.size, host: r.host });
  }
  await port.listLocal(dest.dataset, files);
}
