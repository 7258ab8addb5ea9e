/**
 * Issue 11, fault 2: Postgres goes away for longer than a job's retry budget. The jobs fail for good while the
 * database is down, so the final "failed" write cannot land then; once Postgres is back every image must end
 * with exactly one result (or failure) and the statistics must equal the results, whether the worker lived
 * through the outage (it retries that write) or died in it (the next worker's sweep makes the write).
 * Runs on a private Postgres cluster (stopped and started here), the shared Redis on a random queue.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createBatch, createDb, type DbHandle, migrate } from "@garbage/db";
import { type ClassifyQueue, createRedis, defaultJobOptions, enqueueBatch, type Redis } from "@garbage/queue";
import { createStore, type ImageStore, uploadKey } from "@garbage/storage";
import { Queue } from "bullmq";
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { colourJpeg, randomQueueName, TEST_REDIS_URL, waitFor, writeTinyModel } from "./helpers";
import { type OwnPostgres, ownPostgresUnavailable, startOwnPostgres } from "./own-services";
import { type ServiceProcess, startWorkerProcess, stopProcess } from "./processes";
import { expectBatchAccountedFor, resultCount, waitForResults } from "./recovery-checks";

const TOTAL = 48;
const unavailable = ownPostgresUnavailable();
if (unavailable) console.warn(`skipping the Postgres outage tests: ${unavailable}`);

let pg: OwnPostgres;
let db: DbHandle;
let dir: string;
let model: string;
let store: ImageStore;
let redis: Redis;
let queue: ClassifyQueue;
const workers: ServiceProcess[] = [];

beforeAll(async () => {
  if (unavailable) return;
  dir = await mkdtemp(path.join(tmpdir(), "recovery-pg-"));
  [pg, model] = await Promise.all([startOwnPostgres(), writeTinyModel(dir, 8, "tiny")]);
  db = createDb(pg.url, { max: 2, connectTimeoutMs: 1_000 });
  await migrate(db.db);
  store = createStore(pathToFileURL(path.join(dir, "store")).href);
  redis = createRedis(TEST_REDIS_URL, { forWorker: false });
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => stopProcess(w, "SIGKILL")));
  await queue?.obliterate({ force: true }).catch(() => {});
  await queue?.close();
});

afterAll(async () => {
  await db?.close();
  await pg?.destroy();
  redis?.disconnect();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** What the API does, on a queue whose jobs get 2 attempts 200 ms apart: the budget runs out in a second. */
async function submit(site: string): Promise<string> {
  const queueName = randomQueueName("recovery-pg");
  queue = new Queue(queueName, {
    connection: redis,
    defaultJobOptions: { ...defaultJobOptions, attempts: 2, backoff: { type: "fixed", delay: 200 } },
  }) as ClassifyQueue;
  const batchId = randomUUID();
  const colours = ["red", "green", "blue"] as const;
  const images = await Promise.all(
    Array.from({ length: TOTAL }, async (_, index) => {
      const id = randomUUID();
      const key = uploadKey(batchId, id);
      await store.put(key, await colourJpeg(colours[index % 3] as (typeof colours)[number], 32, 24, index));
      return { id, index, storageKey: key, bytes: 1 };
    }),
  );
  await createBatch(db.db, { id: batchId, site, chunkSize: 4, images });
  await enqueueBatch(
    queue,
    batchId,
    images.map((i) => ({ id: i.id, key: i.storageKey })),
    { chunkSize: 4 },
  );
  return batchId;
}

async function spawnWorker(name: string, env: Record<string, string>) {
  const worker = await startWorkerProcess(name, {
    DATABASE_URL: pg.url,
    REDIS_URL: TEST_REDIS_URL,
    STORAGE_URL: pathToFileURL(path.join(dir, "store")).href,
    QUEUE_NAME: queue.name,
    MODEL_PATH: model,
    WORKER_THREADS: "1",
    // One job at a time, each waiting 150 ms for a model batch that never fills, so the outage hits mid-batch.
    WORKER_CONCURRENCY: "1",
    BATCH_SIZE: "8",
    BATCH_WAIT_MS: "150",
    METRICS_PORT: "0",
    METRICS_HOST: "127.0.0.1",
    ...env,
  });
  workers.push(worker);
  return worker;
}

/** Stops Postgres mid-batch and waits until every job left has used up its attempts against the dead database. */
async function outageOutlastingRetries(batchId: string) {
  await waitFor("some results", async () => (await resultCount(db.db, batchId)) >= 8, 30_000, 20);
  await pg.stop();
  const { failed: failedJobs } = await waitFor(
    "every remaining job to fail for good",
    async () => {
      const c = await queue.getJobCounts("waiting", "active", "delayed", "prioritized", "failed");
      const live = (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0);
      return live === 0 ? { failed: c.failed ?? 0 } : undefined;
    },
    20_000,
    100,
  );
  expect(failedJobs, "no job failed for good; the outage came too late").toBeGreaterThan(0);
  // Long enough for the final writes of the old code to have been tried and lost.
  await new Promise((r) => setTimeout(r, 1_500));
  return failedJobs;
}

describe.skipIf(unavailable)("Postgres unavailable beyond the retry budget", () => {
  it("a worker that lives through the outage records the failures once the database is back", async () => {
    const site = `pg-outage-${randomUUID()}`;
    const batchId = await submit(site);
    // No sweep and no repairs: the worker's own final write, retried until the database is back.
    await spawnWorker("survivor", { SWEEP_INTERVAL_MS: "0", MAX_REPAIRS: "0" });
    const failedJobs = await outageOutlastingRetries(batchId);
    await pg.start();

    await waitForResults(db.db, batchId, TOTAL, 20_000);
    await expectBatchAccountedFor(db.db, batchId, site);
    const failed = await db.db.execute<{ n: string }>(
      sql`select count(*) as n from results where batch_id = ${batchId} and error_code = 'worker_error'`,
    );
    expect(Number(failed.rows[0]?.n)).toBeGreaterThanOrEqual(failedJobs);
  }, 60_000);

  it("a worker that dies in the outage leaves the failures to the next worker's sweep", async () => {
    const site = `pg-outage-${randomUUID()}`;
    const batchId = await submit(site);
    const victim = await spawnWorker("victim", { SWEEP_INTERVAL_MS: "0" });
    await outageOutlastingRetries(batchId);
    await stopProcess(victim, "SIGKILL");
    await pg.start();

    const heirStarted = new Date();
    await spawnWorker("heir", { SWEEP_INTERVAL_MS: "500", SWEEP_MIN_AGE_MS: "0" });
    await waitForResults(db.db, batchId, TOTAL, 20_000);
    await expectBatchAccountedFor(db.db, batchId, site);
    // What the victim could not write was written after it died, by the heir (its sweep runs the jobs that
    // failed for good again; the exact path does not matter, only that nothing was left behind).
    const late = await db.db.execute<{ n: string }>(
      sql`select count(*) as n from results where batch_id = ${batchId} and created_at >= ${heirStarted.toISOString()}`,
    );
    expect(Number(late.rows[0]?.n)).toBeGreaterThan(0);
  }, 60_000);
});
