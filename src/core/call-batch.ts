/**
 * Calls of one operation made in the same turn of the event loop, sent together as one request.
 *
 * The job store's attempt transitions are scripts, one per task: a placement pass starts all of
 * its attempts at once, and one read of the executors' event streams brings many results. Sent
 * one by one, each was a socket write of its own, a wake-up of Redis, a script call with its
 * leadership check, and a reply that woke this process again. Batched, the pass's starts (or the
 * read's results) are one of each, while every caller still gets its own answer or its own error.
 */
export class CallBatch<A, R> {
  private pending: { readonly args: A; readonly resolve: (r: R) => void; readonly reject: (err: unknown) => void }[] = [];
  private queued = false;

  /**
   * `send` answers a batch's calls in order: a value, or an Error for that call alone. A rejection
   * of `send` itself is every call's error. At most `maxSize` calls go in one request.
   */
  constructor(
    private readonly send: (args: readonly A[]) => Promise<readonly (R | Error)[]>,
    private readonly maxSize = 256,
  ) {
    if (!(maxSize >= 1)) throw new RangeError(`a batch holds at least one call (maxSize ${maxSize})`);
  }

  /** Run the operation for `args`, in one batch with the calls made before the batch is sent (the next microtask after the first). */
  call(args: A): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ args, resolve, reject });
      if (this.queued) return;
      this.queued = true;
      // A microtask, not a timer: the calls a caller makes in one synchronous loop go together
      // (a placement pass's starts, a stream read's results), and none waits for I/O first.
      queueMicrotask(() => this.flush());
    });
  }

  private flush(): void {
    this.queued = false;
    const all = this.pending;
    this.pending = [];
    for (let i = 0; i < all.length; i += this.maxSize) {
      const chunk = all.slice(i, i + this.maxSize);
      let sent: Promise<readonly (R | Error)[]>;
      try {
        sent = this.send(chunk.map((c) => c.args));
      } catch (err) {
        sent = Promise.reject(err);
      }
      sent.then(
        (results) => {
          chunk.forEach((c, k) => {
            const r = results[k];
            if (r instanceof Error) c.reject(r);
            else if (k >= results.length) c.reject(new Error(`a batch of ${chunk.length} calls was answered ${results.length} times`));
            else c.resolve(r as R);
          });
        },
        (err: unknown) => {
          for (const c of chunk) c.reject(err);
        },
      );
    }
  }
}
