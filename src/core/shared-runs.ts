/**
 * Runs of one operation per key, shared by the callers that arrive while a run is queued: the
 * output commits' disk flushes (one per filesystem or directory) and the job service's progress
 * checks (one per job). A caller never joins the run already under way (it may have begun before
 * the caller's own write), only the one queued behind it, which starts when the running one ends;
 * so at most two runs are outstanding per key however many callers ask, and each caller returns
 * after a run that began after it asked.
 */
export class SharedRuns {
  private readonly runs = new Map<string, { current?: Promise<void>; next?: Promise<void> }>();

  /**
   * Run `op(key)` for this caller, or join a run that has not begun yet. At most two runs per key
   * are outstanding however many callers ask; each caller is covered by a run that began after
   * it asked.
   */
  run(key: string, op: (key: string) => Promise<void>): Promise<void> {
    let s = this.runs.get(key);
    if (s === undefined) {
      s = {};
      this.runs.set(key, s);
    }
    if (s.next !== undefined) return s.next;
    const st = s;
    const start = (): Promise<void> => {
      const p: Promise<void> = op(key).finally(() => {
        if (st.current !== p) return;
        st.current = undefined;
        if (st.next === undefined && this.runs.get(key) === st) this.runs.delete(key);
      });
      st.current = p;
      return p;
    };
    if (st.current === undefined) return start();
    st.next = st.current.catch(() => undefined).then(() => {
      st.next = undefined;
      return start();
    });
    return st.next;
  }
}
