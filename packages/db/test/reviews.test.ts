import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBatch, type DbHandle, deleteBatch, recordResults, writeReview } from "../src/index";
import { openTestDb } from "./helpers";

let handle: DbHandle;
beforeAll(async () => {
  handle = await openTestDb();
});
afterAll(async () => {
  await handle?.close();
});

async function rollup(site: string) {
  const res = await handle.db.execute<{ label: string; c: string; r: string; x: string; h: string }>(sql`
    select label, sum(count) as c, sum(reviewed_count) as r, sum(changed_count) as x,
      sum((select coalesce(sum(v), 0) from unnest(histogram) as v)) as h
    from class_stats where site = ${site} group by label order by label`);
  return res.rows.map((row) => [row.label, Number(row.c), Number(row.r), Number(row.x), Number(row.h)]);
}

async function seed(site: string) {
  const images = Array.from({ length: 4 }, (_, index) => ({
    index,
    storageKey: `r/${randomUUID()}`,
    bytes: 1,
  }));
  const created = await createBatch(handle.db, { site, images });
  const [a, b, c] = created.images.map((i) => i.id) as [string, string, string, string];
  await recordResults(handle.db, [
    { imageId: a, status: "ok", label: "glass", confidence: 0.9 },
    { imageId: b, status: "ok", label: "glass", confidence: 0.3 },
    { imageId: c, status: "failed", errorCode: "corrupt" },
  ]);
  return { batchId: created.batch.id, a, b, c, queued: created.images[3]?.id as string };
}

describe("writeReview", () => {
  it("moves counts, histogram and reviewed/changed between labels, and deleteBatch takes them all back", async () => {
    const site = `reviews-${randomUUID()}`;
    const { batchId, a, b } = await seed(site);
    const w = (imageId: string, label: string) =>
      writeReview(handle.db, { imageId, label, reviewer: "t", reviewerName: "Ada", sites: [site] });

    expect(await w(b, "paper")).toMatchObject({
      kind: "reviewed",
      previous: null,
      review: { modelLabel: "glass", label: "paper", changed: true, reviewer: "t", reviewerName: "Ada" },
    });
    expect(await rollup(site)).toEqual([
      ["", 1, 0, 0, 0],
      ["glass", 1, 0, 0, 1],
      ["paper", 1, 1, 1, 1],
    ]);
    expect(await w(b, "glass")).toMatchObject({ previous: { label: "paper", changed: true } });
    await w(a, "metal");
    expect(await rollup(site)).toEqual([
      ["", 1, 0, 0, 0],
      ["glass", 1, 1, 0, 1],
      ["metal", 1, 1, 1, 1],
      ["paper", 0, 0, 0, 0],
    ]);
    expect(await deleteBatch(handle.db, batchId)).toBe(true);
    expect((await rollup(site)).every(([, ...n]) => n.every((x) => x === 0))).toBe(true);
  });

  it("answers not_found outside the sites and not_reviewable without an ok result", async () => {
    const site = `reviews-${randomUUID()}`;
    const { a, c, queued } = await seed(site);
    const w = (imageId: string, sites: string[] | null) =>
      writeReview(handle.db, { imageId, label: "paper", reviewer: "t", sites });
    expect(await w(a, ["elsewhere"])).toEqual({ kind: "not_found" });
    expect(await w(randomUUID(), null)).toEqual({ kind: "not_found" });
    expect(await w(c, null)).toEqual({ kind: "not_reviewable", status: "failed" });
    expect(await w(queued, [site])).toEqual({ kind: "not_reviewable", status: "queued" });
    expect((await rollup(site)).find(([label]) => label === "paper")).toBeUndefined();
  });
});
