import type { DbOrTx } from "@garbage/db";
import type { Logger } from "@garbage/log";
import type { ClassifyJob } from "@garbage/queue";
import type { Job, Worker } from "bullmq";
import type { WorkerMetrics } from "./metrics";
import { type JobSummary, recordAbandonedJob } from "./process-job";
import { retryUntilDone } from "./retry";

/** The fields every line about a job carries; the payload may be malformed, so nothing is assumed of it. */
export function jobFields(job: Job<ClassifyJob> | undefined) {
  const data = job?.data as Partial<ClassifyJob> | undefined;
  return {
    jobId: job?.id,
    batchId: data?.batchId,
    images: Array.isArray(data?.images) ? data.images.length : undefined,
    attempt: job ? job.attemptsMade + 1 : undefined,
  };
}

/** Wraps the processor with a "job started" and a "job completed" line (queue wait and run time). */
export function loggedProcessor(
  log: Logger,
  run: (job: Job<ClassifyJob>) => Promise<JobSummary>,
): (job: Job<ClassifyJob>) => Promise<JobSummary> {
  return async (job) => {
    const started = performance.now();
    const fields = jobFields(job);
    const queueMs = job.processedOn ? Math.max(0, job.processedOn - job.timestamp) : undefined;
    log.info({ ...fields, queueMs }, "job started");
    const summary = await run(job);
    log.info(
      { ...fields, skipped: summary.skipped, runMs: Math.round(performance.now() - started) },
      "job completed",
    );
    return summary;
  };
}

/**
 * Logs every failure and, for one that is final (no attempt left), makes the abandoned-job write: its images
 * whose repairs are used up get a failed result so the batch completes, the others wait for the sweep to run
 * the job again. Postgres being down is a common reason for a job to run out of
 * attempts, and then this write fails too: it is retried until the database is back, or handed to the sweep
 * when the worker stops (`signal`).
 */
export function onJobFailures(
  worker: Worker<ClassifyJob>,
  deps: { log: Logger; metrics: WorkerMetrics; db: DbOrTx; signal: AbortSignal; maxRepairs: number },
) {
  const { log, metrics, db } = deps;
  worker.on("failed", (job, err) => {
    metrics.jobs.inc({ outcome: "failed" });
    // finishedOn is only set when BullMQ moved the job to failed for good (no retry left).
    const final = job?.finishedOn !== undefined;
    const fields = {
      ...jobFields(job),
      attemptsMade: job?.attemptsMade,
      runMs: job?.processedOn ? Math.max(0, (job.finishedOn ?? Date.now()) - job.processedOn) : undefined,
      err,
    };
    if (final) log.error(fields, "job failed for good");
    else log.warn(fields, "job failed, will retry");
    if (!job || !final) return;
    retryUntilDone(() => recordAbandonedJob(db, job, err.message, deps.maxRepairs), {
      signal: deps.signal,
      onError: (e, attempt, delayMs) => {
        if (attempt === 1) {
          log.warn({ jobId: job.id, delayMs, err: e }, "could not record an abandoned job yet, retrying");
        }
      },
    }).then(
      ({ recorded, left, repairs }) => {
        const fields = { jobId: job.id, batchId: job.data?.batchId, repairs, maxRepairs: deps.maxRepairs };
        if (recorded > 0)
          log.warn({ ...fields, images: recorded }, "recorded images of an abandoned job as failed");
        if (left > 0) log.warn({ ...fields, images: left }, "abandoned job left to the sweep to run again");
      },
      (e: unknown) =>
        log.error({ jobId: job.id, err: e }, "stopped before recording an abandoned job; the sweep will"),
    );
  });
}
