import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createBatch, type DbHandle, decodeEmbedding, getBatch, results } from "@garbage/db";
import { InferenceThread, loadClassifier } from "@garbage/inference";
import { type ClassifyQueue, createQueue, createRedis, enqueueBatch } from "@garbage/queue";
import { createStore, type ImageStore } from "@garbage/storage";
import { eq, sql } from "drizzle-orm";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type BatchItem, createBatchRunner } from "../src/classify-batch";
import { loadConfig } from "../src/config";
import type { Logger } from "../src/log";
import { createMetrics } from "../src/metrics";
import { type RunningWorker, startWorker } from "../src/worker";
import {
  type Colour,
  colourJpeg,
  EXPECTED_LABEL,
  openTestDb,
  randomQueueName,
  type Shade,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
  truncatedJpeg,
  waitFor,
  writeReviewModel,
  writeTinyModel,
} from "./helpers";

let handle: DbHandle;
let dir: string;
let model: string;
let reviewModel: string;
let storeUrl: string;
let store: ImageStore;
let redis: Redis;
let queue: ClassifyQueue;
let queueName: string;
let worker: RunningWorker | undefined;
const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
const quiet: Logger = (level, msg, fields) => logs.push({ level, msg, ...(fields ? { fields } : {}) });

beforeAll(async () => {
  handle = await openTestDb();
  dir = await mkdtemp(path.join(tmpdir(), "worker-service-"));
  model = await writeTinyModel(dir);
  reviewModel = await writeReviewModel(dir);
  storeUrl = pathToFileURL(path.join(dir, "images")).href;
  store = createStore(storeUrl);
  redis = createRedis(TEST_REDIS_URL, { forWorker: false });
});

afterEach(async () => {
  await worker?.close();
  worker = undefined;
  await queue?.obliterate({ force: true });
  await queue?.close();
});

afterAll(async () => {
  redis?.disconnect();
  await handle?.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}): Promise<RunningWorker> {
  queueName = randomQueueName();
  queue = createQueue(redis, queueName);
  const config = loadConfig({
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    STORAGE_URL: storeUrl,
    QUEUE_NAME: queueName,
    MODEL_PATH: model,
    WORKER_THREADS: "1",
    METRICS_PORT: "0",
    METRICS_HOST: "127.0.0.1",
    // The shared test database holds other suites' unfinished batches; a sweep would adopt them.
    SWEEP_INTERVAL_MS: "0",
    ...env,
  });
  worker = await startWorker(config, quiet);
  return worker;
}

type Entry = Shade | "corrupt" | "missing";

/** What the API does for a submission: store the bytes, create batch + images, enqueue the chunks. */
async function submit(entries: readonly Entry[], site = `site-${randomUUID()}`) {
  const batchId = randomUUID();
  const images = await Promise.all(
    entries.map(async (entry, index) => {
      const id = randomUUID();
      const key = `test/${batchId}/${id}`;
      if (entry === "corrupt") await store.put(key, await truncatedJpeg());
      else if (entry !== "missing") await store.put(key, await colourJpeg(entry, 64, 48, index));
      return { id, index, storageKey: key, bytes: 1, filename: `${index}-${entry}.jpg` };
    }),
  );
  await createBatch(handle.db, { id: batchId, site, images });
  const { jobIds } = await enqueueBatch(
    queue,
    batchId,
    images.map((img) => ({ id: img.id, key: img.storageKey })),
  );
  return { batchId, site, images, jobIds };
}

const finished = (batchId: string, timeoutMs = 30_000) =>
  waitFor(
    `batch ${batchId} to finish`,
    async () => {
      const batch = await getBatch(handle.db, batchId);
      return batch?.status.startsWith("completed") ? batch : undefined;
    },
    timeoutMs,
  );

async function resultsOf(batchId: string) {
  return handle.db.select().from(results).where(eq(results.batchId, batchId));
}

async function statsBySite(site: string): Promise<Map<string, number>> {
  const rows = await handle.db.execute<{ label: string; n: string }>(
    sql`select label, sum(count)::bigint as n from class_stats where site = ${site} group by label`,
  );
  return new Map(rows.rows.map((r) => [r.label, Number(r.n)]));
}

