import { type Db, listOpenBatches } from "@garbage/db";
import type { ClassifyQueue } from "@garbage/queue";
import type { ImageStore } from "@garbage/storage";
import { withAdvisoryLock } from "./advisory-lock";
import { removeOrphanUploads } from "./orphans";
import { repairBatch } from "./repair-batch";

// Arbitrary constant shared by every process that sweeps this schema (migrations use ...001).
export const SWEEP_LOCK = 7_305_112_002;

export interface SweepDeps {
  /** A pool handle, not a transaction: the lock needs a connection of its own. */
  db: Db;
  queue: ClassifyQueue;
  store: ImageStore;
}

export interface SweepOptions {
  /** Batches younger than this are left to the API request that is still enqueueing them. */
  minBatchAgeMs: number;
  /** See removeOrphanUploads. */
  orphanGraceMs: number;
  /** Oldest unfinished batches looked at per sweep. */
  maxBatches?: number;
  /** Stored objects examined per sweep; a large store is covered over several sweeps. */
  orphanPageSize?: number;
  /** The previous report's orphanCursor. */
  orphanCursor?: string;
  enqueueTimeoutMs?: number;
  /** See repairBatch; DEFAULT_MAX_REPAIRS when unset. */
  maxRepairs?: number;
}

export interface SweepReport {
  /** False when another process was sweeping; nothing else was done then. */
  ran: boolean;
  batches: number;
  requeuedJobs: number;
  /** Jobs that had failed for good, run again. */
  retriedJobs: number;
  abandonedImages: number;
  orphansRemoved: number;
  incompleteRemoved: number;
  orphanCursor: string | undefined;
}

/**
 * One reconciliation pass, run by at most one process at a time (a Postgres advisory lock): Postgres is the
 * source of truth, so every unfinished batch gets its lost jobs back (repairBatch) and uploads that no row
 * points at are removed (removeOrphanUploads). Safe to run at any moment and as often as wanted; every step
 * is idempotent. Throws when Redis or Postgres is unreachable; the next pass starts over.
 */
export async function runSweep(deps: SweepDeps, options: SweepOptions): Promise<SweepReport> {
  const report = await withAdvisoryLock(deps.db.$client, SWEEP_LOCK, async () => {
    const result: SweepReport = {
      ran: true,
      batches: 0,
      requeuedJobs: 0,
      retriedJobs: 0,
      abandonedImages: 0,
      orphansRemoved: 0,
      incompleteRemoved: 0,
      orphanCursor: undefined,
    };
    const open = await listOpenBatches(deps.db, {
      minAgeMs: options.minBatchAgeMs,
      limit: options.maxBatches ?? 500,
    });
    for (const batch of open) {
      const repaired = await repairBatch(deps, batch, {
        timeoutMs: options.enqueueTimeoutMs,
        maxRepairs: options.maxRepairs,
      });
      result.batches += 1;
      result.requeuedJobs += repaired.requeued.length;
      result.retriedJobs += repaired.retried.length;
      result.abandonedImages += repaired.abandoned;
    }
    const orphans = await removeOrphanUploads(deps, {
      graceMs: options.orphanGraceMs,
      after: options.orphanCursor,
      limit: options.orphanPageSize ?? 2_000,
    });
    result.orphansRemoved = orphans.removed.length;
    result.incompleteRemoved = orphans.incomplete;
    result.orphanCursor = orphans.next;
    return result;
  });
  return (
    report ?? {
      ran: false,
      batches: 0,
      requeuedJobs: 0,
      retriedJobs: 0,
      abandonedImages: 0,
      orphansRemoved: 0,
      incompleteRemoved: 0,
      orphanCursor: options.orphanCursor,
    }
  );
}
