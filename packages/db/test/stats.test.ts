import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createBatch,
  type DbHandle,
  getStats,
  type ResultInput,
  recordResults,
  thresholdBins,
} from "../src/index";
import { openTestDb } from "./helpers";

let handle: DbHandle;
beforeAll(async () => {
  handle = await openTestDb();
});
afterAll(async () => {
  await handle?.close();
});

const LABELS = ["cardboard", "glass", "metal", "paper", "plastic"];

// Deterministic pseudo-random numbers so a failure reproduces.
function rng(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return s / 2_147_483_648;
  };
}

describe("getStats", () => {
  const site = `site-${randomUUID()}`;
  const from = new Date("2022-06-01T00:00:00Z");
  const to = new Date("2022-06-03T00:00:00Z");

  beforeAll(async () => {
    const random = rng(42);
    // Batches spread over two days and two lines, results recorded in several calls, some replayed.
    for (let b = 0; b < 12; b++) {
      const capturedAt = new Date(from.getTime() + Math.floor(random() * 47 * 3600) * 1000);
      const imgs = Array.from({ length: 25 }, (_, index) => ({
        index,
        storageKey: `s/${randomUUID()}`,
        bytes: 1,
      }));
      const { images } = await createBatch(handle.db, {
        site,
        line: `line-${b % 2}`,
        capturedAt,
        images: imgs,
      });
      const rows: ResultInput[] = images.map((image) => {
        const r = random();
        if (r < 0.1) return { imageId: image.id, status: "failed", errorCode: "corrupt" };
        // Include exact bin edges: 0.5 is not below a 0.5 threshold.
        const confidence = r < 0.15 ? 0.5 : Math.round(random() * 1000) / 1000;
        // The model's own review flags, independent of the stats threshold: low below 0.4, some unfamiliar.
        const distance = Math.round(random() * 100) / 100;
        const lowConfidence = confidence < 0.4;
        const unfamiliar = distance > 0.8;
        const review = { needsReview: lowConfidence || unfamiliar, lowConfidence, unfamiliar, distance };
        return {
          imageId: image.id,
          status: "ok",
          label: LABELS[Math.floor(random() * 5)],
          confidence,
          review,
        };
      });
      await recordResults(handle.db, rows.slice(0, 10));
      await recordResults(handle.db, rows.slice(5));
    }
  });

  async function raw(threshold: number, line?: string) {
    const res = await handle.db.execute<{ label: string | null; n: string; low: string; review: string }>(sql`
      select r.label, count(*) as n, count(*) filter (where r.status = 'ok' and r.confidence < ${threshold}) as low,
        count(*) filter (where r.needs_review) as review
      from results r join images i on i.id = r.image_id
      where i.site = ${site} and i.captured_at >= ${from.toISOString()} and i.captured_at < ${to.toISOString()}
        ${line ? sql`and i.line = ${line}` : sql``}
      group by r.label`);
    return res.rows.map((r) => ({
      label: r.label ?? "",
      n: Number(r.n),
      low: Number(r.low),
      review: Number(r.review),
    }));
  }

  for (const threshold of [0.5, 0.25, 0.8]) {
    it(`equals the sum of results (threshold ${threshold})`, async () => {
      const expected = await raw(threshold);
      const stats = await getStats(handle.db, { from, to, bucket: "hour", site, threshold });
      const failed = expected.find((e) => e.label === "")?.n ?? 0;
      const classes = expected.filter((e) => e.label !== "");
      expect(stats.total).toBe(300);
      expect(stats.failed).toBe(failed);
      expect(stats.classified).toBe(300 - failed);
      expect(stats.lowConfidence).toBe(classes.reduce((s, c) => s + c.low, 0));
      expect(stats.lowConfidence).toBeGreaterThan(0);
      expect(Object.fromEntries(stats.classes.map((c) => [c.label, [c.count, c.lowConfidence]]))).toEqual(
        Object.fromEntries(classes.map((c) => [c.label, [c.n, c.low]])),
      );
      expect(stats.classes.reduce((s, c) => s + c.share, 0)).toBeCloseTo(1, 10);
      // Review counts do not depend on the threshold: they are the model's flags as recorded.
      const review = classes.reduce((s, c) => s + c.review, 0);
      expect(review).toBeGreaterThan(0);
      expect(review).toBeLessThan(stats.classified);
      expect(stats.needsReview).toBe(review);
      expect(stats.reviewRate).toBeCloseTo(review / stats.classified, 12);
      expect(Object.fromEntries(stats.classes.map((c) => [c.label, [c.needsReview, c.reviewRate]]))).toEqual(
        Object.fromEntries(classes.map((c) => [c.label, [c.review, c.review / c.n]])),
      );
    });
  }

  it("buckets consistently at every granularity and filters by line", async () => {
    for (const bucket of ["minute", "hour", "day"] as const) {
      const stats = await getStats(handle.db, { from, to, bucket, site, threshold: 0.5 });
      expect(stats.series.reduce((s, e) => s + e.total, 0)).toBe(300);
      const perLabel: Record<string, number> = {};
      for (const entry of stats.series) {
        for (const [label, n] of Object.entries(entry.counts)) perLabel[label] = (perLabel[label] ?? 0) + n;
      }
      expect(perLabel).toEqual(Object.fromEntries(stats.classes.map((c) => [c.label, c.count])));
      expect(stats.series.reduce((s, e) => s + e.needsReview, 0)).toBe(stats.needsReview);
      for (const entry of stats.series) {
        expect(entry.reviewRate).toBeCloseTo(entry.needsReview / (entry.total - entry.failed), 12);
      }
      if (bucket === "day")
        expect(stats.series.map((e) => e.bucket.toISOString())).toEqual([
          "2022-06-01T00:00:00.000Z",
          "2022-06-02T00:00:00.000Z",
        ]);
    }
    const line0 = await getStats(handle.db, {
      from,
      to,
      bucket: "day",
      site,
      line: "line-0",
      threshold: 0.5,
    });
    expect(line0.total).toBe(150);
    const rawLine0 = await raw(0.5, "line-0");
    expect(line0.lowConfidence).toBe(rawLine0.reduce((s, c) => s + (c.label ? c.low : 0), 0));
    expect(line0.needsReview).toBe(rawLine0.reduce((s, c) => s + c.review, 0));
  });

  it("returns nothing outside the window and refuses thresholds the histogram cannot answer", async () => {
    const empty = await getStats(handle.db, {
      from: to,
      to: new Date(to.getTime() + 86_400_000),
      bucket: "day",
      site,
      threshold: 0.5,
    });
    expect(empty).toMatchObject({ total: 0, needsReview: 0, reviewRate: 0, classes: [], series: [] });
    expect(thresholdBins(0.35)).toBe(7);
    expect(() => thresholdBins(0.33)).toThrow(RangeError);
    expect(() => thresholdBins(1.05)).toThrow(RangeError);
  });
});
