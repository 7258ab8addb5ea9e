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

/** Where one image's time went inside the API process, in ms (the route sends it as Server-Timing). */
export interface ClassifyTimings {
  /** In the micro-batcher, from classify() to its batch being handed to the thread. */
  waitMs: number;
  /** Decoding its batch (sharp, in the thread). */
  decodeMs: number;
  /** session.run of its batch. */
  inferenceMs: number;
  /** The rest of the round trip to the thread: messages, and waiting for the previous batch's run. */
  threadMs: number;
  /** Images in its session.run. */
  batchSize: number;
}

export type TimedOutcome = ThreadOutcome & { timings: ClassifyTimings };

interface Queued {
  bytes: Uint8Array;
  addedAt: number;
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
  private readonly batcher: MicroBatcher<Queued, TimedOutcome>;

  private constructor(
    private readonly thread: InferenceThread,
    private readonly opts: ThreadedClassifierOptions,
  ) {
    this.batcher = new MicroBatcher({
      maxSize: opts.maxBatch,
      maxWaitMs: opts.maxWaitMs ?? 2,
      maxInFlight: 2,
      run: async (items) => {
        const sent = performance.now();
        const r = await thread.classify(items.map((it) => it.bytes));
        const threadMs = Math.max(0, performance.now() - sent - r.decodeMs - r.inferenceMs);
        return r.outcomes.map((o, i) => ({
          ...o,
          timings: {
            waitMs: sent - (items[i]?.addedAt ?? sent),
            decodeMs: r.decodeMs,
            inferenceMs: r.inferenceMs,
            threadMs,
            batchSize: r.modelBatchSize,
          },
        }));
      },
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
  async classify(inputs: readonly Uint8Array[]): Promise<TimedOutcome[]> {
    if (this.queued + inputs.length > this.opts.maxQueue) {
      // About how long the images ahead take to clear, at a batch per ~maxBatch images; at least a second.
      const runs = Math.ceil(this.queued / this.opts.maxBatch);
      throw new QueueFullError(this.queued, Math.max(1, Math.ceil(runs * 0.5)));
    }
    this.queued += inputs.length;
    try {
      const addedAt = performance.now();
      return await Promise.all(inputs.map((bytes) => this.batcher.add({ bytes, addedAt })));
    } finally {
      this.queued -= inputs.length;
    }
  }

  async close(): Promise<void> {
    await this.batcher.close();
    await this.thread.close();
  }
}
