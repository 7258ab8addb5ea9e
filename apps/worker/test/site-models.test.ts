/**
 * Site models end to end (issue 19): the API app -> queue -> a worker PROCESS -> Postgres, with a registry
 * version in a file store. A candidate is shadowed (live images and the sweep's backfill of reviewed ones),
 * promoted for one site while another keeps the shipped default, and rolled back, all without a restart.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  compareVersions,
  getBatch,
  getSiteThresholds,
  images as imagesTable,
  type ModelVersionRow,
  promoteModelVersion,
  results,
  rollbackSites,
  setShadow,
  shadowResults,
  writeReview,
} from "@garbage/db";
import { publishModel } from "@garbage/models";
import { writeTinyModel } from "@garbage/onnx";
import { eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, openApi, uniqueSite } from "./api-harness";
import { colourJpeg, TEST_REDIS_URL, waitFor } from "./helpers";
import { createScratchDb, type ScratchDb } from "./own-services";
import { type ServiceProcess, startWorkerProcess, stopProcess } from "./processes";

// A red image is class 0 of the tiny classifier: "glass" for the shipped stand-in, "metal" for the candidate.
const SHIPPED = ["glass", "metal", "paper", "plastic", "trash", "cardboard"];
const CANDIDATE = ["metal", "glass", "paper", "plastic", "trash", "cardboard"];

let scratch: ScratchDb;
let dir: string;
let api: ApiHarness;
let worker: ServiceProcess | undefined;
let candidate: ModelVersionRow;

beforeAll(async () => {
  [scratch, dir] = await Promise.all([createScratchDb(), mkdtemp(path.join(tmpdir(), "site-models-"))]);
  api = await openApi(scratch.handle);
});
afterAll(async () => {
  if (worker) await stopProcess(worker, "SIGKILL");
  await api?.close();
  await scratch?.drop();
  await rm(dir, { recursive: true, force: true });
});

async function writeModels() {
  // The tiny model's confidence for a red image is about 0.48: under this threshold, not flagged, until the
  // site's own thresholds say otherwise.
  const review = { minConfidence: 0.3 };
  const shipped = await writeTinyModel(dir, {
    name: "shipped",
    classes: SHIPPED,
    manifest: { version: "1", review },
  });
  // What `npm run adapt` writes: the float model with a site block, and its int8 twin (the file a CPU serves).
  const site = { sites: null, images: 12, perClass: {}, source: "test", dataUntil: "2026-01-01T00:00:00Z" };
  const float = await writeTinyModel(dir, {
    name: "site",
    classes: CANDIDATE,
    seed: 3,
    manifest: { version: "2", site, review },
  });
  await writeTinyModel(dir, {
    name: "site-int8",
    classes: CANDIDATE,
    seed: 4,
    manifest: { version: "2", review },
  });
  return { shipped, float };
}

/** Uploads n red images for `site`; returns the batch id. */
async function upload(site: string, n: number): Promise<string> {
  const files = await Promise.all(
    Array.from({ length: n }, async (_, i) => ({
      filename: `${i}.jpg`,
      data: await colourJpeg("red", 48, 48, i),
    })),
  );
  const { body } = await api.submit(files, { fields: { site } });
  return body.id;
}

async function completed(batchId: string) {
  await waitFor(`batch ${batchId}`, async () => {
    const batch = await getBatch(scratch.handle.db, batchId);
    return batch?.status === "completed";
  });
  return scratch.handle.db
    .select({
      imageId: results.imageId,
      label: results.label,
      modelVersion: results.modelVersion,
      reviewReasons: results.reviewReasons,
    })
    .from(results)
    .where(eq(results.batchId, batchId));
}

const submit = async (site: string, n: number) => completed(await upload(site, n));

const shadowRows = (ids: string[]) =>
  scratch.handle.db.select().from(shadowResults).where(inArray(shadowResults.imageId, ids));

/** The worker logs each change of assignments it picks up; wait until it serves `site` with `expected`. */
const servingChange = (site: string, expected: string | undefined) =>
  waitFor(`worker to serve ${site} with ${expected ?? "the default"}`, async () => {
    const last = worker?.logs.findLast((l) => l.msg === "model assignments changed");
    return (last?.serving as Record<string, string> | undefined)?.[site] === expected && last !== undefined;
  });

