import { randomUUID } from "node:crypto";
import { count, eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  batches,
  createBatch,
  type DbHandle,
  deleteBatch,
  getBatch,
  getStats,
  images,
  listQueueableImages,
  listResults,
  markBatchEnqueued,
  recordResults,
} from "../src/index";
import { openTestDb } from "./helpers";

let handle: DbHandle;
beforeAll(async () => {
  handle = await openTestDb();
});
afterAll(async () => {
  await handle?.close();
});

function newImages(n: number) {
  return Array.from({ length: n }, (_, index) => ({
    index,
    filename: `img-${index}.jpg`,
    storageKey: `test/${randomUUID()}`,
    bytes: 100 + index,
    contentType: "image/jpeg",
  }));
}

describe("createBatch", () => {
  it("creates the batch and its images in upload order", async () => {
    const {
      batch,
      created,
      images: rows,
    } = await createBatch(handle.db, {
      site: "s",
      line: "l",
      camera: "c",
      images: newImages(3),
    });
    expect(created).toBe(true);
    expect(batch).toMatchObject({ status: "queued", total: 3, processed: 0, failed: 0, enqueuedAt: null });
    expect(rows.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(await listQueueableImages(handle.db, batch.id)).toEqual(rows);
    await markBatchEnqueued(handle.db, batch.id);
    expect((await getBatch(handle.db, batch.id))?.enqueuedAt).toBeInstanceOf(Date);
  });

  it("returns one batch for concurrent submissions with the same idempotency key", async () => {
    const key = `key-${randomUUID()}`;
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, () => createBatch(handle.db, { idempotencyKey: key, images: newImages(4) })),
    );
    expect(outcomes.filter((o) => o.created)).toHaveLength(1);
    const ids = new Set(outcomes.map((o) => o.batch.id));
    expect(ids.size).toBe(1);
    const [id] = [...ids] as [string];
    const [row] = await handle.db.select({ n: count() }).from(images).where(eq(images.batchId, id));
    expect(row?.n).toBe(4);
    // Losers get the winner's images, which is what they need to re-enqueue it.
    for (const o of outcomes) expect(o.images).toHaveLength(4);
  });

  it("records rejected uploads as failed results in the same transaction", async () => {
    const imgs = newImages(2).map((img, i) =>
      i === 1
        ? { ...img, storageKey: null, rejected: { code: "unsupported_format", message: "not an image" } }
        : img,
    );
    const { batch, images: queueable } = await createBatch(handle.db, { images: imgs });
    expect(batch).toMatchObject({ status: "processing", processed: 1, failed: 1 });
    expect(queueable).toHaveLength(1);
    const page = await listResults(handle.db, batch.id, { limit: 10 });
    expect(page.items.map((i) => i.status)).toEqual(["queued", "failed"]);
    expect(page.items[1]?.error).toEqual({ code: "unsupported_format", message: "not an image" });
  });

  it("completes at once when every upload was rejected", async () => {
    const imgs = newImages(1).map((img) => ({
      ...img,
      storageKey: null,
      rejected: { code: "x", message: "y" },
    }));
    const { batch } = await createBatch(handle.db, { images: imgs });
    expect(batch.status).toBe("completed_with_errors");
    expect(batch.completedAt).toBeInstanceOf(Date);
  });

  it("refuses an empty batch", async () => {
    await expect(createBatch(handle.db, { images: [] })).rejects.toThrow(/at least one/);
  });
});

