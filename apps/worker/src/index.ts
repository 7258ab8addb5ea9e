import { loadConfig, type WorkerConfig } from "./config";
import { errorFields, log } from "./log";
import { startWorker } from "./worker";

let config: WorkerConfig;
try {
  config = loadConfig();
} catch (err) {
  log("error", "worker not started", errorFields(err));
  process.exit(2);
}
const running = await startWorker(config).catch((err: unknown) => {
  log("error", "worker failed to start", errorFields(err));
  process.exit(1);
});
log("info", "worker ready", {
  queue: config.QUEUE_NAME,
  model: running.model,
  metricsPort: running.metricsPort,
  batchSize: config.BATCH_SIZE,
  batchWaitMs: config.BATCH_WAIT_MS,
  concurrency: config.WORKER_CONCURRENCY,
  threads: config.WORKER_THREADS,
  provider: config.WORKER_PROVIDER,
  sweepIntervalMs: config.SWEEP_INTERVAL_MS,
});

let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) {
    // A second signal means "now": unfinished jobs are recovered by another worker's stalled checker.
    log("warn", "second signal, exiting without finishing active jobs", { signal });
    process.exit(1);
  }
  stopping = true;
  log("info", "stopping: no new jobs, finishing active ones", { signal });
  running.close().then(
    () => {
      log("info", "stopped");
      process.exit(0);
    },
    (err: unknown) => {
      log("error", "error while stopping", errorFields(err));
      process.exit(1);
    },
  );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
