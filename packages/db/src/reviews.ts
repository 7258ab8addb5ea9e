import { sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import { updateQualityRollup } from "./quality";
import { type RollupRow, updateRollup } from "./rollup";
import { siteIn } from "./scope";

export interface ReviewWrite {
  imageId: string;
  label: string;
  /** The API key that wrote it (its name, or its principal id). */
  reviewer: string;
  /** The name the person typed, if any. */
  reviewerName?: string | null;
  /** The caller's sites; null is every site. */
  sites: readonly string[] | null;
}

export interface StoredReview {
  imageId: string;
  modelLabel: string;
  label: string;
  changed: boolean;
  reviewer: string;
  reviewerName: string | null;
  reviewedAt: Date;
}

export type ReviewOutcome =
  | { kind: "reviewed"; review: StoredReview; previous: { label: string; changed: boolean } | null }
  /** No such image, or outside the caller's sites. */
  | { kind: "not_found" }
  /** The image has no ok result (queued, or failed): there is no model label to confirm or correct. */
  | { kind: "not_reviewable"; status: "queued" | "failed" };

interface Target extends RollupRow, Record<string, unknown> {
  status: "ok" | "failed";
  result: boolean;
  audit: boolean;
  audit_rate: number;
}

/**
 * Writes (or replaces) the review of one image and moves the image in class_stats from its old effective label
 * to the new one, in one transaction. The images row is locked first (`for no key update`, which does not
 * block the worker's foreign-key checks), so concurrent reviews of one image apply one after the other and
 * each undoes exactly what the previous one applied.
 */
export async function writeReview(db: DbOrTx, input: ReviewWrite): Promise<ReviewOutcome> {
  return db.transaction(async (tx) => {
    const target = await tx.execute<Target>(sql`
      select r.status, r.label, r.confidence, coalesce(r.needs_review, false) as needs_review, i.site, i.line,
        date_trunc('minute', i.captured_at) as bucket, r.image_id is not null as result,
        coalesce(r.audit, false) as audit, coalesce(r.audit_rate, 0) as audit_rate
      from images i left join results r on r.image_id = i.id
      where i.id = ${input.imageId} and ${siteIn(sql`i.site`, input.sites)}
      for no key update of i`);
    const row = target.rows[0];
    if (!row) return { kind: "not_found" };
    if (!row.result || row.status !== "ok" || row.label === null) {
      return { kind: "not_reviewable", status: row.result ? "failed" : "queued" };
    }
    const modelLabel = row.label;
    const prev = await tx.execute<{ label: string; changed: boolean }>(
      sql`select label, changed from reviews where image_id = ${input.imageId}`,
    );
    const previous = prev.rows[0] ?? null;
    const changed = input.label !== modelLabel;
    const saved = await tx.execute<{ reviewed_at: Date | string }>(sql`
      insert into reviews (image_id, label, model_label, changed, reviewer, reviewer_name, reviewed_at)
      values (${input.imageId}, ${input.label}, ${modelLabel}, ${changed}, ${input.reviewer},
        ${input.reviewerName ?? null}, clock_timestamp())
      on conflict (image_id) do update set label = excluded.label, model_label = excluded.model_label,
        changed = excluded.changed, reviewer = excluded.reviewer, reviewer_name = excluded.reviewer_name,
        reviewed_at = excluded.reviewed_at
      returning reviewed_at`);
    // One answer serves both queues: an audit of a flagged image is also its review.
    await tx.execute(
      sql`update results set awaiting_review = false, awaiting_audit = false
        where image_id = ${input.imageId} and (awaiting_review or awaiting_audit)`,
    );
    const base = { ...row, label: modelLabel };
    await updateRollup(tx, [
      previous
        ? { ...base, label: previous.label, reviewed: true, changed: previous.changed, sign: -1 }
        : { ...base, sign: -1 },
      { ...base, label: input.label, reviewed: true, changed, sign: 1 },
    ]);
    const quality = {
      bucket: row.bucket,
      site: row.site,
      line: row.line,
      flagged: row.needs_review,
      auditRate: Number(row.audit_rate),
      audit: row.audit,
      predicted: modelLabel,
    };
    await updateQualityRollup(tx, [
      { ...quality, truth: previous?.label ?? null, sign: -1 },
      { ...quality, truth: input.label, sign: 1 },
    ]);
    return {
      kind: "reviewed",
      previous: previous ? { label: previous.label, changed: previous.changed } : null,
      review: {
        imageId: input.imageId,
        modelLabel,
        label: input.label,
        changed,
        reviewer: input.reviewer,
        reviewerName: input.reviewerName ?? null,
        reviewedAt: new Date(saved.rows[0]?.reviewed_at ?? Date.now()),
      },
    };
  });
}
