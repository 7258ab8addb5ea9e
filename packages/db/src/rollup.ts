import { sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import { HISTOGRAM_BINS } from "./schema/class-stats";
import type { ResultStatus } from "./schema/results";

/** What the rollup needs of one result. */
export interface RollupRow {
  status: ResultStatus;
  /** The effective label: the review's when the image was reviewed, else the model's. */
  label: string | null;
  confidence: number | null;
  needs_review: boolean;
  site: string | null;
  line: string | null;
  bucket: Date | string;
  /** A person reviewed it; `changed`: and picked another label than the model. */
  reviewed?: boolean | null;
  changed?: boolean | null;
  /** Overrides the call's sign for this row, so one statement can move an image between labels. */
  sign?: 1 | -1;
}

export function histogramBin(confidence: number): number {
  return Math.max(0, Math.min(HISTOGRAM_BINS - 1, Math.floor(confidence * HISTOGRAM_BINS)));
}

/**
 * Adds (sign 1) or removes (sign -1) results from class_stats in one statement, keys in sorted order so
 * concurrent writers lock rows in the same order and cannot deadlock.
 */
export async function updateRollup(
  tx: DbOrTx,
  written: readonly RollupRow[],
  sign: 1 | -1 = 1,
): Promise<void> {
  const groups = new Map<
    string,
    {
      bucket: string;
      site: string;
      line: string;
      label: string;
      count: number;
      review: number;
      reviewed: number;
      changed: number;
      histogram: number[];
    }
  >();
  for (const row of written) {
    const bucket = new Date(row.bucket).toISOString();
    const label = row.status === "ok" ? (row.label ?? "") : "";
    const site = row.site ?? "";
    const line = row.line ?? "";
    const key = JSON.stringify([bucket, site, line, label]);
    let g = groups.get(key);
    if (!g) {
      g = {
        bucket,
        site,
        line,
        label,
        count: 0,
        review: 0,
        reviewed: 0,
        changed: 0,
        histogram: new Array(HISTOGRAM_BINS).fill(0),
      };
      groups.set(key, g);
    }
    const s = row.sign ?? sign;
    g.count += s;
    if (row.needs_review) g.review += s;
    if (row.reviewed) g.reviewed += s;
    if (row.changed) g.changed += s;
    if (row.status === "ok" && row.confidence != null) {
      const bin = histogramBin(row.confidence);
      g.histogram[bin] = (g.histogram[bin] ?? 0) + s;
    }
  }
  const sorted = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
  await tx.execute(sql`
    insert into class_stats (bucket, site, line, label, count, review_count, reviewed_count, changed_count,
      histogram)
    select s.bucket, s.site, s.line, s.label, s.count, s.review, s.reviewed, s.changed, s.histogram
    from rows from (jsonb_to_recordset(${JSON.stringify(sorted)}::jsonb)
      as (bucket timestamptz, site text, line text, label text, count bigint, review bigint, reviewed bigint,
        changed bigint, histogram int[])
    ) with ordinality as s(bucket, site, line, label, count, review, reviewed, changed, histogram, ord)
    order by s.ord
    on conflict (bucket, site, line, label) do update set
      count = class_stats.count + excluded.count,
      review_count = class_stats.review_count + excluded.review_count,
      reviewed_count = class_stats.reviewed_count + excluded.reviewed_count,
      changed_count = class_stats.changed_count + excluded.changed_count,
      histogram = (
        select array_agg(coalesce(a, 0) + coalesce(b, 0) order by n)
        from unnest(class_stats.histogram, excluded.histogram) with ordinality as h(a, b, n)
      )`);
}
