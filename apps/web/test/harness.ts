/**
 * The whole service for browser tests: the built UI, the real API (createApp served over HTTP by
 * @hono/node-server) with API keys, a real worker process, Postgres and Redis; images are TrashNet val photos
 * with the shipped model when both are here, else colour images with the tiny review model.
 */

import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { createApp } from "@garbage/api";
import { parseConfig } from "@garbage/api/config";
import type { DbHandle } from "@garbage/db";
import { loadClassifier } from "@garbage/inference";
import { createLogger } from "@garbage/log";
import { createQueue, createRedis } from "@garbage/queue";
import { createStore } from "@garbage/storage";
import { serve } from "@hono/node-server";
import { Registry } from "prom-client";
import sharp from "sharp";
import { buildWeb } from "../../../scripts/build-web.mjs";
import {
  colourJpeg,
  openTestDb,
  REPO_ROOT,
  realModelPresent,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
  TRASHNET_VAL,
  writeReviewModel,
} from "../../worker/test/helpers";
import { type ServiceProcess, startWorkerProcess, stopProcess } from "../../worker/test/processes";

export const CHROMIUM = "/usr/bin/chromium";
/**
 * UI_DOCS_SCREENSHOTS=1 also writes the README's screenshots (docs/screenshots/) under a readable site name.
 * The statistics then count every batch of that site, so the database must not have any yet.
 */
export const DOCS_SCREENSHOTS = process.env.UI_DOCS_SCREENSHOTS === "1";
const DOCS_SITE = "plant-north";
export const MAX_FILE_BYTES = 1024 * 1024;
const run = promisify(execFile);

export interface Upload {
  name: string;
  data: Buffer;
  /** The class folder it came from, when known. */
  truth?: string;
}

export interface Service {
  url: string;
  key: string;
  /** A key for every site: the queue view needs one. */
  adminKey: string;
  queueName: string;
  site: string;
  db: DbHandle;
  real: boolean;
  /** Images for a batch (several) and one for /v1/classify. */
  images: Upload[];
  single: Upload;
  /** GET with the key, JSON. */
  api<T>(p: string): Promise<T>;
  close(): Promise<void>;
}

const REAL_MODEL_INT8 = path.join(REPO_ROOT, "models/garbage-resnet50-int8.onnx");

/** One photo per class from TrashNet val, plus a blank grey frame (an empty belt: unlike any training photo). */
async function trashnetImages(): Promise<Upload[]> {
  const out: Upload[] = [];
  for (const cls of (await readdir(TRASHNET_VAL)).sort()) {
    const files = (await readdir(path.join(TRASHNET_VAL, cls))).filter((f) => f.endsWith(".jpg")).sort();
    for (const f of files.slice(0, 1))
      out.push({ name: f, truth: cls, data: await readFile(path.join(TRASHNET_VAL, cls, f)) });
  }
  const grey = await sharp({ create: { width: 320, height: 240, channels: 3, background: "#808080" } })
    .jpeg()
    .toBuffer();
  out.push({ name: "empty belt <img src=x onerror=alert(1)>.jpg", data: grey });
  return out;
}

/** Red and green are familiar and confident, blue is unfamiliar, grey is low confidence (tiny review model). */
async function colourImages(): Promise<Upload[]> {
  const shades = ["red", "green", "red", "blue", "grey", "green"] as const;
  const truth = { red: "reddish", green: "greenish", blue: "bluish", grey: undefined };
  return Promise.all(
    shades.map(async (s, i) => ({
      name: `${i}-${s} <img src=x onerror=alert(1)>.jpg`,
      truth: truth[s],
      data: await colourJpeg(s, 96, 72, i),
    })),
  );
}

/**
 * `garbage eval --report` (the CLI, as a person runs it) on the uploads filed by class, plus one photo filed
 * under a class it is not, so the report has a misclassified image to show.
 */
async function writeEvalReport(dir: string, model: string, images: Upload[]): Promise<string> {
  const data = path.join(dir, "eval-data");
  const known = images.filter((i) => i.truth);
  for (const [i, img] of known.entries()) {
    await mkdir(path.join(data, img.truth as string), { recursive: true });
    await writeFile(path.join(data, img.truth as string, `${i}.jpg`), img.data);
  }
  const [first, second] = known;
  if (first && second && first.truth !== second.truth) {
    await writeFile(path.join(data, second.truth as string, "misfiled.jpg"), first.data);
  }
  const report = path.join(dir, "reports", "eval-1");
  const cli = path.join(REPO_ROOT, "apps/cli/src/main.ts");
  const args = ["eval", "--data", data, "--report", report, "--model", model, "--threads", "1", "--quiet"];
  await run(process.execPath, ["--import", "tsx", cli, ...args], { cwd: REPO_ROOT });
  return path.dirname(report);
}

