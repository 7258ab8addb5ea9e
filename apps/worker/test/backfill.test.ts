import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import {
  activeModelMap,
  createBatch,
  modelAssignments,
  modelVersions,
  recordResults,
  shadowResults,
  writeReview,
} from "@garbage/db";
import type { BatchClassification } from "@garbage/inference";
import { createStore, type ImageStore } from "@garbage/storage";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backfillVersion } from "../src/backfill";
import type { ServedVersion } from "../src/model-pool";
import { createScratchDb, type ScratchDb } from "./own-services";

// Its own database: the backfill resolves sites through the '*' assignment, global state of a database.
let scratch: ScratchDb;
let dir: string;
let store: ImageStore;
beforeAll(async () => {
  [scratch, dir] = await Promise.all([createScratchDb(), mkdtemp(path.join(tmpdir(), "backfill-"))]);
  store = createStore(pathToFileURL(dir).href);
});
afterAll(async () => {
  await scratch?.drop();
  await rm(dir, { recursive: true, force: true });
});

async function version(name: string, sites: string[] | null, dataUntil: Date | null = null) {
  const [row] = await scratch.handle.db
    .insert(modelVersions)
    .values({ name, version: "1", sha256: "0".repeat(64), sites, manifest: {}, files: [], dataUntil })
    .returning();
  if (!row) throw new Error("no row");
  return row;
}

/** One image of `site` whose result `by` labelled, reviewed unless `reviewed` is false, stored unless not. */
async function image(site: string, by: string, o: { reviewed?: boolean; stored?: boolean } = {}) {
  const key = `b/${crypto.randomUUID()}`;
  if (o.stored !== false) await store.put(key, Buffer.from("image"));
  const created = await createBatch(scratch.handle.db, {
    site,
    images: [{ index: 0, bytes: 5, storageKey: key }],
  });
  const id = created.images[0]?.id as string;
  await recordResults(scratch.handle.db, [
    { imageId: id, status: "ok", label: "glass", confidence: 0.9, modelVersion: by },
  ]);
  if (o.reviewed !== false) {
    await writeReview(scratch.handle.db, { imageId: id, label: "metal", reviewer: "t", sites: null });
  }
  return id;
}

describe("backfillVersion", () => {
  it("classifies unseen reviewed images in scope with the candidate, and with the active version where needed", async () => {
    const [site, other] = ["site-s", "site-o"];
    const active = await version("active", [site]);
    const cand = await version("cand", [site], new Date(Date.now() - 3_600_000));
    await scratch.handle.db.insert(modelAssignments).values({ site, versionId: active.id });
    const byActive = await image(site, "active@1");
    const byDefault = await image(site, "shipped@1");
    const seen = await image(site, "shipped@1");
    await scratch.handle.db.execute(
      sql`update reviews set reviewed_at = now() - interval '2 hours' where image_id = ${seen}`,
    );
    await image(site, "shipped@1", { reviewed: false });
    const gone = await image(site, "shipped@1", { stored: false });
    await image(other, "shipped@1");

    const calls: string[] = [];
    const classify = async (v: ServedVersion, images: Uint8Array[]): Promise<BatchClassification> => {
      calls.push(`${v.modelVersion}:${images.length}`);
      // Every copy is whole: the real thread detaches what it is given.
      expect(images.every((b) => Buffer.from(b).toString() === "image")).toBe(true);
      const label = v.modelVersion.split("@")[0] as string;
      const outcome = { ok: true as const, label, confidence: 0.6, top: [{ label, confidence: 0.6 }] };
      const review = { needsReview: false, lowConfidence: false, unfamiliar: false, distance: null };
      return {
        outcomes: images.map(() => ({ ...outcome, needsReview: false, review, embedding: null })),
        decodeMs: 0,
        inferenceMs: 0,
        modelBatchSize: images.length,
      };
    };
    const deps = { db: scratch.handle.db, store, classify, batchSize: 8 };
    const map = await activeModelMap(scratch.handle.db);
    const row = { ...cand, modelVersion: "cand@1" };

    const first = await backfillVersion(deps, row, map, { limit: 64, skip: [] });
    expect(first).toMatchObject({ images: 3, candidate: 2, active: 1, skip: [gone] });
    expect(calls.sort()).toEqual(["active@1:1", "cand@1:2"]);
    const stored = await scratch.handle.db.select().from(shadowResults);
    const summary = stored.map((s) => [s.imageId, s.versionId, s.source, s.label]);
    expect(summary).toEqual(
      expect.arrayContaining([
        [byActive, cand.id, "reviewed", "cand"],
        [byDefault, cand.id, "reviewed", "cand"],
        [byDefault, active.id, "reviewed", "active"],
      ]),
    );
    expect(stored).toHaveLength(3);

    // Nothing left but the image without bytes, which the caller skips from then on.
    calls.length = 0;
    const again = await backfillVersion(deps, row, map, { limit: 64, skip: first.skip });
    expect(again).toMatchObject({ images: 0, candidate: 0, active: 0 });
    expect(calls).toEqual([]);
    // Bounded: one image per call when asked for one.
    await scratch.handle.db.delete(shadowResults).where(eq(shadowResults.versionId, cand.id));
    expect(await backfillVersion(deps, row, map, { limit: 1, skip: first.skip })).toMatchObject({
      images: 1,
    });
  });
});
