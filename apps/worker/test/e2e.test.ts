/**
 * End to end: the API app (createApp) -> Redis queue -> worker PROCESSES (node --import tsx, as in
 * production) -> Postgres. Every image must be accounted for exactly once, whatever happens to the workers.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type DbHandle, getBatch, images as imagesTable, results } from "@garbage/db";
import { loadClassifier } from "@garbage/inference";
import { eq, sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, openApi, type UploadFile, uniqueSite } from "./api-harness";
import {
  type Colour,
  colourJpeg,
  EXPECTED_LABEL,
  openTestDb,
  REAL_MODEL,
  realModelPresent,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
  TRASHNET_VAL,
  truncatedJpeg,
  waitFor,
  writeTinyModel,
} from "./helpers";
import { type ServiceProcess, scrapeMetric, startWorkerProcess, stopProcess } from "./processes";

let db: DbHandle;
let dir: string;
let tinyModel: string;
let heavyModel: string;
let api: ApiHarness;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  db = await openTestDb();
  dir = await mkdtemp(path.join(tmpdir(), "worker-e2e-"));
  tinyModel = await writeTinyModel(dir, 8, "tiny");
  // Same classifier on a 160x160 input: every image costs a real resize and tensor fill, so a batch of
  // big uploads takes long enough to kill or stop a worker in the middle of it.
  heavyModel = await writeTinyModel(dir, 160, "heavy");
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => stopProcess(p, "SIGKILL")));
  await api?.close();
});
afterAll(async () => {
  await db?.close();
  await rm(dir, { recursive: true, force: true });
});

function spawnWorker(name: string, env: Record<string, string> = {}) {
  return startWorkerProcess(name, {
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    STORAGE_URL: api.storageUrl,
    QUEUE_NAME: api.queueName,
    MODEL_PATH: tinyModel,
    WORKER_THREADS: "1",
    METRICS_PORT: "0",
    METRICS_HOST: "127.0.0.1",
    // The shared test database holds other suites' unfinished batches; a sweep would adopt them.
    SWEEP_INTERVAL_MS: "0",
    ...env,
  }).then((p) => {
    running.push(p);
    return p;
  });
}

const metricsPort = (p: ServiceProcess) => p.ready.metricsPort as number;

async function colourFiles(n: number, width = 96, height = 72): Promise<(UploadFile & { colour: Colour })[]> {
  const colours: Colour[] = ["red", "green", "blue"];
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const colour = colours[i % 3] as Colour;
      return { filename: `${i}-${colour}.jpg`, colour, data: await colourJpeg(colour, width, height, i) };
    }),
  );
}

const resultCount = async (batchId: string) =>
  Number(
    (await db.db.execute<{ n: string }>(sql`select count(*) as n from results where batch_id = ${batchId}`))
      .rows[0]?.n,
  );

const completed = (batchId: string, timeoutMs = 45_000) =>
  waitFor(
    `batch ${batchId} to complete`,
    async () => {
      const b = await getBatch(db.db, batchId);
      return b?.status.startsWith("completed") ? b : undefined;
    },
    timeoutMs,
    100,
  );

/**
 * The invariant of the whole service: one result per image, batch counters equal to the results, and the
 * statistics rollup (as the API serves it) equal to the results grouped by label.
 */
async function expectExactlyOnce(batchId: string, site: string, total: number) {
  const batch = await getBatch(db.db, batchId);
  const rows = await db.db.select().from(results).where(eq(results.batchId, batchId));
  const imageRows = await db.db.select().from(imagesTable).where(eq(imagesTable.batchId, batchId));
  expect(imageRows).toHaveLength(total);
  expect(rows).toHaveLength(total);
  expect(new Set(rows.map((r) => r.imageId)).size).toBe(total);
  expect(new Set(rows.map((r) => r.imageId))).toEqual(new Set(imageRows.map((i) => i.id)));
  const failed = rows.filter((r) => r.status === "failed").length;
  expect(batch).toMatchObject({ total, processed: total, failed });
  expect(batch?.status).toBe(failed > 0 ? "completed_with_errors" : "completed");

  const byLabel: Record<string, [number, number]> = {};
  for (const r of rows) {
    if (r.status !== "ok") continue;
    const [n, review] = byLabel[r.label as string] ?? [0, 0];
    byLabel[r.label as string] = [n + 1, review + (r.needsReview ? 1 : 0)];
  }
  const from = new Date(Date.now() - 3_600_000).toISOString();
  const to = new Date(Date.now() + 3_600_000).toISOString();
  const stats = await api.get<{
    total: number;
    failed: number;
    needsReview: number;
    classes: { label: string; count: number; needsReview: number }[];
  }>(`/v1/stats?site=${encodeURIComponent(site)}&from=${from}&to=${to}&bucket=hour`);
  expect(stats.total).toBe(total);
  expect(stats.failed).toBe(failed);
  expect(Object.fromEntries(stats.classes.map((c) => [c.label, [c.count, c.needsReview]]))).toEqual(byLabel);
  // The review queue the API serves is exactly the flagged rows, and the rollup agrees with it.
  const flagged = await api.get<{ items: { imageId: string }[] }>(
    `/v1/batches/${batchId}/results?needsReview=true&limit=1000`,
  );
  const flaggedRows = rows.filter((r) => r.needsReview).map((r) => r.imageId);
  expect(new Set(flagged.items.map((i) => i.imageId))).toEqual(new Set(flaggedRows));
  expect(stats.needsReview).toBe(flaggedRows.length);
  return { rows, batch };
}

