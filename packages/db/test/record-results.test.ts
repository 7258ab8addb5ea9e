import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createBatch,
  type DbHandle,
  getBatch,
  getStats,
  type ResultInput,
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

async function batchOf(n: number, extra: { site?: string; capturedAt?: Date } = {}) {
  const imgs = Array.from({ length: n }, (_, index) => ({
    index,
    storageKey: `t/${randomUUID()}`,
    bytes: 1,
  }));
  const { batch, images } = await createBatch(handle.db, { ...extra, images: imgs });
  return { batch, ids: images.map((i) => i.id) };
}

const ok = (imageId: string, label = "plastic", confidence = 0.8): ResultInput => ({
  imageId,
  status: "ok",
  label,
  confidence,
  top: [{ label, confidence }],
  modelVersion: "m1",
  inferenceMs: 3,
});
const review = (lowConfidence: boolean, unfamiliar: boolean, distance: number | null = null) => ({
  needsReview: lowConfidence || unfamiliar,
  lowConfidence,
  unfamiliar,
  distance,
});
const flagged = (imageId: string, label = "plastic", distance: number | null = 0.4): ResultInput => ({
  ...ok(imageId, label, 0.3),
  review: review(true, distance !== null && distance > 0.3, distance),
});
const failed = (imageId: string): ResultInput => ({
  imageId,
  status: "failed",
  errorCode: "corrupt",
  errorMessage: "x",
});

