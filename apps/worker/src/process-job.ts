import { batches, type DbOrTx, results } from "@garbage/db";
import type { ClassifyJob } from "@garbage/queue";
import { type SettleOutcome, settleFailedJob } from "@garbage/recovery";
import { type ImageStore, StorageError } from "@garbage/storage";
import { type Job, UnrecoverableError } from "bullmq";
import { eq, inArray } from "drizzle-orm";
import { z } from "zod";
import type { BatchItem } from "./classify-batch";

const jobSchema = z.object({
  batchId: z.guid(),
  images: z
    .array(z.object({ id: z.guid(), key: z.string().min(1), enqueuedAt: z.number().optional() }))
    .min(1),
});

export interface JobDeps {
  db: DbOrTx;
  store: Pick<ImageStore, "get">;
  /** Hands one image to the micro-batcher; resolves once its result is committed. */
  submit: (item: BatchItem) => Promise<void>;
}

export interface JobSummary {
  images: number;
  /** Images that already had a result (a retry or a re-delivery after a crash) and were not redone. */
  skipped: number;
}

/**
 * The BullMQ processor for one chunk of a batch. Resolves once every image of the chunk has a committed
 * result; throws (so BullMQ retries with backoff) on transient failures: storage or database errors, a lost
 * inference thread. Problems of an image itself (undecodable, missing object) are results, not throws.
 */
export async function processClassifyJob(job: Job<ClassifyJob>, deps: JobDeps): Promise<JobSummary> {
  const parsed = jobSchema.safeParse(job.data);
  // A malformed payload will never become valid: fail the job at once instead of burning retries.
  if (!parsed.success)
    throw new UnrecoverableError(`invalid classify job ${job.id}: ${parsed.error.message}`);
  const { batchId, images } = parsed.data;
  const startedAt = job.processedOn ?? Date.now();

  // Cheap insurance against redoing inference after a crash or retry; correctness does not depend on it
  // (recordResults is idempotent), only wasted CPU does.
  const done = await recordedImageIds(
    deps.db,
    images.map((img) => img.id),
  );
  const todo = images.filter((img) => !done.has(img.id));
  // The site picks the model version (and review thresholds) for every image of the job.
  const site = todo.length > 0 ? await batchSite(deps.db, batchId) : null;

  const items = await Promise.all(
    todo.map(
      async (image): Promise<BatchItem> => ({
        batchId,
        image,
        startedAt,
        site,
        source: await fetchSource(deps.store, image.key),
      }),
    ),
  );
  const settled = await Promise.allSettled(items.map((item) => deps.submit(item)));
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failure) throw failure.reason;
  return { images: images.length, skipped: images.length - todo.length };
}

async function fetchSource(store: Pick<ImageStore, "get">, key: string): Promise<BatchItem["source"]> {
  try {
    return { bytes: await store.get(key) };
  } catch (err) {
    // Permanent: retrying cannot make the object appear, so record it as failed and let the batch complete.
    if (err instanceof StorageError && err.code === "not_found") {
      return { error: { code: "missing", message: `image ${key} is not in storage` } };
    }
    if (err instanceof StorageError && err.code === "invalid_key") {
      return { error: { code: "invalid_key", message: err.message } };
    }
    throw err;
  }
}

async function batchSite(db: DbOrTx, batchId: string): Promise<string | null> {
  const [row] = await db.select({ site: batches.site }).from(batches).where(eq(batches.id, batchId));
  return row?.site ?? null;
}

async function recordedImageIds(db: DbOrTx, ids: string[]): Promise<Set<string>> {
  const rows = await db.select({ id: results.imageId }).from(results).where(inArray(results.imageId, ids));
  return new Set(rows.map((r) => r.id));
}

/**
 * Called when a job has failed for good (attempts exhausted, or unrecoverable): its images that still have no
 * result and whose repairs are used up are recorded as failed with the last error, so the batch reaches a
 * final state instead of staying "processing" forever; the others are left to the sweep, which runs the job
 * again. Throws when the database is down; the caller retries it, and the sweep makes the same write for a
 * job whose worker died first.
 */
export async function recordAbandonedJob(
  db: DbOrTx,
  job: Job<ClassifyJob>,
  reason: string,
  maxRepairs: number,
): Promise<SettleOutcome> {
  const parsed = jobSchema.safeParse(job.data);
  // A payload that is not a job names no images of ours: nothing to record.
  if (!parsed.success) return { recorded: 0, left: 0, repairs: 0 };
  return settleFailedJob(
    db,
    parsed.data.images.map((img) => img.id),
    { maxRepairs, reason: `gave up after ${job.attemptsMade} attempts: ${reason}` },
  );
}
