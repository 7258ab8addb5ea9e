import { randomBytes, randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  compareVersions,
  createBatch,
  createDb,
  type DbHandle,
  dropDatabase,
  ensureDatabase,
  migrate,
  modelAssignments,
  modelVersions,
  recordResults,
  recordShadowResults,
  type ShadowResultInput,
  writeReview,
} from "../src/index";
import { TEST_DATABASE_URL } from "./helpers";

// A database of its own: compareVersions falls back to the '*' assignment, which is global state that other
// suites on the shared test database may set.
const url = new URL(TEST_DATABASE_URL);
url.pathname = `${url.pathname}_${randomBytes(4).toString("hex")}`;
let handle: DbHandle;
beforeAll(async () => {
  await ensureDatabase(url.href);
  handle = createDb(url.href, { max: 2 });
  await migrate(handle.db);
});
afterAll(async () => {
  await handle?.close();
  await dropDatabase(url.href);
});

async function version(name: string, sites: string[] | null, dataUntil: Date | null = null) {
  const [row] = await handle.db
    .insert(modelVersions)
    .values({ name, version: "1", sha256: "0".repeat(64), sites, manifest: {}, files: [], dataUntil })
    .returning();
  if (!row) throw new Error("no row");
  return { id: row.id, string: `${name}@1` };
}

interface Seed {
  site: string;
  /** Which version labelled the result, and its label. */
  by: string;
  label: string;
  flagged?: boolean;
  review?: string;
}

async function seed(entries: Seed[]): Promise<string[]> {
  const ids: string[] = [];
  for (const e of entries) {
    const created = await createBatch(handle.db, {
      site: e.site,
      images: [{ index: 0, bytes: 1, storageKey: `s/${randomUUID()}` }],
    });
    const id = created.images[0]?.id as string;
    const review = {
      needsReview: !!e.flagged,
      lowConfidence: !!e.flagged,
      unfamiliar: false,
      distance: null,
    };
    await recordResults(handle.db, [
      { imageId: id, status: "ok", label: e.label, confidence: 0.8, modelVersion: e.by, review },
    ]);
    if (e.review) await writeReview(handle.db, { imageId: id, label: e.review, reviewer: "t", sites: null });
    ids.push(id);
  }
  return ids;
}

const shadow = (
  imageId: string,
  versionId: string,
  label: string,
  source: "live" | "reviewed",
  flagged = false,
): ShadowResultInput => ({
  imageId,
  versionId,
  source,
  label,
  confidence: 0.7,
  top: [{ label, confidence: 0.7 }],
  review: { needsReview: flagged, lowConfidence: flagged, unfamiliar: false, distance: 0.2 },
});

describe("recordShadowResults", () => {
  it("keeps the first row of an image and version, and skips images that are gone", async () => {
    const v = await version(`keep-${randomUUID()}`, null);
    const [id] = (await seed([{ site: "k", by: "x@1", label: "glass" }])) as [string];
    await recordShadowResults(handle.db, [shadow(id, v.id, "metal", "live", true)]);
    await recordShadowResults(handle.db, [
      shadow(id, v.id, "paper", "reviewed"),
      shadow(randomUUID(), v.id, "x", "live"),
    ]);
    const rows = await handle.db.execute(
      sql`select label, source, needs_review, review_reasons, novelty from shadow_results where version_id = ${v.id}`,
    );
    expect(rows.rows).toEqual([
      {
        label: "metal",
        source: "live",
        needs_review: true,
        review_reasons: ["low_confidence"],
        novelty: 0.2,
      },
    ]);
  });
});

