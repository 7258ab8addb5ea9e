import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type ClassifyQueue,
  chunkJobId,
  createQueue,
  createRedis,
  enqueueBatch,
  pingRedis,
  queueDepth,
} from "../src/index";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

let redis: Redis;
let queue: ClassifyQueue | undefined;

beforeAll(() => {
  redis = createRedis(REDIS_URL, { forWorker: false });
});
afterEach(async () => {
  await queue?.obliterate({ force: true });
  await queue?.close();
  queue = undefined;
});
afterAll(async () => {
  await redis.quit();
});

function images(n: number) {
  return Array.from({ length: n }, (_, i) => ({ id: randomUUID(), key: `images/b/${i}` }));
}

describe("enqueueBatch", () => {
  it("splits a batch into chunks with deterministic ids and ids-only payloads", async () => {
    queue = createQueue(redis, `test-${randomUUID()}`);
    const batchId = randomUUID();
    const imgs = images(37);
    const { jobIds } = await enqueueBatch(queue, batchId, imgs, { chunkSize: 16, enqueuedAt: 123 });
    expect(jobIds).toEqual([0, 1, 2].map((i) => chunkJobId(batchId, i)));
    const jobs = await Promise.all(jobIds.map((id) => queue?.getJob(id)));
    expect(jobs.map((job) => job?.data.images.length)).toEqual([16, 16, 5]);
    expect(jobs[2]?.data).toEqual({
      batchId,
      images: imgs.slice(32).map((image) => ({ ...image, enqueuedAt: 123 })),
    });
    expect(jobs[0]?.opts.attempts).toBe(5);
    expect(jobs[0]?.opts.backoff).toMatchObject({ type: "exponential" });
  });

  it("is idempotent when the same batch is enqueued again", async () => {
    queue = createQueue(redis, `test-${randomUUID()}`);
    const batchId = randomUUID();
    const imgs = images(20);
    await enqueueBatch(queue, batchId, imgs, { chunkSize: 8 });
    await enqueueBatch(queue, batchId, imgs, { chunkSize: 8 });
    const depth = await queueDepth(queue);
    expect(depth.waiting).toBe(3);
    expect(await queue.count()).toBe(3);
  });

  it("rejects batch ids BullMQ cannot use and nonsense chunk sizes", async () => {
    queue = createQueue(redis, `test-${randomUUID()}`);
    await expect(enqueueBatch(queue, "a:b", images(1))).rejects.toThrow(/':'/);
    await expect(enqueueBatch(queue, randomUUID(), images(1), { chunkSize: 0 })).rejects.toThrow(/chunkSize/);
  });
});

describe("unreachable Redis", () => {
  it("fails enqueue and depth within their timeouts instead of hanging", async () => {
    const dead = createRedis("redis://127.0.0.1:1", { forWorker: false });
    const deadQueue = createQueue(dead, `test-${randomUUID()}`);
    try {
      const started = Date.now();
      await expect(enqueueBatch(deadQueue, randomUUID(), images(2), { timeoutMs: 300 })).rejects.toThrow(
        /timed out/,
      );
      await expect(queueDepth(deadQueue, 300)).rejects.toThrow(/timed out/);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await deadQueue.close().catch(() => {});
      dead.disconnect();
    }
  });
});

describe("redis helpers", () => {
  it("pings a live Redis and reports an unreachable one without hanging", async () => {
    expect(await pingRedis(redis)).toBe(true);
    const dead = createRedis("redis://127.0.0.1:1", { forWorker: false });
    try {
      const started = Date.now();
      expect(await pingRedis(dead, 500)).toBe(false);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      dead.disconnect();
    }
  });

  it("creates worker connections that never give up on a command", () => {
    const worker = createRedis(REDIS_URL, { forWorker: true });
    try {
      expect(worker.options.maxRetriesPerRequest).toBeNull();
      expect(redis.options.enableOfflineQueue).toBe(false);
    } finally {
      worker.disconnect();
    }
  });
});
