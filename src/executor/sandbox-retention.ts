/**
 * How many ended attempts' sandboxes an executor keeps. Every attempt gets its own sandbox (the
 * agent's nested container sandbox, `containers/<id>` of the executor's, or the isolator's
 * under the executor's own): its stdout and stderr, which `locus logs` reads through the
 * agent's `/files/read`. Kept for ever, a long-lived executor running short tasks leaves one
 * directory per attempt in its sandbox (a hundred thousand after a day of busy work), which
 * a genuine agent counts against the executor's disk and removes only after the executor
 * has ended (`--gc_delay`). So an executor keeps the sandboxes of its `keep` most recently ended
 * attempts and removes older ones as newer ones end: through the agent (REMOVE_CONTAINER,
 * which removes a nested container's sandbox and runtime directories) or, for its own
 * children, by removing the directory.
 *
 * A sandbox goes only once `keep` later attempts have ended, so its own attempt finished long
 * before (it reads nothing from its sandbox after its process has ended but the disk-full
 * check, milliseconds later). `keep` 0 keeps every sandbox, as before.
 */
import type { Logger } from '../obs/log.js';

/** The executor's default (`--kept-sandboxes`, the framework's `executor-kept-sandboxes`). */
export const DEFAULT_KEPT_SANDBOXES = 1000;

/** Remove one ended attempt's sandbox (its container id and directory). */
export type SandboxRemover = (containerId: string, sandboxDir: string) => Promise<void>;

/** The ended attempts' sandboxes of one runner, oldest first; removes past `keep`. */
export class SandboxRetention {
  private readonly ended: { readonly containerId: string; readonly sandboxDir: string }[] = [];
  private head = 0;
  private removedCount = 0;
  private failedCount = 0;

  constructor(readonly keep: number, private readonly remove: SandboxRemover, private readonly log?: Pick<Logger, 'warn'>) {
    if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`keep must be a whole number >= 0, got ${keep}`);
  }

  /** Sandboxes kept now, and removals done and failed (for logs and tests). */
  get state(): { kept: number; removed: number; failed: number } {
    return { kept: this.ended.length - this.head, removed: this.removedCount, failed: this.failedCount };
  }

  /** An attempt's container has ended: its sandbox is kept, and the oldest beyond `keep` goes. */
  noteEnded(containerId: string, sandboxDir: string): void {
    if (this.keep === 0) return;
    this.ended.push({ containerId, sandboxDir });
    while (this.ended.length - this.head > this.keep) {
      const old = this.ended[this.head++];
      if (old !== undefined) void this.removeOne(old.containerId, old.sandboxDir);
    }
    // The array is compacted once half of it is consumed: O(1) amortized per attempt.
    if (this.head > this.keep && this.head * 2 > this.ended.length) {
      this.ended.splice(0, this.head);
      this.head = 0;
    }
  }

  private async removeOne(containerId: string, sandboxDir: string): Promise<void> {
    try {
      await this.remove(containerId, sandboxDir);
      this.removedCount++;
    } catch (err) {
      // A sandbox that cannot be removed stays, as every sandbox did before: warned once in a
      // while, not per attempt (an agent that refuses one refuses them all).
      if (this.failedCount++ % 1000 === 0) {
        this.log?.warn({ err: err instanceof Error ? err.message : String(err), containerId, failed: this.failedCount }, 'could not remove an ended attempt\'s sandbox; it stays until the executor\'s own sandbox is removed');
      }
    }
  }
}