async function reviewCountBySite(site: string): Promise<number> {
  const rows = await handle.db.execute<{ n: string | null }>(
    sql`select sum(review_count)::bigint as n from class_stats where site = ${site}`,
  );
  return Number(rows.rows[0]?.n ?? 0);
}

async function scrape(port: number, pathName = "/metrics") {
  const res = await fetch(`http://127.0.0.1:${port}${pathName}`);
  return { status: res.status, body: await res.text() };
}

const metric = (body: string, name: string) => {
  const line = body.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : undefined;
};

describe("worker service (real Redis, Postgres, tiny model)", () => {
  it("records good, undecodable and missing images of a batch, with counters and stats that add up", async () => {
    const w = await start({ BATCH_SIZE: "8", BATCH_WAIT_MS: "20" });
    const entries: (Colour | "corrupt" | "missing")[] = [
      ...Array.from({ length: 18 }, (_, i) => (["red", "green", "blue"] as const)[i % 3] as Colour),
      "corrupt",
      "missing",
    ];
    const { batchId, site, images, jobIds } = await submit(entries);
    expect(jobIds).toHaveLength(2);

    const batch = await finished(batchId);
    expect(batch).toMatchObject({ status: "completed_with_errors", total: 20, processed: 20, failed: 2 });

    const rows = await resultsOf(batchId);
    expect(rows).toHaveLength(20);
    const byId = new Map(rows.map((r) => [r.imageId, r]));
    entries.forEach((entry, i) => {
      const row = byId.get(images[i]?.id as string);
      if (entry === "corrupt") {
        expect(row).toMatchObject({ status: "failed", errorCode: "corrupt", label: null });
        expect(row?.errorMessage).toBeTruthy();
      } else if (entry === "missing") {
        expect(row).toMatchObject({ status: "failed", errorCode: "missing" });
      } else {
        expect(row).toMatchObject({
          status: "ok",
          label: EXPECTED_LABEL[entry],
          modelVersion: "tiny@test-1",
        });
        expect(row?.top).toHaveLength(3);
        // Saturated colours are confident, and this model ships no reference embeddings.
        expect(row).toMatchObject({ needsReview: false, reviewReasons: [], novelty: null });
        expect(row?.endToEndMs).toBeGreaterThanOrEqual(0);
        expect(row?.inferenceMs).toBeGreaterThan(0);
      }
    });

    // The rollup equals the results: 6 per colour class, 2 failures under label ''.
    expect(Object.fromEntries(await statsBySite(site))).toEqual({
      reddish: 6,
      greenish: 6,
      bluish: 6,
      "": 2,
    });

    const { status, body } = await scrape(w.metricsPort);
    expect(status).toBe(200);
    expect(metric(body, 'garbage_worker_images_processed_total{status="ok"}')).toBe(18);
    expect(metric(body, 'garbage_worker_images_failed_total{code="missing"}')).toBe(1);
    expect(metric(body, 'garbage_worker_images_failed_total{code="corrupt"}')).toBe(1);
    // The 18 decodable images went through session.run (neither the corrupt nor the missing one did), in
    // runs of at most 8.
    expect(metric(body, "garbage_worker_model_batch_size_sum")).toBe(18);
    expect(metric(body, "garbage_worker_model_batch_size_count")).toBeGreaterThanOrEqual(3);
    expect(metric(body, 'garbage_worker_queue_jobs{state="completed"}')).toBe(2);
    expect((await scrape(w.metricsPort, "/healthz")).status).toBe(200);
    const ready = await scrape(w.metricsPort, "/readyz");
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({
      ok: true,
      model: { name: "tiny" },
      checks: { redis: true, database: true, storage: true, inferenceThread: true },
    });
  });

  it("does not double count a job delivered again", async () => {
    await start();
    const { batchId, site, images } = await submit(["red", "green", "blue", "grey", "corrupt"]);
    await finished(batchId);
    const before = {
      batch: await getBatch(handle.db, batchId),
      results: (await resultsOf(batchId)).length,
      stats: await statsBySite(site),
      review: await reviewCountBySite(site),
    };
    // The grey image needed review (low confidence); that count must not move either.
    expect(before.review).toBe(1);

    // The same chunk again under another job id, as after a lost acknowledgement or a manual re-enqueue.
    const again = await queue.add(
      "classify",
      { batchId, images: images.map((img) => ({ id: img.id, key: img.storageKey })) },
      { jobId: `${batchId}-again` },
    );
    await waitFor("re-delivered job to complete", async () => (await again.getState()) === "completed");
    const summary = (await queue.getJob(again.id as string))?.returnvalue;
    expect(summary).toEqual({ images: 5, skipped: 5 });

    expect(await getBatch(handle.db, batchId)).toEqual(before.batch);
    expect((await resultsOf(batchId)).length).toBe(before.results);
    expect(await statsBySite(site)).toEqual(before.stats);
    expect(await reviewCountBySite(site)).toBe(before.review);
  });

  it("records the model's review flags and novelty distance, and counts flagged images in the rollup", async () => {
    await start({ MODEL_PATH: reviewModel });
    const entries: Entry[] = ["red", "blue", "grey", "green", "corrupt"];
    const { batchId, site, images } = await submit(entries);
    await finished(batchId);
    const clf = await loadClassifier({ model: reviewModel, threads: 1 });
    const expected = await clf.classify(
      await Promise.all(images.slice(0, 4).map(async (img) => store.get(img.storageKey))),
    );
    await clf.close();

    const byId = new Map((await resultsOf(batchId)).map((r) => [r.imageId, r]));
    const [red, blue, grey, green, corrupt] = images.map((img) => byId.get(img.id));
    expect(red).toMatchObject({ status: "ok", label: "reddish", needsReview: false, reviewReasons: [] });
    expect(blue).toMatchObject({
      status: "ok",
      label: "bluish",
      needsReview: true,
      reviewReasons: ["unfamiliar"],
    });
    expect(green).toMatchObject({ needsReview: true, reviewReasons: ["unfamiliar"] });
    expect(grey?.confidence).toBeLessThan(0.5);
    expect(grey).toMatchObject({
      needsReview: true,
      reviewReasons: expect.arrayContaining(["low_confidence"]),
    });
    expect(corrupt).toMatchObject({ status: "failed", needsReview: false, reviewReasons: [], novelty: null });
    // The stored novelty is the distance the model computed, image by image.
    [red, blue, grey, green].forEach((row, i) => {
      const e = expected[i];
      expect(e?.ok).toBe(true);
      expect(row?.novelty).toBeCloseTo(e?.ok ? (e.review.distance ?? Number.NaN) : Number.NaN, 5);
      expect(row?.needsReview).toBe(e?.ok && e.needsReview);
    });
    expect(red?.novelty).toBeLessThan(0.5);
    expect(blue?.novelty).toBeGreaterThan(1);
    expect(await reviewCountBySite(site)).toBe(3);
  });

  it("stores the embedding the model computed for each ok result, and none for a model without one", async () => {
    const embeddingsOf = async (batchId: string) => {
      const rows = await handle.db.execute<{ image_id: string; dims: number; data: Buffer }>(sql`
        select e.image_id, e.dims, e.data from result_embeddings e join results r on r.image_id = e.image_id
        where r.batch_id = ${batchId}`);
      return new Map(rows.rows.map((r) => [r.image_id, { dims: r.dims, vector: decodeEmbedding(r.data) }]));
    };
    await start({ MODEL_PATH: reviewModel });
    const { batchId, images } = await submit(["red", "blue", "grey", "corrupt"]);
    await finished(batchId);
    const clf = await loadClassifier({ model: reviewModel, threads: 1 });
    const expected = await clf.classify(
      await Promise.all(images.slice(0, 3).map((img) => store.get(img.storageKey))),
    );
    await clf.close();
    const stored = await embeddingsOf(batchId);
    expect(stored.size).toBe(3);
    expect(stored.has(images[3]?.id as string)).toBe(false);
    images.slice(0, 3).forEach((img, i) => {
      const e = expected[i];
      if (!e?.ok || !e.embedding) throw new Error("the direct classifier gave no embedding");
      const row = stored.get(img.id);
      expect(row?.dims).toBe(e.embedding.length);
      expect(Array.from(row?.vector ?? [])).toEqual(Array.from(e.embedding).map((x) => expect.closeTo(x, 5)));
    });
    // A second worker on a fresh queue: clean up the first one's as afterEach would.
    await worker?.close();
    await queue.obliterate({ force: true });
    await queue.close();

    await start({ MODEL_PATH: model });
    const plain = await submit(["red", "green"]);
    await finished(plain.batchId);
    expect((await resultsOf(plain.batchId)).every((r) => r.status === "ok")).toBe(true);
    expect((await embeddingsOf(plain.batchId)).size).toBe(0);
  });

  it("recording a model batch twice (two workers racing on one job) writes it once", async () => {
    queue = createQueue(redis, randomQueueName());
    const { batchId, site, images } = await submit(["red", "blue", "missing"]);
    const thread = await InferenceThread.start({ model, provider: "cpu", threads: 1, maxBatch: 16 });
    const metrics = createMetrics();
    try {
      const run = createBatchRunner({ db: handle.db, inference: thread, metrics });
      const items = async (): Promise<BatchItem[]> =>
        Promise.all(
          images.map(async (img) => ({
            batchId,
            image: { id: img.id, key: img.storageKey },
            startedAt: Date.now(),
            source: await store.get(img.storageKey).then(
              (bytes) => ({ bytes }),
              () => ({ error: { code: "missing", message: "not in storage" } }),
            ),
          })),
        );
      await Promise.all([run(await items()), run(await items())]);
      await run(await items());
    } finally {
      await thread.close();
    }
    expect(await getBatch(handle.db, batchId)).toMatchObject({
      processed: 3,
      failed: 1,
      status: "completed_with_errors",
    });
    expect((await resultsOf(batchId)).length).toBe(3);
    expect(Object.fromEntries(await statsBySite(site))).toEqual({ reddish: 1, bluish: 1, "": 1 });
    const body = await metrics.registry.metrics();
    expect(metric(body, "garbage_worker_results_duplicate_total")).toBe(6);
  });

  it("gathers images of several small submissions into shared model batches", async () => {
    const w = await start({ BATCH_SIZE: "16", BATCH_WAIT_MS: "400", WORKER_CONCURRENCY: "8" });
    const submissions = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        submit([(["red", "green", "blue"] as const)[i % 3] as Colour, "blue", "green"]),
      ),
    );
    for (const s of submissions) expect(await finished(s.batchId)).toMatchObject({ processed: 3, failed: 0 });
    const { body } = await scrape(w.metricsPort);
    const runs = metric(body, "garbage_worker_model_batch_size_count") ?? 0;
    expect(metric(body, "garbage_worker_model_batch_size_sum")).toBe(18);
    // 6 jobs of 3 images would be 6 runs without batching across jobs.
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(runs).toBeLessThanOrEqual(3);
  });

  it("retries a storage failure with backoff, then records the images of the abandoned job as failed", async () => {
    await start();
    const { batchId, images } = await submit(["red"]);
    await finished(batchId);
    // A second batch whose object cannot be read (a directory where the file should be: EISDIR).
    const broken = randomUUID();
    const id = randomUUID();
    const key = `test/${broken}/${id}`;
    await mkdir(path.join(dir, "images", key), { recursive: true });
    await createBatch(handle.db, { id: broken, images: [{ id, index: 0, storageKey: key, bytes: 1 }] });
    const job = await queue.add(
      "classify",
      { batchId: broken, images: [{ id, key }] },
      { jobId: `${broken}-0`, attempts: 3, backoff: { type: "fixed", delay: 150 } },
    );
    const batch = await finished(broken);
    expect(batch).toMatchObject({ status: "completed_with_errors", processed: 1, failed: 1 });
    const failedJob = await queue.getJob(job.id as string);
    expect(await failedJob?.getState()).toBe("failed");
    expect(failedJob?.attemptsMade).toBe(3);
    const [row] = await resultsOf(broken);
    expect(row).toMatchObject({ status: "failed", errorCode: "worker_error" });
    expect(row?.errorMessage).toMatch(/3 attempts.*EISDIR/);
    expect(logs.filter((l) => l.msg === "job failed, will retry")).toHaveLength(2);
    // The healthy batch before it was untouched.
    expect((await resultsOf(batchId)).map((r) => r.imageId)).toEqual([images[0]?.id]);
  });
});
