import { countRepair, type DbOrTx, listQueuedImages, markBatchEnqueued, type OpenBatch } from "@garbage/db";
import { addJobs, type BatchJob, batchJobs, type ClassifyQueue } from "@garbage/queue";
import { DEFAULT_MAX_REPAIRS, recordAbandoned, repairNote } from "./abandon";

export interface RepairDeps {
  db: DbOrTx;
  queue: ClassifyQueue;
}

export interface RepairOptions {
  timeoutMs?: number;
  /** Times a job that failed for good is run again before its images are recorded as failed. */
  maxRepairs?: number;
}

export interface RepairOutcome {
  /** Job ids added again because Redis no longer knew them. */
  requeued: string[];
  /** Job ids that had failed for good and were run again (one repair more for their images). */
  retried: string[];
  /** Images of jobs that failed for good with their repairs used up, recorded as failed now. */
  abandoned: number;
}

/**
 * Makes sure every image of the batch that has no result is covered by a live job. Jobs are rebuilt from the
 * rows exactly as the API built them (same chunking, same ids), so a job that is still in Redis is left alone
 * and one that is gone is added again.
 *
 * A job that failed for good with images still open is run again (same id, fresh attempts), at most
 * `maxRepairs` times, counted per image in Postgres; after that its open images are recorded as failed (the
 * final write the worker makes too, or lost when Postgres was down or the worker died). So a fault longer
 * than a job's retry budget heals, and a job that keeps failing still ends.
 */
export async function repairBatch(
  deps: RepairDeps,
  batch: OpenBatch,
  options: RepairOptions = {},
): Promise<RepairOutcome> {
  const maxRepairs = options.maxRepairs ?? DEFAULT_MAX_REPAIRS;
  const images = await listQueuedImages(deps.db, batch.id);
  const byId = new Map(images.map((image) => [image.id, image]));
  const jobs = batchJobs(
    batch.id,
    images.map((image) => ({ id: image.id, key: image.storageKey })),
    // The original enqueue time is gone with Redis; the batch's keeps end-to-end latency honest.
    { chunkSize: batch.chunkSize, enqueuedAt: (batch.enqueuedAt ?? batch.createdAt).getTime() },
  );
  const unfinished = (job: BatchJob) => job.data.images.filter((image) => !byId.get(image.id)?.recorded);
  const pending = jobs.filter((job) => unfinished(job).length > 0);
  const states = await Promise.all(pending.map((job) => deps.queue.getJobState(job.opts.jobId)));

  const outcome: RepairOutcome = { requeued: [], retried: [], abandoned: 0 };
  const missing: BatchJob[] = [];
  for (const [i, job] of pending.entries()) {
    const state = states[i];
    if (state === "unknown") missing.push(job);
    else if (state === "failed") {
      const open = unfinished(job).map((image) => image.id);
      const generation = Math.max(0, ...open.map((id) => byId.get(id)?.repairs ?? 0));
      const failed = await deps.queue.getJob(job.opts.jobId);
      if (generation < maxRepairs) {
        // Counted before the job runs again, so a crash between the two spends a repair rather than
        // running one uncounted; of two repairers that read the same generation, one counts and retries.
        if ((await countRepair(deps.db, open, generation)).length === 0) continue;
        if (failed) {
          await failed.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
          outcome.retried.push(job.opts.jobId);
        } else missing.push(job);
        continue;
      }
      const reason = failed
        ? `gave up after ${failed.attemptsMade} attempts: ${failed.failedReason ?? "no reason recorded"}`
        : "the job failed for good";
      outcome.abandoned += await recordAbandoned(deps.db, open, `${reason}${repairNote(generation)}`);
    }
    // Waiting, delayed, active: the job is alive. Completed with images left over cannot happen (a job only
    // completes once its results are committed) and re-running it would not change that.
  }
  await addJobs(deps.queue, missing, options.timeoutMs);
  outcome.requeued = missing.map((job) => job.opts.jobId);
  if (!batch.enqueuedAt) await markBatchEnqueued(deps.db, batch.id);
  return outcome;
}
