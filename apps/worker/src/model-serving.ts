import type { DbOrTx } from "@garbage/db";
import {
  type BatchClassification,
  InferenceThread,
  MicroBatcher,
  type ModelInfo,
  manifestPathFor,
  readManifest,
} from "@garbage/inference";
import type { Logger } from "@garbage/log";
import { fetchModelFiles } from "@garbage/models";
import type { ImageStore } from "@garbage/storage";
import { type BatchItem, createBatchRunner } from "./classify-batch";
import type { WorkerConfig } from "./config";
import type { WorkerMetrics } from "./metrics";
import { DEFAULT_KEY, ModelPool, type ServedVersion } from "./model-pool";
import { ModelRoutes } from "./model-routes";
import { ShadowRunner } from "./shadow-runner";

/** Most sampled images waiting for a shadow run: a few batches' bytes, whatever the traffic. */
export const SHADOW_QUEUE = 64;

export interface ModelServing {
  /** The shipped default model (what /readyz and the `worker ready` line report). */
  defaultModel: ModelInfo;
  defaultVersion: ServedVersion;
  /** Its manifest's novelty threshold, for fitting its site thresholds. */
  defaultMaxDistance: number | null;
  routes: ModelRoutes;
  pool: ModelPool<MicroBatcher<BatchItem, undefined>>;
  /** Hands an image to its site's version; resolves once its result is committed. */
  submit(item: BatchItem): Promise<void>;
  /** Direct classification with a version (backfill); loads it, evicting if need be. */
  classify(version: ServedVersion, images: Uint8Array[]): Promise<BatchClassification | undefined>;
  close(): Promise<void>;
}

export interface ModelServingDeps {
  config: WorkerConfig;
  db: DbOrTx;
  store: ImageStore;
  log: Logger;
  metrics: WorkerMetrics;
}

/**
 * The models of one worker process: the LRU pool of loaded versions (one inference thread and one
 * micro-batcher each), the routes that say which version serves a site (refreshed from Postgres), and the
 * shadow runner. The default model is loaded before this resolves, so a broken MODEL_PATH fails at start.
 */
export async function startModelServing(deps: ModelServingDeps): Promise<ModelServing> {
  const { config, db, store, log, metrics } = deps;
  const manifest = await readManifest(manifestPathFor(config.MODEL_PATH));
  const defaultVersion: ServedVersion = {
    key: DEFAULT_KEY,
    modelVersion: `${manifest.name}@${manifest.version}`,
  };
  const routes = new ModelRoutes({
    db,
    refreshMs: config.MODEL_REFRESH_MS,
    defaultVersion,
    shadowRate: config.SHADOW_RATE,
    log,
  });

  let shadow: ShadowRunner | undefined;
  const pool: ModelPool<MicroBatcher<BatchItem, undefined>> = new ModelPool({
    maxModels: config.MAX_MODELS,
    load: async (version) => {
      // int8 on a CPU when the version has it (about twice the images per second); the float model on a GPU.
      const model = version.row
        ? await fetchModelFiles({
            store,
            version: version.row,
            cacheDir: config.MODEL_CACHE_DIR,
            prefer: config.WORKER_PROVIDER === "cpu" ? "int8" : "fp32",
          })
        : config.MODEL_PATH;
      return InferenceThread.start({
        model,
        provider: config.WORKER_PROVIDER,
        threads: config.WORKER_THREADS,
        maxBatch: config.BATCH_SIZE,
      });
    },
    batcher: (version, thread) =>
      new MicroBatcher<BatchItem, undefined>({
        maxSize: config.BATCH_SIZE,
        maxWaitMs: config.BATCH_WAIT_MS,
        // One batch in the model while the next is gathered and decoded.
        maxInFlight: 2,
        run: createBatchRunner({
          db,
          inference: thread,
          metrics,
          modelVersion: version.modelVersion,
          auditRate: config.AUDIT_RATE,
          thresholds: (site) => routes.thresholds(site, version.modelVersion),
          shadow: {
            pick: (item) =>
              shadow?.hasRoom
                ? routes.shadowsFor(item.site, item.image.id).filter((v) => v.id !== version.key)
                : [],
            submit: (item, v, bytes) => shadow?.submit(item.image.id, v, bytes),
          },
        }),
      }),
    onLoad: (version, ms) => {
      metrics.modelLoads.inc({ outcome: "loaded" });
      log.info({ modelVersion: version.modelVersion, ms: Math.round(ms) }, "model version loaded");
    },
    onLoadFailed: (version, err) => {
      metrics.modelLoads.inc({ outcome: "failed" });
      // The site's images wait (their jobs are retried) rather than being labelled by another version.
      log.error(
        { err, modelVersion: version.modelVersion, versionId: version.row?.id },
        "cannot load model version: jobs of the sites it serves are retried, shadow work skips it",
      );
    },
    onEvict: (version) => {
      metrics.modelEvictions.inc();
      log.info({ modelVersion: version.modelVersion }, "model version evicted (least recently used)");
    },
  });

  const entry = await pool.acquire(defaultVersion);
  if (!entry) throw new Error("the default model did not load");
  try {
    await routes.start();
  } catch (err) {
    await pool.close();
    throw err;
  }

  const classifyWith = async (version: ServedVersion, images: Uint8Array[], evict: boolean) => {
    const loaded = await pool.acquire(version, { evict });
    return loaded ? pool.classify(loaded, images) : undefined;
  };
  shadow = new ShadowRunner({
    db,
    classify: (version, images) => classifyWith(version, images, false),
    capacity: SHADOW_QUEUE,
    batchSize: config.BATCH_SIZE,
    log,
    metrics,
  });
  const runner = shadow;

  return {
    defaultModel: entry.thread.model,
    defaultVersion,
    defaultMaxDistance: manifest.review?.maxDistance ?? null,
    routes,
    pool,
    async submit(item) {
      const version = routes.resolve(item.site);
      for (;;) {
        const loaded = await pool.acquire(version);
        // Evicted between its load and now (another version needed the slot): ask again.
        if (loaded && pool.get(version.key) === loaded) return loaded.batcher.add(item);
      }
    },
    classify: (version, images) => classifyWith(version, images, true),
    async close() {
      await routes.close();
      await runner.close();
      await pool.close();
    },
  };
}
