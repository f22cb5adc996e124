/**
 * Turning a stage's splits into runnable task attempts: placeholder
 * substitution and where outputs go. Pure functions.
 */
import { substitutePlaceholders } from '../../core/placeholders.js';
import type { StageSpec } from './spec.js';
import type { StoredSplit } from './store.js';

/** The placeholder an executor replaces with the attempt-private output directory. */
export const OUTPUT_PLACEHOLDER = '{output}';

/** Values for one task's placeholders. */
export interface PlaceholderValues {
  readonly jobId: string;
  readonly taskIndex: number;
  readonly attempt: number;
  readonly split?: StoredSplit;
  /** Final output directory of each stage by name (for `{stages.<name>.output}`). */
  readonly stageOutputs: Readonly<Record<string, string>>;
}

/**
 * Substitute placeholders in argv. `{output}` (and `{split.path}` when no
 * local path is known) is left in place: only the executor knows the
 * attempt-private directory, and how to make the split readable locally.
 */
export function substitute(argv: readonly string[], v: PlaceholderValues): string[] {
  const valueOf = (name: string): string | undefined => {
    switch (name) {
      case 'split.uri': return v.split?.uri ?? '';
      // Unknown here (no replica on the task's host): the executor fills it in,
      // fetching the byte range through the storage port into its sandbox.
      case 'split.path': return v.split?.localPath;
      case 'split.offset': return String(v.split?.offset ?? 0);
      case 'split.length': return String(v.split?.length ?? 0);
      case 'task.index': return String(v.taskIndex);
      case 'job.id': return v.jobId;
      case 'attempt': return String(v.attempt);
      case 'output': return undefined;
      default: {
        const m = /^stages\.(.+)\.output$/.exec(name);
        return m?.[1] === undefined ? undefined : v.stageOutputs[m[1]];
      }
    }
  };
  // `{{name}}` stays escaped: the executor's substitution, the last, unescapes it.
  return argv.map((arg) => substitutePlaceholders(arg, valueOf, false));
}

/** The final output directory of a stage. */
export function stageOutputDir(jobOutputDir: string, stage: StageSpec): string {
  return `${jobOutputDir}/${stage.name}`;
}

/** The final output directory of one task. */
export function taskOutputDir(jobOutputDir: string, stage: StageSpec, index: number): string {
  return `${stageOutputDir(jobOutputDir, stage)}/${String(index).padStart(5, '0')}`;
}
