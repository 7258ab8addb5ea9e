import { sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import type { ReviewReason, TopEntry } from "./schema/results";

export interface ResultItem {
  imageId: string;
  index: number;
  filename: string | null;
  /** "queued" until the worker has recorded an outcome. */
  status: "queued" | "ok" | "failed";
  label: string | null;
  confidence: number | null;
  top: TopEntry[];
  /** null while queued; false for failed results. */
  needsReview: boolean | null;
  reviewReasons: ReviewReason[];
  /** The model's k-NN distance to its training data; null without reference embeddings or result. */
  novelty: number | null;
  error: { code: string; message: string | null } | null;
  /** A person's verdict, when there is one; `reviewer` is the typed name, else the API key's. */
  review: { label: string; reviewer: string; reviewedAt: Date } | null;
  /** The review's label when reviewed, else the model's; null unless the result is ok. */
  effectiveLabel: string | null;
}

export interface ResultPage {
  items: ResultItem[];
  /** Image index to pass as `after` for the next page; null on the last page. */
  nextCursor: number | null;
}

interface Row extends Record<string, unknown> {
  image_id: string;
  index: number;
  filename: string | null;
  status: "ok" | "failed" | null;
  label: string | null;
  confidence: number | null;
  top: TopEntry[] | null;
  needs_review: boolean | null;
  review_reasons: ReviewReason[] | null;
  novelty: number | null;
  error_code: string | null;
  error_message: string | null;
  review_label: string | null;
  reviewer: string | null;
  reviewer_name: string | null;
  reviewed_at: Date | string | null;
}

/**
 * Keyset pagination over (batch_id, index), served by the images_batch_index_unique index, so late pages cost
 * the same as the first. Every image appears, with status "queued" until it has a result, unless `needsReview`
 * filters on recorded results (queued images then never match).
 */
export async function listResults(
  db: DbOrTx,
  batchId: string,
  options: { after?: number | null; limit: number; needsReview?: boolean | null; label?: string | null },
): Promise<ResultPage> {
  const after = options.after ?? -1;
  const res = await db.execute<Row>(sql`
    select i.id as image_id, i.index, i.filename, r.status, r.label, r.confidence, r.top, r.needs_review,
      r.review_reasons, r.novelty, r.error_code, r.error_message, rv.label as review_label, rv.reviewer,
      rv.reviewer_name, rv.reviewed_at
    from images i left join results r on r.image_id = i.id left join reviews rv on rv.image_id = i.id
    where i.batch_id = ${batchId} and i.index > ${after}
      ${options.needsReview == null ? sql`` : sql`and r.needs_review = ${options.needsReview}`}
      ${options.label == null ? sql`` : sql`and r.status = 'ok' and coalesce(rv.label, r.label) = ${options.label}`}
    order by i.index
    limit ${options.limit + 1}`);
  const rows = res.rows.slice(0, options.limit);
  const items = rows.map(
    (row): ResultItem => ({
      imageId: row.image_id,
      index: row.index,
      filename: row.filename,
      status: row.status ?? "queued",
      label: row.label,
      confidence: row.confidence,
      top: row.top ?? [],
      needsReview: row.needs_review,
      reviewReasons: row.review_reasons ?? [],
      novelty: row.novelty,
      error: row.error_code ? { code: row.error_code, message: row.error_message } : null,
      review:
        row.review_label !== null && row.reviewed_at !== null
          ? {
              label: row.review_label,
              reviewer: row.reviewer_name ?? row.reviewer ?? "",
              reviewedAt: new Date(row.reviewed_at),
            }
          : null,
      effectiveLabel: row.status === "ok" ? (row.review_label ?? row.label) : null,
    }),
  );
  const last = rows.at(-1);
  return { items, nextCursor: res.rows.length > options.limit && last ? last.index : null };
}
