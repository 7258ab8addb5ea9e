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
  /** Only these sites (the caller's scope); null or absent: every site. */
  sites?: readonly string[] | null;
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
  /** ok results the model flagged for review (its own thresholds, not `threshold`). */
  needsReview: number;
  /** needsReview / classified; 0 when nothing was classified. */
  reviewRate: number;
  /** share = count / classified, reviewRate = needsReview / count. */
  classes: {
    label: string;
    count: number;
    share: number;
    lowConfidence: number;
    needsReview: number;
    reviewRate: number;
  }[];
  /**
   * Buckets in UTC, ascending; only buckets with results. `counts` is per label, failures under `failed`;
   * reviewRate = needsReview / (total - failed).
   */
  series: {
    bucket: Date;
    total: number;
    failed: number;
    counts: Record<string, number>;
    needsReview: number;
    reviewRate: number;
  }[];
}

const rate = (part: number, whole: number) => (whole > 0 ? part / whole : 0);

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
  if (query.sites != null) {
    // An empty scope matches nothing rather than producing `in ()`.
    const list =
      query.sites.length > 0
        ? sql.join(
            query.sites.map((s) => sql`${s}`),
            sql`, `,
          )
        : sql`null`;
    filters.push(sql`site in (${list})`);
  }
  if (query.line != null) filters.push(sql`line = ${query.line}`);
  const where = sql.join(filters, sql` and `);

  const totals = await db.execute<{ label: string; count: string; low: string; review: string }>(sql`
    select label, sum(count)::bigint as count, sum(review_count)::bigint as review,
      sum((select coalesce(sum(x), 0) from unnest(histogram[1:${bins}]) as x))::bigint as low
    from class_stats where ${where}
    group by label having sum(count) <> 0 order by label`);
  const series = await db.execute<{ b: Date | string; label: string; count: string; review: string }>(sql`
    select date_trunc(${query.bucket}, bucket, 'UTC') as b, label, sum(count)::bigint as count,
      sum(review_count)::bigint as review
    from class_stats where ${where}
    group by 1, 2 having sum(count) <> 0 order by 1, 2`);

  let failed = 0;
  let lowConfidence = 0;
  let needsReview = 0;
  const classes: StatsResult["classes"] = [];
  for (const row of totals.rows) {
    const count = Number(row.count);
    if (row.label === "") failed += count;
    else {
      const review = Number(row.review);
      classes.push({
        label: row.label,
        count,
        share: 0,
        lowConfidence: Number(row.low),
        needsReview: review,
        reviewRate: rate(review, count),
      });
      lowConfidence += Number(row.low);
      needsReview += review;
    }
  }
  const classified = classes.reduce((sum, c) => sum + c.count, 0);
  for (const c of classes) c.share = rate(c.count, classified);
  classes.sort((a, b) => b.count - a.count || (a.label < b.label ? -1 : 1));

  const byBucket = new Map<number, StatsResult["series"][number]>();
  for (const row of series.rows) {
    const bucket = new Date(row.b);
    let entry = byBucket.get(bucket.getTime());
    if (!entry) {
      entry = { bucket, total: 0, failed: 0, counts: {}, needsReview: 0, reviewRate: 0 };
      byBucket.set(bucket.getTime(), entry);
    }
    const count = Number(row.count);
    entry.total += count;
    if (row.label === "") entry.failed += count;
    else entry.counts[row.label] = count;
    entry.needsReview += Number(row.review);
  }
  for (const entry of byBucket.values())
    entry.reviewRate = rate(entry.needsReview, entry.total - entry.failed);
  return {
    total: classified + failed,
    classified,
    failed,
    lowConfidence,
    threshold: bins / HISTOGRAM_BINS,
    needsReview,
    reviewRate: rate(needsReview, classified),
    classes,
    series: [...byBucket.values()],
  };
}
