import type { DbOrTx } from "@garbage/db";
import type { ModelManifest } from "@garbage/inference";
import type { Logger } from "@garbage/log";
import type { ClassifyQueue, Redis } from "@garbage/queue";
import type { ImageStore } from "@garbage/storage";
import type { Registry } from "prom-client";
import type { AppConfig } from "./config";
import type { ApiMetrics } from "./metrics";
import type { Principal } from "./principal";

export interface AppEnv {
  /** principal: set by apiKeyAuth on /v1 routes; read it through principal.ts. */
  /** log: the app's logger with this request's id (request-log.ts). */
  Variables: { requestId: string; principal: Principal; log: Logger };
}

/**
 * What the API needs of @garbage/inference: structurally compatible with its Classifier so tests can pass a
 * real one and the API does not pull onnxruntime into code paths that never classify.
 */
export interface Classifier {
  readonly manifest: { name: string; version: string };
  classify(
    inputs: readonly Buffer[],
    options?: { topK?: number },
  ): Promise<
    Array<
      | {
          ok: true;
          label: string;
          confidence: number;
          top: { label: string; confidence: number }[];
          needsReview: boolean;
          review: { lowConfidence: boolean; unfamiliar: boolean; distance: number | null };
          /** Where the time went (ms), when the classifier measures it: sent back as Server-Timing. */
          timings?: {
            waitMs: number;
            decodeMs: number;
            inferenceMs: number;
            threadMs: number;
            batchSize: number;
          };
        }
      | { ok: false; error: { code: string; message: string } }
    >
  >;
}

export type { Logger };

export interface AppDeps {
  db: DbOrTx;
  store: ImageStore;
  queue: ClassifyQueue;
  /** The producer connection behind `queue`, pinged by /readyz. */
  redis: Redis;
  config: AppConfig;
  classifier?: Classifier | null;
  /**
   * The serving model's manifest (classes, review thresholds, metrics), read even when the model itself did
   * not load: reviews are checked against its classes. Null: /v1/model answers 503 and reviews cannot be
   * written.
   */
  model?: ModelManifest | null;
  /** Metrics go here, never to prom-client's global registry; defaults to a fresh one. */
  registry?: Registry;
  /** Defaults to @garbage/log's stdout logger at info; tests pass captureLogger's. */
  logger?: Logger;
}

/** Dependencies as route modules see them, with defaults filled in. */
export interface RouteDeps extends Omit<AppDeps, "registry" | "logger"> {
  metrics: ApiMetrics;
  registry: Registry;
  logger: Logger;
}
