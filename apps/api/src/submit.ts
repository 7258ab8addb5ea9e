import { randomUUID } from "node:crypto";
import {
  type Batch,
  createBatch,
  deleteBatch,
  getBatchByIdempotencyKey,
  listQueueableImages,
  markBatchEnqueued,
} from "@garbage/db";
import { enqueueBatch } from "@garbage/queue";
import { z } from "@hono/zod-openapi";
import { ApiError } from "./errors";
import { plainText } from "./text";
import type { RouteDeps } from "./types";
import { receiveUpload } from "./upload";

const text = z.string().trim().min(1).pipe(plainText());
export const MetadataSchema = z
  .object({
    site: text.optional(),
    line: text.optional(),
    camera: text.optional(),
    capturedAt: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

export interface Submission {
  batch: Batch;
  replayed: boolean;
}

/**
 * POST /v1/batches: answers only once every image is stored, the batch committed and its jobs enqueued.
 * A failure at any step removes what earlier steps wrote, so a client that sees an error can simply retry.
 */
export async function submitBatch(
  deps: RouteDeps,
  req: Request,
  idempotencyKey?: string,
): Promise<Submission> {
  const { db, store, metrics } = deps;
  if (idempotencyKey) {
    // Checked before reading the body so a retried upload stores nothing a second time.
    const existing = await getBatchByIdempotencyKey(db, idempotencyKey);
    if (existing) return { batch: await ensureEnqueued(deps, existing), replayed: true };
  }

  const batchId = randomUUID();
  const upload = await receiveUpload(req, { store, limits: deps.config.limits, batchId });
  const cleanup = () => Promise.allSettled(upload.storedKeys.map((key) => store.delete(key)));

  const meta = MetadataSchema.safeParse(upload.fields);
  if (!meta.success) {
    await cleanup();
    const issues = meta.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
    throw new ApiError(
      400,
      "validation_error",
      issues.map((i) => `${i.path}: ${i.message}`).join("; "),
      issues,
    );
  }
  const { capturedAt, ...labels } = meta.data;

  let created: Awaited<ReturnType<typeof createBatch>>;
  try {
    created = await createBatch(db, {
      id: batchId,
      idempotencyKey: idempotencyKey ?? null,
      ...labels,
      capturedAt: capturedAt ? new Date(capturedAt) : null,
      images: upload.images,
    });
  } catch (err) {
    await cleanup();
    throw err;
  }
  if (!created.created) {
    // Lost a race with a concurrent submission under the same key: keep theirs, drop our copy.
    await cleanup();
    return { batch: await ensureEnqueued(deps, created.batch), replayed: true };
  }

  const queued = created.images.map((image) => ({ id: image.id, key: image.storageKey as string }));
  try {
    await enqueueBatch(deps.queue, batchId, queued, enqueueOptions(deps));
  } catch (err) {
    // Jobs already added for this batch find no images and are skipped by the worker (recordResults).
    await deleteBatch(db, batchId).catch((e) => deps.logger.error("compensating batch delete failed", e));
    await cleanup();
    throw new ApiError(503, "queue_unavailable", `could not enqueue the batch: ${(err as Error).message}`);
  }
  await markBatchEnqueued(db, batchId).catch((e) => deps.logger.error("marking batch enqueued failed", e));

  const rejected = upload.images.length - queued.length;
  metrics.imagesAccepted.inc({ outcome: "queued" }, queued.length);
  if (rejected > 0) metrics.imagesAccepted.inc({ outcome: "rejected" }, rejected);
  metrics.uploadBytes.inc(upload.images.reduce((sum, image) => sum + (image.rejected ? 0 : image.bytes), 0));
  metrics.batchSize.observe(upload.images.length);
  return { batch: created.batch, replayed: false };
}

function enqueueOptions(deps: RouteDeps) {
  return { chunkSize: deps.config.chunkSize, timeoutMs: deps.config.enqueueTimeoutMs };
}

/** A replay may arrive before the first request finished enqueueing: re-enqueueing is idempotent by job id. */
async function ensureEnqueued(deps: RouteDeps, batch: Batch): Promise<Batch> {
  if (batch.enqueuedAt) return batch;
  const images = await listQueueableImages(deps.db, batch.id);
  try {
    await enqueueBatch(
      deps.queue,
      batch.id,
      images.map((image) => ({ id: image.id, key: image.storageKey as string })),
      enqueueOptions(deps),
    );
  } catch (err) {
    throw new ApiError(503, "queue_unavailable", `could not enqueue the batch: ${(err as Error).message}`);
  }
  await markBatchEnqueued(deps.db, batch.id);
  return batch;
}
