import { Worker } from "node:worker_threads";
import type {
  BatchTimings,
  ClassifyRequest,
  InferenceThreadOptions,
  ModelInfo,
  ThreadMessage,
  ThreadOutcome,
  ThreadRequest,
} from "./protocol.js";

export type BatchClassification = { outcomes: ThreadOutcome[] } & BatchTimings;

/**
 * The thread's entry file. Two ways this module runs:
 * - From its TypeScript source (tsx, vitest, `npm run dev:*`): this module's URL is .../thread/client.ts, and
 *   the thread starts from boot.mjs beside it, which registers tsx and imports thread.ts (Node 20 does not
 *   apply the parent's --import hooks to a worker's entry).
 * - From a bundle (`npm run build`, scripts/build.mjs): this code is inlined into apps/<app>/dist/index.js,
 *   whose URL ends in .js, and the build emits the thread's own bundle, inference-thread.js, next to it.
 *   Production has no tsx (dev dependency), so boot.mjs must not be used there.
 */
export function threadEntry(moduleUrl: string = import.meta.url): URL {
  return new URL(moduleUrl.endsWith(".ts") ? "./boot.mjs" : "./inference-thread.js", moduleUrl);
}

const ENTRY = threadEntry();

interface Waiter {
  resolve: (value: BatchClassification) => void;
  reject: (err: Error) => void;
}

/**
 * Main-thread handle on the thread that owns the Classifier. Image bytes are transferred, not copied. If the
 * thread dies, in-flight requests reject (their jobs are retried by BullMQ) and the next request starts a
 * fresh thread.
 */
export class InferenceThread {
  private worker: Worker | undefined;
  private starting: Promise<Worker> | undefined;
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 1;
  private closing = false;
  /** Threads started after the first because the previous one died. */
  restarts = 0;

  private constructor(
    private readonly opts: InferenceThreadOptions,
    readonly model: ModelInfo,
  ) {}

  /** Starts the thread and waits until the model is loaded (throws if it cannot be). */
  static async start(opts: InferenceThreadOptions): Promise<InferenceThread> {
    const { worker, model } = await spawn(opts);
    const thread = new InferenceThread(opts, model);
    thread.adopt(worker);
    return thread;
  }

  get alive(): boolean {
    return this.worker !== undefined;
  }

  async classify(images: readonly Uint8Array[]): Promise<BatchClassification> {
    if (this.closing) throw new Error("inference thread is closing");
    const worker = await this.ensureWorker();
    const id = this.nextId++;
    const transfer: ArrayBuffer[] = [];
    const buffers = images.map((img) => {
      // Transfer whole, unshared buffers; copy slices of pooled or shared memory so nothing else is detached.
      const whole =
        img.byteOffset === 0 && img.byteLength === img.buffer.byteLength && img.buffer instanceof ArrayBuffer;
      const buf = whole ? (img.buffer as ArrayBuffer) : new Uint8Array(img).buffer;
      transfer.push(buf);
      return buf;
    });
    return new Promise<BatchClassification>((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      const req: ClassifyRequest = { type: "classify", id, images: buffers };
      worker.postMessage(req, transfer);
    });
  }

  /** Lets the thread finish what it was sent, releases the session and waits for the thread to exit. */
  async close(): Promise<void> {
    this.closing = true;
    const worker = this.worker ?? (await this.starting?.catch(() => undefined));
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    worker.postMessage({ type: "close" } satisfies ThreadRequest);
    const timer = setTimeout(() => void worker.terminate(), 10_000);
    await exited;
    clearTimeout(timer);
  }

  private async ensureWorker(): Promise<Worker> {
    if (this.worker) return this.worker;
    this.starting ??= spawn(this.opts).then(
      ({ worker }) => {
        this.restarts += 1;
        this.starting = undefined;
        this.adopt(worker);
        return worker;
      },
      (err: unknown) => {
        this.starting = undefined;
        throw err;
      },
    );
    return this.starting;
  }

  private adopt(worker: Worker): void {
    this.worker = worker;
    worker.on("message", (msg: ThreadMessage) => {
      if (msg.type !== "result" && msg.type !== "error") return;
      const waiter = this.waiters.get(msg.id);
      if (!waiter) return;
      this.waiters.delete(msg.id);
      if (msg.type === "error") waiter.reject(new Error(`inference failed: ${msg.message}`));
      else {
        const { outcomes, decodeMs, inferenceMs, modelBatchSize } = msg;
        waiter.resolve({ outcomes, decodeMs, inferenceMs, modelBatchSize });
      }
    });
    const lost = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const [id, waiter] of this.waiters) {
        this.waiters.delete(id);
        waiter.reject(new Error(`inference thread ${why}`));
      }
    };
    worker.on("error", (err) => lost(`crashed: ${err.message}`));
    worker.on("exit", (code) => lost(`exited with code ${code}`));
  }
}

function spawn(opts: InferenceThreadOptions): Promise<{ worker: Worker; model: ModelInfo }> {
  const worker = new Worker(ENTRY, { workerData: opts });
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      worker.off("message", onMessage);
      void worker.terminate();
      reject(err);
    };
    const onMessage = (msg: ThreadMessage) => {
      if (msg.type === "ready") {
        worker.off("message", onMessage);
        worker.off("error", fail);
        worker.off("exit", onExit);
        resolve({ worker, model: msg.model });
      } else if (msg.type === "fatal") fail(new Error(`cannot load the model: ${msg.message}`));
    };
    const onExit = (code: number) =>
      fail(new Error(`inference thread exited with code ${code} while starting`));
    worker.on("message", onMessage);
    worker.once("error", fail);
    worker.once("exit", onExit);
  });
}
