import { inArray, sql } from "drizzle-orm";
import type { DbOrTx } from "./client";
import { siteReviewThresholds } from "./schema/site-review-thresholds";

export type SiteThresholdRow = typeof siteReviewThresholds.$inferSelect;

export async function getSiteThresholds(
  db: DbOrTx,
  options: { sites?: readonly string[] } = {},
): Promise<SiteThresholdRow[]> {
  if (options.sites?.length === 0) return [];
  return db
    .select()
    .from(siteReviewThresholds)
    .where(options.sites ? inArray(siteReviewThresholds.site, [...options.sites]) : undefined)
    .orderBy(siteReviewThresholds.site, siteReviewThresholds.modelVersion);
}

export interface ComputeThresholdsOptions {
  site: string;
  /** `name@version` of the version whose results are fitted (what results.model_version records). */
  modelVersion: string;
  /** Accuracy the unflagged part must reach on the site's reviewed images. */
  target: number;
  /** Fewer reviewed results than this: nothing is fitted or stored. */
  minReviewed: number;
  /**
   * The version's novelty threshold, kept as it is. Unset: a registered version's float manifest's
   * `review.maxDistance`, else none (the shipped default's manifest is not in the database; its caller passes it).
   */
  maxDistance?: number | null;
  /** Most recent reviews fitted on; the site's latest behaviour matters more than its oldest. */
  limit?: number;
}

export interface FitSample {
  confidence: number;
  novelty: number | null;
  correct: boolean;
}

export interface Fit {
  minConfidence: number;
  coverage: number;
  unflaggedAccuracy: number;
}

/**
 * The lowest minConfidence on a 0.01 grid whose unflagged part (confidence >= it and, with a maxDistance, not
 * farther than it) is at least `target` accurate. Lowest, because every step up sends more images to people.
 * When no grid value reaches the target, everything is flagged: minConfidence 1, and coverage and accuracy of
 * whatever is still unflagged (0 and 0 when nothing is).
 */
export function fitMinConfidence(
  samples: readonly FitSample[],
  maxDistance: number | null,
  target: number,
): Fit {
  const familiar = samples.filter(
    (s) => maxDistance === null || s.novelty === null || s.novelty <= maxDistance,
  );
  const at = (t: number): Fit => {
    const kept = familiar.filter((s) => s.confidence >= t);
    const right = kept.filter((s) => s.correct).length;
    return {
      minConfidence: t,
      coverage: samples.length ? kept.length / samples.length : 0,
      unflaggedAccuracy: kept.length ? right / kept.length : 0,
    };
  };
  for (let step = 0; step <= 100; step++) {
    const fit = at(step / 100);
    if (fit.coverage > 0 && fit.unflaggedAccuracy >= target) return fit;
  }
  return at(1);
}

/**
 * Fits and stores a site's thresholds for one model version from the site's reviewed ok results that this
 * version labelled (their confidence and novelty against the reviewer's label). Returns how many more reviews
 * are needed when there are fewer than `minReviewed`; nothing is stored then.
 */
export async function computeSiteThresholds(
  db: DbOrTx,
  options: ComputeThresholdsOptions,
): Promise<SiteThresholdRow | { needed: number }> {
  const res = await db.execute<{ confidence: number; novelty: number | null; correct: boolean }>(sql`
    select r.confidence, r.novelty, r.label = rv.label as correct
    from reviews rv
    join images i on i.id = rv.image_id
    join results r on r.image_id = rv.image_id
    where i.site = ${options.site} and r.status = 'ok' and r.model_version = ${options.modelVersion}
    order by rv.reviewed_at desc
    limit ${options.limit ?? 10_000}`);
  const samples = res.rows;
  if (samples.length < options.minReviewed) return { needed: options.minReviewed - samples.length };

  const maxDistance =
    options.maxDistance !== undefined
      ? options.maxDistance
      : await registeredMaxDistance(db, options.modelVersion);
  const fit = fitMinConfidence(samples, maxDistance, options.target);
  const values = {
    site: options.site,
    modelVersion: options.modelVersion,
    minConfidence: fit.minConfidence,
    maxDistance,
    reviewed: samples.length,
    coverage: fit.coverage,
    unflaggedAccuracy: fit.unflaggedAccuracy,
    target: options.target,
    computedAt: new Date(),
  };
  const [row] = await db
    .insert(siteReviewThresholds)
    .values(values)
    .onConflictDoUpdate({
      target: [siteReviewThresholds.site, siteReviewThresholds.modelVersion],
      set: { ...values, computedAt: sql`now()` },
    })
    .returning();
  if (!row) throw new Error(`site thresholds for ${options.site} were not stored`);
  return row;
}

async function registeredMaxDistance(db: DbOrTx, modelVersion: string): Promise<number | null> {
  const res = await db.execute<{ max_distance: number | null }>(sql`
    select (manifest -> 'review' ->> 'maxDistance')::float8 as max_distance
    from model_versions where name || '@' || version = ${modelVersion}`);
  return res.rows[0]?.max_distance ?? null;
}

/** Sites with at least one reviewed image (read from the rollup, which is far smaller than the reviews). */
export async function sitesWithReviews(db: DbOrTx): Promise<string[]> {
  const res = await db.execute<{ site: string }>(sql`
    select distinct site from class_stats where reviewed_count > 0 and site <> '' order by site`);
  return res.rows.map((r) => r.site);
}
