/**
 * Issue 11, fault 1: Redis restarts while a 300-image batch runs, with a real worker process on a private
 * redis-server (killed with SIGKILL and started again here) and a scratch database.
 *
 * - Without persistence the jobs it held are gone; the worker's sweep must notice from Postgres and re-add
 *   them (same ids).
 * - With persistence (appendonly, fsync once a second) the server comes back with its queue as of the last
 *   fsync: jobs that were active are still marked active under locks of the dead connection, up to a second of
 *   completions is lost and may be done again, and the worker must reconnect and carry on.
 *
 * Either way the batch ends with exactly one result per image and statistics equal to the results, within
 * RECOVERY_S of Redis answering again on the worker's default settings (issue 22).
 */

import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { getBatch } from "@garbage/db";
import { createRedis } from "@garbage/queue";
import { redisLossDetector, redisMarkerKey } from "@garbage/recovery";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, openApi, uniqueSite } from "./api-harness";
import { colourJpeg, waitFor, writeTinyModel } from "./helpers";
import { createScratchDb, type OwnRedis, type ScratchDb, startOwnRedis } from "./own-services";
import { type ServiceProcess, startWorkerProcess, stopProcess } from "./processes";
import { expectBatchAccountedFor, resultCount, waitForResults } from "./recovery-checks";

const TOTAL = 300;
/** A batch whose jobs Redis lost completes within this of Redis answering again, on default settings. */
const RECOVERY_S = 20;

let scratch: ScratchDb;
let dir: string;
let model: string;
let redis: OwnRedis | undefined;
let api: ApiHarness | undefined;
let worker: ServiceProcess | undefined;

beforeAll(async () => {
  [scratch, dir] = await Promise.all([createScratchDb(), mkdtemp(path.join(tmpdir(), "recovery-redis-"))]);
  model = await writeTinyModel(dir, 8, "tiny");
});

afterEach(async () => {
  if (worker) await stopProcess(worker, "SIGKILL");
  worker = undefined;
  await api?.close();
  api = undefined;
  await redis?.destroy();
  redis = undefined;
});

afterAll(async () => {
  await scratch?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Submits TOTAL images, starts a worker, restarts Redis once some results are in; returns the batch. */
async function restartMidBatch(persistence: boolean) {
  redis = await startOwnRedis({ persistence });
  api = await openApi(scratch.handle, { redisUrl: redis.url });
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
    // Recovery runs on its defaults (issue 22): the sweep's watch notices the lost data within a second, and
    // a job that comes back "active" from the append-only file is handed out again by the stalled check
    // (8 s lock, 4 s interval).
  });

  await waitFor(
    "a few jobs done",
    async () => (await resultCount(scratch.handle.db, batchId)) >= 48,
    30_000,
    20,
  );
  // Past the next once-a-second fsync, so the append-only file has the batch's jobs.
  if (persistence) await new Promise((resolve) => setTimeout(resolve, 1_100));
  await redis.kill();
  const doneAtRestart = await resultCount(scratch.handle.db, batchId);
  await redis.start();
  const answering = performance.now();
  expect(doneAtRestart, "the batch finished before Redis went away; slow the worker down").toBeLessThan(
    TOTAL - 32,
  );
  console.log(`Redis restarted (persistence ${persistence}) after ${doneAtRestart}/${TOTAL} results`);
  return { batchId, site, worker, answering };
}

/** Seconds from Redis answering again to the batch's last result; at most RECOVERY_S. */
async function recoveredWithin(batchId: string, answering: number) {
  await waitForResults(scratch.handle.db, batchId, TOTAL, RECOVERY_S * 1_000);
  const seconds = (performance.now() - answering) / 1_000;
  console.log(`batch complete ${seconds.toFixed(1)} s after Redis answered again`);
  expect(seconds).toBeLessThan(RECOVERY_S);
}

describe("Redis restarted mid-batch", () => {
  it("without persistence: the sweep re-enqueues what was lost; one result per image", async () => {
    const { batchId, site, worker, answering } = await restartMidBatch(false);
    await recoveredWithin(batchId, answering);
    await expectBatchAccountedFor(scratch.handle.db, batchId, site);
    expect((await getBatch(scratch.handle.db, batchId))?.status).toBe("completed");

    // Noticed by the watch (new run id), not by a pass that happened to come round.
    expect(worker.logs.some((l) => String(l.msg).startsWith("redis lost its data"))).toBe(true);
    const repaired = worker.logs.filter((l) => l.msg === "sweep repaired state");
    expect(repaired.reduce((n, l) => n + Number(l.requeuedJobs ?? 0), 0)).toBeGreaterThan(0);
  }, 60_000);

  it("with persistence (appendonly): the queue comes back, the worker carries on; one result per image", async () => {
    const { batchId, site, answering } = await restartMidBatch(true);
    // The restarted server loaded the queue from its append-only file (an empty one would know no job).
    const queue = (api as ApiHarness).queue;
    const known = await waitFor(
      "the queue to answer again",
      () =>
        queue.getJobCounts("completed", "active", "waiting", "wait", "delayed", "failed", "prioritized").then(
          (c) => ({ jobs: Object.values(c).reduce((a, b) => a + b, 0) }),
          () => undefined,
        ),
      10_000,
      50,
    );
    expect(known.jobs, "the restarted Redis came back empty: no persistence").toBeGreaterThan(0);

    await recoveredWithin(batchId, answering);
    await expectBatchAccountedFor(scratch.handle.db, batchId, site);
    expect((await getBatch(scratch.handle.db, batchId))?.status).toBe("completed");
  }, 60_000);

  it("redisLossDetector tells a restart without persistence and a FLUSHALL from an unchanged Redis", async () => {
    redis = await startOwnRedis({ persistence: false });
    const client = createRedis(redis.url, { forWorker: false });
    try {
      await once(client, "ready");
      const lost = redisLossDetector(() => client, redisMarkerKey("q"));
      expect(await lost()).toBe(false);
      expect(await lost()).toBe(false);
      await client.flushall();
      expect(await lost()).toBe(true);
      expect(await lost()).toBe(false);
      await redis.kill();
      await expect(lost()).rejects.toThrow();
      await redis.start();
      await waitFor("the client to reconnect", async () => client.status === "ready", 10_000, 20);
      expect(await lost()).toBe(true);
      expect(await lost()).toBe(false);
    } finally {
      client.disconnect();
    }
  });
});