describe("listResults", () => {
  it("pages by image index with a cursor and shows unprocessed images as queued", async () => {
    const { batch, images: rows } = await createBatch(handle.db, { images: newImages(5) });
    await recordResults(handle.db, [
      { imageId: rows[1]?.id as string, status: "ok", label: "glass", confidence: 0.9, top: [] },
    ]);
    const first = await listResults(handle.db, batch.id, { limit: 2 });
    expect(first.items.map((i) => i.index)).toEqual([0, 1]);
    expect(first.items[1]).toMatchObject({ status: "ok", label: "glass", confidence: 0.9, error: null });
    expect(first.nextCursor).toBe(1);
    const second = await listResults(handle.db, batch.id, { after: first.nextCursor, limit: 2 });
    expect(second.items.map((i) => i.index)).toEqual([2, 3]);
    const last = await listResults(handle.db, batch.id, { after: second.nextCursor, limit: 2 });
    expect(last.items.map((i) => i.index)).toEqual([4]);
    expect(last.nextCursor).toBeNull();
    expect(first.items[0]).toMatchObject({
      status: "queued",
      needsReview: null,
      novelty: null,
      reviewReasons: [],
    });
  });

  it("filters on needsReview and pages through the matches only", async () => {
    const { batch, images: rows } = await createBatch(handle.db, { images: newImages(6) });
    const id = (i: number) => rows[i]?.id as string;
    const flags = { needsReview: true, lowConfidence: true, unfamiliar: false, distance: 0.25 };
    await recordResults(handle.db, [
      { imageId: id(0), status: "ok", label: "glass", confidence: 0.4, review: flags },
      { imageId: id(1), status: "ok", label: "glass", confidence: 0.9 },
      { imageId: id(2), status: "failed", errorCode: "corrupt" },
      { imageId: id(3), status: "ok", label: "metal", confidence: 0.45, review: flags },
      { imageId: id(5), status: "ok", label: "paper", confidence: 0.3, review: flags },
    ]);
    const flagged = await listResults(handle.db, batch.id, { limit: 2, needsReview: true });
    expect(flagged.items.map((i) => i.index)).toEqual([0, 3]);
    expect(flagged.items[0]).toMatchObject({
      needsReview: true,
      novelty: 0.25,
      reviewReasons: ["low_confidence"],
    });
    const rest = await listResults(handle.db, batch.id, {
      after: flagged.nextCursor,
      limit: 2,
      needsReview: true,
    });
    expect(rest).toMatchObject({ items: [{ index: 5 }], nextCursor: null });
    // Failed results do not need review; queued image 4 has no outcome to filter on.
    const clean = await listResults(handle.db, batch.id, { limit: 10, needsReview: false });
    expect(clean.items.map((i) => [i.index, i.status])).toEqual([
      [1, "ok"],
      [2, "failed"],
    ]);
  });
});

describe("deleteBatch", () => {
  it("removes the batch and takes its results back out of the rollup", async () => {
    const site = `site-${randomUUID()}`;
    const capturedAt = new Date("2020-03-04T05:06:07Z");
    const window = { from: new Date("2020-03-04T00:00:00Z"), to: new Date("2020-03-05T00:00:00Z") };
    const { batch, images: rows } = await createBatch(handle.db, { site, capturedAt, images: newImages(2) });
    const review = { needsReview: true, lowConfidence: true, unfamiliar: false, distance: null };
    await recordResults(
      handle.db,
      rows.map((r) => ({ imageId: r.id, status: "ok" as const, label: "paper", confidence: 0.3, review })),
    );
    const before = await getStats(handle.db, { ...window, bucket: "day", site, threshold: 0.5 });
    expect(before).toMatchObject({ total: 2, lowConfidence: 2, needsReview: 2 });
    expect(await deleteBatch(handle.db, batch.id)).toBe(true);
    expect(await getBatch(handle.db, batch.id)).toBeNull();
    const after = await getStats(handle.db, { ...window, bucket: "day", site, threshold: 0.5 });
    expect(after).toMatchObject({ total: 0, lowConfidence: 0, needsReview: 0, classes: [], series: [] });
    // Stats hide rows whose count is back to 0, so look at the rollup itself.
    const rollup = await handle.db.execute<{ count: string; review: string }>(
      sql`select sum(count) as count, sum(review_count) as review from class_stats where site = ${site}`,
    );
    expect(rollup.rows[0]).toEqual({ count: "0", review: "0" });
    expect(await deleteBatch(handle.db, batch.id)).toBe(false);
    const [left] = await handle.db.select({ n: count() }).from(batches).where(eq(batches.id, batch.id));
    expect(left?.n).toBe(0);
  });
});
