/**
 * The pieces of @garbage/recovery on their own, against the shared Postgres and Redis (random queue, a file
 * store in a temp dir): what repairBatch does per job state, the advisory lock, and which uploads count as
 * orphans. runSweep itself only runs here while another session holds its lock, so it never touches the
 * shared database's other batches.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  countRepair,
  createBatch,
  type DbHandle,
  getBatch,
  listOpenBatches,
  markBatchEnqueued,
  recordResults,
} from "@garbage/db";
import { addJobs, type BatchJob, batchJobs, createQueue, createRedis, type Redis } from "@garbage/queue";
import { removeOrphanUploads, repairBatch, runSweep, SWEEP_LOCK, withAdvisoryLock } from "@garbage/recovery";
import { FileStore, uploadKey } from "@garbage/storage";
import { Worker } from "bullmq";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openTestDb, randomQueueName, TEST_REDIS_URL, waitFor } from "./helpers";

let db: DbHandle;
let redis: Redis;
let dir: string;
beforeAll(async () => {
  db = await openTestDb();
  redis = createRedis(TEST_REDIS_URL, { forWorker: true });
  dir = await mkdtemp(path.join(tmpdir(), "recovery-sweep-"));
});
afterAll(async () => {
  await db?.close();
  redis?.disconnect();
  await rm(dir, { recursive: true, force: true });
});

/** Runs a worker whose every job throws until `jobId` has failed for good. */
async function failForGood(queue: ReturnType<typeof createQueue>, jobId: string) {
  const failing = new Worker(
    queue.name,
    async () => {
      throw new Error("connect ECONNREFUSED");
    },
    { connection: redis.duplicate() },
  );
  try {
    await waitFor(`${jobId} to fail for good`, async () => (await queue.getJobState(jobId)) === "failed");
  } finally {
    await failing.close();
  }
}

const repairsOf = async (imageId: string | undefined) => {
  const rows = await db.db.execute<{ repairs: number }>(
    sql`select repairs from images where id = ${imageId}`,
  );
  return rows.rows[0]?.repairs;
};

it("repairBatch re-adds lost jobs, runs failed ones again and leaves live ones", async () => {
  const queue = createQueue(redis, randomQueueName("recovery-sweep"));
  try {
    const batchId = randomUUID();
    const images = Array.from({ length: 16 }, (_, index) => {
      const id = randomUUID();
      return { id, index, storageKey: uploadKey(batchId, id), bytes: 1 };
    });
    const { batch } = await createBatch(db.db, { id: batchId, chunkSize: 4, images });
    const [done, failed, lost, waiting] = batchJobs(
      batchId,
      images.map((i) => ({ id: i.id, key: i.storageKey })),
      { chunkSize: 4 },
    ) as [BatchJob, BatchJob, BatchJob, BatchJob];
    // Chunk 0 is done; chunk 1 failed for good; chunk 2 is lost; chunk 3 waits.
    await recordResults(
      db.db,
      done.data.images.map((img) => ({ imageId: img.id, status: "ok", label: "paper", confidence: 0.8 })),
    );
    await queue.add(failed.name, failed.data, { ...failed.opts, attempts: 1 });
    await failForGood(queue, failed.opts.jobId);
    await addJobs(queue, [waiting]);

    const first = await repairBatch({ db: db.db, queue }, batch);
    expect(first).toEqual({ requeued: [lost.opts.jobId], retried: [failed.opts.jobId], abandoned: 0 });
    expect(await queue.getJobState(done.opts.jobId)).toBe("unknown");
    expect((await queue.getJob(lost.opts.jobId))?.data).toEqual({
      batchId,
      images: lost.data.images.map((img) => ({ ...img, enqueuedAt: batch.createdAt.getTime() })),
    });
    // The failed job waits again with fresh attempts, and its images count one repair.
    expect(await queue.getJobState(failed.opts.jobId)).toBe("waiting");
    expect((await queue.getJob(failed.opts.jobId))?.attemptsMade).toBe(0);
    expect(await repairsOf(failed.data.images[0]?.id)).toBe(1);
    expect(await repairsOf(lost.data.images[0]?.id)).toBe(0);
    expect(await getBatch(db.db, batchId)).toMatchObject({ processed: 4, failed: 0, status: "processing" });
    expect((await getBatch(db.db, batchId))?.enqueuedAt).toBeInstanceOf(Date);

    // Every job is alive now: a second pass changes nothing.
    expect(await repairBatch({ db: db.db, queue }, batch)).toEqual({
      requeued: [],
      retried: [],
      abandoned: 0,
    });
    expect(await queue.getJobCounts("waiting")).toMatchObject({ waiting: 3 });
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
  }
});

