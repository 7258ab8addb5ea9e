import { boolean, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { images } from "./images";

/**
 * A person's verdict on one image's label (one row per image; reviewing again replaces it). The result keeps
 * the model's label; statistics count `label` instead (class_stats is moved when a review is written).
 */
export const reviews = pgTable("reviews", {
  imageId: uuid("image_id")
    .primaryKey()
    .references(() => images.id, { onDelete: "cascade" }),
  label: text("label").notNull(),
  /** The model's label when the review was written, so `changed` never needs a join to read. */
  modelLabel: text("model_label").notNull(),
  changed: boolean("changed").notNull(),
  /** The API key: its name for database keys, else the principal id (`env:<prefix>`) or `anonymous`. */
  reviewer: text("reviewer").notNull(),
  /** The name a person typed in the UI, if any. */
  reviewerName: text("reviewer_name"),
  reviewedAt: timestamp("reviewed_at", { withTimezone: true }).notNull().defaultNow(),
});
