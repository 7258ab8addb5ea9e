import { type ClassifyQueue, queueDepth } from "@garbage/queue";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export interface ApiMetrics {
  requestDuration: Histogram<"method" | "route" | "status">;
  uploads: Counter<"outcome">;
  imagesAccepted: Counter<"outcome">;
  uploadBytes: Counter;
  batchSize: Histogram;
  classifyDuration: Histogram<"outcome">;
}

/**
 * The API reports what it sees: requests, uploads, accepted images and the queue it feeds. Inference and
 * end-to-end latency are the worker's to report from its own registry.
 */
export function createApiMetrics(registry: Registry, queue: ClassifyQueue): ApiMetrics {
  const registers = [registry];
  new Gauge({
    name: "garbage_queue_jobs",
    help: "Jobs in the classify queue by state (one job is a chunk of images)",
    labelNames: ["state"],
    registers,
    async collect() {
      try {
        const depth = await queueDepth(queue, 1_000);
        for (const [state, n] of Object.entries(depth)) this.set({ state }, n);
      } catch {
        // A scrape during a Redis outage must still answer; /readyz reports the outage.
        this.reset();
      }
    },
  });
  return {
    requestDuration: new Histogram({
      name: "garbage_api_request_duration_seconds",
      help: "HTTP request latency by route pattern",
      labelNames: ["method", "route", "status"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    uploads: new Counter({
      name: "garbage_api_uploads_total",
      help: "Batch submissions by outcome (created, replayed, rejected, failed)",
      labelNames: ["outcome"],
      registers,
    }),
    imagesAccepted: new Counter({
      name: "garbage_api_images_total",
      help: "Images in created batches: queued for classification, or rejected at upload (not an image)",
      labelNames: ["outcome"],
      registers,
    }),
    uploadBytes: new Counter({
      name: "garbage_api_upload_bytes_total",
      help: "Image bytes stored by created batches",
      registers,
    }),
    batchSize: new Histogram({
      name: "garbage_api_batch_size_images",
      help: "Images per created batch",
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
      registers,
    }),
    classifyDuration: new Histogram({
      name: "garbage_api_classify_duration_seconds",
      help: "Synchronous POST /v1/classify inference time",
      labelNames: ["outcome"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  };
}
