import { type DbOrTx, type ResultInput, recordResults } from "@garbage/db";

/**
 * The final write for images whose job failed for good: a failed result (`worker_error`) each, so their batch
 * still completes. recordResults only inserts images that have no result yet, so the worker and the sweep
 * may both make this write, or one of them twice, without counting anything twice. Returns the rows inserted.
 */
export async function recordAbandoned(
  db: DbOrTx,
  imageIds: readonly string[],
  reason: string,
): Promise<number> {
  const rows = imageIds.map(
    (imageId): ResultInput => ({
      imageId,
      status: "failed",
      errorCode: "worker_error",
      errorMessage: reason.slice(0, 1_000),
    }),
  );
  return (await recordResults(db, rows)).inserted;
}
