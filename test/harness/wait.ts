/** Polling with a deadline, for harnesses that wait on daemons to come up. */

/** Poll `check` every `everyMs` until it returns true (errors count as "not yet"), or fail naming `what`. */
export async function until(what: string, deadlineMs: number, check: () => Promise<boolean>, everyMs = 200): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`${what} did not happen within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Poll `fn` every `everyMs` until it gives a value (not undefined or false) and return it, or fail naming
 * `what` after `timeoutMs`. Errors thrown by `fn` fail at once: they are the test's, not "not yet".
 */
export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
