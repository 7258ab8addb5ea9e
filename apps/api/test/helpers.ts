import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createDb, type DbHandle, ensureDatabase, migrate } from "@garbage/db";
import type { ModelManifest } from "@garbage/inference";
import { type ClassifyQueue, createQueue, createRedis, type Redis } from "@garbage/queue";
import { createStore, type ImageStore } from "@garbage/storage";
import { Registry } from "prom-client";
import sharp from "sharp";
import { type AppConfig, type Classifier, createApp } from "../src/app";
import { parseConfig } from "../src/config";

export const DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_test";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface Harness {
  db: DbHandle;
  redis: Redis;
  close(): Promise<void>;
}

export async function openHarness(): Promise<Harness> {
  await ensureDatabase(DATABASE_URL);
  const db = createDb(DATABASE_URL, { max: 5 });
  await migrate(db.db);
  const redis = createRedis(REDIS_URL, { forWorker: false });
  // The API's connection has no offline queue: a /readyz before it connects reports Redis as failed.
  if (redis.status !== "ready") await once(redis, "ready");
  return {
    db,
    redis,
    async close() {
      await db.close();
      await redis.quit();
    },
  };
}

export interface TestApp {
  app: ReturnType<typeof createApp>;
  queue: ClassifyQueue;
  store: ImageStore;
  dir: string;
  registry: Registry;
  /** Files in the store directory, excluding its temp area. */
  storedFiles(): Promise<string[]>;
  dispose(): Promise<void>;
}

const silent = { info: () => {}, error: () => {} };

export async function makeApp(
  h: Harness,
  options: {
    config?: Partial<AppConfig>;
    classifier?: Classifier | null;
    redis?: Redis;
    model?: ModelManifest | null;
  } = {},
): Promise<TestApp> {
  const dir = await mkdtemp(path.join(tmpdir(), "garbage-api-"));
  const redis = options.redis ?? h.redis;
  const queue = createQueue(redis, `test-${randomUUID()}`);
  const store = createStore(pathToFileURL(dir).toString());
  const base = parseConfig({ DATABASE_URL, REQUIRE_MODEL: "false" });
  const config: AppConfig = { ...base, enqueueTimeoutMs: 500, ...options.config };
  const registry = new Registry();
  const app = createApp({
    db: h.db.db,
    store,
    queue,
    redis,
    config,
    classifier: options.classifier ?? null,
    model: options.model ?? null,
    registry,
    logger: silent,
  });
  return {
    app,
    queue,
    store,
    dir,
    registry,
    async storedFiles() {
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return entries
        .filter((e) => e.isFile() && !e.parentPath.includes(`${path.sep}.tmp`))
        .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
    },
    async dispose() {
      if (redis === h.redis) await queue.obliterate({ force: true }).catch(() => {});
      await queue.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const png = (r: number, g: number, b: number, size = 16) =>
  sharp({ create: { width: size, height: size, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();

export const jpeg = (r: number, g: number, b: number, size = 16) =>
  sharp({ create: { width: size, height: size, channels: 3, background: { r, g, b } } })
    .jpeg()
    .toBuffer();

/** Incompressible pixels, for uploads that must really be large. */
export const noisePng = (size: number) => {
  const raw = randomBytes(size * size * 3);
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toBuffer();
};

export function form(
  files: { name?: string; data: Buffer; filename: string; type?: string }[],
  fields: Record<string, string> = {},
): FormData {
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) body.append(k, v);
  for (const f of files) {
    body.append(
      f.name ?? "images",
      new Blob([new Uint8Array(f.data)], { type: f.type ?? "application/octet-stream" }),
      f.filename,
    );
  }
  return body;
}

export async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}