describe("end to end: API -> queue -> worker processes -> Postgres", () => {
  it("classifies a 305-image submission with two workers, exactly once, and ignores a resubmission", async () => {
    api = await openApi(db);
    const [w1, w2] = await Promise.all([spawnWorker("worker-1"), spawnWorker("worker-2")]);
    const files = await colourFiles(300);
    const corrupt = { filename: "broken.jpg", data: await truncatedJpeg() };
    // Hueless images the tiny model is unsure about: they need review.
    const greys = await Promise.all(
      [0, 1, 2, 3].map(async (i) => ({
        filename: `grey-${i}.jpg`,
        data: await colourJpeg("grey", 96, 72, i),
      })),
    );
    const upload = [...files.slice(0, 150), corrupt, ...greys, ...files.slice(150)];
    const site = uniqueSite();
    const key = `e2e-${site}`;

    const first = await api.submit(upload, { idempotencyKey: key, fields: { site } });
    expect(first.status).toBe(202);
    expect(first.body.total).toBe(305);
    const batchId = first.body.id;

    const batch = await completed(batchId);
    expect(batch).toMatchObject({ status: "completed_with_errors", processed: 305, failed: 1 });
    const { rows } = await expectExactlyOnce(batchId, site, 305);

    const images = await db.db.select().from(imagesTable).where(eq(imagesTable.batchId, batchId));
    const byFile = new Map(images.map((i) => [i.filename, i.id]));
    const byImage = new Map(rows.map((r) => [r.imageId, r]));
    const broken = byImage.get(byFile.get("broken.jpg") as string);
    expect(broken).toMatchObject({ status: "failed", errorCode: "corrupt" });
    expect(broken?.errorMessage).toMatch(/\S/);
    for (const f of files) {
      expect(byImage.get(byFile.get(f.filename) as string)).toMatchObject({
        status: "ok",
        label: EXPECTED_LABEL[f.colour],
        needsReview: false,
      });
    }
    for (const g of greys) {
      expect(byImage.get(byFile.get(g.filename) as string)).toMatchObject({
        status: "ok",
        needsReview: true,
        reviewReasons: ["low_confidence"],
      });
    }

    // Both processes took part (jobs are spread by BullMQ, not by us).
    const perWorker = await Promise.all(
      [w1, w2].map((w) => scrapeMetric(metricsPort(w), 'garbage_worker_images_processed_total{status="ok"}')),
    );
    expect(perWorker.every((n) => (n ?? 0) > 0)).toBe(true);
    expect(perWorker.reduce((a, b) => (a ?? 0) + (b ?? 0), 0)).toBeGreaterThanOrEqual(300);

    // Same Idempotency-Key again: the same batch, nothing new stored, classified or counted.
    const again = await api.submit(upload, { idempotencyKey: key, fields: { site } });
    expect(again).toMatchObject({ status: 202, replayed: true, body: { id: batchId } });
    await waitFor("queue to drain", async () => {
      const c = await api.queue.getJobCounts("waiting", "active", "delayed");
      return c.waiting === 0 && c.active === 0 && c.delayed === 0;
    });
    const sites = await db.db.execute<{ n: string }>(
      sql`select count(*) as n from batches where site = ${site}`,
    );
    expect(Number(sites.rows[0]?.n)).toBe(1);
    await expectExactlyOnce(batchId, site, 305);

    // SIGTERM: both exit cleanly.
    const exits = await Promise.all([w1, w2].map((w) => stopProcess(w, "SIGTERM")));
    expect(exits).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
  });

  it("finishes the work of a worker killed with SIGKILL mid-batch on another worker, nothing lost or doubled", async () => {
    api = await openApi(db);
    // Short locks so the test does not wait the production 30 s for the dead worker's locks to expire.
    const fastRecovery = { LOCK_DURATION_MS: "2000", STALLED_INTERVAL_MS: "1000", MODEL_PATH: heavyModel };
    const victim = await spawnWorker("victim", fastRecovery);
    const site = uniqueSite();
    const files = await colourFiles(192, 640, 480);
    const { body } = await api.submit(files, { fields: { site } });
    const batchId = body.id;

    await waitFor(
      "the victim to record its first model batch",
      async () => (await resultCount(batchId)) > 0,
      30_000,
      20,
    );
    const activeAtKill = (await api.queue.getActive()).length;
    await stopProcess(victim, "SIGKILL");
    const doneAtKill = await resultCount(batchId);
    expect(doneAtKill).toBeGreaterThan(0);
    expect(doneAtKill, "the victim finished everything before the kill; slow the work down").toBeLessThan(
      192,
    );
    expect(activeAtKill).toBeGreaterThan(0);

    const rescuer = await spawnWorker("rescuer", fastRecovery);
    await completed(batchId);
    const { batch } = await expectExactlyOnce(batchId, site, 192);
    // Recovered, not written off: every image classified, none given up on as worker_error.
    expect(batch?.failed).toBe(0);
    console.log(`SIGKILL after ${doneAtKill}/192 results with ${activeAtKill} jobs active; rescued`);
    // The dead worker's jobs came back through the stalled checker, not through a lucky retry.
    expect(
      await scrapeMetric(metricsPort(rescuer), "garbage_worker_jobs_stalled_total"),
    ).toBeGreaterThanOrEqual(1);
    expect(await stopProcess(rescuer, "SIGTERM")).toEqual({ code: 0, signal: null });
  });

  it("on SIGTERM stops taking jobs, finishes the active ones and exits 0", async () => {
    api = await openApi(db);
    const worker = await spawnWorker("stopping", { MODEL_PATH: heavyModel });
    const site = uniqueSite();
    const files = await colourFiles(160, 640, 480);
    const { body } = await api.submit(files, { fields: { site } });
    const batchId = body.id;

    await waitFor("some results", async () => (await resultCount(batchId)) > 0, 30_000, 20);
    const active = (await api.queue.getActive()).map((j) => j.id as string);
    expect(active.length).toBeGreaterThan(0);
    expect(await stopProcess(worker, "SIGTERM")).toEqual({ code: 0, signal: null });

    // Every job that was active when the signal arrived was completed, none left behind locked.
    for (const id of active) expect(await api.queue.getJobState(id)).toBe("completed");
    expect(await api.queue.getActiveCount()).toBe(0);
    const counts = await api.queue.getJobCounts("completed", "waiting");
    expect(counts.waiting, "the worker should have stopped before the end of the batch").toBeGreaterThan(0);
    // Results are exactly the images of completed jobs (chunks of 16).
    expect(await resultCount(batchId)).toBe((counts.completed ?? 0) * 16);

    await spawnWorker("successor", { MODEL_PATH: heavyModel });
    await completed(batchId);
    const { batch } = await expectExactlyOnce(batchId, site, 160);
    expect(batch?.failed).toBe(0);
    console.log(`SIGTERM with ${active.length} jobs active; ${counts.completed} of 10 jobs done at exit`);
  });

  it.skipIf(!realModelPresent())(
    "with the real model, labels TrashNet images exactly as the in-process classifier does",
    async (ctx) => {
      if (!existsSync(TRASHNET_VAL)) ctx.skip(`TrashNet val images not found at ${TRASHNET_VAL}`);
      const classes = (await readdir(TRASHNET_VAL)).sort();
      const picked: UploadFile[] = [];
      for (const c of classes) {
        for (const f of (await readdir(path.join(TRASHNET_VAL, c))).sort().slice(0, 5)) {
          picked.push({ filename: `${c}-${f}`, data: await readFile(path.join(TRASHNET_VAL, c, f)) });
        }
      }
      api = await openApi(db);
      await spawnWorker("real", { MODEL_PATH: REAL_MODEL, WORKER_THREADS: "2" });
      const site = uniqueSite();
      const { body } = await api.submit(picked, { fields: { site } });
      await completed(body.id, 50_000);
      await expectExactlyOnce(body.id, site, picked.length);

      const clf = await loadClassifier({ model: REAL_MODEL, threads: 2, maxBatch: 16 });
      const expected = await clf.classify(picked.map((p) => Buffer.from(p.data)));
      await clf.close();
      const page = await api.get<{
        items: {
          filename: string;
          label: string;
          confidence: number;
          needsReview: boolean;
          novelty: number | null;
        }[];
      }>(`/v1/batches/${body.id}/results?limit=1000`);
      expect(page.items).toHaveLength(picked.length);
      page.items.forEach((item, i) => {
        const e = expected[i];
        expect(item.filename).toBe(picked[i]?.filename);
        expect(e?.ok && item.label).toBe(e?.ok && e.label);
        expect(item.confidence).toBeCloseTo(e?.ok ? e.confidence : Number.NaN, 4);
        // The review verdict and novelty travel through the thread and Postgres unchanged.
        expect(item.needsReview).toBe(e?.ok && e.needsReview);
        if (e?.ok && e.review.distance !== null) expect(item.novelty).toBeCloseTo(e.review.distance, 3);
        else expect(item.novelty).toBeNull();
      });
      // And the model is the trained one, not noise: most labels match the folder (val accuracy ~0.95).
      const right = page.items.filter((item) => item.filename?.startsWith(`${item.label}-`)).length;
      console.log(`real model through the worker: ${right}/${picked.length} TrashNet val images right`);
      expect(right / picked.length).toBeGreaterThan(0.7);
    },
  );
  if (!realModelPresent()) {
    console.warn(`real-model e2e test skipped: ${REAL_MODEL} (and its .json manifest) not found`);
  }
});
