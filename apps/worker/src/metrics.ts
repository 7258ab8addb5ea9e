import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const LONG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];

/**
 * The worker's Prometheus metrics, on a registry of its own (never the global one, so tests and several
 * workers in one process do not collide). images / batches = average model batch size.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "garbage_worker_" });
  return {
    registry,
    images: new Counter({
      name: "garbage_worker_images_processed_total",
      help: "Images this worker finished (ok or failed), before de-duplication by the database",
      labelNames: ["status"] as const,
      registers: [registry],
    }),
    failures: new Counter({
      name: "garbage_worker_images_failed_total",
      help: "Images recorded as failed, by reason (decode error code, missing, invalid_key, worker_error)",
      labelNames: ["code"] as const,
      registers: [registry],
    }),
    duplicates: new Counter({
      name: "garbage_worker_results_duplicate_total",
      help: "Results the database already had (retried or re-delivered work); not counted twice",
      registers: [registry],
    }),
    batches: new Counter({
      name: "garbage_worker_model_batches_total",
      help: "Model batches: session.run calls (a batch whose images all failed to decode runs none)",
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: "garbage_worker_model_batch_size",
      help: "Images per session.run",
      buckets: [1, 2, 4, 8, 12, 16, 24, 32, 48, 64],
      registers: [registry],
    }),
    inference: new Histogram({
      name: "garbage_worker_inference_seconds",
      help: "Wall time of one model run (session.run of a batch)",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    decode: new Histogram({
      name: "garbage_worker_decode_seconds",
      help: "Wall time to decode the images of one batch",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    record: new Histogram({
      name: "garbage_worker_record_seconds",
      help: "Wall time of the recordResults transaction of one batch",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: "garbage_worker_queue_wait_seconds",
      help: "Per image: enqueue (API) to the start of the job attempt that processed it",
      buckets: LONG_BUCKETS,
      registers: [registry],
    }),
    endToEnd: new Histogram({
      name: "garbage_worker_end_to_end_seconds",
      help: "Per image: enqueue (API) to its result being written",
      buckets: LONG_BUCKETS,
      registers: [registry],
    }),
    jobs: new Counter({
      name: "garbage_worker_jobs_total",
      help: "Job attempts by outcome (completed, failed: will be retried unless attempts are exhausted)",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    stalled: new Counter({
      name: "garbage_worker_jobs_stalled_total",
      help: "Jobs this worker's stalled checker moved back to wait (their worker died or lost its lock)",
      registers: [registry],
    }),
    sweeps: new Counter({
      name: "garbage_worker_sweeps_total",
      help: "Reconciliation sweeps: ran, skipped (another process held the lock) or failed",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    recovered: new Counter({
      name: "garbage_worker_recovered_total",
      help: "What sweeps repaired: requeued_jobs (lost from Redis), retried_jobs (failed for good, run again), abandoned_images (final failed writes), orphans",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    threadRestarts: new Gauge({
      name: "garbage_worker_inference_thread_restarts",
      help: "Inference threads restarted after the previous one died",
      registers: [registry],
    }),
    modelsLoaded: new Gauge({
      name: "garbage_worker_models_loaded",
      help: "Model versions loaded in this process (at most MAX_MODELS, plus evicted ones still finishing)",
      registers: [registry],
    }),
    modelLoads: new Counter({
      name: "garbage_worker_model_loads_total",
      help: "Model version loads by outcome (loaded, failed: missing files, bad sha256, unloadable model)",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    modelEvictions: new Counter({
      name: "garbage_worker_model_evictions_total",
      help: "Loaded versions evicted (least recently used) to make room for another: a high rate means MAX_MODELS is too small",
      registers: [registry],
    }),
    shadowImages: new Counter({
      name: "garbage_worker_shadow_images_total",
      help: "Live images run through a shadow version: recorded, dropped (queue full), no_slot (not loaded, pool full), failed",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    backfillImages: new Counter({
      name: "garbage_worker_backfill_images_total",
      help: "Reviewed images classified by the sweep's backfill, by the version's role (candidate, active)",
      labelNames: ["role"] as const,
      registers: [registry],
    }),
    siteThresholds: new Counter({
      name: "garbage_worker_site_thresholds_total",
      help: "Per-site review threshold fits by outcome (fitted, needed: too few reviews, failed)",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    queueJobs: new Gauge({
      name: "garbage_worker_queue_jobs",
      help: "Jobs in the classify queue by state, read from Redis at scrape time",
      labelNames: ["state"] as const,
      registers: [registry],
    }),
  };
}

export type WorkerMetrics = ReturnType<typeof createMetrics>;