describe("recordResults", () => {
  it("moves a batch queued -> processing -> completed and sets completed_at once", async () => {
    const { batch, ids } = await batchOf(3);
    const [a, b, c] = ids as [string, string, string];
    const first = await recordResults(handle.db, [ok(a)]);
    expect(first).toMatchObject({ inserted: 1, duplicates: 0, unknown: [], completedBatches: [] });
    expect(await getBatch(handle.db, batch.id)).toMatchObject({
      status: "processing",
      processed: 1,
      failed: 0,
    });
    const second = await recordResults(handle.db, [ok(b), ok(c)]);
    expect(second.completedBatches).toEqual([{ id: batch.id, status: "completed" }]);
    const done = await getBatch(handle.db, batch.id);
    expect(done).toMatchObject({ status: "completed", processed: 3, failed: 0 });
    expect(done?.completedAt).toBeInstanceOf(Date);
  });

  it("ends in completed_with_errors when any image failed", async () => {
    const { batch, ids } = await batchOf(2);
    await recordResults(handle.db, [failed(ids[0] as string), ok(ids[1] as string)]);
    expect(await getBatch(handle.db, batch.id)).toMatchObject({
      status: "completed_with_errors",
      processed: 2,
      failed: 1,
    });
  });

  it("never double counts a replayed or duplicated job", async () => {
    const site = `site-${randomUUID()}`;
    const capturedAt = new Date("2021-01-01T10:00:30Z");
    const { batch, ids } = await batchOf(4, { site, capturedAt });
    const [a, b, c, d] = ids as [string, string, string, string];
    await recordResults(handle.db, [ok(a), failed(b)]);
    // A retry carries the same rows (possibly with different numbers) plus new ones, and a duplicate inside.
    const replay = await recordResults(handle.db, [ok(a, "glass", 0.1), failed(b), ok(c), ok(c)]);
    expect(replay).toMatchObject({ inserted: 1, duplicates: 2, unknown: [] });
    expect(await getBatch(handle.db, batch.id)).toMatchObject({
      status: "processing",
      processed: 3,
      failed: 1,
    });
    // The first write wins.
    const stored = await handle.db.execute<{ label: string }>(
      sql`select label from results where image_id = ${a}`,
    );
    expect(stored.rows[0]?.label).toBe("plastic");

    // Concurrent duplicates, each on its own connection, must still count once.
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () => recordResults(handle.db, [ok(d, "metal")])),
    );
    expect(outcomes.map((o) => o.inserted).sort()).toEqual([0, 0, 0, 0, 1]);
    expect(outcomes.flatMap((o) => o.completedBatches)).toEqual([
      { id: batch.id, status: "completed_with_errors" },
    ]);
    expect(await getBatch(handle.db, batch.id)).toMatchObject({ processed: 4, failed: 1 });

    const stats = await getStats(handle.db, {
      from: new Date("2021-01-01T00:00:00Z"),
      to: new Date("2021-01-02T00:00:00Z"),
      bucket: "minute",
      site,
      threshold: 0.5,
    });
    expect(stats).toMatchObject({ total: 4, classified: 3, failed: 1, lowConfidence: 0 });
    expect(stats.classes.map((c) => [c.label, c.count])).toEqual([
      ["plastic", 2],
      ["metal", 1],
    ]);
  });

  it("stores review flags and counts review_count only from inserted rows, so a replay never double counts", async () => {
    const site = `site-${randomUUID()}`;
    const { ids } = await batchOf(5, { site, capturedAt: new Date("2021-02-01T10:00:00Z") });
    const [a, b, c, d, e] = ids as [string, string, string, string, string];
    const first = [flagged(a), flagged(b, "glass", null), { ...ok(c), review: review(false, false, 0.05) }];
    await recordResults(handle.db, first);
    // The replay repeats every row, flips the flags of c (first write wins) and adds two new flagged ones.
    const replay = await recordResults(handle.db, [
      ...first.slice(0, 2),
      { ...ok(c), review: review(false, true, 0.9) },
      flagged(d),
      { ...ok(e, "glass"), review: review(false, true, 0.7) },
    ]);
    expect(replay).toMatchObject({ inserted: 2, duplicates: 3 });

    const stored = await handle.db.execute<{
      image_id: string;
      needs_review: boolean;
      review_reasons: string[];
      novelty: number | null;
    }>(sql`select image_id, needs_review, review_reasons, novelty from results
      where image_id = any(${`{${ids.join(",")}}`}::uuid[])`);
    const byId = new Map(stored.rows.map((r) => [r.image_id, r]));
    expect(byId.get(a)).toMatchObject({
      needs_review: true,
      review_reasons: ["low_confidence", "unfamiliar"],
    });
    expect(byId.get(a)?.novelty).toBe(0.4);
    expect(byId.get(b)).toMatchObject({
      needs_review: true,
      review_reasons: ["low_confidence"],
      novelty: null,
    });
    expect(byId.get(c)).toMatchObject({ needs_review: false, review_reasons: [], novelty: 0.05 });
    expect(byId.get(e)).toMatchObject({ needs_review: true, review_reasons: ["unfamiliar"], novelty: 0.7 });

    const rollup = await handle.db.execute<{ label: string; count: string; review: string }>(sql`
      select label, sum(count) as count, sum(review_count) as review from class_stats
      where site = ${site} group by label order by label`);
    expect(rollup.rows.map((r) => [r.label, Number(r.count), Number(r.review)])).toEqual([
      ["glass", 2, 2],
      ["plastic", 3, 2],
    ]);
    // A second full replay changes nothing.
    await recordResults(handle.db, [...first, flagged(d), flagged(e)]);
    const stats = await getStats(handle.db, {
      from: new Date("2021-02-01T00:00:00Z"),
      to: new Date("2021-02-02T00:00:00Z"),
      bucket: "hour",
      site,
      threshold: 0.5,
    });
    expect(stats).toMatchObject({ classified: 5, needsReview: 4, reviewRate: 0.8 });
    expect(stats.series).toMatchObject([{ total: 5, needsReview: 4, reviewRate: 0.8 }]);
  });

  it("rejects review flags that contradict themselves or sit on a failed result", async () => {
    const { batch, ids } = await batchOf(1);
    const id = ids[0] as string;
    const bad: ResultInput[] = [
      { ...ok(id), review: { needsReview: true, lowConfidence: false, unfamiliar: false, distance: null } },
      { ...ok(id), review: { needsReview: false, lowConfidence: true, unfamiliar: false, distance: null } },
      { ...ok(id), review: review(false, true, Number.NaN) },
      { ...failed(id), review: review(true, false) },
    ];
    for (const row of bad) await expect(recordResults(handle.db, [row])).rejects.toThrow(TypeError);
    // The database refuses them too, whoever writes.
    await expect(
      handle.db.execute(sql`insert into results (image_id, batch_id, status, label, confidence, needs_review)
        values (${id}, ${batch.id}, 'ok', 'glass', 0.9, true)`),
    ).rejects.toMatchObject({ cause: { constraint: "results_review_consistent" } });
    expect(await getBatch(handle.db, batch.id)).toMatchObject({ processed: 0, status: "queued" });
  });

  it("skips images that do not exist and rejects malformed rows before writing anything", async () => {
    const { batch, ids } = await batchOf(1);
    const ghost = randomUUID();
    const outcome = await recordResults(handle.db, [ok(ids[0] as string), ok(ghost)]);
    expect(outcome).toMatchObject({ inserted: 1, duplicates: 0, unknown: [ghost] });
    expect(await getBatch(handle.db, batch.id)).toMatchObject({ status: "completed" });

    const other = await batchOf(1);
    const id = other.ids[0] as string;
    await expect(
      recordResults(handle.db, [{ imageId: id, status: "ok", label: "x", confidence: 1.5 }]),
    ).rejects.toThrow(TypeError);
    await expect(recordResults(handle.db, [{ imageId: id, status: "ok", confidence: 0.5 }])).rejects.toThrow(
      TypeError,
    );
    await expect(recordResults(handle.db, [ok("not-a-uuid")])).rejects.toThrow(/uuid/);
    expect(await getBatch(handle.db, other.batch.id)).toMatchObject({ processed: 0, status: "queued" });
  });

  it("rolls everything back when the surrounding transaction fails", async () => {
    const { batch, ids } = await batchOf(1);
    await expect(
      handle.db.transaction(async (tx) => {
        await recordResults(tx, [ok(ids[0] as string)]);
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await getBatch(handle.db, batch.id)).toMatchObject({ processed: 0, status: "queued" });
    expect((await recordResults(handle.db, [ok(ids[0] as string)])).inserted).toBe(1);
  });
});
