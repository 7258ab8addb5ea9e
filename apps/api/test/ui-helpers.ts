import { randomUUID } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type ResultInput, recordResults } from "@garbage/db";
import { type ModelManifest, readManifest } from "@garbage/inference";
import { writeTinyReviewModel } from "@garbage/onnx";
import type { AppConfig } from "../src/app";
import { parseConfig } from "../src/config";
import { DATABASE_URL, form, type Harness, json, makeApp, png, type TestApp } from "./helpers";

export const CLASSES = ["reddish", "greenish", "bluish"] as const;

/** A real manifest (the tiny review model's), as the API reads it at start. */
export async function tinyManifest(): Promise<ModelManifest> {
  const dir = await mkdtemp(path.join(tmpdir(), "garbage-ui-model-"));
  const model = await writeTinyReviewModel(dir, {
    name: "ui-tiny",
    classes: CLASSES,
    size: 8,
    seed: 7,
    manifest: { version: "ui-1" },
    references: [[1, 0, 0]],
    maxDistance: 0.5,
  });
  return readManifest(model.replace(/\.onnx$/, ".json"));
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/**
 * Two single-site keys (alpha: north, beta: south) and an all-sites key, on fresh site names: the test
 * database and its rollup are shared and never emptied.
 */
export function sites() {
  const north = `north-${randomUUID().slice(0, 8)}`;
  const south = `south-${randomUUID().slice(0, 8)}`;
  const apiKeys = parseConfig({ DATABASE_URL, API_KEYS: `alpha:${north},beta:${south},root` }).apiKeys;
  return { north, south, apiKeys };
}

let manifest: Promise<ModelManifest> | undefined;

/** makeApp with the tiny model's manifest as the serving model (its classes: CLASSES). */
export async function uiApp(h: Harness, config: Partial<AppConfig> = {}): Promise<TestApp> {
  manifest ??= tinyManifest();
  return makeApp(h, { config, model: await manifest });
}

/** Uploads real PNGs through POST /v1/batches; returns the batch id and image ids in upload order. */
export async function upload(
  t: TestApp,
  key: string,
  fields: Record<string, string>,
  colours: [number, number, number][],
): Promise<{ batchId: string; imageIds: string[] }> {
  const files = await Promise.all(
    colours.map(async ([r, g, b], i) => ({
      data: await png(r, g, b, 32),
      filename: `img-${i}.png`,
      type: "image/png",
    })),
  );
  const res = await t.app.request("/v1/batches", {
    method: "POST",
    headers: bearer(key),
    body: form(files, fields),
  });
  if (res.status !== 202) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  const { id } = await json<{ id: string }>(res);
  const page = await json<{ items: { imageId: string }[] }>(
    await t.app.request(`/v1/batches/${id}/results?limit=1000`, { headers: bearer(key) }),
  );
  return { batchId: id, imageIds: page.items.map((i) => i.imageId) };
}

/** Records results as the worker does (recordResults is the worker's own write path). */
export async function classify(h: Harness, rows: ResultInput[]): Promise<void> {
  await recordResults(h.db.db, rows);
}

export const ok = (imageId: string, label: string, confidence: number, needsReview = false): ResultInput => ({
  imageId,
  status: "ok",
  label,
  confidence,
  top: [{ label, confidence }],
  review: { needsReview, lowConfidence: needsReview, unfamiliar: false, distance: null },
});

/**
 * The rollup (what /v1/stats reads) and a fresh count over results and reviews for one site, both as
 * {label: [count, needsReview, reviewed, changed]}: they must always agree.
 */
export async function rollupAndRecount(h: Harness, site: string) {
  type Row = { label: string; c: string; n: string; r: string; x: string };
  const rollup = await h.db.pool.query<Row>(
    `select label, sum(count) as c, sum(review_count) as n, sum(reviewed_count) as r, sum(changed_count) as x
     from class_stats where site = $1 and label <> '' group by label having sum(count) <> 0`,
    [site],
  );
  const fresh = await h.db.pool.query<Row>(
    `select coalesce(rv.label, r.label) as label, count(*) as c, count(*) filter (where r.needs_review) as n,
       count(rv.image_id) as r, count(*) filter (where rv.changed) as x
     from results r join images i on i.id = r.image_id left join reviews rv on rv.image_id = r.image_id
     where i.site = $1 and r.status = 'ok' group by 1`,
    [site],
  );
  const shape = (rows: Row[]) =>
    Object.fromEntries(
      rows.map((row) => [row.label, [row.c, row.n, row.r, row.x].map(Number)] as const).sort(),
    );
  return { rollup: shape(rollup.rows), fresh: shape(fresh.rows) };
}
