import { bigint, index, integer, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

/** Width of one confidence histogram bin; thresholds are exact on multiples of it. */
export const HISTOGRAM_BINS = 20;

/**
 * Per-minute rollup of results, maintained by recordResults from the rows it actually inserted, so stats
 * queries read O(minutes x sites x lines x labels) rows instead of scanning tens of millions of results.
 *
 * Labels are effective labels: a reviewed image counts under its review's label.
 *
 * site/line use '' for "unknown" because they are part of the primary key. label '' counts failed results.
 * `histogram[i]` counts ok results with confidence in [i/20, (i+1)/20) (the last bin includes 1.0): any
 * low-confidence threshold that is a multiple of 0.05 can be answered exactly, at 20 ints per row.
 */
export const classStats = pgTable(
  "class_stats",
  {
    bucket: timestamp("bucket", { withTimezone: true }).notNull(),
    site: text("site").notNull().default(""),
    line: text("line").notNull().default(""),
    label: text("label").notNull(),
    count: bigint("count", { mode: "number" }).notNull().default(0),
    histogram: integer("histogram").array().notNull(),
    /** ok results the model flagged for review; like count, only ever moved by rows actually inserted. */
    reviewCount: bigint("review_count", { mode: "number" }).notNull().default(0),
    /**
     * Results a person reviewed, and those whose label the person changed. Rows are keyed by the effective
     * label (the review's, else the model's): a review moves its image between labels, see reviews.ts.
     */
    reviewedCount: bigint("reviewed_count", { mode: "number" }).notNull().default(0),
    changedCount: bigint("changed_count", { mode: "number" }).notNull().default(0),
  },
  (t) => [
    primaryKey({ name: "class_stats_pkey", columns: [t.bucket, t.site, t.line, t.label] }),
    index("class_stats_site_line_bucket_idx").on(t.site, t.line, t.bucket),
  ],
);
