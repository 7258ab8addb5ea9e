import {
  bigint,
  boolean,
  doublePrecision,
  index,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from "drizzle-orm/pg-core";

/**
 * Per-minute rollup of ok results for the audit estimates (@garbage/stats estimateQuality): counts per review
 * flag, audit rate and pick, the model's label and the label a person gave ('' while nobody has). Kept like
 * class_stats by recordResults (rows actually inserted), writeReview (moves an image between truths) and
 * deleteBatch, so /v1/stats reads O(minutes x strata x labels) rows, not every result in its range.
 */
export const qualityStats = pgTable(
  "quality_stats",
  {
    bucket: timestamp("bucket", { withTimezone: true }).notNull(),
    site: text("site").notNull().default(""),
    line: text("line").notNull().default(""),
    flagged: boolean("flagged").notNull(),
    /** AUDIT_RATE when the results were recorded; a stratum of its own, so a change cannot bias estimates. */
    auditRate: doublePrecision("audit_rate").notNull(),
    audit: boolean("audit").notNull(),
    predicted: text("predicted").notNull(),
    truth: text("truth").notNull().default(""),
    count: bigint("count", { mode: "number" }).notNull().default(0),
  },
  (t) => [
    primaryKey({
      name: "quality_stats_pkey",
      columns: [t.bucket, t.site, t.line, t.flagged, t.auditRate, t.audit, t.predicted, t.truth],
    }),
    index("quality_stats_site_line_bucket_idx").on(t.site, t.line, t.bucket),
  ],
);
