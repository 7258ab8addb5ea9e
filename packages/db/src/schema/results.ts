import { sql } from "drizzle-orm";
import {
  boolean,
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

/** Why an ok result needs a person: the model's review flags, as recorded by the worker. */
export const REVIEW_REASONS = ["low_confidence", "unfamiliar"] as const;
export type ReviewReason = (typeof REVIEW_REASONS)[number];

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
    // Denormalised from review_reasons so the review queue of a batch is a plain boolean filter.
    needsReview: boolean("needs_review").notNull().default(false),
    // Flagged and not reviewed yet: cleared when a review is written, so the review queue (and its count) reads
    // only what is still waiting, not every flagged result ever recorded.
    awaitingReview: boolean("awaiting_review").notNull().default(false),
    // Picked for a blind audit when recorded (auditPicked, probability audit_rate), and not answered yet: a
    // person labels it without seeing the model's answer, a uniform sample for the estimates in /v1/stats.
    audit: boolean("audit").notNull().default(false),
    awaitingAudit: boolean("awaiting_audit").notNull().default(false),
    auditRate: doublePrecision("audit_rate").notNull().default(0),
    reviewReasons: text("review_reasons").array().$type<ReviewReason[]>().notNull().default(sql`'{}'`),
    /** k-NN distance to the training embeddings; null for models that ship no reference embeddings. */
    novelty: doublePrecision("novelty"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check(
      "results_ok_has_label",
      sql`${t.status} <> 'ok' or (${t.label} is not null and ${t.confidence} between 0 and 1)`,
    ),
    check(
      "results_review_consistent",
      sql`${t.needsReview} = (cardinality(${t.reviewReasons}) > 0) and (${t.status} = 'ok' or not ${t.needsReview})`,
    ),
    check("results_awaiting_review_flagged", sql`not ${t.awaitingReview} or ${t.needsReview}`),
    check(
      "results_awaiting_audit_picked",
      sql`not ${t.awaitingAudit} or (${t.audit} and ${t.status} = 'ok')`,
    ),
    check(
      "results_review_reasons_known",
      sql`${t.reviewReasons} <@ array[${sql.raw(REVIEW_REASONS.map((r) => `'${r}'`).join(", "))}]::text[]`,
    ),
    // Batch deletion cascades through it; stats read class_stats, so no time index is paid for on every insert.
    index("results_batch_id_idx").on(t.batchId),
    // The review queue reads only the sliver of results still waiting for a person.
    index("results_awaiting_review_idx").on(t.imageId).where(sql`${t.awaitingReview}`),
    index("results_awaiting_audit_idx").on(t.imageId).where(sql`${t.awaitingAudit}`),
  ],
);
