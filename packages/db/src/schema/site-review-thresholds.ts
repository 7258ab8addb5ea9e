import { doublePrecision, integer, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

/**
 * Review thresholds fitted on one site's reviewed images for one model version (`name@version`), so that the
 * part a worker does not flag meets `target` accuracy on that site.
 */
export const siteReviewThresholds = pgTable(
  "site_review_thresholds",
  {
    site: text("site").notNull(),
    modelVersion: text("model_version").notNull(),
    minConfidence: doublePrecision("min_confidence").notNull(),
    maxDistance: doublePrecision("max_distance"),
    /** How many reviewed images the thresholds were fitted on. */
    reviewed: integer("reviewed").notNull(),
    /** Share of those images not flagged. */
    coverage: doublePrecision("coverage").notNull(),
    /** Estimated accuracy of the unflagged part. */
    unflaggedAccuracy: doublePrecision("unflagged_accuracy").notNull(),
    target: doublePrecision("target").notNull(),
    computedAt: timestamp("computed_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.site, t.modelVersion] })],
);