/** `workerEnv` adds to the worker's variables (AUDIT_RATE is 0 unless given: audits would reorder the queue). */
export async function startService(options: { workerEnv?: Record<string, string> } = {}): Promise<Service> {
  const dir = await mkdtemp(path.join(tmpdir(), "web-ui-test-"));
  const webDir = path.join(dir, "web");
  await buildWeb({ outdir: webDir });
  // UI_TEST_IMAGES=generated runs the fallback on a machine that has the data too.
  const real =
    process.env.UI_TEST_IMAGES !== "generated" &&
    realModelPresent() &&
    existsSync(REAL_MODEL_INT8) &&
    existsSync(TRASHNET_VAL);
  if (!real)
    console.warn(
      "browser test: generated images and the tiny review model (TrashNet val or the shipped model is absent, or UI_TEST_IMAGES=generated)",
    );
  const model = real ? REAL_MODEL_INT8 : await writeReviewModel(path.join(dir, "model"));
  const images = real ? await trashnetImages() : await colourImages();
  const single = images[0] as Upload;
  const evalReportDir = await writeEvalReport(dir, model, images);

  const db = await openTestDb();
  // A fresh site per run: the test database and its statistics rollup are shared and never emptied.
  const site = DOCS_SCREENSHOTS ? DOCS_SITE : `ui-site-${randomUUID().slice(0, 8)}`;
  if (DOCS_SCREENSHOTS) {
    const seen = await db.pool.query("select 1 from batches where site = $1 limit 1", [site]);
    if (seen.rowCount) {
      await db.close();
      await rm(dir, { recursive: true, force: true });
      throw new Error(`UI_DOCS_SCREENSHOTS: ${site} already has batches here; use a fresh TEST_DATABASE_URL`);
    }
  }
  const storageUrl = pathToFileURL(path.join(dir, "store")).href;
  const store = createStore(storageUrl);
  const redis = createRedis(TEST_REDIS_URL, { forWorker: false });
  const queueName = `web-ui-${randomUUID()}`;
  const queue = createQueue(redis, queueName);
  const key = `ui-test-${randomUUID()}`;
  const adminKey = `ui-admin-${randomUUID()}`;
  const classifier = await loadClassifier({ model, threads: 1 });
  const base = parseConfig({ DATABASE_URL: TEST_DATABASE_URL, REQUIRE_MODEL: "false" });
  const config = {
    ...base,
    apiKeys: [
      { key, sites: [site] },
      { key: adminKey, sites: null },
    ],
    // Small enough for the test to send a file over it; every photo used here is far below.
    limits: { ...base.limits, maxFileBytes: MAX_FILE_BYTES },
    webDir,
    evalReportDir,
  };
  const app = createApp({
    db: db.db,
    store,
    queue,
    redis,
    config,
    classifier,
    model: classifier.manifest,
    registry: new Registry(),
    logger: createLogger({ service: "api", level: "error" }),
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let worker: ServiceProcess | undefined;
  try {
    worker = await startWorkerProcess("ui-worker", {
      DATABASE_URL: TEST_DATABASE_URL,
      REDIS_URL: TEST_REDIS_URL,
      STORAGE_URL: storageUrl,
      QUEUE_NAME: queueName,
      MODEL_PATH: model,
      WORKER_THREADS: "1",
      METRICS_PORT: "0",
      METRICS_HOST: "127.0.0.1",
      SWEEP_INTERVAL_MS: "0",
      AUDIT_RATE: "0",
      ...options.workerEnv,
    });
  } catch (err) {
    server.close();
    throw err;
  }
  return {
    url,
    key,
    adminKey,
    queueName,
    site,
    db,
    real,
    images,
    single,
    async api<T>(p: string) {
      const res = await fetch(`${url}${p}`, { headers: { Authorization: `Bearer ${key}` } });
      if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    },
    async close() {
      if (worker) await stopProcess(worker, "SIGTERM", 10_000);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close().catch(() => {});
      redis.disconnect();
      await classifier.close();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