describe("site models", () => {
  it("shadows a candidate, promotes it for one site without a restart, and rolls it back", async () => {
    const { shipped, float } = await writeModels();
    const [siteA, siteB] = [uniqueSite(), uniqueSite()];
    worker = await startWorkerProcess("worker", {
      DATABASE_URL: scratch.url,
      REDIS_URL: TEST_REDIS_URL,
      STORAGE_URL: api.storageUrl,
      QUEUE_NAME: api.queueName,
      MODEL_PATH: shipped,
      MODEL_CACHE_DIR: path.join(dir, "cache"),
      MODEL_REFRESH_MS: "200",
      SHADOW_RATE: "1",
      // Fitted from A's 4 reviews (all of them corrections of the default's label).
      SITE_THRESHOLD_MIN_REVIEWS: "3",
      SITE_THRESHOLD_INTERVAL_MS: "300",
      // The sweep runs the backfill; this database is the test's own, so it adopts nobody's batches.
      SWEEP_INTERVAL_MS: "300",
      WORKER_THREADS: "1",
      METRICS_PORT: "0",
      METRICS_HOST: "127.0.0.1",
    });

    // Reviewed images of A from before the candidate: the sweep backfills them with it.
    const before = await submit(siteA, 4);
    expect(before.every((r) => r.label === "glass" && r.modelVersion === "shipped@1")).toBe(true);
    for (const r of before) {
      await writeReview(scratch.handle.db, {
        imageId: r.imageId,
        label: "metal",
        reviewer: "t",
        sites: null,
      });
    }

    candidate = await publishModel({ db: scratch.handle.db, store: api.store, modelPath: float, by: "test" });
    expect(candidate).toMatchObject({ modelVersion: "site@2", sites: null, state: "candidate" });
    await setShadow(scratch.handle.db, candidate.id, true);
    await waitFor("the backfill of A's reviewed images", async () => {
      const rows = await shadowRows(before.map((r) => r.imageId));
      return (
        rows.length === before.length && rows.every((s) => s.source === "reviewed" && s.label === "metal")
      );
    });
    // What promotion checks: the candidate beats the default on A's reviewed images it never trained on.
    const onA = await compareVersions(scratch.handle.db, { candidateId: candidate.id, site: siteA });
    expect(onA.reviewed).toMatchObject({
      images: 4,
      candidate: { correct: 4 },
      active: { correct: 0 },
    });

    // Live traffic of both sites is served by the default and shadowed by the candidate (SHADOW_RATE=1).
    const live = [...(await submit(siteA, 3)), ...(await submit(siteB, 3))];
    expect(live.every((r) => r.label === "glass" && r.modelVersion === "shipped@1")).toBe(true);
    await waitFor("live shadow results", async () => {
      const rows = await shadowRows(live.map((r) => r.imageId));
      return rows.length === live.length && rows.every((s) => s.source === "live" && s.label === "metal");
    });
    expect((await compareVersions(scratch.handle.db, { candidateId: candidate.id })).live).toMatchObject({
      images: 6,
      agreement: 0,
    });

    // Promoted for A only: the running worker switches within MODEL_REFRESH_MS; B keeps the default.
    await promoteModelVersion(scratch.handle.db, candidate.id, { sites: [siteA], by: "test" });
    await servingChange(siteA, "site@2");
    const a = await submit(siteA, 3);
    const b = await submit(siteB, 3);
    // The int8 twin serves on a CPU; results carry the float manifest's name@version all the same.
    const served = (rows: typeof a) => rows.map((r) => [r.label, r.modelVersion, r.reviewReasons]);
    expect(served(a)).toEqual(Array(3).fill(["metal", "site@2", []]));
    expect(served(b)).toEqual(Array(3).fill(["glass", "shipped@1", []]));
    expect(await readdir(path.join(dir, "cache", candidate.sha256))).toContain("site-int8.onnx");
    // Active now, so it no longer shadows.
    expect(await shadowRows([...a, ...b].map((r) => r.imageId))).toEqual([]);

    await rollbackSites(scratch.handle.db, { sites: [siteA], by: "test" });
    await servingChange(siteA, undefined);
    // The sweep fitted A's thresholds for the default from A's reviews: no confidence made its labels 90 %
    // right, so everything it labels on A is flagged from now on (B, without reviews, keeps the manifest's).
    const [fitted] = await getSiteThresholds(scratch.handle.db, { sites: [siteA] });
    expect(fitted).toMatchObject({ modelVersion: "shipped@1", minConfidence: 1, reviewed: 4, coverage: 0 });
    await new Promise((r) => setTimeout(r, 1_000)); // a few MODEL_REFRESH_MS
    const back = await submit(siteA, 3);
    expect(served(back)).toEqual(Array(3).fill(["glass", "shipped@1", ["low_confidence"]]));
    expect(served(await submit(siteB, 2))).toEqual(Array(2).fill(["glass", "shipped@1", []]));
    const stored = await scratch.handle.db.select().from(imagesTable).where(eq(imagesTable.site, siteA));
    expect(stored).toHaveLength(4 + 3 + 3 + 3);

    // A version whose stored file is damaged: its site's images wait (the job is retried) rather than being
    // labelled by another version, and are served once the site is rolled back.
    const broken = await publishModel({
      db: scratch.handle.db,
      store: api.store,
      modelPath: await writeTinyModel(dir, {
        name: "broken",
        classes: CANDIDATE,
        manifest: { version: "3" },
      }),
      by: "test",
    });
    const file = broken.files.find((f) => f.role === "fp32");
    await api.store.put(file?.key as string, Buffer.from("not the model"));
    const siteC = uniqueSite();
    await promoteModelVersion(scratch.handle.db, broken.id, { sites: [siteC], by: "test" });
    await servingChange(siteC, "broken@3");
    const waiting = await upload(siteC, 2);
    await waitFor("the failed load", async () =>
      worker?.logs.some(
        (l) => l.msg?.startsWith("cannot load model version") && l.modelVersion === "broken@3",
      ),
    );
    expect(await scratch.handle.db.select().from(results).where(eq(results.batchId, waiting))).toEqual([]);
    await rollbackSites(scratch.handle.db, { sites: [siteC], by: "test" });
    expect(served(await completed(waiting))).toEqual(Array(2).fill(["glass", "shipped@1", []]));

    expect(worker.child.exitCode).toBeNull();
    const loaded = worker.logs.filter((l) => l.msg === "model version loaded").map((l) => l.modelVersion);
    expect(loaded).toEqual(["shipped@1", "site@2"]);
  });
});
