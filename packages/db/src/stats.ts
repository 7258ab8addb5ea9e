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
  /** ok results a person reviewed, and those whose label the person changed. */
  reviewed: number;
  changed: number;
  /** changed / reviewed: how often reviewers disagreed with the model; null when nothing was reviewed. */
  changedRate: number | null;
  /**
   * Per effective label (the review's where there is one): share = count / classified, reviewRate =
   * needsReview / count; reviewed and changed count the reviews that ended on this label.
   */
  classes: {
    label: string;
    count: number;
    share: number;
    lowConfidence: number;
    needsReview: number;
    reviewRate: number;
    reviewed: number;
    changed: number;
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
    reviewed: number;
    changed: number;
    changedRate: number | null;
  }[];
  /** One row per bucket and label (failures under label ''), for exports such as CSV. */
  cells: {
    bucket: Date;
    label: string;
    count: number;
    needsReview: number;
    reviewed: number;
    changed: number;
  }[];
}

const rate = (part: number, whole: number) => (whole > 0 ? part / whole : 0);
const orNull = (part: number, whole: number) => (whole > 0 ? part / whole : null);

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

  type Sums = { count: string; review: string; reviewed: string; changed: string };
  const totals = await db.execute<Sums & { label: string; low: string }>(sql`
    select label, sum(count)::bigint as count, sum(review_count)::bigint as review,
      sum(reviewed_count)::bigint as reviewed, sum(changed_count)::bigint as changed,
      sum((select coalesce(sum(x), 0) from unnest(histogram[1:${bins}]) as x))::bigint as low
    from class_stats where ${where}
    group by label having sum(count) <> 0 order by label`);
  const series = await db.execute<Sums & { b: Date | string; label: string }>(sql`
    select date_trunc(${query.bucket}, bucket, 'UTC') as b, label, sum(count)::bigint as count,
      sum(review_count)::bigint as review, sum(reviewed_count)::bigint as reviewed,
      sum(changed_count)::bigint as changed
    from class_stats where ${where}
    group by 1, 2 having sum(count) <> 0 order by 1, 2`);

  let failed = 0;
  let lowConfidence = 0;
  let needsReview = 0;
  let reviewed = 0;
  let changed = 0;
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
        reviewed: Number(row.reviewed),
        changed: Number(row.changed),
      });
      lowConfidence += Number(row.low);
      needsReview += review;
      reviewed += Number(row.reviewed);
      changed += Number(row.changed);
    }
  }
  const classified = classes.reduce((sum, c) => sum + c.count, 0);
  for (const c of classes) c.share = rate(c.count, classified);
  classes.sort((a, b) => b.count - a.count || (a.label < b.label ? -1 : 1));

  const byBucket = new Map<number, StatsResult["series"][number]>();
  const cells: StatsResult["cells"] = [];
  for (const row of series.rows) {
    const bucket = new Date(row.b);
    let entry = byBucket.get(bucket.getTime());
    if (!entry) {
      entry = {
        bucket,
        total: 0,
        failed: 0,
        counts: {},
        needsReview: 0,
        reviewRate: 0,
        reviewed: 0,
        changed: 0,
        changedRate: null,
      };
      byBucket.set(bucket.getTime(), entry);
    }
    const cell = {
      bucket,
      label: row.label,
      count: Number(row.count),
      needsReview: Number(row.review),
      reviewed: Number(row.reviewed),
      changed: Number(row.changed),
    };
    cells.push(cell);
    entry.total += cell.count;
    if (row.label === "") entry.failed += cell.count;
    else entry.counts[row.label] = cell.count;
    entry.needsReview += cell.needsReview;
    entry.reviewed += cell.reviewed;
    entry.changed += cell.changed;
  }
  for (const entry of byBucket.values()) {
    entry.reviewRate = rate(entry.needsReview, entry.total - entry.failed);
    entry.changedRate = orNull(entry.changed, entry.reviewed);
  }
  return {
    total: classified + failed,
    classified,
    failed,
    lowConfidence,
    threshold: bins / HISTOGRAM_BINS,
    needsReview,
    reviewRate: rate(needsReview, classified),
    reviewed,
    changed,
    changedRate: orNull(changed, reviewed),
    classes,
    series: [...byBucket.values()],
    cells,
  };
}