describe("compareVersions", () => {
  it("compares on unseen reviewed images with an active prediction, and on live images against what served", async () => {
    const [s, other] = [`s-${randomUUID()}`, `o-${randomUUID()}`];
    const active = await version(`active-${randomUUID()}`, [s]);
    const old = await version(`old-${randomUUID()}`, [s]);
    const cand = await version(`cand-${randomUUID()}`, [s], new Date(Date.now() - 3_600_000));
    await handle.db.insert(modelAssignments).values({ site: s, versionId: active.id });
    const A = active.string;
    const [i1, i2, i3, i4, i5, i6, i7, i8] = (await seed([
      { site: s, by: A, label: "glass", review: "glass", flagged: true },
      { site: s, by: A, label: "glass", review: "metal" },
      { site: s, by: A, label: "paper", review: "paper" },
      { site: s, by: old.string, label: "paper", review: "metal" },
      { site: s, by: old.string, label: "paper", review: "paper" },
      { site: s, by: A, label: "glass", review: "glass" },
      { site: s, by: A, label: "glass" },
      { site: other, by: A, label: "glass", review: "metal" },
    ])) as string[] as [string, string, string, string, string, string, string, string];
    // i6 was reviewed before the candidate's data cut-off: it may have trained on it.
    await handle.db.execute(
      sql`update reviews set reviewed_at = now() - interval '2 hours' where image_id = ${i6}`,
    );
    await recordShadowResults(handle.db, [
      shadow(i1, cand.id, "glass", "live"),
      shadow(i2, cand.id, "metal", "live"),
      shadow(i3, cand.id, "plastic", "reviewed"),
      shadow(i4, cand.id, "metal", "reviewed"),
      // The backfill's prediction of the active version for an image another version labelled.
      shadow(i4, active.id, "paper", "reviewed"),
      shadow(i5, cand.id, "metal", "reviewed"),
      shadow(i6, cand.id, "glass", "live"),
      shadow(i7, cand.id, "trash", "live", true),
      shadow(i8, cand.id, "metal", "live"),
    ]);

    const c = await compareVersions(handle.db, { candidateId: cand.id });
    expect(c.reviewed).toEqual({
      images: 4,
      candidate: { correct: 3, accuracy: 0.75 },
      active: { correct: 2, accuracy: 0.5 },
      perClass: [
        { label: "glass", n: 1, candidateRecall: 1, activeRecall: 1 },
        { label: "metal", n: 2, candidateRecall: 1, activeRecall: 0 },
        { label: "paper", n: 1, candidateRecall: 0, activeRecall: 1 },
      ],
    });
    expect(c.live).toEqual({ images: 4, agreement: 0.5, candidateReviewRate: 0.25, activeReviewRate: 0.25 });
    expect(c.changes).toEqual([
      { from: "paper", to: "metal", n: 2 },
      { from: "glass", to: "metal", n: 1 },
      { from: "glass", to: "trash", n: 1 },
      { from: "paper", to: "plastic", n: 1 },
    ]);
    // Outside the candidate's scope there is nothing to compare.
    const elsewhere = await compareVersions(handle.db, { candidateId: cand.id, site: other });
    expect(elsewhere.reviewed.images).toBe(0);
    expect(elsewhere.live.images).toBe(0);
  });

  it("takes a default-served site's results of the default version as the active side", async () => {
    const d = `d-${randomUUID()}`;
    const cand = await version(`every-${randomUUID()}`, null);
    const registered = await version(`reg-${randomUUID()}`, null);
    const [a, b] = (await seed([
      { site: d, by: "shipped@1", label: "glass", review: "metal" },
      { site: d, by: registered.string, label: "metal", review: "metal" },
    ])) as [string, string];
    await recordShadowResults(handle.db, [
      shadow(a, cand.id, "metal", "live"),
      shadow(b, cand.id, "metal", "live"),
    ]);

    const guessed = await compareVersions(handle.db, { candidateId: cand.id, site: d });
    expect(guessed.reviewed).toMatchObject({ images: 1, candidate: { correct: 1 }, active: { correct: 0 } });
    const named = await compareVersions(handle.db, {
      candidateId: cand.id,
      site: d,
      defaultVersion: "shipped@1",
    });
    expect(named.reviewed).toMatchObject({ images: 1, candidate: { correct: 1 }, active: { correct: 0 } });
    const none = await compareVersions(handle.db, { candidateId: cand.id, site: d, defaultVersion: "x@2" });
    expect(none.reviewed.images).toBe(0);
    // Live agreement is against what served, whoever that was.
    expect(named.live).toMatchObject({ images: 2, agreement: 0.5 });
  });
});
