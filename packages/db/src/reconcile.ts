import { and, asc, eq, inArray, isNotNull, isNull, lt, lte, or, sql } from "drizzle-orm";
import type { Batch } from "./batches";
import type { DbOrTx } from "./client";
import { batches } from "./schema/batches";
import { images } from "./schema/images";
import { results } from "./schema/results";

/** What recovery needs of a batch to rebuild its queue jobs. */
export type OpenBatch = Pick<Batch, "id" | "chunkSize" | "createdAt" | "enqueuedAt">;

export interface QueuedImage {
  id: string;
  index: number;
  storageKey: string;
  /** The image already has a result (ok or failed). */
  recorded: boolean;
  /** Times the sweep re-ran its job after the job failed for good. */
  repairs: number;
}

/**
 * Unfinished batches, oldest first; `batches_open_idx` serves it. A batch the API has not marked enqueued yet
 * is left alone until it is `minAgeMs` old (its request may still be adding its jobs); one it has marked is
 * listed at once, so jobs Redis lost are re-added without waiting out that age. Age is measured on the
 * database's clock, the one that stamped created_at, so a sweeper on a host whose clock is off is not fooled.
 */
export async function listOpenBatches(
  db: DbOrTx,
  options: { minAgeMs: number; limit: number },
): Promise<OpenBatch[]> {
  return db
    .select({
      id: batches.id,
      chunkSize: batches.chunkSize,
      createdAt: batches.createdAt,
      enqueuedAt: batches.enqueuedAt,
    })
    .from(batches)
    .where(
      and(
        isNull(batches.completedAt),
        or(
          isNotNull(batches.enqueuedAt),
          lt(batches.createdAt, sql`now() - ${options.minAgeMs}::int * interval '1 millisecond'`),
        ),
      ),
    )
    .orderBy(asc(batches.createdAt))
    .limit(options.limit);
}

/**
 * The batch's images that went to the queue, in upload order (the order the API chunked them in, so position
 * `i` is in job chunk `floor(i / chunkSize)`), each with whether it has a result yet.
 */
export async function listQueuedImages(db: DbOrTx, batchId: string): Promise<QueuedImage[]> {
  const rows = await db
    .select({
      id: images.id,
      index: images.index,
      storageKey: images.storageKey,
      repairs: images.repairs,
      resultId: results.imageId,
    })
    .from(images)
    .leftJoin(results, eq(results.imageId, images.id))
    .where(and(eq(images.batchId, batchId), isNotNull(images.storageKey)))
    .orderBy(asc(images.index));
  return rows.map((r) => ({
    id: r.id,
    index: r.index,
    storageKey: r.storageKey as string,
    recorded: r.resultId !== null,
    repairs: r.repairs,
  }));
}

/** Storage keys that the given image rows point at (absent ids have no row, e.g. an upload that never committed). */
export async function storageKeysOf(
  db: DbOrTx,
  imageIds: readonly string[],
): Promise<Map<string, string | null>> {
  if (imageIds.length === 0) return new Map();
  const rows = await db
    .select({ id: images.id, storageKey: images.storageKey })
    .from(images)
    .where(inArray(images.id, [...imageIds]));
  return new Map(rows.map((r) => [r.id, r.storageKey]));
}

/**
 * Raises the repair count of the given images to `generation + 1`, but only of those not past `generation`:
 * of two callers that read the same generation (the sweep and a resubmission), one wins. Returns the ids
 * counted.
 */
export async function countRepair(
  db: DbOrTx,
  imageIds: readonly string[],
  generation: number,
): Promise<string[]> {
  if (imageIds.length === 0) return [];
  const rows = await db
    .update(images)
    .set({ repairs: generation + 1 })
    .where(and(inArray(images.id, [...imageIds]), lte(images.repairs, generation)))
    .returning({ id: images.id });
  return rows.map((r) => r.id);
}

/** The repair counts of the given images that have no result yet (the ones a failed job left open). */
export async function openImageRepairs(
  db: DbOrTx,
  imageIds: readonly string[],
): Promise<Map<string, number>> {
  if (imageIds.length === 0) return new Map();
  const rows = await db
    .select({ id: images.id, repairs: images.repairs })
    .from(images)
    .leftJoin(results, eq(results.imageId, images.id))
    .where(and(inArray(images.id, [...imageIds]), isNull(results.imageId)));
  return new Map(rows.map((r) => [r.id, r.repairs]));
}
