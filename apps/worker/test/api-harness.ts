import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createApp } from "@garbage/api";
import { parseConfig } from "@garbage/api/config";
import type { DbHandle } from "@garbage/db";
import { createLogger } from "@garbage/log";
import { type ClassifyQueue, createQueue, createRedis } from "@garbage/queue";
import { createStore, type ImageStore } from "@garbage/storage";
import type { Redis } from "ioredis";
import { Registry } from "prom-client";
import { randomQueueName, TEST_DATABASE_URL, TEST_REDIS_URL } from "./helpers";

export interface UploadFile {
  filename: string;
  data: Uint8Array;
  type?: string;
}

export interface ApiHarness {
  app: ReturnType<typeof createApp>;
  queue: ClassifyQueue;
  queueName: string;
  store: ImageStore;
  storageUrl: string;
  /** POST /v1/batches; returns the status and JSON body. */
  submit(
    files: readonly UploadFile[],
    opts?: { idempotencyKey?: string; fields?: Record<string, string> },
  ): Promise<{ status: number; body: { id: string; status: string; total: number }; replayed: boolean }>;
  get<T>(url: string): Promise<T>;
  close(): Promise<void>;
}

/** The real API app (createApp) on a fresh queue and file store, served in-process through app.request(). */
export async function openApi(db: DbHandle, options: { redisUrl?: string } = {}): Promise<ApiHarness> {
  const dir = await mkdtemp(path.join(tmpdir(), "worker-e2e-store-"));
  const storageUrl = pathToFileURL(dir).href;
  const store = createStore(storageUrl);
  const redis: Redis = createRedis(options.redisUrl ?? TEST_REDIS_URL, { forWorker: false });
  const queueName = randomQueueName("worker-e2e");
  const queue = createQueue(redis, queueName);
  const config = { ...parseConfig({ DATABASE_URL: TEST_DATABASE_URL, REQUIRE_MODEL: "false" }), apiKeys: [] };
  const app = createApp({
    db: db.db,
    store,
    queue,
    redis,
    config,
    classifier: null,
    registry: new Registry(),
    // Errors only: a test that fails on a 500 shows why.
    logger: createLogger({ service: "api-harness", level: "error" }),
  });
  return {
    app,
    queue,
    queueName,
    store,
    storageUrl,
    async submit(files, opts = {}) {
      const form = new FormData();
      for (const [k, v] of Object.entries(opts.fields ?? {})) form.append(k, v);
      for (const f of files) {
        form.append("images", new Blob([f.data], { type: f.type ?? "image/jpeg" }), f.filename);
      }
      const headers: Record<string, string> = opts.idempotencyKey
        ? { "Idempotency-Key": opts.idempotencyKey }
        : {};
      const res = await app.request("/v1/batches", { method: "POST", body: form, headers });
      const body = (await res.json()) as { id: string; status: string; total: number };
      return { status: res.status, body, replayed: res.headers.get("Idempotent-Replayed") === "true" };
    },
    async get<T>(url: string) {
      const res = await app.request(url);
      if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    },
    async close() {
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close().catch(() => {});
      redis.disconnect();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const uniqueSite = () => `e2e-${randomUUID()}`;