it("repairBatch makes the final failed write once a job has used up its repairs", async () => {
  const queue = createQueue(redis, randomQueueName("recovery-sweep"));
  try {
    const batchId = randomUUID();
    const images = Array.from({ length: 4 }, (_, index) => {
      const id = randomUUID();
      return { id, index, storageKey: uploadKey(batchId, id), bytes: 1 };
    });
    const { batch } = await createBatch(db.db, { id: batchId, chunkSize: 4, images });
    const [job] = batchJobs(
      batchId,
      images.map((i) => ({ id: i.id, key: i.storageKey })),
      { chunkSize: 4 },
    ) as [BatchJob];
    await queue.add(job.name, job.data, { ...job.opts, attempts: 1 });

    const outcomes = [];
    for (let pass = 0; pass < 3; pass += 1) {
      await failForGood(queue, job.opts.jobId);
      outcomes.push(await repairBatch({ db: db.db, queue }, batch, { maxRepairs: 2 }));
    }
    expect(outcomes).toEqual([
      { requeued: [], retried: [job.opts.jobId], abandoned: 0 },
      { requeued: [], retried: [job.opts.jobId], abandoned: 0 },
      { requeued: [], retried: [], abandoned: 4 },
    ]);
    expect(await repairsOf(images[0]?.id)).toBe(2);
    const abandoned = await db.db.execute<{ error_code: string; error_message: string }>(
      sql`select error_code, error_message from results where image_id = ${images[0]?.id}`,
    );
    expect(abandoned.rows[0]).toEqual({
      error_code: "worker_error",
      error_message: "gave up after 1 attempts: connect ECONNREFUSED (after 2 repairs by the sweep)",
    });
    expect(await getBatch(db.db, batchId)).toMatchObject({
      processed: 4,
      failed: 4,
      status: "completed_with_errors",
    });
    expect(await repairBatch({ db: db.db, queue }, batch, { maxRepairs: 2 })).toEqual({
      requeued: [],
      retried: [],
      abandoned: 0,
    });
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
  }
});

it("counts a repair once when two repairers read the same generation", async () => {
  const batchId = randomUUID();
  const images = Array.from({ length: 3 }, (_, index) => {
    const id = randomUUID();
    return { id, index, storageKey: uploadKey(batchId, id), bytes: 1 };
  });
  await createBatch(db.db, { id: batchId, images });
  const ids = images.map((i) => i.id);
  const [a, b] = await Promise.all([countRepair(db.db, ids, 0), countRepair(db.db, ids, 0)]);
  expect([a.length, b.length].sort()).toEqual([0, 3]);
  expect(await countRepair(db.db, ids, 0)).toEqual([]);
  expect((await countRepair(db.db, ids, 1)).sort()).toEqual([...ids].sort());
});

it("runs one holder of the advisory lock at a time and skips the sweep while another holds it", async () => {
  const key = Math.floor(Math.random() * 1e9);
  let release = () => {};
  const held = withAdvisoryLock(db.pool, key, () => new Promise<string>((r) => (release = () => r("first"))));
  await new Promise((r) => setTimeout(r, 100));
  expect(await withAdvisoryLock(db.pool, key, async () => "second")).toBeUndefined();
  release();
  expect(await held).toBe("first");
  await expect(withAdvisoryLock(db.pool, key, async () => Promise.reject(new Error("boom")))).rejects.toThrow(
    "boom",
  );
  expect(await withAdvisoryLock(db.pool, key, async () => "after a throw")).toBe("after a throw");

  const other = await db.pool.connect();
  try {
    await other.query("select pg_advisory_lock($1)", [SWEEP_LOCK]);
    const queue = createQueue(redis, randomQueueName("recovery-sweep"));
    const store = new FileStore(dir);
    const report = await runSweep({ db: db.db, queue, store }, { minBatchAgeMs: 0, orphanGraceMs: 1_000 });
    expect(report).toMatchObject({ ran: false, batches: 0, requeuedJobs: 0 });
    await queue.close();
  } finally {
    await other.query("select pg_advisory_unlock($1)", [SWEEP_LOCK]);
    other.release();
  }
});

it("removes only old upload keys without a row, page by page", async () => {
  const store = new FileStore(path.join(dir, "orphans"));
  const batchId = randomUUID();
  const referenced = Array.from({ length: 3 }, (_, index) => {
    const id = randomUUID();
    return { id, index, storageKey: uploadKey(batchId, id), bytes: 1 };
  });
  await createBatch(db.db, { id: batchId, images: referenced });
  const orphans = Array.from({ length: 3 }, () => uploadKey(randomUUID(), randomUUID()));
  const young = uploadKey(randomUUID(), randomUUID());
  const foreign = [`batches/${batchId}/not-an-image-id`, `batches/${randomUUID()}/${randomUUID()}/extra`];
  const old = [...referenced.map((r) => r.storageKey), ...orphans, ...foreign];
  const hourAgo = new Date(Date.now() - 3_600_000);
  for (const key of [...old, young]) await store.put(key, Buffer.from(key));
  for (const key of old) await utimes(path.join(store.root, key), hourAgo, hourAgo);

  const removed: string[] = [];
  let after: string | undefined;
  do {
    const page = await removeOrphanUploads({ db: db.db, store }, { graceMs: 60_000, after, limit: 2 });
    removed.push(...page.removed);
    after = page.next;
  } while (after !== undefined);
  expect(removed.sort()).toEqual([...orphans].sort());
  const left = (await store.list({ prefix: "batches/", limit: 100 })).map((o) => o.key);
  expect(left.sort()).toEqual([...referenced.map((r) => r.storageKey), ...foreign, young].sort());
});

it("lists unfinished batches by their age on the database's clock, enqueued ones at once", async () => {
  const batchId = randomUUID();
  const id = randomUUID();
  await createBatch(db.db, {
    id: batchId,
    images: [{ id, index: 0, storageKey: uploadKey(batchId, id), bytes: 1 }],
  });
  // The shared database has other suites' unfinished batches, older ones first: read them all.
  const ids = async (minAgeMs: number) =>
    (await listOpenBatches(db.db, { minAgeMs, limit: 1_000_000 })).map((b) => b.id);
  expect(await ids(60_000)).not.toContain(batchId);
  expect(await ids(0)).toContain(batchId);
  // Once the API marked it enqueued, its request is done: a young batch whose jobs Redis lost is repaired now.
  await markBatchEnqueued(db.db, batchId);
  expect(await ids(60_000)).toContain(batchId);
  await recordResults(db.db, [{ imageId: id, status: "failed", errorCode: "missing" }]);
  expect(await ids(0)).not.toContain(batchId);
});
