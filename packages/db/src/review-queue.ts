import { sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import type { ReviewReason, TopEntry } from "./schema/results";
import { siteIn, type TimeCursor } from "./scope";

interface QueueItemBase {
  imageId: string;
  batchId: string;
  filename: string | null;
  site: string | null;
  line: string | null;
  createdAt: Date;
}

/** A flagged image: the reviewer confirms or corrects the model's answer. */
export interface ReviewItem extends QueueItemBase {
  kind: "review";
  label: string;
  confidence: number;
  top: TopEntry[];
  reviewReasons: ReviewReason[];
  novelty: number | null;
}

/**
 * A blind audit: nothing of the model's answer (label, confidence, top, flags) leaves the database, so the
 * person's label is not anchored on it and the audits stay an unbiased sample.
 */
export interface AuditItem extends QueueItemBase {
  kind: "audit";
}

export type ReviewQueueItem = ReviewItem | AuditItem;

/** `review`: flagged images (an audited one only as its audit); `audit`: blind audits; `all`: both. */
export type ReviewQueueKind = "review" | "audit" | "all";

export interface ReviewQueueQuery {
  sites: readonly string[] | null;
  site?: string | null;
  line?: string | null;
  /** Default `all`. */
  kind?: ReviewQueueKind;
  after?: TimeCursor | null;
  limit: number;
}

const WAITING: Record<ReviewQueueKind, ReturnType<typeof sql>> = {
  // An image both flagged and audited is shown once, blind: its answer clears both.
  review: sql`r.awaiting_review and not r.awaiting_audit`,
  audit: sql`r.awaiting_audit`,
  all: sql`(r.awaiting_review or r.awaiting_audit)`,
};

/**
 * ok results the model flagged or picked for a blind audit that nobody has labelled yet, oldest image first (a batch's images, which share
 * their upload time, in upload order); `remaining` counts the whole
 * queue under the same filters, not just what follows the cursor.
 */
export async function listReviewQueue(
  db: DbOrTx,
  q: ReviewQueueQuery,
): Promise<{ items: ReviewQueueItem[]; next: TimeCursor | null; remaining: number }> {
  const where = sql`${WAITING[q.kind ?? "all"]} and ${siteIn(sql`i.site`, q.sites)}
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
    audit: boolean;
  }>(sql`
    select i.id as image_id, i.batch_id, i.filename, i.site, i.line, i.created_at, i.created_at::text as at,
      i.index, r.awaiting_audit as audit,
      case when r.awaiting_audit then null else r.label end as label,
      case when r.awaiting_audit then null else r.confidence end as confidence,
      case when r.awaiting_audit then null else r.top end as top,
      case when r.awaiting_audit then null else r.review_reasons end as review_reasons,
      case when r.awaiting_audit then null else r.novelty end as novelty
    from ${from} where ${where} ${after}
    order by i.created_at, i.batch_id, i.index limit ${q.limit + 1}`);
  const count = await db.execute<{ n: string }>(sql`select count(*) as n from ${from} where ${where}`);
  const rows = page.rows.slice(0, q.limit);
  const items = rows.map((r): ReviewQueueItem => {
    const base = {
      imageId: r.image_id,
      batchId: r.batch_id,
      filename: r.filename,
      site: r.site,
      line: r.line,
      createdAt: new Date(r.created_at),
    };
    if (r.audit) return { kind: "audit", ...base };
    return {
      kind: "review",
      ...base,
      label: r.label,
      confidence: r.confidence,
      top: r.top ?? [],
      reviewReasons: r.review_reasons,
      novelty: r.novelty,
    };
  });
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
