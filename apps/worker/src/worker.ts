import { createDb, pingDb } from "@garbage/db";
import type { ModelInfo } from "@garbage/inference";
import { createLogger, type Logger } from "@garbage/log";
import { startHealthServer } from "@garbage/log/health-server";
import { type ClassifyJob, createQueue, createRedis, pingRedis, queueDepth } from "@garbage/queue";
import { redisLossDetector, redisMarkerKey, runSweep } from "@garbage/recovery";
import { createStore } from "@garbage/storage";
import { Worker } from "bullmq";
import type { WorkerConfig } from "./config";
import { loggedProcessor, onJobFailures } from "./job-log";
import { createMetrics } from "./metrics";
import { startModelServing } from "./model-serving";
import { createModelUpkeep } from "./model-upkeep";
import { processClassifyJob } from "./process-job";
import { type Sweeper, startSweeper } from "./sweeper";

export interface RunningWorker {
  metricsPort: number;
  /** The shipped default model; sites may be served by registry versions (see model-serving.ts). */
  model: ModelInfo;
  /** Stops taking jobs, finishes the active ones, then releases everything. Idempotent. */
  close: () => Promise<void>;
}

/** Wires one worker process: model pool (threads and micro-batchers), BullMQ worker, metrics endpoint. */
export async function startWorker(
  config: WorkerConfig,
  log: Logger = createLogger({ service: "worker", level: config.LOG_LEVEL }),
): Promise<RunningWorker> {
  // One connection more than the jobs need: the sweep holds its advisory lock on one for a whole pass.
  const dbHandle = createDb(config.DATABASE_URL, { max: 5 });
  const db = dbHandle.db;
  const store = createStore(config.STORAGE_URL, { db });
  const metrics = createMetrics();

  const models = await startModelServing({ config, db, store, log, metrics }).catch(async (err: unknown) => {
    await dbHandle.close();
    throw err;
  });

  const reportRedisError = (err: Error) => log.warn({ err }, "redis error");
  const connection = createRedis(config.REDIS_URL, { forWorker: true, onError: reportRedisError });
  const producer = createRedis(config.REDIS_URL, { forWorker: false, onError: reportRedisError });
  const queue = createQueue(producer, config.QUEUE_NAME);

  const stopRetrying = new AbortController();
  const worker = new Worker<ClassifyJob>(
    config.QUEUE_NAME,
    loggedProcessor(log, (job) =>
      processClassifyJob(job, { db, store, submit: (item) => models.submit(item) }),
    ),
    {
      connection,
      // Several jobs active at once so small submissions share model batches and the next chunk's storage
      // reads overlap the current run.
      concurrency: config.WORKER_CONCURRENCY,
      lockDuration: config.LOCK_DURATION_MS,
      stalledInterval: config.STALLED_INTERVAL_MS,
      maxStalledCount: config.MAX_STALLED_COUNT,
      // Started below, once the metrics server listens: a port clash must not leave jobs half taken.
      autorun: false,
    },
  );
  worker.on("error", (err) => log.error({ err }, "worker error"));
  worker.on("completed", () => metrics.jobs.inc({ outcome: "completed" }));
  worker.on("stalled", (jobId) => {
    metrics.stalled.inc();
    log.warn({ jobId }, "stalled job moved back to wait");
  });
  onJobFailures(worker, { log, metrics, db, signal: stopRetrying.signal, maxRepairs: config.MAX_REPAIRS });

  const server = await startHealthServer({
    port: config.METRICS_PORT,
    host: config.METRICS_HOST,
    registry: metrics.registry,
    beforeScrape: async () => {
      const loaded = models.pool.loaded;
      metrics.threadRestarts.set(loaded.reduce((n, m) => n + m.thread.restarts, 0));
      metrics.modelsLoaded.set(loaded.length);
      const depth = await queueDepth(queue);
      for (const [state, n] of Object.entries(depth)) metrics.queueJobs.set({ state }, n);
    },
    // Not live once the BullMQ worker stopped for good (closed, or its connection gave up); a dead inference
    // thread is not fatal, the next batch starts a new one.
    live: async () => ({ ok: worker.isRunning() && !worker.closing }),
    ready: async () => {
      const [redis, database, storage] = await Promise.all([
        pingRedis(producer),
        pingDb(db),
        store.healthy().catch(() => false),
      ]);
      const checks = {
        redis,
        database,
        storage,
        inferenceThread: models.pool.loaded.every((m) => m.thread.alive),
        worker: worker.isRunning(),
      };
      const loaded = models.pool.loaded.map((m) => m.version.modelVersion);
      return { ok: Object.values(checks).every(Boolean), model: models.defaultModel, loaded, checks };
    },
  });

  worker.run().catch((err: unknown) => log.error({ err }, "worker stopped"));

  const upkeep = createModelUpkeep({
    db,
    store,
    classify: (version, images) => models.classify(version, images),
    batchSize: config.BATCH_SIZE,
    log,
    metrics,
    defaultVersion: models.defaultVersion,
    defaultMaxDistance: models.defaultMaxDistance,
    targetAccuracy: config.REVIEW_TARGET_ACCURACY,
    minReviews: config.SITE_THRESHOLD_MIN_REVIEWS,
    thresholdIntervalMs: config.SITE_THRESHOLD_INTERVAL_MS,
  });
  const sweeper: Sweeper | undefined =
    config.SWEEP_INTERVAL_MS > 0
      ? startSweeper({
          intervalMs: config.SWEEP_INTERVAL_MS,
          log,
          metrics,
          watch:
            config.SWEEP_WATCH_MS > 0
              ? {
                  intervalMs: config.SWEEP_WATCH_MS,
                  // The queue's connection, once BullMQ has it connected (a bare one fails while connecting).
                  redisLost: redisLossDetector(
                    () => queue.waitUntilReady().then(() => producer),
                    redisMarkerKey(config.QUEUE_NAME),
                  ),
                }
              : undefined,
          sweep: async (orphanCursor) => {
            const report = await runSweep(
              { db, queue, store },
              {
                minBatchAgeMs: config.SWEEP_MIN_AGE_MS,
                orphanGraceMs: config.ORPHAN_GRACE_MS,
                orphanCursor,
                maxRepairs: config.MAX_REPAIRS,
              },
            );
            // The model side (shadow backfill, site thresholds) after the repairs, which matter more.
            await upkeep();
            return report;
          },
        })
      : undefined;

  let closing: Promise<void> | undefined;
  const close = async () => {
    await sweeper?.close();
    // worker.close() waits for active jobs, which wait on the batcher; the rest only then.
    await worker.close();
    stopRetrying.abort();
    await models.close();
    await server.close();
    await queue.close();
    await Promise.all([connection.quit().catch(() => {}), producer.quit().catch(() => {})]);
    await dbHandle.close();
  };
  return {
    metricsPort: server.port,
    model: models.defaultModel,
    close: () => {
      closing ??= close();
      return closing;
    },
  };
}
