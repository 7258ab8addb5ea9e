import { sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import type { ReviewInput } from "./record-results";
import type { TopEntry } from "./schema/results";
import type { ShadowSource } from "./schema/shadow-results";

/** One prediction of a version that does not serve the image (a shadow run or a backfill). */
export interface ShadowResultInput {
  imageId: string;
  versionId: string;
  source: ShadowSource;
  label: string;
  confidence: number;
  top: TopEntry[];
  /** The version's review flags for the prediction; absent = not flagged. */
  review?: ReviewInput | null;
}

/**
 * Stores shadow predictions, idempotently: a row that exists (a retried job, two workers backfilling the same
 * image) is kept as it is. Rows whose image or version was deleted meanwhile are skipped rather than failing
 * the whole write with a foreign-key error: shadow work is best effort and must never block anything.
 */
export async function recordShadowResults(db: DbOrTx, rows: readonly ShadowResultInput[]): Promise<void> {
  if (rows.length === 0) return;
  const payload = rows.map((r) => ({
    image_id: r.imageId,
    version_id: r.versionId,
    source: r.source,
    label: r.label,
    confidence: r.confidence,
    top: r.top,
    needs_review: r.review?.needsReview ?? false,
    review_reasons: [
      ...(r.review?.lowConfidence ? ["low_confidence"] : []),
      ...(r.review?.unfamiliar ? ["unfamiliar"] : []),
    ],
    novelty: r.review?.distance ?? null,
  }));
  await db.execute(sql`
    insert into shadow_results (image_id, version_id, source, label, confidence, top, needs_review,
      review_reasons, novelty)
    select v.image_id, v.version_id, v.source, v.label, v.confidence, v.top, v.needs_review, v.review_reasons,
      v.novelty
    from jsonb_to_recordset(${JSON.stringify(payload)}::jsonb) as v(image_id uuid, version_id uuid, source text,
      label text, confidence float8, top jsonb, needs_review boolean, review_reasons text[], novelty float8)
    join images i on i.id = v.image_id
    join model_versions m on m.id = v.version_id
    -- Sorted so concurrent writers take row locks in one order.
    order by v.image_id, v.version_id
    on conflict (image_id, version_id) do nothing`);
}

export interface Comparison {
  /**
   * Images in the candidate's scope reviewed after its data cut-off (so it never trained on them) that have
   * both a candidate prediction and a prediction of the version active for the image's site.
   */
  reviewed: {
    images: number;
    candidate: { correct: number; accuracy: number };
    active: { correct: number; accuracy: number };
    /** By reviewed label: how many, and the share each version got right (recall). */
    perClass: { label: string; n: number; candidateRecall: number; activeRecall: number }[];
  };
  /** Live images the candidate shadowed, against the result that was served for them. */
  live: { images: number; agreement: number; candidateReviewRate: number; activeReviewRate: number };
  /** Where the candidate's label differs from the active side's (the served label for live images), by pair. */
  changes: { from: string; to: string; n: number }[];
}

export interface CompareOptions {
  candidateId: string;
  /** Only images of this site (still within the candidate's scope). */
  site?: string;
  /**
   * `name@version` of the shipped default (what serves a site without an assignment). Unknown to the database;
   * without it, a default-served site's active predictions are its results labelled by no registered version.
   */
  defaultVersion?: string;
}

interface CompareRow {
  reviewed: { label: string; n: number; cand: number; act: number }[] | null;
  live: { images: number; agree: number; cand_review: number; act_review: number };
  changes: { from: string; to: string; n: number }[] | null;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);

/**
 * Candidate against the version that serves each image's site now (assignment for the site, else '*', else the
 * shipped default). The active prediction of an image is the active version's shadow row (a backfill), else its
 * result when that result was labelled by the active version. Promotion refuses on `reviewed` (see the API).
 */
export async function compareVersions(db: DbOrTx, options: CompareOptions): Promise<Comparison> {
  const defaultMatch =
    options.defaultVersion !== undefined
      ? sql`r.model_version = ${options.defaultVersion}`
      : sql`r.model_version not in (select name || '@' || version from model_versions)`;
  const res = await db.execute<CompareRow & Record<string, unknown>>(sql`
    with cand as (select id, sites, data_until from model_versions where id = ${options.candidateId}::uuid),
    asg as (
      select a.site, a.version_id, m.name || '@' || m.version as version_string
      from model_assignments a join model_versions m on m.id = a.version_id
    ),
    c as materialized (
      select s.image_id, s.source, s.label, s.needs_review, cand.data_until,
        coalesce(own.version_id, star.version_id) as active_id,
        coalesce(own.version_string, star.version_string) as active_string
      from cand
      join shadow_results s on s.version_id = cand.id
      join images i on i.id = s.image_id
      left join asg own on own.site = i.site
      left join asg star on star.site = '*'
      where (cand.sites is null or i.site = any(cand.sites))
        ${options.site !== undefined ? sql`and i.site = ${options.site}` : sql``}
    ),
    p as materialized (
      select c.source, c.label, c.needs_review, r.label as served_label, r.needs_review as served_review,
        rv.label as truth, (rv.reviewed_at > c.data_until or c.data_until is null) as unseen,
        coalesce(a.label, case when (c.active_id is not null and r.model_version = c.active_string)
          or (c.active_id is null and ${defaultMatch}) then r.label end) as active_label
      from c
      left join results r on r.image_id = c.image_id and r.status = 'ok'
      left join reviews rv on rv.image_id = c.image_id
      left join shadow_results a on a.image_id = c.image_id and a.version_id = c.active_id
    )
    select
      (select json_agg(x order by x.label) from (
        select truth as label, count(*)::int as n, count(*) filter (where label = truth)::int as cand,
          count(*) filter (where active_label = truth)::int as act
        from p where truth is not null and unseen and active_label is not null group by truth) x) as reviewed,
      (select json_build_object('images', count(*)::int,
          'agree', count(*) filter (where label = served_label)::int,
          'cand_review', count(*) filter (where needs_review)::int,
          'act_review', count(*) filter (where served_review)::int)
        from p where source = 'live' and served_label is not null) as live,
      (select json_agg(y order by y.n desc, y."from", y."to") from (
        select active_side as "from", label as "to", count(*)::int as n
        from (select label, case when source = 'live' then coalesce(served_label, active_label)
                else coalesce(active_label, served_label) end as active_side from p) q
        where active_side is not null and active_side <> label group by active_side, label) y) as changes`);
  const row = res.rows[0];
  const classes = row?.reviewed ?? [];
  const images = classes.reduce((s, c) => s + c.n, 0);
  const candCorrect = classes.reduce((s, c) => s + c.cand, 0);
  const actCorrect = classes.reduce((s, c) => s + c.act, 0);
  const live = row?.live ?? { images: 0, agree: 0, cand_review: 0, act_review: 0 };
  return {
    reviewed: {
      images,
      candidate: { correct: candCorrect, accuracy: ratio(candCorrect, images) },
      active: { correct: actCorrect, accuracy: ratio(actCorrect, images) },
      perClass: classes.map((c) => ({
        label: c.label,
        n: c.n,
        candidateRecall: ratio(c.cand, c.n),
        activeRecall: ratio(c.act, c.n),
      })),
    },
    live: {
      images: live.images,
      agreement: ratio(live.agree, live.images),
      candidateReviewRate: ratio(live.cand_review, live.images),
      activeReviewRate: ratio(live.act_review, live.images),
    },
    changes: row?.changes ?? [],
  };
}
