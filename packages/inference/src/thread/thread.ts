/**
 * Entry of the node:worker_threads thread that owns the Classifier. onnxruntime-node's session.run and the
 * tensor fill are synchronous CPU work (a 16-image ResNet50 run blocks for ~0.7 s); here they block only this
 * thread, so the main thread keeps renewing BullMQ locks, answering /metrics and talking to Postgres.
 */
import { parentPort, workerData } from "node:worker_threads";
import sharp from "sharp";
import { type Classifier, loadClassifier } from "../classifier.js";
import { ImageError } from "../errors.js";
import type {
  ClassifyRequest,
  InferenceThreadOptions,
  ThreadMessage,
  ThreadOutcome,
  ThreadRequest,
} from "./protocol.js";

const port = parentPort;
if (!port) throw new Error("thread.ts must run in a worker thread");
const opts = workerData as InferenceThreadOptions;

// Every image is decoded once, so libvips' operation cache only costs memory; and its thread pool should stay
// within this process's CPU budget rather than default to every core of the host.
sharp.cache(false);
sharp.concurrency(Math.max(1, opts.threads));

const send = (msg: ThreadMessage, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

// Runs are serialised: onnxruntime's intra-op pool is sized for one run at a time. Decoding of the next
// request is not, so it overlaps the current run (sharp works on libuv threads).
let modelQueue: Promise<unknown> = Promise.resolve();

async function handle(clf: Classifier, req: ClassifyRequest): Promise<void> {
  const decodeStart = performance.now();
  const decoded = await clf.decodeMany(req.images.map((bytes) => Buffer.from(bytes)));
  const decodeMs = performance.now() - decodeStart;
  const modelBatchSize = decoded.filter((d) => !(d instanceof ImageError)).length;
  const run = modelQueue.then(async () => {
    const start = performance.now();
    const results = await clf.classifyDecoded(decoded, { topK: opts.topK ?? 3 });
    return { results, inferenceMs: modelBatchSize > 0 ? performance.now() - start : 0 };
  });
  modelQueue = run.catch(() => {});
  const { results, inferenceMs } = await run;
  // The full probability vector stays in the thread: the database keeps the top-k only.
  const outcomes = results.map(
    (r): ThreadOutcome =>
      r.ok
        ? {
            ok: true,
            label: r.label,
            confidence: r.confidence,
            top: r.top,
            needsReview: r.needsReview,
            review: r.review,
            embedding: r.embedding,
          }
        : r,
  );
  // Each embedding is its own copy (classifier.ts slices it), so its buffer can move instead of being cloned.
  const transfer = outcomes.flatMap((o) => (o.ok && o.embedding ? [o.embedding.buffer as ArrayBuffer] : []));
  send({ type: "result", id: req.id, outcomes, decodeMs, inferenceMs, modelBatchSize }, transfer);
}

try {
  const clf = await loadClassifier({
    model: opts.model,
    provider: opts.provider,
    threads: opts.threads,
    maxBatch: opts.maxBatch,
    ...(opts.limits ? { limits: opts.limits } : {}),
  });
  const { name, version, sha256, classes } = clf.manifest;
  const inFlight = new Set<Promise<void>>();
  port.on("message", (req: ThreadRequest) => {
    if (req.type === "close") {
      void Promise.allSettled([...inFlight])
        .then(() => clf.close())
        .finally(() => port.close());
      return;
    }
    const done = handle(clf, req).catch((err: unknown) =>
      send({ type: "error", id: req.id, message: err instanceof Error ? err.message : String(err) }),
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  });
  send({ type: "ready", model: { name, version, sha256, classes: [...classes] } });
} catch (err) {
  send({ type: "fatal", message: err instanceof Error ? err.message : String(err) });
}
