import { type SQL, sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import { HISTOGRAM_BINS } from "./schema/class-stats";

export type StatsBucket = "minute" | "hour" | "day";

export interface StatsQuery {
  /** Inclusive; compared with the minute bucket of each image's capture time. */
  from: Date;
  /** Exclusive. */
  to: Date;
  bucket: StatsBucket;
  site?: string | null;
  line?: string | null;
  /** Low-confidence threshold: ok results with confidence < threshold. Must be a multiple of 1/HISTOGRAM_BINS. */
  threshold: number;
}

export interface StatsResult {
  /** ok + failed results. */
  total: number;
  classified: number;
  failed: number;
  lowConfidence: number;
  threshold: number;
  /** share = count / classified. */
  classes: { label: string; count: number; share: number; lowConfidence: number }[];
  /** Buckets in UTC, ascending; only buckets with results. `counts` is per label, failures under `failed`. */
  series: { bucket: Date; total: number; failed: number; counts: Record<string, number> }[];
}

/** Number of histogram bins below a threshold; throws when the rollup cannot answer it exactly. */
export function thresholdBins(threshold: number): number {
  const bins = Math.round(threshold * HISTOGRAM_BINS);
  if (!(threshold >= 0 && threshold <= 1) || Math.abs(threshold * HISTOGRAM_BINS - bins) > 1e-9) {
    throw new RangeError(`threshold must be in [0, 1] and a multiple of ${1 / HISTOGRAM_BINS}`);
  }
  return bins;
}

export async function getStats(db: DbOrTx, query: StatsQuery): Promise<StatsResult> {
  const bins = thresholdBins(query.threshold);
  const filters: SQL[] = [
    sql`bucket >= ${query.from.toISOString()}`,
    sql`bucket < ${query.to.toISOString()}`,
  ];
  if (query.site != null) filters.push(sql`site = ${query.site}`);
  if (query.line != null) filters.push(sql`line = ${query.line}`);
  const where = sql.join(filters, sql` and `);

  const totals = await db.execute<{ label: string; count: string; low: string }>(sql`
    select label, sum(count)::bigint as count,
      sum((select coalesce(sum(x), 0) from unnest(histogram[1:${bins}]) as x))::bigint as low
    from class_stats where ${where}
    group by label having sum(count) <> 0 order by label`);
  const series = await db.execute<{ b: Date | string; label: string; count: string }>(sql`
    select date_trunc(${query.bucket}, bucket, 'UTC') as b, label, sum(count)::bigint as count
    from class_stats where ${where}
    group by 1, 2 having sum(count) <> 0 order by 1, 2`);

  let failed = 0;
  let lowConfidence = 0;
  const classes: StatsResult["classes"] = [];
  for (const row of totals.rows) {
    const count = Number(row.count);
    if (row.label === "") failed += count;
    else {
      classes.push({ label: row.label, count, share: 0, lowConfidence: Number(row.low) });
      lowConfidence += Number(row.low);
    }
  }
  const classified = classes.reduce((sum, c) => sum + c.count, 0);
  for (const c of classes) c.share = classified > 0 ? c.count / classified : 0;
  classes.sort((a, b) => b.count - a.count || (a.label < b.label ? -1 : 1));

  const byBucket = new Map<number, StatsResult["series"][number]>();
  for (const row of series.rows) {
    const bucket = new Date(row.b);
    let entry = byBucket.get(bucket.getTime());
    if (!entry) {
      entry = { bucket, total: 0, failed: 0, counts: {} };
      byBucket.set(bucket.getTime(), entry);
    }
    const count = Number(row.count);
    entry.total += count;
    if (row.label === "") entry.failed += count;
    else entry.counts[row.label] = count;
  }
  return {
    total: classified + failed,
    classified,
    failed,
    lowConfidence,
    threshold: bins / HISTOGRAM_BINS,
    classes,
    series: [...byBucket.values()],
  };
}
