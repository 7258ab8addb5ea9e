import { randomUUID } from "node:crypto";
import {
  type Batch,
  createBatch,
  deleteBatch,
  getBatchByIdempotencyKey,
  markBatchEnqueued,
} from "@garbage/db";
import { enqueueBatch } from "@garbage/queue";
import { repairBatch } from "@garbage/recovery";
import { z } from "@hono/zod-openapi";
import { ApiError, validationError } from "./errors";
import type { FilenameNote } from "./filename";
import { assertMaySubmit, type Principal } from "./principal";
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
    // One capture time per `images` part, in upload order (JSON array; null: the batch's): a camera agent
    // sends many photos in one batch, each taken at its own time (the statistics bucket by it).
    imageCapturedAt: z
      .string()
      .transform((s, ctx) => {
        try {
          return JSON.parse(s) as unknown;
        } catch {
          ctx.addIssue({ code: "custom", message: "must be a JSON array" });
          return z.NEVER;
        }
      })
      .pipe(z.array(z.iso.datetime({ offset: true }).nullable()).max(100_000))
      .optional(),
  })
  .strict();

/** JSON field values are longer than a name: imageCapturedAt holds a timestamp per image (MAX_FILES). */
const FIELD_BYTES = 64 * 1024;

export interface Submission {
  batch: Batch;
  replayed: boolean;
  /** Filenames stored other than sent (a replay reads no body, so has none). */
  warnings?: FilenameNote[];
}

/**
 * POST /v1/batches: answers only once every image is stored, the batch committed and its jobs enqueued.
 * A failure at any step removes what earlier steps wrote, so a client that sees an error can simply retry.
 */
export async function submitBatch(
  deps: RouteDeps,
  req: Request,
  principal: Principal,
  idempotencyKey?: string,
): Promise<Submission> {
  const { db, store, metrics } = deps;
  if (idempotencyKey) {
    // Checked before reading the body so a retried upload stores nothing a second time. Keys are per
    // principal: another API key's Idempotency-Key never answers with its batch.
    const existing = await getBatchByIdempotencyKey(db, principal.id, idempotencyKey);
    if (existing) {
      // The key's sites may have shrunk since (API_KEYS edited); it must not keep reaching the old batch.
      assertMaySubmit(principal, existing.site);
      return { batch: await ensureEnqueued(deps, existing), replayed: true };
    }
  }

  const batchId = randomUUID();
  const upload = await receiveUpload(req, {
    store,
    limits: deps.config.limits,
    batchId,
    idle: deps.config.uploadIdle,
    fieldSize: FIELD_BYTES,
  });
  const cleanup = () => Promise.allSettled(upload.storedKeys.map((key) => store.delete(key)));

  const meta = MetadataSchema.safeParse(upload.fields);
  if (!meta.success) {
    await cleanup();
    throw validationError(meta.error);
  }
  const { capturedAt, imageCapturedAt, ...labels } = meta.data;
  try {
    assertMaySubmit(principal, labels.site);
    if (imageCapturedAt && imageCapturedAt.length !== upload.images.length) {
      throw new ApiError(
        400,
        "validation_error",
        `imageCapturedAt has ${imageCapturedAt.length} entries for ${upload.images.length} images`,
      );
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  const images = upload.images.map((image, i) => {
    const at = imageCapturedAt?.[i];
    return at ? { ...image, capturedAt: new Date(at) } : image;
  });

  let created: Awaited<ReturnType<typeof createBatch>>;
  try {
    created = await createBatch(db, {
      id: batchId,
      principal: principal.id,
      idempotencyKey: idempotencyKey ?? null,
      ...labels,
      capturedAt: capturedAt ? new Date(capturedAt) : null,
      chunkSize: deps.config.chunkSize,
      images,
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
    await deleteBatch(db, batchId).catch((err) =>
      deps.logger.error({ err, batchId }, "compensating batch delete failed"),
    );
    await cleanup();
    throw new ApiError(503, "queue_unavailable", `could not enqueue the batch: ${(err as Error).message}`);
  }
  await markBatchEnqueued(db, batchId).catch((err) =>
    deps.logger.error({ err, batchId }, "marking batch enqueued failed"),
  );

  const rejected = upload.images.length - queued.length;
  metrics.imagesAccepted.inc({ outcome: "queued" }, queued.length);
  if (rejected > 0) metrics.imagesAccepted.inc({ outcome: "rejected" }, rejected);
  metrics.uploadBytes.inc(upload.images.reduce((sum, image) => sum + (image.rejected ? 0 : image.bytes), 0));
  metrics.batchSize.observe(upload.images.length);
  return { batch: created.batch, replayed: false, warnings: upload.filenameNotes };
}

function enqueueOptions(deps: RouteDeps) {
  return { chunkSize: deps.config.chunkSize, timeoutMs: deps.config.enqueueTimeoutMs };
}

/**
 * A replay gets the first batch back, and the batch gets its jobs back: the first request may not have
 * finished enqueueing, or Redis may have lost the jobs since (repairBatch re-adds exactly the missing ones,
 * same ids). A batch that was enqueued once is answered even when Redis is down now; the worker's sweep
 * repairs it later.
 */
async function ensureEnqueued(deps: RouteDeps, batch: Batch): Promise<Batch> {
  if (batch.completedAt) return batch;
  try {
    const repaired = await repairBatch({ db: deps.db, queue: deps.queue }, batch, {
      timeoutMs: deps.config.enqueueTimeoutMs,
    });
    if (repaired.requeued.length + repaired.retried.length + repaired.abandoned > 0) {
      deps.logger.info(
        {
          batchId: batch.id,
          requeuedJobs: repaired.requeued.length,
          retriedJobs: repaired.retried.length,
          abandonedImages: repaired.abandoned,
        },
        "resubmission repaired its batch",
      );
    }
  } catch (err) {
    if (batch.enqueuedAt) {
      deps.logger.error({ err, batchId: batch.id }, "could not repair a resubmitted batch; the sweep will");
      return batch;
    }
    throw new ApiError(503, "queue_unavailable", `could not enqueue the batch: ${(err as Error).message}`);
  }
  return batch;
}
