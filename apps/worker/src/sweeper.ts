import type { Logger } from "@garbage/log";
import type { SweepReport } from "@garbage/recovery";
import type { WorkerMetrics } from "./metrics";

export interface SweeperOptions {
  intervalMs: number;
  /** One pass, continuing the orphan scan at `orphanCursor`. */
  sweep: (orphanCursor: string | undefined) => Promise<SweepReport>;
  log: Logger;
  metrics?: WorkerMetrics;
}

export interface Sweeper {
  /** Stops scheduling and waits for a pass in progress. */
  close(): Promise<void>;
}

/**
 * Runs the reconciliation sweep once at start and then `intervalMs` after each pass ends, so passes never
 * overlap within a process (the advisory lock keeps processes apart). A failed pass (Redis or Postgres down)
 * is logged and simply tried again next time.
 */
export function startSweeper(options: SweeperOptions): Sweeper {
  const { log, metrics } = options;
  let cursor: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;

  const pass = async () => {
    const started = performance.now();
    try {
      const report = await options.sweep(cursor);
      const durationMs = Math.round(performance.now() - started);
      cursor = report.orphanCursor;
      metrics?.sweeps.inc({ outcome: report.ran ? "ran" : "skipped" });
      if (!report.ran) return;
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
      log.warn({ err }, "sweep failed, will retry");
    }
  };
  const tick = () => {
    running = pass().finally(() => {
      running = undefined;
      if (!closed) timer = setTimeout(tick, options.intervalMs);
    });
  };
  tick();

  return {
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}
