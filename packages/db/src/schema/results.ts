import { sql } from "drizzle-orm";
import {
  check,
  doublePrecision,
  index,
  jsonb,
  pgEnum,
  pgTable,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import { batches } from "./batches";
import { images } from "./images";

export const resultStatus = pgEnum("result_status", ["ok", "failed"]);
export type ResultStatus = (typeof resultStatus.enumValues)[number];

export interface TopEntry {
  label: string;
  confidence: number;
}

export const results = pgTable(
  "results",
  {
    // The primary key makes "at most one result per image" the database's job, not the worker's.
    imageId: uuid("image_id")
      .primaryKey()
      .references(() => images.id, { onDelete: "cascade" }),
    batchId: uuid("batch_id")
      .notNull()
      .references(() => batches.id, { onDelete: "cascade" }),
    status: resultStatus("status").notNull(),
    label: text("label"),
    // double, not real: histogram bins are computed from it and float4 rounding would move values across bins.
    confidence: doublePrecision("confidence"),
    top: jsonb("top").$type<TopEntry[]>(),
    modelVersion: text("model_version"),
    inferenceMs: doublePrecision("inference_ms"),
    queueMs: doublePrecision("queue_ms"),
    endToEndMs: doublePrecision("end_to_end_ms"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check(
      "results_ok_has_label",
      sql`${t.status} <> 'ok' or (${t.label} is not null and ${t.confidence} between 0 and 1)`,
    ),
    // Batch deletion cascades through it; stats read class_stats, so no time index is paid for on every insert.
    index("results_batch_id_idx").on(t.batchId),
  ],
);
