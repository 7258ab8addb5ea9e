import { endianness } from "node:os";
import { auditPicked } from "@garbage/stats";
import { sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import { updateQualityRollup } from "./quality";
import { type RollupRow, updateRollup } from "./rollup";
import type { ResultStatus, ReviewReason, TopEntry } from "./schema/results";

/** The model's review flags for one ok result (the shape of @garbage/inference's ReviewFlags). */
export interface ReviewInput {
  needsReview: boolean;
  lowConfidence: boolean;
  unfamiliar: boolean;
  /** k-NN distance to the training embeddings (stored as `novelty`), null without reference embeddings. */
  distance: number | null;
}

export interface ResultInput {
  imageId: string;
  status: ResultStatus;
  /** Required when status is "ok". */
  label?: string | null;
  /** Required when status is "ok", in [0, 1]. */
  confidence?: number | null;
  top?: TopEntry[] | null;
  /** ok results only; absent means the result does not need review. */
  review?: ReviewInput | null;
  modelVersion?: string | null;
  inferenceMs?: number | null;
  queueMs?: number | null;
  endToEndMs?: number | null;
  errorCode?: string | null;
  errorMessage?: string | null;
  /**
   * AUDIT_RATE in force: an ok result is picked for a blind audit with this probability (auditPicked, a hash
   * of the image id, so a replay picks the same). Absent or 0: no audits.
   */
  auditRate?: number | null;
  /** The model's feature vector for an ok result, kept in result_embeddings (similar-image search). */
  embedding?: Float32Array | null;
}

export interface RecordResultsOutcome {
  /** Rows written by this call; everything derived (counters, rollup) counts only these. */
  inserted: number;
  /** Images that already had a result (retried or duplicated job). */
  duplicates: number;
  /** Image ids with no images row, e.g. their batch was deleted; nothing is written for them. */
  unknown: string[];
  /** Batches that reached completed / completed_with_errors in this call. */
  completedBatches: { id: string; status: "completed" | "completed_with_errors" }[];
}

interface InsertedRow extends RollupRow {
  image_id: string;
  batch_id: string;
  audit: boolean;
  audit_rate: number;
}

/**
 * Records classification outcomes in ONE transaction: results are inserted with ON CONFLICT (image_id) DO
 * NOTHING, and the batch counters, status transitions and the class_stats rollup are derived only from the
 * rows that insert returned, so replaying a job (BullMQ retry, duplicate delivery) never double counts.
 *
 * Rows and rollup keys are written in sorted order so concurrent callers lock in the same order and cannot
 * deadlock. The batch id is taken from the images row, never from the caller.
 */
export async function recordResults(db: DbOrTx, rows: readonly ResultInput[]): Promise<RecordResultsOutcome> {
  const byImage = new Map<string, ResultInput>();
  for (const row of rows) {
    validate(row);
    if (!byImage.has(row.imageId)) byImage.set(row.imageId, row);
  }
  const input = [...byImage.values()].sort((a, b) => (a.imageId < b.imageId ? -1 : 1));
  const outcome: RecordResultsOutcome = { inserted: 0, duplicates: 0, unknown: [], completedBatches: [] };
  if (input.length === 0) return outcome;

  return db.transaction(async (tx) => {
    const payload = input.map((r) => ({
      image_id: r.imageId,
      status: r.status,
      label: r.label ?? null,
      confidence: r.confidence ?? null,
      top: r.top ?? null,
      needs_review: r.review?.needsReview ?? false,
      review_reasons: reviewReasons(r.review),
      novelty: r.review?.distance ?? null,
      model_version: r.modelVersion ?? null,
      inference_ms: r.inferenceMs ?? null,
      queue_ms: r.queueMs ?? null,
      end_to_end_ms: r.endToEndMs ?? null,
      error_code: r.errorCode ?? null,
      error_message: r.errorMessage ?? null,
      embedding: r.status === "ok" && r.embedding ? embeddingBase64(r.embedding) : null,
      dims: r.status === "ok" && r.embedding ? r.embedding.length : null,
      audit: r.status === "ok" && auditPicked(r.imageId, r.auditRate ?? 0),
      audit_rate: r.status === "ok" ? (r.auditRate ?? 0) : 0,
    }));
    const inserted = await tx.execute<InsertedRow & Record<string, unknown>>(sql`
      with v as (
        select * from rows from (jsonb_to_recordset(${JSON.stringify(payload)}::jsonb) as (
          image_id uuid, status result_status, label text, confidence float8, top jsonb, needs_review boolean,
          review_reasons text[], novelty float8, model_version text, inference_ms float8, queue_ms float8,
          end_to_end_ms float8, error_code text, error_message text, embedding text, dims int, audit boolean,
          audit_rate float8)
        ) with ordinality as v(image_id, status, label, confidence, top, needs_review, review_reasons, novelty,
          model_version, inference_ms, queue_ms, end_to_end_ms, error_code, error_message, embedding, dims, audit,
          audit_rate, ord)
      ), ins as (
        insert into results (image_id, batch_id, status, label, confidence, top, needs_review, awaiting_review,
          review_reasons, novelty, model_version, inference_ms, queue_ms, end_to_end_ms, error_code, error_message,
          audit, awaiting_audit, audit_rate)
        -- awaiting_review starts as needs_review (awaiting_audit as audit): a review needs an ok result, so none
        -- can exist yet.
        select v.image_id, i.batch_id, v.status, v.label, v.confidence, v.top, v.needs_review, v.needs_review,
          v.review_reasons, v.novelty, v.model_version, v.inference_ms, v.queue_ms, v.end_to_end_ms, v.error_code,
          v.error_message, v.audit, v.audit, v.audit_rate
        from v join images i on i.id = v.image_id
        order by v.ord
        on conflict (image_id) do nothing
        returning image_id, batch_id, status, label, confidence, needs_review, audit, audit_rate
      ), emb as (
        -- Only for rows this statement inserted: a replayed job must not overwrite (or orphan) anything.
        insert into result_embeddings (image_id, dims, data)
        select ins.image_id, v.dims, decode(v.embedding, 'base64')
        from ins join v on v.image_id = ins.image_id
        where v.embedding is not null
      )
      select ins.*, i.site, i.line, date_trunc('minute', i.captured_at) as bucket
      from ins join images i on i.id = ins.image_id`);
    const written = inserted.rows;
    outcome.inserted = written.length;

    if (written.length < input.length) {
      const known = await tx.execute<{ id: string }>(
        sql`select id from images where id = any(${uuidArray(input.map((r) => r.imageId))}::uuid[])`,
      );
      const knownIds = new Set(known.rows.map((r) => r.id));
      outcome.unknown = input.map((r) => r.imageId).filter((id) => !knownIds.has(id));
      outcome.duplicates = input.length - written.length - outcome.unknown.length;
    }
    if (written.length === 0) return outcome;

    outcome.completedBatches = await updateBatches(tx, written);
    await updateRollup(tx, written);
    await updateQualityRollup(
      tx,
      written
        .filter((r) => r.status === "ok" && r.label != null)
        .map((r) => ({
          bucket: r.bucket,
          site: r.site,
          line: r.line,
          flagged: r.needs_review,
          auditRate: r.audit_rate,
          audit: r.audit,
          predicted: r.label as string,
          truth: null,
          sign: 1,
        })),
    );
    return outcome;
  });
}

const LITTLE_ENDIAN = endianness() === "LE";

/** Little-endian float32 bytes, base64 so they travel inside the jsonb payload. */
function embeddingBase64(v: Float32Array): string {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
  const bytes = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) bytes.writeFloatLE(v[i] as number, i * 4);
  return bytes.toString("base64");
}

