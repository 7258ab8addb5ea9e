import { createLogger } from "@garbage/log";
import { loadConfig, type WorkerConfig } from "./config";
import { type RunningWorker, startWorker } from "./worker";

// One drain per process, whatever number of signals arrives. A stop often delivers the same signal more than
// once: a SIGTERM or Ctrl-C to the process group reaches this process and every wrapper above it (npm, tsx,
// a shell), and wrappers relay it again. Treating the echo as "stop now" exited 1 mid-drain (issue 11), so
// repeats are logged and ignored; the supervisor's SIGKILL after its grace period (docker stop, systemd's
// TimeoutStopSec) is what forces an exit, and unfinished jobs are then recovered by the stalled checker.
//
// The handlers are installed before anything else: a signal that arrives while the worker starts (or just
// after it logged "worker ready") must drain too, not kill the process with the default action.
// Info until the configuration (LOG_LEVEL) is read: a signal or a bad variable is reported either way.
const log = createLogger({ service: "worker" });
let running: RunningWorker | undefined;
let stopping = false;
const drain = (worker: RunningWorker) =>
  worker.close().then(
    () => {
      log.info("stopped");
      process.exit(0);
    },
    (err: unknown) => {
      log.error({ err }, "error while stopping");
      process.exit(1);
    },
  );
const stop = (signal: NodeJS.Signals) => {
  if (stopping) {
    log.info({ signal }, "already stopping, signal ignored");
    return;
  }
  stopping = true;
  log.info({ signal }, "stopping: no new jobs, finishing active ones");
  // Still starting: the drain begins as soon as startWorker resolves (below).
  if (running) void drain(running);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

let config: WorkerConfig;
try {
  config = loadConfig();
} catch (err) {
  log.error({ err }, "worker not started");
  process.exit(2);
}
log.level = config.LOG_LEVEL;
running = await startWorker(config, log).catch((err: unknown) => {
  log.error({ err }, "worker failed to start");
  process.exit(1);
});
log.info(
  {
    queue: config.QUEUE_NAME,
    model: running.model,
    metricsPort: running.metricsPort,
    batchSize: config.BATCH_SIZE,
    batchWaitMs: config.BATCH_WAIT_MS,
    concurrency: config.WORKER_CONCURRENCY,
    threads: config.WORKER_THREADS,
    provider: config.WORKER_PROVIDER,
    sweepIntervalMs: config.SWEEP_INTERVAL_MS,
  },
  "worker ready",
);
if (stopping) void drain(running);
