import { bigint, integer, pgTable, text, timestamp, unique, uuid } from "drizzle-orm/pg-core";
import { batches } from "./batches";

export const images = pgTable(
  "images",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    batchId: uuid("batch_id")
      .notNull()
      .references(() => batches.id, { onDelete: "cascade" }),
    /** Position in the upload, 0-based; the results cursor. */
    index: integer("index").notNull(),
    filename: text("filename"),
    /** Null when the upload was rejected (not an image) and never stored. */
    storageKey: text("storage_key"),
    bytes: bigint("bytes", { mode: "number" }).notNull(),
    sha256: text("sha256"),
    contentType: text("content_type"),
    // Copied from the batch so the stats rollup needs no join at result time.
    site: text("site"),
    line: text("line"),
    capturedAt: timestamp("captured_at", { withTimezone: true }).notNull(),
    /**
     * Times the reconciliation sweep re-ran this image's job after it failed for good (@garbage/recovery):
     * bounded, so a fault longer than one job's retry budget heals while a poison image still ends as failed.
     */
    repairs: integer("repairs").notNull().default(0),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // Serves the results cursor (batch_id, index > cursor) and forbids two images at one position.
    unique("images_batch_index_unique").on(t.batchId, t.index),
  ],
);
