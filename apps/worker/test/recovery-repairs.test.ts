/**
 * Issue 11, "failed for good": a job that ran out of attempts is run again by the sweep a bounded number of
 * times (MAX_REPAIRS, counted per image in Postgres) before its images are recorded as failed. A fault that
 * outlasts one job's retries heals; a poison image still ends, and the batch completes either way.
 *
 * Real worker process, scratch database (its sweep must not adopt other suites' batches), the shared Redis on
 * a random queue, a file store whose faults are real: a directory where an image file should be (EISDIR on
 * every read) until the test puts the file there.
 */
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createBatch, getBatch, results } from "@garbage/db";
import { type ClassifyQueue, createRedis, defaultJobOptions, enqueueBatch, type Redis } from "@garbage/queue";
import { createStore, type ImageStore, uploadKey } from "@garbage/storage";
import { Queue } from "bullmq";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, expect, it } from "vitest";
import { colourJpeg, randomQueueName, TEST_REDIS_URL, waitFor, writeTinyModel } from "./helpers";
import { createScratchDb, type ScratchDb } from "./own-services";
import { type ServiceProcess, startWorkerProcess, stopProcess } from "./processes";
import { expectBatchAccountedFor, waitForResults } from "./recovery-checks";

let scratch: ScratchDb;
let dir: string;
let model: string;
let store: ImageStore;
let redis: Redis;
let queue: ClassifyQueue | undefined;
let worker: ServiceProcess | undefined;

beforeAll(async () => {
  [scratch, dir] = await Promise.all([createScratchDb(), mkdtemp(path.join(tmpdir(), "recovery-repairs-"))]);
  model = await writeTinyModel(dir, 8, "tiny");
  store = createStore(pathToFileURL(path.join(dir, "store")).href);
  redis = createRedis(TEST_REDIS_URL, { forWorker: false });
});

afterAll(async () => {
  if (worker) await stopProcess(worker, "SIGKILL");
  await queue?.obliterate({ force: true }).catch(() => {});
  await queue?.close();
  redis?.disconnect();
  await scratch?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("re-runs a job that failed for good: a fault longer than its retries heals, a poison image ends failed", async () => {
  const site = `repairs-${randomUUID()}`;
  // Two attempts 100 ms apart: a job's own retry budget is spent in a fraction of a second.
  queue = new Queue(randomQueueName("recovery-repairs"), {
    connection: redis,
    defaultJobOptions: { ...defaultJobOptions, attempts: 2, backoff: { type: "fixed", delay: 100 } },
  }) as ClassifyQueue;
  const batchId = randomUUID();
  const roles = ["good", "poison", "transient", "good"] as const;
  const images = roles.map((role, index) => {
    const id = randomUUID();
    return { id, index, role, storageKey: uploadKey(batchId, id), bytes: 1 };
  });
  const bytes = await colourJpeg("red", 32, 24, 1);
  const fileOf = (key: string) => path.join(dir, "store", key);
  for (const image of images) {
    if (image.role === "good") await store.put(image.storageKey, bytes);
    else await mkdir(fileOf(image.storageKey), { recursive: true });
  }
  await createBatch(scratch.handle.db, { id: batchId, site, chunkSize: 1, images });
  await enqueueBatch(
    queue,
    batchId,
    images.map((i) => ({ id: i.id, key: i.storageKey })),
    { chunkSize: 1 },
  );
  const [, poison, transient] = images as [(typeof images)[0], (typeof images)[0], (typeof images)[0]];

  worker = await startWorkerProcess("worker", {
    DATABASE_URL: scratch.url,
    REDIS_URL: TEST_REDIS_URL,
    STORAGE_URL: pathToFileURL(path.join(dir, "store")).href,
    QUEUE_NAME: queue.name,
    MODEL_PATH: model,
    WORKER_THREADS: "1",
    MAX_REPAIRS: "2",
    SWEEP_INTERVAL_MS: "1000",
    SWEEP_MIN_AGE_MS: "0",
    METRICS_PORT: "0",
    METRICS_HOST: "127.0.0.1",
  });

  // The transient fault outlasts the job's retries: it failed for good at least once before it clears.
  const transientJob = `${batchId}-2`;
  await waitFor(
    "the transient job to fail for good",
    async () => (await queue?.getJobState(transientJob)) === "failed" || (await repairsOf(transient.id)) > 0,
    20_000,
    20,
  );
  await rm(fileOf(transient.storageKey), { recursive: true });
  await store.put(transient.storageKey, bytes);

  await waitForResults(scratch.handle.db, batchId, images.length, 30_000);
  await expectBatchAccountedFor(scratch.handle.db, batchId, site);
  expect(await getBatch(scratch.handle.db, batchId)).toMatchObject({
    status: "completed_with_errors",
    processed: 4,
    failed: 1,
  });
  const rows = await scratch.handle.db.select().from(results).where(eq(results.batchId, batchId));
  const byId = new Map(rows.map((r) => [r.imageId, r]));
  expect(byId.get(transient.id)).toMatchObject({ status: "ok", label: "reddish" });
  expect(await repairsOf(transient.id)).toBeGreaterThanOrEqual(1);
  expect(byId.get(poison.id)).toMatchObject({ status: "failed", errorCode: "worker_error" });
  expect(byId.get(poison.id)?.errorMessage).toMatch(/gave up after 2 attempts: .*EISDIR.*after 2 repairs/);
  expect(await repairsOf(poison.id)).toBe(2);

  const retried = worker.logs
    .filter((l) => l.msg === "sweep repaired state")
    .reduce((n, l) => n + Number(l.retriedJobs ?? 0), 0);
  // Two repairs of the poison job, at least one of the transient one.
  expect(retried).toBeGreaterThanOrEqual(3);
  expect(worker.logs.some((l) => l.msg === "abandoned job left to the sweep to run again")).toBe(true);
}, 60_000);

async function repairsOf(imageId: string): Promise<number> {
  const rows = await scratch.handle.db.execute<{ repairs: number }>(
    sql`select repairs from images where id = ${imageId}`,
  );
  return Number(rows.rows[0]?.repairs ?? 0);
}
