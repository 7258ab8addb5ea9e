/**
 * @garbage/recovery: Postgres is the source of truth; this puts Redis and storage back in line with it.
 *
 * - `repairBatch`: re-adds the jobs of a batch that Redis lost (same chunking and job ids as the API), runs a
 *   job that failed for good again (a bounded number of repairs, counted in Postgres) and then makes its
 *   final failed write. Used by the sweep and by an idempotent resubmit.
 * - `removeOrphanUploads`: deletes stored uploads that no image row points at, after a grace period.
 * - `runSweep`: both, for every unfinished batch, under a Postgres advisory lock so one process sweeps at a
 *   time. The worker runs it at start and periodically (SWEEP_INTERVAL_MS).
 * - `recordAbandoned`, `settleFailedJob`: the final "failed" write for images whose job gave up for good.
 * - `redisLossDetector`: notices that Redis lost its data (new run id, marker key gone), so the worker's
 *   sweeper runs a pass at once instead of at its next interval.
 */

export { DEFAULT_MAX_REPAIRS, recordAbandoned, type SettleOutcome, settleFailedJob } from "./abandon";
export { withAdvisoryLock } from "./advisory-lock";
export { type OrphanOptions, type OrphanOutcome, removeOrphanUploads } from "./orphans";
export { redisLossDetector, redisMarkerKey } from "./redis-loss";
export { type RepairDeps, type RepairOptions, type RepairOutcome, repairBatch } from "./repair-batch";
export { runSweep, SWEEP_LOCK, type SweepDeps, type SweepOptions, type SweepReport } from "./sweep";
