import type { Prediction } from "../classifier.js";
import type { DecodeLimits } from "../decode.js";
import type { ImageErrorCode } from "../errors.js";
import type { Provider } from "../session.js";

/** What the inference thread needs to load its Classifier (passed as workerData, so structured-clonable). */
export interface InferenceThreadOptions {
  model: string;
  provider: Provider;
  /** onnxruntime intra-op threads. */
  threads: number;
  /** Images per session.run; the worker's BATCH_SIZE so one model batch is one run. */
  maxBatch: number;
  topK?: number;
  /** Bytes and pixels an image may have (defaults: @garbage/inference's). */
  limits?: DecodeLimits;
}

export interface ModelInfo {
  name: string;
  version: string;
  sha256: string;
  classes: string[];
}

/**
 * A Prediction without the full probability vector, which nobody downstream stores; the review flags
 * (lowConfidence, unfamiliar, distance) travel whole because recordResults keeps them, and so does the
 * embedding (transferred, not copied), which the worker stores for similar-image search.
 */
export type ThreadOutcome =
  | ({ ok: true } & Pick<Prediction, "label" | "confidence" | "top" | "needsReview" | "review" | "embedding">)
  | { ok: false; error: { code: ImageErrorCode; message: string } };

export interface ClassifyRequest {
  type: "classify";
  id: number;
  /** Encoded image bytes, transferred (not copied) to the thread. */
  images: ArrayBuffer[];
}

/** Asks the thread to release its session and exit once the requests already sent are answered. */
export interface CloseRequest {
  type: "close";
}

export type ThreadRequest = ClassifyRequest | CloseRequest;

export interface BatchTimings {
  /** Wall time to decode all images of the batch (sharp, concurrently). */
  decodeMs: number;
  /** Wall time of the model run for the decodable images (0 when none were). */
  inferenceMs: number;
  /** Images that actually went through session.run. */
  modelBatchSize: number;
}

export type ThreadMessage =
  | { type: "ready"; model: ModelInfo }
  | { type: "fatal"; message: string }
  | ({ type: "result"; id: number; outcomes: ThreadOutcome[] } & BatchTimings)
  | { type: "error"; id: number; message: string };
