export interface MicroBatcherOptions<I, O> {
  /** Dispatch as soon as this many items are pending. */
  maxSize: number;
  /** Dispatch a partial batch once its oldest item has waited this long. */
  maxWaitMs: number;
  /**
   * Batches handed to `run` at the same time. 2 lets the next batch be gathered and prepared (storage reads,
   * decoding) while the previous one is still in the model, without queueing unboundedly many runs.
   */
  maxInFlight?: number;
  /** Processes one batch; must resolve to exactly one output per item, in order. A rejection fails every item. */
  run: (items: I[]) => Promise<O[]>;
}

interface Pending<I, O> {
  item: I;
  addedAt: number;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

/**
 * Groups items from any number of concurrent producers into batches of at most `maxSize`, bounded in latency
 * by `maxWaitMs` (the Triton / Ray Serve "max queue delay" idea). Each producer gets a promise of its own
 * item's output, so callers stay unaware of who they were batched with.
 */
export class MicroBatcher<I, O> {
  private readonly maxInFlight: number;
  private pending: Pending<I, O>[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;
  private idle: (() => void)[] = [];

  constructor(private readonly opts: MicroBatcherOptions<I, O>) {
    if (!Number.isInteger(opts.maxSize) || opts.maxSize < 1) throw new RangeError("maxSize must be >= 1");
    if (!(opts.maxWaitMs >= 0)) throw new RangeError("maxWaitMs must be >= 0");
    this.maxInFlight = opts.maxInFlight ?? 1;
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1) {
      throw new RangeError("maxInFlight must be >= 1");
    }
  }

  /** Items waiting for a batch (not counting batches already running). */
  get size(): number {
    return this.pending.length;
  }

  get running(): number {
    return this.inFlight;
  }

  add(item: I): Promise<O> {
    if (this.closing) return Promise.reject(new Error("micro-batcher is closed"));
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, addedAt: performance.now(), resolve, reject });
      this.pump();
    });
  }

  /** Stops accepting items, dispatches what is pending without waiting for the timer, and waits for all runs. */
  async close(): Promise<void> {
    this.closing = true;
    this.pump();
    if (this.pending.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.pending.length > 0 && this.inFlight < this.maxInFlight && this.due()) {
      this.dispatch(this.pending.splice(0, this.opts.maxSize));
    }
    const oldest = this.pending[0];
    if (oldest && this.inFlight < this.maxInFlight) {
      // Only armed when a run slot is free: otherwise the end of a run calls pump() anyway.
      const wait = Math.max(0, oldest.addedAt + this.opts.maxWaitMs - performance.now());
      this.timer = setTimeout(() => this.pump(), wait);
    }
    if (this.pending.length === 0 && this.inFlight === 0) {
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private due(): boolean {
    const oldest = this.pending[0];
    if (!oldest) return false;
    return (
      this.closing ||
      this.pending.length >= this.opts.maxSize ||
      performance.now() - oldest.addedAt >= this.opts.maxWaitMs
    );
  }

  private dispatch(batch: Pending<I, O>[]): void {
    this.inFlight += 1;
    const settle = (outputs: O[] | undefined, err?: unknown) => {
      if (outputs && outputs.length !== batch.length) {
        err = new Error(`batch run returned ${outputs.length} outputs for ${batch.length} items`);
      }
      batch.forEach((p, i) => {
        if (err !== undefined || !outputs) p.reject(err);
        else p.resolve(outputs[i] as O);
      });
      this.inFlight -= 1;
      this.pump();
    };
    let started: Promise<O[]>;
    try {
      started = this.opts.run(batch.map((p) => p.item));
    } catch (err) {
      started = Promise.reject(err);
    }
    started.then(
      (outputs) => settle(outputs),
      (err: unknown) => settle(undefined, err ?? new Error("batch run failed")),
    );
  }
}
