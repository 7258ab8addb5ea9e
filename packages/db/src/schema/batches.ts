import { sql } from "drizzle-orm";
import { check, index, integer, pgEnum, pgTable, text, timestamp, unique, uuid } from "drizzle-orm/pg-core";

export const batchStatus = pgEnum("batch_status", [
  "queued",
  "processing",
  "completed",
  "completed_with_errors",
]);
export type BatchStatus = (typeof batchStatus.enumValues)[number];

export const batches = pgTable(
  "batches",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    status: batchStatus("status").notNull().default("queued"),
    total: integer("total").notNull(),
    /** Images with a result, ok or failed. */
    processed: integer("processed").notNull().default(0),
    failed: integer("failed").notNull().default(0),
    site: text("site"),
    line: text("line"),
    camera: text("camera"),
    capturedAt: timestamp("captured_at", { withTimezone: true }),
    /**
     * The API key that submitted the batch (see the API's principal): `db:<api_keys.id>`, `env:<sha256 prefix>`,
     * or '' when the API runs without keys. It scopes idempotency keys, so one client never replays another's.
     */
    principal: text("principal").notNull().default(""),
    idempotencyKey: text("idempotency_key"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    /** Set once every image of the batch has been handed to the queue; null means "not yet", see API README. */
    enqueuedAt: timestamp("enqueued_at", { withTimezone: true }),
    completedAt: timestamp("completed_at", { withTimezone: true }),
    /**
     * Images per job when the batch was enqueued: job ids are `${id}-${chunk}`, so recovery must chunk exactly
     * as the API did, whatever CHUNK_SIZE is now. 16 is @garbage/queue's DEFAULT_CHUNK_SIZE, the size every
     * batch from before this column was chunked with unless CHUNK_SIZE was changed.
     */
    chunkSize: integer("chunk_size").notNull().default(16),
  },
  (t) => [
    // NULLs are distinct in a unique index, so batches without a key never collide.
    unique("batches_principal_idempotency_key_unique").on(t.principal, t.idempotencyKey),
    check(
      "batches_counters_check",
      sql`${t.processed} >= 0 and ${t.failed} >= 0 and ${t.failed} <= ${t.processed} and ${t.processed} <= ${t.total}`,
    ),
    index("batches_created_at_idx").on(t.createdAt),
    // The UI's batch list of one site, newest first, and the distinct sites of /v1/me.
    index("batches_site_created_at_idx").on(t.site, t.createdAt),
    // The reconciliation sweep reads the unfinished batches every few seconds; they are a sliver of the table.
    index("batches_open_idx").on(t.createdAt).where(sql`${t.completedAt} is null`),
    check("batches_chunk_size_check", sql`${t.chunkSize} > 0`),
  ],
);
