import type { Logger } from "@garbage/log";
import type { SweepReport } from "@garbage/recovery";
import type { WorkerMetrics } from "./metrics";

export interface SweeperOptions {
  intervalMs: number;
  /** One pass, continuing the orphan scan at `orphanCursor`. */
  sweep: (orphanCursor: string | undefined) => Promise<SweepReport>;
  log: Logger;
  metrics?: WorkerMetrics;
  /**
   * Between passes, asks every `intervalMs` whether Redis lost its data (redisLossDetector) and, when it did,
   * runs a pass at once, and again every watch interval until one runs (another process may hold the lock).
   */
  watch?: { intervalMs: number; redisLost: () => Promise<boolean> };
}

export interface Sweeper {
  /** Stops scheduling and waits for a pass in progress. */
  close(): Promise<void>;
}

/**
 * Runs the reconciliation sweep once at start and then `intervalMs` after each pass ends, so passes never
 * overlap within a process (the advisory lock keeps processes apart). A failed pass (Redis or Postgres down)
 * is logged and simply tried again next time. With `watch`, a Redis that lost its jobs is swept within about
 * a watch interval of answering again instead of a whole `intervalMs` later.
 */
export function startSweeper(options: SweeperOptions): Sweeper {
  const { log, metrics, watch } = options;
  let cursor: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;
  /** Redis lost its data (or the last pass failed) and no pass has run since: retry at the watch interval. */
  let urgent = false;
  let failing = false;

  const pass = async () => {
    const started = performance.now();
    try {
      // Learns the Redis this pass repairs (a loss after it is then noticed between passes); throws, and so
      // fails the pass, while Redis is unreachable. A loss it reports is repaired by this pass, if it runs.
      if (watch && (await watch.redisLost())) urgent = true;
      const forLoss = urgent;
      const report = await options.sweep(cursor);
      const durationMs = Math.round(performance.now() - started);
      cursor = report.orphanCursor;
      metrics?.sweeps.inc({ outcome: report.ran ? "ran" : "skipped" });
      failing = false;
      if (!report.ran) return;
      if (forLoss) urgent = false;
      metrics?.recovered.inc({ kind: "requeued_jobs" }, report.requeuedJobs);
      metrics?.recovered.inc({ kind: "retried_jobs" }, report.retriedJobs);
      metrics?.recovered.inc({ kind: "abandoned_images" }, report.abandonedImages);
      metrics?.recovered.inc({ kind: "orphans" }, report.orphansRemoved + report.incompleteRemoved);
      const { requeuedJobs, retriedJobs, abandonedImages, orphansRemoved, incompleteRemoved } = report;
      // Quiet when there was nothing to repair: that is every pass of a healthy system.
      if (requeuedJobs + retriedJobs + abandonedImages + orphansRemoved + incompleteRemoved > 0) {
        log.warn(
          {
            batches: report.batches,
            requeuedJobs,
            retriedJobs,
            abandonedImages,
            orphansRemoved,
            incompleteRemoved,
            durationMs,
          },
          "sweep repaired state",
        );
      } else {
        log.debug({ batches: report.batches, durationMs }, "sweep found nothing to repair");
      }
    } catch (err) {
      metrics?.sweeps.inc({ outcome: "failed" });
      // Once per outage: with the watch, a failed pass is retried every watch interval until one works.
      if (!failing) log.warn({ err }, "sweep failed, will retry");
      failing = true;
      if (watch) urgent = true;
    }
  };
  const tick = () => {
    clearTimeout(timer);
    running = pass().finally(() => {
      running = undefined;
      if (!closed) timer = setTimeout(tick, urgent && watch ? watch.intervalMs : options.intervalMs);
    });
  };

  let watching: Promise<void> | undefined;
  const look = async () => {
    try {
      if (!(await watch?.redisLost())) return;
      log.warn("redis lost its data (new run id or marker gone): sweeping now");
      urgent = true;
      // A pass in progress may have read Redis before the loss: the next one starts when it ends.
      if (!running && !closed) tick();
    } catch {
      // Unreachable: the first answer after the outage tells whether anything was lost.
    }
  };
  const lookOnce = () => {
    watching ??= look().finally(() => {
      watching = undefined;
    });
    return watching;
  };
  const watcher = watch ? setInterval(lookOnce, watch.intervalMs) : undefined;
  tick();

  return {
    close: async () => {
      closed = true;
      clearInterval(watcher);
      clearTimeout(timer);
      await watching;
      await running;
    },
  };
}
