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
