import { sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import { HISTOGRAM_BINS } from "./schema/class-stats";
import type { ResultStatus, TopEntry } from "./schema/results";

export interface ResultInput {
  imageId: string;
  status: ResultStatus;
  /** Required when status is "ok". */
  label?: string | null;
  /** Required when status is "ok", in [0, 1]. */
  confidence?: number | null;
  top?: TopEntry[] | null;
  modelVersion?: string | null;
  inferenceMs?: number | null;
  queueMs?: number | null;
  endToEndMs?: number | null;
  errorCode?: string | null;
  errorMessage?: string | null;
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

/** What the rollup needs of one result. */
export interface RollupRow {
  status: ResultStatus;
  label: string | null;
  confidence: number | null;
  site: string | null;
  line: string | null;
  bucket: Date | string;
}

interface InsertedRow extends RollupRow {
  image_id: string;
  batch_id: string;
}

export function histogramBin(confidence: number): number {
  return Math.max(0, Math.min(HISTOGRAM_BINS - 1, Math.floor(confidence * HISTOGRAM_BINS)));
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
      model_version: r.modelVersion ?? null,
      inference_ms: r.inferenceMs ?? null,
      queue_ms: r.queueMs ?? null,
      end_to_end_ms: r.endToEndMs ?? null,
      error_code: r.errorCode ?? null,
      error_message: r.errorMessage ?? null,
    }));
    const inserted = await tx.execute<InsertedRow & Record<string, unknown>>(sql`
      with v as (
        select * from rows from (jsonb_to_recordset(${JSON.stringify(payload)}::jsonb) as (
          image_id uuid, status result_status, label text, confidence float8, top jsonb, model_version text,
          inference_ms float8, queue_ms float8, end_to_end_ms float8, error_code text, error_message text)
        ) with ordinality as v(image_id, status, label, confidence, top, model_version, inference_ms, queue_ms,
          end_to_end_ms, error_code, error_message, ord)
      ), ins as (
        insert into results (image_id, batch_id, status, label, confidence, top, model_version, inference_ms,
          queue_ms, end_to_end_ms, error_code, error_message)
        select v.image_id, i.batch_id, v.status, v.label, v.confidence, v.top, v.model_version, v.inference_ms,
          v.queue_ms, v.end_to_end_ms, v.error_code, v.error_message
        from v join images i on i.id = v.image_id
        order by v.ord
        on conflict (image_id) do nothing
        returning image_id, batch_id, status, label, confidence
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
    return outcome;
  });
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

/** Adds (sign 1) or removes (sign -1) results from class_stats. */
export async function updateRollup(
  tx: DbOrTx,
  written: readonly RollupRow[],
  sign: 1 | -1 = 1,
): Promise<void> {
  const groups = new Map<
    string,
    { bucket: string; site: string; line: string; label: string; count: number; histogram: number[] }
  >();
  for (const row of written) {
    const bucket = new Date(row.bucket).toISOString();
    const label = row.status === "ok" ? (row.label ?? "") : "";
    const site = row.site ?? "";
    const line = row.line ?? "";
    const key = JSON.stringify([bucket, site, line, label]);
    let g = groups.get(key);
    if (!g) {
      g = { bucket, site, line, label, count: 0, histogram: new Array(HISTOGRAM_BINS).fill(0) };
      groups.set(key, g);
    }
    g.count += sign;
    if (row.status === "ok" && row.confidence != null) {
      const bin = histogramBin(row.confidence);
      g.histogram[bin] = (g.histogram[bin] ?? 0) + sign;
    }
  }
  const sorted = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
  await tx.execute(sql`
    insert into class_stats (bucket, site, line, label, count, histogram)
    select s.bucket, s.site, s.line, s.label, s.count, s.histogram
    from rows from (jsonb_to_recordset(${JSON.stringify(sorted)}::jsonb)
      as (bucket timestamptz, site text, line text, label text, count bigint, histogram int[])
    ) with ordinality as s(bucket, site, line, label, count, histogram, ord)
    order by s.ord
    on conflict (bucket, site, line, label) do update set
      count = class_stats.count + excluded.count,
      histogram = (
        select array_agg(coalesce(a, 0) + coalesce(b, 0) order by n)
        from unnest(class_stats.histogram, excluded.histogram) with ordinality as h(a, b, n)
      )`);
}
