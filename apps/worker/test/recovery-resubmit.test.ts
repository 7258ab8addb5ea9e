/**
 * Issue 11: resubmitting with the same Idempotency-Key returns the same batch AND gives it back the jobs Redis
 * lost (same ids, only for chunks that still have images without a result), so a client retry is enough to
 * un-stick a batch. The API app on the shared database and Redis (random queue), then a real worker.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type DbHandle, listQueuedImages, recordResults } from "@garbage/db";
import { createLogger } from "@garbage/log";
import { chunkJobId } from "@garbage/queue";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import { type RunningWorker, startWorker } from "../src/worker";
import { type ApiHarness, openApi, uniqueSite } from "./api-harness";
import { colourJpeg, openTestDb, TEST_DATABASE_URL, TEST_REDIS_URL, writeTinyModel } from "./helpers";
import { expectBatchAccountedFor, waitForResults } from "./recovery-checks";

let db: DbHandle;
let dir: string;
let model: string;
let api: ApiHarness | undefined;
let worker: RunningWorker | undefined;

beforeAll(async () => {
  db = await openTestDb();
  dir = await mkdtemp(path.join(tmpdir(), "recovery-resubmit-"));
  model = await writeTinyModel(dir, 8, "tiny");
});
afterEach(async () => {
  await worker?.close();
  await api?.close();
});
afterAll(async () => {
  await db?.close();
  await rm(dir, { recursive: true, force: true });
});

it("re-adds exactly the lost jobs of an unfinished batch and returns the same batch", async () => {
  api = await openApi(db);
  const site = uniqueSite();
  const files = await Promise.all(
    Array.from({ length: 40 }, async (_, i) => ({
      filename: `${i}.jpg`,
      data: await colourJpeg(i % 2 ? "red" : "blue", 32, 24, i),
    })),
  );
  const key = `resubmit-${site}`;
  const first = await api.submit(files, { idempotencyKey: key, fields: { site } });
  expect(first.status).toBe(202);
  const batchId = first.body.id;
  const jobIds = [0, 1, 2].map((i) => chunkJobId(batchId, i));
  const before = await Promise.all(jobIds.map((id) => api?.queue.getJob(id)));
  expect(before.map((j) => j?.id)).toEqual(jobIds);

  // The first chunk was classified before Redis lost everything (a worker recorded it; nobody else is
  // running on this queue, so that is done by hand here).
  const queued = await listQueuedImages(db.db, batchId);
  await recordResults(
    db.db,
    queued.slice(0, 16).map((img) => ({ imageId: img.id, status: "ok", label: "bluish", confidence: 0.9 })),
  );
  await api.queue.obliterate({ force: true });
  expect(await api.queue.getJobState(jobIds[1] as string)).toBe("unknown");

  const again = await api.submit(files, { idempotencyKey: key, fields: { site } });
  expect(again).toMatchObject({ status: 202, replayed: true, body: { id: batchId, total: 40 } });
  const states = await Promise.all(jobIds.map((id) => api?.queue.getJobState(id)));
  expect(states).toEqual(["unknown", "waiting", "waiting"]);
  for (const [chunk, id] of jobIds.entries()) {
    if (chunk === 0) continue;
    const job = await api.queue.getJob(id);
    const expected = queued.slice(chunk * 16, chunk * 16 + 16).map((img) => img.id);
    expect(job?.data.images.map((img) => img.id)).toEqual(expected);
  }

  // A third submission changes nothing: the jobs are there now.
  await api.submit(files, { idempotencyKey: key, fields: { site } });
  expect(await api.queue.getJobCounts("waiting")).toMatchObject({ waiting: 2 });

  worker = await startWorker(
    loadConfig({
      DATABASE_URL: TEST_DATABASE_URL,
      REDIS_URL: TEST_REDIS_URL,
      STORAGE_URL: api.storageUrl,
      QUEUE_NAME: api.queueName,
      MODEL_PATH: model,
      WORKER_THREADS: "1",
      METRICS_PORT: "0",
      METRICS_HOST: "127.0.0.1",
      // Only the resubmission may repair here, and the shared database holds other suites' batches.
      SWEEP_INTERVAL_MS: "0",
    }),
    createLogger({ service: "worker", level: "silent" }),
  );
  await waitForResults(db.db, batchId, 40, 20_000);
  await expectBatchAccountedFor(db.db, batchId, site);
}, 60_000);
