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
 * A sandbox is noted when its attempt is done with it (RunHandle.release: the result is built,
 * or a held container was stopped unused), never at its process's end, so however small `keep`
 * is, no attempt loses its sandbox while it may still read it. A container id launched again
 * (a held container restarted, a duplicate delivery) takes its entry back first. `keep` 0
 * keeps every sandbox, as before.
 */
import type { Logger } from '../obs/log.js';

/** The executor's default (`--kept-sandboxes`, the framework's `executor-kept-sandboxes`). */
export const DEFAULT_KEPT_SANDBOXES = 1000;

/**
 * Removals under way at once. An agent that answers slowly must not collect one request per
 * ended attempt (a thousand a second on a busy executor): past this, the oldest sandboxes wait,
 * kept a little longer, for a removal to end.
 */
export const MAX_REMOVALS_IN_FLIGHT = 4;

/**
 * Tries of one sandbox's removal, and the waits before the second and third. A removal can
 * fail for a while (an agent restarting, a nested container whose end the agent has not
 * noticed yet: "has not terminated yet"); one that failed three times stays, as every sandbox
 * did before, until the executor's own sandbox goes.
 */
export const REMOVAL_RETRY_DELAYS_MS: readonly number[] = [5_000, 30_000];

/** A removal that failed, waiting to be tried again. */
interface Retry {
  readonly sandboxDir: string;
  /** Tries made so far. */
  readonly tries: number;
}

/** Remove one ended attempt's sandbox (its container id and directory). */
export type SandboxRemover = (containerId: string, sandboxDir: string) => Promise<void>;

/** The sandboxes of one runner's finished attempts, oldest first; removes past `keep`. */
export class SandboxRetention {
  /** Container id -> sandbox, in the order their attempts were done (a Map keeps insertion order). */
  private readonly done = new Map<string, string>();
  /** Removals that failed, by container id, while they wait to be tried again. */
  private readonly retries = new Map<string, Retry>();
  /** Removals whose wait is over, in the order their waits ended: tried before any new one. */
  private readonly due = new Map<string, Retry>();
  /**
   * The removal under way of each container id, as a token: an id launched again meanwhile
   * (forget) drops it, so that a removal failing afterwards is not tried again on the sandbox
   * the new run uses.
   */
  private readonly removing = new Map<string, object>();
  private removedCount = 0;
  private failedCount = 0;
  private inFlight = 0;

  constructor(
    readonly keep: number,
    private readonly remove: SandboxRemover,
    private readonly log?: Pick<Logger, 'warn'>,
    private readonly retryDelaysMs: readonly number[] = REMOVAL_RETRY_DELAYS_MS,
  ) {
    if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`keep must be a whole number >= 0, got ${keep}`);
  }

  /** Sandboxes kept now, and removals done and failed (for logs and tests). */
  get state(): { kept: number; removed: number; failed: number; removing: number; retrying: number } {
    return { kept: this.done.size, removed: this.removedCount, failed: this.failedCount, removing: this.inFlight, retrying: this.retries.size + this.due.size };
  }

  /**
   * A container is launched under `containerId`: an earlier one of that id (a held container
   * started again, a duplicate delivery after the first had ended) shares its sandbox, which
   * must not be removed from under it. Its entry goes; the new one is noted when it is done.
   */
  forget(containerId: string): void {
    this.done.delete(containerId);
    // A removal of the earlier one, waiting to be tried again or failing later, would take the
    // new one's sandbox.
    this.retries.delete(containerId);
    this.due.delete(containerId);
    this.removing.delete(containerId);
  }

  /**
   * Launch a container under `containerId` through `launch`: an earlier entry of that id goes
   * first (forget), and a launch that fails leaves its sandbox (if it was made) noted as done,
   * since no handle will ever release it.
   */
  async launching<T>(containerId: string, sandboxDir: string, launch: () => Promise<T>): Promise<T> {
    this.forget(containerId);
    try {
      return await launch();
    } catch (err) {
      this.noteDone(containerId, sandboxDir);
      throw err;
    }
  }

  /** An attempt is done with its sandbox: it is kept, and the oldest beyond `keep` goes. */
  noteDone(containerId: string, sandboxDir: string): void {
    if (this.keep === 0) return;
    this.done.delete(containerId);
    this.done.set(containerId, sandboxDir);
    this.trim();
  }

  /** Removals due again first, then the oldest beyond `keep`, as many as may be under way at once. */
  private trim(): void {
    for (const [id, retry] of this.due) {
      if (this.inFlight >= MAX_REMOVALS_IN_FLIGHT) return;
      this.due.delete(id);
      this.start(id, retry.sandboxDir, retry.tries);
    }
    while (this.done.size > this.keep && this.inFlight < MAX_REMOVALS_IN_FLIGHT) {
      const oldest = this.done.entries().next();
      if (oldest.done === true) break;
      const [id, dir] = oldest.value;
      this.done.delete(id);
      this.start(id, dir, 0);
    }
  }

  /** One removal under way; `tries`: those made before. */
  private start(containerId: string, sandboxDir: string, tries: number): void {
    const token = {};
    this.removing.set(containerId, token);
    this.inFlight++;
    void this.removeOne(containerId, sandboxDir, tries + 1, token).finally(() => {
      if (this.removing.get(containerId) === token) this.removing.delete(containerId);
      this.inFlight--;
      this.trim();
    });
  }

  private async removeOne(containerId: string, sandboxDir: string, tries: number, token: object): Promise<void> {
    try {
      await this.remove(containerId, sandboxDir);
      this.removedCount++;
    } catch (err) {
      // Launched again while this removal ran: its sandbox is in use and must not be tried again.
      if (this.removing.get(containerId) !== token) return;
      const delay = this.retryDelaysMs[tries - 1];
      if (delay !== undefined) {
        const retry: Retry = { sandboxDir, tries };
        this.retries.set(containerId, retry);
        // Not kept alive for this: an executor that is ending leaves the rest to its agent.
        setTimeout(() => {
          // Forgotten meanwhile (the id launched again): nothing of this one to remove.
          if (this.retries.get(containerId) !== retry) return;
          this.retries.delete(containerId);
          this.due.set(containerId, retry);
          this.trim();
        }, delay).unref();
        return;
      }
      // Failed every try: it stays, as every sandbox did before, warned once in a while, not
      // per attempt (an agent that refuses one refuses them all).
      if (this.failedCount++ % 1000 === 0) {
        this.log?.warn({ err: err instanceof Error ? err.message : String(err), containerId, tries, failed: this.failedCount }, 'could not remove an ended attempt\'s sandbox; it stays until the executor\'s own sandbox is removed');
      }
    }
  }
}
