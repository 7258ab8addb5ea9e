import { availableParallelism } from "node:os";
import { createDb, migrate } from "@garbage/db";
import { type ModelManifest, manifestPathFor, readManifest, ThreadedClassifier } from "@garbage/inference";
import { createQueue, createRedis } from "@garbage/queue";
import { createStore } from "@garbage/storage";
import { serve } from "@hono/node-server";
import { consoleLogger, createApp } from "./app";
import { parseConfig } from "./config";
import type { Classifier } from "./types";

// The only place the API reads the environment.
const config = parseConfig(process.env);
const log = consoleLogger;

const dbHandle = createDb(config.databaseUrl);
await migrate(dbHandle.db);
const redis = createRedis(config.redisUrl, {
  forWorker: false,
  onError: (err) => log.error("redis connection error", err),
});
const queue = createQueue(redis, config.queueName);
const store = createStore(config.storageUrl, { db: dbHandle.db });

let classifier: (Classifier & { close(): Promise<void> }) | null = null;
try {
  // The model runs in its own thread: session.run blocks for tens of milliseconds per image, which on this
  // event loop would stall every other request (health checks included).
  classifier = await ThreadedClassifier.start({
    model: config.modelPath,
    provider: "cpu",
    threads: config.classifyThreads ?? availableParallelism(),
    maxBatch: config.classifyMaxBatch,
    maxQueue: config.classifyMaxQueue,
    limits: { maxPixels: config.maxPixels, maxBytes: config.limits.maxFileBytes },
  });
  log.info("model loaded", { name: classifier.manifest.name, version: classifier.manifest.version });
} catch (err) {
  // Batches still work without a model (workers classify them); /v1/classify answers 503 and /readyz says why.
  log.error(`model not loaded from ${config.modelPath}`, err);
}

let model: ModelManifest | null = null;
try {
  model = await readManifest(manifestPathFor(config.modelPath));
} catch (err) {
  log.error(`model manifest not read for ${config.modelPath}`, err);
}

const app = createApp({ db: dbHandle.db, store, queue, redis, config, classifier, model });
const server = serve({ fetch: app.fetch, port: config.port }, (info) => {
  log.info("api listening", { port: info.port, queue: config.queueName, storage: store.kind });
});

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info("shutting down", { signal });
  // Stop accepting connections first; in-flight uploads finish before their dependencies close.
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await Promise.allSettled([queue.close(), classifier?.close(), dbHandle.close()]);
  redis.disconnect();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
