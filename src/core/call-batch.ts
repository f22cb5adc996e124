/**
 * Calls of one operation made close together, sent as one request.
 *
 * The job store's attempt transitions are scripts, one per task: a placement pass starts all of
 * its attempts at once, and one read of the executors' event streams brings many results. Sent
 * one by one, each was a socket write of its own, a wake-up of Redis, a script call with its
 * leadership check, and a reply that woke this process again. Batched, the pass's starts (or the
 * read's results) are one of each, while every caller still gets its own answer or its own error.
 */
export interface CallBatchOptions {
  /** At most this many calls go in one request (default 256). */
  readonly maxSize?: number;
  /**
   * Group commit: at most one request out at a time; calls made while one is out wait for it to
   * return and go together in the next. For calls that come one by one at different moments (each
   * attempt's commit record), which a batch of one turn would rarely join. Without it, each turn's
   * calls go at once, whatever is out.
   */
  readonly serial?: boolean;
}

export class CallBatch<A, R> {
  private pending: { readonly args: A; readonly resolve: (r: R) => void; readonly reject: (err: unknown) => void }[] = [];
  private queued = false;
  private out = 0;
  private readonly maxSize: number;
  private readonly serial: boolean;

  /**
   * `send` answers a batch's calls in order: a value, or an Error for that call alone. A rejection
   * of `send` itself is every call's error.
   */
  constructor(
    private readonly send: (args: readonly A[]) => Promise<readonly (R | Error)[]>,
    options: CallBatchOptions = {},
  ) {
    this.maxSize = options.maxSize ?? 256;
    this.serial = options.serial ?? false;
    if (!(this.maxSize >= 1)) throw new RangeError(`a batch holds at least one call (maxSize ${this.maxSize})`);
  }

  /** Run the operation for `args`, in one request with the calls made before that request is sent. */
  call(args: A): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ args, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.queued || this.pending.length === 0 || (this.serial && this.out > 0)) return;
    this.queued = true;
    // A microtask, not a timer: the calls a caller makes in one synchronous loop go together
    // (a placement pass's starts, a stream read's results), and none waits for I/O first.
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.queued = false;
    const all = this.serial ? this.pending.splice(0, this.maxSize) : this.pending.splice(0);
    for (let i = 0; i < all.length; i += this.maxSize) this.sendChunk(all.slice(i, i + this.maxSize));
    // Serial: what is left beyond one request waits for it (schedule sees it out).
  }

  private sendChunk(chunk: readonly { readonly args: A; readonly resolve: (r: R) => void; readonly reject: (err: unknown) => void }[]): void {
    this.out++;
    let sent: Promise<readonly (R | Error)[]>;
    try {
      sent = this.send(chunk.map((c) => c.args));
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      (results) => {
        if (!Array.isArray(results)) {
          const err = new Error(`a batch of ${chunk.length} calls was answered with no list of answers`);
          for (const c of chunk) c.reject(err);
          return;
        }
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
    ).finally(() => {
      this.out--;
      this.schedule();
    });
  }
}
