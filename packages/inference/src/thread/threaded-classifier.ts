import { InferenceThread } from "./client.js";
import { MicroBatcher } from "./micro-batcher.js";
import type { InferenceThreadOptions, ModelInfo, ThreadOutcome } from "./protocol.js";

export interface ThreadedClassifierOptions extends InferenceThreadOptions {
  /**
   * Images accepted but not yet answered (waiting, decoding or in the model) beyond which classify() refuses
   * with QueueFullError: a client waiting longer than a retry would is better told to come back.
   */
  maxQueue: number;
  /** How long a lone image waits for company before it runs alone (ms). */
  maxWaitMs?: number;
}

/** classify() refused: the queue is full; retry after `retryAfterS` seconds. */
export class QueueFullError extends Error {
  override name = "QueueFullError";
  readonly code = "overloaded";
  constructor(
    readonly queued: number,
    readonly retryAfterS: number,
  ) {
    super(`the model queue is full (${queued} images waiting); retry after ${retryAfterS} s`);
  }
}

/**
 * Synchronous classification for a process that serves requests (the API): the model runs in an
 * InferenceThread, so its event loop keeps answering; concurrent requests are coalesced into one
 * session.run (up to maxBatch images, waiting at most maxWaitMs), two runs in flight so decoding overlaps
 * the model; and the number of images in the system is bounded.
 */
export class ThreadedClassifier {
  private queued = 0;
  private readonly batcher: MicroBatcher<Uint8Array, ThreadOutcome>;

  private constructor(
    private readonly thread: InferenceThread,
    private readonly opts: ThreadedClassifierOptions,
  ) {
    this.batcher = new MicroBatcher({
      maxSize: opts.maxBatch,
      maxWaitMs: opts.maxWaitMs ?? 2,
      maxInFlight: 2,
      run: async (images) => (await thread.classify(images)).outcomes,
    });
  }

  static async start(opts: ThreadedClassifierOptions): Promise<ThreadedClassifier> {
    if (!Number.isInteger(opts.maxQueue) || opts.maxQueue < 1) throw new RangeError("maxQueue must be >= 1");
    return new ThreadedClassifier(await InferenceThread.start(opts), opts);
  }

  get manifest(): ModelInfo {
    return this.thread.model;
  }

  /** Images accepted and not yet answered. */
  get pending(): number {
    return this.queued;
  }

  /** One outcome per input, in order. Throws QueueFullError, without queueing any, when they do not fit. */
  async classify(inputs: readonly Uint8Array[]): Promise<ThreadOutcome[]> {
    if (this.queued + inputs.length > this.opts.maxQueue) {
      // About how long the images ahead take to clear, at a batch per ~maxBatch images; at least a second.
      const runs = Math.ceil(this.queued / this.opts.maxBatch);
      throw new QueueFullError(this.queued, Math.max(1, Math.ceil(runs * 0.5)));
    }
    this.queued += inputs.length;
    try {
      return await Promise.all(inputs.map((img) => this.batcher.add(img)));
    } finally {
      this.queued -= inputs.length;
    }
  }

  async close(): Promise<void> {
    await this.batcher.close();
    await this.thread.close();
  }
}
