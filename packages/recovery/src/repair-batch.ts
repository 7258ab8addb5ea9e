import { type DbOrTx, listQueuedImages, markBatchEnqueued, type OpenBatch } from "@garbage/db";
import { addJobs, type BatchJob, batchJobs, type ClassifyQueue } from "@garbage/queue";
import { recordAbandoned } from "./abandon";

export interface RepairDeps {
  db: DbOrTx;
  queue: ClassifyQueue;
}

export interface RepairOutcome {
  /** Job ids added again because Redis no longer knew them. */
  requeued: string[];
  /** Images of jobs that had failed for good without their final write, recorded as failed now. */
  abandoned: number;
}

/**
 * Makes sure every image of the batch that has no result is covered by a live job. Jobs are rebuilt from the
 * rows exactly as the API built them (same chunking, same ids), so a job that is still in Redis is left alone
 * and one that is gone is added again. A job that failed for good but whose images still have no result lost
 * its final write (Postgres was down then, or the worker died): that write is made here rather than the job
 * re-run, so a job that keeps failing is not retried forever.
 */
export async function repairBatch(
  deps: RepairDeps,
  batch: OpenBatch,
  options: { timeoutMs?: number } = {},
): Promise<RepairOutcome> {
  const images = await listQueuedImages(deps.db, batch.id);
  const recorded = new Set(images.filter((image) => image.recorded).map((image) => image.id));
  const jobs = batchJobs(
    batch.id,
    images.map((image) => ({ id: image.id, key: image.storageKey })),
    // The original enqueue time is gone with Redis; the batch's keeps end-to-end latency honest.
    { chunkSize: batch.chunkSize, enqueuedAt: (batch.enqueuedAt ?? batch.createdAt).getTime() },
  );
  const unfinished = (job: BatchJob) => job.data.images.filter((image) => !recorded.has(image.id));
  const pending = jobs.filter((job) => unfinished(job).length > 0);
  const states = await Promise.all(pending.map((job) => deps.queue.getJobState(job.opts.jobId)));

  const missing: BatchJob[] = [];
  let abandoned = 0;
  for (const [i, job] of pending.entries()) {
    const state = states[i];
    if (state === "unknown") missing.push(job);
    else if (state === "failed") {
      const failed = await deps.queue.getJob(job.opts.jobId);
      const reason = failed
        ? `gave up after ${failed.attemptsMade} attempts: ${failed.failedReason ?? "no reason recorded"}`
        : "the job failed for good";
      abandoned += await recordAbandoned(
        deps.db,
        unfinished(job).map((image) => image.id),
        reason,
      );
    }
    // Waiting, delayed, active: the job is alive. Completed with images left over cannot happen (a job only
    // completes once its results are committed) and re-running it would not change that.
  }
  await addJobs(deps.queue, missing, options.timeoutMs);
  if (!batch.enqueuedAt) await markBatchEnqueued(deps.db, batch.id);
  return { requeued: missing.map((job) => job.opts.jobId), abandoned };
}
