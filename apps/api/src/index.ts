import { availableParallelism } from "node:os";
import { createDb, migrate } from "@garbage/db";
import { type ModelManifest, manifestPathFor, readManifest, ThreadedClassifier } from "@garbage/inference";
import { createLogger } from "@garbage/log";
import { createQueue, createRedis } from "@garbage/queue";
import { createStore } from "@garbage/storage";
import type { ServerType } from "@hono/node-server";
import { createApp } from "./app";
import { type Config, parseConfig } from "./config";
import { startServer } from "./server";
import type { Classifier } from "./types";

// Info until the configuration (LOG_LEVEL) is read: a signal or a bad variable is reported either way.
const log = createLogger({ service: "api" });

// Signal handlers come first, before any await: a SIGTERM while the API starts (migrations can wait minutes
// on another instance's lock, the model takes seconds to load) must stop it cleanly, not kill it with the
// default action. One stop per process whatever number of signals arrives: wrappers (npm, tsx, a shell)
// relay the same signal again, and the echo must not cut the drain short. The supervisor's SIGKILL after its
// grace period is what forces an exit.
let server: ServerType | undefined;
/** Closes what start-up has opened so far, last opened first. */
const closers: (() => Promise<unknown> | unknown)[] = [];
let stopping = false;

async function drain() {
  // Stop accepting connections first; in-flight uploads finish before their dependencies close.
  const listening = server;
  if (listening) {
    // close() drops the connections idle at that moment; one that turns idle after its in-flight request
    // would otherwise hold the drain open until the keep-alive timeout.
    const idle = setInterval(() => {
      if ("closeIdleConnections" in listening) listening.closeIdleConnections();
    }, 100);
    await new Promise<void>((resolve) => listening.close(() => resolve()));
    clearInterval(idle);
  }
  // Closing the database pool waits for its connections, and during start-up one may be blocked for good
  // (migrate() waiting for another instance's lock): nothing is served yet, so that wait is cut short.
  const closeAll = (async () => {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => {});
  })();
  const limitMs = listening ? 10_000 : 1_000;
  const timedOut = await Promise.race([
    closeAll.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(resolve, limitMs, true).unref()),
  ]);
  if (timedOut) log.warn({ limitMs }, "connections still closing, exiting anyway");
}

function stop(signal: NodeJS.Signals) {
  if (stopping) {
    log.info({ signal }, "already stopping, signal ignored");
    return;
  }
  stopping = true;
  log.info({ signal, starting: server === undefined }, "shutting down");
  drain().then(
    () => {
      log.info("stopped");
      process.exit(0);
    },
    (err: unknown) => {
      log.error({ err }, "error while stopping");
      process.exit(1);
    },
  );
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

let config: Config;
try {
  // The only place the API reads the environment.
  config = parseConfig(process.env);
} catch (err) {
  log.error({ err }, "api not started");
  process.exit(2);
}
log.level = config.logLevel;

async function start(config: Config) {
  log.info({ port: config.port, queue: config.queueName }, "starting");
  const dbHandle = createDb(config.databaseUrl);
  closers.push(() => dbHandle.close());
  await migrate(dbHandle.db);
  const redis = createRedis(config.redisUrl, {
    forWorker: false,
    onError: (err) => log.error({ err }, "redis connection error"),
  });
  closers.push(() => redis.disconnect());
  const queue = createQueue(redis, config.queueName);
  closers.push(() => queue.close());
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
      maxWaitMs: config.classifyMaxWaitMs,
      limits: { maxPixels: config.maxPixels, maxBytes: config.limits.maxFileBytes },
    });
    const loaded = classifier;
    closers.push(() => loaded.close());
    log.info({ name: classifier.manifest.name, version: classifier.manifest.version }, "model loaded");
  } catch (err) {
    // Batches still work without a model (workers classify them); /v1/classify answers 503 and /readyz says why.
    log.error({ err, modelPath: config.modelPath }, "model not loaded");
  }
  // GET /v1/model shows the manifest even when the model itself failed to load.
  let model: ModelManifest | null = null;
  try {
    model = await readManifest(manifestPathFor(config.modelPath));
  } catch (err) {
    log.error({ err, modelPath: config.modelPath }, "model manifest not read");
  }
  if (stopping) return;

  const app = createApp({ db: dbHandle.db, store, queue, redis, config, classifier, model, logger: log });
  server = startServer({ fetch: app.fetch, port: config.port, limits: config.server }, (port) => {
    log.info({ port, queue: config.queueName, storage: store.kind }, "api listening");
  });
}

start(config).catch((err: unknown) => {
  // A stop during start-up closes what start() is still using; what then fails is part of stopping.
  if (stopping) return;
  log.error({ err }, "api failed to start");
  process.exit(1);
});