/** drizzle expands JS arrays into parameter lists, so uuid arrays travel as one Postgres array literal. */
export function uuidArray(ids: readonly string[]): string {
  return `{${ids.join(",")}}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function validate(row: ResultInput): void {
  if (!UUID.test(row.imageId)) throw new TypeError(`image id is not a uuid: ${row.imageId}`);
  if (row.status === "ok") {
    const c = row.confidence;
    if (!row.label || c == null || !Number.isFinite(c) || c < 0 || c > 1) {
      throw new TypeError(`ok result for image ${row.imageId} needs a label and a confidence in [0, 1]`);
    }
  } else if (row.status !== "failed") {
    throw new TypeError(`unknown result status ${String(row.status)} for image ${row.imageId}`);
  }
  if (row.embedding && !row.embedding.every(Number.isFinite)) {
    throw new TypeError(`embedding of image ${row.imageId} has a value that is not a finite number`);
  }
  const review = row.review;
  if (review == null) return;
  if (row.status !== "ok") {
    throw new TypeError(`failed result for image ${row.imageId} cannot carry review flags`);
  }
  if (review.needsReview !== (review.lowConfidence || review.unfamiliar)) {
    throw new TypeError(
      `review flags of image ${row.imageId} disagree: needsReview without a reason or vice versa`,
    );
  }
  // JSON would turn NaN into null and silently lose that the distance was broken.
  if (review.distance !== null && !Number.isFinite(review.distance)) {
    throw new TypeError(`review distance of image ${row.imageId} is not a finite number`);
  }
}

function reviewReasons(review: ReviewInput | null | undefined): ReviewReason[] {
  const reasons: ReviewReason[] = [];
  if (review?.lowConfidence) reasons.push("low_confidence");
  if (review?.unfamiliar) reasons.push("unfamiliar");
  return reasons;
}

async function updateBatches(
  tx: DbOrTx,
  written: InsertedRow[],
): Promise<RecordResultsOutcome["completedBatches"]> {
  const deltas = new Map<string, { processed: number; failed: number }>();
  for (const row of written) {
    const d = deltas.get(row.batch_id) ?? { processed: 0, failed: 0 };
    d.processed += 1;
    if (row.status === "failed") d.failed += 1;
    deltas.set(row.batch_id, d);
  }
  const completed: RecordResultsOutcome["completedBatches"] = [];
  for (const batchId of [...deltas.keys()].sort()) {
    const d = deltas.get(batchId) as { processed: number; failed: number };
    // One statement per batch: the row lock makes concurrent increments and the status decision atomic.
    const res = await tx.execute<{ id: string; status: string; just_completed: boolean }>(sql`
      update batches b set
        processed = b.processed + ${d.processed},
        failed = b.failed + ${d.failed},
        status = case
          when b.processed + ${d.processed} < b.total then 'processing'
          when b.failed + ${d.failed} > 0 then 'completed_with_errors'
          else 'completed' end::batch_status,
        completed_at = case when b.processed + ${d.processed} >= b.total then coalesce(b.completed_at, now())
          else b.completed_at end
      where b.id = ${batchId}
      returning b.id, b.status, (b.processed = b.total and b.processed - ${d.processed} < b.total) as just_completed`);
    const row = res.rows[0];
    if (row?.just_completed) {
      completed.push({ id: row.id, status: row.status as "completed" | "completed_with_errors" });
    }
  }
  return completed;
}
