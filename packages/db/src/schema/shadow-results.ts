import { sql } from "drizzle-orm";
import {
  boolean,
  check,
  doublePrecision,
  index,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import { images } from "./images";
import { modelVersions } from "./model-versions";
import type { ReviewReason, TopEntry } from "./results";

export const SHADOW_SOURCES = ["live", "reviewed"] as const;
export type ShadowSource = (typeof SHADOW_SOURCES)[number];

/**
 * A non-serving version's prediction for an image, kept apart from `results` so it never reaches statistics,
 * the review queue or downloads. `live` = sampled from traffic; `reviewed` = backfill on reviewed images.
 */
export const shadowResults = pgTable(
  "shadow_results",
  {
    imageId: uuid("image_id")
      .notNull()
      .references(() => images.id, { onDelete: "cascade" }),
    versionId: uuid("version_id")
      .notNull()
      .references(() => modelVersions.id, { onDelete: "cascade" }),
    source: text("source").$type<ShadowSource>().notNull(),
    label: text("label").notNull(),
    confidence: doublePrecision("confidence").notNull(),
    top: jsonb("top").$type<TopEntry[]>().notNull(),
    needsReview: boolean("needs_review").notNull().default(false),
    reviewReasons: text("review_reasons").array().$type<ReviewReason[]>().notNull().default(sql`'{}'`),
    novelty: doublePrecision("novelty"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.imageId, t.versionId] }),
    check("shadow_results_source_check", sql`${t.source} in ('live', 'reviewed')`),
    // Comparisons read one version's predictions; the primary key leads with the image.
    index("shadow_results_version_id_idx").on(t.versionId),
  ],
);
