import { sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import type { ReviewReason, TopEntry } from "./schema/results";
import { siteIn, type TimeCursor } from "./scope";

export interface ReviewQueueItem {
  imageId: string;
  batchId: string;
  filename: string | null;
  site: string | null;
  line: string | null;
  label: string;
  confidence: number;
  top: TopEntry[];
  reviewReasons: ReviewReason[];
  novelty: number | null;
  createdAt: Date;
}

export interface ReviewQueueQuery {
  sites: readonly string[] | null;
  site?: string | null;
  line?: string | null;
  after?: TimeCursor | null;
  limit: number;
}

/**
 * ok results the model flagged and nobody has reviewed yet, oldest image first (a batch's images, which share
 * their upload time, in upload order); `remaining` counts the whole
 * queue under the same filters, not just what follows the cursor.
 */
export async function listReviewQueue(
  db: DbOrTx,
  q: ReviewQueueQuery,
): Promise<{ items: ReviewQueueItem[]; next: TimeCursor | null; remaining: number }> {
  const where = sql`r.awaiting_review and ${siteIn(sql`i.site`, q.sites)}
    ${q.site != null ? sql`and i.site = ${q.site}` : sql``}
    ${q.line != null ? sql`and i.line = ${q.line}` : sql``}`;
  const from = sql`results r join images i on i.id = r.image_id`;
  const after = q.after
    ? sql`and (i.created_at, i.batch_id, i.index) > (${q.after.at}::timestamptz, ${q.after.id}::uuid, ${q.after.n ?? -1})`
    : sql``;
  const page = await db.execute<{
    image_id: string;
    batch_id: string;
    filename: string | null;
    site: string | null;
    line: string | null;
    label: string;
    confidence: number;
    top: TopEntry[] | null;
    review_reasons: ReviewReason[];
    novelty: number | null;
    created_at: Date | string;
    at: string;
    index: number;
  }>(sql`
    select i.id as image_id, i.batch_id, i.filename, i.site, i.line, r.label, r.confidence, r.top,
      r.review_reasons, r.novelty, i.created_at, i.created_at::text as at, i.index
    from ${from} where ${where} ${after}
    order by i.created_at, i.batch_id, i.index limit ${q.limit + 1}`);
  const count = await db.execute<{ n: string }>(sql`select count(*) as n from ${from} where ${where}`);
  const rows = page.rows.slice(0, q.limit);
  const items = rows.map(
    (r): ReviewQueueItem => ({
      imageId: r.image_id,
      batchId: r.batch_id,
      filename: r.filename,
      site: r.site,
      line: r.line,
      label: r.label,
      confidence: r.confidence,
      top: r.top ?? [],
      reviewReasons: r.review_reasons,
      novelty: r.novelty,
      createdAt: new Date(r.created_at),
    }),
  );
  const last = rows.at(-1);
  return {
    items,
    next: page.rows.length > q.limit && last ? { at: last.at, id: last.batch_id, n: last.index } : null,
    remaining: Number(count.rows[0]?.n ?? 0),
  };
}

export interface ReviewedImage {
  imageId: string;
  label: string;
  storageKey: string;
  contentType: string | null;
  filename: string | null;
}

/**
 * Every reviewed image (confirmed or corrected) with stored bytes that the reader may see, in image-id order
 * one page at a time: what the training-data export walks.
 */
export async function listReviewedImages(
  db: DbOrTx,
  options: { sites: readonly string[] | null; site?: string | null; after?: string | null; limit: number },
): Promise<ReviewedImage[]> {
  const res = await db.execute<{
    image_id: string;
    label: string;
    storage_key: string;
    content_type: string | null;
    filename: string | null;
  }>(sql`
    select rv.image_id, rv.label, i.storage_key, i.content_type, i.filename
    from reviews rv join images i on i.id = rv.image_id
    where i.storage_key is not null and ${siteIn(sql`i.site`, options.sites)}
      ${options.site != null ? sql`and i.site = ${options.site}` : sql``}
      ${options.after ? sql`and rv.image_id > ${options.after}::uuid` : sql``}
    order by rv.image_id limit ${options.limit}`);
  return res.rows.map((r) => ({
    imageId: r.image_id,
    label: r.label,
    storageKey: r.storage_key,
    contentType: r.content_type,
    filename: r.filename,
  }));
}
