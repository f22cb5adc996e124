/**
 * What a submitted job may ask for, checked before anything is created: task
 * counts, volumes, and where its outputs and `file://` inputs may be (only the
 * tenant's own part of the output root). Errors name the spec field.
 */
import { resolve as resolvePath } from 'node:path';
import { LocusError } from '../../core/errors.js';
import type { ResourceVector } from '../../core/resources.js';
import { formatMiB } from '../../core/units.js';
import type { JobSpec } from './spec.js';
import { outputDestination } from './destinations.js';
import type { VolumeLookup } from './service.js';

/** The field path of something in stage `i` (the single-stage form has no `stages[i].` prefix). */
export function stageField(spec: JobSpec, i: number, rest: string): string {
  return spec.stages.length === 1 && spec.stages[0]?.name === 'main' ? rest : `stages[${i}].${rest}`;
}

/** Explicit task lists are sized at submission (input-based stages when their inputs resolve). */
export function checkExplicitTaskCounts(spec: JobSpec, maxTasksPerJob: number): void {
  for (const [i, st] of spec.stages.entries()) {
    if (st.tasks && st.tasks.length > maxTasksPerJob) {
      const field = stageField(spec, i, 'tasks');
      throw new LocusError('QUOTA_EXCEEDED', `${field}: ${st.tasks.length} tasks exceed the limit of ${maxTasksPerJob} per stage`, { field });
    }
  }
}

/**
 * A stage whose task alone asks more of some resource than its tenant's whole quota can never
 * run: placement holds a task back while it would take the tenant over its quota, and with the
 * tenant holding nothing it still would. Accepted, such a job stayed pending for ever, its
 * `explain` saying the tenant held its whole quota while it held nothing. Refused at submission
 * (422 UNSATISFIABLE, the field named) like a volume larger than every agent.
 */
export function checkTaskSizesAgainstQuota(tenant: string, spec: JobSpec, quota: Partial<ResourceVector> | undefined): void {
  if (!quota) return;
  const shown = (k: keyof ResourceVector, v: number): string => (k === 'cpus' ? `${v} cpus` : `${formatMiB(v)} of ${k === 'mem' ? 'memory' : 'disk'}`);
  for (const [i, st] of spec.stages.entries()) {
    for (const k of ['cpus', 'mem', 'disk'] as const) {
      const limit = quota[k];
      const asked = st.task.resources[k];
      if (limit === undefined || asked <= limit + 1e-9) continue;
      const field = stageField(spec, i, `task.resources.${k}`);
      throw new LocusError('UNSATISFIABLE',
        `${field}: each task asks ${shown(k, asked)}, more than tenant ${tenant}'s whole quota of ${shown(k, limit)}; no task of it could ever start`,
        { field });
    }
  }
}

/** What the input check needs of the storage registry: the backend for a URI, or a throw. */
export interface SchemeCheck {
  backendFor(uri: string): unknown;
}

/**
 * Every input URI must name a scheme some storage backend serves: a job that
 * could only fail at resolution is refused at submission (400 UNKNOWN_SCHEME,
 * the field named, the known schemes listed) instead of being created.
 */
export function checkInputSchemes(spec: JobSpec, storage: SchemeCheck | undefined): void {
  if (!storage) return;
  for (const [i, st] of spec.stages.entries()) {
    for (const [j, input] of st.inputs.entries()) {
      if (input.startsWith('stage:')) continue;
      try {
        storage.backendFor(input);
      } catch (err) {
        const field = stageField(spec, i, `inputs[${j}]`);
        // The registry's own message lists the known schemes (and says why local:// may be missing).
        const why = err instanceof Error ? err.message : String(err);
        const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(input)?.[1]?.toLowerCase() ?? '';
        throw new LocusError('UNKNOWN_SCHEME', `${field}: ${why}`, { field, details: { scheme }, cause: err });
      }
    }
  }
}

/** Every volume a spec names must exist for the tenant and be usable; at most one per task. */
export async function checkVolumes(tenant: string, spec: JobSpec, volumes: VolumeLookup | undefined): Promise<void> {
  for (const [i, stage] of spec.stages.entries()) {
    const refs = stage.task.volumes;
    const field = stageField(spec, i, 'task.volumes');
    if (refs.length > 1) throw new LocusError('INVALID_FIELD', `${field}: a task mounts at most one volume`, { field });
    const ref = refs[0];
    if (!ref) continue;
    if (!volumes) throw new LocusError('UNSUPPORTED', `${field}[0]: volumes are not enabled on this server`, { field: `${field}[0].name` });
    try {
      await volumes.forJob(tenant, ref.name);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new LocusError('INVALID_FIELD', `${field}[0].name: ${message}`, { field: `${field}[0].name`, cause: err });
    }
  }
}

/**
 * Where a job's outputs go: under the tenant's own directory of the output root.
 * A spec may name a directory there; anything else (another tenant's outputs,
 * an arbitrary host path) is refused, and so are `file://` inputs inside another
 * tenant's outputs. A `local://` or `hdfs://` output is the last stage's
 * destination (see destinations.ts): the earlier stages still go to the
 * tenant's default directory, which is what this returns then. Any other
 * scheme is refused (UNKNOWN_SCHEME); `local://` only where local datasets are.
 */
export function outputDirFor(outputRoot: string, tenant: string, id: string, spec: JobSpec, can: { readonly localDatasets: boolean } = { localDatasets: true }): string {
  const outputs = resolvePath(outputRoot);
  const root = resolvePath(outputs, tenant);
  const inside = (p: string, dir: string): boolean => p === dir || p.startsWith(`${dir}/`);
  for (const [i, st] of spec.stages.entries()) {
    for (const [j, input] of st.inputs.entries()) {
      if (!input.startsWith('file://')) continue;
      const p = resolvePath(decodeURIComponent(input.slice('file://'.length)));
      if (inside(p, outputs) && !inside(p, root)) {
        const field = stageField(spec, i, `inputs[${j}]`);
        throw new LocusError('FORBIDDEN', `${field}: '${input}' is inside another tenant's outputs`, { field });
      }
    }
  }
  const dest = outputDestination(spec.output);
  if (dest.kind === 'local' && !can.localDatasets) {
    throw new LocusError('INVALID_FIELD', `output: '${spec.output ?? ''}': this framework has no local datasets (run it with a local cluster's local-work-dir)`, { field: 'output' });
  }
  if (spec.output === undefined || dest.kind !== 'root') return `${root}/${id}`;
  const wanted = resolvePath(root, spec.output.replace(/^file:\/\//, ''));
  if (!inside(wanted, root) || wanted === root) {
    throw new LocusError('INVALID_FIELD', `output: must be a directory under ${root} (this tenant's outputs), got '${spec.output}'`, { field: 'output' });
  }
  return wanted;
}
