/**
 * Issue 11, fault 1: Redis restarts without persistence while a 300-image batch runs. The jobs it held are
 * gone; the worker's sweep must notice from Postgres and re-add them (same ids), so the batch still ends with
 * exactly one result per image. Runs on a private redis-server (killed and restarted here) and a scratch
 * database, with a real worker process.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { getBatch } from "@garbage/db";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type ApiHarness, openApi, uniqueSite } from "./api-harness";
import { colourJpeg, waitFor, writeTinyModel } from "./helpers";
import { createScratchDb, type OwnRedis, type ScratchDb, startOwnRedis } from "./own-services";
import { type ServiceProcess, startWorkerProcess, stopProcess } from "./processes";
import { expectBatchAccountedFor, resultCount, waitForResults } from "./recovery-checks";

const TOTAL = 300;

let redis: OwnRedis;
let scratch: ScratchDb;
let dir: string;
let model: string;
let api: ApiHarness;
let worker: ServiceProcess | undefined;

beforeAll(async () => {
  [redis, scratch, dir] = await Promise.all([
    startOwnRedis(),
    createScratchDb(),
    mkdtemp(path.join(tmpdir(), "recovery-redis-")),
  ]);
  model = await writeTinyModel(dir, 8, "tiny");
  api = await openApi(scratch.handle, { redisUrl: redis.url });
});

afterAll(async () => {
  if (worker) await stopProcess(worker, "SIGKILL");
  await api?.close();
  await redis?.kill();
  await scratch?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("re-enqueues what a Redis restart lost and completes the batch with one result per image", async () => {
  const site = uniqueSite();
  const colours = ["red", "green", "blue"] as const;
  const files = await Promise.all(
    Array.from({ length: TOTAL }, async (_, i) => ({
      filename: `${i}.jpg`,
      data: await colourJpeg(colours[i % 3] as (typeof colours)[number], 32, 24, i),
    })),
  );
  const submitted = await api.submit(files, { fields: { site } });
  expect(submitted.status).toBe(202);
  const batchId = submitted.body.id;

  worker = await startWorkerProcess("worker", {
    DATABASE_URL: scratch.url,
    REDIS_URL: redis.url,
    STORAGE_URL: api.storageUrl,
    QUEUE_NAME: api.queueName,
    MODEL_PATH: model,
    WORKER_THREADS: "1",
    // One job at a time, each waiting 150 ms for a model batch that never fills: ~19 jobs take seconds, so
    // the restart lands mid-batch.
    WORKER_CONCURRENCY: "1",
    BATCH_SIZE: "32",
    BATCH_WAIT_MS: "150",
    METRICS_PORT: "0",
    METRICS_HOST: "127.0.0.1",
    SWEEP_INTERVAL_MS: "1000",
    SWEEP_MIN_AGE_MS: "0",
  });

  await waitFor(
    "a few jobs done",
    async () => (await resultCount(scratch.handle.db, batchId)) >= 48,
    30_000,
    20,
  );
  await redis.kill();
  const doneAtRestart = await resultCount(scratch.handle.db, batchId);
  await redis.start();
  expect(doneAtRestart, "the batch finished before Redis went away; slow the worker down").toBeLessThan(
    TOTAL - 32,
  );
  console.log(`Redis restarted empty after ${doneAtRestart}/${TOTAL} results`);

  await waitForResults(scratch.handle.db, batchId, TOTAL, 30_000);
  await expectBatchAccountedFor(scratch.handle.db, batchId, site);
  expect((await getBatch(scratch.handle.db, batchId))?.status).toBe("completed");

  const repaired = worker.logs.filter((l) => l.msg === "sweep repaired state");
  expect(repaired.reduce((n, l) => n + Number(l.requeuedJobs ?? 0), 0)).toBeGreaterThan(0);
}, 60_000);
