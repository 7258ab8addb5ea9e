import { type DbOrTx, openImageRepairs, type ResultInput, recordResults } from "@garbage/db";

/**
 * Times the sweep runs a job again after it failed for good, before its images are recorded as failed. A
 * job's own retries (5 attempts, 1-8 s apart) cover short faults; these cover a fault that outlasts them
 * (Postgres down for a minute), one sweep interval apart, while a poison image still ends.
 */
export const DEFAULT_MAX_REPAIRS = 3;

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

export interface SettleOutcome {
  /** Images recorded as failed now: their repairs were used up. */
  recorded: number;
  /** Images left without a result for the sweep to run again. */
  left: number;
  /** The highest repair count among the open images. */
  repairs: number;
}

/**
 * What the worker does when a job fails for good: its open images whose repairs are used up get their final
 * failed result; the others are left to the sweep (repairBatch), which runs the job again and counts a repair.
 */
export async function settleFailedJob(
  db: DbOrTx,
  imageIds: readonly string[],
  options: { maxRepairs: number; reason: string },
): Promise<SettleOutcome> {
  const open = await openImageRepairs(db, imageIds);
  const spent = [...open].filter(([, repairs]) => repairs >= options.maxRepairs).map(([id]) => id);
  const repairs = Math.max(0, ...open.values());
  const recorded = await recordAbandoned(db, spent, `${options.reason}${repairNote(repairs)}`);
  return { recorded, left: open.size - spent.length, repairs };
}

export const repairNote = (repairs: number) =>
  repairs > 0 ? ` (after ${repairs} repairs by the sweep)` : "";
