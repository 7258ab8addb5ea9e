import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  computeSiteThresholds,
  createBatch,
  type DbHandle,
  fitMinConfidence,
  getSiteThresholds,
  modelVersions,
  recordResults,
  sitesWithReviews,
  writeReview,
} from "../src/index";
import { openTestDb } from "./helpers";

let handle: DbHandle;
beforeAll(async () => {
  handle = await openTestDb();
});
afterAll(async () => {
  await handle?.close();
});

interface Sample {
  confidence: number;
  novelty: number | null;
  correct: boolean;
  reviewed?: boolean;
}

/** One batch of a site with ok results of `modelVersion`, reviewed as right or wrong. */
async function seed(site: string, modelVersion: string, samples: Sample[]) {
  const created = await createBatch(handle.db, {
    site,
    images: samples.map((_, index) => ({ index, bytes: 1, storageKey: `t/${randomUUID()}` })),
  });
  const ids = created.images.map((i) => i.id);
  await recordResults(
    handle.db,
    samples.map((s, i) => ({
      imageId: ids[i] as string,
      status: "ok" as const,
      label: "glass",
      confidence: s.confidence,
      modelVersion,
      review: { needsReview: false, lowConfidence: false, unfamiliar: false, distance: s.novelty },
    })),
  );
  for (const [i, s] of samples.entries()) {
    if (s.reviewed === false) continue;
    const label = s.correct ? "glass" : "metal";
    await writeReview(handle.db, { imageId: ids[i] as string, label, reviewer: "t", sites: null });
  }
}

// 60 results at confidence 0.30 .. 0.89, right exactly from 0.60 up: the lowest threshold whose unflagged part
// is 90 % right keeps 33 of them (0.57 .. 0.89, 30 right).
const graded: Sample[] = Array.from({ length: 60 }, (_, i) => ({
  confidence: (30 + i) / 100,
  novelty: 0.1,
  correct: 30 + i >= 60,
}));
// Confident, wrong and far from the training data: only a distance threshold keeps them out.
const strangers: Sample[] = Array.from({ length: 5 }, () => ({
  confidence: 0.95,
  novelty: 0.9,
  correct: false,
}));

describe("fitMinConfidence", () => {
  it("picks the lowest grid value that meets the target, or flags everything", () => {
    expect(fitMinConfidence(graded, null, 0.9)).toEqual({
      minConfidence: 0.57,
      coverage: 33 / 60,
      unflaggedAccuracy: 30 / 33,
    });
    expect(fitMinConfidence([...graded, ...strangers], 0.5, 0.9).minConfidence).toBe(0.57);
    expect(fitMinConfidence([...graded, ...strangers], null, 0.9)).toEqual({
      minConfidence: 1,
      coverage: 0,
      unflaggedAccuracy: 0,
    });
    // Half of them right already: nothing needs flagging for a target of 0.5.
    expect(fitMinConfidence(graded, null, 0.5).minConfidence).toBe(0);
  });
});

describe("computeSiteThresholds", () => {
  it("fits on the site's reviewed results of that version and stores one row per site and version", async () => {
    const site = `thr-${randomUUID()}`;
    const name = `thr-model-${randomUUID()}`;
    const mv = `${name}@1`;
    await handle.db.insert(modelVersions).values({
      name,
      version: "1",
      sha256: "0".repeat(64),
      manifest: { review: { minConfidence: 0.5, maxDistance: 0.5 } },
      files: [],
    });
    await seed(site, mv, [...graded, ...strangers]);
    // Not reviewed, another version, another site: none of them count.
    await seed(site, mv, [{ confidence: 0.99, novelty: 0.1, correct: false, reviewed: false }]);
    await seed(site, "other@1", strangers);
    await seed(`elsewhere-${randomUUID()}`, mv, strangers);

    const opts = { site, modelVersion: mv, target: 0.9, minReviewed: 50 };
    expect(await computeSiteThresholds(handle.db, { ...opts, minReviewed: 100 })).toEqual({ needed: 35 });
    expect(await getSiteThresholds(handle.db, { sites: [site] })).toEqual([]);

    // The registered manifest's maxDistance (0.5) keeps the far, wrong ones flagged.
    const fitted = await computeSiteThresholds(handle.db, opts);
    expect(fitted).toMatchObject({
      site,
      modelVersion: mv,
      minConfidence: 0.57,
      maxDistance: 0.5,
      reviewed: 65,
      coverage: 33 / 65,
      unflaggedAccuracy: 30 / 33,
      target: 0.9,
    });
    // Without a distance threshold no confidence is safe enough: everything is flagged.
    const strict = await computeSiteThresholds(handle.db, { ...opts, maxDistance: null });
    expect(strict).toMatchObject({ minConfidence: 1, maxDistance: null, coverage: 0 });
    const rows = await getSiteThresholds(handle.db, { sites: [site] });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ minConfidence: 1, reviewed: 65 });
    expect(await sitesWithReviews(handle.db)).toContain(site);
  });
});
