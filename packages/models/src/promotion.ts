import { ALL_SITES, type Comparison, compareVersions, type DbOrTx, type ModelVersionRow } from "@garbage/db";

export type PromotionRefusal = "candidate_worse" | "no_evidence";

export interface PromotionCheck {
  comparison: Comparison;
  /** The site compared on; null = the version's whole scope. */
  site: string | null;
  /** Why promotion should be refused without `force`; null when the evidence allows it. */
  refusal: { code: PromotionRefusal; message: string } | null;
}

/**
 * The rule the API and the CLI promote by: the candidate must be at least as accurate as the version active
 * for each image's site on reviewed images it never trained on, and there must be some. Promoting to one site
 * compares on that site; to several (or its scope), on the whole scope.
 */
export async function checkPromotion(
  db: DbOrTx,
  version: ModelVersionRow,
  options: { sites?: readonly string[] } = {},
): Promise<PromotionCheck> {
  const target = options.sites ?? version.sites ?? [ALL_SITES];
  const site = target.length === 1 && target[0] !== ALL_SITES ? (target[0] ?? null) : null;
  const comparison = await compareVersions(db, { candidateId: version.id, ...(site ? { site } : {}) });
  const where = site ? `site ${site}` : "its scope";
  const { images, candidate, active } = comparison.reviewed;
  let refusal: PromotionCheck["refusal"] = null;
  if (images === 0) {
    refusal = {
      code: "no_evidence",
      message: `no reviewed images of ${where} after ${version.modelVersion}'s data cut-off have predictions of both versions yet (shadow it first)`,
    };
  } else if (candidate.correct < active.correct) {
    refusal = {
      code: "candidate_worse",
      message: `${version.modelVersion} got ${candidate.correct}/${images} reviewed images of ${where} right, the active version ${active.correct}/${images}`,
    };
  }
  return { comparison, site, refusal };
}
